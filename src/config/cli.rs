//! Command line: the flags (see docs/configuration.md), each with its `AWS_IAM_KEY_EXPORTER_*`
//! environment variable. Flags are `Option`s so that the config file can fill
//! what the command line leaves out; defaults are applied in [`crate::config`].

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::collect::sources::SourceKind;
use crate::config::logging::{LogFormat, LogLevel};
use crate::output::report::{ReportFormat, ReportTable};

#[derive(Debug, Parser)]
#[command(
    name = "aws-iam-key-exporter",
    version,
    about = "Prometheus exporter for the age, last use and risk of AWS IAM access keys"
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,

    /// The serve-only flags given before any subcommand; moved into `flags.serve`
    /// by [`Cli::try_parse_args_from`], empty after it.
    #[command(flatten)]
    pub serve: ServeFlags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve /metrics and refresh in the background (the default).
    Serve(ServeFlags),
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
    /// Output format: a text table, JSON, CSV, or one HTML document.
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

/// Every setting the command line gives, for [`crate::config`]. These flags
/// apply to every command and are global; the serve-only ones are parsed as
/// [`ServeFlags`] and moved into `serve` by [`Cli::try_parse_args_from`].
#[derive(Debug, Clone, Default, Args)]
pub struct Flags {
    /// YAML configuration file; flags override it.
    #[arg(long = "config.file", global = true, env = "AWS_IAM_KEY_EXPORTER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

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

    /// Whether the credential-report source also reads each account's
    /// policies and tags (GetAccountAuthorizationDetails, a few calls per
    /// account): `false` for the tightest IAM budgets, at the cost of the
    /// admin and quarantine facts and of tags (default true).
    #[arg(
        long = "credential-report.authorization-details",
        global = true,
        value_name = "BOOL",
        env = "AWS_IAM_KEY_EXPORTER_CREDENTIAL_REPORT_AUTHORIZATION_DETAILS"
    )]
    pub credential_report_authorization_details: Option<bool>,

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

    /// Most AWS calls a second per account, for accounts whose IAM budget is
    /// shared with others (default: no cap; throttling lowers the rate anyway).
    #[arg(
        long = "aws.max-requests-per-second",
        global = true,
        env = "AWS_IAM_KEY_EXPORTER_AWS_MAX_REQUESTS_PER_SECOND"
    )]
    pub max_requests_per_second: Option<f64>,

    /// This replica's shard (default 0).
    #[arg(long = "shard.index", global = true, env = "AWS_IAM_KEY_EXPORTER_SHARD_INDEX")]
    pub shard_index: Option<u32>,

    /// Number of shards (default 1).
    #[arg(long = "shard.count", global = true, env = "AWS_IAM_KEY_EXPORTER_SHARD_COUNT")]
    pub shard_count: Option<u32>,

    /// Log level (default info; warn for report).
    #[arg(long = "log.level", global = true, value_enum, default_value_t = LogLevel::Info, hide_default_value = true, env = "AWS_IAM_KEY_EXPORTER_LOG_LEVEL")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt, env = "AWS_IAM_KEY_EXPORTER_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// The serve-only settings, parsed as [`ServeFlags`] before or after
    /// `serve` and settled here by [`Cli::try_parse_args_from`].
    #[arg(skip)]
    pub serve: ServeFlags,
}

/// The flags only `serve` uses: given before any subcommand (`serve` is the
/// default) or after `serve`; `report` and `check-config` neither list nor
/// accept them.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct ServeFlags {
    /// Address to serve on; may be given more than once (default :9781).
    #[arg(
        long = "web.listen-address",
        env = "AWS_IAM_KEY_EXPORTER_WEB_LISTEN_ADDRESS",
        value_delimiter = ','
    )]
    pub listen_addresses: Vec<String>,

    /// Path under which metrics are served (default /metrics).
    #[arg(long = "web.telemetry-path", env = "AWS_IAM_KEY_EXPORTER_WEB_TELEMETRY_PATH")]
    pub telemetry_path: Option<String>,

    /// TLS / basic-auth file in the Prometheus exporter-toolkit format.
    #[arg(long = "web.config.file", env = "AWS_IAM_KEY_EXPORTER_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Longest a client may take to send a request's headers, the first one
    /// timed from the connection (TLS handshake included) (default 10s).
    #[arg(long = "web.read-header-timeout", env = "AWS_IAM_KEY_EXPORTER_WEB_READ_HEADER_TIMEOUT", value_parser = parse_interval)]
    pub read_header_timeout: Option<Duration>,

    /// Longest a keep-alive connection may wait for its next request (default 2m).
    #[arg(long = "web.idle-timeout", env = "AWS_IAM_KEY_EXPORTER_WEB_IDLE_TIMEOUT", value_parser = parse_interval)]
    pub idle_timeout: Option<Duration>,

    /// Longest from a request's headers to the last byte of its response;
    /// a slower reader is cut off (default 1m).
    #[arg(long = "web.write-timeout", env = "AWS_IAM_KEY_EXPORTER_WEB_WRITE_TIMEOUT", value_parser = parse_interval)]
    pub write_timeout: Option<Duration>,

    /// Scrapes in flight at once; more get 503 at once; 0: no limit (default 40).
    #[arg(long = "web.max-requests", env = "AWS_IAM_KEY_EXPORTER_WEB_MAX_REQUESTS")]
    pub max_requests: Option<usize>,

    /// Once listening, write the bound addresses here, one a line: for a
    /// supervisor or test that starts the exporter on port 0.
    #[arg(
        long = "web.bound-addresses-file",
        hide = true,
        env = "AWS_IAM_KEY_EXPORTER_WEB_BOUND_ADDRESSES_FILE"
    )]
    pub bound_addresses_file: Option<PathBuf>,

    /// Time between refreshes, e.g. 90s, 15m, 1h (default 30m).
    #[arg(long = "refresh.interval", env = "AWS_IAM_KEY_EXPORTER_REFRESH_INTERVAL", value_parser = parse_interval)]
    pub refresh_interval: Option<Duration>,

    #[arg(
        long = "metrics.key-series",
        env = "AWS_IAM_KEY_EXPORTER_METRICS_KEY_SERIES",
        help = crate::output::key_series::flag_help()
    )]
    pub key_series: Option<String>,
}

impl ServeFlags {
    /// The arguments' ids, as in [`clap::ArgMatches`].
    fn ids() -> Vec<String> {
        ServeFlags::augment_args(clap::Command::new("serve"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    }
}

impl Cli {
    /// Parses the process's arguments, exiting as clap does (status 2) on a
    /// usage error. Use this, not `Cli::parse`: see [`Cli::try_parse_args_from`].
    pub fn parse_args() -> Cli {
        Cli::try_parse_args_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` and settles what the derive alone cannot: the serve-only
    /// flags (before `serve`, after it, or from the environment) land in
    /// `flags`; given on the command line to another command they are a
    /// usage error; `report` logs at warn unless `--log.level` says otherwise.
    pub fn try_parse_args_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(&args)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        let mut serve = std::mem::take(&mut cli.serve);
        match (&mut cli.command, matches.subcommand()) {
            (None, _) => {}
            (Some(Command::Serve(after)), Some(_)) => {
                std::mem::take(after);
                // Both copies of a serve flag read its environment variable,
                // so only what is written after `serve` may override the
                // first: the same line parsed again, that copy blind to the
                // environment.
                let after_only = Cli::command()
                    .mut_subcommand("serve", |serve| serve.mut_args(|arg| arg.env(None::<&str>)))
                    .try_get_matches_from(&args)?;
                if let Some((_, after)) = after_only.subcommand() {
                    serve
                        .update_from_arg_matches(after)
                        .map_err(|e| e.format(&mut command))?;
                }
            }
            (Some(_), Some((name, _))) => {
                if let Some(id) = ServeFlags::ids()
                    .iter()
                    .find(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
                {
                    let long = command
                        .get_arguments()
                        .find(|a| a.get_id() == id)
                        .and_then(|a| a.get_long())
                        .unwrap_or(id);
                    let message = format!("--{long} applies to serve only, not to {name}");
                    return Err(command.error(clap::error::ErrorKind::ArgumentConflict, message));
                }
                // What the environment says for serve does not concern the others.
                serve = ServeFlags::default();
            }
            (Some(_), None) => unreachable!("a command is a subcommand"),
        }
        cli.flags.serve = serve;
        if matches!(cli.command, Some(Command::Report(_)))
            && matches.value_source("log_level") == Some(ValueSource::DefaultValue)
        {
            cli.flags.log_level = LogLevel::Warn;
        }
        Ok(cli)
    }
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
        let cli =
            Cli::try_parse_args_from(["x", "--web.read-header-timeout", "3s", "--web.max-requests", "7"]).unwrap();
        assert_eq!(cli.flags.serve.read_header_timeout, Some(Duration::from_secs(3)));
        assert_eq!(cli.flags.serve.max_requests, Some(7));
        let err = Cli::try_parse_args_from(["x", "--web.write-timeout", "500000000000y"]).unwrap_err();
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
    fn common_flags_are_global_and_serve_flags_repeatable() {
        let cli = Cli::try_parse_args_from(["x", "report", "--config.file", "c.yaml", "--format", "json"]).unwrap();
        assert_eq!(cli.flags.config_file, Some(PathBuf::from("c.yaml")));
        assert!(matches!(
            cli.command,
            Some(Command::Report(ReportArgs {
                format: ReportFormat::Json,
                ..
            }))
        ));
        let cli = Cli::try_parse_args_from([
            "x",
            "--web.listen-address",
            "127.0.0.1:1",
            "--web.listen-address=[::1]:2",
        ])
        .unwrap();
        assert_eq!(cli.flags.serve.listen_addresses, ["127.0.0.1:1", "[::1]:2"]);
    }

    /// Each serve-only flag, with two valid values.
    const SERVE_VALUES: [(&str, &str, &str); 10] = [
        ("web.listen-address", "127.0.0.1:1", "127.0.0.1:2"),
        ("web.telemetry-path", "/a", "/b"),
        ("web.config.file", "a.yml", "b.yml"),
        ("web.read-header-timeout", "1s", "2s"),
        ("web.idle-timeout", "1s", "2s"),
        ("web.write-timeout", "1s", "2s"),
        ("web.max-requests", "1", "2"),
        ("web.bound-addresses-file", "a.txt", "b.txt"),
        ("refresh.interval", "1s", "2s"),
        ("metrics.key-series", "created", "info"),
    ];

    /// A serve flag works before any subcommand, before `serve` and after it
    /// (after wins); `report` and `check-config` refuse it in any position.
    #[test]
    fn serve_flags_apply_to_serve_in_every_position_and_to_nothing_else() {
        let command = ServeFlags::augment_args(clap::Command::new("x"));
        let longs: Vec<&str> = command.get_arguments().filter_map(|a| a.get_long()).collect();
        assert_eq!(longs, SERVE_VALUES.map(|(long, ..)| long), "every serve flag is tried");
        let flags = |args: &[&str]| {
            let cli = Cli::try_parse_args_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            format!("{:?}", cli.flags)
        };
        for (long, a, b) in SERVE_VALUES {
            let flag = format!("--{long}");
            let only_b = flags(&["x", &flag, b]);
            assert_ne!(only_b, flags(&["x"]), "{long} is applied");
            assert_eq!(flags(&["x", "serve", &flag, b]), only_b, "{long} after serve");
            assert_eq!(flags(&["x", &flag, b, "serve"]), only_b, "{long} before serve");
            assert_eq!(
                flags(&["x", &flag, a, "serve", &flag, b]),
                only_b,
                "{long}: after serve wins"
            );
            let err = Cli::try_parse_args_from(["x", &flag, a, "report"]).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string()
                    .contains(&format!("{flag} applies to serve only, not to report")),
                "{err}"
            );
            let err = Cli::try_parse_args_from(["x", "report", &flag, a]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            let err = Cli::try_parse_args_from(["x", "check-config", &flag, a]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
        }
    }

    #[test]
    fn report_logs_at_warn_unless_asked() {
        let level = |args: &[&str]| Cli::try_parse_args_from(args).unwrap().flags.log_level;
        assert_eq!(level(&["x", "report"]), LogLevel::Warn);
        assert_eq!(level(&["x", "report", "--log.level", "info"]), LogLevel::Info);
        assert_eq!(level(&["x", "--log.level", "debug", "report"]), LogLevel::Debug);
        assert_eq!(level(&["x"]), LogLevel::Info);
        assert_eq!(level(&["x", "serve"]), LogLevel::Info);
    }
}
