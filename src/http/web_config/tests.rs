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
    // Cost 12 against cost 4: 256 times the work, so that "b answered while
    // a's check still ran" holds on a loaded machine too.
    let (slow, fast) = (bcrypt::hash("a", 12).unwrap(), bcrypt::hash("b", 4).unwrap());
    let config = Arc::new(load(&format!("basic_auth_users:\n  a: '{slow}'\n  b: '{fast}'\n")).unwrap());
    let a = tokio::spawn(config.clone().authorize("a".into(), "wrong".into()));
    // a holds its turn once its check has started.
    while config.turns["a"].0.available_permits() == 1 {
        tokio::task::yield_now().await;
    }
    for _ in 0..3 {
        assert!(config.clone().authorize("b".into(), "b".into()).await);
        config.auth_cache.lock().unwrap().clear();
        assert!(!config.clone().authorize("nobody".into(), "x".into()).await);
    }
    assert!(!a.is_finished(), "b's and unknown users' checks waited for a's");
    assert!(!a.await.unwrap());
}
