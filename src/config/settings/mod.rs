//! Configuration: the YAML file (docs/configuration.md) merged with the command line
//! (flags win). Validation collects every problem, each named by its field,
//! so that `check-config` can print them all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;

use crate::collect::aws::AwsSettings;
use crate::collect::sources::{SourceKind, UserFilter};
use crate::config::cli::Flags;
use crate::config::logging::{LogFormat, LogLevel};
use yaml::Validator;

mod yaml;
use crate::domain::accounts::{Accounts, Shard};
use crate::domain::disclosure::LabelSettings;
use crate::domain::policy::Policy;
use crate::error::{Error, Result};
use crate::http::connection::HttpLimits;
use crate::http::listen::ListenAddress;
use crate::output::key_series::KeySeriesSet;

pub const DEFAULT_LISTEN_ADDRESS: &str = ":9781";
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// Everything the exporter runs with, after merging file and flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addresses: Vec<ListenAddress>,
    pub telemetry_path: String,
    pub web_config_file: Option<PathBuf>,
    /// Where to write the bound listen addresses (`--web.bound-addresses-file`).
    pub bound_addresses_file: Option<PathBuf>,
    pub http: HttpLimits,
    pub refresh_interval: Duration,
    pub source: SourceKind,
    pub credential_report_file: Option<PathBuf>,
    pub accounts: Accounts,
    pub policy: Policy,
    pub users: UserFilter,
    pub labels: LabelSettings,
    /// The per-key families `/metrics` exports (`metrics.key_series`).
    pub key_series: KeySeriesSet,
    pub shard: Shard,
    pub aws: AwsSettings,
    pub live_report: crate::collect::sources::live_report::LiveReportOptions,
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
        } else if telemetry_path == crate::output::report::PATH {
            problems.push(format!(
                "--web.telemetry-path: {:?} is the HTML report's path; choose another",
                crate::output::report::PATH
            ));
        }
        let spelled = if flags.listen_addresses.is_empty() {
            vec![DEFAULT_LISTEN_ADDRESS.to_string()]
        } else {
            flags.listen_addresses.clone()
        };
        let mut listen_addresses = Vec::with_capacity(spelled.len());
        for address in &spelled {
            match ListenAddress::parse(address) {
                Ok(parsed) => listen_addresses.push(parsed),
                Err(e) => problems.push(format!("--web.listen-address: {e}")),
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
        let key_series = match &flags.key_series {
            // Empty pieces (a trailing comma, or an empty value for none)
            // name nothing.
            Some(names) => KeySeriesSet::parse(names.split(',').filter(|n| !n.trim().is_empty())).unwrap_or_else(|e| {
                problems.push(format!("--metrics.key-series: {e}"));
                KeySeriesSet::all()
            }),
            None => file.key_series.unwrap_or_default(),
        };
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        Ok(Settings {
            listen_addresses,
            telemetry_path,
            web_config_file: flags.web_config_file.clone(),
            bound_addresses_file: flags.bound_addresses_file.clone(),
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
            key_series,
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
            live_report: crate::collect::sources::live_report::LiveReportOptions {
                max_wait: flags
                    .credential_report_max_wait
                    .or(file.credential_report_max_wait)
                    .unwrap_or(crate::collect::sources::live_report::LiveReportOptions::default().max_wait),
                ..Default::default()
            },
            log_level: flags.log_level,
            log_format: flags.log_format,
        })
    }
}

/// What the YAML file says; everything optional.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    pub refresh_interval: Option<Duration>,
    pub source: Option<SourceKind>,
    pub accounts: Accounts,
    pub policy: Policy,
    pub users: UserFilter,
    pub labels: LabelSettings,
    pub key_series: Option<KeySeriesSet>,
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

#[cfg(test)]
mod tests;
