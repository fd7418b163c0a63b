//! The YAML file's validator: walks the document, checks every field against
//! its type and bounds, and collects each problem with the field's path, so
//! that `check-config` reports them all at once. The keys a flag also sets
//! are read by the flag's own parser (`file_flags`); the sections only the
//! file has (accounts, policy, users, labels, metrics) are read here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use clap::ValueEnum;

use super::{file_flags, FileConfig};
use crate::collect::sources::UserFilter;
use crate::config::cli::parse_duration;
use crate::config::cli::Flags;
use crate::domain::accounts::{Accounts, OrganizationAccounts, StaticAccount};
use crate::domain::disclosure::LabelSettings;
use crate::domain::ids::{is_account_id, is_role_name, role_arn_account};
use crate::domain::policy::{AgeBuckets, Policy};
use crate::output::key_series::KeySeriesSet;

#[derive(Default)]
pub(super) struct Validator {
    pub(super) problems: Vec<String>,
}

impl Validator {
    fn problem(&mut self, path: &str, message: impl std::fmt::Display) {
        self.problems.push(format!("{path}: {message}"));
    }

    /// The mapping at `path`, after reporting keys that are not in `known`.
    /// `null` and absence both mean "not set".
    fn mapping<'a>(&mut self, value: Option<&'a Value>, path: &str, known: &[&str]) -> Option<&'a Mapping> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => {
                for key in m.keys() {
                    match key.as_str() {
                        Some(k) if known.contains(&k) => {}
                        _ => self.problem(
                            &join(path, &display(key)),
                            format!("unknown key (known keys here: {})", known.join(", ")),
                        ),
                    }
                }
                Some(m)
            }
            Some(other) => {
                self.problem(path, format!("expected a mapping, found {}", kind(other)));
                None
            }
        }
    }

    fn string(&mut self, value: Option<&Value>, path: &str) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.problem(path, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    fn duration(&mut self, value: Option<&Value>, path: &str) -> Option<Duration> {
        let text = self.string(value, path)?;
        parse_duration(&text).map_err(|e| self.problem(path, e)).ok()
    }

    /// One of an enum's values, spelled as on the command line.
    fn choice<T: ValueEnum>(&mut self, value: Option<&Value>, path: &str) -> Option<T> {
        let text = self.string(value, path)?;
        let choice = T::from_str(&text, false).ok();
        if choice.is_none() {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                .collect();
            self.problem(path, format!("{text:?} is not one of {}", names.join(", ")));
        }
        choice
    }

    fn strings(&mut self, value: Option<&Value>, path: &str) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(Some(item), &format!("{path}[{i}]")))
                .collect(),
            Some(other) => {
                self.problem(path, format!("expected a list, found {}", kind(other)));
                Vec::new()
            }
        }
    }

    fn account_ids(&mut self, value: Option<&Value>, path: &str) -> Vec<String> {
        let ids = self.strings(value, path);
        for (i, id) in ids.iter().enumerate() {
            if !is_account_id(id) {
                self.problem(
                    &format!("{path}[{i}]"),
                    format!("{id:?} is not a 12-digit AWS account id"),
                );
            }
        }
        ids
    }

    pub(super) fn file(&mut self, root: &Value) -> FileConfig {
        let mut config = FileConfig::default();
        let flags = file_flags::file_flags();
        // The keys a flag also sets come first, at the top level or in their
        // flag's section; then the sections only the file has.
        let mut known = file_flags::keys_in(&flags, None);
        for section in flags.iter().filter_map(|f| f.section()) {
            if !known.iter().any(|k| k == section) {
                known.push(section.to_string());
            }
        }
        known.extend(["accounts", "policy", "users", "labels", "metrics"].map(String::from));
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let Some(root) = self.mapping(Some(root), "(top level)", &known) else {
            return config;
        };
        config.flags = self.flag_keys(root, &flags);
        config.accounts = self.accounts(root.get("accounts"));
        config.policy = self.policy(root.get("policy"));
        config.users = self.users(root.get("users"));
        config.labels = self.labels(root.get("labels"));
        if let Some(metrics) = self.mapping(root.get("metrics"), "metrics", &["key_series"]) {
            // `null`, as absence, means the default (all), not none.
            if let Some(names) = metrics.get("key_series").filter(|v| !v.is_null()) {
                let names = self.strings(Some(names), "metrics.key_series");
                match KeySeriesSet::parse(names.iter().map(String::as_str)) {
                    Ok(set) => config.key_series = Some(set),
                    Err(e) => self.problem("metrics.key_series", e),
                }
            }
        }
        config
    }

    /// Every key a flag also sets, each checked by its flag's parser and
    /// read into the flag's field, merged with the command line later.
    fn flag_keys(&mut self, root: &Mapping, flags: &[file_flags::FileFlag]) -> Flags {
        let mut sections: Vec<&str> = Vec::new();
        for section in flags.iter().filter_map(|f| f.section()) {
            if !sections.contains(&section) {
                sections.push(section);
            }
        }
        let mut arguments = Vec::new();
        let mut read = |v: &mut Self, mapping: &Mapping, section: Option<&str>| {
            for flag in flags.iter().filter(|f| f.section() == section) {
                if let Some(value) = file_flags::value_in(mapping, flag) {
                    match file_flags::argument(flag, value) {
                        Ok(argument) => arguments.push(argument),
                        Err(e) => v.problem(&flag.path, e),
                    }
                }
            }
        };
        read(self, root, None);
        for section in sections {
            let known = file_flags::keys_in(flags, Some(section));
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            if let Some(mapping) = self.mapping(root.get(section), section, &known) {
                read(self, mapping, Some(section));
            }
        }
        file_flags::parse(&arguments).unwrap_or_else(|e| {
            self.problem("(top level)", e);
            Flags::default()
        })
    }

    fn accounts(&mut self, value: Option<&Value>) -> Accounts {
        let mut accounts = Accounts::default();
        let Some(m) = self.mapping(value, "accounts", &["organization", "static", "include", "exclude"]) else {
            return accounts;
        };
        if let Some(org) = self.mapping(
            m.get("organization"),
            "accounts.organization",
            &["role_name", "external_id"],
        ) {
            let role_name = self.string(org.get("role_name"), "accounts.organization.role_name");
            match role_name {
                Some(name) if is_role_name(&name) => {
                    accounts.organization = Some(OrganizationAccounts {
                        role_name: name,
                        external_id: self.string(org.get("external_id"), "accounts.organization.external_id"),
                    })
                }
                Some(name) => self.problem(
                    "accounts.organization.role_name",
                    format!("{name:?} is not a valid IAM role name"),
                ),
                None => self.problem("accounts.organization.role_name", "is required"),
            }
        }
        match m.get("static") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("accounts.static[{i}]");
                    let Some(entry) = self.mapping(Some(item), &path, &["role_arn", "external_id", "name"]) else {
                        continue;
                    };
                    match self.string(entry.get("role_arn"), &format!("{path}.role_arn")) {
                        Some(arn) if role_arn_account(&arn).is_some() => accounts.static_accounts.push(StaticAccount {
                            role_arn: arn,
                            external_id: self.string(entry.get("external_id"), &format!("{path}.external_id")),
                            name: self.string(entry.get("name"), &format!("{path}.name")),
                        }),
                        Some(arn) => self.problem(
                            &format!("{path}.role_arn"),
                            format!("{arn:?} is not a role ARN (arn:aws:iam::123456789012:role/NAME)"),
                        ),
                        None => self.problem(&format!("{path}.role_arn"), "is required"),
                    }
                }
            }
            Some(other) => self.problem("accounts.static", format!("expected a list, found {}", kind(other))),
        }
        accounts.include = self.account_ids(m.get("include"), "accounts.include");
        accounts.exclude = self.account_ids(m.get("exclude"), "accounts.exclude");
        accounts
    }

    fn policy(&mut self, value: Option<&Value>) -> Policy {
        let mut policy = Policy::default();
        let Some(m) = self.mapping(value, "policy", &["high_risk", "age_buckets"]) else {
            return policy;
        };
        let known = [
            "rotated_more_than",
            "admin_rotated_more_than",
            "never_used_after",
            "unused_more_than",
        ];
        if let Some(hr) = self.mapping(m.get("high_risk"), "policy.high_risk", &known) {
            if let Some(d) = self.duration(hr.get("rotated_more_than"), "policy.high_risk.rotated_more_than") {
                policy.rotated_more_than = d;
            }
            let admin = "policy.high_risk.admin_rotated_more_than";
            if let Some(d) = self.duration(hr.get("admin_rotated_more_than"), admin) {
                policy.admin_rotated_more_than = d;
            }
            if let Some(d) = self.duration(hr.get("never_used_after"), "policy.high_risk.never_used_after") {
                policy.never_used_after = d;
            }
            policy.unused_more_than = self.duration(hr.get("unused_more_than"), "policy.high_risk.unused_more_than");
        }
        if let Some(bounds) = m.get("age_buckets").filter(|v| !v.is_null()) {
            let texts = self.strings(Some(bounds), "policy.age_buckets");
            let count = self.problems.len();
            let durations: Vec<Duration> = texts
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    parse_duration(t)
                        .map_err(|e| self.problem(&format!("policy.age_buckets[{i}]"), e))
                        .ok()
                })
                .collect();
            if self.problems.len() == count {
                match AgeBuckets::new(durations) {
                    Ok(buckets) => policy.age_buckets = buckets,
                    Err(e) => self.problem("policy.age_buckets", e),
                }
            }
        }
        policy
    }

    fn users(&mut self, value: Option<&Value>) -> UserFilter {
        let mut filter = UserFilter::default();
        let Some(m) = self.mapping(value, "users", &["exclude", "exclude_tags"]) else {
            return filter;
        };
        for (i, pattern) in self.strings(m.get("exclude"), "users.exclude").into_iter().enumerate() {
            match regex::Regex::new(&pattern) {
                Ok(re) => filter.exclude.push(re),
                Err(e) => self.problem(
                    &format!("users.exclude[{i}]"),
                    format!("invalid regex {pattern:?}: {e}"),
                ),
            }
        }
        match m.get("exclude_tags") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(tags)) => {
                for (k, v) in tags {
                    let path = format!("users.exclude_tags.{}", display(k));
                    if let (Some(k), Some(v)) = (self.string(Some(k), &path), self.string(Some(v), &path)) {
                        filter.exclude_tags.insert(k, v);
                    }
                }
            }
            Some(other) => self.problem(
                "users.exclude_tags",
                format!("expected a mapping of tag key to value, found {}", kind(other)),
            ),
        }
        filter
    }

    fn labels(&mut self, value: Option<&Value>) -> LabelSettings {
        let mut labels = LabelSettings::default();
        let Some(m) = self.mapping(value, "labels", &["user_tags", "access_key_id"]) else {
            return labels;
        };
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (i, key) in self
            .strings(m.get("user_tags"), "labels.user_tags")
            .into_iter()
            .enumerate()
        {
            let label = LabelSettings::tag_label(&key);
            if key.is_empty() {
                self.problem(&format!("labels.user_tags[{i}]"), "tag key must not be empty");
            } else if let Some(first) = seen.insert(label.clone(), key.clone()) {
                self.problem(
                    &format!("labels.user_tags[{i}]"),
                    format!("{key:?} and {first:?} would both be exported as label {label}"),
                );
            } else {
                labels.user_tags.push(key);
            }
        }
        if let Some(mode) = self.choice(m.get("access_key_id"), "labels.access_key_id") {
            labels.access_key_id = mode;
        }
        labels
    }
}

fn join(path: &str, key: &str) -> String {
    if path == "(top level)" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
