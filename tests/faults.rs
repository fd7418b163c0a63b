//! Faults between the exporter and AWS, injected by the proxy in
//! `tests/moto_server.py`: the process stays up, `/metrics` keeps answering
//! with the last good data, the error is counted with the right reason, and
//! the next good refresh recovers. (AWS unreachable altogether, moto
//! stopped and started again, is in `tests/api_source.rs`.)

mod common;

use std::time::Duration;

use common::*;

const ACCOUNT: &str = "123456789012";

fn exporter(moto: &Moto, extra: &[&str]) -> Exporter {
    let mut args = vec![
        "--refresh.interval",
        "1s",
        "--aws.call-timeout",
        "1s",
        "--aws.refresh-timeout",
        "5s",
    ];
    if !extra.contains(&"--aws.max-attempts") {
        args.extend(["--aws.max-attempts", "2"]);
    }
    args.extend_from_slice(extra);
    let exporter = Exporter::start(&args, &moto.aws_env_via_proxy());
    exporter.wait_ready();
    exporter
}

fn up(exporter: &Exporter) -> f64 {
    value(
        &parse_metrics(&exporter.scrape()),
        "aws_iam_exporter_account_up",
        &[("account_id", ACCOUNT)],
    )
}

fn errors(exporter: &Exporter, reason: &str) -> f64 {
    find(
        &parse_metrics(&exporter.scrape()),
        "aws_iam_exporter_refresh_errors_total",
        &[("account_id", ACCOUNT), ("reason", reason)],
    )
    .first()
    .map_or(0.0, |s| s.value)
}

/// Injects `fault`, waits for the account to go down with `reason`, checks
/// that nothing was lost, clears the fault and waits for the recovery.
fn survives(fault: &str, reason: &str, extra: &[&str]) {
    let mut moto = Moto::start();
    let mut exporter = exporter(&moto, extra);
    let before = key_series(&exporter.scrape());
    assert!(!before.is_empty());
    assert_eq!(up(&exporter), 1.0);

    moto.command(&format!("fault {fault}"));
    wait_for(
        &format!("{fault} to take the account down"),
        Duration::from_secs(60),
        || up(&exporter) == 0.0 && errors(&exporter, reason) >= 1.0,
    );
    let during = exporter.scrape();
    assert_eq!(
        key_series(&during),
        before,
        "{fault}: the last good data stays, never a half snapshot"
    );
    assert_eq!(promtool_check_metrics(&during), "");
    assert!(exporter.is_running(), "{fault}: the process stays up");

    moto.command("fault clear");
    wait_for(&format!("recovery from {fault}"), Duration::from_secs(60), || {
        up(&exporter) == 1.0
    });
    assert_eq!(key_series(&exporter.scrape()), before);
    assert!(exporter.is_running());
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn answers_that_hang_time_out() {
    survives(&format!("hang {ACCOUNT} forever"), "timeout", &[]);
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn http_500_and_503() {
    survives(&format!("500 {ACCOUNT} forever"), "other", &[]);
    survives(&format!("503 {ACCOUNT} forever ListAccessKeys"), "other", &[]);
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn malformed_xml() {
    survives(
        &format!("malformed {ACCOUNT} forever GetAccountAuthorizationDetails"),
        "invalid_response",
        &[],
    );
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn a_failure_in_the_middle_of_a_paginated_listing() {
    // The first page of users and policies answers, the second (with a
    // Marker) fails: no account is judged from half its policies.
    survives(
        &format!("500 {ACCOUNT} forever GetAccountAuthorizationDetails paged"),
        "other",
        &[],
    );
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn a_credential_report_that_never_completes() {
    survives(
        &format!("inprogress {ACCOUNT} forever GenerateCredentialReport"),
        "other",
        &["--source", "credential-report", "--credential-report.max-wait", "5s"],
    );
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn throttling_for_a_while_then_success_is_retried_and_counted() {
    let mut moto = Moto::start();
    let exporter = exporter(&moto, &["--aws.max-attempts", "3"]);
    let before = key_series(&exporter.scrape());
    moto.command(&format!("fault throttle {ACCOUNT} 2"));
    let throttles = || -> f64 {
        find(
            &parse_metrics(&exporter.scrape()),
            "aws_iam_exporter_aws_request_errors_total",
            &[("code", "Throttling")],
        )
        .iter()
        .map(|s| s.value)
        .sum()
    };
    wait_for("the throttled calls to be counted", Duration::from_secs(30), || {
        throttles() == 2.0
    });
    // Retried within the same refresh: the account never went down.
    assert_eq!(errors(&exporter, "throttled"), 0.0);
    assert_eq!(up(&exporter), 1.0);
    assert_eq!(key_series(&exporter.scrape()), before);
    assert_eq!(moto.command("stats")["ok"]["throttled"], 2);
}

/// Every error counter of a healthy account exists at 0 from its first
/// refresh, so that `increase()` and the alerts see the first failure; the
/// AWS call counters exist for every operation the source calls; the
/// process metrics are there, and the whole exposition is promtool-clean.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn a_healthy_accounts_error_counters_start_at_zero() {
    let moto = Moto::start();
    let exporter = exporter(&moto, &[]);
    let text = exporter.scrape();
    assert_eq!(promtool_check_metrics(&text), "");
    let samples = parse_metrics(&text);
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value(&samples, name, &[]) > 0.0 || name == "process_cpu_seconds_total",
            "{name}"
        );
        assert!(
            text.contains(&format!("# HELP {}", name.trim_end_matches("_total"))),
            "{name}"
        );
    }
    // Sorted: a family's series come in no fixed order.
    let reasons: std::collections::BTreeMap<&str, f64> = find(
        &samples,
        "aws_iam_exporter_refresh_errors_total",
        &[("account_id", ACCOUNT)],
    )
    .iter()
    .map(|s| (s.labels["reason"].as_str(), s.value))
    .collect();
    let expected = [
        "access_denied",
        "credentials",
        "invalid_response",
        "network",
        "other",
        "throttled",
        "timeout",
    ];
    assert_eq!(reasons, expected.map(|reason| (reason, 0.0)).into());
    for (service, operation) in [
        ("sts", "GetCallerIdentity"),
        ("iam", "GetAccountSummary"),
        ("iam", "GetAccountAuthorizationDetails"),
        ("iam", "ListAccessKeys"),
        ("iam", "GetAccessKeyLastUsed"),
    ] {
        assert_eq!(
            find(
                &samples,
                "aws_iam_exporter_aws_requests_total",
                &[("service", service), ("operation", operation)]
            )
            .len(),
            1,
            "{service} {operation}"
        );
    }
}

/// No credentials anywhere (empty environment and HOME, instance metadata
/// off): the failure is counted as `credentials`, not `network`, and logged
/// as one short line that names the sources tried, without Debug output.
#[test]
fn no_credentials_at_all_is_a_credentials_error_in_one_short_line() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_string_lossy().to_string();
    let env = [
        ("PATH".to_string(), dir.clone()),
        ("HOME".to_string(), dir),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    let exporter = Exporter::start_in_empty_environment(&["--refresh.interval", "1h"], &env);
    wait_for("the failure to be counted", Duration::from_secs(60), || {
        exporter.scrape().contains("reason=\"credentials\"} 1")
    });
    // Nothing read: not ready, whatever the source, and it says why in words.
    let (status, body) = get(&exporter.url("/-/ready"));
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("Not ready: no account has been read yet; the latest read failed: no valid credentials: "),
        "{body}"
    );
    assert_eq!(body.lines().count(), 1, "{body}");
    let (status, _) = get(&exporter.url("/report"));
    assert_eq!(status, 503, "no report that reads as a clean audit");
    let samples = parse_metrics(&exporter.scrape());
    assert!(
        value(
            &samples,
            "aws_iam_exporter_refresh_errors_total",
            &[("account_id", ""), ("reason", "credentials")]
        ) >= 1.0
    );
    assert!(find(
        &samples,
        "aws_iam_exporter_refresh_errors_total",
        &[("reason", "network")]
    )
    .is_empty());
    let lines = exporter.log_lines();
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("level=error")).collect();
    assert!(!failed.is_empty(), "no error logged: {lines:?}");
    for line in failed {
        assert!(line.len() < 600, "{} characters: {line}", line.len());
        assert!(line.contains("reason=credentials"), "{line}");
        assert!(
            line.contains("GetCallerIdentity: no AWS credentials found (tried Environment"),
            "{line}"
        );
        for debug in [
            "DispatchFailure",
            "ConnectorError",
            "ProviderChainError",
            "attempts:",
            " { ",
            "Some(",
        ] {
            assert!(!line.contains(debug), "{debug} in {line}");
        }
    }
}
