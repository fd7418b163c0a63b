//! The web configuration's tests: every problem named, and what is cached.

use super::*;

fn load(yaml: &str) -> Result<WebConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    WebConfig::load(&path).map_err(|e| e.replace(&path.display().to_string(), "web.yml"))
}

#[test]
fn empty_file_means_plain_http_without_auth() {
    let config = load("").unwrap();
    assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty());
}

#[test]
fn basic_auth_checks_bcrypt_hashes() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = load(&format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    assert!(config.authenticate("prometheus", "s3cret"));
    assert!(!config.authenticate("prometheus", "wrong"));
    assert!(!config.authenticate("nobody", "s3cret"));
}

#[test]
fn unknown_users_are_checked_against_a_hash_of_the_highest_cost_up_to_10() {
    let (cheap, dear) = (bcrypt::hash("a", 4).unwrap(), bcrypt::hash("b", 6).unwrap());
    let config = load(&format!("basic_auth_users:\n  a: '{cheap}'\n  b: '{dear}'\n")).unwrap();
    let dummy: bcrypt::HashParts = config.dummy_hash.parse().unwrap();
    assert_eq!(dummy.get_cost(), 6);
    assert!(!config.authenticate("nobody", "a password no user has"));
    // A new load has a new secret, so cache keys differ between loads.
    let again = load(&format!("basic_auth_users:\n  a: '{cheap}'\n  b: '{dear}'\n")).unwrap();
    assert_ne!(config.cache_secret, again.cache_secret);
    assert_ne!(config.cache_key("a", "a"), again.cache_key("a", "a"));
}

#[tokio::test]
async fn successful_checks_are_cached_failures_are_not() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = Arc::new(load(&format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap());
    assert!(!config.clone().authorize("prometheus".into(), "wrong".into()).await);
    assert!(config.auth_cache.lock().unwrap().is_empty());
    assert!(config.clone().authorize("prometheus".into(), "s3cret".into()).await);
    let key = config.cache_key("prometheus", "s3cret");
    assert!(config.cached(&key));
    assert_ne!(key, config.cache_key("prometheu", "ss3cret"));
    // Bounded: old entries make way.
    for i in 0..AUTH_CACHE_SIZE + 10 {
        config.remember(config.cache_key(&format!("u{i}"), "p"));
    }
    assert_eq!(config.auth_cache.lock().unwrap().len(), AUTH_CACHE_SIZE);
    assert!(config.cached(&config.cache_key(&format!("u{}", AUTH_CACHE_SIZE + 9), "p")));
}

#[test]
fn problems_are_named() {
    let cases = [
        (
            "tls_server_config: {cert_file: a.pem}\nextra: 1\n",
            "web.yml: unknown field `extra`",
        ),
        (
            "basic_auth_users: {prometheus: plaintext}\n",
            "web.yml: basic_auth_users.prometheus: not a bcrypt hash",
        ),
        (
            "tls_server_config: {key_file: k.pem}\n",
            "web.yml: tls_server_config.cert_file: required",
        ),
        (
            "tls_server_config: {cert_file: missing.pem, key_file: k.pem}\n",
            "web.yml: tls_server_config.cert_file: cannot read a certificate from",
        ),
        (
            "http_server_config: {headers: {Server: x}}\n",
            "web.yml: http_server_config.headers.Server: not one of the headers",
        ),
    ];
    for (yaml, expected) in cases {
        let err = load(yaml).unwrap_err();
        assert!(err.starts_with(expected), "{yaml:?}: {err}");
    }
}

/// The server's certificate and the client CAs are read by one function:
/// an empty file is refused by name for both, not served as no certificate
/// or taken as a store of no roots.
#[test]
fn an_empty_certificate_file_is_refused_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let toolkit = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/exporter-toolkit");
    for (yaml, expected) in [
        (
            "tls_server_config: {cert_file: empty.pem, key_file: k.pem}\n".to_string(),
            "tls_server_config.cert_file: no certificate in ",
        ),
        (
            format!("tls_server_config: {{cert_file: {toolkit}/server.crt, key_file: {toolkit}/server.key, client_auth_type: RequireAndVerifyClientCert, client_ca_file: empty.pem}}\n"),
            "tls_server_config.client_ca_file: no certificate in ",
        ),
    ] {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, &yaml).unwrap();
        let err = WebConfig::load(&path).err().unwrap_or_default();
        assert!(err.contains(expected) && err.ends_with("empty.pem"), "{yaml}: {err}");
    }
}

#[test]
fn a_cost_18_hash_costs_nothing_at_load_and_unknown_users_pay_cost_10() {
    // User bob of the exporter-toolkit's web/testdata/web_config_users_noTLS.good.yml
    // (Apache-2.0, commit 19a7c2d): at cost 18 a check takes 20 s in release, minutes in a
    // debug build, so a load that checked or made a hash of that cost would
    // not end within this test's time.
    let slow = "$2y$18$4VeFDzXIoPHKnKTU3O3GH.N.vZu06CVqczYZ8WvfzrddFU6tGqjR.";
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load(&format!("basic_auth_users:\n  bob: '{slow}'\n")));
    });
    let config = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the load did not end within 10 s")
        .unwrap();
    let dummy: bcrypt::HashParts = config.dummy_hash.parse().unwrap();
    assert_eq!(dummy.get_cost(), 10);
    assert!(config
        .dummy_hash
        .starts_with("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_slow_hash_does_not_hold_back_another_user() {
    // Holding a's turn stands for a check of a that never ends, so the test
    // does not race bcrypt costs against each other (a race that a loaded
    // CI machine once lost).
    let (a_hash, b_hash) = (bcrypt::hash("a", 4).unwrap(), bcrypt::hash("b", 4).unwrap());
    let config = Arc::new(load(&format!("basic_auth_users:\n  a: '{a_hash}'\n  b: '{b_hash}'\n")).unwrap());
    let a_running = config.turns["a"].0.clone().acquire_owned().await.unwrap();
    let a = tokio::spawn(config.clone().authorize("a".into(), "a".into()));
    // Only a deadlock, a turn shared between users, could take this long.
    let within = std::time::Duration::from_secs(60);
    for _ in 0..3 {
        let b = tokio::time::timeout(within, config.clone().authorize("b".into(), "b".into()));
        assert_eq!(b.await, Ok(true), "b's check waited for a's");
        config.auth_cache.lock().unwrap().clear();
        let nobody = tokio::time::timeout(within, config.clone().authorize("nobody".into(), "x".into()));
        assert_eq!(nobody.await, Ok(false), "an unknown user's check waited for a's");
    }
    assert!(!a.is_finished(), "a's second check ran beside its first");
    drop(a_running);
    assert!(a.await.unwrap(), "a's check did not run once its turn was free");
}

/// Loads a config from tests/data/exporter-toolkit, where its relative
/// paths name the toolkit's certificates.
pub(super) fn load_with_toolkit_files(yaml: &str) -> Result<WebConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exporter-toolkit");
    for file in std::fs::read_dir(&fixtures).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), dir.path().join(file.file_name())).unwrap();
    }
    let path = dir.path().join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    WebConfig::load(&path).map_err(|e| e.replace(&path.display().to_string(), "web.yml"))
}

/// Each config, loaded beside the toolkit's files, is refused with an
/// error that starts with its expected text.
fn assert_refused(cases: &[(String, &str)]) {
    for (yaml, expected) in cases {
        let err = load_with_toolkit_files(yaml).err();
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with(expected)),
            "{yaml:?}: expected {expected:?}, got {err:?}"
        );
    }
}

pub(super) const SERVER: &str = "cert_file: server.crt\n  key_file: server.key\n";

#[test]
fn what_the_toolkit_refuses_is_refused_naming_the_key() {
    let cases = [
        (
            format!("tls_server_config:\n  {SERVER}  client_ca_file: tls-ca-chain.pem\n"),
            "web.yml: tls_server_config.client_ca_file: given without a client_auth_type that uses it",
        ),
        (
            format!("tls_server_config:\n  {SERVER}  client_auth_type: NoClientCert\n  client_ca_file: missing.pem\n"),
            "web.yml: tls_server_config.client_ca_file: given without a client_auth_type",
        ),
        (
            format!("tls_server_config:\n  {SERVER}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: missing.pem\n"),
            "web.yml: tls_server_config.client_ca_file: cannot read",
        ),
        (
            "http_server_config: {headers: {X-Content-Type-Options: sniff}}\n".to_string(),
            "web.yml: http_server_config.headers.X-Content-Type-Options: \"sniff\" is not one of nosniff",
        ),
        (
            "http_server_config: {headers: {X-Frame-Options: allow-from}}\n".to_string(),
            "web.yml: http_server_config.headers.X-Frame-Options: \"allow-from\" is not one of deny, sameorigin",
        ),
        (
            "http_server_config: {headers: {X-Frame-Options: DENY}}\n".to_string(),
            "web.yml: http_server_config.headers.X-Frame-Options: \"DENY\" is not one of",
        ),
    ];
    assert_refused(&cases);
}

#[test]
fn what_the_toolkit_accepts_is_accepted() {
    // Plain HTTP: no certificate, key or client authentication is given.
    for yaml in ["tls_server_config: {}\n", "tls_server_config: {min_version: TLS13}\n"] {
        let config = load_with_toolkit_files(yaml).unwrap();
        assert!(config.tls.is_none(), "{yaml:?}");
    }
    let headers = load_with_toolkit_files(
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    X-Frame-Options: sameorigin\n",
    )
    .unwrap();
    assert_eq!(headers.headers.len(), 2);
    let config = load_with_toolkit_files(&format!("tls_server_config:\n  {SERVER}")).unwrap();
    assert!(config.tls.is_some());
    // Clients verified against the system's roots without client_ca_file.
    for auth in ["VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] {
        let yaml = format!("tls_server_config:\n  {SERVER}  client_auth_type: {auth}\n");
        let config = load_with_toolkit_files(&yaml).unwrap_or_else(|e| panic!("{auth}: {e}"));
        assert!(config.tls.is_some(), "{auth}");
    }
}

#[test]
fn inline_cert_key_and_client_ca_are_used_as_the_files_would_be() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exporter-toolkit");
    let block = |file: &str| {
        let pem = std::fs::read_to_string(fixtures.join(file)).unwrap();
        pem.lines().map(|l| format!("    {l}\n")).collect::<String>()
    };
    let (cert, key, ca) = (block("server.crt"), block("server.key"), block("tls-ca-chain.pem"));
    let config = load_with_toolkit_files(&format!("tls_server_config:\n  cert: |\n{cert}  key: |\n{key}")).unwrap();
    assert!(config.tls.is_some());
    let yaml = format!(
        "tls_server_config:\n  cert: |\n{cert}  key: |\n{key}  client_auth_type: RequireAndVerifyClientCert\n  client_ca: |\n{ca}"
    );
    assert!(load_with_toolkit_files(&yaml).unwrap().tls.is_some());
    let cases = [
        (
            format!("tls_server_config:\n  cert: |\n{cert}  key: |\n{key}  client_ca: |\n{ca}"),
            "web.yml: tls_server_config.client_ca: given without a client_auth_type",
        ),
        (
            format!("tls_server_config:\n  cert: not pem\n  key: |\n{key}"),
            "web.yml: tls_server_config.cert: no PEM certificate",
        ),
        (
            format!("tls_server_config:\n  cert: |\n{cert}  key: ''\n"),
            "web.yml: tls_server_config.key_file: required (or key, inline)",
        ),
    ];
    assert_refused(&cases);
}

#[test]
fn cipher_suites_and_curves_by_their_go_names() {
    let yaml = format!(
        "tls_server_config:\n  {SERVER}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [CurveP384, X25519]\n  prefer_server_cipher_suites: false\n"
    );
    let config = load_with_toolkit_files(&yaml).unwrap();
    let tls = config.tls.unwrap();
    let tls12: Vec<String> = tls
        .crypto_provider()
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .map(|s| format!("{:?}", s.suite()))
        .collect();
    assert_eq!(
        tls12,
        [
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
    );
    // TLS 1.3's suites stay, as in Go.
    assert!(tls
        .crypto_provider()
        .cipher_suites
        .iter()
        .any(|s| s.version() == &rustls::version::TLS13));
    let curves: Vec<String> = tls
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| format!("{:?}", g.name()))
        .collect();
    assert_eq!(curves, ["secp384r1", "X25519"]);
    assert!(!tls.ignore_client_order);
    let cases = [
        (
            "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]",
            "tls_server_config.cipher_suites: \"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\" cannot be offered",
        ),
        (
            "curve_preferences: [CurveP521]",
            "tls_server_config.curve_preferences: CurveP521 cannot be offered",
        ),
        (
            "curve_preferences: [CurveP999]",
            "tls_server_config.curve_preferences: unknown curve \"CurveP999\"",
        ),
    ];
    for (key, expected) in cases {
        let err = load_with_toolkit_files(&format!("tls_server_config:\n  {SERVER}  {key}\n")).err();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with(&format!("web.yml: {expected}"))),
            "{key}: {err:?}"
        );
    }
}
