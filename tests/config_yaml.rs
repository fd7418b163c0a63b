//! What a config file's YAML layer reports, message for message: duplicate
//! keys, alias bombs, deep nesting and syntax errors are refused with the
//! parser's own words behind "not valid YAML:". These pin the messages so that
//! a change of YAML crate (serde_yaml was replaced by a maintained fork) cannot
//! change what `check-config` tells a user.

use aws_iam_key_exporter::config::settings::parse_config;

fn problems(text: &str) -> Vec<String> {
    parse_config(text).expect_err("the config should be refused")
}

#[test]
fn a_duplicate_top_level_key_is_refused() {
    assert_eq!(
        problems("refresh_interval: 15m\nrefresh_interval: 30m\n"),
        ["not valid YAML: duplicate entry with key \"refresh_interval\""]
    );
}

#[test]
fn a_duplicate_nested_key_is_refused_with_its_place() {
    assert_eq!(
        problems("aws:\n  max_attempts: 3\n  max_attempts: 5\n"),
        ["not valid YAML: aws: duplicate entry with key \"max_attempts\" at line 2 column 3"]
    );
}

/// "Billion laughs": nine levels of nine aliases each, 9^9 strings if expanded.
#[test]
fn an_alias_bomb_is_refused_before_it_expands() {
    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let mut previous = 'a';
    for name in 'b'..='i' {
        let aliases = vec![format!("*{previous}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{aliases}]\n"));
        previous = name;
    }
    assert_eq!(problems(&bomb), ["not valid YAML: repetition limit exceeded"]);
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("labels: {}{}", "[".repeat(200), "]".repeat(200));
    assert_eq!(
        problems(&deep),
        ["not valid YAML: recursion limit exceeded at line 1 column 136"]
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    assert_eq!(
        problems("policy: [unclosed"),
        ["not valid YAML: did not find expected ',' or ']' at line 2 column 1, \
          while parsing a flow sequence at line 1 column 9"]
    );
    assert_eq!(
        problems("policy:\n\t- x\n"),
        [
            "not valid YAML: found character that cannot start any token at line 2 column 1, \
          while scanning for the next token"
        ]
    );
    assert_eq!(
        problems("aws: *nope\n"),
        ["not valid YAML: unknown anchor at line 1 column 6"]
    );
}

#[test]
fn more_than_one_document_is_refused() {
    assert_eq!(
        problems("a: 1\n---\nb: 2\n"),
        ["not valid YAML: deserializing from YAML containing more than one document is not supported"]
    );
}

#[test]
fn yaml_values_are_described_as_before() {
    assert_eq!(
        problems("- a\n- b\n"),
        ["(top level): expected a mapping, found a list"]
    );
    assert_eq!(
        problems("refresh_interval: !foo 15m\n"),
        ["refresh_interval: expected a string, found a tagged value"]
    );
    assert_eq!(
        problems("refresh_interval: 0x1F\nshard: {index: 1.5e3, count: .inf}\n"),
        [
            "refresh_interval: invalid duration \"31\" (time unit needed, for example 31sec or 31ms); \
             use forms like 90s, 15m, 1h, 365d",
            "shard.index: expected a whole number of at least 0, found 1500.0",
            "shard.count: expected a whole number of at least 1, found .inf",
        ]
    );
    assert!(parse_config("").is_ok());
}
