//! IAM's throttle, as a large account meets it: the proxy of
//! `tests/moto_server.py` lets through N calls a second (a token bucket of N,
//! refilled at N a second, every caller drawing from it) and answers IAM's
//! own `Throttling` error above that. A throttled call is not a failed
//! refresh: it is waited out until the account's refresh deadline, and only
//! then does the read fail, as `throttled`, keeping the last good data.
//!
//! Numbers: 60 users of one key each at 5 calls/s, about 130 calls (a
//! `ListAccessKeys` and a `GetAccessKeyLastUsed` a user, `ListUsers` in
//! pages of 7), so about 26 s the rate allows; the 300 users take
//! 130 s and are the benchmark's (`scripts/bench_throttle.py`).

mod common;

use std::time::{Duration, Instant};

use common::*;

const ACCOUNT: &str = "123456789012";

fn metric(exporter: &Exporter, name: &str, labels: &[(&str, &str)]) -> f64 {
    find(&parse_metrics(&exporter.scrape()), name, labels)
        .first()
        .map_or(0.0, |s| s.value)
}

fn up(exporter: &Exporter) -> f64 {
    metric(exporter, "aws_iam_exporter_account_up", &[("account_id", ACCOUNT)])
}

fn errors(exporter: &Exporter, reason: &str) -> f64 {
    errors_of(exporter, ACCOUNT, reason)
}

fn errors_of(exporter: &Exporter, account_id: &str, reason: &str) -> f64 {
    metric(
        exporter,
        "aws_iam_exporter_refresh_errors_total",
        &[("account_id", account_id), ("reason", reason)],
    )
}

/// The users whose key's age is exported, once per key.
fn key_users(text: &str) -> Vec<String> {
    let mut users: Vec<String> = find(&parse_metrics(text), "aws_iam_access_key_age_seconds", &[])
        .iter()
        .map(|s| s.labels["user"].clone())
        .collect();
    users.sort();
    users
}

fn seeded_key_users(moto: &Moto) -> Vec<String> {
    let mut users: Vec<String> = moto.seeded["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["user"].as_str().unwrap().to_string())
        .collect();
    users.sort();
    users
}

/// At 5 calls/s the first refresh completes with every key and no failed
/// refresh, although AWS throttled some of its calls: more than
/// `aws.max_attempts` (2 here) in a row for some of them.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn a_tight_rate_is_waited_out_and_the_refresh_completes() {
    let mut moto = Moto::start_with(&["--scenario", "many", "--users", "60"]);
    moto.command("fault rate 5");
    let started = Instant::now();
    let exporter = Exporter::start(
        &["--aws.max-attempts", "2", "--aws.refresh-timeout", "120s"],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready_at("/-/healthy");
    wait_for("the first refresh", Duration::from_secs(150), || {
        up(&exporter) == 1.0 || errors(&exporter, "throttled") > 0.0
    });
    let took = started.elapsed();
    let text = exporter.scrape();
    let stats = moto.command("stats")["ok"].clone();
    assert_eq!(up(&exporter), 1.0, "the refresh completes; proxy: {stats}");
    assert_eq!(errors(&exporter, "throttled"), 0.0);
    assert_eq!(key_users(&text), seeded_key_users(&moto), "every key is there");
    let throttled = stats["throttled"].as_u64().unwrap();
    assert!(throttled > 0, "the rate was exercised: {stats}");
    let throttled_seen = find(
        &parse_metrics(&text),
        "aws_iam_exporter_aws_request_errors_total",
        &[("code", "Throttling")],
    )
    .iter()
    .map(|s| s.value)
    .sum::<f64>();
    assert_eq!(throttled_seen, throttled as f64);
    assert_eq!(
        metric(
            &exporter,
            "aws_iam_exporter_aws_throttled_requests_total",
            &[("account_id", ACCOUNT)]
        ),
        throttled as f64,
        "counted for the account"
    );
    // Throttled, the exporter lowered its own rate, and says so.
    let allowed = metric(
        &exporter,
        "aws_iam_exporter_aws_allowed_requests_per_second",
        &[("account_id", ACCOUNT)],
    );
    assert!(
        allowed.is_finite() && allowed < 20.0,
        "allowed itself {allowed} calls/s"
    );
    eprintln!("60 users at 5 calls/s: {took:?}, {throttled} throttled answers, {allowed:.1} calls/s allowed at the end; proxy: {stats}");
}

/// A cap is kept even when AWS would allow more: 20 users (about 45 calls)
/// at 5 calls a second take at least 8 s, and the gauge says 5.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn max_requests_per_second_caps_the_rate_without_throttling() {
    let mut moto = Moto::start_with(&["--scenario", "many", "--users", "20"]);
    let exporter = Exporter::start(&["--aws.max-requests-per-second", "5"], &moto.aws_env_via_proxy());
    exporter.wait_ready();
    let stats = moto.command("stats")["ok"].clone();
    assert_eq!(stats["throttled"].as_u64(), Some(0), "{stats}");
    let allowed = metric(
        &exporter,
        "aws_iam_exporter_aws_allowed_requests_per_second",
        &[("account_id", ACCOUNT)],
    );
    assert_eq!(allowed, 5.0);
    let duration = metric(
        &exporter,
        "aws_iam_exporter_account_refresh_duration_seconds",
        &[("account_id", ACCOUNT)],
    );
    // 43 spaced calls at 5 a second (ListAccountAliases, GetAccountSummary,
    // one page of GetAccountAuthorizationDetails, a ListAccessKeys and a
    // GetAccessKeyLastUsed a user): the first starts at once, the last
    // 42 / 5 s later. Only the per-user calls were spaced before: 7.8 s.
    assert!(duration >= 8.35, "read in {duration} s");
}

/// A read that the rate cannot let finish within its deadline fails as
/// `throttled`, and the last good data stays.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn past_the_deadline_the_read_fails_as_throttled_and_keeps_the_data() {
    let mut moto = Moto::start_with(&["--scenario", "many", "--users", "20"]);
    let exporter = Exporter::start(
        &[
            "--refresh.interval",
            "1s",
            "--aws.refresh-timeout",
            "4s",
            "--aws.max-attempts",
            "2",
        ],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready();
    wait_for("the first refresh", Duration::from_secs(30), || up(&exporter) == 1.0);
    let before = key_series(&exporter.scrape());
    assert!(!before.is_empty());

    // 1 call a second for about 45 calls: not within 4 s.
    moto.command("fault rate 1");
    wait_for("the read to fail as throttled", Duration::from_secs(60), || {
        errors(&exporter, "throttled") >= 1.0
    });
    assert_eq!(up(&exporter), 0.0);
    assert_eq!(
        errors(&exporter, "timeout"),
        0.0,
        "throttling is the reason, not the network"
    );
    assert_eq!(key_series(&exporter.scrape()), before, "the last good data stays");

    moto.command("fault rate 0");
    wait_for("recovery", Duration::from_secs(60), || up(&exporter) == 1.0);
    assert_eq!(key_series(&exporter.scrape()), before);
}

/// `GenerateCredentialReport` answering `LimitExceeded` (as AWS does when it
/// is called too often) a few times, more than `aws.max_attempts`, is waited
/// out.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn limit_exceeded_on_report_generation_is_waited_out() {
    let mut moto = Moto::start_with(&["--scenario", "many", "--users", "5"]);
    moto.command(&format!("fault limit-exceeded {ACCOUNT} 4 GenerateCredentialReport"));
    let exporter = Exporter::start(
        &[
            "--source",
            "credential-report",
            "--aws.max-attempts",
            "2",
            "--aws.refresh-timeout",
            "60s",
        ],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready_at("/-/healthy");
    wait_for("the first refresh", Duration::from_secs(60), || {
        up(&exporter) == 1.0 || errors(&exporter, "throttled") > 0.0
    });
    assert_eq!(up(&exporter), 1.0);
    assert_eq!(errors(&exporter, "throttled"), 0.0);
    let limited = metric(
        &exporter,
        "aws_iam_exporter_aws_request_errors_total",
        &[("operation", "GenerateCredentialReport"), ("code", "LimitExceeded")],
    );
    assert_eq!(limited, 4.0);
    assert_eq!(key_users(&exporter.scrape()), seeded_key_users(&moto));
}

/// A failed account is tried again after the backoff (15 to 30 s after a
/// first failure), not a whole interval (10 minutes here) later, and the
/// landing page and the log say when.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn a_failed_account_is_tried_again_soon_not_an_interval_later() {
    let mut moto = Moto::start_with(&["--scenario", "many", "--users", "5"]);
    moto.command(&format!("fault 500 {ACCOUNT} 1 GetAccountAuthorizationDetails"));
    let started = Instant::now();
    let exporter = Exporter::start(
        &["--refresh.interval", "10m", "--aws.max-attempts", "1"],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready_at("/-/healthy");
    wait_for("the first read to fail", Duration::from_secs(30), || {
        errors(&exporter, "other") >= 1.0
    });
    let page = get(&exporter.url("/")).1;
    assert!(page.contains("(next try about "), "{page}");
    wait_for("the retry", Duration::from_secs(60), || up(&exporter) == 1.0);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(45), "{took:?}");
    assert_eq!(key_users(&exporter.scrape()), seeded_key_users(&moto));
    assert!(
        exporter.log_lines().iter().any(|l| l.contains("trying it again in")),
        "{:?}",
        exporter.log_lines()
    );
    let page = get(&exporter.url("/")).1;
    assert!(!page.contains("next try"), "{page}");
}

/// Discovery's throttled calls are retried until `aws.refresh_timeout`, as
/// an account's are, and no longer: with `GetCallerIdentity` throttled for
/// good (discovery's first call), the refresh fails as `throttled` once the
/// deadline passes instead of waiting for AWS for ever, and once AWS
/// answers again the account is read.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn a_throttled_discovery_fails_at_the_deadline_and_recovers() {
    let mut moto = Moto::start_with(&["--scenario", "many", "--users", "5"]);
    moto.command(&format!("fault throttling {ACCOUNT} forever GetCallerIdentity"));
    let started = Instant::now();
    let exporter = Exporter::start(
        &["--refresh.interval", "2s", "--aws.refresh-timeout", "8s"],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready_at("/-/healthy");
    // Before discovery the caller's account id is not known: the failure
    // counts under account_id="".
    let failed = |reason| errors_of(&exporter, "", reason);
    wait_for("discovery to fail as throttled", Duration::from_secs(30), || {
        failed("throttled") >= 1.0
    });
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(8), "not before the deadline: {took:?}");
    assert_eq!(failed("timeout"), 0.0, "throttling is the reason, not the network");
    let stats = moto.command("stats")["ok"].clone();
    assert!(
        stats["faulted"].as_u64() > Some(1),
        "retried, not failed at once: {stats}"
    );
    assert!(
        exporter
            .log_lines()
            .iter()
            .any(|l| l.contains("account discovery (GetCallerIdentity, ListAccounts): AWS throttled")),
        "{:?}",
        exporter.log_lines()
    );

    moto.command("fault clear");
    wait_for("the account to be read", Duration::from_secs(60), || {
        up(&exporter) == 1.0
    });
    assert_eq!(key_users(&exporter.scrape()), seeded_key_users(&moto));
}
