//! The configuration's tests: every problem named by its field.

use super::*;
use crate::domain::accounts::{OrganizationAccounts, StaticAccount};
use crate::domain::disclosure::KeyIdLabel;
use crate::domain::ids::role_arn_account;
use crate::domain::policy::AgeBuckets;
use crate::http::listen::split_listen_address;

#[test]
fn bundled_example_config_is_valid_and_complete() {
    let config = parse_config(include_str!("../../../examples/config.yaml")).unwrap();
    assert_eq!(config.flags.serve.refresh_interval, Some(Duration::from_secs(1800)));
    assert_eq!(config.policy, Policy::default());
    assert!(config.accounts.organization.is_some());
    assert_eq!(config.labels.user_tags, ["owner", "team"]);
    assert_eq!(config.key_series, Some(KeySeriesSet::all()));
}

#[test]
fn empty_file_means_defaults() {
    let config = parse_config("").unwrap();
    assert_eq!(config.policy, Policy::default());
    assert_eq!(config.labels, LabelSettings::default());
    assert!(config.flags.serve.refresh_interval.is_none() && config.flags.source.is_none());
}

#[test]
fn full_file_is_read() {
    let config = parse_config(
        r#"
refresh_interval: 15m
source: credential-report
accounts:
  organization: {role_name: IAMKeyExporter, external_id: abc}
  static:
    - {role_arn: "arn:aws:iam::111111111111:role/IAMKeyExporter", name: prod}
  include: ["111111111111"]
  exclude: ["222222222222"]
policy:
  high_risk: {rotated_more_than: 90d, admin_rotated_more_than: 30d, never_used_after: 1d, unused_more_than: 45d}
  age_buckets: [7d, 30d]
users:
  exclude: ["^svc-legacy-.*"]
  exclude_tags: {exporter-ignore: "true"}
labels:
  user_tags: [owner, cost-center]
  access_key_id: last4
shard: {index: 1, count: 3}
aws: {max_concurrent_requests: 4, max_attempts: 5, call_timeout: 2s, refresh_timeout: 1m}
"#,
    )
    .unwrap();
    assert_eq!(config.flags.serve.refresh_interval, Some(Duration::from_secs(900)));
    assert_eq!(config.flags.source, Some(SourceKind::CredentialReport));
    assert_eq!(
        config.accounts,
        Accounts {
            organization: Some(OrganizationAccounts {
                role_name: "IAMKeyExporter".into(),
                external_id: Some("abc".into())
            }),
            static_accounts: vec![StaticAccount {
                role_arn: "arn:aws:iam::111111111111:role/IAMKeyExporter".into(),
                external_id: None,
                name: Some("prod".into()),
            }],
            include: vec!["111111111111".into()],
            exclude: vec!["222222222222".into()],
        }
    );
    let day = |d: u64| Duration::from_secs(d * 86_400);
    assert_eq!(
        config.policy,
        Policy {
            rotated_more_than: day(90),
            admin_rotated_more_than: day(30),
            never_used_after: day(1),
            unused_more_than: Some(day(45)),
            age_buckets: AgeBuckets::new(vec![day(7), day(30)]).unwrap(),
        }
    );
    assert!(config.users.excludes_name("svc-legacy-x") && !config.users.excludes_name("svc-new"));
    assert!(config.users.excludes_tags([("exporter-ignore", "true")].into_iter()));
    assert!(!config.users.excludes_tags([("exporter-ignore", "false")].into_iter()));
    assert_eq!(config.labels.user_tags, ["owner", "cost-center"]);
    assert_eq!(config.labels.access_key_id, KeyIdLabel::Last4);
    assert_eq!((config.flags.shard_index, config.flags.shard_count), (Some(1), Some(3)));
    assert_eq!(
        (config.flags.max_concurrent_requests, config.flags.max_attempts),
        (Some(4), Some(5))
    );
}

#[test]
fn every_problem_is_reported_with_its_field() {
    let problems = parse_config(
        r#"
refresh_interval: soon
source: s3
colour: blue
accounts:
  organization: {external_id: x}
  static: [{role_arn: "arn:aws:iam::1:user/x"}]
  include: ["12345"]
policy:
  high_risk: {rotated_more_than: 0s, typo: 1d}
  age_buckets: [90d, 30d]
users: {exclude: ["("]}
labels: {user_tags: ["te_am", "te-am"], access_key_id: partial}
shard: {index: 3, count: 3}
"#,
    )
    .unwrap_err();
    assert_eq!(
            problems,
            [
                "colour: unknown key (known keys here: refresh_interval, source, aws, credential_report, shard, accounts, policy, users, labels, metrics)",
                "refresh_interval: invalid duration \"soon\" (expected number at 0); use forms like 90s, 15m, 1h, 365d",
                "source: \"s3\" is not one of api, credential-report",
                "accounts.organization.role_name: is required",
                "accounts.static[0].role_arn: \"arn:aws:iam::1:user/x\" is not a role ARN (arn:aws:iam::123456789012:role/NAME)",
                "accounts.include[0]: \"12345\" is not a 12-digit AWS account id",
                "policy.high_risk.typo: unknown key (known keys here: rotated_more_than, admin_rotated_more_than, never_used_after, unused_more_than)",
                "policy.high_risk.rotated_more_than: invalid duration \"0s\": must be greater than zero",
                "policy.age_buckets: bounds must be strictly increasing (90d is not below 30d)",
                "users.exclude[0]: invalid regex \"(\": regex parse error:\n    (\n    ^\nerror: unclosed group",
                "labels.user_tags[1]: \"te-am\" and \"te_am\" would both be exported as label tag_te_am",
                "labels.access_key_id: \"partial\" is not one of full, last4, none",
                "shard.index: 3 must be below shard.count (3)",
            ]
        );
}

#[test]
fn durations_past_the_clock_and_sub_second_buckets_are_refused() {
    let problems = parse_config(
        "refresh_interval: 500000000000y\naws: {call_timeout: 400d}\ncredential_report: {max_wait: 2y}\n\
policy:\n  high_risk: {rotated_more_than: 500000000000y}\n  age_buckets: [500ms, 700ms, 900ms]\n",
    )
    .unwrap_err();
    assert_eq!(
            problems,
            [
                "refresh_interval: invalid duration \"500000000000y\": must be at most 36500d (100 years)",
                "aws.call_timeout: invalid duration \"400d\": an interval or timeout must be at most 365d",
                "credential_report.max_wait: invalid duration \"2y\": an interval or timeout must be at most 365d",
                "policy.high_risk.rotated_more_than: invalid duration \"500000000000y\": must be at most 36500d (100 years)",
                "policy.age_buckets: bounds must be whole seconds, as their labels are (500ms is not)",
            ]
        );
    // Whole seconds are fine, and labelled in their own unit.
    let config = parse_config("refresh_interval: 365d\npolicy: {age_buckets: [90s, 12h, 30d]}\n").unwrap();
    assert_eq!(
        config.policy.age_buckets.labels(),
        ["0-90s", "90s-12h", "12h-30d", "30d+"]
    );
}

#[test]
fn yaml_syntax_errors_are_reported() {
    let problems = parse_config("policy: [unclosed").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("not valid YAML:"), "{problems:?}");
}

#[test]
fn flags_override_the_file() {
    let file = parse_config("refresh_interval: 15m\nsource: credential-report\naws: {max_attempts: 5}").unwrap();
    let flags = Flags {
        serve: ServeFlags {
            refresh_interval: Some(Duration::from_secs(60)),
            ..ServeFlags::default()
        },
        ..Flags::default()
    };
    let settings = Settings::from_parts(&flags, Some(&file)).unwrap();
    assert_eq!(settings.refresh_interval, Duration::from_secs(60));
    assert_eq!(settings.source, SourceKind::CredentialReport);
    assert_eq!(settings.aws.max_attempts, 5);
    let spelled: Vec<&str> = settings.listen_addresses.iter().map(|a| a.spelled.as_str()).collect();
    assert_eq!(spelled, [":9781"]);
    assert_eq!(settings.telemetry_path, "/metrics");
}

#[test]
fn the_telemetry_path_cannot_take_the_report_s() {
    let flags = Flags {
        serve: ServeFlags {
            telemetry_path: Some("/report".into()),
            ..ServeFlags::default()
        },
        ..Flags::default()
    };
    let Err(Error::Config(problems)) = Settings::from_parts(&flags, None) else {
        panic!("expected a config error");
    };
    assert_eq!(
        problems,
        ["--web.telemetry-path: \"/report\" is the HTML report's path; choose another"]
    );
}

#[test]
fn invalid_flags_are_named() {
    let flags = Flags {
        serve: ServeFlags {
            telemetry_path: Some("metrics".into()),
            listen_addresses: vec!["localhost".into(), ":http".into()],
            ..ServeFlags::default()
        },
        shard_index: Some(2),
        shard_count: Some(2),
        ..Flags::default()
    };
    let Err(Error::Config(problems)) = Settings::from_parts(&flags, None) else {
        panic!("expected a config error");
    };
    assert_eq!(
        problems,
        [
            "--web.telemetry-path: \"metrics\" must start with / and not be / or under /-/",
            "--web.listen-address: \"localhost\" has no port; use host:port or :port",
            "--web.listen-address: \":http\" has an invalid port \"http\"",
            "shard.index: 2 must be below shard.count (2)",
        ]
    );
}

#[test]
fn listen_addresses_split() {
    assert_eq!(split_listen_address(":9781"), Ok((String::new(), 9781)));
    assert_eq!(split_listen_address("127.0.0.1:80"), Ok(("127.0.0.1".into(), 80)));
    assert_eq!(split_listen_address("[::1]:80"), Ok(("::1".into(), 80)));
}

#[test]
fn key_id_label_modes() {
    let id = Some("AKIAIOSFODNN7EXAMPLE");
    assert_eq!(KeyIdLabel::Full.render(id), "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(KeyIdLabel::Last4.render(id), "MPLE");
    assert_eq!(KeyIdLabel::None.render(id), "");
    assert_eq!(KeyIdLabel::Full.render(None), "");
}

#[test]
fn key_ids_in_text_are_redacted_as_configured() {
    let text = "The Access Key with id AKIAIOSFODNN7EXAMPLE cannot be found; ASIAZZZZZZZZZZZZ1234 either";
    assert_eq!(KeyIdLabel::Full.redact(text), text);
    assert_eq!(
        KeyIdLabel::Last4.redact(text),
        "The Access Key with id ****MPLE cannot be found; ****1234 either"
    );
    assert_eq!(
        KeyIdLabel::None.redact(text),
        "The Access Key with id <access key id> cannot be found; <access key id> either"
    );
}

#[test]
fn role_arns() {
    assert_eq!(
        role_arn_account("arn:aws:iam::111111111111:role/IAMKeyExporter"),
        Some("111111111111")
    );
    assert_eq!(
        role_arn_account("arn:aws-us-gov:iam::111111111111:role/path/R"),
        Some("111111111111")
    );
    assert_eq!(role_arn_account("arn:aws:iam::111111111111:user/x"), None);
}

#[test]
fn key_series_come_from_the_file_or_the_flag_and_unknown_names_are_refused() {
    let lean = parse_config("metrics:\n  key_series: [created, last_used, high_risk]\n").unwrap();
    assert_eq!(lean.key_series, Some(KeySeriesSet::lean()));
    let settings = Settings::from_parts(&Flags::default(), Some(&lean)).unwrap();
    assert_eq!(settings.key_series, KeySeriesSet::lean());
    // Unset, or null: every family, as before the key existed.
    for text in ["", "metrics:\n  key_series:\n"] {
        let config = parse_config(text).unwrap();
        assert_eq!(
            Settings::from_parts(&Flags::default(), Some(&config))
                .unwrap()
                .key_series,
            KeySeriesSet::all()
        );
    }
    assert_eq!(
        parse_config("metrics:\n  key_series: [created, ages]\n  other: 1\n").unwrap_err(),
        [
            "metrics.other: unknown key (known keys here: key_series)",
            "metrics.key_series: \"ages\" is not one of created, last_used, age, unused, never_used, high_risk, info",
        ]
    );
    // The flag wins over the file, and is checked the same way.
    let flags = Flags {
        serve: ServeFlags {
            key_series: Some("created,last_used,high_risk,".into()),
            ..ServeFlags::default()
        },
        ..Flags::default()
    };
    assert_eq!(
        Settings::from_parts(&flags, None).unwrap().key_series,
        KeySeriesSet::lean()
    );
    let flags = Flags {
        serve: ServeFlags {
            key_series: Some("created,age_seconds".into()),
            ..ServeFlags::default()
        },
        ..Flags::default()
    };
    let Err(Error::Config(problems)) = Settings::from_parts(&flags, Some(&lean)) else {
        panic!("expected a config error");
    };
    assert_eq!(
        problems,
        ["--metrics.key-series: \"age_seconds\" is not one of created, last_used, age, unused, never_used, high_risk, info"]
    );
}

/// One check of the merged settings: a count too small, or a shard past the
/// count, is the same problem whether the file or a flag says it, and a
/// shard is checked against the count it is merged with.
#[test]
fn file_and_flags_are_checked_alike_once_merged() {
    let problems = parse_config("aws: {max_attempts: 0, max_concurrent_accounts: 0}\nshard: {count: 0}\n").unwrap_err();
    let expected = [
        "aws.max_concurrent_accounts: must be at least 1",
        "aws.max_attempts: must be at least 1",
        "shard.count: must be at least 1",
    ];
    assert_eq!(problems, expected);
    let flags = Flags {
        max_attempts: Some(0),
        max_concurrent_accounts: Some(0),
        shard_count: Some(0),
        ..Flags::default()
    };
    let Err(Error::Config(problems)) = Settings::from_parts(&flags, None) else {
        panic!("expected a config error");
    };
    assert_eq!(problems, expected);
    let file = parse_config("shard: {index: 2, count: 3}\n").unwrap();
    let flags = Flags {
        shard_count: Some(2),
        ..Flags::default()
    };
    let Err(Error::Config(problems)) = Settings::from_parts(&flags, Some(&file)) else {
        panic!("expected a config error");
    };
    assert_eq!(problems, ["shard.index: 2 must be below shard.count (2)"]);
}

#[test]
fn the_request_rate_cap_is_a_number_of_at_least_half_a_call() {
    let settings = |yaml: &str| -> Result<Settings> {
        let file = parse_config(yaml).map_err(Error::Config)?;
        Settings::from_parts(&Flags::default(), Some(&file))
    };
    let rate = |yaml: &str| settings(yaml).unwrap().aws.max_requests_per_second;
    assert_eq!(rate("aws:\n  max_requests_per_second: 2.5\n"), Some(2.5));
    assert_eq!(rate("aws:\n  max_requests_per_second: 5\n"), Some(5.0));
    assert_eq!(rate("aws: {}\n"), None);
    for (yaml, message) in [
        (
            "aws:\n  max_requests_per_second: 0.1\n",
            "aws.max_requests_per_second: must be a number of at least 0.5 (calls a second), not 0.1",
        ),
        (
            "aws:\n  max_requests_per_second: fast\n",
            "aws.max_requests_per_second: expected a number, found fast",
        ),
    ] {
        let Err(Error::Config(problems)) = settings(yaml) else {
            panic!("{yaml}: expected a config error");
        };
        assert!(problems.iter().any(|p| p.contains(message)), "{yaml}: {problems:?}");
    }
}

/// A flag declared in cli.rs is a file key by its name: the key is read
/// with the flag's own parser (a flag's bound holds in the file too), and
/// every such key is in the documented table and in the example file.
#[test]
fn every_flag_with_a_file_key_is_read_documented_and_shown() {
    let paths: Vec<String> = super::file_flags::file_flags().into_iter().map(|f| f.path).collect();
    assert_eq!(
        paths,
        [
            "refresh_interval",
            "source",
            "aws.max_concurrent_requests",
            "aws.max_concurrent_accounts",
            "credential_report.max_wait",
            "credential_report.authorization_details",
            "aws.call_timeout",
            "aws.refresh_timeout",
            "aws.max_attempts",
            "aws.max_requests_per_second",
            "shard.index",
            "shard.count",
        ]
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/config.yaml")).unwrap();
    for path in &paths {
        assert!(
            docs.contains(&format!("`{path}`")),
            "{path} is not in docs/configuration.md's table"
        );
        let key = path.rsplit('.').next().unwrap();
        assert!(
            example.contains(&format!("{key}:")),
            "{path} is not shown in examples/config.yaml"
        );
    }
    let config = parse_config(
        "aws: {max_concurrent_requests: 16, max_attempts: 5, max_requests_per_second: 2.5}\n\
         credential_report: {authorization_details: false}\nshard: {index: 1, count: 2}\n",
    )
    .unwrap();
    let flags = &config.flags;
    assert_eq!(
        (
            flags.max_concurrent_requests,
            flags.max_attempts,
            flags.max_requests_per_second
        ),
        (Some(16), Some(5), Some(2.5))
    );
    assert_eq!(flags.credential_report_authorization_details, Some(false));
    assert_eq!((flags.shard_index, flags.shard_count), (Some(1), Some(2)));
    // The flag's parser bounds the file: a count past its type is named,
    // never wrapped or cut short in silence.
    assert_eq!(
        parse_config("shard: {index: 4294967296}\naws: {max_attempts: yes, call_timeout: [1]}\n").unwrap_err(),
        [
            "aws.call_timeout: expected a string, found a list",
            "aws.max_attempts: expected a whole number of at least 1, found yes",
            "shard.index: 4294967296 is not in 0..=4294967295",
        ]
    );
}
