//! Command line: the flags (see docs/configuration.md), each with its `AWS_IAM_KEY_EXPORTER_*`
//! environment variable. Flags are `Option`s so that the config file can fill
//! what the command line leaves out; defaults are applied in [`crate::config`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "aws-iam-key-exporter",
    version,
    about = "Prometheus exporter for the age, last use and risk of AWS IAM access keys"
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve /metrics and refresh in the background (the default).
    Serve,
    /// Refresh once and print the details, high-risk and summary tables.
    Report(ReportArgs),
    /// Validate the configuration and exit 0, or print every problem and exit 2.
    CheckConfig {
        /// Config file to check; defaults to --config.file.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long, value_enum, default_value_t = ReportFormat::Table, env = "AWS_IAM_KEY_EXPORTER_REPORT_FORMAT")]
    pub format: ReportFormat,
    /// Which table to print; `all` prints details, high-risk and summary.
    #[arg(long, value_enum, default_value_t = ReportTable::All, env = "AWS_IAM_KEY_EXPORTER_REPORT_TABLE")]
    pub table: ReportTable,
    /// Exit with status 3 when any key is high risk.
    #[arg(long, env = "AWS_IAM_KEY_EXPORTER_FAIL_ON_HIGH_RISK")]
    pub fail_on_high_risk: bool,
    /// Write the report to this file instead of standard output.
    #[arg(long, env = "AWS_IAM_KEY_EXPORTER_REPORT_OUTPUT")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    /// One self-contained HTML document with the age chart and every table.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportTable {
    All,
    Details,
    HighRisk,
    Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// IAM API: exact, fresh, with key ids.
    Api,
    /// IAM credential report: three calls per account, no key ids.
    CredentialReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Logfmt,
    Json,
}

#[derive(Debug, Default, Args)]
pub struct Flags {
    /// Address to serve on; may be given more than once (default :9781).
    #[arg(
        long = "web.listen-address",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_WEB_LISTEN_ADDRESS",
        value_delimiter = ','
    )]
    pub listen_addresses: Vec<String>,

    /// Path under which metrics are served (default /metrics).
    #[arg(
        long = "web.telemetry-path",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_WEB_TELEMETRY_PATH"
    )]
    pub telemetry_path: Option<String>,

    /// TLS / basic-auth file in the Prometheus exporter-toolkit format.
    #[arg(
        long = "web.config.file",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_WEB_CONFIG_FILE"
    )]
    pub web_config_file: Option<PathBuf>,

    /// YAML configuration file; flags override it.
    #[arg(long = "config.file", global = true, env = "AWS_IAM_KEY_EXPORTER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Time between refreshes, e.g. 90s, 15m, 1h (default 30m).
    #[arg(long = "refresh.interval", global = true, env = "AWS_IAM_KEY_EXPORTER_REFRESH_INTERVAL", value_parser = parse_duration)]
    pub refresh_interval: Option<Duration>,

    /// Where key data comes from (default api).
    #[arg(long = "source", global = true, value_enum, env = "AWS_IAM_KEY_EXPORTER_SOURCE")]
    pub source: Option<SourceKind>,

    /// Read a credential report CSV from this file instead of AWS.
    #[arg(
        long = "credential-report.file",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_CREDENTIAL_REPORT_FILE"
    )]
    pub credential_report_file: Option<PathBuf>,

    /// AWS API calls in flight at once per account (default 8).
    #[arg(
        long = "aws.max-concurrent-requests",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_AWS_MAX_CONCURRENT_REQUESTS"
    )]
    pub max_concurrent_requests: Option<usize>,

    /// Accounts refreshed at once (default 4).
    #[arg(
        long = "aws.max-concurrent-accounts",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_AWS_MAX_CONCURRENT_ACCOUNTS"
    )]
    pub max_concurrent_accounts: Option<usize>,

    /// Longest wait for AWS to finish a credential report (default 5m).
    #[arg(long = "credential-report.max-wait", global = true, env = "AWS_IAM_KEY_EXPORTER_CREDENTIAL_REPORT_MAX_WAIT", value_parser = parse_duration)]
    pub credential_report_max_wait: Option<Duration>,

    /// Longest wait for one attempt of an AWS call (default 30s).
    #[arg(long = "aws.call-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_AWS_CALL_TIMEOUT", value_parser = parse_duration)]
    pub call_timeout: Option<Duration>,

    /// Longest time one account's refresh may take (default: the refresh interval, at least 5m).
    #[arg(long = "aws.refresh-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_AWS_REFRESH_TIMEOUT", value_parser = parse_duration)]
    pub refresh_timeout: Option<Duration>,

    /// Attempts per AWS call, first try included, with standard backoff (default 3).
    #[arg(
        long = "aws.max-attempts",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_AWS_MAX_ATTEMPTS"
    )]
    pub max_attempts: Option<u32>,

    /// This replica's shard (default 0).
    #[arg(long = "shard.index", global = true, env = "AWS_IAM_KEY_EXPORTER_SHARD_INDEX")]
    pub shard_index: Option<u32>,

    /// Number of shards (default 1).
    #[arg(long = "shard.count", global = true, env = "AWS_IAM_KEY_EXPORTER_SHARD_COUNT")]
    pub shard_count: Option<u32>,

    /// Log level.
    #[arg(long = "log.level", global = true, value_enum, default_value_t = LogLevel::Info, env = "AWS_IAM_KEY_EXPORTER_LOG_LEVEL")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt, env = "AWS_IAM_KEY_EXPORTER_LOG_FORMAT")]
    pub log_format: LogFormat,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}); use forms like 90s, 15m, 1h, 365d"))?;
    if parsed.is_zero() {
        return Err(format!("invalid duration {text:?}: must be greater than zero"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_accept_humantime_and_reject_zero_and_garbage() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("365d"), Ok(Duration::from_secs(365 * 86_400)));
        assert!(parse_duration("0s").unwrap_err().contains("greater than zero"));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn flags_are_global_and_repeatable() {
        let cli = Cli::try_parse_from([
            "x",
            "report",
            "--web.listen-address",
            "127.0.0.1:1",
            "--web.listen-address=[::1]:2",
            "--format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.flags.listen_addresses, ["127.0.0.1:1", "[::1]:2"]);
        assert!(matches!(
            cli.command,
            Some(Command::Report(ReportArgs {
                format: ReportFormat::Json,
                ..
            }))
        ));
    }
}
