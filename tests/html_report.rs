//! The HTML report in a real browser: headless Chromium renders the document
//! of several moto accounts, served live at /report and written by
//! `report --format html`; its DOM must hold exactly the seeded keys, it must
//! print to paged PDF with repeated headers, and it must fetch nothing.
//! Screenshots are left under target/tmp/html-report/ to look at.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use regex::Regex;
use serde_json::Value;

const MEMBERS: usize = 6;
const HOSTILE_NAME: &str = "<script>alert(\"x\")</script> & 'Co' \"R&D\"";
const INSTALL: &str = "run scripts/install-test-deps.sh (apt-get install -y chromium poppler-utils)";

fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stand-in HTTP proxy that answers every request with 403 and records
/// what was asked for. Chromium is pointed at it, so any fetch of anything
/// beyond loopback shows here (loopback is never proxied).
struct Proxy {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let mut buffer = [0u8; 4096];
                let n = stream.read(&mut buffer).unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..n]);
                seen.lock().unwrap().push(text.lines().next().unwrap_or("").to_string());
                let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Proxy { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests less Chromium's own calls to Google's update, time and
    /// account services, which it makes whatever the page (the flags below
    /// turn most of them off, not all). The hosts a page would load fonts or
    /// scripts from are never left out.
    fn page_requests(&self) -> Vec<String> {
        const BROWSER_SERVICES: [&str; 3] = [".google.com", ".googleapis.com", ".gvt1.com"];
        const PAGE_CDNS: [&str; 3] = ["fonts.googleapis.com", "ajax.googleapis.com", "storage.googleapis.com"];
        self.requests()
            .into_iter()
            .filter(|r| {
                let target = r.split_whitespace().nth(1).unwrap_or("");
                let host = target
                    .trim_start_matches("http://")
                    .split(['/', ':'])
                    .next()
                    .unwrap_or("");
                PAGE_CDNS.contains(&host) || !BROWSER_SERVICES.iter().any(|suffix| host.ends_with(suffix))
            })
            .collect()
    }
}

/// Headless Chromium with a fresh profile, its own background traffic off,
/// and every non-loopback request sent to `proxy`. Returns stdout.
fn chromium(proxy: &Proxy, args: &[&str]) -> String {
    let browser = tool(&["chromium"], INSTALL);
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            // Tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-pings",
            "--disable-client-side-phishing-detection",
            "--disable-domain-reliability",
            "--safebrowsing-disable-auto-update",
            "--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text of an HTML fragment: tags dropped, entities decoded.
fn text_of(html: &str) -> String {
    static TAG: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| Regex::new(r"<[^>]*>").unwrap());
    unescape(&TAG.replace_all(html, " "))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The part of `html` from the element that starts with `start` to the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("{start} not in the DOM"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or_else(|| panic!("{end} after {start}"))]
}

/// A rendered table: its header texts and, per body row, the account id of
/// its account cell and the text of every cell.
struct Table {
    header: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

fn table(dom: &str, section: &str) -> Table {
    let section = between(dom, &format!("<section id=\"{section}\""), "</section>");
    let cell = Regex::new(r"(?s)<t[dh][^>]*>(.*?)</t[dh]>").unwrap();
    let account_id = Regex::new(r#"<span class="account-id">(\d+)</span>"#).unwrap();
    let header = cell
        .captures_iter(between(section, "<thead>", "</thead>"))
        .map(|c| text_of(&c[1]))
        .collect();
    let body = between(section, "<tbody>", "</tbody>");
    let rows = body
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = cell.captures_iter(row).map(|c| c.get(1).unwrap().as_str()).collect();
            let id = account_id
                .captures(cells[0])
                .map(|c| c[1].to_string())
                .unwrap_or_default();
            (id, cells.iter().map(|c| text_of(c)).collect())
        })
        .collect();
    Table { header, rows }
}

fn column(table: &Table, name: &str) -> usize {
    table
        .header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", table.header))
}

/// (account id, user, access key id) of every row.
fn key_rows(table: &Table) -> BTreeSet<(String, String, String)> {
    let (user, key) = (column(table, "User"), column(table, "Access key id"));
    table
        .rows
        .iter()
        .map(|(id, cells)| (id.clone(), cells[user].clone(), cells[key].clone()))
        .collect()
}

/// Checks a rendered report against what moto was seeded with.
fn assert_dom_matches(dom: &str, seeded: &[Value]) {
    let all_keys = |high_risk_only: bool| -> BTreeSet<(String, String, String)> {
        seeded
            .iter()
            .flat_map(|a| {
                a["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(move |k| !high_risk_only || k["high_risk"].as_bool().unwrap())
                    .map(move |k| {
                        (
                            a["account_id"].as_str().unwrap().to_string(),
                            k["user"].as_str().unwrap().to_string(),
                            k["access_key_id"].as_str().unwrap().to_string(),
                        )
                    })
            })
            .collect()
    };

    // The chart: a segment for every non-empty (account, bucket), with its
    // count in the data and written on or beside it.
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for account in seeded {
        for key in account["keys"].as_array().unwrap() {
            *expected
                .entry((
                    account["account_id"].as_str().unwrap().to_string(),
                    key["bucket"].as_str().unwrap().to_string(),
                ))
                .or_default() += 1;
        }
    }
    let chart = between(dom, "<section id=\"age\"", "</section>");
    assert!(chart.contains("<title id=\"age-title\">") && chart.contains("<desc id=\"age-desc\">"));
    let segment = Regex::new(
        r#"(?s)<g class="segment" data-bucket="([^"]+)" data-count="(\d+)"><title>[^<]*</title><rect [^>]*?(?:/>|></rect>)(?:<text [^>]*>(\d+)</text>)?</g>"#,
    )
    .unwrap();
    let mut found = BTreeMap::new();
    let bars: Vec<&str> = chart.split("<g class=\"bar\" data-account=\"").skip(1).collect();
    assert_eq!(bars.len(), seeded.len(), "one bar per account");
    for bar in bars {
        let account = &bar[..bar.find('"').unwrap()];
        let total = between(bar, "<text class=\"total\"", "</text>\n</g>");
        for c in segment.captures_iter(bar) {
            let (bucket, count) = (c[1].to_string(), c[2].parse::<usize>().unwrap());
            match c.get(3) {
                Some(written) => assert_eq!(written.as_str(), &c[2], "{account} {bucket}"),
                None => assert!(
                    total.contains(&format!("data-bucket=\"{bucket}\">, {bucket}: {count}</tspan>")),
                    "{account} {bucket}: count neither on nor beside the segment"
                ),
            }
            assert!(
                found.insert((account.to_string(), bucket.clone()), count).is_none(),
                "{account} {bucket} twice"
            );
        }
    }
    assert_eq!(found, expected, "chart segments");

    let high_risk = table(dom, "high-risk");
    assert_eq!(key_rows(&high_risk), all_keys(true), "high-risk table");
    assert_eq!(high_risk.rows.len(), all_keys(true).len());
    let why = column(&high_risk, "Why");
    assert!(
        high_risk.rows.iter().all(|(_, cells)| !cells[why].is_empty()),
        "every high-risk key says why"
    );

    let details = table(dom, "details");
    assert_eq!(key_rows(&details), all_keys(false), "details table");
    assert_eq!(details.rows.len(), all_keys(false).len());
    for name in ["Last used service", "Last used region", "Tag owner", "Tag team"] {
        column(&details, name);
    }

    let summary = table(dom, "summary");
    let ids: Vec<String> = summary.rows.iter().map(|(id, _)| id.clone()).collect();
    let seeded_ids: BTreeSet<String> = seeded
        .iter()
        .map(|a| a["account_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), seeded.len(), "a summary row per account");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), seeded_ids);
    let (total, root) = (column(&summary, "Total"), column(&summary, "Root key"));
    for (id, cells) in &summary.rows {
        let account = seeded.iter().find(|a| a["account_id"] == id.as_str()).unwrap();
        assert_eq!(
            cells[total],
            account["keys"].as_array().unwrap().len().to_string(),
            "{id}"
        );
        let present = account["root_access_key_present"].as_bool().unwrap();
        assert_eq!(cells[root], if present { "present" } else { "none" }, "{id}");
    }

    // The hostile account name is text, and the document's one script is its own.
    assert_eq!(dom.matches("<script").count(), 1, "no script but the report's own");
    assert!(!dom.contains("alert(\"x\")</script>"));
    assert!(details.rows.iter().any(|(_, cells)| cells[0].starts_with(HOSTILE_NAME)));
}

/// Nothing in the DOM points outside the document.
fn assert_self_contained(dom: &str) {
    let external = Regex::new(r#"(?i)(?:src|href|action|srcset|poster|data)\s*=|url\(|@import"#).unwrap();
    assert_eq!(
        external.find(dom).map(|m| m.as_str()),
        None,
        "a reference to something to load"
    );
    let csp = between(dom, "<meta http-equiv=\"Content-Security-Policy\"", ">");
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

fn pdf_pages(pdf: &Path) -> Vec<String> {
    tool(&["pdftotext"], INSTALL);
    let info = Command::new("pdfinfo").arg(pdf).output().unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (1..=pages)
        .map(|page| {
            let p = page.to_string();
            let out = Command::new("pdftotext")
                .args(["-f", &p, "-l", &p, "-layout"])
                .arg(pdf)
                .arg("-")
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[test]
#[ignore = "tools tier, run by make test: needs moto and chromium"]
fn the_report_renders_in_a_real_browser_with_every_key_and_fetches_nothing() {
    let proxy = Proxy::start();
    let out = artefacts();

    // The detector works: a page that loads an image is seen by the proxy.
    let leaky = out.join("leaky.html");
    std::fs::write(&leaky, "<!DOCTYPE html><img src=\"http://report-test.invalid/x.png\">").unwrap();
    chromium(&proxy, &["--dump-dom", &file_url(&leaky)]);
    assert!(
        proxy.page_requests().iter().any(|r| r.contains("report-test.invalid")),
        "the proxy sees what a page fetches: {:?}",
        proxy.requests()
    );
    proxy.requests.lock().unwrap().clear();

    let moto = Moto::start_with(&["--scenario", "organization", "--members", &MEMBERS.to_string()]);
    let seeded: Vec<Value> = moto.seeded["accounts"].as_array().unwrap()[1..].to_vec();
    let mut yaml = String::from("labels:\n  user_tags: [owner, team]\naccounts:\n  static:\n");
    for (i, account) in seeded.iter().enumerate() {
        let name = if i == 0 {
            HOSTILE_NAME.to_string()
        } else {
            account["name"].as_str().unwrap().to_string()
        };
        yaml.push_str(&format!(
            "    - {{role_arn: \"arn:aws:iam::{}:role/IAMKeyExporter\", name: '{}'}}\n",
            account["account_id"].as_str().unwrap(),
            name.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &yaml);
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()], &moto.aws_env());
    exporter.wait_ready();
    let (status, landing) = get(&exporter.url("/"));
    assert_eq!(status, 200);
    assert!(
        landing.contains("<a href=\"/report\">"),
        "the landing page links the report"
    );
    let (status, live) = get(&exporter.url("/report"));
    assert_eq!(status, 200);

    // The command writes the same document as the server serves.
    let written = out.join("report.html");
    let run = Command::new(BIN)
        .args(["report", "--format", "html", "--output"])
        .arg(&written)
        .args(["--config.file", config.to_str().unwrap()])
        .envs(moto.aws_env())
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.stdout.is_empty(), "--output leaves stdout empty");
    let document = std::fs::read_to_string(&written).unwrap();
    let generated = Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ?( UTC)?").unwrap();
    assert_eq!(
        generated.replace_all(&document, "(time)"),
        generated.replace_all(&live, "(time)"),
        "report --format html and /report differ"
    );

    // Opened as a file, as from an email attachment, and live from the server.
    let dom = chromium(&proxy, &["--dump-dom", &file_url(&written)]);
    std::fs::write(out.join("dom.html"), &dom).unwrap();
    assert_dom_matches(&dom, &seeded);
    assert_self_contained(&dom);
    assert_dom_matches(&chromium(&proxy, &["--dump-dom", &exporter.url("/report")]), &seeded);
    // Without scripts it is just as complete: the document as written,
    // before any script runs, holds everything.
    assert_dom_matches(&document, &seeded);

    // The sort script sorts: a copy that clicks "Age (days)" of the details
    // (its policy dropped so that the click may run).
    let click = document
        .lines()
        .filter(|l| !l.starts_with("<meta http-equiv=\"Content-Security-Policy\""))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "</body>",
            "<script>[...document.querySelectorAll('#details thead th')].find(th => th.textContent === 'Age (days)').click()</script></body>",
        );
    let sorted_copy = out.join("sorted.html");
    std::fs::write(&sorted_copy, click).unwrap();
    let sorted = table(&chromium(&proxy, &["--dump-dom", &file_url(&sorted_copy)]), "details");
    let age = column(&sorted, "Age (days)");
    let ages: Vec<u64> = sorted.rows.iter().map(|(_, c)| c[age].parse().unwrap()).collect();
    assert!(ages.windows(2).all(|w| w[0] <= w[1]), "sorted by age: {ages:?}");
    assert!(ages.first() < ages.last());

    // Desktop and print layouts, to look at.
    chromium(
        &proxy,
        &[
            "--window-size=1440,2400",
            &format!("--screenshot={}", out.join("desktop.png").display()),
            &file_url(&written),
        ],
    );
    assert!(std::fs::metadata(out.join("desktop.png")).unwrap().len() > 10_000);
    let pdf = out.join("print.pdf");
    chromium(
        &proxy,
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
            &file_url(&written),
        ],
    );
    let pages = pdf_pages(&pdf);
    // Header and chart, then each table on a page of its own; the details
    // run over more than one page, each with the header row again.
    assert!(pages.len() >= 5, "{} pages", pages.len());
    assert!(pages[0].contains("Key age by account") && !pages[0].contains("High-risk access keys"));
    assert!(pages[1].trim_start().starts_with("High-risk keys"), "{}", pages[1]);
    // A page without the header row would be a continuation without it.
    for (i, page) in pages.iter().enumerate().skip(1) {
        assert!(
            page.contains("Unused") || page.contains("Total"),
            "page {} has no header row",
            i + 1
        );
    }
    assert!(pages.last().unwrap().contains("Keys by account"));
    let status = Command::new(tool(&["pdftoppm"], INSTALL))
        .args(["-png", "-r", "60", "-f", "1", "-l", "3"])
        .arg(&pdf)
        .arg(out.join("print"))
        .status()
        .unwrap();
    assert!(status.success());

    assert_eq!(
        proxy.page_requests(),
        Vec::<String>::new(),
        "the report fetched something"
    );
}

/// The report of a run that read nothing, and of one where one of two
/// accounts failed, as Chromium renders them: "not read" is never "no
/// risk". The text and screenshots are left in target/tmp/html-report/
/// (`nothing-read.*`, `one-failed.*`).
#[test]
#[ignore = "tools tier, run by make test: needs moto and chromium"]
fn the_report_never_shows_not_read_as_no_risk_in_a_real_browser() {
    let proxy = Proxy::start();
    let out = artefacts();
    let rendered = |name: &str, html: &str| -> String {
        let file = out.join(format!("{name}.html"));
        std::fs::write(&file, html).unwrap();
        let dom = chromium(&proxy, &["--dump-dom", &file_url(&file)]);
        let body = text_of(between(&dom, "<body>", "</body>"));
        std::fs::write(out.join(format!("{name}.txt")), &body).unwrap();
        let shot = out.join(format!("{name}.png"));
        chromium(
            &proxy,
            &[
                "--window-size=1440,1600",
                &format!("--screenshot={}", shot.display()),
                &file_url(&file),
            ],
        );
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
        body
    };

    // Nothing read: AWS unreachable from the start.
    let mut moto = Moto::start_with(&["--scenario", "organization", "--members", "2"]);
    moto.command("stop");
    let exporter = Exporter::start(&["--aws.max-attempts", "1"], &moto.aws_env());
    wait_for("the first failure", std::time::Duration::from_secs(60), || {
        get(&exporter.url("/-/ready")).1.contains("failed")
    });
    let (status, html) = get(&exporter.url("/report"));
    assert_eq!(status, 503, "not ready, as /-/ready");
    let text = rendered("nothing-read", &html);
    let banner = text
        .find("No account could be read. This report holds no data: it does not say that any key is safe.")
        .expect("said in plain words");
    assert!(banner < text.find("High-risk keys").unwrap(), "at the top: {text}");
    assert!(!text.contains("No access key is high risk"), "{text}");
    assert!(!text.contains("0 high risk"), "{text}");
    assert!(!html.contains("<svg"), "no empty chart");
    drop(exporter);
    moto.command("start");

    // One of two accounts failed: AssumeRole into the second is denied.
    let seeded: Vec<Value> = moto.seeded["accounts"].as_array().unwrap()[1..].to_vec();
    let ids: Vec<&str> = seeded.iter().map(|a| a["account_id"].as_str().unwrap()).collect();
    let mut yaml = String::from("accounts:\n  static:\n");
    for id in &ids {
        yaml.push_str(&format!(
            "    - {{role_arn: \"arn:aws:iam::{id}:role/IAMKeyExporter\"}}\n"
        ));
    }
    moto.command(&format!("fault deny-assume-role {}", ids[1]));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &yaml);
    let exporter = Exporter::start(
        &["--config.file", config.to_str().unwrap(), "--aws.max-attempts", "1"],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready();
    let (status, html) = get(&exporter.url("/report"));
    assert_eq!(status, 200);
    let text = rendered("one-failed", &html);
    assert!(
        text.contains(&format!(
            "1 account could not be read, so their keys are in no table below: account {} (access denied: ",
            ids[1]
        )),
        "named with its error in words: {text}"
    );
    let dom = chromium(&proxy, &["--dump-dom", &file_url(&out.join("one-failed.html"))]);
    let summary = table(&dom, "summary");
    let (_, row) = summary
        .rows
        .iter()
        .find(|(id, _)| id == ids[1])
        .expect("a summary row for the account not read");
    assert!(row[1..row.len() - 1].iter().all(|c| c == "not read"), "{row:?}");
    assert_eq!(row.last().map(String::as_str), Some("no"), "{row:?}");
    assert!(html.contains("<svg"), "the account read is drawn");
    assert!(!text.contains("No access key is high risk."), "{text}");
}
