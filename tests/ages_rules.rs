//! The optional recording rules for the ages (deploy/prometheus/
//! aws-iam-key-exporter.ages.rules.yml) load and compute, from the lean set's
//! timestamps alone, what the exporter's age, unused and never-used gauges
//! say: `promtool check rules` and their unit tests.

mod common;

const INSTALL: &str = "install Debian's package with `apt-get install prometheus` (promtool)";

fn promtool(args: &[&str]) -> String {
    common::run_ok(&common::tool(&["promtool"], INSTALL), args, INSTALL)
}

#[test]
#[ignore = "tools tier, run by make test: needs promtool"]
fn the_age_recording_rules_pass_promtool_and_their_unit_tests() {
    let rules = common::repo_path("deploy/prometheus/aws-iam-key-exporter.ages.rules.yml");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(out.contains("SUCCESS: 3 rules found"), "{out}");
    let tests = common::repo_path("deploy/prometheus/aws-iam-key-exporter.ages.rules.test.yml");
    let out = promtool(&["test", "rules", tests.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}
