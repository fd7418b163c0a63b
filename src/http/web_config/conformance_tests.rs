//! The exporter-toolkit's own web tests, ported: the cases of
//! web/tls_config_test.go at commit 19a7c2d (TestYAMLFiles,
//! TestServerBehaviour, TestConfigReloading, TestUsers), each named as the
//! toolkit names it, on the toolkit's fixtures (tests/data/exporter-toolkit).
//! Where this exporter differs by a choice docs/deployment.md documents, the
//! case says so and checks what happens here instead.

use rustls::crypto::aws_lc_rs::{cipher_suite as cs, default_provider, kx_group};
use rustls::version::{TLS12, TLS13};

use super::handshake_tests::{client_with, connect, refused, Client};
use super::tests::load_with_toolkit_files;
use super::WebConfig;

pub(super) fn fixture(file: &str) -> Result<WebConfig, String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/exporter-toolkit")
        .join(file);
    load_with_toolkit_files(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}")))
}

/// TestYAMLFiles, and the cases of the other tests that the load decides:
/// (toolkit case, fixture, `None` if accepted or the start of the error).
#[test]
fn the_toolkits_config_files_are_accepted_or_refused_as_there() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("empty config yml", "web_config_empty.yml", None),
        (
            "invalid config yml (invalid structure)",
            "web_config_junk.yml",
            Some("invalid type"),
        ),
        (
            "invalid config yml (invalid key)",
            "web_config_junk_key.yml",
            Some("tls_server_config: unknown field `cert_filse`"),
        ),
        (
            "invalid config yml (cert path empty)",
            "web_config_noAuth_certPath_empty.bad.yml",
            Some("tls_server_config.cert_file: required"),
        ),
        (
            "invalid config yml (cert empty)",
            "web_config_noAuth_cert_empty.bad.yml",
            Some("tls_server_config.cert_file: required"),
        ),
        (
            "invalid config yml (key path empty)",
            "web_config_noAuth_keyPath_empty.bad.yml",
            Some("tls_server_config.key_file: required"),
        ),
        (
            "invalid config yml (key empty)",
            "web_config_noAuth_key_empty.bad.yml",
            Some("tls_server_config.key_file: required"),
        ),
        (
            "invalid config yml (cert path and key path empty)",
            "web_config_noAuth_certPath_keyPath_empty.bad.yml",
            Some("tls_server_config.cert_file: required"),
        ),
        (
            "invalid config yml (cert path invalid)",
            "web_config_noAuth_certPath_invalid.bad.yml",
            Some("tls_server_config.cert_file: cannot read"),
        ),
        (
            "invalid config yml (key path invalid)",
            "web_config_noAuth_keyPath_invalid.bad.yml",
            Some("tls_server_config.cert_file: cannot read"),
        ),
        (
            "invalid config yml (cert path and key path invalid)",
            "web_config_noAuth_certPath_keyPath_invalid.bad.yml",
            Some("tls_server_config.cert_file: cannot read"),
        ),
        (
            "invalid config yml (invalid ClientAuth)",
            "web_config_noAuth.bad.yml",
            Some("tls_server_config.client_ca_file: given without a client_auth_type"),
        ),
        (
            "invalid config yml (invalid ClientCAs filepath)",
            "web_config_auth_clientCAs_invalid.bad.yml",
            Some("tls_server_config.client_ca_file: given without a client_auth_type"),
        ),
        (
            "invalid config yml (invalid user list)",
            "web_config_auth_user_list_invalid.bad.yml",
            Some("basic_auth_users.john: not a bcrypt hash"),
        ),
        (
            "invalid config yml (bad cipher)",
            "web_config_noAuth_inventedCiphers.bad.yml",
            Some("tls_server_config.cipher_suites: \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048\" cannot be offered"),
        ),
        (
            "invalid config yml (bad curves)",
            "web_config_noAuth_inventedCurves.bad.yml",
            Some("tls_server_config.curve_preferences: unknown curve \"CurveP257\""),
        ),
        (
            "invalid config yml (bad TLS version)",
            "web_config_noAuth_wrongTLSVersion.bad.yml",
            Some("tls_server_config: min_version Some(\"TLS111\")"),
        ),
        // TestServerBehaviour.
        (
            "valid tls config yml with non-http2 ciphers but http2 enabled",
            "web_config_noAuth_noHTTP2Cipher.bad.yml",
            Some("tls_server_config.cipher_suites: HTTP/2 needs"),
        ),
        ("valid headers config", "web_config_headers.good.yml", None),
        (
            "invalid X-Content-Type-Options headers config",
            "web_config_headers_content_type_options.bad.yml",
            Some("http_server_config.headers.X-Content-Type-Options: \"sniff\""),
        ),
        (
            "invalid X-Frame-Options headers config",
            "web_config_headers_frame_options.bad.yml",
            Some("http_server_config.headers.X-Frame-Options: \"foo\""),
        ),
        (
            "HTTP header that can not be overridden",
            "web_config_headers_extra_header.bad.yml",
            Some("http_server_config.headers.Content-Type: not one of the headers"),
        ),
        // Accepted by the toolkit, refused here because rustls has no CBC
        // suites and no P-521 (docs/deployment.md, the table of keys).
        (
            "valid tls config yml with all ciphers",
            "web_config_noAuth_allCiphers.good.yml",
            Some("tls_server_config.cipher_suites: \"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\" cannot be offered"),
        ),
        (
            "valid tls config yml with all curves",
            "web_config_noAuth_allCurves.good.yml",
            Some("tls_server_config.curve_preferences: CurveP521 cannot be offered"),
        ),
        (
            "valid tls config yml with some curves / no common curves",
            "web_config_noAuth_someCurves.good.yml",
            Some("tls_server_config.curve_preferences: CurveP521 cannot be offered"),
        ),
    ];
    let mut wrong = Vec::new();
    for (toolkit, file, expected) in cases {
        let got = fixture(file).map(|_| ());
        let agrees = match (expected, &got) {
            (None, Ok(())) => true,
            (Some(start), Err(e)) => e.starts_with(&format!("web.yml: {start}")),
            _ => false,
        };
        if !agrees {
            wrong.push(format!("{toolkit} ({file}): expected {expected:?}, got {got:?}"));
        }
    }
    // "path to config yml invalid"
    let missing = WebConfig::load(std::path::Path::new("somefile"))
        .err()
        .unwrap_or_default();
    if !missing.starts_with("somefile: cannot read") {
        wrong.push(format!("path to config yml invalid: {missing}"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn provider_with(suites: &[rustls::SupportedCipherSuite]) -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        cipher_suites: suites.to_vec(),
        ..default_provider()
    }
}

fn anonymous() -> rustls::ClientConfig {
    client_with(default_provider(), rustls::DEFAULT_VERSIONS, Client::Anonymous)
}

/// TestServerBehaviour's handshakes, with the toolkit's client (its CA,
/// and the cipher suites or certificate the case gives it).
#[test]
fn the_toolkits_handshakes_succeed_or_fail_as_there() {
    let ok = |file: &str, client: rustls::ClientConfig| {
        connect(&fixture(file).unwrap(), client).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    // "valid tls config yml and tls client"; the inline one.
    ok("web_config_noAuth.good.yml", anonymous());
    ok("web_config_noAuth_tlsInline.good.yml", anonymous());
    let tls12 =
        |suites: &[rustls::SupportedCipherSuite]| client_with(provider_with(suites), &[&TLS12], Client::Anonymous);
    // "valid tls config yml with some ciphers"
    let rsa128 = cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;
    let rsa256 = cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384;
    let server = ok("web_config_noAuth_someCiphers.good.yml", tls12(&[rsa128]));
    assert_eq!(server.negotiated_cipher_suite(), Some(rsa128));
    // "... with no common cipher": the toolkit's client offers a CBC suite,
    // which rustls has not; one outside the server's list stands for it.
    let chacha = cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256;
    refused(
        connect(
            &fixture("web_config_noAuth_someCiphers.good.yml").unwrap(),
            tls12(&[chacha]),
        ),
        "NoCipherSuitesInCommon",
    );
    // "... with multiple client ciphers": the server's order wins.
    let server = ok("web_config_noAuth_someCiphers.good.yml", tls12(&[rsa256, rsa128]));
    assert_eq!(server.negotiated_cipher_suite(), Some(rsa128));
    // "... multiple client ciphers, client chooses cipher": the server lists
    // 256 first but prefer_server_cipher_suites is false.
    let server = ok(
        "web_config_noAuth_someCiphers_noOrder.good.yml",
        tls12(&[rsa128, rsa256]),
    );
    assert_eq!(server.negotiated_cipher_suite(), Some(rsa128));
    // "valid tls config yml with non-http2 ciphers": HTTP/1.1 by ALPN.
    let mut client = tls12(&[rsa256]);
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server = ok("web_config_noAuth_noHTTP2.good.yml", client);
    assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
    // "valid tls config yml and tls client with RequireAnyClientCert
    // (present certificate)", and its key-inline variant.
    let self_signed = || {
        let client = Client::Cert("client_selfsigned.pem", "client_selfsigned.key");
        client_with(default_provider(), rustls::DEFAULT_VERSIONS, client)
    };
    ok("tls_config_noAuth.requireanyclientcert.good.yml", self_signed());
    ok(
        "tls_config_noAuth.requireanyclientcertkeyinline.good.yml",
        self_signed(),
    );
    // "... RequireAndVerifyClientCert (present certificate)" and "...
    // VerifyPeerCertificate (present good SAN DNS entry)": the toolkit takes
    // a self-signed client certificate that is its own CA; rustls refuses
    // it, as docs/deployment.md documents (issue one with CA:FALSE).
    let verify = fixture("tls_config_noAuth.requireandverifyclientcert.good.yml").unwrap();
    refused(connect(&verify, self_signed()), "CaUsedAsEndEntity");
    let test3 = || {
        let client = Client::Cert("client2_selfsigned.pem", "client2_selfsigned.key");
        client_with(default_provider(), rustls::DEFAULT_VERSIONS, client)
    };
    refused(
        connect(&fixture("web_config_auth_client_san.good.yaml").unwrap(), test3()),
        "CaUsedAsEndEntity",
    );
    // "... (present invalid SAN DNS entries)": refused there and here.
    refused(
        connect(&fixture("web_config_auth_client_san.bad.yaml").unwrap(), test3()),
        "",
    );
    // TestConfigReloading's two files: the blocking one refuses a client
    // without a certificate, the good one takes it.
    refused(
        connect(&fixture("web_config_noAuth.good.blocking.yml").unwrap(), anonymous()),
        "peer sent no certificates",
    );
    ok("web_config_noAuth.good.yml", anonymous());
    // "valid tls config yml with no common curves": its fixture names P-521,
    // refused here at load; the same case with P-384 for the server's only
    // curve and X25519 for the client's.
    let tls13_p384 = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n  curve_preferences: [CurveP384]\n";
    let x25519 = rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::X25519],
        ..default_provider()
    };
    let client = client_with(x25519, &[&TLS13], Client::Anonymous);
    refused(
        connect(&load_with_toolkit_files(tls13_p384).unwrap(), client),
        "NoKxGroupsInCommon",
    );
}

/// A ClientHello record as a TLS 1.1 client writes it: `legacy_version`
/// is the highest version offered and there is no supported_versions
/// extension (rustls cannot be such a client). `signature_algorithms`
/// came with TLS 1.2; with it, the hello differs from a TLS 1.2 client's
/// only in `version`.
fn client_hello(version: [u8; 2], signature_algorithms: bool) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
                  // ECDHE_RSA_WITH_AES_128_CBC_SHA (TLS 1.0 on), ..._AES_128_GCM_SHA256 (1.2)
    body.extend([0, 4, 0xc0, 0x13, 0xc0, 0x2f]);
    body.extend([1, 0]); // the null compression only
    let mut extensions = vec![0, 0x0a, 0, 4, 0, 2, 0, 0x1d]; // groups: X25519
    extensions.extend([0, 0x0b, 0, 2, 1, 0]); // EC points: uncompressed
    if signature_algorithms {
        // rsa_pss_rsae_sha256, rsa_pkcs1_sha256: server.crt is RSA.
        extensions.extend([0, 0x0d, 0, 6, 0, 4, 0x08, 0x04, 0x04, 0x01]);
    }
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![1]; // client_hello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 3, 1];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// The server of `web` given `hello`: its error if it refuses it, and
/// what it sends back.
fn answer(web: &WebConfig, hello: &[u8]) -> (Result<(), rustls::Error>, Vec<u8>) {
    let mut server = rustls::ServerConnection::new(web.tls.clone().unwrap()).unwrap();
    let mut unread = hello;
    let mut result = Ok(());
    while !unread.is_empty() && result.is_ok() {
        server.read_tls(&mut unread).unwrap();
        result = server.process_new_packets().map(|_| ());
    }
    let mut sent = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut sent).unwrap();
    }
    (result, sent)
}

/// TestServerBehaviour's "valid tls config yml with TLS 1.1 client": the
/// server (TLS 1.2 at least, the toolkit's default and this one's) refuses
/// it with a protocol_version alert, as Go's "protocol version not
/// supported".
#[test]
fn the_toolkits_tls11_client_is_refused() {
    use rustls::{AlertDescription, Error, PeerIncompatible};
    let web = fixture("web_config_noAuth.good.yml").unwrap();
    let fatal = |alert: AlertDescription| [2, u8::from(alert)];
    let (refused, sent) = answer(&web, &client_hello([3, 2], true));
    assert_eq!(refused, Err(Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered)));
    assert_eq!(
        (sent[0], &sent[5..]),
        (0x15, &fatal(AlertDescription::ProtocolVersion)[..])
    );
    // The same bytes saying TLS 1.2 are answered with a ServerHello, so it
    // is the version alone that the server refuses.
    let (accepted, sent) = answer(&web, &client_hello([3, 3], true));
    assert_eq!(accepted, Ok(()));
    assert_eq!((sent[0], sent[5]), (0x16, 2));
    // Go's TLS 1.1 client sends no signature_algorithms: rustls refuses it
    // for that before it looks at the version; refused still.
    let (refused, sent) = answer(&web, &client_hello([3, 2], false));
    let required = PeerIncompatible::SignatureAlgorithmsExtensionRequired;
    assert_eq!(refused, Err(Error::PeerIncompatible(required)));
    assert_eq!(&sent[5..], &fatal(AlertDescription::HandshakeFailure)[..]);
}

/// TestServerBehaviour's rate limiter cases: no limit at interval 0, and
/// with burst 0 the first request is already refused (429 there and here).
#[test]
fn the_toolkits_rate_limits() {
    assert!(fixture("web_config_rate_limiter_nonblocking.yaml")
        .unwrap()
        .rate_limit
        .is_none());
    let limit = fixture("web_config_rate_limiter_one_second.yaml")
        .unwrap()
        .rate_limit
        .unwrap();
    assert!(!limit.allow());
}

/// TestUsers, on web_config_users_noTLS.good.yml and web_config_users.good.yml.
#[test]
fn the_toolkits_users() {
    for file in ["web_config_users_noTLS.good.yml", "web_config_users.good.yml"] {
        let config = fixture(file).unwrap();
        assert_eq!(config.tls.is_some(), file == "web_config_users.good.yml");
        // "without basic auth": credentials are required.
        assert!(!config.users.is_empty(), "{file}");
        // "with correct basic auth", "with another correct basic auth".
        assert!(config.authenticate("dave", "dave123"), "{file}");
        if file == "web_config_users.good.yml" {
            assert!(config.authenticate("carol", "carol123"));
            // "with bad password", "with bad username".
            assert!(!config.authenticate("dave", "bad"));
            assert!(!config.authenticate("nonexistent", "nonexistent"));
        }
    }
}
