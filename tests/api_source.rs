//! The IAM API source against a real IAM API server (moto) on loopback: every
//! per-key metric matches what was seeded, counts are right, the output is
//! promtool-clean, and a failing server never loses the last good data.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use common::*;
use serde_json::Value;

fn considered<'a>(seeded: &'a Value, what: &str) -> Vec<&'a Value> {
    let excluded = |user: &str| user.starts_with("excluded-") || user == "ignored-by-tag";
    seeded[what]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !excluded(v.get("user").or(v.get("name")).unwrap().as_str().unwrap()))
        .collect()
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn every_seeded_key_and_count_is_exported() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), REALISTIC_CONFIG);
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()], &moto.aws_env());
    exporter.wait_ready();
    let text = exporter.scrape();
    let now = Utc::now().timestamp() as f64;
    let samples = parse_metrics(&text);
    let account = moto.seeded["account_id"].as_str().unwrap();
    let keys = considered(&moto.seeded, "keys");
    let users = considered(&moto.seeded, "users");
    assert!(users.len() >= 30, "the fixture seeds a realistic account");

    // Key by key. Positions are by creation date within a user.
    let mut by_user: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for key in &keys {
        by_user.entry(key["user"].as_str().unwrap()).or_default().push(key);
    }
    for (user, mut user_keys) in by_user {
        user_keys.sort_by_key(|k| k["created"].as_i64().unwrap());
        for (i, key) in user_keys.iter().enumerate() {
            let id = key["access_key_id"].as_str().unwrap();
            let position = (i + 1).to_string();
            let status = key["status"].as_str().unwrap();
            let labels = [
                ("account_id", account),
                ("user", user),
                ("key", position.as_str()),
                ("access_key_id", id),
                ("status", status),
            ];
            let created = key["created"].as_f64().unwrap();
            assert_eq!(
                value(&samples, "aws_iam_access_key_created_timestamp_seconds", &labels),
                created,
                "{id}"
            );
            let age = value(&samples, "aws_iam_access_key_age_seconds", &labels);
            assert!(
                (age - (now - created)).abs() < 5.0,
                "{id}: age {age}, expected {}",
                now - created
            );
            let unused = value(&samples, "aws_iam_access_key_unused_seconds", &labels);
            let last_used = find(&samples, "aws_iam_access_key_last_used_timestamp_seconds", &labels);
            match key["last_used"].as_f64() {
                Some(t) => {
                    assert_eq!(last_used.len(), 1, "{id} has a last-used time");
                    assert_eq!(last_used[0].value, t, "{id} last used");
                    assert!((unused - (now - t)).abs() < 5.0, "{id}: unused {unused}");
                    assert_eq!(value(&samples, "aws_iam_access_key_never_used", &labels), 0.0, "{id}");
                }
                None => {
                    assert!(last_used.is_empty(), "{id} was never used: no last-used series");
                    assert!((unused - (now - created)).abs() < 5.0, "{id}: unused {unused}");
                    assert_eq!(value(&samples, "aws_iam_access_key_never_used", &labels), 1.0, "{id}");
                }
            }
            let high_risk = if key["high_risk"].as_bool().unwrap() { 1.0 } else { 0.0 };
            assert_eq!(
                value(&samples, "aws_iam_access_key_high_risk", &labels),
                high_risk,
                "{id} high risk"
            );
            let mut info_labels = labels.to_vec();
            info_labels.push(("last_used_service", key["service"].as_str().unwrap()));
            info_labels.push(("last_used_region", key["region"].as_str().unwrap()));
            assert_eq!(
                value(&samples, "aws_iam_access_key_info", &info_labels),
                1.0,
                "{id} info"
            );
        }
    }
    for name in [
        "aws_iam_access_key_created_timestamp_seconds",
        "aws_iam_access_key_age_seconds",
        "aws_iam_access_key_high_risk",
        "aws_iam_access_key_info",
    ] {
        assert_eq!(
            find(&samples, name, &[]).len(),
            keys.len(),
            "{name}: one series per considered key"
        );
    }

    // Users, with their path and exported tags; excluded users are absent.
    assert_eq!(find(&samples, "aws_iam_user_info", &[]).len(), users.len());
    for user in &users {
        let tag = |k: &str| user["tags"].get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (owner, team) = (tag("owner"), tag("team"));
        let labels = [
            ("account_id", account),
            ("user", user["name"].as_str().unwrap()),
            ("path", user["path"].as_str().unwrap()),
            ("tag_owner", owner.as_str()),
            ("tag_team", team.as_str()),
        ];
        assert_eq!(value(&samples, "aws_iam_user_info", &labels), 1.0, "{user}");
    }

    // Account level.
    let acct = [("account_id", account)];
    assert_eq!(value(&samples, "aws_iam_users", &acct), users.len() as f64);
    let high_risk = keys.iter().filter(|k| k["high_risk"].as_bool().unwrap()).count();
    assert_eq!(
        value(&samples, "aws_iam_access_keys_high_risk", &acct),
        high_risk as f64
    );
    let mut active_per_user: BTreeMap<&str, usize> = BTreeMap::new();
    for key in keys.iter().filter(|k| k["status"] == "Active") {
        *active_per_user.entry(key["user"].as_str().unwrap()).or_default() += 1;
    }
    let multiple = active_per_user.values().filter(|n| **n >= 2).count();
    assert!(multiple >= 1, "the fixture seeds a user with two active keys");
    assert_eq!(
        value(&samples, "aws_iam_users_multiple_active_keys", &acct),
        multiple as f64
    );
    assert_eq!(value(&samples, "aws_iam_root_access_key_present", &acct), 1.0);
    let alias = moto.seeded["alias"].as_str().unwrap();
    assert_eq!(
        value(
            &samples,
            "aws_iam_account_info",
            &[("account_id", account), ("account_name", alias)]
        ),
        1.0
    );
    for status in ["Active", "Inactive"] {
        for bucket in ["0-30d", "30-90d", "90-180d", "180-365d", "365d+"] {
            let expected = keys
                .iter()
                .filter(|k| k["status"] == status && k["bucket"] == bucket)
                .count();
            let labels = [("account_id", account), ("status", status), ("age_bucket", bucket)];
            assert_eq!(
                value(&samples, "aws_iam_access_keys", &labels),
                expected as f64,
                "{status} {bucket}"
            );
        }
    }

    // Health and API accounting: one GetAccessKeyLastUsed per key, one
    // ListAccessKeys per user considered, the users, their tags and
    // policies in GetAccountAuthorizationDetails paged (moto_server.py pages
    // by 7 users), and no call per user for tags.
    assert_eq!(value(&samples, "aws_iam_exporter_account_up", &acct), 1.0);
    let calls = |op: &str| {
        value(
            &samples,
            "aws_iam_exporter_aws_requests_total",
            &[("service", "iam"), ("operation", op)],
        )
    };
    let all_users = moto.seeded["users"].as_array().unwrap().len();
    assert_eq!(calls("GetAccessKeyLastUsed"), keys.len() as f64);
    assert_eq!(calls("ListAccessKeys"), users.len() as f64);
    assert!(all_users > 7 * 2, "more than two pages of authorization details");
    assert_eq!(calls("GetAccountAuthorizationDetails"), all_users.div_ceil(7) as f64);
    for per_user in ["ListUserTags", "ListUsers"] {
        assert!(
            find(
                &samples,
                "aws_iam_exporter_aws_requests_total",
                &[("operation", per_user)]
            )
            .is_empty(),
            "{per_user} is not called"
        );
    }
    assert_eq!(
        value(
            &samples,
            "aws_iam_exporter_aws_requests_total",
            &[("service", "sts"), ("operation", "GetCallerIdentity")]
        ),
        1.0
    );
    assert!(find(&samples, "aws_iam_exporter_aws_request_errors_total", &[]).is_empty());
    assert_eq!(
        value(
            &samples,
            "aws_iam_exporter_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    let promtool = promtool_check_metrics(&text);
    assert_eq!(promtool, "", "promtool check metrics must print nothing");
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn failed_refresh_keeps_last_good_data_and_recovers() {
    let mut moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), REALISTIC_CONFIG);
    let exporter = Exporter::start(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--refresh.interval",
            "1s",
            "--aws.max-attempts",
            "1",
        ],
        &moto.aws_env(),
    );
    exporter.wait_ready();
    let account = moto.seeded["account_id"].as_str().unwrap().to_string();
    let acct = [("account_id", account.as_str())];
    let before = key_series(&exporter.scrape());
    assert_eq!(before.len(), considered(&moto.seeded, "keys").len());

    moto.command("stop");
    wait_for("the account to go down", Duration::from_secs(60), || {
        value(&parse_metrics(&exporter.scrape()), "aws_iam_exporter_account_up", &acct) == 0.0
    });
    let during = exporter.scrape();
    assert_eq!(
        key_series(&during),
        before,
        "the last good data stays while AWS is unreachable"
    );
    let samples = parse_metrics(&during);
    assert!(
        value(
            &samples,
            "aws_iam_exporter_refresh_errors_total",
            &[("account_id", &account), ("reason", "network")]
        ) >= 1.0
    );
    assert!(!find(
        &samples,
        "aws_iam_exporter_aws_request_errors_total",
        &[("code", "DispatchFailure")]
    )
    .is_empty());
    assert_eq!(promtool_check_metrics(&during), "");
    let logs = exporter.log_lines();
    let failure = logs
        .iter()
        .find(|l| l.contains("refresh failed"))
        .expect("the failure is logged");
    assert!(failure.contains("reason=network"), "{failure}");
    assert!(
        !logs.iter().any(|l| l.contains("testing")),
        "credentials never appear in logs"
    );

    // Back up, minus one key: the account recovers and the key disappears.
    let gone = considered(&moto.seeded, "keys")[0].clone();
    moto.command("start");
    moto.command(&format!(
        "delete-key {} {}",
        gone["user"].as_str().unwrap(),
        gone["access_key_id"].as_str().unwrap()
    ));
    wait_for("the account to recover", Duration::from_secs(60), || {
        let samples = parse_metrics(&exporter.scrape());
        value(&samples, "aws_iam_exporter_account_up", &acct) == 1.0
            && find(&samples, "aws_iam_access_key_created_timestamp_seconds", &[]).len() == before.len() - 1
    });
    let after = parse_metrics(&exporter.scrape());
    assert!(find(
        &after,
        "aws_iam_access_key_age_seconds",
        &[("access_key_id", gone["access_key_id"].as_str().unwrap())]
    )
    .is_empty());
    assert_eq!(
        exporter.terminate().code(),
        Some(0),
        "SIGTERM stops the exporter cleanly"
    );
}

/// Nothing read is nothing to serve: with AWS unreachable from the start
/// (moto stopped, its port closed) `/-/ready` is 503 and says why, while
/// `/-/healthy` is 200; once moto answers, the next refresh reads the
/// account and readiness turns 200.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn not_ready_until_an_account_was_read() {
    let mut moto = Moto::start();
    moto.command("stop");
    let exporter = Exporter::start(
        &["--refresh.interval", "1s", "--aws.max-attempts", "1"],
        &moto.aws_env(),
    );
    wait_for("the first failure", Duration::from_secs(60), || {
        get(&exporter.url("/-/ready")).1.contains("failed")
    });
    let (status, body) = get(&exporter.url("/-/ready"));
    assert_eq!(status, 503);
    assert!(
        body.starts_with("Not ready: no account has been read yet; the latest read failed: network error: "),
        "{body}"
    );
    assert_eq!(get(&exporter.url("/-/healthy")).0, 200, "liveness is not readiness");
    let (_, landing) = get(&exporter.url("/"));
    assert!(
        landing.contains("<dt>Ready</dt><dd>no: no account has been read yet"),
        "the landing page says what /-/ready says"
    );

    moto.command("start");
    exporter.wait_ready();
    assert_eq!(get(&exporter.url("/-/ready")), (200, "Ready\n".to_string()));
    let (_, landing) = get(&exporter.url("/"));
    assert!(landing.contains("<dt>Ready</dt><dd>yes</dd>"));
}
