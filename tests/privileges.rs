//! What a key's user may do and whether AWS quarantined it (issue 22),
//! against moto's IAM with the AWS managed policies loaded: users made
//! admin-equivalent in every way the rule names (directly, through a group,
//! IAMFullAccess, inline and group inline `*`, a customer managed `iam:*`),
//! users that are not (ReadOnlyAccess, a condition, NotAction) and each of
//! the three quarantine policies (see PRIVILEGES in moto_server.py). Both
//! AWS sources must say the same of every user.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// `(user, admin, quarantined)` of the users the config considers.
fn seeded(moto: &Moto) -> BTreeMap<String, (f64, f64)> {
    moto.seeded["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            let name = u["name"].as_str().unwrap();
            !name.starts_with("excluded-") && name != "ignored-by-tag"
        })
        .map(|u| {
            let flag = |v: &Value| if v.as_bool().unwrap() { 1.0 } else { 0.0 };
            (
                u["name"].as_str().unwrap().to_string(),
                (flag(&u["admin"]), flag(&u["quarantined"])),
            )
        })
        .collect()
}

/// What the exporter's `/metrics` says of each user.
fn exported(samples: &[Sample]) -> BTreeMap<String, (f64, f64)> {
    let of = |family: &str| -> BTreeMap<String, f64> {
        find(samples, family, &[])
            .into_iter()
            .map(|s| (s.labels["user"].clone(), s.value))
            .collect()
    };
    let (admin, quarantined) = (of("aws_iam_user_admin"), of("aws_iam_user_quarantined"));
    assert_eq!(
        admin.keys().collect::<Vec<_>>(),
        quarantined.keys().collect::<Vec<_>>(),
        "both facts for every user"
    );
    admin
        .into_iter()
        .map(|(user, a)| (user.clone(), (a, quarantined[&user])))
        .collect()
}

fn scrape_with(moto: &Moto, yaml: &str, flags: &[&str]) -> Vec<Sample> {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), yaml);
    let mut args = vec!["--config.file", config.to_str().unwrap()];
    args.extend(flags);
    let exporter = Exporter::start(&args, &moto.aws_env());
    exporter.wait_ready();
    parse_metrics(&exporter.scrape())
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn both_sources_judge_every_user_as_seeded() {
    let moto = Moto::start();
    let expected = seeded(&moto);
    assert!(expected.values().filter(|(admin, _)| *admin == 1.0).count() >= 6);
    assert!(expected.values().filter(|(_, quarantined)| *quarantined == 1.0).count() >= 3);

    let api = scrape_with(&moto, REALISTIC_CONFIG, &[]);
    assert_eq!(exported(&api), expected, "the API source");
    let report_yaml = format!("source: credential-report\n{REALISTIC_CONFIG}");
    let report = scrape_with(&moto, &report_yaml, &[]);
    assert_eq!(exported(&report), expected, "the credential-report source");

    // The risk follows: a quarantined user's active key and an admin's
    // key older than 90 days are high risk, by either source.
    let account = moto.seeded["account_id"].as_str().unwrap();
    let high_risk = |samples: &[Sample]| value(samples, "aws_iam_access_keys_high_risk", &[("account_id", account)]);
    let designed = moto.seeded["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            let user = k["user"].as_str().unwrap();
            k["high_risk"] == true && expected.contains_key(user)
        })
        .count();
    assert_eq!(high_risk(&api), designed as f64);
    // The credential report adds the root user's key (moto's root has none,
    // but the count must not differ for IAM users).
    assert_eq!(high_risk(&report), designed as f64);
    // The tag filter works on the credential report too, now that its tags
    // are read.
    assert!(find(&report, "aws_iam_user_info", &[("user", "ignored-by-tag")]).is_empty());
    assert!(!find(
        &report,
        "aws_iam_user_info",
        &[("user", "alice.nguyen"), ("tag_team", "platform")]
    )
    .is_empty());
    let pages = find(
        &report,
        "aws_iam_exporter_aws_requests_total",
        &[("operation", "GetAccountAuthorizationDetails")],
    );
    assert_eq!(pages.len(), 1);
    assert!(pages[0].value >= 2.0, "paged: {}", pages[0].value);
}

/// Turned off for the tightest budgets: no authorization call, and no
/// admin or quarantine sample, rather than a 0 that nobody checked.
#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn the_credential_report_source_can_leave_the_policies_unread() {
    let moto = Moto::start();
    let samples = scrape_with(
        &moto,
        "source: credential-report\n",
        &["--credential-report.authorization-details", "false"],
    );
    assert!(!find(&samples, "aws_iam_access_key_created_timestamp_seconds", &[]).is_empty());
    for family in ["aws_iam_user_admin", "aws_iam_user_quarantined"] {
        assert!(find(&samples, family, &[]).is_empty(), "{family}");
    }
    assert!(find(
        &samples,
        "aws_iam_exporter_aws_requests_total",
        &[("operation", "GetAccountAuthorizationDetails")]
    )
    .is_empty());
}
