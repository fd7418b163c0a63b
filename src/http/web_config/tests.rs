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
fn unknown_users_are_checked_against_a_hash_of_the_same_cost() {
    let (cheap, dear) = (bcrypt::hash("a", 4).unwrap(), bcrypt::hash("b", 6).unwrap());
    let config = load(&format!("basic_auth_users:\n  a: '{cheap}'\n  b: '{dear}'\n")).unwrap();
    let dummy: bcrypt::HashParts = config.dummy_hash.parse().unwrap();
    assert_eq!(dummy.get_cost(), 6);
    assert!(!config.authenticate("nobody", "a password no user has"));
    // A new load has a new salt, so cache keys differ between loads.
    let again = load(&format!("basic_auth_users:\n  a: '{cheap}'\n  b: '{dear}'\n")).unwrap();
    assert_ne!(config.dummy_hash, again.dummy_hash);
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
            "tls_server_config: {cert_file: c.pem, key_file: k.pem, cipher_suites: [x]}\n",
            "web.yml: tls_server_config.cipher_suites: not supported",
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
