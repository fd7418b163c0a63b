//! The Prometheus side, end to end, with the real programs: moto seeded with
//! a realistic account, the exporter, Prometheus (Debian's `prometheus`) with
//! the rules of `deploy/prometheus/`, and Alertmanager (Debian's
//! `prometheus-alertmanager`) with the routing and inhibition of the example
//! `deploy/prometheus/alertmanager.yml`, all on free loopback ports.
//!
//! - the rules pass `promtool check rules` and their unit tests
//!   (`promtool test rules`); the example configs pass `promtool check config`
//!   and `amtool check-config`, and so do the configs the test derives from
//!   them;
//! - Prometheus scrapes the exporter (`up == 1`);
//! - every query of the Grafana dashboard, its variables substituted as
//!   Grafana would, is valid and returns data; the high-risk table returns
//!   exactly the keys seeded as high risk; the variables list the account by
//!   name and every user;
//! - exactly the expected alerts reach Alertmanager's v2 API, with their
//!   labels (owner and team tags included), annotations, receivers and
//!   inhibitions, and the active ones are delivered to the receivers the
//!   example routes them to; no exporter-health alert fires or is pending.
//!
//! The end-to-end run happens twice: with the exporter's default per-key
//! series and with the lean set (`--metrics.key-series
//! created,last_used,high_risk`), which the dashboard and the rules must
//! serve alike (only the tables' last-used service and region are gone).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use regex::{NoExpand, Regex};
use serde_json::Value;

const RULES: &str = "deploy/prometheus/aws-iam-key-exporter.rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/aws-iam-key-exporter.rules.test.yml";
const PROMETHEUS_EXAMPLE: &str = "deploy/prometheus/prometheus.yml";
const ALERTMANAGER_EXAMPLE: &str = "deploy/prometheus/alertmanager.yml";
const DASHBOARD: &str = "grafana/dashboards/aws-iam-access-keys.json";
const JOB: &str = "aws-iam-key-exporter";
const RUNBOOK_BASE: &str = "https://github.com/aws-iam-key-exporter/aws-iam-key-exporter/blob/main/docs/runbooks.md";
const GRAFANA_DASHBOARD: &str = "https://grafana.example.com/d/aws-iam-access-keys/aws-iam-access-keys";
const DAY: f64 = 86400.0;

const INSTALL: &str = "install Debian's packages with `apt-get install prometheus prometheus-alertmanager` \
                       (or run .ci/run, or scripts/install-test-deps.sh)";

// --- The programs ---------------------------------------------------------

fn tool(names: &[&str]) -> String {
    common::tool(names, INSTALL)
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    common::run(program, args, INSTALL)
}

fn run_ok(program: &str, args: &[&str]) -> String {
    common::run_ok(program, args, INSTALL)
}

fn promtool_check_rules(path: &Path) {
    let out = run_ok(&tool(&["promtool"]), &["check", "rules", path.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

fn promtool_check_config(path: &Path) {
    let out = run_ok(&tool(&["promtool"]), &["check", "config", path.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

fn amtool_check_config(path: &Path) {
    let out = run_ok(&tool(&["amtool"]), &["check-config", path.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The TCP ports process `pid` listens on, from /proc (Linux): its socket
/// inodes matched with the LISTEN rows of /proc/PID/net/tcp and tcp6. Asking
/// the kernel beats picking a free port first (another process may take it
/// before the daemon binds it) and beats parsing the daemon's log.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| Some(l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for row in text.lines().skip(1) {
            let f: Vec<&str> = row.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                if let Some(port) = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) {
                    ports.push(port);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A server process with its output in a log file, killed on drop.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    url: String,
}

impl Daemon {
    /// Starts `program`, which must listen on `127.0.0.1:0` and nothing
    /// else, and waits until it is ready on the port it got.
    fn start(name: &'static str, program: &str, args: &[String], log: PathBuf) -> Daemon {
        let out = File::create(&log).unwrap();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {INSTALL}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let [port] = listening_ports(child.id())[..] {
                break port;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{name} exited ({status}) before listening:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{name} did not start listening");
            std::thread::sleep(Duration::from_millis(100));
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut daemon = Daemon { name, child, log, url };
        daemon.wait_ready();
        daemon
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}) before it was ready:\n{}", self.name, self.logs());
            }
            if matches!(try_get(&format!("{}/-/ready", self.url)), Some((200, _))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after 60s:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET that reports a refused connection instead of panicking.
fn try_get(url: &str) -> Option<(u16, String)> {
    match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => Some((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(code, r)) => Some((code, r.into_string().unwrap_or_default())),
        Err(_) => None,
    }
}

/// GET of a JSON API; Err carries the server's error.
fn api_get(url: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let mut request = ureq::get(url).timeout(Duration::from_secs(30));
    for (name, value) in params {
        request = request.query(name, value);
    }
    let body = match request.call() {
        Ok(r) => r.into_string().map_err(|e| e.to_string())?,
        Err(ureq::Error::Status(code, r)) => {
            return Err(format!("HTTP {code}: {}", r.into_string().unwrap_or_default()))
        }
        Err(e) => return Err(e.to_string()),
    };
    serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The result of an instant query.
fn query(prometheus: &Daemon, expr: &str) -> Result<Vec<Value>, String> {
    let answer = api_get(&format!("{}/api/v1/query", prometheus.url), &[("query", expr)])?;
    Ok(answer["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// The result of a range query over the last `seconds`, one point a second.
fn query_range(prometheus: &Daemon, expr: &str, seconds: f64) -> Result<Vec<Value>, String> {
    let end = unix_now();
    let (start, end) = (format!("{:.3}", end - seconds), format!("{end:.3}"));
    let answer = api_get(
        &format!("{}/api/v1/query_range", prometheus.url),
        &[("query", expr), ("start", &start), ("end", &end), ("step", "1")],
    )?;
    Ok(answer["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn labels_of(sample: &Value) -> BTreeMap<String, String> {
    sample["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

// --- What was seeded, and what should follow from it ----------------------

struct Key {
    user: String,
    id: String,
    position: usize,
    active: bool,
    created: f64,
    last_used: Option<f64>,
    high_risk: bool,
    bucket: String,
    service: String,
    /// Its user's, as moto_server.py seeded them.
    admin: bool,
    quarantined: bool,
}

impl Key {
    fn age(&self, now: f64) -> f64 {
        now - self.created
    }

    fn unused(&self, now: f64) -> f64 {
        now - self.last_used.unwrap_or(self.created)
    }

    fn pair(&self) -> (String, String) {
        (self.user.clone(), self.id.clone())
    }
}

fn considered(user: &str) -> bool {
    !(user.starts_with("excluded-") || user == "ignored-by-tag")
}

/// The keys the exporter considers, with their positions by creation date.
fn seeded_keys(seeded: &Value) -> Vec<Key> {
    let user_fact = |user: &str, fact: &str| {
        seeded["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == user)
            .is_some_and(|u| u[fact] == true)
    };
    let mut keys: Vec<Key> = seeded["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| considered(k["user"].as_str().unwrap()))
        .map(|k| Key {
            user: k["user"].as_str().unwrap().to_string(),
            id: k["access_key_id"].as_str().unwrap().to_string(),
            position: 0,
            active: k["status"] == "Active",
            created: k["created"].as_f64().unwrap(),
            last_used: k["last_used"].as_f64(),
            high_risk: k["high_risk"].as_bool().unwrap(),
            bucket: k["bucket"].as_str().unwrap().to_string(),
            service: k["service"].as_str().unwrap().to_string(),
            admin: user_fact(k["user"].as_str().unwrap(), "admin"),
            quarantined: user_fact(k["user"].as_str().unwrap(), "quarantined"),
        })
        .collect();
    keys.sort_by(|a, b| (&a.user, a.created).partial_cmp(&(&b.user, b.created)).unwrap());
    for i in 0..keys.len() {
        keys[i].position = if i > 0 && keys[i - 1].user == keys[i].user {
            2
        } else {
            1
        };
    }
    keys
}

/// `tag_owner` and `tag_team` of each considered user, when the user has them.
fn seeded_tags(seeded: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    seeded["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| considered(u["name"].as_str().unwrap()))
        .map(|u| {
            let tags = ["owner", "team"]
                .iter()
                .filter_map(|t| {
                    let value = u["tags"][*t].as_str()?;
                    Some((format!("tag_{t}"), value.to_string()))
                })
                .collect();
            (u["name"].as_str().unwrap().to_string(), tags)
        })
        .collect()
}

/// An alert is known by its name, user and access key id ("" for the root key).
type AlertId = (String, String, String);

struct Expected {
    labels: BTreeMap<String, String>,
    suppressed: bool,
}

/// What a prometheus-operator ServiceMonitor adds to every series of the
/// exporter (deploy/kubernetes), plus `cluster`, which stands for the labels
/// a Thanos or Mimir query adds (the external labels of each Prometheus).
const OPERATOR_TARGET_LABELS: [(&str, &str); 6] = [
    ("namespace", "monitoring"),
    ("pod", "aws-iam-key-exporter-7d9f8b6c5-x2x9q"),
    ("container", "aws-iam-key-exporter"),
    ("endpoint", "http"),
    ("service", "aws-iam-key-exporter"),
    ("cluster", "e2e"),
];

/// External labels of the test's Prometheus: on every alert it sends.
const EXTERNAL_LABELS: [(&str, &str); 2] = [("cluster", "e2e"), ("prometheus", "monitoring/k8s")];

/// The labels an alert about a key or an account keeps from the target and
/// Prometheus: all but `instance` and `pod`, which change when the exporter's
/// pod is replaced.
fn kept_target_labels() -> BTreeMap<String, String> {
    OPERATOR_TARGET_LABELS
        .iter()
        .chain(EXTERNAL_LABELS.iter())
        .filter(|(k, _)| *k != "pod")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expected_alerts(seeded: &Value, now: f64) -> BTreeMap<AlertId, Expected> {
    let account = seeded["account_id"].as_str().unwrap();
    let keys = seeded_keys(seeded);
    let tags = seeded_tags(seeded);
    let mut alerts = BTreeMap::new();
    let mut add = |name: &str, severity: &str, key: &Key, suppressed: bool| {
        let mut labels: BTreeMap<String, String> = [
            ("alertname", name),
            ("severity", severity),
            ("account_id", account),
            ("user", &key.user),
            ("key", &key.position.to_string()),
            ("access_key_id", &key.id),
            ("status", "Active"),
            ("job", JOB),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        labels.extend(tags[&key.user].clone());
        labels.extend(kept_target_labels());
        let id = (name.to_string(), key.user.clone(), key.id.clone());
        alerts.insert(id, Expected { labels, suppressed });
    };
    for key in keys.iter().filter(|k| k.active) {
        if key.quarantined {
            add("AwsIamAccessKeyExposed", "critical", key, false);
        }
        if key.high_risk {
            // Inhibited by AwsIamAccessKeyExposed, which says more.
            add("AwsIamAccessKeyHighRisk", "warning", key, key.quarantined);
        }
        if key.age(now) > 90.0 * DAY {
            // Inhibited by the example Alertmanager config when high risk.
            add("AwsIamAccessKeyRotationOverdue", "warning", key, key.high_risk);
        }
        let unused = key.unused(now);
        if unused >= 45.0 * DAY {
            add("AwsIamAccessKeyUnused45Days", "info", key, unused >= 90.0 * DAY);
        }
        if unused >= 90.0 * DAY {
            // Inhibited when high risk: an old unused key is both.
            add("AwsIamAccessKeyUnused90Days", "warning", key, key.high_risk);
        }
    }
    for pair in keys.windows(2) {
        let (older, newer) = (&pair[0], &pair[1]);
        if older.user == newer.user && older.active && newer.active && newer.age(now) > 7.0 * DAY {
            add("AwsIamUserMultipleActiveKeys", "warning", older, false);
        }
    }
    assert!(seeded["root_access_key_present"].as_bool().unwrap());
    let mut labels: BTreeMap<String, String> = [
        ("alertname", "AwsIamRootAccessKeyPresent"),
        ("severity", "critical"),
        ("account_id", account),
        ("job", JOB),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(kept_target_labels());
    let id = ("AwsIamRootAccessKeyPresent".to_string(), String::new(), String::new());
    alerts.insert(
        id,
        Expected {
            labels,
            suppressed: false,
        },
    );
    alerts
}

/// The receivers deploy/prometheus/alertmanager.yml routes an alert to.
fn expected_receivers(labels: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut receivers = BTreeSet::new();
    if labels["alertname"].starts_with("AwsIamExporter") {
        receivers.insert("monitoring".to_string());
        if labels["severity"] == "critical" {
            receivers.insert("monitoring-pager".to_string());
        }
        return receivers;
    }
    if labels["severity"] == "critical" {
        receivers.insert("security-pager".to_string());
    }
    if labels["alertname"] == "AwsIamDormantKeyUsed" {
        receivers.insert("security-team".to_string());
    }
    match labels.get("tag_team").map(String::as_str) {
        Some("payments") => {
            receivers.insert("team-payments".to_string());
        }
        Some(_) => {
            receivers.insert("team-slack".to_string());
        }
        None if receivers.is_empty() => {
            receivers.insert("security-team".to_string());
        }
        None => {}
    }
    receivers
}

// --- Alertmanager's receivers: a webhook sink -----------------------------

/// Webhook notifications received, as (receiver path, notification).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTP server on loopback that records every webhook notification.
fn start_webhook_sink() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let _ = record_notification(stream, &sink);
        }
    });
    (port, received)
}

fn record_notification(mut stream: TcpStream, sink: &Received) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if let Ok(notification) = serde_json::from_slice(&body) {
        sink.lock().unwrap().push((path, notification));
    }
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// --- The configs the test runs, derived from the examples -----------------

fn yaml(path: &str) -> serde_norway::Value {
    serde_norway::from_str(&std::fs::read_to_string(repo_path(path)).unwrap()).unwrap()
}

fn write_yaml(path: &Path, value: &serde_norway::Value) {
    std::fs::write(path, serde_norway::to_string(value).unwrap()).unwrap();
}

/// The example Prometheus config with 1s intervals, absolute rule paths,
/// the test's ports, and the target labels and external labels of a
/// prometheus-operator deployment.
fn prometheus_config(exporter_port: u16, alertmanager_port: u16) -> serde_norway::Value {
    let mut config = yaml(PROMETHEUS_EXAMPLE);
    config["global"]["scrape_interval"] = "1s".into();
    config["global"]["evaluation_interval"] = "1s".into();
    let mut external = serde_norway::Mapping::new();
    for (name, value) in EXTERNAL_LABELS {
        external.insert(name.into(), value.into());
    }
    config["global"]["external_labels"] = external.into();
    let rules = config["rule_files"].as_sequence_mut().unwrap();
    assert_eq!(rules.len(), 1, "the example loads the one rule file");
    rules[0] = repo_path(RULES).to_str().unwrap().into();
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] =
        vec![format!("127.0.0.1:{alertmanager_port}")].into();
    let jobs = config["scrape_configs"].as_sequence_mut().unwrap();
    let job = jobs
        .iter_mut()
        .find(|j| j["job_name"] == JOB)
        .expect("the example scrapes the job aws-iam-key-exporter");
    job["scrape_interval"] = "1s".into();
    job["scrape_timeout"] = "1s".into();
    job["static_configs"][0]["targets"] = vec![format!("127.0.0.1:{exporter_port}")].into();
    let mut labels = serde_norway::Mapping::new();
    for (name, value) in OPERATOR_TARGET_LABELS {
        labels.insert(name.into(), value.into());
    }
    job["static_configs"][0]["labels"] = labels.into();
    config
}

/// The example Alertmanager config (its routes and inhibitions unchanged)
/// with every receiver a webhook to the sink at /RECEIVER that also sends
/// resolved notifications (so that an alert resolving is seen), and 1s
/// timings.
fn alertmanager_config(sink_port: u16) -> serde_norway::Value {
    let mut config = yaml(ALERTMANAGER_EXAMPLE);
    for receiver in config["receivers"].as_sequence_mut().unwrap() {
        let name = receiver["name"].as_str().unwrap().to_string();
        let webhook: serde_norway::Value = serde_norway::from_str(&format!(
            "{{name: {name}, webhook_configs: [{{url: 'http://127.0.0.1:{sink_port}/{name}', send_resolved: true}}]}}"
        ))
        .unwrap();
        *receiver = webhook;
    }
    fn fast(route: &mut serde_norway::Value) {
        for timing in ["group_wait", "group_interval"] {
            if route.get(timing).is_some() {
                route[timing] = "1s".into();
            }
        }
        if let Some(children) = route.get_mut("routes").and_then(|r| r.as_sequence_mut()) {
            children.iter_mut().for_each(fast);
        }
    }
    config["route"]["group_wait"] = "1s".into();
    config["route"]["group_interval"] = "1s".into();
    fast(&mut config["route"]);
    config
}

// --- The dashboard --------------------------------------------------------

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_path(DASHBOARD)).unwrap()).expect("the dashboard is JSON")
}

/// Every panel, those inside rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(inner) = panel.get("panels") {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn panel<'a>(dashboard: &'a Value, title: &str) -> &'a Value {
    panels(dashboard)
        .into_iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("the dashboard has a panel {title:?}"))
}

fn target<'a>(panel: &'a Value, ref_id: &str) -> &'a Value {
    panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("panel {} has a query {ref_id}", panel["title"]))
}

/// Grafana's escaping of a multi-value variable's value in a Prometheus
/// regex matcher (prometheusSpecialRegexEscape).
fn grafana_regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '\'' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str(r"\\");
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Substitutes the dashboard's variables and Grafana's built-in ones as
/// Grafana would; any other variable fails the test. `$1` and the like are
/// label_replace's, not variables.
fn interpolate(expr: &str, account: &str, user: &str) -> String {
    let vars = [
        ("account", account),
        ("user", user),
        // The defaults of the status (bar chart) and rotation-due variables.
        ("status", "Active"),
        ("due_days", "14"),
        ("__rate_interval", "10s"),
        ("__interval", "1s"),
        ("__range", "1m"),
        ("datasource", "prometheus"),
    ];
    let mut out = expr.to_string();
    for (name, value) in vars {
        let pattern = Regex::new(&format!(r"\$\{{{name}\}}|\${name}\b", name = regex::escape(name))).unwrap();
        out = pattern.replace_all(&out, NoExpand(value)).into_owned();
    }
    let unknown = Regex::new(r"\$(\{|[A-Za-z_])").unwrap();
    assert!(!unknown.is_match(&out), "unknown variable left in {out}");
    out
}

/// Runs one panel query the way the panel runs it (instant or range).
fn run_target(prometheus: &Daemon, target: &Value, account: &str, user: &str) -> Result<Vec<Value>, String> {
    let expr = interpolate(target["expr"].as_str().unwrap(), account, user);
    if target["instant"] == true {
        query(prometheus, &expr)
    } else {
        query_range(prometheus, &expr, 20.0)
    }
}

fn typed_panel<'a>(dashboard: &'a Value, title: &str, kind: &str) -> &'a Value {
    panels(dashboard)
        .into_iter()
        .find(|p| p["title"] == title && p["type"] == kind)
        .unwrap_or_else(|| panic!("the dashboard has a {kind} {title:?}"))
}

/// The options of a panel's `organize` transformation.
fn organize(panel: &Value) -> &Value {
    let transformation = panel["transformations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "organize")
        .unwrap_or_else(|| panic!("panel {} organizes its fields", panel["title"]));
    &transformation["options"]
}

/// The columns a table panel shows, in order: each query's result as the
/// data frame Grafana's Prometheus data source makes of a table-format
/// query (`Time`, one field per label, `Value #<refId>` when the panel has
/// several queries), then the panel's transformations as Grafana defines
/// them, for the ids the dashboard uses: `merge` (one frame with every
/// field, by name), `filterFieldsByName` (only the fields named in its
/// include list, or matching its include pattern), `organize` (fields
/// excluded, ordered by `indexByName`, renamed), `sortBy` (rows only).
fn table_columns(panel: &Value, results: &[(String, Vec<Value>)]) -> Vec<String> {
    let several = results.len() > 1;
    let mut frames: Vec<Vec<String>> = results
        .iter()
        .map(|(ref_id, rows)| {
            let labels: BTreeSet<String> = rows.iter().flat_map(|r| labels_of(r).into_keys()).collect();
            let mut fields = vec!["Time".to_string()];
            fields.extend(labels);
            fields.push(if several {
                format!("Value #{ref_id}")
            } else {
                "Value".to_string()
            });
            fields
        })
        .collect();
    for t in panel["transformations"].as_array().into_iter().flatten() {
        let options = &t["options"];
        match t["id"].as_str().unwrap() {
            "merge" => {
                let mut merged: Vec<String> = Vec::new();
                for field in frames.concat() {
                    if !merged.contains(&field) {
                        merged.push(field);
                    }
                }
                frames = vec![merged];
            }
            "filterFieldsByName" => {
                let include = &options["include"];
                let names: Vec<&str> = include["names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| n.as_str().unwrap())
                    .collect();
                let pattern = include["pattern"].as_str().map(|p| Regex::new(p).unwrap());
                for frame in &mut frames {
                    frame.retain(|f| names.contains(&f.as_str()) || pattern.as_ref().is_some_and(|p| p.is_match(f)));
                }
            }
            "organize" => {
                let index = &options["indexByName"];
                for frame in &mut frames {
                    frame.retain(|f| options["excludeByName"][f.as_str()] != true);
                    for f in frame.iter() {
                        assert!(index[f.as_str()].is_u64(), "{}: organize orders {f}", panel["title"]);
                    }
                    frame.sort_by_key(|f| index[f.as_str()].as_u64().unwrap());
                    for f in frame.iter_mut() {
                        if let Some(name) = options["renameByName"][f.as_str()].as_str() {
                            *f = name.to_string();
                        }
                    }
                }
            }
            "sortBy" => {}
            other => panic!("{}: transformation {other} is not modelled here", panel["title"]),
        }
    }
    assert_eq!(frames.len(), 1, "{}: one table", panel["title"]);
    frames.remove(0)
}

/// (user, access_key_id) of every row.
fn key_pairs(rows: &[Value]) -> BTreeSet<(String, String)> {
    rows.iter()
        .map(|r| {
            let labels = labels_of(r);
            (labels["user"].clone(), labels["access_key_id"].clone())
        })
        .collect()
}

// --- Tests ----------------------------------------------------------------

#[test]
#[ignore = "tools tier, run by make test: needs Prometheus, promtool, Alertmanager and node"]
fn rules_and_example_configs_pass_promtool_and_amtool() {
    promtool_check_rules(&repo_path(RULES));
    let out = run_ok(
        &tool(&["promtool"]),
        &["test", "rules", repo_path(RULE_TESTS).to_str().unwrap()],
    );
    assert!(out.contains("SUCCESS"), "{out}");
    // Also loads and checks the rule file it names.
    promtool_check_config(&repo_path(PROMETHEUS_EXAMPLE));
    amtool_check_config(&repo_path(ALERTMANAGER_EXAMPLE));

    // The notification templates of the example receivers parse.
    let amtool = tool(&["amtool"]);
    let dir = tempfile::tempdir().unwrap();
    let glob = dir.path().join("none.tmpl");
    std::fs::write(&glob, "").unwrap();
    let config = std::fs::read_to_string(repo_path(ALERTMANAGER_EXAMPLE)).unwrap();
    let example: serde_norway::Value = serde_norway::from_str(&config).unwrap();
    let mut templates = Vec::new();
    for receiver in example["receivers"].as_sequence().unwrap() {
        for integration in receiver.as_mapping().unwrap().values().filter_map(|v| v.as_sequence()) {
            for setting in integration.iter().flat_map(|i| i.as_mapping().unwrap().values()) {
                if let Some(text) = setting.as_str().filter(|s| s.contains("{{")) {
                    templates.push(text.to_string());
                }
            }
        }
    }
    assert!(templates.len() >= 3, "the example's Slack receiver is templated");
    for text in templates {
        let text_arg = format!("--template.text={text}");
        let glob_arg = format!("--template.glob={}", glob.display());
        run_ok(&amtool, &["template", "render", &glob_arg, &text_arg]);
    }

    // Every alert has a severity, a summary, a description and a runbook in
    // docs/runbooks.md; every alert has unit tests where it fires (with its
    // annotations) and where it stays silent.
    let tests = yaml(RULE_TESTS);
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for case in tests["tests"].as_sequence().unwrap() {
        for test in case
            .get("alert_rule_test")
            .and_then(|t| t.as_sequence())
            .into_iter()
            .flatten()
        {
            let name = test["alertname"].as_str().unwrap().to_string();
            let exp = test["exp_alerts"].as_sequence().unwrap();
            if exp.is_empty() {
                silent.insert(name);
            } else {
                for alert in exp {
                    let annotations = alert["exp_annotations"].as_mapping().unwrap();
                    assert_eq!(
                        annotations.len(),
                        4,
                        "{name}: summary, description, runbook_url, dashboard_url"
                    );
                    let labels = alert["exp_labels"].as_mapping().unwrap();
                    assert!(
                        !labels.contains_key("account_name"),
                        "{name}: account_name is an annotation, not a label"
                    );
                }
                fires.insert(name);
            }
        }
    }
    let rules = yaml(RULES);
    let mut alerts = BTreeSet::new();
    let severity_re = Regex::new(
        r"^(critical|warning|info)$|^\{\{ if [^}]+ \}\}(critical|warning|info)\{\{ else \}\}(critical|warning|info)\{\{ end \}\}$",
    )
    .unwrap();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(name) = rule.get("alert").and_then(|a| a.as_str()) else {
                continue;
            };
            alerts.insert(name.to_string());
            // A severity, or a template that chooses between two of them.
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            assert!(severity_re.is_match(severity), "{name}: severity {severity}");
            assert!(
                rule["annotations"]["dashboard_url"]
                    .as_str()
                    .is_some_and(|u| u.contains("/d/aws-iam-access-keys/")),
                "{name}: dashboard_url"
            );
            // Per-key and per-account alerts survive an exporter restart.
            if rule["for"].is_null() && !name.starts_with("AwsIamExporter") {
                assert_eq!(rule["keep_firing_for"].as_str(), Some("2h"), "{name}: keep_firing_for");
            }
            for annotation in ["summary", "description"] {
                assert!(
                    rule["annotations"][annotation].as_str().is_some(),
                    "{name}: {annotation}"
                );
            }
            assert_eq!(
                rule["annotations"]["runbook_url"].as_str(),
                Some(format!("{RUNBOOK_BASE}#{}", name.to_lowercase()).as_str()),
                "{name}: runbook_url"
            );
        }
    }
    assert_eq!(fires, alerts, "every alert has a unit test where it fires");
    assert_eq!(silent, alerts, "every alert has a unit test where it stays silent");
    assert_eq!(alerts.len(), 13, "{alerts:?}");

    // The lean set of key series: every group whose input has a family
    // outside it has a twin whose input is the same without those series
    // and whose alert tests are the same; and every alert fires, and stays
    // silent, in a group of lean input.
    let not_lean = |series: &serde_norway::Value| {
        let name = series["series"].as_str().unwrap();
        NOT_LEAN.iter().any(|f| name.starts_with(&format!("{f}{{")))
    };
    let cases = tests["tests"].as_sequence().unwrap();
    let lean_cases: Vec<&serde_norway::Value> = cases
        .iter()
        .filter(|c| !c["input_series"].as_sequence().unwrap().iter().any(not_lean))
        .collect();
    let mut twins = 0;
    for case in cases {
        let input = case["input_series"].as_sequence().unwrap();
        if !input.iter().any(not_lean) {
            continue;
        }
        let lean_input: Vec<&serde_norway::Value> = input.iter().filter(|s| !not_lean(s)).collect();
        let twin = lean_cases.iter().find(|t| {
            t["input_series"].as_sequence().unwrap().iter().collect::<Vec<_>>() == lean_input
                && (case.get("alert_rule_test").is_none() || t.get("alert_rule_test") == case.get("alert_rule_test"))
        });
        assert!(
            twin.is_some(),
            "no lean twin of the rule test group with input {:?}",
            input.iter().map(|s| &s["series"]).collect::<Vec<_>>()
        );
        twins += 1;
    }
    assert!(twins >= 6, "{twins} groups with series outside the lean set");
    let mut lean_fires = BTreeSet::new();
    let mut lean_silent = BTreeSet::new();
    for test in lean_cases.iter().flat_map(|c| {
        c.get("alert_rule_test")
            .and_then(|t| t.as_sequence())
            .into_iter()
            .flatten()
    }) {
        let name = test["alertname"].as_str().unwrap().to_string();
        if test["exp_alerts"].as_sequence().unwrap().is_empty() {
            lean_silent.insert(name);
        } else {
            lean_fires.insert(name);
        }
    }
    assert_eq!(lean_fires, alerts, "every alert fires on lean input");
    assert_eq!(lean_silent, alerts, "every alert stays silent on lean input");

    // The example routes: the exporter's critical alerts page as well as
    // reaching #monitoring; warnings do not page; a root key pages security.
    let routes = [
        (
            "alertname=AwsIamExporterDown severity=critical",
            "monitoring-pager,monitoring",
        ),
        (
            "alertname=AwsIamExporterNoAccounts severity=critical",
            "monitoring-pager,monitoring",
        ),
        ("alertname=AwsIamExporterDataStale severity=warning", "monitoring"),
        (
            "alertname=AwsIamAccessKeyHighRisk severity=warning tag_team=web",
            "team-slack",
        ),
        ("alertname=AwsIamAccessKeyHighRisk severity=critical", "security-pager"),
    ];
    let config_arg = format!("--config.file={}", repo_path(ALERTMANAGER_EXAMPLE).display());
    for (labels, receivers) in routes {
        let mut args = vec!["config", "routes", "test", config_arg.as_str()];
        args.extend(labels.split(' '));
        let out = run_ok(&amtool, &args);
        let got = out
            .lines()
            .filter(|l| !l.starts_with("Warning:"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(got.trim(), receivers, "receivers of {labels}");
    }
}

#[test]
fn dashboard_is_importable_into_grafana() {
    let dashboard = dashboard();
    // Import from a file: the inputs and requirements Grafana's import reads.
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(inputs
        .iter()
        .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus"));
    let requires = dashboard["__requires"].as_array().expect("__requires");
    let grafana = requires
        .iter()
        .find(|r| r["id"] == "grafana")
        .expect("requires grafana");
    let major: u32 = grafana["version"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(major >= 10, "made for Grafana 10 or later");
    assert!(requires.iter().any(|r| r["id"] == "prometheus"));
    let required_panels: BTreeSet<&str> = requires
        .iter()
        .filter(|r| r["type"] == "panel")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(dashboard["uid"], "aws-iam-access-keys");
    assert!(dashboard["id"].is_null());

    // Variables: a data source, accounts shown by name, users.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name}"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    // The data source picked at import (the input DS_PROMETHEUS, which
    // Grafana substitutes everywhere in the file) is the variable's default,
    // so it drives every panel; the variable still switches.
    assert_eq!(inputs[0]["name"], "DS_PROMETHEUS");
    assert_eq!(variable("datasource")["current"]["value"], "${DS_PROMETHEUS}");
    assert_eq!(
        dashboard.to_string().matches("${DS_PROMETHEUS}").count(),
        2,
        "DS_PROMETHEUS is used by the variable's default (text and value) only"
    );
    assert_eq!(variable("status")["current"]["value"], serde_json::json!(["Active"]));
    assert_eq!(variable("due_days")["query"], "14");
    let account = variable("account");
    assert!(account["query"].as_str().unwrap().contains("aws_iam_account_info"));
    let regex = account["regex"].as_str().unwrap();
    assert!(regex.contains("(?<value>") && regex.contains("(?<text>"), "{regex}");
    assert!(variable("user")["query"].as_str().unwrap().starts_with("label_values("));

    // No data source is named: everything uses the variable.
    fn datasources<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "datasource" {
                        out.push(v);
                    }
                    datasources(v, out);
                }
            }
            Value::Array(list) => list.iter().for_each(|v| datasources(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    datasources(&dashboard["panels"], &mut refs);
    datasources(&dashboard["templating"], &mut refs);
    assert!(refs.len() > 20);
    for r in refs {
        assert_eq!(r, &serde_json::json!({"type": "prometheus", "uid": "${datasource}"}));
    }

    // The panels issue 4 asks for, each of its type.
    let expect = [
        ("Access key age by account", "barchart"),
        ("High-risk access keys", "table"),
        ("Access key details", "table"),
        ("Access keys", "stat"),
        ("Active keys", "stat"),
        ("High-risk keys", "stat"),
        ("Accounts not read", "stat"),
        ("Exposed keys", "stat"),
        ("Active keys older than 90 days", "stat"),
        ("Never-used keys", "stat"),
        ("Accounts with a root access key", "stat"),
        ("High-risk access keys over time", "timeseries"),
        ("Exporter health", "row"),
        ("Accounts up", "stat"),
        ("Time since last successful refresh", "timeseries"),
        ("Refresh duration", "timeseries"),
        ("AWS API errors", "timeseries"),
        ("Summary by account", "table"),
        ("Rotation due within $due_days days", "table"),
        ("Rotation due within $due_days days", "stat"),
        ("Keys created in the last 24 hours", "table"),
        ("Keys created in the last 24 hours", "stat"),
        ("Top accounts", "table"),
        ("Top teams", "table"),
        ("Top owners", "table"),
    ];
    for (title, kind) in expect {
        assert!(
            panels(&dashboard)
                .iter()
                .any(|p| p["title"] == title && p["type"] == kind),
            "a {kind} {title}"
        );
    }
    // "Not read" stands next to the high-risk count, so that a 0 there is
    // never read without it (issue 23).
    let risk = &panel(&dashboard, "High-risk keys")["gridPos"];
    let unread = panel(&dashboard, "Accounts not read");
    assert_eq!(unread["gridPos"]["y"], risk["y"]);
    assert_eq!(
        unread["gridPos"]["x"].as_i64().unwrap(),
        risk["x"].as_i64().unwrap() + risk["w"].as_i64().unwrap(),
        "right of the high-risk count"
    );
    assert!(unread["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .contains("aws_iam_exporter_account_up"));
    let all = panels(&dashboard);
    for p in &all {
        let kind = p["type"].as_str().unwrap();
        assert!(
            kind == "row" || required_panels.contains(kind),
            "{kind} is in __requires"
        );
    }

    // The bar chart: stacked, one bar per account name, buckets in order.
    let bar = panel(&dashboard, "Access key age by account");
    assert_eq!(bar["options"]["stacking"], "normal");
    let transformations = bar["transformations"].as_array().unwrap();
    assert_eq!(transformations[0]["id"], "groupingToMatrix");
    assert_eq!(transformations[0]["options"]["rowField"], "account_name");
    assert_eq!(transformations[0]["options"]["columnField"], "age_bucket");
    let order = &organize(bar)["indexByName"];
    let buckets = ["0-30d", "30-90d", "90-180d", "180-365d", "365d+"];
    for (i, bucket) in buckets.iter().enumerate() {
        assert_eq!(order[bucket], i + 1, "{bucket} is bar segment {}", i + 1);
    }

    // Tables show exactly their columns whatever labels the series carry:
    // merge, then an include list, then organize. Bars count each event
    // once: no increase() over a window longer than the bar.
    for p in &all {
        if p["type"] == "table" {
            let ids: Vec<&str> = p["transformations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, ["merge", "filterFieldsByName", "organize"], "{}", p["title"]);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            assert!(!expr.contains("$__rate_interval"), "{}: {expr}", p["title"]);
        }
        // No cell is a solid block of the text colour (a grey "No").
        let text = p["fieldConfig"].to_string();
        assert!(!text.contains("color-background"), "{}", p["title"]);
    }
    // Accounts open this dashboard for the account; users their page in the
    // AWS IAM console.
    for title in ["High-risk access keys", "Access key details", "Summary by account"] {
        let text = panel(&dashboard, title)["fieldConfig"].to_string();
        assert!(
            text.contains(r#"/d/aws-iam-access-keys/aws-iam-access-keys?var-account=${__data.fields[\"Account ID\"]}"#),
            "{title}: account link"
        );
    }
    for title in ["High-risk access keys", "Access key details"] {
        let text = panel(&dashboard, title)["fieldConfig"].to_string();
        assert!(
            text.contains("https://console.aws.amazon.com/iam/home#/users/details/${__value.raw:percentencode}?section=security_credentials"),
            "{title}: user link"
        );
    }
    // The bar chart: horizontal (names on the axis that has room), the
    // accounts with the most keys first, filtered by account, user, status.
    assert_eq!(bar["options"]["orientation"], "horizontal");
    let bar_expr = bar["targets"][0]["expr"].as_str().unwrap();
    for variable in ["$account", "$user", "$status"] {
        assert!(bar_expr.contains(variable), "the bar chart honours {variable}");
    }
    let sort = bar["transformations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "sortBy")
        .expect("the bar chart sorts its accounts");
    assert_eq!(
        sort["options"]["sort"][0],
        serde_json::json!({"field": "Total", "desc": true})
    );

    // Never-used keys say so in both tables.
    for title in ["High-risk access keys", "Access key details"] {
        let text = panel(&dashboard, title)["fieldConfig"].to_string();
        assert!(
            text.contains(r#""match":"null""#) && text.contains(r#""text":"Never""#),
            "{title}"
        );
    }

    // Unique ids, and no two panels overlap on the grid.
    let ids: BTreeSet<u64> = all.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "panel ids are unique");
    let boxes: Vec<(u64, u64, u64, u64)> = all
        .iter()
        .map(|p| {
            let g = &p["gridPos"];
            let n = |k: &str| g[k].as_u64().unwrap();
            (n("x"), n("y"), n("x") + n("w"), n("y") + n("h"))
        })
        .collect();
    for (i, a) in boxes.iter().enumerate() {
        assert!(a.2 <= 24, "panel {i} fits in 24 columns");
        for b in &boxes[i + 1..] {
            let overlap = a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3;
            assert!(!overlap, "panels at {a:?} and {b:?} overlap");
        }
    }
}

/// The dashboard and the rules read only the lean set's per-key families,
/// so they work whichever `metrics.key_series` the exporter is given: no
/// age, unused or never-used gauge, and `aws_iam_access_key_info` only for
/// the last-used service and region, with the keys' creation series as the
/// fallback when it is absent (`or on (account_id, user, key)`). The
/// end-to-end test runs them on both sets.
#[test]
fn dashboard_and_rules_read_only_the_lean_key_series() {
    let dashboard = dashboard();
    let mut exprs: Vec<String> = Vec::new();
    for p in panels(&dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            exprs.push(v["query"].as_str().unwrap().to_string());
        }
    }
    let rules = yaml(RULES);
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() > 60, "{} expressions", exprs.len());
    let metric = Regex::new(r"\baws_iam_[a-z_]+(:[a-z_]+)?").unwrap();
    let optional_info = Regex::new(
        r"group by \(account_id, user, key, last_used_service, last_used_region\) \(aws_iam_access_key_info(\{[^}]*\})?\)\s*or on \(account_id, user, key\)\s*group by \(account_id, user, key\) \(aws_iam_access_key_created_timestamp_seconds(\{[^}]*\})?\)",
    )
    .unwrap();
    let mut optional = 0;
    for expr in &exprs {
        let read: Vec<&str> = metric
            .find_iter(expr)
            .map(|m| m.as_str())
            .filter(|m| !m.contains(':'))
            .collect();
        for family in &NOT_LEAN[1..] {
            assert!(!read.contains(family), "{family} in\n{expr}");
        }
        let info = read.iter().filter(|m| **m == NOT_LEAN[0]).count();
        assert_eq!(
            info,
            optional_info.find_iter(expr).count(),
            "aws_iam_access_key_info other than as the optional last-used service and region in\n{expr}"
        );
        optional += info;
    }
    // The two tables and the recording rule aws_iam_access_key_info:joined.
    assert_eq!(optional, 3);
}

/// The bars of "AWS API errors", evaluated by promtool on a counter that
/// appears at its first error (1 at 2m), grows by 2 at 5m and restarts from
/// 1 at 8m: with one bar a minute, each bar is the change since the previous
/// one, so every error is counted exactly once; before the first error the
/// panel draws 0 from the request counter.
#[test]
#[ignore = "tools tier, run by make test: needs Prometheus, promtool, Alertmanager and node"]
fn dashboard_bars_count_each_event_once() {
    let dashboard = dashboard();
    let errors = panel(&dashboard, "AWS API errors");
    let expr = interpolate(target(errors, "A")["expr"].as_str().unwrap(), ".*", ".*");
    assert!(expr.contains("offset 1s"), "{expr}");
    let expr = expr.replace("offset 1s", "offset 1m");
    let series = r#"{service="iam",operation="ListUsers",instance="exporter:9781",job="aws-iam-key-exporter"}"#;
    let error_series = series.replace("{service", r#"{code="Throttling",service"#);
    let labels = r#"{code="Throttling",operation="ListUsers",service="iam"}"#;
    let mut cases = vec![(1, r#"{operation="ListUsers",service="iam"}"#.to_string(), 0)];
    for (minute, bar) in [(2, 1), (3, 0), (4, 0), (5, 2), (6, 0), (8, 1), (9, 0)] {
        cases.push((minute, labels.to_string(), bar));
    }
    let mut tests = String::new();
    for (minute, labels, value) in cases {
        tests += &format!(
            "      - expr: {expr:?}\n        eval_time: {minute}m\n        exp_samples:\n          - labels: '{labels}'\n            value: {value}\n"
        );
    }
    let file = format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      \
         - series: 'aws_iam_exporter_aws_requests_total{series}'\n        values: '5+5x9'\n      \
         - series: 'aws_iam_exporter_aws_request_errors_total{error_series}'\n        values: '_ _ 1 1 1 3 3 3 1 1'\n    \
         promql_expr_test:\n{tests}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.test.yml");
    std::fs::write(&path, file).unwrap();
    let out = run_ok(&tool(&["promtool"]), &["test", "rules", path.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The dashboard against Grafana's published schema: the TypeScript types of
/// the @grafana/schema npm package, checked by the TypeScript compiler
/// (scripts/typecheck-dashboard.mjs), so a misspelt option fails.
#[test]
#[ignore = "tools tier, run by make test: needs Prometheus, promtool, Alertmanager and node"]
fn dashboard_type_checks_against_grafana_schema() {
    let node = common::tool(
        &["node", "nodejs"],
        "install Node.js (Debian: apt-get install nodejs npm), then run scripts/install-test-deps.sh",
    );
    let script = repo_path("scripts/typecheck-dashboard.mjs");
    let (ok, out) = run(
        &node,
        &[script.to_str().unwrap(), repo_path(DASHBOARD).to_str().unwrap()],
    );
    assert!(ok, "the dashboard does not type-check:\n{out}");
    assert!(out.contains("28 panels match @grafana/schema 11.6.16"), "{out}");

    // The check is real: a misspelt option fails it.
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.json");
    let text = std::fs::read_to_string(repo_path(DASHBOARD)).unwrap();
    assert!(text.contains(r#""showHeader""#));
    std::fs::write(&typo, text.replacen(r#""showHeader""#, r#""showHeadre""#, 1)).unwrap();
    let (ok, out) = run(&node, &[script.to_str().unwrap(), typo.to_str().unwrap()]);
    assert!(!ok && out.contains("showHeadre"), "a misspelt option passes:\n{out}");
}

/// The per-key series the exporter exports (`--metrics.key-series`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum KeySeries {
    /// Every family, as when nothing is configured.
    Default,
    /// `created, last_used, high_risk`: no `aws_iam_access_key_info`, no age,
    /// unused nor never-used gauges.
    Lean,
}

/// The per-key families outside the lean set.
const NOT_LEAN: [&str; 4] = [
    "aws_iam_access_key_info",
    "aws_iam_access_key_age_seconds",
    "aws_iam_access_key_unused_seconds",
    "aws_iam_access_key_never_used",
];

#[test]
#[ignore = "tools tier, run by make test: needs Prometheus, promtool, Alertmanager and node"]
fn alerts_and_dashboard_end_to_end_with_prometheus_and_alertmanager() {
    end_to_end(KeySeries::Default);
}

/// The same with the lean set: every panel has data, every alert fires the
/// same; only the tables' last-used service and region columns are gone.
#[test]
#[ignore = "tools tier, run by make test: needs Prometheus, promtool, Alertmanager and node"]
fn alerts_and_dashboard_end_to_end_with_the_lean_key_series() {
    end_to_end(KeySeries::Lean);
}

fn end_to_end(key_series: KeySeries) {
    let started = Instant::now();
    let prometheus_bin = tool(&["prometheus"]);
    let alertmanager_bin = tool(&["prometheus-alertmanager", "alertmanager"]);
    tool(&["promtool"]);
    tool(&["amtool"]);
    let dir = tempfile::tempdir().unwrap();

    let moto = Moto::start();
    let config = write_config(dir.path(), REALISTIC_CONFIG);
    let mut args = vec!["--config.file", config.to_str().unwrap()];
    if key_series == KeySeries::Lean {
        args.extend(["--metrics.key-series", "created,last_used,high_risk"]);
    }
    let exporter = Exporter::start(&args, &moto.aws_env());
    exporter.wait_ready();
    // The restart below comes back on the same address, so that it keeps the
    // target (the port it frees is re-bound at once), with the same series.
    let instance = format!("127.0.0.1:{}", exporter.port);
    let mut exporter_args = vec!["--web.listen-address", &instance];
    exporter_args.extend(&args);

    let (sink_port, notifications) = start_webhook_sink();
    let am_config = dir.path().join("alertmanager.yml");
    write_yaml(&am_config, &alertmanager_config(sink_port));
    amtool_check_config(&am_config);
    let alertmanager = Daemon::start(
        "alertmanager",
        &alertmanager_bin,
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("alertmanager").display()),
            "--web.listen-address=127.0.0.1:0".to_string(),
            // No cluster listener: the web port is its only one.
            "--cluster.listen-address=".to_string(),
        ],
        dir.path().join("alertmanager.log"),
    );
    let am_port: u16 = alertmanager.url.rsplit(':').next().unwrap().parse().unwrap();

    let prom_config = dir.path().join("prometheus.yml");
    write_yaml(&prom_config, &prometheus_config(exporter.port, am_port));
    promtool_check_config(&prom_config);
    promtool_check_rules(&repo_path(RULES));
    let prometheus = Daemon::start(
        "prometheus",
        &prometheus_bin,
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("prometheus").display()),
            "--web.listen-address=127.0.0.1:0".to_string(),
        ],
        dir.path().join("prometheus.log"),
    );
    let diagnostics = || {
        format!(
            "prometheus:\n{}\nalertmanager:\n{}",
            prometheus.logs(),
            alertmanager.logs()
        )
    };

    // Prometheus scrapes the exporter, a few times so that rates have data.
    let up = format!(r#"up{{job="{JOB}"}} == 1"#);
    wait_for("Prometheus to scrape the exporter", Duration::from_secs(30), || {
        query(&prometheus, &up).map(|r| r.len() == 1).unwrap_or(false)
    });
    let scrapes = format!(r#"count_over_time(up{{job="{JOB}"}}[1m]) >= 4"#);
    wait_for("four scrapes", Duration::from_secs(30), || {
        query(&prometheus, &scrapes).map(|r| r.len() == 1).unwrap_or(false)
    });
    let up = query(&prometheus, &format!(r#"up{{job="{JOB}"}}"#)).unwrap();
    assert_eq!(labels_of(&up[0])["instance"], instance);
    assert_eq!(value_of(&up[0]), 1.0);

    let seeded = &moto.seeded;
    let account_id = seeded["account_id"].as_str().unwrap();
    let alias = seeded["alias"].as_str().unwrap();
    let keys = seeded_keys(seeded);
    let tags = seeded_tags(seeded);
    let now = unix_now();

    // The exporter exports the chosen set: each family outside the lean set
    // has a series per key with the default set, none with the lean set.
    for family in NOT_LEAN {
        let count = query(&prometheus, &format!(r#"count({family}{{job="{JOB}"}})"#)).unwrap();
        match key_series {
            KeySeries::Default => {
                assert_eq!(count.len(), 1, "{family}");
                assert_eq!(value_of(&count[0]), keys.len() as f64, "{family}");
            }
            KeySeries::Lean => assert!(count.is_empty(), "{family} with the lean set: {count:?}"),
        }
    }

    // Every dashboard query, with "All" selected, is valid and returns data;
    // the list of new keys is empty, as the fixture has no key younger than
    // a day (checked below).
    let dashboard = dashboard();
    let mut queries = 0;
    for p in panels(&dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let result = run_target(&prometheus, t, ".*", ".*")
                .unwrap_or_else(|e| panic!("panel {} query {}: {e}\n{}", p["title"], t["refId"], t["expr"]));
            if p["title"] == "Keys created in the last 24 hours" && p["type"] == "table" {
                continue;
            }
            assert!(
                !result.is_empty(),
                "panel {} query {} returns no data:\n{}",
                p["title"],
                t["refId"],
                t["expr"]
            );
            queries += 1;
        }
    }
    assert!(queries >= 20, "{queries} queries");

    // The variables: the account by name, every user considered.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let account_var = variables.iter().find(|v| v["name"] == "account").unwrap();
    let expr = account_var["query"].as_str().unwrap();
    let inner = expr.strip_prefix("query_result(").unwrap().strip_suffix(')').unwrap();
    let regex = Regex::new(account_var["regex"].as_str().unwrap().trim_matches('/')).unwrap();
    let mut options = BTreeSet::new();
    for sample in query(&prometheus, &interpolate(inner, ".*", ".*")).unwrap() {
        // The text Grafana matches the regex against: name{labels} value time.
        let labels = labels_of(&sample);
        let text = format!(
            "{}{{{}}} {} {}",
            labels.get("__name__").cloned().unwrap_or_default(),
            labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(","),
            sample["value"][1].as_str().unwrap(),
            sample["value"][0]
        );
        let captures = regex.captures(&text).unwrap_or_else(|| panic!("{regex} on {text}"));
        options.insert((captures["value"].to_string(), captures["text"].to_string()));
    }
    assert_eq!(options, BTreeSet::from([(account_id.to_string(), alias.to_string())]));
    let user_var = variables.iter().find(|v| v["name"] == "user").unwrap();
    let expr = interpolate(user_var["query"].as_str().unwrap(), ".*", ".*");
    let (selector, label) = expr
        .strip_prefix("label_values(")
        .and_then(|e| e.strip_suffix(')'))
        .and_then(|e| e.rsplit_once(','))
        .unwrap();
    let answer = api_get(
        &format!("{}/api/v1/label/{}/values", prometheus.url, label.trim()),
        &[("match[]", selector)],
    )
    .unwrap();
    let users: BTreeSet<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(users, tags.keys().map(String::as_str).collect());

    // The stat panels. Rotation due: active keys that reach 90 days within
    // the default 14 days of the due_days variable.
    let active = keys.iter().filter(|k| k.active);
    let rotation_due: BTreeSet<_> = active
        .clone()
        .filter(|k| (76.0 * DAY..90.0 * DAY).contains(&k.age(now)))
        .map(Key::pair)
        .collect();
    assert!(!rotation_due.is_empty(), "the fixture has keys due for rotation");
    let new_keys: BTreeSet<_> = keys.iter().filter(|k| k.age(now) < DAY).map(Key::pair).collect();
    let stats = [
        ("Access keys", keys.len()),
        ("Active keys", active.clone().count()),
        ("High-risk keys", keys.iter().filter(|k| k.high_risk).count()),
        (
            "Exposed keys",
            keys.iter().filter(|k| k.active && k.quarantined).count(),
        ),
        (
            "Active keys older than 90 days",
            active.clone().filter(|k| k.age(now) > 90.0 * DAY).count(),
        ),
        ("Never-used keys", keys.iter().filter(|k| k.last_used.is_none()).count()),
        ("Accounts with a root access key", 1),
        ("Accounts up", 1),
        ("Accounts down", 0),
        ("Rotation due within $due_days days", rotation_due.len()),
        ("Keys created in the last 24 hours", new_keys.len()),
    ];
    for (title, expected) in stats {
        let result = run_target(
            &prometheus,
            target(typed_panel(&dashboard, title, "stat"), "A"),
            ".*",
            ".*",
        )
        .unwrap();
        assert_eq!(result.len(), 1, "{title}");
        assert_eq!(value_of(&result[0]), expected as f64, "{title}");
    }

    // The bar chart: one bar for the account, by name, every bucket counted.
    let bar = panel(&dashboard, "Access key age by account");
    let mut buckets = BTreeMap::new();
    for row in run_target(&prometheus, target(bar, "A"), ".*", ".*").unwrap() {
        let labels = labels_of(&row);
        assert_eq!(labels["account_name"], alias);
        buckets.insert(labels["age_bucket"].clone(), value_of(&row));
    }
    let order = organize(bar)["indexByName"].as_object().unwrap();
    let ordered: BTreeSet<&String> = order.keys().filter(|k| !k.contains('\\')).collect();
    assert_eq!(
        buckets.keys().collect::<BTreeSet<_>>(),
        ordered,
        "the bar chart orders exactly the exporter's buckets"
    );
    for (bucket, count) in &buckets {
        // The status variable's default: active keys only.
        let seeded_count = keys.iter().filter(|k| k.active && &k.bucket == bucket).count();
        assert_eq!(*count, seeded_count as f64, "bucket {bucket}");
    }
    // All statuses and one user: that user's keys only.
    let expr = interpolate(target(bar, "A")["expr"].as_str().unwrap(), ".*", "svc-deploy")
        .replace(r#"status=~"Active""#, r#"status=~".*""#);
    let counted: f64 = query(&prometheus, &expr).unwrap().iter().map(value_of).sum();
    assert_eq!(counted, keys.iter().filter(|k| k.user == "svc-deploy").count() as f64);

    // The tables show exactly their columns, although every series carries
    // the operator's target labels: the high-risk table after the
    // dashboard's own transformations.
    let table_results = |p: &Value| -> Vec<(String, Vec<Value>)> {
        p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let rows = run_target(&prometheus, t, ".*", ".*").unwrap();
                (t["refId"].as_str().unwrap().to_string(), rows)
            })
            .collect()
    };
    let high_risk_table = panel(&dashboard, "High-risk access keys");
    let results = table_results(high_risk_table);
    assert!(
        results
            .iter()
            .any(|(_, rows)| rows.iter().any(|r| labels_of(r).contains_key("pod"))),
        "the series carry the target labels"
    );
    // The last-used service and region come from aws_iam_access_key_info:
    // without it no row has them, and Grafana shows no such column.
    let last_used_location = ["Last used service", "Last used region"];
    let want_columns: Vec<&str> = [
        "Account",
        "Account ID",
        "User",
        "Key",
        "Access key ID",
        "Status",
        "Age (days)",
        "Last rotated",
        "Days since last use",
        "Last used",
        "Why high risk",
        "Admin",
        "Exposed",
        "Last used service",
        "Last used region",
        "Owner",
        "Team",
    ]
    .into_iter()
    .filter(|c| key_series == KeySeries::Default || !last_used_location.contains(c))
    .collect();
    assert_eq!(table_columns(high_risk_table, &results), want_columns);
    // Why each key is high risk.
    let (_, reasons) = results.iter().find(|(r, _)| r == "E").unwrap();
    assert_eq!(reasons.len(), keys.iter().filter(|k| k.high_risk).count());
    for row in reasons {
        let labels = labels_of(row);
        let key = keys.iter().find(|k| k.id == labels["access_key_id"]).unwrap();
        let reason = if key.quarantined {
            "AWS quarantined this user: a key was found exposed"
        } else if key.age(now) > 365.0 * DAY {
            "older than 365 days"
        } else if key.admin && key.age(now) > 90.0 * DAY {
            "admin key not rotated"
        } else {
            assert!(key.last_used.is_none());
            "never used"
        };
        assert_eq!(labels["reason"], reason, "{}", key.id);
    }
    // The other tables, with every label of the series, show their columns.
    let details = panel(&dashboard, "Access key details");
    let columns = table_columns(details, &table_results(details));
    assert_eq!(
        columns[..6],
        ["Account", "Account ID", "User", "Key", "Access key ID", "Status"]
    );
    assert!(columns.contains(&"High risk".to_string()), "{columns:?}");
    for column in last_used_location {
        assert_eq!(
            columns.contains(&column.to_string()),
            key_series == KeySeries::Default,
            "{column}: {columns:?}"
        );
    }
    assert!(
        !columns
            .iter()
            .any(|c| ["pod", "namespace", "cluster", "instance", "job", "Time"].contains(&c.as_str())),
        "{columns:?}"
    );
    let summary = panel(&dashboard, "Summary by account");
    let summary_results = table_results(summary);
    assert_eq!(
        table_columns(summary, &summary_results),
        [
            "Account",
            "Account ID",
            "0-30d",
            "30-90d",
            "90-180d",
            "180-365d",
            "365d+",
            "Active keys",
            "High-risk keys",
            "Admin keys",
            "Users with two active keys",
            "Root access key",
            "Compliance (CIS 1.4, 1.12-1.14)"
        ]
    );
    // The compliance score: active keys rotated within 90 days, used within
    // 45 (or younger than 45 days), the only active key of their user.
    let active_keys: Vec<&Key> = keys.iter().filter(|k| k.active).collect();
    let compliant = active_keys
        .iter()
        .filter(|k| {
            k.age(now) <= 90.0 * DAY
                && k.unused(now) < 45.0 * DAY
                && active_keys.iter().filter(|o| o.user == k.user).count() == 1
        })
        .count();
    let (_, score) = summary_results.iter().find(|(r, _)| r == "K").unwrap();
    assert_eq!(score.len(), 1);
    let want = compliant as f64 / active_keys.len() as f64;
    assert!(
        (value_of(&score[0]) - want).abs() < 1e-9,
        "compliance {} != {want}",
        value_of(&score[0])
    );
    assert!(compliant > 0 && compliant < active_keys.len(), "the fixture has both");
    // Rotation due: the keys, with the date they reach 90 days.
    let rotation = typed_panel(&dashboard, "Rotation due within $due_days days", "table");
    let rows = run_target(&prometheus, target(rotation, "A"), ".*", ".*").unwrap();
    assert_eq!(key_pairs(&rows), rotation_due);
    for row in &rows {
        let key = keys.iter().find(|k| k.id == labels_of(row)["access_key_id"]).unwrap();
        let due_ms = (key.created + 90.0 * DAY) * 1000.0;
        assert!((value_of(row) - due_ms).abs() < 2000.0, "due date of {}", key.id);
    }
    let new_table = typed_panel(&dashboard, "Keys created in the last 24 hours", "table");
    let rows = run_target(&prometheus, target(new_table, "A"), ".*", ".*").unwrap();
    assert_eq!(key_pairs(&rows), new_keys);
    // Top teams: high-risk keys per team tag.
    let teams = panel(&dashboard, "Top teams");
    let mut by_team: BTreeMap<String, f64> = BTreeMap::new();
    for key in keys.iter().filter(|k| k.high_risk) {
        let team = tags[&key.user].get("tag_team").cloned().unwrap_or_default();
        *by_team.entry(team).or_default() += 1.0;
    }
    let got: BTreeMap<String, f64> = run_target(&prometheus, target(teams, "A"), ".*", ".*")
        .unwrap()
        .iter()
        .map(|r| (labels_of(r).get("tag_team").cloned().unwrap_or_default(), value_of(r)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    assert_eq!(got, by_team);

    // The high-risk table returns exactly the keys seeded as high risk, with
    // the account's name, owner and team tags, age in days and last use.
    let rows = run_target(&prometheus, target(high_risk_table, "A"), ".*", ".*").unwrap();
    let high_risk: BTreeSet<(String, String)> = keys.iter().filter(|k| k.high_risk).map(Key::pair).collect();
    assert!(high_risk.len() >= 5, "the fixture seeds high-risk keys");
    assert_eq!(
        key_pairs(&rows),
        high_risk,
        "the high-risk table lists the high-risk keys"
    );
    for row in &rows {
        let labels = labels_of(row);
        let key = keys.iter().find(|k| k.id == labels["access_key_id"]).unwrap();
        assert_eq!(labels["account_name"], alias);
        assert_eq!(labels["status"], "Active");
        let service = match key_series {
            KeySeries::Default => key.service.as_str(),
            KeySeries::Lean => "",
        };
        assert_eq!(
            labels.get("last_used_service").cloned().unwrap_or_default(),
            service,
            "last used service of {}",
            key.id
        );
        for (tag, value) in &tags[&key.user] {
            assert_eq!(&labels[tag], value, "{tag} of {}", key.user);
        }
        assert_eq!(value_of(row), (key.age(now) / DAY).floor(), "age in days of {}", key.id);
    }
    let used = run_target(&prometheus, target(high_risk_table, "B"), ".*", ".*").unwrap();
    let expected: BTreeSet<_> = keys
        .iter()
        .filter(|k| k.high_risk && k.last_used.is_some())
        .map(Key::pair)
        .collect();
    assert_eq!(
        key_pairs(&used),
        expected,
        "days since last use, empty (Never) for keys never used"
    );

    // The details table: every key, days since last use and high risk.
    let all: BTreeSet<_> = keys.iter().map(Key::pair).collect();
    let rows = run_target(&prometheus, target(details, "A"), ".*", ".*").unwrap();
    assert_eq!(key_pairs(&rows), all);
    let rows = run_target(&prometheus, target(details, "B"), ".*", ".*").unwrap();
    assert_eq!(
        key_pairs(&rows),
        keys.iter().filter(|k| k.last_used.is_some()).map(Key::pair).collect()
    );
    for row in &rows {
        let key = keys.iter().find(|k| k.id == labels_of(row)["access_key_id"]).unwrap();
        let days = ((now - key.last_used.unwrap()) / DAY).floor();
        assert_eq!(value_of(row), days, "days since last use of {}", key.id);
    }
    for row in run_target(&prometheus, target(details, "F"), ".*", ".*").unwrap() {
        let key = keys.iter().find(|k| k.id == labels_of(&row)["access_key_id"]).unwrap();
        assert_eq!(value_of(&row), if key.high_risk { 1.0 } else { 0.0 }, "{}", key.id);
    }
    // Last rotated and last used as dates (milliseconds for Grafana).
    for row in run_target(&prometheus, target(details, "C"), ".*", ".*").unwrap() {
        let key = keys.iter().find(|k| k.id == labels_of(&row)["access_key_id"]).unwrap();
        assert!(
            (value_of(&row) - key.created * 1000.0).abs() < 2000.0,
            "created {}",
            key.id
        );
    }
    let rows = run_target(&prometheus, target(details, "D"), ".*", ".*").unwrap();
    assert_eq!(
        key_pairs(&rows),
        keys.iter().filter(|k| k.last_used.is_some()).map(Key::pair).collect()
    );
    // One account and one user selected, escaped the way Grafana escapes them.
    let user = "sam+admin@example.com";
    let rows = run_target(
        &prometheus,
        target(details, "A"),
        account_id,
        &grafana_regex_escape(user),
    )
    .unwrap();
    assert_eq!(
        key_pairs(&rows),
        keys.iter().filter(|k| k.user == user).map(Key::pair).collect(),
        "the user variable filters the details"
    );
    assert_eq!(rows.len(), 2);

    // The alerts: exactly the expected ones reach Alertmanager, with their
    // labels, inhibitions and receivers.
    let expected = expected_alerts(seeded, now);
    let mut alerts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Value::Array(list)) = api_get(&format!("{}/api/v2/alerts", alertmanager.url), &[]) {
            let ids: BTreeSet<AlertId> = list.iter().map(alert_id).collect();
            let processed = list.iter().all(|a| a["status"]["state"] != "unprocessed");
            alerts = list;
            if processed && ids == expected.keys().cloned().collect() {
                break;
            }
        }
        if Instant::now() > deadline {
            let got: BTreeSet<AlertId> = alerts.iter().map(alert_id).collect();
            let want: BTreeSet<AlertId> = expected.keys().cloned().collect();
            panic!(
                "Alertmanager's alerts differ from the expected ones.\nmissing: {:?}\nunexpected: {:?}\n{}",
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>(),
                diagnostics()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for name in [
        "AwsIamAccessKeyHighRisk",
        "AwsIamAccessKeyRotationOverdue",
        "AwsIamAccessKeyUnused45Days",
        "AwsIamAccessKeyUnused90Days",
        "AwsIamUserMultipleActiveKeys",
        "AwsIamRootAccessKeyPresent",
    ] {
        assert!(expected.keys().any(|(n, _, _)| n == name), "the fixture fires {name}");
    }
    assert!(
        expected.values().any(|e| e.suppressed),
        "the fixture exercises the inhibitions"
    );
    for alert in &alerts {
        let id = alert_id(alert);
        let want = &expected[&id];
        let labels: BTreeMap<String, String> = serde_json::from_value(alert["labels"].clone()).unwrap();
        assert_eq!(labels, want.labels, "labels of {id:?}");
        let state = alert["status"]["state"].as_str().unwrap();
        assert_eq!(state, if want.suppressed { "suppressed" } else { "active" }, "{id:?}");
        let receivers: BTreeSet<String> = alert["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(receivers, expected_receivers(&labels), "receivers of {id:?}");

        let annotations = &alert["annotations"];
        let name = &id.0;
        assert_eq!(
            annotations["runbook_url"].as_str().unwrap(),
            format!("{RUNBOOK_BASE}#{}", name.to_lowercase())
        );
        let summary = annotations["summary"].as_str().unwrap();
        let description = annotations["description"].as_str().unwrap();
        assert!(summary.contains(alias), "{summary}");
        assert!(
            description.contains(&format!("account {alias} ({account_id})")),
            "{description}"
        );
        assert!(
            !description.contains("{{") && !description.contains("  "),
            "{description}"
        );
        let dashboard_url = annotations["dashboard_url"].as_str().unwrap();
        let mut want_url = format!("{GRAFANA_DASHBOARD}?var-account={account_id}");
        if !id.1.is_empty() {
            assert!(description.contains(&format!("IAM user {}", id.1)), "{description}");
            assert!(description.contains(&id.2), "{description}");
            want_url += &format!("&var-user={}", url_query_escape(&id.1));
        }
        assert_eq!(dashboard_url, want_url);
        if name == "AwsIamAccessKeyHighRisk" {
            let key = keys.iter().find(|k| k.id == id.2).unwrap();
            let age = (key.age(now) / DAY).floor();
            let reason = if age >= 365.0 {
                format!("{age} days old, over the 365-day limit.")
            } else if key.last_used.is_none() {
                format!("has never been used in the {age} days since its creation.")
            } else if key.quarantined {
                format!("{age} days old, and AWS has quarantined its user: one of its keys was found exposed.")
            } else {
                assert!(
                    key.admin && age >= 90.0,
                    "the fixture's young, used high-risk keys are quarantined or admin: {}",
                    key.id
                );
                format!("{age} days old, and its user is admin-equivalent: over the 90-day limit for admin keys.")
            };
            assert!(
                description.contains(&format!("it is active and {reason}")),
                "{description}"
            );
        }
    }

    // Prometheus agrees: these alerts fire, and nothing else is firing or
    // pending; in particular no exporter-health alert.
    let answer = api_get(&format!("{}/api/v1/alerts", prometheus.url), &[]).unwrap();
    let prometheus_alerts = answer["data"]["alerts"].as_array().unwrap();
    for alert in prometheus_alerts {
        let name = alert["labels"]["alertname"].as_str().unwrap();
        assert!(!name.starts_with("AwsIamExporter"), "exporter alert {alert}");
        assert_eq!(alert["state"], "firing", "{alert}");
    }
    let firing: BTreeSet<AlertId> = prometheus_alerts.iter().map(alert_id).collect();
    assert_eq!(firing, expected.keys().cloned().collect());

    // The active alerts are delivered to their receivers; inhibited ones never.
    let delivered = || -> BTreeSet<(String, AlertId)> {
        let notifications = notifications.lock().unwrap();
        notifications
            .iter()
            .flat_map(|(path, n)| {
                let receiver = path.trim_start_matches('/').to_string();
                assert_eq!(n["receiver"].as_str(), Some(receiver.as_str()));
                assert_eq!(n["status"], "firing", "nothing resolves: {n}");
                n["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |a| (receiver.clone(), alert_id(a)))
            })
            .collect()
    };
    let want: BTreeSet<(String, AlertId)> = expected
        .iter()
        .filter(|(_, e)| !e.suppressed)
        .flat_map(|(id, e)| expected_receivers(&e.labels).into_iter().map(|r| (r, id.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !want.is_subset(&delivered()) {
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}\n{}",
            want.difference(&delivered()).collect::<Vec<_>>(),
            diagnostics()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(delivered(), want, "each active alert reaches exactly its receivers");
    for receiver in ["security-pager", "team-payments", "team-slack", "security-team"] {
        assert!(
            want.iter().any(|(r, _)| r == receiver),
            "the fixture routes to {receiver}"
        );
    }

    // A restart: the exporter stops for 10 s and starts again on the same
    // address. Its key series go stale at once (the failed scrapes), yet no
    // alert resolves at Alertmanager (keep_firing_for) and no notification
    // is sent again, resolved or firing.
    let sent = notifications.lock().unwrap().len();
    let am_alerts = || -> BTreeMap<AlertId, String> {
        let list = api_get(&format!("{}/api/v2/alerts", alertmanager.url), &[]).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|a| (alert_id(a), a["status"]["state"].as_str().unwrap().to_string()))
            .collect()
    };
    let states = am_alerts();
    assert_eq!(
        states.keys().cloned().collect::<BTreeSet<_>>(),
        expected.keys().cloned().collect()
    );
    let key_series = format!(r#"count(aws_iam_access_key_high_risk{{job="{JOB}"}})"#);
    let key_count = query(&prometheus, &key_series).unwrap();
    assert_eq!(value_of(&key_count[0]), keys.len() as f64);
    let status = exporter.terminate();
    assert!(status.success(), "the exporter stops cleanly on SIGTERM: {status}");
    wait_for("the key series to go stale", Duration::from_secs(30), || {
        query(&prometheus, &key_series).map(|r| r.is_empty()).unwrap_or(false)
    });
    let stopped = Instant::now();
    while stopped.elapsed() < Duration::from_secs(10) {
        assert_eq!(am_alerts(), states, "Alertmanager's alerts while the exporter is away");
        std::thread::sleep(Duration::from_millis(500));
    }
    let exporter = Exporter::spawn(&exporter_args, &moto.aws_env());
    exporter.wait_ready();
    wait_for("the key series to come back", Duration::from_secs(60), || {
        query(&prometheus, &key_series)
            .map(|r| r.len() == 1 && value_of(&r[0]) == keys.len() as f64)
            .unwrap_or(false)
    });
    // Rules evaluated, alerts sent, and several group intervals (1 s) gone.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(am_alerts(), states, "Alertmanager's alerts after the restart");
    let answer = api_get(&format!("{}/api/v1/alerts", prometheus.url), &[]).unwrap();
    let firing: BTreeSet<AlertId> = answer["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(alert_id)
        .collect();
    assert_eq!(firing, expected.keys().cloned().collect(), "firing after the restart");
    let after = notifications.lock().unwrap()[sent..].to_vec();
    assert!(after.is_empty(), "notifications after the restart: {after:?}");

    drop(exporter);
    drop(prometheus);
    drop(alertmanager);
    eprintln!(
        "prometheus_e2e: end to end ({key_series:?} key series) in {:.1?}",
        started.elapsed()
    );
}

/// Go's url.QueryEscape (the rules' `urlquery`): unreserved characters stay,
/// space becomes `+`, every other byte `%XX`.
fn url_query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// (alertname, user, access_key_id) of an alert from any of the APIs.
fn alert_id(alert: &Value) -> AlertId {
    let label = |name: &str| alert["labels"][name].as_str().unwrap_or_default().to_string();
    (label("alertname"), label("user"), label("access_key_id"))
}
