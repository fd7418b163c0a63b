//! The HTTP front door under abuse, against the real binary on loopback:
//! connections that never finish their headers, slow readers, too many
//! scrapes, wrong-password floods and user-name probing by timing, content
//! negotiation by the RFCs, invalid durations, and a large report parsed
//! without stalling the probes. Each test is bounded in time and count.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;

/// The timing tests measure latency: they run one at a time, not beside
/// each other's floods.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n";

/// A credential report of `users` users with one active key each.
fn synthetic_report(path: &Path, users: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(HEADER.as_bytes()).unwrap();
    for u in 0..users {
        writeln!(
            out,
            "user-{u:07},arn:aws:iam::123456789012:user/user-{u:07},2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,\
true,2025-{:02}-01T00:00:00+00:00,2026-01-01T00:00:00+00:00,eu-west-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            u % 12 + 1
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Serves `users` synthetic users (behind basic auth when `web` is given).
fn serve(dir: &Path, users: usize, web: Option<&str>, args: &[&str]) -> Exporter {
    let report = dir.join("report.csv");
    synthetic_report(&report, users);
    let web_file = dir.join("web.yml");
    let mut all = vec!["--credential-report.file", report.to_str().unwrap()];
    if let Some(web) = web {
        std::fs::write(&web_file, web).unwrap();
        all.extend(["--web.config.file", web_file.to_str().unwrap()]);
    }
    all.extend_from_slice(args);
    let exporter = Exporter::start(&all, &[]);
    exporter.wait_ready();
    exporter
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn users_yaml(cost: u32) -> String {
    format!(
        "basic_auth_users:\n  prometheus: '{}'\n",
        bcrypt::hash("right", cost).unwrap()
    )
}

/// GET with headers: status, response headers (lower-case names) and body.
fn request(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut req = agent.get(url).timeout(Duration::from_secs(60));
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let response = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let names = response.headers_names();
    let headers = names
        .iter()
        .map(|n| (n.to_lowercase(), response.header(n).unwrap_or("").to_string()))
        .collect();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn timed_status(agent: &ureq::Agent, url: &str, authorization: &str) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _, _) = request(agent, url, &[("Authorization", authorization)]);
    (status, started.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn connections_that_never_finish_their_headers_are_closed_while_scrapes_answer() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), 10, None, &["--web.read-header-timeout", "3s"]);
    let opened = Instant::now();
    // Half send part of a request, half nothing at all (which hyper's own
    // protocol detection would wait for forever).
    let stalled: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", exporter.port)).unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            }
            s
        })
        .collect();
    let started = Instant::now();
    let (status, body) = get(&exporter.url("/metrics"));
    assert_eq!(status, 200);
    assert!(body.contains("aws_iam_access_key_age_seconds"));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a stalled connection was not closed: {other:?}"),
        }
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_secs(3) - Duration::from_millis(200) && closed_after < Duration::from_secs(10),
        "all 300 closed after {closed_after:?} (timeout 3s)"
    );
}

#[test]
fn unknown_users_take_as_long_as_known_users_with_a_wrong_password() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), 10, Some(&users_yaml(7)), &[]);
    let url = exporter.url("/metrics");
    let agent = ureq::agent();
    let sample = |user: &str| {
        median(
            (0..40)
                .map(|_| {
                    let (status, took) = timed_status(&agent, &url, &basic(user, "wrong"));
                    assert_eq!(status, 401);
                    took
                })
                .collect(),
        )
    };
    let known = sample("prometheus");
    let unknown = sample("nobody");
    assert!(
        unknown * 2 >= known,
        "median for an unknown user {unknown:?}, for a known user with a wrong password {known:?}"
    );
}

#[test]
fn a_flood_of_wrong_passwords_does_not_starve_good_scrapes() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // Cost 10, as `htpasswd -nBC 10` makes.
    let exporter = serve(dir.path(), 10, Some(&users_yaml(10)), &[]);
    let url = exporter.url("/metrics");
    let good = basic("prometheus", "right");
    // As Prometheus would have: scraping before the flood begins.
    assert_eq!(timed_status(&ureq::agent(), &url, &good).0, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    for _ in 0..48 {
        let (stop, refused, url) = (stop.clone(), refused.clone(), url.clone());
        // Not joined: a request waiting its turn for bcrypt ends when the
        // exporter does, at the end of the test.
        std::thread::spawn(move || {
            let agent = ureq::agent();
            let bad = basic("prometheus", "wrong");
            while !stop.load(Ordering::Relaxed) {
                match agent
                    .get(&url)
                    .set("Authorization", &bad)
                    .timeout(Duration::from_secs(60))
                    .call()
                {
                    Err(ureq::Error::Status(401, _)) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(ureq::Error::Transport(_)) => return,
                    _ => {}
                }
            }
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    // Five good scrapes within the flood's 10 s; one that takes longer than
    // 5 s counts as 5 s.
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            match agent.get(&url).set("Authorization", &good).call() {
                Ok(r) => assert_eq!(r.status(), 200),
                Err(e) => eprintln!("a good scrape failed: {e}"),
            }
            let took = started.elapsed().min(Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(300));
            took
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    eprintln!(
        "good scrapes under 48 wrong-password clients: {times:?}; {} wrong passwords answered",
        refused.load(Ordering::Relaxed)
    );
    assert!(refused.load(Ordering::Relaxed) > 0, "the flood was answered");
    assert!(
        median(times.clone()) < Duration::from_secs(1),
        "good scrapes under the flood: {times:?}"
    );
}

#[test]
fn the_basic_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), 10, Some(&users_yaml(4)), &[]);
    let agent = ureq::agent();
    let b64 = basic("prometheus", "right").replacen("Basic ", "", 1);
    for scheme in ["Basic", "basic", "BASIC"] {
        let (status, _, _) = request(
            &agent,
            &exporter.url("/metrics"),
            &[("Authorization", &format!("{scheme} {b64}"))],
        );
        assert_eq!(status, 200, "scheme {scheme}");
    }
    let wrong = request(
        &agent,
        &exporter.url("/metrics"),
        &[("Authorization", &format!("Bearer {b64}"))],
    );
    assert_eq!(wrong.0, 401);
}

/// Sends a scrape request and reads only its status line and headers.
fn start_slow_read(port: u16) -> (TcpStream, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "headers: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content length");
    (s, length)
}

/// 40,000 users render to about 40 MB: far more than loopback buffers hold
/// for a client that does not read.
const LARGE: usize = 40_000;

#[test]
fn a_slow_reader_is_cut_off_after_the_write_timeout() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), LARGE, None, &["--web.write-timeout", "4s"]);
    let started = Instant::now();
    let (mut slow, length) = start_slow_read(exporter.port);
    std::thread::sleep(Duration::from_secs(6));
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 16];
    let ended = loop {
        match slow.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("the slow reader was not cut off: {e} after {:?}", started.elapsed()),
        }
    };
    assert!(
        received < length,
        "{ended} after {received} of {length} bytes: the whole body was sent"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The exporter goes on serving.
    assert_eq!(get(&exporter.url("/-/healthy")).0, 200);
}

#[test]
fn the_scrape_past_max_requests_gets_503_at_once() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), LARGE, None, &[]);
    // 40 scrapes in flight (their readers stalled), the default limit.
    let stalled: Vec<(TcpStream, usize)> = (0..40).map(|_| start_slow_read(exporter.port)).collect();
    let started = Instant::now();
    let (status, body) = get(&exporter.url("/metrics"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("--web.max-requests"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // Probes are not scrapes.
    assert_eq!(get(&exporter.url("/-/healthy")).0, 200);
    drop(stalled);
    let agent = ureq::agent();
    wait_for("the stalled scrapes to be freed", Duration::from_secs(20), || {
        request(&agent, &exporter.url("/metrics"), &[]).0 == 200
    });
}

#[test]
fn content_negotiation_follows_q_values_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), 10, None, &[]);
    let agent = ureq::agent();
    let url = exporter.url("/metrics");
    let scrape = |headers: &[(&str, &str)]| request(&agent, &url, headers);
    let gunzip = |body: &[u8]| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body).read_to_string(&mut text).unwrap();
        text
    };
    let plain = |headers: &[(String, String)]| header(headers, "content-encoding").is_none();

    let (_, h, body) = scrape(&[("Accept-Encoding", "gzip;q=0, *")]);
    assert!(plain(&h) && String::from_utf8(body).unwrap().contains("aws_iam_users"));
    let (_, h, body) = scrape(&[("Accept-Encoding", "*")]);
    assert_eq!(header(&h, "content-encoding"), Some("gzip"));
    assert!(gunzip(&body).contains("aws_iam_users"));
    let (_, h, body) = scrape(&[("Accept-Encoding", "x-gzip")]);
    assert_eq!(header(&h, "content-encoding"), Some("x-gzip"));
    assert!(gunzip(&body).contains("aws_iam_users"));
    let (_, h, _) = scrape(&[("Accept-Encoding", "GZIP;Q=0.5")]);
    assert_eq!(header(&h, "content-encoding"), Some("gzip"));
    let (_, h, _) = scrape(&[("Accept-Encoding", "identity")]);
    assert!(plain(&h));

    let text = |h: &[(String, String)]| header(h, "content-type").unwrap().starts_with("text/plain");
    let (_, h, _) = scrape(&[("Accept", "application/openmetrics-text;q=0")]);
    assert!(text(&h));
    let (_, h, body) = scrape(&[("Accept", "APPLICATION/OPENMETRICS-TEXT; version=1.0.0")]);
    assert!(!text(&h) && String::from_utf8(body).unwrap().ends_with("# EOF\n"));
    let (_, h, _) = scrape(&[("Accept", "text/plain;q=0.9, application/openmetrics-text;q=0.5")]);
    assert!(text(&h));
}

#[test]
fn invalid_durations_and_buckets_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "refresh_interval: 500000000000y\npolicy: {age_buckets: [500ms, 700ms, 900ms]}\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["check-config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refresh_interval: invalid duration \"500000000000y\""),
        "{err}"
    );
    assert!(
        err.contains("policy.age_buckets: bounds must be whole seconds"),
        "{err}"
    );
    for (flag, value) in [
        ("--refresh.interval", "500000000000y"),
        ("--web.read-header-timeout", "2y"),
        ("--aws.call-timeout", "400d"),
    ] {
        let out = std::process::Command::new(BIN)
            .args([flag, value, "--web.listen-address", "127.0.0.1:0"])
            .args([
                "--credential-report.file",
                repo_path("examples/credential-report.csv").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(flag) && err.contains("at most"), "{flag}: {err}");
    }
}

#[test]
fn probes_answer_quickly_while_a_million_row_report_is_parsed() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    synthetic_report(&report, 1_000_000);
    // One async worker, as in a one-CPU container: a parse on it would stall
    // every request.
    let exporter = Exporter::start(
        &["--credential-report.file", report.to_str().unwrap()],
        &[("TOKIO_WORKER_THREADS".into(), "1".into())],
    );
    let agent = ureq::agent();
    let mut times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while request(&agent, &exporter.url("/-/ready"), &[]).0 != 200 {
        assert!(Instant::now() < deadline, "the report was not read within 300 s");
        let started = Instant::now();
        assert_eq!(request(&agent, &exporter.url("/-/healthy"), &[]).0, 200);
        times.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        times.len() >= 10,
        "the parse was too quick to probe: {} probes",
        times.len()
    );
    let worst = *times.iter().max().unwrap();
    assert!(
        median(times.clone()) < Duration::from_millis(100) && worst < Duration::from_secs(1),
        "/-/healthy during the parse: median {:?}, worst {worst:?} of {}",
        median(times.clone()),
        times.len()
    );
}

/// The hard limit on open files of this process, from /proc.
fn hard_open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits (Linux)");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    line.split_whitespace().nth(4).unwrap().parse().unwrap()
}

#[test]
fn a_burst_of_idle_connections_beyond_1024_files_leaves_room_for_scrapes() {
    let _serial = one_at_a_time();
    let hard = hard_open_files_limit();
    assert!(
        hard >= 2048,
        "the hard limit on open files is {hard}: run the tests where it is at least 2048 (ulimit -Hn)"
    );
    let sample = repo_path("examples/credential-report.csv");
    // The soft limit at the common default of 1,024, the hard one as it is.
    let nofile = format!("--nofile=1024:{hard}");
    let prlimit = tool(&["prlimit"], "install util-linux");
    let exporter = Exporter::spawn_wrapped(
        &[&prlimit, &nofile, "--"],
        &[
            "--web.listen-address",
            "127.0.0.1:0",
            "--credential-report.file",
            sample.to_str().unwrap(),
        ],
        &[],
    );
    exporter.wait_ready();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], exporter.port));
    let idle: Vec<TcpStream> = (0..1500)
        .map(|i| {
            TcpStream::connect_timeout(&address, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connection {i} was not accepted: {e}"))
        })
        .collect();
    // Let the exporter accept them all.
    std::thread::sleep(Duration::from_millis(500));
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let started = Instant::now();
    let status = agent.get(&exporter.url("/metrics")).call().map(|r| r.status());
    let took = started.elapsed();
    drop(idle);
    assert!(
        matches!(status, Ok(200)) && took < Duration::from_secs(1),
        "a scrape beside 1,500 idle connections: {status:?} after {took:?}"
    );
}

/// The exporter-toolkit's web/testdata/web_config_users_noTLS.good.yml
/// (Apache-2.0, commit 19a7c2d): bob's hash has cost 18, a check of about
/// 20 s in release and minutes in this debug build.
const TOOLKIT_USERS: &str = "basic_auth_users:
  alice: $2y$12$1DpfPeqF9HzHJt.EWswy1exHluGfbhnn3yXhR7Xes6m3WJqFg0Wby
  bob: $2y$18$4VeFDzXIoPHKnKTU3O3GH.N.vZu06CVqczYZ8WvfzrddFU6tGqjR.
  carol: $2y$10$qRTBuFoULoYNA7AQ/F3ck.trZBPyjV64.oA4ZsSBCIWvXuvQlQTuu
  dave: $2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq
";

#[test]
fn a_cost_18_hash_delays_neither_the_start_nor_other_users() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // serve waits until /-/ready answers 200.
    let exporter = serve(dir.path(), 10, Some(TOOLKIT_USERS), &[]);
    let ready_after = started.elapsed();
    let url = exporter.url("/metrics");
    // Bob's check holds a core for minutes; the exporter is stopped at the
    // end of the test, and the check with it.
    let bob = {
        let url = url.clone();
        // Its result is not looked at: it ends when the exporter does.
        std::thread::spawn(move || {
            let _ = ureq::get(&url).set("Authorization", &basic("bob", "wrong")).call();
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let agent = ureq::agent();
    let (unknown, unknown_took) = timed_status(&agent, &url, &basic("nobody", "wrong"));
    let (carol, carol_took) = timed_status(&agent, &url, &basic("carol", "wrong"));
    assert_eq!((unknown, carol), (401, 401));
    assert!(
        !bob.is_finished(),
        "bob's cost-18 check ended before the others were answered"
    );
    eprintln!(
        "ready after {ready_after:?}; unknown user {unknown_took:?}, carol {carol_took:?}, while bob's check runs"
    );
    // Generous bounds for a shared 2-core machine: a cost-18 hash at load
    // or a global bcrypt turn would each take minutes here.
    assert!(ready_after < Duration::from_secs(30), "ready after {ready_after:?}");
    assert!(
        unknown_took < Duration::from_secs(30) && carol_took < Duration::from_secs(30),
        "unknown user {unknown_took:?}, carol {carol_took:?}"
    );
}

#[test]
fn rate_limit_answers_429_past_the_burst_but_never_to_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = serve(dir.path(), 10, Some("rate_limit: {interval: 1h, burst: 2}\n"), &[]);
    let agent = ureq::agent();
    let statuses: Vec<u16> = (0..3)
        .map(|_| request(&agent, &exporter.url("/metrics"), &[]).0)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    for probe in ["/-/healthy", "/-/ready"] {
        assert_eq!(request(&agent, &exporter.url(probe), &[]).0, 200, "{probe}");
    }
}
