//! Shared helpers for the integration tests: the moto IAM server, the real
//! exporter binary, scraping and parsing `/metrics`, and promtool.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_aws-iam-key-exporter");

/// The first of `names` that runs; a missing tool fails the test with how to
/// install it (`install`), never skips it.
pub fn tool(names: &[&str], install: &str) -> String {
    for name in names {
        if Command::new(name).arg("--version").output().is_ok() {
            return name.to_string();
        }
    }
    panic!("{} is not installed: {install}", names.join(" or "))
}

/// Runs `program`; its success and its stdout and stderr together. A
/// program that cannot start fails the test with how to install it.
pub fn run(program: &str, args: &[&str], install: &str) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// As [`run`], failing the test when the program fails.
pub fn run_ok(program: &str, args: &[&str], install: &str) -> String {
    let (ok, text) = run(program, args, install);
    assert!(ok, "`{program} {}` failed:\n{text}", args.join(" "));
    text
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// moto's IAM server, seeded by `tests/moto_server.py`.
pub struct Moto {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub seeded: Value,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// With arguments for `tests/moto_server.py`, e.g. `--scenario organization`.
    pub fn start_with(args: &[&str]) -> Moto {
        let mut child = Command::new("python3")
            .arg(repo_path("tests/moto_server.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 ({e}): install Python 3 and then: pip install \"moto[server]\"")
            });
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            let status = child.wait().unwrap();
            panic!(
                "tests/moto_server.py exited ({status}) without starting; if it said moto is missing, install it with: pip install \"moto[server]\""
            );
        }
        let seeded: Value = serde_json::from_str(&line).expect("moto_server.py prints JSON");
        Moto {
            child,
            stdin,
            stdout,
            seeded,
        }
    }

    pub fn endpoint(&self) -> String {
        self.seeded["endpoint"].as_str().unwrap().to_string()
    }

    /// Sends one command (`stop`, `start`, `delete-key USER ID`) and waits for its answer.
    pub fn command(&mut self, command: &str) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer.get("ok").is_some(), "moto command {command:?} failed: {answer}");
        answer
    }

    /// Environment that points the AWS SDK at this server.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        self.aws_env_for(&self.endpoint())
    }

    /// Environment that points the AWS SDK at the fault-injecting proxy.
    pub fn aws_env_via_proxy(&self) -> Vec<(String, String)> {
        self.aws_env_for(self.seeded["proxy_endpoint"].as_str().unwrap())
    }

    fn aws_env_for(&self, endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real exporter binary, serving on a port it chose itself.
pub struct Exporter {
    child: Child,
    /// The first listen address's port.
    pub port: u16,
    /// Every address the exporter listens on, as it wrote them.
    pub addresses: Vec<std::net::SocketAddr>,
    pub logs: Arc<Mutex<Vec<String>>>,
    /// Holds the bound-addresses file.
    _dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts `serve` with the given arguments on 127.0.0.1:0 and waits until it listens.
    pub fn start(args: &[&str], env: &[(String, String)]) -> Exporter {
        let mut all = vec!["--web.listen-address", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Exporter::spawn(&all, env)
    }

    pub fn spawn(args: &[&str], env: &[(String, String)]) -> Exporter {
        Exporter::spawn_wrapped(&[], args, env)
    }

    /// Started through `wrapper` (a program and its arguments, e.g.
    /// `prlimit`), which runs the binary with `args`. The bound addresses
    /// come from `--web.bound-addresses-file`, not from the log, so that
    /// tests depend on neither the log format nor a port picked in advance.
    pub fn spawn_wrapped(wrapper: &[&str], args: &[&str], env: &[(String, String)]) -> Exporter {
        Exporter::spawn_inner(wrapper, args, env, false)
    }

    /// With no environment but `env` (not even PATH or HOME): for what an
    /// exporter without any credentials does.
    pub fn start_in_empty_environment(args: &[&str], env: &[(String, String)]) -> Exporter {
        let mut all = vec!["--web.listen-address", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Exporter::spawn_inner(&[], &all, env, true)
    }

    fn spawn_inner(wrapper: &[&str], args: &[&str], env: &[(String, String)], clear: bool) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bound-addresses");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        if clear {
            command.env_clear();
        }
        let mut child = command
            .args(args)
            .arg("--web.bound-addresses-file")
            .arg(&file)
            .envs(env.iter().cloned())
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter binary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("exporter: {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addresses: Vec<std::net::SocketAddr> = loop {
            // Written through a rename: present means complete.
            if let Ok(text) = std::fs::read_to_string(&file) {
                break text.lines().map(|l| l.parse().unwrap()).collect();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "exporter exited ({status}) before listening; logs: {:?}",
                    logs.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not start listening; logs: {:?}",
                logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Exporter {
            child,
            port: addresses[0].port(),
            addresses,
            logs,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn scrape(&self) -> String {
        get(&self.url("/metrics")).1
    }

    pub fn wait_ready(&self) {
        self.wait_ready_at("/-/ready");
    }

    pub fn wait_ready_at(&self, path: &str) {
        wait_for("the exporter to be ready", Duration::from_secs(60), || {
            get(&self.url(path)).0 == 200
        });
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "exporter did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET returning status and body, whatever the status.
pub fn get(url: &str) -> (u16, String) {
    match ureq::get(url).timeout(Duration::from_secs(30)).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the Prometheus text format (the subset the exporter writes).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("closing brace"))),
            None => (series, BTreeMap::new()),
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(mut text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !text.is_empty() {
        let (name, rest) = text.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("closing quote");
            match c {
                '\\' => match chars.next().expect("escaped char").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(name.to_string(), value);
        text = rest[end + 1..].trim_start_matches(',');
    }
    labels
}

/// Samples of one metric whose labels include all of `matching`.
pub fn find<'a>(samples: &'a [Sample], name: &str, matching: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && matching
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of exactly one matching sample.
pub fn value(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, matching);
    assert_eq!(found.len(), 1, "expected one {name}{matching:?}, found {found:?}");
    found[0].value
}

/// The config the tests run the realistic moto account with: two users are
/// left out (by name and by tag; their keys are high risk, so a leak into a
/// metric, panel or alert shows) and the owner and team tags are exported.
pub const REALISTIC_CONFIG: &str = r#"
users:
  exclude: ["^excluded-"]
  exclude_tags: {exporter-ignore: "true"}
labels:
  user_tags: [owner, team]
"#;

/// Runs `promtool check metrics` on the text and returns what it printed.
pub fn promtool_check_metrics(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install it with `apt-get install prometheus` (Debian) or run .ci/run")
        });
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

impl Exporter {
    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Every per-key series (by its creation timestamp), to compare data before,
/// during and after a fault.
pub fn key_series(text: &str) -> Vec<Sample> {
    find(
        &parse_metrics(text),
        "aws_iam_access_key_created_timestamp_seconds",
        &[],
    )
    .into_iter()
    .cloned()
    .collect()
}
