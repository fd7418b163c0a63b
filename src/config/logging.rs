//! Logs in logfmt or JSON. The exporter's own level follows `--log.level`;
//! libraries (the AWS SDK, hyper) only speak up with warnings, which also
//! keeps request signing details out of debug logs.

use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Logfmt,
    Json,
}

pub fn init(level: LogLevel, format: LogFormat) {
    init_dropping(level, format, false)
}

/// For `report`, which prints every refresh failure itself, one line each, as
/// its error: at `warn` and `error` (its default is `warn`) the refresher's
/// error line for the same failure (target [`crate::collect::refresh::LOG_TARGET`],
/// level error) is left out, so that a failure reads once. Asked for `info`
/// or more, every line is logged.
pub fn init_for_report(level: LogLevel, format: LogFormat) {
    init_dropping(level, format, matches!(level, LogLevel::Error | LogLevel::Warn))
}

fn init_dropping(level: LogLevel, format: LogFormat, drop_refresh_failures: bool) {
    let level = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::new(format!("warn,aws_iam_key_exporter={level}"));
    let drop = drop_refresh_failures.then(|| {
        tracing_subscriber::filter::filter_fn(|meta| {
            !(*meta.level() == tracing::Level::ERROR && meta.target().starts_with(crate::collect::refresh::LOG_TARGET))
        })
    });
    let registry = tracing_subscriber::registry().with(filter).with(drop);
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Logfmt => registry
            .with(tracing_logfmt::builder().layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
}
