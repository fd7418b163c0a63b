//! Configuration: the YAML file (docs/configuration.md) merged with the command line
//! (flags win). Validation collects every problem, each named by its field,
//! so that `check-config` can print them all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;

use crate::collect::aws::AwsSettings;
use crate::collect::sources::live_report::LiveReportOptions;
use crate::collect::sources::{SourceKind, UserFilter};
use crate::config::cli::{Flags, ServeFlags};
use crate::config::logging::{LogFormat, LogLevel};
use yaml::Validator;

mod file_flags;
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
    pub live_report: LiveReportOptions,
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

    /// Merges the flags over the file and checks the result in one pass,
    /// the same checks for a value from either, every problem collected.
    pub fn from_parts(flags: &Flags, file: Option<&FileConfig>) -> Result<Settings> {
        let file = file.cloned().unwrap_or_default();
        let given = merged(flags, &file.flags);
        let serve = &given.serve;
        let mut problems = Vec::new();
        let telemetry_path = serve
            .telemetry_path
            .clone()
            .unwrap_or_else(|| DEFAULT_TELEMETRY_PATH.to_string());
        if !telemetry_path.starts_with('/') || telemetry_path.len() < 2 || telemetry_path.starts_with("/-/") {
            problems.push(format!(
                "--web.telemetry-path: {telemetry_path:?} must start with / and not be / or under /-/"
            ));
        } else if let Some(taken) = crate::output::endpoints::LINKED
            .iter()
            .find(|e| e.path == telemetry_path)
        {
            problems.push(format!(
                "--web.telemetry-path: {telemetry_path:?} is {}; choose another",
                taken.what
            ));
        }
        let spelled = if serve.listen_addresses.is_empty() {
            vec![DEFAULT_LISTEN_ADDRESS.to_string()]
        } else {
            serve.listen_addresses.clone()
        };
        let mut listen_addresses = Vec::with_capacity(spelled.len());
        for address in &spelled {
            match ListenAddress::parse(address) {
                Ok(parsed) => listen_addresses.push(parsed),
                Err(e) => problems.push(format!("--web.listen-address: {e}")),
            }
        }
        let max_concurrent_requests = given.max_concurrent_requests.unwrap_or(8);
        let max_concurrent_accounts = given.max_concurrent_accounts.unwrap_or(4);
        let max_attempts = given.max_attempts.unwrap_or(3);
        let shard = Shard {
            index: given.shard_index.unwrap_or(0),
            count: given.shard_count.unwrap_or(1),
        };
        if let Some(rate) = given.max_requests_per_second {
            // NaN fails the comparison too.
            if !(rate >= crate::collect::aws::rate::MIN_RATE && rate.is_finite()) {
                problems.push(format!(
                    "aws.max_requests_per_second: must be a number of at least {} (calls a second), not {rate}",
                    crate::collect::aws::rate::MIN_RATE
                ));
            }
        }
        for (field, value) in [
            ("aws.max_concurrent_requests", max_concurrent_requests as u64),
            ("aws.max_concurrent_accounts", max_concurrent_accounts as u64),
            ("aws.max_attempts", max_attempts.into()),
            ("shard.count", shard.count.into()),
        ] {
            let least = least(field);
            if value < least {
                problems.push(format!("{field}: must be at least {least}"));
            }
        }
        if shard.count > 0 && shard.index >= shard.count {
            problems.push(format!(
                "shard.index: {} must be below shard.count ({})",
                shard.index, shard.count
            ));
        }
        let key_series = match &serve.key_series {
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
        let default_http = HttpLimits::default();
        Ok(Settings {
            listen_addresses,
            telemetry_path,
            web_config_file: serve.web_config_file.clone(),
            bound_addresses_file: serve.bound_addresses_file.clone(),
            http: HttpLimits {
                read_header_timeout: serve.read_header_timeout.unwrap_or(default_http.read_header_timeout),
                idle_timeout: serve.idle_timeout.unwrap_or(default_http.idle_timeout),
                write_timeout: serve.write_timeout.unwrap_or(default_http.write_timeout),
                max_requests: serve.max_requests.unwrap_or(default_http.max_requests),
            },
            refresh_interval: serve.refresh_interval.unwrap_or(DEFAULT_REFRESH_INTERVAL),
            source: given.source.unwrap_or(SourceKind::Api),
            credential_report_file: given.credential_report_file.clone(),
            accounts: file.accounts,
            policy: file.policy,
            users: file.users,
            labels: file.labels,
            key_series,
            shard,
            aws: AwsSettings {
                max_attempts,
                call_timeout: given.call_timeout.unwrap_or(Duration::from_secs(30)),
                refresh_timeout: given.refresh_timeout,
                max_concurrent_requests,
                max_concurrent_accounts,
                max_requests_per_second: given.max_requests_per_second,
            },
            live_report: LiveReportOptions {
                max_wait: given
                    .credential_report_max_wait
                    .unwrap_or(LiveReportOptions::default().max_wait),
                authorization_details: given.credential_report_authorization_details.unwrap_or(true),
                ..Default::default()
            },
            log_level: given.log_level,
            log_format: given.log_format,
        })
    }
}

/// The least value of a count, by its field: checked once, in
/// [`Settings::from_parts`], and named in the file's message for a value that
/// is no whole number.
fn least(field: &str) -> u64 {
    match field {
        "aws.max_concurrent_requests" | "aws.max_concurrent_accounts" | "aws.max_attempts" | "shard.count" => 1,
        _ => 0,
    }
}

/// Each setting the command line leaves unset, from the file: flags win.
/// Written as a whole literal, so that a flag added and not merged does not
/// compile.
fn merged(flags: &Flags, file: &Flags) -> Flags {
    let (serve, file_serve) = (&flags.serve, &file.serve);
    Flags {
        config_file: flags.config_file.clone(),
        source: flags.source.or(file.source),
        credential_report_file: flags
            .credential_report_file
            .clone()
            .or(file.credential_report_file.clone()),
        max_concurrent_requests: flags.max_concurrent_requests.or(file.max_concurrent_requests),
        max_concurrent_accounts: flags.max_concurrent_accounts.or(file.max_concurrent_accounts),
        credential_report_max_wait: flags.credential_report_max_wait.or(file.credential_report_max_wait),
        credential_report_authorization_details: flags
            .credential_report_authorization_details
            .or(file.credential_report_authorization_details),
        call_timeout: flags.call_timeout.or(file.call_timeout),
        refresh_timeout: flags.refresh_timeout.or(file.refresh_timeout),
        max_attempts: flags.max_attempts.or(file.max_attempts),
        max_requests_per_second: flags.max_requests_per_second.or(file.max_requests_per_second),
        shard_index: flags.shard_index.or(file.shard_index),
        shard_count: flags.shard_count.or(file.shard_count),
        // Not in the file.
        log_level: flags.log_level,
        log_format: flags.log_format,
        serve: ServeFlags {
            listen_addresses: if serve.listen_addresses.is_empty() {
                file_serve.listen_addresses.clone()
            } else {
                serve.listen_addresses.clone()
            },
            telemetry_path: serve.telemetry_path.clone().or(file_serve.telemetry_path.clone()),
            web_config_file: serve.web_config_file.clone().or(file_serve.web_config_file.clone()),
            read_header_timeout: serve.read_header_timeout.or(file_serve.read_header_timeout),
            idle_timeout: serve.idle_timeout.or(file_serve.idle_timeout),
            write_timeout: serve.write_timeout.or(file_serve.write_timeout),
            max_requests: serve.max_requests.or(file_serve.max_requests),
            bound_addresses_file: serve
                .bound_addresses_file
                .clone()
                .or(file_serve.bound_addresses_file.clone()),
            refresh_interval: serve.refresh_interval.or(file_serve.refresh_interval),
            key_series: serve.key_series.clone().or(file_serve.key_series.clone()),
        },
    }
}

/// What the YAML file says; everything optional. A key that a flag also
/// sets is read into `flags`, the flag's own field, so that each such
/// setting has one type and merges in one place.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    pub flags: Flags,
    pub accounts: Accounts,
    pub policy: Policy,
    pub users: UserFilter,
    pub labels: LabelSettings,
    /// `metrics.key_series`, a list where `--metrics.key-series` is one
    /// comma-separated string.
    pub key_series: Option<KeySeriesSet>,
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
    // What the file alone gets wrong once merged (a shard past the count),
    // by the same checks as the flags.
    if let Err(Error::Config(problems)) = Settings::from_parts(&Flags::default(), Some(&config)) {
        v.problems.extend(problems);
    }
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(v.problems)
    }
}

#[cfg(test)]
mod tests;
