//! `--web.config.file`: TLS, mutual TLS, basic authentication, response
//! headers and reloading, with a real client (curl) and certificates made by
//! the test with openssl.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// openssl or curl, failing the test with how to install it when missing.
fn program(name: &str) -> Command {
    Command::new(tool(
        &[name],
        &format!("install it with `apt-get install {name}` (or run .ci/run)"),
    ))
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = program("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate `NAME.pem` with its key `NAME.key`.
fn self_signed(dir: &Path, name: &str, common_name: &str) {
    let (key, cert, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={common_name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subject,
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
    );
}

/// A CA, a server certificate for localhost / 127.0.0.1 and a client
/// certificate, all signed by the CA.
fn certificates(dir: &Path) {
    self_signed(dir, "ca", "test CA");
    signed_by_ca(dir, "server", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    // Extensions also make the certificate X.509 v3, which rustls requires.
    signed_by_ca(dir, "client", "extendedKeyUsage=clientAuth\n");
}

/// A certificate `NAME.pem` with its key `NAME.key`, signed by the CA of
/// [`certificates`], with `extensions` (an openssl extension file).
fn signed_by_ca(dir: &Path, name: &str, extensions: &str) {
    let (ext, key, csr, pem) = (
        format!("{name}.ext"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    std::fs::write(dir.join(&ext), extensions).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
}

/// curl with the test CA, printing what `output` asks for (its own flags).
fn curl_output(dir: &Path, url: &str, output: &[&str], extra: &[&str]) -> String {
    let out = program("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", "--cacert", "ca.pem"])
        .args(output)
        .args(extra)
        .arg(url)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl's HTTP status, or 0 when the connection or handshake failed.
fn curl(dir: &Path, url: &str, extra: &[&str]) -> u16 {
    curl_output(dir, url, &["-w", "%{http_code}"], extra)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn curl_headers(dir: &Path, url: &str, extra: &[&str]) -> String {
    curl_output(dir, url, &["-D", "-"], extra).to_lowercase()
}

fn start(dir: &Path, web_yaml: &str) -> (Exporter, PathBuf) {
    let web = dir.join("web.yml");
    std::fs::write(&web, web_yaml).unwrap();
    let sample = repo_path("examples/credential-report.csv");
    let exporter = Exporter::start(
        &[
            "--credential-report.file",
            sample.to_str().unwrap(),
            "--web.config.file",
            web.to_str().unwrap(),
        ],
        &[],
    );
    (exporter, web)
}

fn bcrypt_hash(password: &str) -> String {
    // Cost 4 keeps the test fast; the exporter accepts any cost.
    bcrypt::hash(password, 4).unwrap()
}

#[test]
#[ignore = "tools tier, run by make test: needs openssl and curl"]
fn tls_with_basic_auth_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let hash = bcrypt_hash("right");
    let (exporter, _) = start(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n\
basic_auth_users:\n  prometheus: '{hash}'\n\
http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
    );
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", exporter.port);
    let d = dir.path();
    assert_eq!(curl(d, &url("/metrics"), &["-u", "prometheus:right"]), 200);
    assert_eq!(
        curl(d, &url("/metrics"), &["-u", "prometheus:wrong"]),
        401,
        "a wrong password gets 401"
    );
    assert_eq!(curl(d, &url("/metrics"), &[]), 401);
    assert_eq!(curl(d, &url("/"), &["-u", "nobody:right"]), 401);
    // The landing page names accounts and their errors: the same guard.
    assert_eq!(curl(d, &url("/"), &[]), 401);
    assert_eq!(curl(d, &url("/"), &["-u", "prometheus:right"]), 200);
    // The report tells as much as the metrics: the same guard.
    assert_eq!(curl(d, &url("/report"), &[]), 401);
    assert_eq!(curl(d, &url("/report"), &["-u", "prometheus:right"]), 200);
    // Probes need no credentials; they are HTTPS like everything else.
    assert_eq!(curl(d, &url("/-/healthy"), &[]), 200);
    assert_eq!(curl(d, &url("/-/ready"), &[]), 200);
    assert_eq!(
        curl(d, &format!("http://127.0.0.1:{}/metrics", exporter.port), &[]),
        0,
        "no plain HTTP on a TLS listener"
    );
    let headers = curl_headers(d, &url("/metrics"), &["-u", "prometheus:right"]);
    assert!(headers.contains("x-frame-options: deny"), "{headers}");
    let challenge = curl_headers(d, &url("/metrics"), &[]);
    assert!(challenge.contains("www-authenticate: basic realm="), "{challenge}");
}

#[test]
#[ignore = "tools tier, run by make test: needs openssl and curl"]
fn mutual_tls_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let (exporter, _) = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    );
    let url = format!("https://localhost:{}/metrics", exporter.port);
    assert_eq!(curl(dir.path(), &url, &[]), 0, "no client certificate: refused");
    assert_eq!(
        curl(dir.path(), &url, &["--cert", "client.pem", "--key", "client.key"]),
        200
    );
    // A certificate from another CA is refused too.
    self_signed(dir.path(), "stranger", "stranger");
    assert_eq!(
        curl(dir.path(), &url, &["--cert", "stranger.pem", "--key", "stranger.key"]),
        0
    );
}

#[test]
#[ignore = "tools tier, run by make test: needs openssl and curl"]
fn the_file_is_read_again_when_it_changes_and_a_bad_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let (exporter, web) = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    );
    let url = format!("https://127.0.0.1:{}/metrics", exporter.port);
    assert_eq!(curl(dir.path(), &url, &[]), 200);
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  p: '{}'\n",
            bcrypt_hash("pw")
        ),
    )
    .unwrap();
    wait_for("basic auth to be in force", Duration::from_secs(20), || {
        curl(dir.path(), &url, &[]) == 401
    });
    assert_eq!(curl(dir.path(), &url, &["-u", "p:pw"]), 200);
    // An invalid change keeps the configuration in force.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users: {p: not-a-hash}\n",
    )
    .unwrap();
    wait_for("the invalid change to be logged", Duration::from_secs(20), || {
        exporter
            .log_lines()
            .iter()
            .any(|l| l.contains("web configuration changed but is invalid"))
    });
    assert_eq!(curl(dir.path(), &url, &["-u", "p:pw"]), 200);
    assert_eq!(curl(dir.path(), &url, &[]), 401);
}

#[test]
fn an_invalid_web_config_fails_the_start_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let run = |yaml: &str| {
        std::fs::write(&web, yaml).unwrap();
        let out = Command::new(BIN)
            .args([
                "--web.config.file",
                web.to_str().unwrap(),
                "--web.listen-address",
                "127.0.0.1:0",
            ])
            .args([
                "--credential-report.file",
                repo_path("examples/credential-report.csv").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  colour: blue\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown field `colour`"), "{err}");
    let (code, err) = run("basic_auth_users: {prometheus: hunter2}\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("basic_auth_users.prometheus: not a bcrypt hash"), "{err}");
    let (code, err) = run("tls_server_config: {cert_file: missing.pem, key_file: missing.key}\n");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("tls_server_config.cert_file: cannot read a certificate"),
        "{err}"
    );
}

/// The web config that deploy/kubernetes/components/web-tls mounts, with its
/// certificate paths (the Secret's mount) pointed at this test's files.
#[test]
#[ignore = "tools tier, run by make test: needs openssl and curl"]
fn the_kubernetes_component_web_config_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let d = dir.path();
    std::fs::copy(d.join("server.pem"), d.join("tls.crt")).unwrap();
    std::fs::copy(d.join("server.key"), d.join("tls.key")).unwrap();
    let bundled = std::fs::read_to_string(repo_path("deploy/kubernetes/components/web-tls/web-config.yml")).unwrap();
    let mount = "/etc/aws-iam-key-exporter-tls/";
    assert!(
        bundled.contains(mount),
        "the component mounts the certificate at {mount}"
    );
    let (exporter, _) = start(d, &bundled.replace(mount, &format!("{}/", d.display())));
    let url = format!("https://localhost:{}/metrics", exporter.port);
    assert_eq!(curl(d, &url, &[]), 200);
    let headers = curl_headers(d, &url, &[]);
    assert!(
        headers.contains("strict-transport-security: max-age=31536000"),
        "{headers}"
    );
    assert!(headers.contains("x-content-type-options: nosniff"), "{headers}");
}

/// A client certificate `NAME.pem` / `NAME.key` signed by the test CA of
/// [`certificates`], with `san` as its subjectAltName.
fn client_with_sans(dir: &Path, name: &str, san: &str) {
    signed_by_ca(
        dir,
        name,
        &format!("extendedKeyUsage=clientAuth\nsubjectAltName={san}\n"),
    );
}

#[test]
#[ignore = "tools tier, run by make test: needs openssl and curl"]
fn client_allowed_sans_matches_email_and_uri_names_of_verified_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    client_with_sans(d, "spiffe", "URI:spiffe://example.org/prometheus");
    client_with_sans(d, "mailed", "email:ops@example.com,DNS:scraper.example.com");
    let web = |sans: &str| {
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: {sans}\n"
        )
    };
    let as_client = |name: &str| {
        [
            "--cert".into(),
            format!("{name}.pem"),
            "--key".into(),
            format!("{name}.key"),
        ]
    };
    let get = |exporter: &Exporter, name: &str| {
        let url = format!("https://localhost:{}/metrics", exporter.port);
        let args = as_client(name);
        curl(d, &url, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (uri, _) = start(d, &web("['spiffe://example.org/prometheus']"));
    assert_eq!(get(&uri, "spiffe"), 200);
    assert_eq!(get(&uri, "mailed"), 0, "a certificate without the URI is refused");
    // client.pem is from the same CA but names nothing.
    assert_eq!(get(&uri, "client"), 0);
    drop(uri);
    let (email, _) = start(d, &web("[someone@example.com, ops@example.com]"));
    assert_eq!(get(&email, "mailed"), 200);
    assert_eq!(get(&email, "spiffe"), 0);
}

#[test]
#[ignore = "tools tier, run by make test: needs openssl and curl"]
fn http2_false_serves_http1_only_with_and_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    // What curl's HTTP status and protocol version were ("0 0": it failed).
    let fetch = |url: &str, extra: &[&str]| {
        curl_output(d, url, &["-w", "%{http_code} %{http_version}"], extra)
            .trim()
            .to_string()
    };
    let (plain, _) = start(d, "http_server_config:\n  http2: true\n");
    let url = format!("http://127.0.0.1:{}/metrics", plain.port);
    assert_eq!(fetch(&url, &["--http2-prior-knowledge"]), "200 2", "HTTP/2 by default");
    drop(plain);
    let (plain, _) = start(d, "http_server_config:\n  http2: false\n");
    let url = format!("http://127.0.0.1:{}/metrics", plain.port);
    assert_eq!(fetch(&url, &[]), "200 1.1");
    let prior = fetch(&url, &["--http2-prior-knowledge"]);
    assert!(
        !prior.starts_with("200"),
        "HTTP/2 with prior knowledge was served: {prior}"
    );
    drop(plain);
    let (tls, _) = start(
        d,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nhttp_server_config:\n  http2: false\n",
    );
    let url = format!("https://localhost:{}/metrics", tls.port);
    assert_eq!(fetch(&url, &["--http2"]), "200 1.1", "h2 was offered by ALPN");
}
