//! The toolkit's TLS choices that rustls takes through its crypto provider
//! and root store: cipher suites and curves by their Go names, and the
//! system's roots for client certificates; and the certificates of a PEM
//! file or inline PEM, which the server's and the client CAs' keys share.

use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The certificates of `file` (its key `file_key`), else of the inline PEM
/// (`inline_key`); `None` when neither is given. A file read is added to
/// `files`, which are watched for changes.
pub(super) fn pem_certificates(
    (file_key, file): (&str, Option<PathBuf>),
    (inline_key, inline): (&str, Option<String>),
    files: &mut Vec<PathBuf>,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    if let Some(path) = file {
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                format!(
                    "tls_server_config.{file_key}: cannot read a certificate from {}: {e}",
                    path.display()
                )
            })?;
        if certs.is_empty() {
            return Err(format!(
                "tls_server_config.{file_key}: no certificate in {}",
                path.display()
            ));
        }
        files.push(path);
        return Ok(Some(certs));
    }
    let Some(pem) = inline else { return Ok(None) };
    match CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if !certs.is_empty() => Ok(Some(certs)),
        Ok(_) => Err(format!("tls_server_config.{inline_key}: no PEM certificate in it")),
        Err(e) => Err(format!("tls_server_config.{inline_key}: no PEM certificate in it: {e}")),
    }
}

/// rustls's provider with the toolkit's `cipher_suites` and
/// `curve_preferences`, by their Go names, in the order given. As in Go,
/// `cipher_suites` chooses among the TLS 1.2 suites only: TLS 1.3's are
/// always offered, and naming them changes nothing.
pub(super) fn provider(
    suites: Option<Vec<String>>,
    curves: Option<Vec<String>>,
) -> Result<rustls::crypto::CryptoProvider, String> {
    use rustls::crypto::aws_lc_rs::{cipher_suite as cs, kx_group};
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(names) = suites.filter(|n| !n.is_empty()) {
        let tls13 = [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
        ];
        let mut chosen: Vec<rustls::SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        for name in names {
            let suite = match name.as_str() {
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                }
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
                    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
                }
                name if tls13.contains(&name) => continue,
                other => {
                    return Err(format!(
                        "tls_server_config.cipher_suites: {other:?} cannot be offered: rustls has only the ECDHE suites with AES-GCM or ChaCha20-Poly1305 (no CBC, no RSA key exchange)"
                    ))
                }
            };
            if !chosen.contains(&suite) {
                chosen.push(suite);
            }
        }
        provider.cipher_suites = chosen;
    }
    if let Some(names) = curves.filter(|n| !n.is_empty()) {
        let mut chosen: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for name in names {
            let group = match name.as_str() {
                "X25519" => kx_group::X25519,
                "CurveP256" => kx_group::SECP256R1,
                "CurveP384" => kx_group::SECP384R1,
                "X25519MLKEM768" => kx_group::X25519MLKEM768,
                "CurveP521" => {
                    return Err("tls_server_config.curve_preferences: CurveP521 cannot be offered: rustls does not implement it (use X25519, CurveP256 or CurveP384)".into())
                }
                other => return Err(format!("tls_server_config.curve_preferences: unknown curve {other:?}")),
            };
            if !chosen.iter().any(|g| g.name() == group.name()) {
                chosen.push(group);
            }
        }
        provider.kx_groups = chosen;
    }
    Ok(provider)
}

/// As Go's HTTP/2 server: TLS 1.2 suites chosen by name, with TLS 1.2
/// allowed, must include an ECDHE suite with AES-128-GCM, which HTTP/2
/// requires (RFC 7540, 9.2.2).
pub(super) fn check_http2_suites(provider: &rustls::crypto::CryptoProvider) -> Result<(), String> {
    use rustls::CipherSuite::{TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256};
    let required = [
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    if provider.cipher_suites.iter().any(|s| required.contains(&s.suite())) {
        return Ok(());
    }
    Err("tls_server_config.cipher_suites: HTTP/2 needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 among them while TLS 1.2 is allowed (as the toolkit); add one, set min_version: TLS13, or set http_server_config.http2: false".into())
}

/// The system's trusted roots, for client certificates verified without a
/// `client_ca_file`, as the toolkit (Go) does.
pub(super) fn system_roots() -> Result<rustls::RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _unusable) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        return Err(format!(
            "tls_server_config.client_ca_file: not given, and no system root certificate was found to verify clients with ({})",
            if why.is_empty() { "none installed".to_string() } else { why.join("; ") }
        ));
    }
    Ok(roots)
}
