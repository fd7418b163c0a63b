//! Command line: the flags (see docs/configuration.md), each with its `AWS_IAM_KEY_EXPORTER_*`
//! environment variable. Flags are `Option`s so that the config file can fill
//! what the command line leaves out; defaults are applied in [`crate::config`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::logging::{LogFormat, LogLevel};
use crate::report::{ReportFormat, ReportTable};
use crate::sources::SourceKind;

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

    /// Longest a client may take to send a request's headers, the first one
    /// timed from the connection (TLS handshake included) (default 10s).
    #[arg(long = "web.read-header-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_WEB_READ_HEADER_TIMEOUT", value_parser = parse_interval)]
    pub read_header_timeout: Option<Duration>,

    /// Longest a keep-alive connection may wait for its next request (default 2m).
    #[arg(long = "web.idle-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_WEB_IDLE_TIMEOUT", value_parser = parse_interval)]
    pub idle_timeout: Option<Duration>,

    /// Longest from a request's headers to the last byte of its response;
    /// a slower reader is cut off (default 1m).
    #[arg(long = "web.write-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_WEB_WRITE_TIMEOUT", value_parser = parse_interval)]
    pub write_timeout: Option<Duration>,

    /// Scrapes in flight at once; more get 503 at once; 0: no limit (default 40).
    #[arg(
        long = "web.max-requests",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_WEB_MAX_REQUESTS"
    )]
    pub max_requests: Option<usize>,

    /// Once listening, write the bound addresses here, one a line: for a
    /// supervisor or test that starts the exporter on port 0.
    #[arg(
        long = "web.bound-addresses-file",
        global = true,
        hide = true,
        env = "AWS_IAM_KEY_EXPORTER_WEB_BOUND_ADDRESSES_FILE"
    )]
    pub bound_addresses_file: Option<PathBuf>,

    /// Per-key families to export, comma-separated, among created,
    /// last_used, age, unused, never_used, high_risk, info (default all);
    /// `created,last_used,high_risk` halves what Prometheus holds.
    #[arg(
        long = "metrics.key-series",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_METRICS_KEY_SERIES"
    )]
    pub key_series: Option<String>,

    /// YAML configuration file; flags override it.
    #[arg(long = "config.file", global = true, env = "AWS_IAM_KEY_EXPORTER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Time between refreshes, e.g. 90s, 15m, 1h (default 30m).
    #[arg(long = "refresh.interval", global = true, env = "AWS_IAM_KEY_EXPORTER_REFRESH_INTERVAL", value_parser = parse_interval)]
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
    #[arg(long = "credential-report.max-wait", global = true, env = "AWS_IAM_KEY_EXPORTER_CREDENTIAL_REPORT_MAX_WAIT", value_parser = parse_interval)]
    pub credential_report_max_wait: Option<Duration>,

    /// Longest wait for one attempt of an AWS call (default 30s).
    #[arg(long = "aws.call-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_AWS_CALL_TIMEOUT", value_parser = parse_interval)]
    pub call_timeout: Option<Duration>,

    /// Longest time one account's refresh may take (default: the refresh interval, at least 5m).
    #[arg(long = "aws.refresh-timeout", global = true, env = "AWS_IAM_KEY_EXPORTER_AWS_REFRESH_TIMEOUT", value_parser = parse_interval)]
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
    // Far beyond any key's age, and still exact in f64 seconds and in the
    // clock's arithmetic.
    if parsed > MAX_DURATION {
        return Err(format!("invalid duration {text:?}: must be at most 36500d (100 years)"));
    }
    Ok(parsed)
}

/// The longest interval or timeout: added to the monotonic clock (which
/// panics on overflow), it must stay far from the clock's limits.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 86_400);
const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// A duration that is waited for (an interval, a timeout): at most a year.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let parsed = parse_duration(text)?;
    if parsed > MAX_INTERVAL {
        return Err(format!(
            "invalid duration {text:?}: an interval or timeout must be at most 365d"
        ));
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
        assert!(parse_duration("500000000000y").unwrap_err().contains("at most 36500d"));
        assert_eq!(parse_interval("365d"), Ok(MAX_INTERVAL));
        assert!(parse_interval("366d").unwrap_err().contains("at most 365d"));
        assert!(parse_interval("500000000000y").is_err());
    }

    #[test]
    fn web_limit_flags_read_their_environment_variables() {
        let cli = Cli::try_parse_from(["x", "--web.read-header-timeout", "3s", "--web.max-requests", "7"]).unwrap();
        assert_eq!(cli.flags.read_header_timeout, Some(Duration::from_secs(3)));
        assert_eq!(cli.flags.max_requests, Some(7));
        let err = Cli::try_parse_from(["x", "--web.write-timeout", "500000000000y"]).unwrap_err();
        assert!(err.to_string().contains("--web.write-timeout"), "{err}");
        let names: Vec<String> = Cli::command()
            .get_arguments()
            .filter(|a| a.get_long().is_some_and(|l| l.starts_with("web.")))
            .map(|a| a.get_env().unwrap().to_string_lossy().into_owned())
            .collect();
        for env in [
            "AWS_IAM_KEY_EXPORTER_WEB_READ_HEADER_TIMEOUT",
            "AWS_IAM_KEY_EXPORTER_WEB_IDLE_TIMEOUT",
            "AWS_IAM_KEY_EXPORTER_WEB_WRITE_TIMEOUT",
            "AWS_IAM_KEY_EXPORTER_WEB_MAX_REQUESTS",
        ] {
            assert!(names.iter().any(|n| n == env), "{env} in {names:?}");
        }
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
