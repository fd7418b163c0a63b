//! The HTTP server: landing page, metrics, health and readiness, on every
//! listen address, with gzip when the scraper accepts it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;

use crate::config::split_listen_address;
use crate::error::{Error, Result};
use crate::metrics::{BuildInfo, Format, Metrics};
use crate::report::html::escape as html_escape;
use crate::snapshot::SnapshotStore;
use crate::web_config::SharedWebConfig;

/// Longest a client may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest the server waits for requests in flight at shutdown.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    store: Arc<SnapshotStore>,
    telemetry_path: Arc<str>,
    renders: Arc<RenderShare>,
    report: Arc<crate::report::html::Context>,
}

/// Scrapes that arrive while a rendering is in flight, or within
/// `SHARE_FOR` of one, get that rendering instead of making their own: at
/// 100,000 keys a rendering is 100 MB and half a second of CPU, and a gzip
/// compression of it a second more; many scrapers at once must cost neither
/// memory nor CPU in proportion.
#[derive(Default)]
struct RenderShare {
    /// Per format, plain and gzip: the latest body, kept only while a
    /// response still sends it (a weak reference), and when it was made.
    slots: [tokio::sync::Mutex<Option<Shared>>; 4],
}

/// A body and when it was made.
type Shared = (std::time::Instant, std::sync::Weak<Vec<u8>>);

const SHARE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl RenderShare {
    async fn get(
        &self,
        metrics: &Arc<Metrics>,
        format: Format,
        gzip: bool,
    ) -> Result<Arc<Vec<u8>>, tokio::task::JoinError> {
        if !gzip {
            let metrics = metrics.clone();
            return self
                .shared(format as usize * 2, move || metrics.render(format).into_bytes())
                .await;
        }
        let plain = Box::pin(self.get(metrics, format, false)).await?;
        self.shared(format as usize * 2 + 1, move || compress(&plain)).await
    }

    /// One computation per slot at a time; the callers that wait share it.
    async fn shared(
        &self,
        slot: usize,
        make: impl FnOnce() -> Vec<u8> + Send + 'static,
    ) -> Result<Arc<Vec<u8>>, tokio::task::JoinError> {
        let mut slot = self.slots[slot].lock().await;
        if let Some((at, weak)) = slot.as_ref() {
            if at.elapsed() < SHARE_FOR {
                if let Some(body) = weak.upgrade() {
                    return Ok(body);
                }
            }
        }
        let body = Arc::new(tokio::task::spawn_blocking(make).await?);
        *slot = Some((std::time::Instant::now(), Arc::downgrade(&body)));
        Ok(body)
    }
}

/// gzip at the fastest level: scrapes are frequent and the text compresses
/// about thirty times even so.
fn compress(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 20), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    encoder.write_all(body).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

pub fn router(
    metrics: Arc<Metrics>,
    store: Arc<SnapshotStore>,
    telemetry_path: &str,
    web: SharedWebConfig,
    report: Arc<crate::report::html::Context>,
) -> Router {
    let state = AppState {
        metrics,
        store,
        telemetry_path: telemetry_path.into(),
        renders: Arc::default(),
        report,
    };
    Router::new()
        .route("/", get(landing_page))
        .route(telemetry_path, get(metrics_handler))
        .route("/report", get(report_page))
        .layer(axum::middleware::from_fn_with_state(web.clone(), basic_auth))
        // Probes (kubelet, load balancers) carry no credentials; these two
        // tell nothing about the keys. They are served on the same listener,
        // so with TLS they are HTTPS too, as with the exporter-toolkit.
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .layer(axum::middleware::from_fn_with_state(web, response_headers))
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// Basic authentication against `basic_auth_users`, when there are any.
async fn basic_auth(State(web): State<SharedWebConfig>, request: Request, next: Next) -> Response {
    let config = web.load_full();
    if config.users.is_empty() {
        return next.run(request).await;
    }
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(user, password)| (user.to_string(), password.to_string()))
        });
    let authorized = match credentials {
        // bcrypt is slow on purpose: keep it off the async workers.
        Some((user, password)) => tokio::task::spawn_blocking(move || config.authenticate(&user, &password))
            .await
            .unwrap_or(false),
        None => false,
    };
    if authorized {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"aws-iam-key-exporter\""),
            )],
            "Unauthorized\n",
        )
            .into_response()
    }
}

/// The `http_server_config.headers` on every response.
async fn response_headers(State(web): State<SharedWebConfig>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    for (name, value) in &web.load().headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    // Rendering and compressing run on the blocking pool: they would stall
    // other requests on this worker.
    match state.renders.get(&state.metrics, format, gzip).await {
        Ok(body) => {
            let mut response = (
                [(header::CONTENT_TYPE, format.content_type())],
                axum::body::Body::from(bytes::Bytes::from_owner(SharedBody(body))),
            )
                .into_response();
            if gzip {
                // Already compressed: the compression layer leaves it alone.
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
                    .headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering metrics failed\n").into_response()
        }
    }
}

/// `gzip` listed in Accept-Encoding, and not refused with `q=0`.
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// A shared body sent without copying it.
struct SharedBody(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
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

/// The HTML report of the current snapshot, rendered on the blocking pool:
/// at many thousand keys it is megabytes of text.
async fn report_page(State(state): State<AppState>) -> Response {
    // Before the first refresh a report would show no keys, which reads as
    // "nothing to worry about": say it is not ready instead.
    if !state.store.is_ready() {
        return ready(State(state)).await;
    }
    let snapshot = state.store.load();
    let context = state.report.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let assessed = crate::assess::assess(snapshot, &context.policy, chrono::Utc::now());
        let report = crate::report::Report::build(&assessed, context.key_ids);
        crate::report::html::render(&report, &context)
    })
    .await;
    match rendered {
        Ok(page) => Html(page).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the report failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering the report failed\n").into_response()
        }
    }
}

async fn landing_page(State(state): State<AppState>) -> Html<String> {
    let build = BuildInfo::CURRENT;
    let path = html_escape(&state.telemetry_path);
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>AWS IAM key exporter</title></head>\n<body>\n\
<h1>AWS IAM key exporter</h1>\n<p>Version {} (revision {}).</p>\n<ul>\n\
<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/report\">Report</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n\
</ul>\n</body>\n</html>\n",
        html_escape(build.version),
        html_escape(build.revision),
    ))
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
/// TLS or plain HTTP per connection, as the web configuration in force says.
pub async fn serve(
    listeners: Vec<TcpListener>,
    router: Router,
    web: SharedWebConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let servers = listeners
        .into_iter()
        .map(|listener| accept_loop(listener, router.clone(), web.clone(), shutdown.clone()));
    futures::future::try_join_all(servers).await?;
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    web: SharedWebConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let tls = web.load().tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the shutdown grace period");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_used_when_accepted() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("identity, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("br, deflate"));
    }

    #[test]
    fn compressed_bodies_decompress_to_the_original() {
        let text = "aws_iam_users{account_id=\"111122223333\"} 3\n".repeat(1000);
        let mut plain = String::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(&compress(text.as_bytes())[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, text);
    }
}
