//! Configuration: the YAML file of SPEC §2 merged with the command line
//! (flags win). Validation collects every problem, each named by its field,
//! so that `check-config` can print them all at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::{Mapping, Value};

use crate::aws::AwsSettings;
use crate::cli::{parse_duration, parse_interval, Flags, LogFormat, LogLevel, SourceKind};
use crate::connection::HttpLimits;
use crate::error::{Error, Result};
use crate::policy::{AgeBuckets, Policy};
use crate::sources::UserFilter;

pub const DEFAULT_LISTEN_ADDRESS: &str = ":9781";
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyIdLabel {
    #[default]
    Full,
    Last4,
    None,
}

impl KeyIdLabel {
    /// Text (a log line, an AWS error message) with every access key id in it
    /// shown as `labels.access_key_id` says: whole, `****` and its last four
    /// characters, or not at all.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        static KEY_ID: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{12}([A-Z0-9]{4})\b").unwrap());
        match self {
            KeyIdLabel::Full => std::borrow::Cow::Borrowed(text),
            KeyIdLabel::Last4 => KEY_ID.replace_all(text, "****$1"),
            KeyIdLabel::None => KEY_ID.replace_all(text, "<access key id>"),
        }
    }

    /// The `access_key_id` label value, as configured by `labels.access_key_id`.
    pub fn render<'a>(&self, id: Option<&'a str>) -> &'a str {
        match (self, id) {
            (_, None) | (KeyIdLabel::None, _) => "",
            (KeyIdLabel::Full, Some(id)) => id,
            (KeyIdLabel::Last4, Some(id)) => &id[id.len().saturating_sub(4)..],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    /// IAM user tag keys exported as `tag_<key>` labels, in configured order.
    pub user_tags: Vec<String>,
    pub access_key_id: KeyIdLabel,
}

impl Labels {
    /// Label name for a user tag: `tag_` and the key with every character that
    /// a Prometheus label name cannot hold turned into `_`.
    pub fn tag_label(key: &str) -> String {
        let sanitized: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect();
        format!("tag_{sanitized}")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationAccounts {
    pub role_name: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaticAccount {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounts {
    pub organization: Option<OrganizationAccounts>,
    pub static_accounts: Vec<StaticAccount>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Everything the exporter runs with, after merging file and flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addresses: Vec<String>,
    pub telemetry_path: String,
    pub web_config_file: Option<PathBuf>,
    pub http: HttpLimits,
    pub refresh_interval: Duration,
    pub source: SourceKind,
    pub credential_report_file: Option<PathBuf>,
    pub accounts: Accounts,
    pub policy: Policy,
    pub users: UserFilter,
    pub labels: Labels,
    pub shard: Shard,
    pub aws: AwsSettings,
    pub live_report: crate::sources::live_report::LiveReportOptions,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
}

impl Settings {
    /// Reads the config file named by the flags (if any) and merges the flags.
    pub fn load(flags: &Flags) -> Result<Settings> {
        let file = match &flags.config_file {
            Some(path) => Some(read_config_file(path)?),
            None => None,
        };
        Settings::from_parts(flags, file.as_ref())
    }

    pub fn from_parts(flags: &Flags, file: Option<&FileConfig>) -> Result<Settings> {
        let mut problems = Vec::new();
        let file = file.cloned().unwrap_or_default();
        let telemetry_path = flags
            .telemetry_path
            .clone()
            .unwrap_or_else(|| DEFAULT_TELEMETRY_PATH.to_string());
        if !telemetry_path.starts_with('/') || telemetry_path.len() < 2 || telemetry_path.starts_with("/-/") {
            problems.push(format!(
                "--web.telemetry-path: {telemetry_path:?} must start with / and not be / or under /-/"
            ));
        } else if telemetry_path == "/report" {
            problems.push("--web.telemetry-path: \"/report\" is the HTML report's path; choose another".into());
        }
        let listen_addresses = if flags.listen_addresses.is_empty() {
            vec![DEFAULT_LISTEN_ADDRESS.to_string()]
        } else {
            flags.listen_addresses.clone()
        };
        for address in &listen_addresses {
            if let Err(e) = split_listen_address(address) {
                problems.push(format!("--web.listen-address: {e}"));
            }
        }
        let max_concurrent_requests = flags
            .max_concurrent_requests
            .or(file.max_concurrent_requests)
            .unwrap_or(8);
        if max_concurrent_requests == 0 {
            problems.push("aws.max_concurrent_requests: must be at least 1".into());
        }
        let max_concurrent_accounts = flags
            .max_concurrent_accounts
            .or(file.max_concurrent_accounts)
            .unwrap_or(4);
        if max_concurrent_accounts == 0 {
            problems.push("aws.max_concurrent_accounts: must be at least 1".into());
        }
        let max_attempts = flags.max_attempts.or(file.max_attempts).unwrap_or(3);
        if max_attempts == 0 {
            problems.push("aws.max_attempts: must be at least 1".into());
        }
        let shard = Shard {
            index: flags.shard_index.or(file.shard.map(|s| s.index)).unwrap_or(0),
            count: flags.shard_count.or(file.shard.map(|s| s.count)).unwrap_or(1),
        };
        if shard.count == 0 {
            problems.push("shard.count: must be at least 1".into());
        } else if shard.index >= shard.count {
            problems.push(format!(
                "shard.index: {} must be below shard.count ({})",
                shard.index, shard.count
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        Ok(Settings {
            listen_addresses,
            telemetry_path,
            web_config_file: flags.web_config_file.clone(),
            http: {
                let default = HttpLimits::default();
                HttpLimits {
                    read_header_timeout: flags.read_header_timeout.unwrap_or(default.read_header_timeout),
                    idle_timeout: flags.idle_timeout.unwrap_or(default.idle_timeout),
                    write_timeout: flags.write_timeout.unwrap_or(default.write_timeout),
                    max_requests: flags.max_requests.unwrap_or(default.max_requests),
                }
            },
            refresh_interval: flags
                .refresh_interval
                .or(file.refresh_interval)
                .unwrap_or(DEFAULT_REFRESH_INTERVAL),
            source: flags.source.or(file.source).unwrap_or(SourceKind::Api),
            credential_report_file: flags.credential_report_file.clone(),
            accounts: file.accounts,
            policy: file.policy,
            users: file.users,
            labels: file.labels,
            shard,
            aws: AwsSettings {
                max_attempts,
                call_timeout: flags
                    .call_timeout
                    .or(file.call_timeout)
                    .unwrap_or(Duration::from_secs(30)),
                refresh_timeout: flags.refresh_timeout.or(file.refresh_timeout),
                max_concurrent_requests,
                max_concurrent_accounts,
            },
            live_report: crate::sources::live_report::LiveReportOptions {
                max_wait: flags
                    .credential_report_max_wait
                    .or(file.credential_report_max_wait)
                    .unwrap_or(crate::sources::live_report::LiveReportOptions::default().max_wait),
                ..Default::default()
            },
            log_level: flags.log_level,
            log_format: flags.log_format,
        })
    }
}

/// `:9781` (every interface), `host:port`, `[v6]:port`.
pub fn split_listen_address(address: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} has no port; use host:port or :port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{address:?} has an invalid port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// What the YAML file says; everything optional.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    pub refresh_interval: Option<Duration>,
    pub source: Option<SourceKind>,
    pub accounts: Accounts,
    pub policy: Policy,
    pub users: UserFilter,
    pub labels: Labels,
    pub shard: Option<Shard>,
    pub max_concurrent_requests: Option<usize>,
    pub max_concurrent_accounts: Option<usize>,
    pub max_attempts: Option<u32>,
    pub call_timeout: Option<Duration>,
    pub refresh_timeout: Option<Duration>,
    pub credential_report_max_wait: Option<Duration>,
}

pub fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(&text).map_err(|problems| {
        Error::Config(
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect(),
        )
    })
}

/// Parses and validates the YAML text, returning every problem found.
pub fn parse_config(text: &str) -> std::result::Result<FileConfig, Vec<String>> {
    let value: Value = serde_norway::from_str(text).map_err(|e| vec![format!("not valid YAML: {e}")])?;
    let mut v = Validator::default();
    let config = v.file(&value);
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(v.problems)
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<String>,
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

    /// A duration that is waited for: at most a year.
    fn interval(&mut self, value: Option<&Value>, path: &str) -> Option<Duration> {
        let text = self.string(value, path)?;
        parse_interval(&text).map_err(|e| self.problem(path, e)).ok()
    }

    fn integer(&mut self, value: Option<&Value>, path: &str, min: u64) -> Option<u64> {
        match value? {
            Value::Null => None,
            Value::Number(n) if n.as_u64().is_some_and(|n| n >= min) => n.as_u64(),
            other => {
                self.problem(
                    path,
                    format!("expected a whole number of at least {min}, found {}", display(other)),
                );
                None
            }
        }
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

    fn file(&mut self, root: &Value) -> FileConfig {
        let mut config = FileConfig::default();
        let known = [
            "refresh_interval",
            "source",
            "credential_report",
            "accounts",
            "policy",
            "users",
            "labels",
            "shard",
            "aws",
        ];
        let Some(root) = self.mapping(Some(root), "(top level)", &known) else {
            return config;
        };
        config.refresh_interval = self.interval(root.get("refresh_interval"), "refresh_interval");
        config.source = self
            .string(root.get("source"), "source")
            .and_then(|s| match s.as_str() {
                "api" => Some(SourceKind::Api),
                "credential-report" => Some(SourceKind::CredentialReport),
                other => {
                    self.problem("source", format!("{other:?} is not one of api, credential-report"));
                    None
                }
            });
        config.accounts = self.accounts(root.get("accounts"));
        config.policy = self.policy(root.get("policy"));
        config.users = self.users(root.get("users"));
        config.labels = self.labels(root.get("labels"));
        if let Some(shard) = self.mapping(root.get("shard"), "shard", &["index", "count"]) {
            let index = self.integer(shard.get("index"), "shard.index", 0).unwrap_or(0);
            let count = self.integer(shard.get("count"), "shard.count", 1).unwrap_or(1);
            if index >= count {
                self.problem("shard.index", format!("{index} must be below shard.count ({count})"));
            }
            config.shard = Some(Shard {
                index: index.min(u32::MAX as u64) as u32,
                count: count.min(u32::MAX as u64) as u32,
            });
        }
        if let Some(report) = self.mapping(root.get("credential_report"), "credential_report", &["max_wait"]) {
            config.credential_report_max_wait = self.interval(report.get("max_wait"), "credential_report.max_wait");
        }
        let known_aws = [
            "max_concurrent_requests",
            "max_concurrent_accounts",
            "max_attempts",
            "call_timeout",
            "refresh_timeout",
        ];
        if let Some(aws) = self.mapping(root.get("aws"), "aws", &known_aws) {
            config.call_timeout = self.interval(aws.get("call_timeout"), "aws.call_timeout");
            config.refresh_timeout = self.interval(aws.get("refresh_timeout"), "aws.refresh_timeout");
            config.max_concurrent_accounts = self
                .integer(aws.get("max_concurrent_accounts"), "aws.max_concurrent_accounts", 1)
                .map(|n| n.min(256) as usize);
            config.max_concurrent_requests = self
                .integer(aws.get("max_concurrent_requests"), "aws.max_concurrent_requests", 1)
                .map(|n| n.min(1024) as usize);
            config.max_attempts = self
                .integer(aws.get("max_attempts"), "aws.max_attempts", 1)
                .map(|n| n.min(20) as u32);
        }
        config
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
        let known = ["rotated_more_than", "never_used_after", "unused_more_than"];
        if let Some(hr) = self.mapping(m.get("high_risk"), "policy.high_risk", &known) {
            if let Some(d) = self.duration(hr.get("rotated_more_than"), "policy.high_risk.rotated_more_than") {
                policy.rotated_more_than = d;
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

    fn labels(&mut self, value: Option<&Value>) -> Labels {
        let mut labels = Labels::default();
        let Some(m) = self.mapping(value, "labels", &["user_tags", "access_key_id"]) else {
            return labels;
        };
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (i, key) in self
            .strings(m.get("user_tags"), "labels.user_tags")
            .into_iter()
            .enumerate()
        {
            let label = Labels::tag_label(&key);
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
        if let Some(mode) = self.string(m.get("access_key_id"), "labels.access_key_id") {
            labels.access_key_id = match mode.as_str() {
                "full" => KeyIdLabel::Full,
                "last4" => KeyIdLabel::Last4,
                "none" => KeyIdLabel::None,
                other => {
                    self.problem(
                        "labels.access_key_id",
                        format!("{other:?} is not one of full, last4, none"),
                    );
                    KeyIdLabel::Full
                }
            };
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

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
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

pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// IAM role names: 1 to 64 of `[A-Za-z0-9+=,.@_-]`, optionally after a path.
fn is_role_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    (1..=64).contains(&base.len()) && base.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// The account id of `arn:PARTITION:iam::ACCOUNT:role/NAME`.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let ok = parts.next() == Some("arn") && parts.next().is_some_and(|p| p.starts_with("aws"));
    let (service, region, account, resource) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (ok && service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && resource.strip_prefix("role/").is_some_and(is_role_name))
    .then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_example_config_is_valid_and_complete() {
        let config = parse_config(include_str!("../examples/config.yaml")).unwrap();
        assert_eq!(config.refresh_interval, Some(Duration::from_secs(1800)));
        assert_eq!(config.policy, Policy::default());
        assert!(config.accounts.organization.is_some());
        assert_eq!(config.labels.user_tags, ["owner", "team"]);
    }

    #[test]
    fn empty_file_means_defaults() {
        let config = parse_config("").unwrap();
        assert_eq!(config.policy, Policy::default());
        assert_eq!(config.labels, Labels::default());
        assert!(config.refresh_interval.is_none() && config.source.is_none());
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
  high_risk: {rotated_more_than: 90d, never_used_after: 1d, unused_more_than: 45d}
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
        assert_eq!(config.refresh_interval, Some(Duration::from_secs(900)));
        assert_eq!(config.source, Some(SourceKind::CredentialReport));
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
        assert_eq!(config.shard, Some(Shard { index: 1, count: 3 }));
        assert_eq!(
            (config.max_concurrent_requests, config.max_attempts),
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
                "colour: unknown key (known keys here: refresh_interval, source, credential_report, accounts, policy, users, labels, shard, aws)",
                "refresh_interval: invalid duration \"soon\" (expected number at 0); use forms like 90s, 15m, 1h, 365d",
                "source: \"s3\" is not one of api, credential-report",
                "accounts.organization.role_name: is required",
                "accounts.static[0].role_arn: \"arn:aws:iam::1:user/x\" is not a role ARN (arn:aws:iam::123456789012:role/NAME)",
                "accounts.include[0]: \"12345\" is not a 12-digit AWS account id",
                "policy.high_risk.typo: unknown key (known keys here: rotated_more_than, never_used_after, unused_more_than)",
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
                "policy.high_risk.rotated_more_than: invalid duration \"500000000000y\": must be at most 36500d (100 years)",
                "policy.age_buckets: bounds must be whole seconds, as their labels are (500ms is not)",
                "credential_report.max_wait: invalid duration \"2y\": an interval or timeout must be at most 365d",
                "aws.call_timeout: invalid duration \"400d\": an interval or timeout must be at most 365d",
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
            refresh_interval: Some(Duration::from_secs(60)),
            ..Flags::default()
        };
        let settings = Settings::from_parts(&flags, Some(&file)).unwrap();
        assert_eq!(settings.refresh_interval, Duration::from_secs(60));
        assert_eq!(settings.source, SourceKind::CredentialReport);
        assert_eq!(settings.aws.max_attempts, 5);
        assert_eq!(settings.listen_addresses, [":9781"]);
        assert_eq!(settings.telemetry_path, "/metrics");
    }

    #[test]
    fn the_telemetry_path_cannot_take_the_report_s() {
        let flags = Flags {
            telemetry_path: Some("/report".into()),
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
            telemetry_path: Some("metrics".into()),
            listen_addresses: vec!["localhost".into(), ":http".into()],
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
}
