//! The subjectAltName entries of an X.509 certificate, as Go's `crypto/x509`
//! gives them to the toolkit's `client_allowed_sans` check: DNS names,
//! email addresses, IP addresses (IPv4-mapped ones as IPv4) and URIs, each
//! as a string. Only as much DER as that takes is read here; the
//! certificate itself has been parsed and verified by rustls before.

/// One DER element at the start of `input`: its tag, contents and what
/// follows it; `None` when it is cut short.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |len, b| len << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The elements inside `contents`, in order; `None` if one is cut short.
fn elements(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut all = Vec::new();
    while !contents.is_empty() {
        let (tag, inner, rest) = element(contents)?;
        all.push((tag, inner));
        contents = rest;
    }
    Some(all)
}

const SEQUENCE: u8 = 0x30;
const EXTENSIONS: u8 = 0xa3;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// The certificate's subjectAltName entries that Go reports (empty when it
/// has none); `None` when the DER cannot be read.
pub(super) fn subject_alt_names(der: &[u8]) -> Option<Vec<String>> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let Some((_, extensions)) = elements(tbs)?.into_iter().find(|(tag, _)| *tag == EXTENSIONS) else {
        return Some(Vec::new());
    };
    let (SEQUENCE, extensions, _) = element(extensions)? else {
        return None;
    };
    let mut names = Vec::new();
    for (tag, extension) in elements(extensions)? {
        let parts = elements(extension)?;
        let is_san = tag == SEQUENCE && parts.first() == Some(&(OID, SUBJECT_ALT_NAME));
        let Some(&(OCTET_STRING, value)) = parts.last().filter(|_| is_san) else {
            continue;
        };
        let (SEQUENCE, general_names, _) = element(value)? else {
            return None;
        };
        for (tag, name) in elements(general_names)? {
            match tag {
                // rfc822Name, dNSName, uniformResourceIdentifier: IA5String.
                0x81 | 0x82 | 0x86 => names.push(String::from_utf8(name.to_vec()).ok()?),
                // iPAddress
                0x87 => names.push(ip(name)?),
                // otherName, x400Address, directoryName, ...: not compared.
                _ => {}
            }
        }
    }
    Some(names)
}

/// An iPAddress entry as Go's `net.IP.String` spells it.
fn ip(octets: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(std::net::Ipv4Addr::from(v4).to_string());
    }
    let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(octets).ok()?);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => v6.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolkit_server_certificate_names_its_dns_name_and_ips() {
        use rustls_pki_types::pem::PemObject as _;
        let pem = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exporter-toolkit/server.crt");
        let der = rustls_pki_types::CertificateDer::from_pem_file(pem).unwrap();
        assert_eq!(
            subject_alt_names(&der).unwrap(),
            ["localhost", "127.0.0.1", "127.0.0.0"]
        );
        // Without the extension: no name.
        let ca =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exporter-toolkit/client_selfsigned.pem");
        let der = rustls_pki_types::CertificateDer::from_pem_file(ca).unwrap();
        assert_eq!(subject_alt_names(&der).unwrap(), Vec::<String>::new());
        // Cut short anywhere: unreadable, never a panic.
        for len in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
            let cut = &der[..len];
            let _ = subject_alt_names(cut);
        }
        assert_eq!(subject_alt_names(&der[..der.len() / 2]), None);
    }

    #[test]
    fn ip_addresses_are_spelled_as_go_spells_them() {
        assert_eq!(ip(&[10, 0, 0, 1]).unwrap(), "10.0.0.1");
        let mapped = std::net::Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().octets();
        assert_eq!(ip(&mapped).unwrap(), "192.0.2.1");
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip(&v6.octets()).unwrap(), "2001:db8::1");
        assert_eq!(ip(&[1, 2, 3]), None);
    }
}
