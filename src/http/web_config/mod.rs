//! `--web.config.file` in the Prometheus exporter-toolkit format: TLS (and
//! mutual TLS), basic authentication with bcrypt hashes, and response
//! headers. Validated at start; read again when it (or a file it names)
//! changes, keeping the previous configuration if the new one is invalid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::{HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde::Deserialize;

use crate::collect::file_watch::{self, FileMeta};

/// Response headers the exporter-toolkit allows to be set, with the only
/// values it accepts for those that are enumerations (empty: any value).
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<rate_limit::RawRateLimit>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
    /// Inline PEM, used when the matching `_file` is not given.
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Successful password checks remembered, as the exporter-toolkit does: a
/// scraper sends the same credentials every time and must not pay bcrypt
/// (tens of milliseconds of CPU, on purpose) for each scrape.
const AUTH_CACHE_SIZE: usize = 100;

/// The exporter-toolkit's dummy hash (cost 10), whose salt and digest are
/// reused at a lower cost when every configured hash is cheaper: checking
/// it costs its cost whatever the digest, and nothing is made at load, so
/// a cost-18 hash in the file does not delay the start.
const DUMMY_SALT_AND_DIGEST: &str = "QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
const DUMMY_MAX_COST: u32 = 10;

/// bcrypt checks of one user name run one at a time (all unknown names
/// share one turn): a flood of wrong passwords for a name takes one core,
/// while the checks of other users, and scrapes whose credentials are
/// cached, do not wait behind it, nor behind one user's slow hash.
#[derive(Debug, Clone)]
struct Turn(Arc<tokio::sync::Semaphore>);

impl Default for Turn {
    fn default() -> Self {
        Turn(Arc::new(tokio::sync::Semaphore::new(1)))
    }
}

/// A validated web configuration.
#[derive(Debug, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name to bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `http_server_config.http2: false`: HTTP/1.1 only (no `h2` in ALPN,
    /// no HTTP/2 with prior knowledge on plain HTTP). The toolkit's default,
    /// and without a web config, is HTTP/2 and HTTP/1.1.
    pub http1_only: bool,
    /// `rate_limit`, over every request but the probes.
    pub rate_limit: Option<rate_limit::RateLimit>,
    /// Files whose change means the configuration must be read again.
    files: Vec<PathBuf>,
    /// Checked for unknown users, so that they cost what a known user costs
    /// and user names cannot be told by timing: the highest configured cost,
    /// but never above the toolkit's 10.
    dummy_hash: String,
    /// Random, mixed into the cache keys; new at each load.
    cache_secret: String,
    /// One turn per configured user, and `unknown_turn` for the others.
    turns: BTreeMap<String, Turn>,
    unknown_turn: Turn,
    /// SHA-256 of a secret, user and password of the checks that succeeded;
    /// never a password. A new configuration starts with an empty cache.
    auth_cache: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
}

impl WebConfig {
    /// Reads and validates the file; the error names the file and the problem.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let fail = |message: String| format!("{}: {message}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_norway::from_str(&text).map_err(|e| fail(e.to_string()))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = WebConfig {
            files: vec![path.to_path_buf()],
            ..WebConfig::default()
        };
        // As the toolkit: TLS is on when a certificate, key or client
        // authentication key is given; `tls_server_config: {}` (or only
        // versions) serves plain HTTP.
        let http = raw.http_server_config.unwrap_or_default();
        config.http1_only = http.http2 == Some(false);
        if let Some(tls) = raw.tls_server_config.filter(RawTls::enables_tls) {
            let mut tls = tls_config(tls, base, &mut config.files, !config.http1_only).map_err(fail)?;
            if config.http1_only {
                tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            }
            config.tls = Some(Arc::new(tls));
        }
        let mut highest_cost = None;
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            let parts = hash
                .parse::<bcrypt::HashParts>()
                .map_err(|e| fail(format!("basic_auth_users.{user}: not a bcrypt hash ({e})")))?;
            highest_cost = highest_cost.max(Some(parts.get_cost()));
            config.turns.insert(user.clone(), Turn::default());
            config.users.insert(user, hash);
        }
        if let Some(cost) = highest_cost {
            config.dummy_hash = format!("$2y${:02}${DUMMY_SALT_AND_DIGEST}", cost.min(DUMMY_MAX_COST));
            // bcrypt's salt is 16 random bytes from the OS; cost 4 takes a
            // millisecond.
            config.cache_secret = bcrypt::hash_with_result("", 4)
                .map_err(|e| fail(format!("basic_auth_users: no random secret for the cache ({e})")))?
                .get_salt();
        }
        config.rate_limit = raw.rate_limit.unwrap_or_default().check().map_err(fail)?;
        for (name, value) in http.headers.unwrap_or_default() {
            let Some((allowed, values)) = ALLOWED_HEADERS.iter().find(|(h, _)| h.eq_ignore_ascii_case(&name)) else {
                return Err(fail(format!(
                    "http_server_config.headers.{name}: not one of the headers that may be set ({})",
                    ALLOWED_HEADERS.map(|(h, _)| h).join(", ")
                )));
            };
            if !values.is_empty() && !values.contains(&value.as_str()) {
                return Err(fail(format!(
                    "http_server_config.headers.{name}: {value:?} is not one of {}",
                    values.join(", ")
                )));
            }
            let value = HeaderValue::from_str(&value)
                .map_err(|_| fail(format!("http_server_config.headers.{name}: invalid header value")))?;
            // HeaderName keeps names in lower case, whatever case it is given.
            let name = HeaderName::from_bytes(allowed.as_bytes()).expect("the allowed header names are valid");
            config.headers.push((name, value));
        }
        Ok(config)
    }

    /// Checks a user name and password: from the cache of successful
    /// checks, else with bcrypt on the blocking pool, one check at a time
    /// per user name.
    pub async fn authorize(self: Arc<Self>, user: String, password: String) -> bool {
        let key = self.cache_key(&user, &password);
        if self.cached(&key) {
            return true;
        }
        let turn = self.turns.get(&user).unwrap_or(&self.unknown_turn).0.clone();
        let Ok(turn) = turn.acquire_owned().await else {
            return false;
        };
        // The same credentials may have been checked while this one waited.
        if self.cached(&key) {
            return true;
        }
        let this = self.clone();
        // The turn goes with the check, so that a client that hangs up while
        // it runs does not let the next one start beside it.
        let ok = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            this.authenticate(&user, &password)
        })
        .await
        .unwrap_or(false);
        if ok {
            self.remember(key);
        }
        ok
    }

    fn remember(&self, key: [u8; 32]) {
        let mut cache = self.auth_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= AUTH_CACHE_SIZE {
            // Any entry: a scraper evicted pays bcrypt once more.
            if let Some(old) = cache.iter().next().copied() {
                cache.remove(&old);
            }
        }
        cache.insert(key);
    }

    /// Checks a user name and password with bcrypt, unknown users against
    /// the dummy hash; slow on purpose, so call it off the async workers.
    pub fn authenticate(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.dummy_hash);
                false
            }
        }
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        self.auth_cache.lock().unwrap_or_else(|e| e.into_inner()).contains(key)
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.cache_secret.as_bytes());
        // The length keeps ("ab", "c") and ("a", "bc") apart.
        hasher.update((user.len() as u64).to_le_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    async fn fingerprint(&self) -> Vec<Option<FileMeta>> {
        file_watch::stamps(self.files.clone()).await
    }
}

impl RawTls {
    fn enables_tls(&self) -> bool {
        let given = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| !p.as_os_str().is_empty());
        given(&self.cert_file)
            || given(&self.key_file)
            || given(&self.client_ca_file)
            || self.client_auth_type.as_ref().is_some_and(|a| !a.is_empty())
            || [&self.cert, &self.key, &self.client_ca]
                .iter()
                .any(|pem| pem.as_ref().is_some_and(|p| !p.is_empty()))
    }
}

fn tls_config(raw: RawTls, base: &Path, files: &mut Vec<PathBuf>, http2: bool) -> Result<rustls::ServerConfig, String> {
    let resolve = |p: PathBuf| client_auth::resolve(base, p);
    let file = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty()).map(resolve);
    let inline = |pem: Option<String>| pem.filter(|p| !p.is_empty());
    let certs = crypto::pem_certificates(("cert_file", file(raw.cert_file)), ("cert", inline(raw.cert)), files)?
        .ok_or("tls_server_config.cert_file: required (or cert, inline)")?;
    let key = match (file(raw.key_file), inline(raw.key)) {
        (Some(key_file), _) => {
            let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
                format!(
                    "tls_server_config.key_file: cannot read a private key from {}: {e}",
                    key_file.display()
                )
            })?;
            files.push(key_file);
            key
        }
        (None, Some(pem)) => PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("tls_server_config.key: no PEM private key in it: {e}"))?,
        (None, None) => return Err("tls_server_config.key_file: required (or key, inline)".into()),
    };

    let versions: &[&'static rustls::SupportedProtocolVersion] = match (raw.min_version.as_deref(), raw.max_version.as_deref()) {
        (None | Some("TLS12"), None | Some("TLS13")) => &[&rustls::version::TLS13, &rustls::version::TLS12],
        (Some("TLS13"), None | Some("TLS13")) => &[&rustls::version::TLS13],
        (None | Some("TLS12"), Some("TLS12")) => &[&rustls::version::TLS12],
        (min, max) => {
            return Err(format!(
                "tls_server_config: min_version {min:?} / max_version {max:?}: TLS12 and TLS13 are supported, min not above max"
            ))
        }
    };
    let suites_named = raw.cipher_suites.as_ref().is_some_and(|names| !names.is_empty());
    let provider = Arc::new(crypto::provider(raw.cipher_suites, raw.curve_preferences)?);
    if http2 && suites_named && versions.contains(&&rustls::version::TLS12) {
        crypto::check_http2_suites(&provider)?;
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;

    let auth = client_auth::ClientAuth {
        auth_type: raw.client_auth_type,
        ca_file: file(raw.client_ca_file),
        ca_inline: inline(raw.client_ca),
        allowed_sans: raw.client_allowed_sans,
    };
    let builder = match client_auth::verifier(auth, &provider, files)? {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: the certificate and key do not form a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The toolkit's default is true (Go itself now always decides).
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    Ok(config)
}

/// The web configuration in force, swapped when the file changes.
pub type SharedWebConfig = Arc<ArcSwap<WebConfig>>;

/// Reads the file again whenever it or a file it names changes; an invalid
/// new version is logged and the previous one stays.
pub async fn watch(path: PathBuf, shared: SharedWebConfig, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut seen = shared.load().fingerprint().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(file_watch::POLL) => {}
            _ = shutdown.changed() => return,
        }
        let now = shared.load().fingerprint().await;
        if now == seen {
            continue;
        }
        seen = now;
        // Reading files would stall an async worker.
        let reading = path.clone();
        let loaded = tokio::task::spawn_blocking(move || WebConfig::load(&reading))
            .await
            .unwrap_or_else(|e| Err(format!("{}: reading failed: {e}", path.display())));
        match loaded {
            Ok(config) => {
                tracing::info!(file = %path.display(), "web configuration changed; now in force");
                seen = config.fingerprint().await;
                shared.store(Arc::new(config));
            }
            Err(e) => tracing::error!(error = %e, "web configuration changed but is invalid; keeping the previous one"),
        }
    }
}

mod client_auth;
#[cfg(test)]
mod conformance_handler_tests;
#[cfg(test)]
mod conformance_tests;
mod crypto;
#[cfg(test)]
mod handshake_tests;
mod rate_limit;
mod san;
#[cfg(test)]
mod tests;
