//! The HTTP server: landing page, metrics, health and readiness, on every
//! listen address, with gzip when the scraper accepts it; time limits on
//! every connection (see [`crate::http::connection`]) and a bound on scrapes in
//! flight.

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
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::domain::snapshot::SnapshotStore;
use crate::error::{Error, Result};
use crate::http::connection::{Clock, HttpLimits, Limited, RequestGuard};
use crate::http::listen::ListenAddress;
use crate::http::web_config::SharedWebConfig;
use crate::output::metrics::{Body, BuildInfo, Format, Metrics, Slices};

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
    report: Arc<crate::output::report::Page>,
    refresh_interval: std::time::Duration,
    /// Scrapes in flight, up to `--web.max-requests`; `None`: no limit.
    in_flight: Option<Arc<Semaphore>>,
}

/// Scrapes that arrive while a rendering is in flight, or within
/// `SHARE_FOR` of one, get that rendering instead of making their own: at
/// 100,000 keys the parts rendered per scrape (the ages) are tens of MB and
/// a fraction of a second of CPU; many scrapers at once must cost neither
/// memory nor CPU in proportion. The parts that do not vary are kept by
/// [`Metrics`] itself.
#[derive(Default)]
struct RenderShare {
    /// Per format, plain and gzip: the latest body, kept only while a
    /// response still sends it (a weak reference), and when it was made.
    slots: [tokio::sync::Mutex<Option<Shared>>; 4],
}

/// A body and when it was made.
type Shared = (std::time::Instant, std::sync::Weak<Body>);

const SHARE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl RenderShare {
    /// One rendering per slot at a time; the callers that wait share it.
    async fn get(
        &self,
        metrics: &Arc<Metrics>,
        format: Format,
        gzip: bool,
    ) -> Result<Arc<Body>, tokio::task::JoinError> {
        let mut slot = self.slots[format.slot() * 2 + gzip as usize].lock().await;
        if let Some((at, weak)) = slot.as_ref() {
            if at.elapsed() < SHARE_FOR {
                if let Some(body) = weak.upgrade() {
                    return Ok(body);
                }
            }
        }
        let metrics = metrics.clone();
        let body = Arc::new(tokio::task::spawn_blocking(move || metrics.body(format, gzip)).await?);
        *slot = Some((std::time::Instant::now(), Arc::downgrade(&body)));
        Ok(body)
    }
}

pub fn router(
    metrics: Arc<Metrics>,
    store: Arc<SnapshotStore>,
    telemetry_path: &str,
    web: SharedWebConfig,
    report: Arc<crate::output::report::Page>,
    refresh_interval: std::time::Duration,
    limits: HttpLimits,
) -> Router {
    let state = AppState {
        metrics,
        store,
        telemetry_path: telemetry_path.into(),
        renders: Arc::default(),
        report,
        refresh_interval,
        in_flight: (limits.max_requests > 0).then(|| Arc::new(Semaphore::new(limits.max_requests))),
    };
    use crate::output::endpoints::{HEALTHY, READY, REPORT};
    Router::new()
        .route("/", get(landing_page))
        .route(telemetry_path, get(metrics_handler))
        .route(REPORT.path, get(report_page))
        .layer(axum::middleware::from_fn_with_state(web.clone(), basic_auth))
        // Probes (kubelet, load balancers) carry no credentials; these two
        // tell nothing about the keys. They are served on the same listener,
        // so with TLS they are HTTPS too, as with the exporter-toolkit.
        .route(HEALTHY.path, get(|| async { "Healthy\n" }))
        .route(READY.path, get(ready))
        .layer(axum::middleware::from_fn_with_state(web, response_headers))
        .with_state(state)
}

/// `user:password` of an `Authorization: Basic` header; the scheme in any
/// case (RFC 7235).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let (scheme, b64) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim()
        .split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let (user, password) = String::from_utf8(raw)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((user, password))
}

/// Basic authentication against `basic_auth_users`, when there are any.
async fn basic_auth(State(web): State<SharedWebConfig>, request: Request, next: Next) -> Response {
    let config = web.load_full();
    // As the toolkit, before the password is checked.
    if config.rate_limit.as_ref().is_some_and(|limit| !limit.allow()) {
        return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response();
    }
    if config.users.is_empty() {
        return next.run(request).await;
    }
    let authorized = match basic_credentials(request.headers()) {
        Some((user, password)) => config.authorize(user, password).await,
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
    // As node_exporter's --web.max-requests: a scrape over the limit is
    // refused at once rather than queued behind the others. The permit is
    // held until the body is sent.
    let permit = match &state.in_flight {
        Some(limit) => match limit.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many scrapes in flight (--web.max-requests); try again\n",
                )
                    .into_response()
            }
        },
        None => None,
    };
    let format = crate::http::negotiate::metrics_format(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let coding = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::http::negotiate::gzip_coding);
    // Rendering and compressing run on the blocking pool: they would stall
    // other requests on this worker.
    match state.renders.get(&state.metrics, format, coding.is_some()).await {
        Ok(body) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, format.content_type()),
                    (header::VARY, "accept, accept-encoding"),
                ],
                axum::body::Body::new(Chunked::new(&body, permit)),
            )
                .into_response();
            if let Some(coding) = coding {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering metrics failed\n").into_response()
        }
    }
}

/// A shared body sent a slice at a time: hyper asks for the next slice only
/// once it has written most of the last, so the body (and the scrape permit
/// it holds) lives exactly as long as the sending, and a connection cut off
/// mid-way frees both. Bytes are reference-counted, not copied; per-key
/// lines are written a slice at a time as they are sent, never whole.
struct Chunked {
    slices: Slices,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Chunked {
    fn new(body: &Body, permit: Option<OwnedSemaphorePermit>) -> Chunked {
        Chunked {
            slices: Slices::new(body, CHUNK),
            _permit: permit,
        }
    }
}

const CHUNK: usize = 64 * 1024;

impl http_body::Body for Chunked {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let slice = self.slices.next().map(|slice| Ok(http_body::Frame::data(slice)));
        std::task::Poll::Ready(slice)
    }

    fn is_end_stream(&self) -> bool {
        self.slices.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.slices.left() as u64)
    }
}

/// Any response body, marking the response sent on the connection's clock
/// when hyper drops it.
struct Guarded {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// 200 once there is data to serve (see `Snapshot::readiness`), else 503
/// with why, on one line.
async fn ready(State(state): State<AppState>) -> Response {
    match state.store.readiness() {
        Ok(()) => (StatusCode::OK, "Ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("Not ready: {why}\n")).into_response(),
    }
}

/// The HTML report of the current snapshot, rendered on the blocking pool:
/// at many thousand keys it is megabytes of text.
async fn report_page(State(state): State<AppState>) -> Response {
    // Before any account was read a report would show no keys, which reads
    // as "nothing to worry about": the answer is 503, as `/-/ready`. Once
    // reads failed, the body is the report that says so in plain words and
    // names the accounts with their errors.
    if let Err(why) = state.store.readiness() {
        if state.store.load().accounts.is_empty() {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("Not ready: {why}\n")).into_response();
        }
        let page = state.report.clone();
        let mut response = render_page("the report", move || page.render()).await;
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return response;
    }
    let page = state.report.clone();
    render_page("the report", move || page.render()).await
}

/// An HTML page rendered on the blocking pool, or a 500 naming `what`.
async fn render_page(what: &'static str, render: impl FnOnce() -> String + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(render).await {
        Ok(page) => Html(page).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering {what} failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering {what} failed\n")).into_response()
        }
    }
}

/// The landing page (see [`crate::output::status_page`]), rendered on the blocking
/// pool: it assesses every key.
async fn landing_page(State(state): State<AppState>) -> Response {
    let readiness = state.store.readiness();
    render_page("the landing page", move || {
        let report = &state.report.context;
        let context = crate::output::status_page::Context {
            build: BuildInfo::CURRENT,
            telemetry_path: &state.telemetry_path,
            source: &report.source,
            scope: &report.scope,
            refresh_interval: state.refresh_interval,
            readiness: readiness.as_ref().map_err(String::as_str).copied(),
        };
        crate::output::status_page::render(&state.report.assessor.assess(), &context)
    })
    .await
}

/// Binds every address first, so that a taken port fails the start.
pub async fn bind(addresses: &[ListenAddress]) -> Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let fail = |source| Error::Listen {
            address: address.spelled.clone(),
            source,
        };
        let (host, port) = (&address.host, address.port);
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
    limits: HttpLimits,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let servers = listeners
        .into_iter()
        .map(|listener| accept_loop(listener, router.clone(), web.clone(), limits, shutdown.clone()));
    futures::future::try_join_all(servers).await?;
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    web: SharedWebConfig,
    limits: HttpLimits,
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
        let clock = Clock::new(limits);
        let stream = Limited::new(stream, clock.clone());
        let inner = TowerToHyperService::new(router.clone());
        let service = hyper::service::service_fn(move |request| {
            let guard = clock.request_started();
            let response = hyper::service::Service::call(&inner, request);
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|inner| axum::body::Body::new(Guarded { inner, _guard: guard })),
                )
            }
        });
        let (tls, http1_only) = {
            let web = web.load();
            (web.tls.clone(), web.http1_only)
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // `http1_only` is ignored by `serve_connection_with_upgrades`
            // so HTTP/1.1 only takes `serve_connection`; HTTP/2 on keeps it as before.
            let builder = auto::Builder::new(TokioExecutor::new());
            let builder = if http1_only { builder.http1_only() } else { builder };
            macro_rules! serve {
                ($io:expr) => {
                    if http1_only {
                        watcher
                            .watch(builder.serve_connection($io, service).into_owned())
                            .await
                    } else {
                        let conn = builder.serve_connection_with_upgrades($io, service);
                        watcher.watch(conn.into_owned()).await
                    }
                };
            }
            let result = match tls {
                None => serve!(TokioIo::new(stream)),
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => serve!(TokioIo::new(tls_stream)),
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

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_basic_scheme_is_matched_in_any_case() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("prometheus:pa:ss");
        let expected = Some(("prometheus".to_string(), "pa:ss".to_string()));
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            assert_eq!(basic_credentials(&authorization(&format!("{scheme} {b64}"))), expected);
        }
        assert_eq!(basic_credentials(&authorization(&format!("Bearer {b64}"))), None);
        assert_eq!(basic_credentials(&authorization("Basic not-base64!")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn a_chunked_body_is_sent_whole_in_slices() {
        use http_body::Body as _;
        let data = bytes::Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        // Parts of every size around a chunk, an empty one among them.
        let cuts = [0, 10, 10, CHUNK + 10, 2 * CHUNK + 11, 200_000];
        let body = Body {
            parts: cuts
                .windows(2)
                .map(|w| crate::output::metrics::Piece::Bytes(data.slice(w[0]..w[1])))
                .collect(),
        };
        let mut body = Chunked::new(&body, None);
        assert_eq!(body.size_hint().exact(), Some(200_000));
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut sent = Vec::new();
        while let std::task::Poll::Ready(Some(frame)) = std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(chunk.len() <= CHUNK);
            sent.extend_from_slice(&chunk);
        }
        assert!(body.is_end_stream());
        assert_eq!(sent, data);
    }

    #[test]
    fn compressed_bodies_decompress_to_the_original() {
        let text = "aws_iam_users{account_id=\"111122223333\"} 3\n".repeat(1000);
        let mut plain = String::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(&crate::output::metrics::compress(text.as_bytes())[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, text);
    }
}
