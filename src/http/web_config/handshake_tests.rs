//! Real TLS handshakes, in memory, between a rustls client and the server
//! configuration a web config makes: client certificates asked for,
//! required, verified or matched against `client_allowed_sans`, and the
//! protocols offered by ALPN. Certificates are the exporter-toolkit's.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::tests::{load_with_toolkit_files, SERVER};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/exporter-toolkit")
        .join(name)
}

fn chain(name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(fixture(name))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How the client authenticates: not at all, with a certificate and its
/// key, or with a certificate and another key (so its signature is false).
pub(super) enum Client {
    Anonymous,
    Cert(&'static str, &'static str),
    WrongKey(&'static str, &'static str),
}

/// Presents a fixed certificate and key, whether or not they match.
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn client_config(client: Client, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let versions = rustls::DEFAULT_VERSIONS;
    let mut config = client_with(rustls::crypto::aws_lc_rs::default_provider(), versions, client);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A client of `provider`'s suites and groups and of `versions`, trusting
/// the toolkit's CA.
pub(super) fn client_with(
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Client,
) -> rustls::ClientConfig {
    let provider = Arc::new(provider);
    let mut roots = rustls::RootCertStore::empty();
    for ca in chain("tls-ca-chain.pem") {
        roots.add(ca).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match client {
        Client::Anonymous => builder.with_no_client_auth(),
        Client::Cert(cert, key) => builder
            .with_client_auth_cert(chain(cert), PrivateKeyDer::from_pem_file(fixture(key)).unwrap())
            .unwrap(),
        Client::WrongKey(cert, key) => {
            let key = provider
                .key_provider
                .load_private_key(PrivateKeyDer::from_pem_file(fixture(key)).unwrap())
                .unwrap();
            let certified = rustls::sign::CertifiedKey::new(chain(cert), key);
            builder.with_client_cert_resolver(Arc::new(Fixed(Arc::new(certified))))
        }
    }
}

/// Runs the handshake to its end: the protocol ALPN chose, or the side
/// that failed and why.
fn handshake(web_yaml: &str, client: Client, alpn: &[&[u8]]) -> Result<Option<String>, String> {
    let web = load_with_toolkit_files(web_yaml).unwrap_or_else(|e| panic!("{web_yaml}: {e}"));
    let server = connect(&web, client_config(client, alpn))?;
    Ok(server.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()))
}

/// Runs a handshake between `client` and the TLS configuration of `web`:
/// the server's side once both are done, or the side that failed and why.
pub(super) fn connect(
    web: &super::WebConfig,
    client: rustls::ClientConfig,
) -> Result<rustls::ServerConnection, String> {
    let mut server = rustls::ServerConnection::new(web.tls.clone().expect("a TLS config")).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    for _ in 0..10 {
        deliver(&mut client, &mut server).map_err(|e| format!("server: {e}"))?;
        deliver(&mut server, &mut client).map_err(|e| format!("client: {e}"))?;
        if !server.is_handshaking() && !client.is_handshaking() {
            return Ok(server);
        }
    }
    panic!("the handshake did not end in 10 rounds");
}

/// What `from` has to send, read and processed by `to`; `to`'s error if
/// it refuses it.
fn deliver<A, B>(
    from: &mut rustls::ConnectionCommon<A>,
    to: &mut rustls::ConnectionCommon<B>,
) -> Result<(), rustls::Error> {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    let mut unread = &bytes[..];
    while !unread.is_empty() {
        to.read_tls(&mut unread).unwrap();
        to.process_new_packets()?;
    }
    Ok(())
}

fn tls(extra: &str) -> String {
    format!("tls_server_config:\n  {SERVER}{extra}")
}

/// Expects the server to refuse the handshake with a message containing `why`.
pub(super) fn refused<T>(result: Result<T, String>, why: &str) {
    match result {
        Err(e) => assert!(e.starts_with("server: ") && e.contains(why), "{e}"),
        Ok(_) => panic!("the handshake succeeded; expected the server to refuse it ({why})"),
    }
}

// The toolkit's self-signed client certificate is its own CA: nothing
// verifies it against tls-ca-chain.pem, so it tells whether a type verifies.
const SELF_SIGNED: Client = Client::Cert("client_selfsigned.pem", "client_selfsigned.key");

#[test]
fn request_client_cert_asks_for_a_certificate_but_takes_none_or_any() {
    let yaml = tls("  client_auth_type: RequestClientCert\n");
    assert!(handshake(&yaml, Client::Anonymous, &[]).is_ok());
    assert!(handshake(&yaml, SELF_SIGNED, &[]).is_ok());
    // A certificate whose key the client does not hold is still refused.
    let forged = Client::WrongKey("client_selfsigned.pem", "client2_selfsigned.key");
    refused(handshake(&yaml, forged, &[]), "BadSignature");
}

#[test]
fn require_any_client_cert_requires_a_certificate_without_verifying_it() {
    // A client_ca_file (as in older versions of the toolkit's fixture
    // tls_config_noAuth.requireanyclientcert.good.yml) is read but not used.
    let yaml = tls("  client_auth_type: RequireAnyClientCert\n  client_ca_file: tls-ca-chain.pem\n");
    refused(handshake(&yaml, Client::Anonymous, &[]), "peer sent no certificates");
    assert!(handshake(&yaml, SELF_SIGNED, &[]).is_ok());
    let forged = Client::WrongKey("client_selfsigned.pem", "client2_selfsigned.key");
    refused(handshake(&yaml, forged, &[]), "BadSignature");
    // The old name, which the toolkit still takes.
    let old = tls("  client_auth_type: RequireClientCert\n");
    assert!(handshake(&old, SELF_SIGNED, &[]).is_ok());
    // Against that, the verifying type refuses the self-signed certificate.
    let verify = tls("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: tls-ca-chain.pem\n");
    refused(handshake(&verify, SELF_SIGNED, &[]), "CaUsedAsEndEntity");
    // And a missing CA file is an error at load, as in the toolkit.
    let missing = tls("  client_auth_type: RequireAnyClientCert\n  client_ca_file: missing.pem\n");
    let err = load_with_toolkit_files(&missing).err().unwrap_or_default();
    assert!(
        err.starts_with("web.yml: tls_server_config.client_ca_file: cannot read"),
        "{err}"
    );
}

/// server.crt is also a client certificate (clientAuth), issued by the CA of
/// tls-ca-chain.pem, naming DNS:localhost, IP:127.0.0.1 and IP:127.0.0.0.
const VERIFIED: Client = Client::Cert("server.crt", "server.key");

#[test]
fn client_allowed_sans_takes_a_verified_certificate_only_if_it_names_one_of_them() {
    let verify = |sans: &str| {
        tls(&format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: tls-ca-chain.pem\n  client_allowed_sans: {sans}\n"
        ))
    };
    assert!(handshake(&verify("[one, localhost]"), VERIFIED, &[]).is_ok());
    assert!(handshake(&verify("['127.0.0.0']"), VERIFIED, &[]).is_ok());
    refused(
        handshake(&verify("[bad, 'localhost.']"), VERIFIED, &[]),
        r#"names none of client_allowed_sans; it names [\"localhost\", \"127.0.0.1\", \"127.0.0.0\"]"#,
    );
    refused(
        handshake(&verify("[]"), VERIFIED, &[]),
        "names none of client_allowed_sans",
    );
    // Not issued by the CA: refused before the names are looked at.
    refused(handshake(&verify("[localhost]"), SELF_SIGNED, &[]), "CaUsedAsEndEntity");
    // A client without a certificate has no name to match, whatever the type.
    let if_given = tls(
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: tls-ca-chain.pem\n  client_allowed_sans: [localhost]\n",
    );
    refused(
        handshake(&if_given, Client::Anonymous, &[]),
        "peer sent no certificates",
    );
    assert!(handshake(&if_given, VERIFIED, &[]).is_ok());
    // Unverified types match the names too; the self-signed one has none.
    let any = tls("  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: ['127.0.0.1']\n");
    assert!(handshake(&any, VERIFIED, &[]).is_ok());
    refused(handshake(&any, SELF_SIGNED, &[]), "it names []");
    // Without a type that asks for a certificate, the names would be ignored.
    let err = load_with_toolkit_files(&tls("  client_allowed_sans: [localhost]\n")).err();
    assert!(
        err.as_deref().is_some_and(|e| e
            .starts_with("web.yml: tls_server_config.client_allowed_sans: given with client_auth_type NoClientCert")),
        "{err:?}"
    );
}

#[test]
fn http2_false_leaves_h2_out_of_alpn() {
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    assert_eq!(handshake(&tls(""), Client::Anonymous, both), Ok(Some("h2".into())));
    let http1 = format!("{}http_server_config:\n  http2: false\n", tls(""));
    assert!(load_with_toolkit_files(&http1).unwrap().http1_only);
    assert_eq!(handshake(&http1, Client::Anonymous, both), Ok(Some("http/1.1".into())));
    // A client that speaks only h2 finds no protocol in common.
    refused(
        handshake(&http1, Client::Anonymous, &[b"h2"]),
        "peer doesn't support any known protocol",
    );
    let explicit = format!("{}http_server_config:\n  http2: true\n", tls(""));
    assert!(!load_with_toolkit_files(&explicit).unwrap().http1_only);
    assert!(!load_with_toolkit_files("").unwrap().http1_only);
}
