//! The binary from the outside: `report`, `check-config`, flag and config
//! errors, the credential report file source, and the HTTP endpoints.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run the exporter binary");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sample() -> String {
    repo_path("examples/credential-report.csv")
        .to_str()
        .unwrap()
        .to_string()
}

/// Counts in the sample report, read with a CSV parser independent of the
/// exporter's; root's keys are keys too.
fn sample_key_count() -> usize {
    let mut reader = csv::Reader::from_path(sample()).unwrap();
    let mut keys = 0;
    for row in reader.records() {
        let row = row.unwrap();
        keys += [9, 14].iter().filter(|i| &row[**i] != "N/A").count();
    }
    keys
}

#[test]
fn report_prints_three_tables_and_fails_on_high_risk() {
    let (code, out, err) = run(&["report", "--credential-report.file", &sample()]);
    assert_eq!(code, 0, "{err}");
    let keys = sample_key_count();
    assert!(out.starts_with(&format!("Access key details ({keys})\n")), "{out}");
    assert!(out.contains("\nHigh-risk access keys ("), "{out}");
    assert!(out.contains("\nSummary by account (1)\n"), "{out}");

    let (code, out, _) = run(&["report", "--format", "json", "--credential-report.file", &sample()]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["details"].as_array().unwrap().len(), keys);
    assert!(
        !json["high_risk"].as_array().unwrap().is_empty(),
        "the sample has high-risk keys"
    );
    assert!(
        json["details"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["access_key_id"] == ""),
        "a report carries no key ids"
    );

    let (code, out, _) = run(&[
        "report",
        "--format",
        "csv",
        "--table",
        "summary",
        "--credential-report.file",
        &sample(),
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("account_id,account_name,up,users,keys,"), "{out}");
    assert_eq!(out.lines().count(), 2);

    let (code, _, _) = run(&["report", "--fail-on-high-risk", "--credential-report.file", &sample()]);
    assert_eq!(code, 3, "--fail-on-high-risk exits 3 when a key is high risk");
}

#[test]
fn report_without_high_risk_keys_passes_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    let now = chrono::Utc::now();
    let t = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let csv = format!(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
fresh,arn:aws:iam::111122223333:user/fresh,{a},false,N/A,N/A,N/A,false,true,{a},{b},us-east-1,s3,false,{c},N/A,N/A,N/A,false,N/A,false,N/A\n",
        a = t(20),
        b = t(1),
        c = t(900),
    );
    std::fs::write(&path, csv).unwrap();
    let (code, out, err) = run(&[
        "report",
        "--fail-on-high-risk",
        "--credential-report.file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("High-risk access keys (0)"),
        "an old inactive key is not high risk: {out}"
    );
}

/// A capped rate: check-config knows no user count, so it says how many
/// users fit the interval at that rate (issue 21's budget line).
#[test]
fn check_config_says_how_many_users_a_capped_rate_reads_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let capped = write_config(dir.path(), "refresh_interval: 30m\naws: {max_requests_per_second: 5}\n");
    let (code, out, err) = run(&["check-config", capped.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // 30 minutes at 5 calls a second: 9,000 calls, 2 a user, 8 for pages
    // and the account.
    assert!(
        out.contains("aws.max_requests_per_second 5 with the API source reads at most 4496 users of one key each per account within refresh_interval (30m)"),
        "{out}"
    );
    let report = write_config(
        dir.path(),
        "source: credential-report\naws: {max_requests_per_second: 5}\n",
    );
    let (code, out, _) = run(&["check-config", report.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        !out.contains("users of one key"),
        "the report source's calls do not grow with users: {out}"
    );
    let (_, out, _) = run(&["check-config", repo_path("examples/config.yaml").to_str().unwrap()]);
    assert!(!out.contains("users of one key"), "no cap, no line: {out}");
}

#[test]
fn check_config_accepts_the_example_and_lists_every_problem() {
    let (code, out, _) = run(&["check-config", repo_path("examples/config.yaml").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("configuration is valid"));

    let dir = tempfile::tempdir().unwrap();
    let bad = write_config(
        dir.path(),
        "refresh_interval: soon\npolicy: {age_buckets: [90d, 30d]}\nlabels: {access_key_id: partial}\nmetrics: {key_series: [created, ages]}\n",
    );
    let (code, _, err) = run(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    for field in [
        "refresh_interval:",
        "policy.age_buckets:",
        "labels.access_key_id:",
        "metrics.key_series: \"ages\" is not one of",
    ] {
        assert!(err.contains(field), "{field} is named in: {err}");
    }

    // The same file stops `serve` before it listens, with the same messages.
    let (code, _, err) = run(&[
        "--config.file",
        bad.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("labels.access_key_id: \"partial\" is not one of full, last4, none"),
        "{err}"
    );
}

#[test]
fn invalid_flags_exit_2_naming_the_flag() {
    let (code, _, err) = run(&["--refresh.interval", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--refresh.interval"), "{err}");
    let (code, _, err) = run(&["--source", "s3"]);
    assert_eq!(code, 2);
    assert!(err.contains("--source"), "{err}");
    let (code, _, err) = run(&["--web.telemetry-path", "metrics", "--credential-report.file", &sample()]);
    assert_eq!(code, 2);
    assert!(err.contains("--web.telemetry-path"), "{err}");
    let out = Command::new(BIN)
        .args(["--credential-report.file", &sample()])
        .env("AWS_IAM_KEY_EXPORTER_METRICS_KEY_SERIES", "created,ages")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--metrics.key-series: \"ages\" is not one of created, last_used, age, unused, never_used, high_risk, info"
        ),
        "{err}"
    );
    let out = Command::new(BIN)
        .env("AWS_IAM_KEY_EXPORTER_REFRESH_INTERVAL", "0s")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "environment variables are validated like flags"
    );
}

#[test]
#[ignore = "tools tier, run by make test: needs promtool"]
fn report_file_is_served_reread_and_a_bad_file_keeps_the_last_good_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    let original = std::fs::read_to_string(sample()).unwrap();
    std::fs::write(&path, &original).unwrap();
    let exporter = Exporter::start(&["--credential-report.file", path.to_str().unwrap()], &[]);
    exporter.wait_ready();
    let text = exporter.scrape();
    assert_eq!(
        promtool_check_metrics(&text),
        "",
        "promtool check metrics must print nothing"
    );
    let samples = parse_metrics(&text);
    let acct = [("account_id", "123456789012")];
    let users = original.lines().count() - 2; // header and root
    assert_eq!(value(&samples, "aws_iam_users", &acct), users as f64);
    assert_eq!(
        find(&samples, "aws_iam_access_key_age_seconds", &[]).len(),
        sample_key_count()
    );
    assert_eq!(value(&samples, "aws_iam_root_access_key_present", &acct), 1.0);
    assert!(
        value(
            &samples,
            "aws_iam_exporter_credential_report_generated_timestamp_seconds",
            &acct
        ) > 0.0
    );

    // Fewer users: the file is read again as soon as it changes.
    let shorter: Vec<&str> = original.lines().take(users + 2 - 5).collect();
    std::fs::write(&path, shorter.join("\n") + "\n").unwrap();
    wait_for("the file to be read again", Duration::from_secs(30), || {
        value(&parse_metrics(&exporter.scrape()), "aws_iam_users", &acct) == (users - 5) as f64
    });
    let good = find(
        &parse_metrics(&exporter.scrape()),
        "aws_iam_access_key_created_timestamp_seconds",
        &[],
    )
    .into_iter()
    .cloned()
    .collect::<Vec<_>>();

    // One bad row: skipped, counted and logged with its line; the account stays up.
    std::fs::write(&path, format!("{}\nbroken,row\n", shorter.join("\n"))).unwrap();
    let skipped = "aws_iam_exporter_credential_report_skipped_rows";
    wait_for("the bad row to be counted", Duration::from_secs(30), || {
        value(&parse_metrics(&exporter.scrape()), skipped, &acct) == 1.0
    });
    let samples = parse_metrics(&exporter.scrape());
    assert_eq!(value(&samples, "aws_iam_exporter_account_up", &acct), 1.0);
    let kept = |samples: &[Sample]| -> Vec<Sample> {
        find(samples, "aws_iam_access_key_created_timestamp_seconds", &[])
            .into_iter()
            .cloned()
            .collect()
    };
    assert_eq!(kept(&samples), good);
    let line = format!("line {}", shorter.len() + 1);
    assert!(
        exporter
            .log_lines()
            .iter()
            .any(|l| l.contains(&line) && l.contains("expected 22 fields, found 2; row skipped")),
        "the log names the bad line ({line})"
    );

    // A file that is not a credential report: the account goes down, its data stays.
    std::fs::write(&path, "this is not a credential report\n").unwrap();
    wait_for("the bad file to be noticed", Duration::from_secs(30), || {
        value(&parse_metrics(&exporter.scrape()), "aws_iam_exporter_account_up", &acct) == 0.0
    });
    let samples = parse_metrics(&exporter.scrape());
    assert_eq!(kept(&samples), good);
    assert_eq!(value(&samples, skipped, &acct), 1.0, "the count of the report in use");
    let errors = [("account_id", "123456789012"), ("reason", "invalid_response")];
    assert_eq!(value(&samples, "aws_iam_exporter_refresh_errors_total", &errors), 1.0);
    let named = format!("{}: credential report line 1: missing column", path.display());
    assert!(
        exporter
            .log_lines()
            .iter()
            .any(|l| l.contains("refresh failed") && l.contains(&named)),
        "the log names the file and the problem"
    );
}

/// A report file that cannot be read keeps the exporter unready (a rollout
/// with a wrong path stops) and the error names the file; once the file is
/// there, it is read and the exporter is ready.
#[test]
fn a_report_file_not_read_yet_keeps_the_exporter_unready() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    let exporter = Exporter::start(&["--credential-report.file", path.to_str().unwrap()], &[]);
    wait_for("the failed read to be logged", Duration::from_secs(30), || {
        exporter.log_lines().iter().any(|l| l.contains("refresh failed"))
    });
    let failure = exporter
        .log_lines()
        .into_iter()
        .find(|l| l.contains("refresh failed"))
        .unwrap();
    assert!(
        failure.contains(&format!("{}: cannot read: No such file or directory", path.display())),
        "{failure}"
    );
    assert_eq!(get(&exporter.url("/-/ready")).0, 503);
    assert_eq!(get(&exporter.url("/-/healthy")).0, 200);
    // Looked at every two seconds, the same failure is counted once.
    std::thread::sleep(Duration::from_secs(5));
    let samples = parse_metrics(&exporter.scrape());
    assert_eq!(
        value(
            &samples,
            "aws_iam_exporter_refresh_errors_total",
            &[("account_id", ""), ("reason", "other")]
        ),
        1.0
    );
    assert_eq!(get(&exporter.url("/-/ready")).0, 503);

    // Written elsewhere and renamed into place, as docs/configuration.md asks.
    let staging = dir.path().join("report.csv.tmp");
    std::fs::copy(sample(), &staging).unwrap();
    std::fs::rename(&staging, &path).unwrap();
    exporter.wait_ready();
    let samples = parse_metrics(&exporter.scrape());
    assert_eq!(
        value(
            &samples,
            "aws_iam_exporter_account_up",
            &[("account_id", "123456789012")]
        ),
        1.0
    );
}

/// A real report lists one user on two rows: served once, a valid exposition,
/// one warning naming the user.
#[test]
#[ignore = "tools tier, run by make test: needs promtool"]
fn a_user_on_two_rows_is_served_once_and_promtool_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    let header = std::fs::read_to_string(sample())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let row = |keys: &str| {
        format!("dup,arn:aws:iam::111122223333:user/dup,2020-01-01T00:00:00+00:00,true,N/A,N/A,N/A,false,{keys},false,N/A,false,N/A\n")
    };
    let report = format!(
        "{header}\n{}{}{}",
        row("TRUE,2024-01-01T00:00:00+00:00,N/A,N/A,N/A,false,2023-01-01T00:00:00+00:00,N/A,N/A,N/A"),
        row("false,N/A,N/A,N/A,N/A,true,2025-01-01T00:00:00+00:00,N/A,N/A,N/A"),
        row("false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A").replace("dup", "other"),
    );
    std::fs::write(&path, report).unwrap();
    let exporter = Exporter::start(
        &[
            "--credential-report.file",
            path.to_str().unwrap(),
            "--refresh.interval",
            "1s",
        ],
        &[],
    );
    exporter.wait_ready();
    let text = exporter.scrape();
    assert_eq!(
        promtool_check_metrics(&text),
        "",
        "promtool check metrics must print nothing"
    );
    let samples = parse_metrics(&text);
    let acct = [("account_id", "111122223333")];
    assert_eq!(value(&samples, "aws_iam_users", &acct), 2.0);
    assert_eq!(find(&samples, "aws_iam_user_info", &[("user", "dup")]).len(), 1);
    let keys: Vec<(String, String, f64)> = find(&samples, "aws_iam_access_key_created_timestamp_seconds", &[])
        .iter()
        .map(|s| (s.labels["key"].clone(), s.labels["status"].clone(), s.value))
        .collect();
    assert_eq!(
        keys,
        [
            ("1".to_string(), "Active".to_string(), 1704067200.0),
            ("2".to_string(), "Active".to_string(), 1735689600.0),
        ]
    );
    let warnings: Vec<String> = exporter
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("user \\\"dup\\\" is listed on lines 2, 3"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", exporter.log_lines());
    // Read again every second: the warning is about the report, not each read.
    wait_for("three reads of the file", Duration::from_secs(30), || {
        exporter
            .log_lines()
            .iter()
            .filter(|l| l.contains("refresh succeeded"))
            .count()
            >= 3
    });
    let again = exporter
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("is listed on lines"))
        .count();
    assert_eq!(again, 1, "the warning is logged once per report");
}

#[test]
fn endpoints_formats_and_several_listen_addresses() {
    let exporter = Exporter::spawn(
        &[
            "--credential-report.file",
            &sample(),
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.telemetry-path",
            "/custom/metrics",
        ],
        &[],
    );
    exporter.wait_ready_at("/-/ready");
    let (status, page) = get(&exporter.url("/"));
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/custom/metrics\"") && page.contains(env!("CARGO_PKG_VERSION")),
        "{page}"
    );
    assert_eq!(get(&exporter.url("/-/healthy")).0, 200);
    assert_eq!(
        get(&exporter.url("/metrics")).0,
        404,
        "metrics live under the configured path only"
    );

    let text = ureq::get(&exporter.url("/custom/metrics")).call().unwrap();
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = text.into_string().unwrap();
    assert!(!body.contains("# EOF"));

    let om = ureq::get(&exporter.url("/custom/metrics"))
        .set(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .call()
        .unwrap();
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.into_string().unwrap().ends_with("# EOF\n"));

    let gz = ureq::get(&exporter.url("/custom/metrics"))
        .set("Accept-Encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut compressed = Vec::new();
    gz.into_reader().read_to_end(&mut compressed).unwrap();
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert!(compressed.len() < plain.len() / 4, "gzip shrinks the text");
    assert_eq!(strip_ages(&plain), strip_ages(&body));

    // Both listen addresses serve.
    assert_eq!(exporter.addresses.len(), 2);
    for address in &exporter.addresses {
        assert_eq!(get(&format!("http://{address}/-/healthy")).0, 200);
    }
}

/// Ages move between two scrapes; everything else must be identical.
/// Without the values that change between two scrapes: ages, and the
/// process's own figures (CPU, memory, descriptors).
fn strip_ages(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            !l.starts_with("aws_iam_access_key_age_seconds")
                && !l.starts_with("aws_iam_access_key_unused_seconds")
                && !l.starts_with("process_")
        })
        .collect()
}

#[test]
fn not_ready_until_the_first_refresh_finishes() {
    // An endpoint that accepts connections and never answers: the first
    // refresh hangs, so readiness must stay 503 while health is 200.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let exporter = Exporter::start(&[], &env);
    assert_eq!(get(&exporter.url("/-/healthy")).0, 200);
    let (status, body) = get(&exporter.url("/-/ready"));
    assert_eq!(
        (status, body.as_str()),
        (503, "Not ready: the first refresh has not finished\n")
    );
    let (status, body) = get(&exporter.url("/report"));
    assert_eq!(
        (status, body.as_str()),
        (503, "Not ready: the first refresh has not finished\n"),
        "no report that looks empty before the first refresh"
    );
    let text = exporter.scrape();
    assert!(
        text.contains("aws_iam_exporter_build_info{"),
        "metrics answer before the first refresh"
    );
    assert!(!text.contains("aws_iam_access_key_age_seconds{"));
    drop(silent);
}

/// A report that cannot be made writes nothing a script could take for one:
/// empty stdout, no `--output` file, exit 4 (no account read at all), and
/// one line on stderr that says why in words (the refresher's own log line
/// for the same failure left out).
#[test]
fn a_failed_report_prints_nothing_and_one_line_of_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let output = dir.path().join("report.html");
    for extra in [&[][..], &["--format", "html", "--output", output.to_str().unwrap()][..]] {
        let mut args = vec!["report", "--credential-report.file", missing.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, 4, "nothing read: {err}");
        assert_eq!(out, "", "nothing on stdout");
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(
            err.starts_with(
                "aws-iam-key-exporter: no report written: no account has been read yet; the latest read failed: /"
            ) && err.contains(&format!(
                "{}: cannot read: No such file or directory",
                missing.display()
            )),
            "{err}"
        );
        assert!(!output.exists(), "no --output file");
    }
    // Asked for logs, the refresher's lines are there too.
    let (code, _, err) = run(&[
        "report",
        "--log.level",
        "info",
        "--credential-report.file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 4);
    assert!(err.contains("level=error") && err.contains("refresh failed"), "{err}");
}

/// A report that works logs nothing at its default level: stdout is the
/// report, stderr is empty; `--log.level info` brings the info lines back.
#[test]
fn a_report_logs_nothing_unless_asked() {
    let (code, out, err) = run(&["report", "--format", "json", "--credential-report.file", &sample()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "no log lines at report's default level");
    serde_json::from_str::<serde_json::Value>(&out).expect("stdout is the JSON report alone");
    let (code, _, err) = run(&["report", "--log.level", "info", "--credential-report.file", &sample()]);
    assert_eq!(code, 0);
    assert!(err.contains("refresh succeeded"), "{err}");
}

/// `report --help` lists what a report uses, each flag described, and none of
/// serve's flags; those are refused for a report, with status 2.
#[test]
fn report_help_lists_only_what_applies_to_a_report() {
    let (code, help, _) = run(&["report", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--format",
        "--table",
        "--output",
        "--fail-on-high-risk",
        "--config.file",
        "--credential-report.file",
        "--source",
        "--log.level",
    ] {
        assert!(help.contains(flag), "{flag} in: {help}");
    }
    for flag in ["--web.", "--refresh.interval"] {
        assert!(!help.contains(flag), "{flag} not in: {help}");
    }
    assert!(
        help.contains("--format <FORMAT>\n          Output format: "),
        "--format is described: {help}"
    );
    let (code, _, err) = run(&["--refresh.interval", "1h", "report"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--refresh.interval applies to serve only, not to report"),
        "{err}"
    );
    // `serve --help` still has them all.
    let (_, help, _) = run(&["serve", "--help"]);
    assert!(
        help.contains("--web.listen-address") && help.contains("--refresh.interval"),
        "{help}"
    );
}

/// Exit codes as docs/configuration.md lists them: 2 for a configuration
/// file that is not there, whatever the command; 1 for a port taken, with
/// what to do.
#[test]
fn exit_codes_say_usage_or_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["--config.file", missing, "--web.listen-address", "127.0.0.1:0"],
        vec!["check-config", "--config.file", missing],
        vec!["check-config", missing],
        vec!["report", "--config.file", missing],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "");
        assert!(err.contains(&format!("cannot read {missing}")), "{args:?}: {err}");
    }

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["--web.listen-address", &address, "--credential-report.file", &sample()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot listen on {address}: "))
            && err.contains("choose another address with --web.listen-address"),
        "{err}"
    );
}

/// Serve's flags keep their environment variables, and a flag on the command
/// line wins over its variable whether it comes before `serve` or after.
#[test]
fn a_serve_flag_on_the_command_line_wins_over_its_variable_in_either_position() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let env = [(
        "AWS_IAM_KEY_EXPORTER_WEB_LISTEN_ADDRESS".to_string(),
        taken.local_addr().unwrap().to_string(),
    )];
    let report = sample();
    for args in [
        [
            "--web.listen-address",
            "127.0.0.1:0",
            "serve",
            "--credential-report.file",
            &report,
        ],
        [
            "serve",
            "--web.listen-address",
            "127.0.0.1:0",
            "--credential-report.file",
            &report,
        ],
    ] {
        // Listening at all shows the flag won: the variable's port is taken.
        let exporter = Exporter::spawn(&args, &env);
        assert_eq!(get(&exporter.url("/-/healthy")).0, 200, "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--credential-report.file", &report])
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the variable alone is used");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Address already in use"));
}

/// AWS writes `N/A` as the region of a key last used with a global service
/// (IAM); the exporter writes an empty label value, Prometheus' "none", in
/// the metrics and the report alike, as docs/metrics.md says.
#[test]
fn a_global_service_has_an_empty_region() {
    let (code, out, err) = run(&["report", "--format", "json", "--credential-report.file", &sample()]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let iam: Vec<&serde_json::Value> = json["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["last_used_service"] == "iam")
        .collect();
    assert!(!iam.is_empty(), "the sample has keys last used with IAM");
    assert!(iam.iter().all(|k| k["last_used_region"] == ""), "{iam:?}");

    let exporter = Exporter::start(&["--credential-report.file", &sample()], &[]);
    exporter.wait_ready();
    let samples = parse_metrics(&exporter.scrape());
    let info = find(&samples, "aws_iam_access_key_info", &[("last_used_service", "iam")]);
    assert_eq!(info.len(), iam.len());
    assert!(info.iter().all(|s| s.labels["last_used_region"].is_empty()), "{info:?}");
    assert!(find(&samples, "aws_iam_access_key_info", &[("last_used_region", "N/A")]).is_empty());
}

/// The two first mistakes with `--credential-report.file` get their own
/// words: an empty file, and the base64 text `aws iam get-credential-report`
/// prints when `base64 -d` is forgotten; neither reads as a missing column,
/// and the reason is words, not a code.
#[test]
fn an_empty_or_base64_report_file_says_what_it_is() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let encoded = dir.path().join("encoded.csv");
    let sample = std::fs::read(sample()).unwrap();
    std::fs::write(
        &encoded,
        base64::engine::general_purpose::STANDARD.encode(sample) + "\n",
    )
    .unwrap();
    for (file, words) in [(&empty, "the report is empty"), (&encoded, "base64 -d")] {
        let (code, out, err) = run(&["report", "--credential-report.file", file.to_str().unwrap()]);
        assert_eq!((code, out.as_str()), (4, ""), "{err}");
        assert!(err.contains(&file.display().to_string()), "names the file: {err}");
        assert!(err.contains(words), "{err}");
        assert!(!err.contains("missing column"), "{err}");
        for code in ["other:", "invalid_response:"] {
            assert!(!err.contains(code), "a code in text for people: {err}");
        }
    }
}

/// Each fixed endpoint is declared once (`output::endpoints`): served, linked
/// from the landing page, refused as the telemetry path, and documented.
#[test]
fn every_fixed_endpoint_is_served_linked_and_documented() {
    use aws_iam_key_exporter::output::endpoints::LINKED;
    let exporter = Exporter::start(&["--credential-report.file", &sample()], &[]);
    wait_for("the sample to be read", Duration::from_secs(30), || {
        get(&exporter.url("/-/ready")).0 == 200
    });
    let (_, landing) = get(&exporter.url("/"));
    let docs = std::fs::read_to_string(repo_path("docs/configuration.md")).unwrap();
    let endpoints_section = docs
        .split("### HTTP endpoints")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("docs/configuration.md has an HTTP endpoints section");
    for endpoint in LINKED {
        assert_eq!(get(&exporter.url(endpoint.path)).0, 200, "{}", endpoint.path);
        let link = format!("<a href=\"{}\">{}</a>", endpoint.path, endpoint.link);
        assert!(landing.contains(&link), "{link} is not on the landing page");
        assert!(
            endpoints_section.contains(&format!("`{}`", endpoint.path)),
            "{} is not in docs/configuration.md's HTTP endpoints",
            endpoint.path
        );
        let (code, _, err) = run(&[
            "--web.telemetry-path",
            endpoint.path,
            "--credential-report.file",
            &sample(),
        ]);
        assert_eq!(code, 2, "{}", endpoint.path);
        assert!(err.contains("--web.telemetry-path"), "{err}");
    }
}
