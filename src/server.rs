//! The HTTP server: landing page, metrics, health and readiness, on every
//! listen address, with gzip when the scraper accepts it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;

use crate::config::split_listen_address;
use crate::error::{Error, Result};
use crate::metrics::{BuildInfo, Format, Metrics};
use crate::snapshot::SnapshotStore;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    store: Arc<SnapshotStore>,
    telemetry_path: Arc<str>,
}

pub fn router(metrics: Arc<Metrics>, store: Arc<SnapshotStore>, telemetry_path: &str) -> Router {
    let state = AppState {
        metrics,
        store,
        telemetry_path: telemetry_path.into(),
    };
    Router::new()
        .route("/", get(landing_page))
        .route(telemetry_path, get(metrics_handler))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .layer(CompressionLayer::new())
        .with_state(state)
}

async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    // Rendering a large organization takes long enough to stall other
    // requests on this worker; do it on the blocking pool.
    let metrics = state.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.render(format)).await {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering metrics failed\n").into_response()
        }
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.store.is_ready() {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first refresh has not finished\n",
        )
            .into_response()
    }
}

async fn landing_page(State(state): State<AppState>) -> Html<String> {
    let build = BuildInfo::CURRENT;
    let path = html_escape(&state.telemetry_path);
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>AWS IAM key exporter</title></head>\n<body>\n\
<h1>AWS IAM key exporter</h1>\n<p>Version {} (revision {}).</p>\n<ul>\n\
<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n\
</ul>\n</body>\n</html>\n",
        html_escape(build.version),
        html_escape(build.revision),
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Binds every address first, so that a taken port fails the start.
pub async fn bind(addresses: &[String]) -> Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let fail = |source| Error::Listen {
            address: address.clone(),
            source,
        };
        let (host, port) = split_listen_address(address)
            .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let listener = if host.is_empty() {
            // `:port` means every interface: IPv6 and IPv4 where the host has
            // both, IPv4 alone where it has no IPv6.
            match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
                Ok(l) => l,
                Err(_) => TcpListener::bind(SocketAddr::from(([0u8; 4], port)))
                    .await
                    .map_err(fail)?,
            }
        } else {
            TcpListener::bind((host.as_str(), port)).await.map_err(fail)?
        };
        tracing::info!(address = %listener.local_addr().map_err(fail)?, "listening");
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves until `shutdown` turns true, then finishes the requests in flight.
pub async fn serve(listeners: Vec<TcpListener>, router: Router, shutdown: watch::Receiver<bool>) -> Result<()> {
    let servers = listeners.into_iter().map(|listener| {
        let mut shutdown = shutdown.clone();
        let router = router.clone();
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                })
                .await
        }
    });
    futures::future::try_join_all(servers).await.map_err(Error::Serve)?;
    Ok(())
}
