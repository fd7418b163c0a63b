//! aws-iam-key-exporter: a Prometheus exporter for the age, last use and risk
//! of every AWS IAM access key.
//!
//! The folders are the layers, and data flows one way through them:
//! [`config`] (at the edge: flags and file, merged and checked) -> [`collect`]
//! (AWS access, the sources, the refresh loop) -> [`domain`] (the key model,
//! the policy, the snapshot) -> [`output`] (metrics, report, landing page),
//! served by [`http`]. tests/architecture.rs reads the layers from the folders
//! and checks which may import which; this file is the root that wires them.
//! To read the exposition, start at `output::metrics::reference`: the plain
//! rendering that the fast path is tested against.

pub mod collect;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod output;

use std::io::Write as _;
use std::sync::Arc;

use tokio::sync::watch;

pub use error::{Error, Result};

use collect::aws::AwsCallCounters;
use collect::refresh::{self, RefreshMetrics, RefreshSettings, Refresher};
use collect::sources::api::ApiOptions;
use collect::sources::live_report::LiveReportOptions;
use collect::sources::{Source, SourceKind};
use config::cli::{Cli, Command, ReportArgs};
use config::logging;
use config::settings::{self as config_settings, Settings};
use domain::disclosure;
use domain::policy::Policy;
use domain::snapshot::{self, SnapshotStore};
use domain::{assess, failure};
use http::{listen, server, web_config};
use output::metrics::{BuildInfo, Metrics};
use output::{key_series, process, report};

/// Exit status of `report --fail-on-high-risk` when a key is high risk.
pub const EXIT_HIGH_RISK: i32 = 3;
pub use error::EXIT_NOTHING_READ;

/// Runs the command and returns the process exit status.
pub async fn run(cli: Cli) -> Result<i32> {
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return Ok(check_config(file.as_ref().or(cli.flags.config_file.as_ref())));
    }
    let settings = Settings::load(&cli.flags)?;
    if matches!(cli.command, Some(Command::Report(_))) {
        logging::init_for_report(settings.log_level, settings.log_format);
    } else {
        logging::init(settings.log_level, settings.log_format);
    }
    match cli.command.unwrap_or(Command::Serve(Default::default())) {
        Command::Serve(_) => serve(settings).await,
        Command::Report(args) => report(settings, args).await,
        Command::CheckConfig { .. } => unreachable!("handled above"),
    }
}

fn check_config(file: Option<&std::path::PathBuf>) -> i32 {
    let Some(path) = file else {
        eprintln!("check-config: name a file, or give --config.file");
        return 2;
    };
    match config_settings::read_config_file(path) {
        Ok(config) => {
            println!("{}: configuration is valid", path.display());
            if let Some(line) = rate_capacity(&config) {
                println!("{line}");
            }
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

/// What a capped rate lets the API source read within the interval: the
/// file cannot say how many users there are, only how many fit.
fn rate_capacity(config: &config_settings::FileConfig) -> Option<String> {
    let rate = config.flags.max_requests_per_second?;
    if config.flags.source.is_some_and(|s| s != SourceKind::Api) {
        return None;
    }
    let interval = config
        .flags
        .serve
        .refresh_interval
        .unwrap_or(config_settings::DEFAULT_REFRESH_INTERVAL);
    let users = collect::aws::rate::api_users_within(interval, rate);
    Some(format!(
        "aws.max_requests_per_second {rate} with the API source reads at most {users} users of one key each per account within refresh_interval ({}); for more, use the credential-report source, a longer interval or more shards (docs/configuration.md, IAM rate limits)",
        humantime::format_duration(interval)
    ))
}

/// Every metric of the exporter: the families the components own, and the
/// rendering of the snapshot. Assembled here, at the root, so that no
/// component needs to know the others' metrics.
#[derive(Debug)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub aws_calls: AwsCallCounters,
    pub refresh: RefreshMetrics,
}

impl Telemetry {
    /// With the `process_*` metrics of this process, which the clocked
    /// variants leave out so that their output stays the same run to run.
    pub fn new(
        store: Arc<SnapshotStore>,
        policy: Policy,
        labels: disclosure::LabelSettings,
        series: key_series::KeySeriesSet,
        build: BuildInfo,
    ) -> Telemetry {
        Telemetry::assemble(store, policy, labels, series, build, chrono::Utc::now, true)
    }

    /// As [`Telemetry::new`], with ages computed against `clock` (for tests and benchmarks).
    pub fn with_clock(
        store: Arc<SnapshotStore>,
        policy: Policy,
        labels: disclosure::LabelSettings,
        build: BuildInfo,
        clock: fn() -> chrono::DateTime<chrono::Utc>,
    ) -> Telemetry {
        let all = key_series::KeySeriesSet::all();
        Telemetry::assemble(store, policy, labels, all, build, clock, false)
    }

    fn assemble(
        store: Arc<SnapshotStore>,
        policy: Policy,
        labels: disclosure::LabelSettings,
        series: key_series::KeySeriesSet,
        build: BuildInfo,
        clock: fn() -> chrono::DateTime<chrono::Utc>,
        process: bool,
    ) -> Telemetry {
        // Registration order is exposition order: refresh errors, AWS calls,
        // the process, then the snapshot's families.
        let mut registry = prometheus_client::registry::Registry::default();
        let refresh = RefreshMetrics::default();
        refresh.register(&mut registry);
        let aws_calls = AwsCallCounters::default();
        aws_calls.register(&mut registry);
        if process {
            registry.register_collector(Box::new(process::ProcessCollector));
        }
        let metrics = Arc::new(Metrics::new(
            registry,
            assess::Assessor::with_clock(store, policy, clock),
            labels,
            series,
            build,
        ));
        Telemetry {
            metrics,
            aws_calls,
            refresh,
        }
    }
}

struct Exporter {
    store: Arc<SnapshotStore>,
    metrics: Arc<Metrics>,
    refresher: Refresher,
}

/// Wires config to accounts to sources to snapshot to metrics.
async fn build(settings: &Settings) -> Result<Exporter> {
    let store = Arc::new(SnapshotStore::default());
    let telemetry = Telemetry::new(
        store.clone(),
        settings.policy.clone(),
        settings.labels.clone(),
        settings.key_series,
        BuildInfo::CURRENT,
    );
    // A credential report has no tags; the authorization details read
    // beside it do, unless turned off.
    let without_tags = settings.credential_report_file.is_some()
        || (settings.source == SourceKind::CredentialReport && !settings.live_report.authorization_details);
    if without_tags && (!settings.users.exclude_tags.is_empty() || !settings.labels.user_tags.is_empty()) {
        tracing::warn!(
            "users.exclude_tags and labels.user_tags need tags, which a credential report file, or the credential-report source with credential_report.authorization_details false, does not read"
        );
    }
    let source = match &settings.credential_report_file {
        Some(path) => {
            warn_ignored_for_file(settings);
            Source::report_file(path.clone())
        }
        None => Source::new(
            settings.source,
            ApiOptions {
                max_concurrent_requests: settings.aws.max_concurrent_requests,
                user_tags: settings.labels.user_tags.clone(),
            },
            LiveReportOptions {
                user_tags: settings.labels.user_tags.clone(),
                ..settings.live_report.clone()
            },
        ),
    };
    let refresh = RefreshSettings {
        interval: settings.refresh_interval,
        source,
        users: settings.users.clone(),
        accounts: settings.accounts.clone(),
        shard: settings.shard,
        max_concurrent_accounts: settings.aws.max_concurrent_accounts,
        key_ids: settings.labels.access_key_id,
        refresh_timeout: settings
            .aws
            .refresh_timeout
            .unwrap_or_else(|| refresh::default_refresh_timeout(settings.refresh_interval)),
    };
    let refresher = Refresher::new(
        refresh,
        &settings.aws,
        store.clone(),
        telemetry.refresh.clone(),
        telemetry.aws_calls.clone(),
    )
    .await;
    Ok(Exporter {
        store,
        metrics: telemetry.metrics,
        refresher,
    })
}

/// A report file is one account's data: the account and shard settings have
/// nothing to act on, and saying so beats ignoring them silently.
fn warn_ignored_for_file(settings: &Settings) {
    let accounts = &settings.accounts;
    if accounts.organization.is_some() || !accounts.static_accounts.is_empty() || settings.shard.count > 1 {
        tracing::warn!("--credential-report.file reads one report: accounts and shard settings are ignored");
    }
}

/// The HTML report's header: where the data came from and which accounts
/// it covers, said in the settings' terms. Here, not in report, so that the
/// report renders without knowing the configuration.
pub fn report_context(settings: &Settings) -> report::html::Context {
    use std::fmt::Write as _;
    let source = match (&settings.credential_report_file, settings.source) {
        (Some(path), _) => format!("IAM credential report file {}", path.display()),
        (None, SourceKind::Api) => "IAM API".to_string(),
        (None, SourceKind::CredentialReport) => "IAM credential report".to_string(),
    };
    let accounts = &settings.accounts;
    let mut scope = if settings.credential_report_file.is_some() {
        "the account of the report file".to_string()
    } else if let Some(org) = &accounts.organization {
        format!("the accounts of the organization, through role {}", org.role_name)
    } else if !accounts.static_accounts.is_empty() {
        format!(
            "{} accounts listed in the configuration",
            accounts.static_accounts.len()
        )
    } else {
        "the account of the exporter's credentials".to_string()
    };
    if settings.credential_report_file.is_none() {
        if !accounts.include.is_empty() || !accounts.exclude.is_empty() {
            scope.push_str(", filtered by accounts.include/exclude");
        }
        if settings.shard.count > 1 {
            let _ = write!(
                scope,
                "; this replica's shard only: shard.index {} of shard.count {}",
                settings.shard.index, settings.shard.count
            );
        }
    }
    report::html::Context {
        key_ids: settings.labels.access_key_id,
        user_tags: settings.labels.user_tags.clone(),
        source,
        scope,
    }
}

async fn serve(settings: Settings) -> Result<i32> {
    let web_config = match &settings.web_config_file {
        Some(path) => {
            web_config::WebConfig::load(path).map_err(|e| Error::Config(vec![format!("--web.config.file: {e}")]))?
        }
        None => web_config::WebConfig::default(),
    };
    let web: web_config::SharedWebConfig = Arc::new(arc_swap::ArcSwap::from_pointee(web_config));
    process::raise_open_files_limit();
    let listeners = server::bind(&settings.listen_addresses).await?;
    if let Some(path) = &settings.bound_addresses_file {
        let addresses = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<std::io::Result<Vec<_>>>();
        addresses
            .and_then(|a| listen::write_bound_addresses(path, &a))
            .map_err(|e| Error::Output(format!("--web.bound-addresses-file {}: {e}", path.display())))?;
    }
    let exporter = build(&settings).await?;
    let (stop, stopped) = watch::channel(false);
    if let Some(path) = &settings.web_config_file {
        tokio::spawn(web_config::watch(path.clone(), web.clone(), stopped.clone()));
    }
    let router = server::router(
        exporter.metrics.clone(),
        exporter.store.clone(),
        &settings.telemetry_path,
        web.clone(),
        Arc::new(report::Page {
            assessor: assess::Assessor::new(exporter.store.clone(), settings.policy.clone()),
            context: report_context(&settings),
        }),
        settings.refresh_interval,
        settings.http,
    );
    let refresh = tokio::spawn(exporter.refresher.run(stopped.clone()));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    let server = server::serve(listeners, router, web, settings.http, stopped.clone());
    supervise(server, refresh, stopped).await
}

/// Serves until shutdown. The refresh task returns only at shutdown: if it
/// ends before (a panic, a bug), the exporter would go on serving ever older
/// data while ready, so it exits non-zero instead and lets its supervisor
/// restart it.
async fn supervise(
    server: impl std::future::Future<Output = Result<()>>,
    mut refresh: tokio::task::JoinHandle<()>,
    stopped: watch::Receiver<bool>,
) -> Result<i32> {
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => {
            served?;
            let _ = refresh.await;
            Ok(0)
        }
        ended = &mut refresh => {
            if *stopped.borrow() {
                server.await?;
                return Ok(0);
            }
            let why = match ended {
                Err(e) if e.is_panic() => "it panicked",
                Err(_) => "it was cancelled",
                Ok(()) => "it returned",
            };
            tracing::error!(reason = why, "the refresh task ended unexpectedly; exiting so that the exporter is restarted");
            Err(Error::RefreshStopped(why))
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn report(settings: Settings, args: ReportArgs) -> Result<i32> {
    let mut exporter = build(&settings).await?;
    let errors = exporter.refresher.refresh_all().await;
    let snapshot = exporter.store.load();
    if let Err(why) = snapshot.readiness() {
        return Err(Error::NothingRead(why));
    }
    if !errors.is_empty() {
        // Incomplete data must neither pass a gate nor look like a report:
        // nothing is written, and the error says which accounts failed.
        return Err(Error::ReportIncomplete(report_failures(
            &snapshot,
            &errors,
            settings.labels.access_key_id,
        )));
    }
    let assessed = assess::assess(snapshot, &settings.policy, chrono::Utc::now());
    let report = report::Report::build(&assessed, settings.labels.access_key_id);
    let text = report.render(args.format, args.table, &report_context(&settings));
    match &args.output {
        Some(path) => std::fs::write(path, text.as_bytes())
            .map_err(|e| Error::Output(format!("--output {}: {e}", path.display())))?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| Error::Output(e.to_string()))?,
    }
    Ok(if args.fail_on_high_risk && report.has_high_risk() {
        EXIT_HIGH_RISK
    } else {
        0
    })
}

/// One entry per account that could not be read, `account ID: reason in words: message`,
/// from the snapshot, where the message is already redacted; the refresh's
/// own errors (redacted here) when the snapshot has none.
fn report_failures(
    snapshot: &snapshot::Snapshot,
    errors: &[failure::SourceError],
    key_ids: disclosure::KeyIdLabel,
) -> Vec<String> {
    let failed: Vec<String> = snapshot
        .accounts
        .iter()
        .filter_map(|(id, state)| {
            let line = state.last_error.as_ref()?.describe();
            Some(if id.is_empty() {
                line
            } else {
                format!("account {id}: {line}")
            })
        })
        .collect();
    if !failed.is_empty() {
        return failed;
    }
    errors
        .iter()
        .map(|e| {
            failure::SourceError {
                message: key_ids.redact(&e.message).into_owned(),
                ..e.clone()
            }
            .describe()
        })
        .collect()
}

#[cfg(test)]
mod tests;
