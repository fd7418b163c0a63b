//! aws-iam-key-exporter: a Prometheus exporter for the age, last use and risk
//! of every AWS IAM access key.
//!
//! Data flows one way: [`config`] -> [`aws`] -> [`sources`] -> [`snapshot`]
//! -> [`metrics`] (served by [`server`], printed by [`report`]).

pub mod aws;
pub mod cli;
pub mod config;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod refresh;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod sources;

use std::io::Write as _;
use std::sync::Arc;

use tokio::sync::watch;

pub use error::{Error, Result};

use cli::{Cli, Command, ReportArgs, SourceKind};
use config::Settings;
use metrics::{BuildInfo, Metrics};
use refresh::{Refresher, Source};
use snapshot::SnapshotStore;
use sources::api::ApiOptions;

/// Exit status of `report --fail-on-high-risk` when a key is high risk.
pub const EXIT_HIGH_RISK: i32 = 3;

/// Runs the command and returns the process exit status.
pub async fn run(cli: Cli) -> Result<i32> {
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return Ok(check_config(file.as_ref().or(cli.flags.config_file.as_ref())));
    }
    let settings = Settings::load(&cli.flags)?;
    logging::init(settings.log_level, settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Report(args) => report(settings, args).await,
        Command::CheckConfig { .. } => unreachable!("handled above"),
    }
}

fn check_config(file: Option<&std::path::PathBuf>) -> i32 {
    let Some(path) = file else {
        eprintln!("check-config: name a file, or give --config.file");
        return 2;
    };
    match config::read_config_file(path) {
        Ok(_) => {
            println!("{}: configuration is valid", path.display());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

struct Exporter {
    store: Arc<SnapshotStore>,
    metrics: Arc<Metrics>,
    refresher: Refresher,
}

/// Wires config to source to snapshot to metrics, and says which configured
/// features this version does not act on yet.
async fn build(settings: &Settings) -> Result<Exporter> {
    let mut problems = Vec::new();
    if settings.web_config_file.is_some() {
        // Serving without the TLS or authentication that was asked for would
        // be worse than not starting.
        problems.push("--web.config.file: TLS and basic authentication are not supported yet; remove the flag to serve plain HTTP".to_string());
    }
    if settings.source == SourceKind::CredentialReport && settings.credential_report_file.is_none() {
        problems.push("--source credential-report: live credential reports from AWS are not supported yet; use --credential-report.file with a report saved by `aws iam get-credential-report`".to_string());
    }
    if !problems.is_empty() {
        return Err(Error::Config(problems));
    }
    warn_inactive(settings);

    let store = Arc::new(SnapshotStore::default());
    let metrics = Arc::new(Metrics::new(
        store.clone(),
        settings.policy.clone(),
        settings.labels.clone(),
        BuildInfo::CURRENT,
    ));
    let source = match &settings.credential_report_file {
        Some(path) => Source::File {
            path: path.clone(),
            filter: settings.users.clone(),
        },
        None => {
            let sdk = aws::load_sdk_config(&settings.aws).await;
            Source::Api {
                clients: aws::Clients::new(&sdk, &metrics.aws_calls),
                options: ApiOptions {
                    max_concurrent_requests: settings.aws.max_concurrent_requests,
                    user_tags: settings.labels.user_tags.clone(),
                    filter: settings.users.clone(),
                },
            }
        }
    };
    let refresher = Refresher::new(source, store.clone(), metrics.clone());
    Ok(Exporter {
        store,
        metrics,
        refresher,
    })
}

fn warn_inactive(settings: &Settings) {
    let accounts = &settings.accounts;
    if accounts.organization.is_some() || !accounts.static_accounts.is_empty() {
        tracing::warn!("accounts.organization and accounts.static are not active yet: only the account of the exporter's own credentials is read");
    }
    if !accounts.include.is_empty() || !accounts.exclude.is_empty() {
        tracing::warn!("accounts.include and accounts.exclude are not active yet");
    }
    if settings.shard.count > 1 {
        tracing::warn!(
            index = settings.shard.index,
            count = settings.shard.count,
            "sharding is not active yet: this replica reads its one account"
        );
    }
    let wants_tags = !settings.users.exclude_tags.is_empty() || !settings.labels.user_tags.is_empty();
    if settings.credential_report_file.is_some() && wants_tags {
        tracing::warn!("users.exclude_tags and labels.user_tags need the api source: a credential report has no tags");
    }
}

async fn serve(settings: Settings) -> Result<i32> {
    let listeners = server::bind(&settings.listen_addresses).await?;
    let exporter = build(&settings).await?;
    let (stop, stopped) = watch::channel(false);
    let router = server::router(
        exporter.metrics.clone(),
        exporter.store.clone(),
        &settings.telemetry_path,
    );
    let refresh = tokio::spawn(exporter.refresher.run(settings.refresh_interval, stopped.clone()));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    server::serve(listeners, router, stopped).await?;
    let _ = refresh.await;
    Ok(0)
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
    if let Some(error) = exporter.refresher.refresh().await {
        return Err(Error::Refresh(error));
    }
    let snapshot = exporter.store.load();
    let report = report::Report::build(
        &snapshot,
        &settings.policy,
        settings.labels.access_key_id,
        chrono::Utc::now(),
    );
    let text = report.render(args.format, args.table);
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Output(e.to_string()))?;
    Ok(if args.fail_on_high_risk && report.has_high_risk() {
        EXIT_HIGH_RISK
    } else {
        0
    })
}
