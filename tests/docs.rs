//! The documentation stays true to the exporter:
//!
//! - every metric family that `/metrics` exposes is in a table of
//!   `docs/metrics.md`, with the type and labels it really has, and every
//!   family in those tables is exposed. The families come from the real
//!   binary: on the sample credential report (the file source), and on moto's
//!   IAM API, first healthy (the AWS call counters) and then answering 500
//!   (the error counters, which exist only once something failed);
//! - every relative link in `README.md` and `docs/*.md` points at a file of
//!   the repository and, for a Markdown file, at a heading it has; no link
//!   leaves the repository, and nothing names the old external contract;
//! - every alert's `runbook_url` points at a section of `docs/runbooks.md`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use regex::Regex;

const METRICS_DOC: &str = "docs/metrics.md";
const RULES: &str = "deploy/prometheus/aws-iam-key-exporter.rules.yml";
const RUNBOOKS: &str = "docs/runbooks.md";
const RUNBOOK_BASE: &str = "https://github.com/aws-iam-key-exporter/aws-iam-key-exporter/blob/main/docs/runbooks.md#";

// --- The metric contract -------------------------------------------------

/// One row of a metric table in docs/metrics.md.
#[derive(Debug)]
struct Documented {
    kind: String,
    /// Label names every series has.
    labels: BTreeSet<String>,
    /// Prefixes of label names a series may add (`tag_<key>...` -> `tag_`).
    optional_prefixes: Vec<String>,
    /// Label names a series may lack (`access_key_id`?).
    optional_names: Vec<String>,
}

/// The rows `| `name` | type | labels | value | absent |` of docs/metrics.md.
fn documented_families(text: &str) -> BTreeMap<String, Documented> {
    let mut families = BTreeMap::new();
    // The exporter's own families, and the standard process ones.
    for line in text
        .lines()
        .filter(|l| l.starts_with("| `aws_iam_") || l.starts_with("| `process_"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 5, "{METRICS_DOC}: a metric row has five cells: {line}");
        let name = cells[0].trim_matches('`').to_string();
        let mut labels = BTreeSet::new();
        let mut optional_prefixes = Vec::new();
        let mut optional_names = Vec::new();
        // An empty cell: a family without labels.
        for label in cells[2].split(", ").filter(|l| !l.is_empty()) {
            // `name`? is a label some series do not have.
            let (label, optional) = match label.strip_suffix('?') {
                Some(label) => (label, true),
                None => (label, false),
            };
            let label = label.trim_matches('`').trim_end_matches("...").trim_matches('`');
            match label.split_once("<") {
                Some((prefix, _)) => optional_prefixes.push(prefix.to_string()),
                None if optional => optional_names.push(label.to_string()),
                None => {
                    labels.insert(label.to_string());
                }
            }
        }
        let row = Documented {
            kind: cells[1].to_string(),
            labels,
            optional_prefixes,
            optional_names,
        };
        assert!(
            families.insert(name.clone(), row).is_none(),
            "{METRICS_DOC}: {name} has two rows"
        );
    }
    families
}

/// What one or more scrapes exposed, per family: its type and every set of
/// label names its series had.
#[derive(Debug, Default)]
struct Exposed {
    kinds: BTreeMap<String, String>,
    label_sets: BTreeMap<String, BTreeSet<BTreeSet<String>>>,
}

impl Exposed {
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                self.kinds.insert(name.to_string(), kind.to_string());
            }
        }
        for sample in parse_metrics(text) {
            self.label_sets
                .entry(sample.name)
                .or_default()
                .insert(sample.labels.into_keys().collect());
        }
    }

    /// The type of a family whose samples are named `name` (a counter's
    /// `# TYPE` line may name it without `_total`).
    fn kind(&self, name: &str) -> Option<&str> {
        self.kinds
            .get(name)
            .or_else(|| name.strip_suffix("_total").and_then(|base| self.kinds.get(base)))
            .map(String::as_str)
    }
}

fn scrape_sample_report() -> String {
    let exporter = Exporter::start(
        &[
            "--credential-report.file",
            repo_path("examples/credential-report.csv").to_str().unwrap(),
        ],
        &[],
    );
    exporter.wait_ready();
    exporter.scrape()
}

/// The API source against moto, healthy, then with every IAM call answering
/// 500 until a failed refresh and a failed call have been counted.
fn scrape_api_source() -> Vec<String> {
    let mut moto = Moto::start();
    let account = moto.seeded["account_id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), REALISTIC_CONFIG);
    let exporter = Exporter::start(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--refresh.interval",
            "1s",
            "--aws.max-attempts",
            "2",
            "--aws.call-timeout",
            "5s",
        ],
        &moto.aws_env_via_proxy(),
    );
    exporter.wait_ready();
    let healthy = exporter.scrape();

    moto.command(&format!("fault 500 {account} forever"));
    let mut failing = String::new();
    wait_for("a failed refresh to be counted", Duration::from_secs(60), || {
        failing = exporter.scrape();
        let samples = parse_metrics(&failing);
        !find(
            &samples,
            "aws_iam_exporter_refresh_errors_total",
            &[("account_id", &account)],
        )
        .is_empty()
            && !find(&samples, "aws_iam_exporter_aws_request_errors_total", &[]).is_empty()
    });
    vec![healthy, failing]
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn every_metric_family_is_documented_and_every_documented_family_is_exposed() {
    let documented = documented_families(&std::fs::read_to_string(repo_path(METRICS_DOC)).unwrap());
    assert!(documented.len() >= 20, "{METRICS_DOC} has its tables: {documented:?}");

    let mut exposed = Exposed::default();
    exposed.add(&scrape_sample_report());
    for text in scrape_api_source() {
        exposed.add(&text);
    }

    let exposed_names: BTreeSet<&String> = exposed.label_sets.keys().collect();
    let documented_names: BTreeSet<&String> = documented.keys().collect();
    let undocumented: Vec<_> = exposed_names.difference(&documented_names).collect();
    let missing: Vec<_> = documented_names.difference(&exposed_names).collect();
    assert!(
        undocumented.is_empty(),
        "exposed on /metrics but not in a table of {METRICS_DOC}: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "in {METRICS_DOC} but never exposed on /metrics: {missing:?}"
    );
    // A family that declares a type has samples too (else it would escape
    // the comparison above).
    for name in exposed.kinds.keys() {
        assert!(
            exposed.label_sets.contains_key(name) || exposed.label_sets.contains_key(&format!("{name}_total")),
            "# TYPE {name} without samples"
        );
    }

    for (name, row) in &documented {
        assert_eq!(
            exposed.kind(name),
            Some(row.kind.as_str()),
            "{METRICS_DOC}: the type of {name}"
        );
        for labels in &exposed.label_sets[name] {
            let fixed: BTreeSet<String> = labels
                .iter()
                .filter(|l| !row.optional_prefixes.iter().any(|p| l.starts_with(p.as_str())))
                .filter(|l| !row.optional_names.contains(l))
                .cloned()
                .collect();
            assert_eq!(
                fixed, row.labels,
                "{METRICS_DOC}: the labels of {name} (a series has {labels:?})"
            );
        }
    }
    // The optional labels were seen too: REALISTIC_CONFIG exports tags.
    let user_info = &exposed.label_sets["aws_iam_user_info"];
    assert!(user_info.iter().any(|l| l.contains("tag_owner")), "{user_info:?}");
}

// --- Links ----------------------------------------------------------------

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo_path("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo_path("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 8, "docs/ has its pages: {docs:?}");
    files.extend(docs);
    files
}

/// The text outside fenced code blocks, line by line (code is not Markdown).
fn prose_lines(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            lines.push(line);
        }
    }
    lines
}

/// GitHub's anchors for the headings of a Markdown file.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    anchors
}

/// Problems with the links of one Markdown file.
fn link_problems(file: &Path, root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file.strip_prefix(root).unwrap().display().to_string();
    let code_span = Regex::new(r"`[^`]*`").unwrap();
    let link = Regex::new(r"\]\(([^)\s]*)\)|<(https?://[^>]*)>").unwrap();
    let mut problems = Vec::new();
    for line in prose_lines(&text) {
        let line = code_span.replace_all(line, "``");
        for m in link.captures_iter(&line) {
            let target = m.get(1).or(m.get(2)).unwrap().as_str();
            if target.starts_with("http://") || target.starts_with("https://") {
                let host = target.split('/').nth(2).unwrap_or_default();
                if !(host.starts_with("localhost") || host.starts_with("127.0.0.1")) {
                    problems.push(format!("{name}: {target} leaves the repository"));
                }
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().unwrap().join(path)
            };
            let Ok(resolved) = resolved.canonicalize() else {
                problems.push(format!("{name}: {target}: no such file"));
                continue;
            };
            if !resolved.starts_with(root) {
                problems.push(format!("{name}: {target} leaves the repository"));
                continue;
            }
            if !anchor.is_empty() {
                if resolved.extension().is_none_or(|e| e != "md") {
                    problems.push(format!("{name}: {target}: an anchor into a file that is not Markdown"));
                } else if !anchors(&std::fs::read_to_string(&resolved).unwrap()).contains(anchor) {
                    problems.push(format!("{name}: {target}: no heading with the anchor #{anchor}"));
                }
            }
        }
    }
    for outside in ["SPEC §", "SPEC.md", "../shared/SPEC"] {
        if text.contains(outside) {
            problems.push(format!("{name}: names {outside:?}, the contract is in docs/"));
        }
    }
    problems
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = repo_path("").canonicalize().unwrap();
    let mut problems = Vec::new();
    let mut links = 0;
    for file in markdown_files() {
        links += std::fs::read_to_string(&file).unwrap().matches("](").count();
        problems.extend(link_problems(&file, &root));
    }
    assert!(links > 50, "the README and docs link to each other ({links} links)");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_link_check_catches_a_missing_file_a_missing_anchor_and_a_link_out() {
    let root = repo_path("").canonicalize().unwrap();
    // Inside the repository, so that its links can stay inside it.
    std::fs::create_dir_all(repo_path("target")).unwrap();
    let dir = tempfile::tempdir_in(repo_path("target")).unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "# Page\n\n## A section (with `code`)\n\n[ok](#a-section-with-code) [ok](page.md#page)\n\
         [gone](missing.md) [no anchor](#nowhere) [out](https://example.com/) \
         [`code`](../../Cargo.toml#x)\n\n```\n[not a link](nowhere.md)\n```\nSPEC §2\n",
    )
    .unwrap();
    let problems = link_problems(&page.canonicalize().unwrap(), &root);
    let expected = [
        "missing.md: no such file",
        "#nowhere",
        "https://example.com/ leaves",
        "not Markdown",
        "SPEC §",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(problem.contains(expected), "{problem} should say {expected}");
    }
}

// --- Runbooks -------------------------------------------------------------

#[test]
fn every_alert_links_to_its_runbook() {
    let rules = std::fs::read_to_string(repo_path(RULES)).unwrap();
    let runbooks = anchors(&std::fs::read_to_string(repo_path(RUNBOOKS)).unwrap());
    let alert = Regex::new(r"(?m)^\s*- alert: (\S+)").unwrap();
    let url = Regex::new(r"(?m)^\s*runbook_url: (\S+)").unwrap();
    let alerts: Vec<&str> = alert
        .captures_iter(&rules)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    let urls: Vec<&str> = url.captures_iter(&rules).map(|c| c.get(1).unwrap().as_str()).collect();
    assert!(alerts.len() >= 11, "{alerts:?}");
    assert_eq!(alerts.len(), urls.len(), "every alert has a runbook_url");
    for (alert, url) in alerts.iter().zip(urls) {
        let anchor = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{alert}: runbook_url {url} is not in {RUNBOOKS}"));
        assert_eq!(anchor, alert.to_lowercase(), "{alert}: its own section");
        assert!(
            runbooks.contains(anchor),
            "{alert}: {RUNBOOKS} has no section #{anchor}"
        );
    }
}
