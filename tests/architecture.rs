//! The module architecture of issue 13, checked on every `cargo test`: which
//! top-level module may import which (`crate::` paths in `use` items and in
//! code), no import cycle, files that stay small, and no contract that lives
//! outside the repository. Reads `src/**/*.rs`; `#[cfg(test)]` items are
//! ignored (tests may reach anywhere). std only, so it costs no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The composition root: may import every module, and no module imports it.
const ROOT: &[&str] = &["lib", "main"];

/// Who may import whom. Lower layers first; the table itself must stay a DAG
/// (checked below), so it cannot be "fixed" by adding a back edge.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: import nothing of the crate.
    ("ids", &[]),
    ("labels", &[]),
    ("key_series", &[]),
    ("listen", &[]),
    ("file_watch", &[]),
    ("logging", &[]),
    ("process", &[]),
    ("aws", &[]),
    ("negotiate", &[]),
    ("connection", &[]),
    // Domain.
    ("accounts", &["ids"]),
    ("sources", &["aws", "file_watch", "ids"]),
    ("policy", &["sources"]),
    ("snapshot", &["sources"]),
    ("assess", &["policy", "snapshot", "sources"]),
    // Outputs: render the assessed model, compute nothing.
    (
        "metrics",
        &["assess", "key_series", "labels", "negotiate", "snapshot", "sources"],
    ),
    ("report", &["assess", "labels", "sources"]),
    // The landing page: the assessed model and each account's refresh state,
    // with the report's HTML helpers and the build info of the metrics.
    ("status_page", &["assess", "metrics", "report", "snapshot"]),
    // Runtime.
    (
        "refresh",
        &["accounts", "aws", "ids", "labels", "snapshot", "sources", "file_watch"],
    ),
    ("web_config", &["file_watch"]),
    ("error", &["sources"]),
    (
        "server",
        &[
            "assess",
            "connection",
            "error",
            "listen",
            "metrics",
            "negotiate",
            "report",
            "snapshot",
            "status_page",
            "web_config",
        ],
    ),
    // Start-up parsing: the command line, then the file merged with it.
    ("cli", &["logging", "report", "sources"]),
    (
        "config",
        &[
            "accounts",
            "aws",
            "cli",
            "connection",
            "error",
            "ids",
            "key_series",
            "labels",
            "listen",
            "logging",
            "policy",
            "report",
            "sources",
        ],
    ),
];

/// Edges of today's code that the table forbids, removed step by step. The
/// test fails on a new forbidden edge, and on an entry here that is gone (so
/// this list only shrinks). Empty when issue 13 is done.
const KNOWN: &[(&str, &str)] = &[];

/// Non-test lines a file may have, unless its first lines say why it needs more.
const MAX_LINES: usize = 400;
const SIZE_REASON: &str = "Longer than 400 lines:";
/// Files over the limit today, split step by step; shrinks like `KNOWN`.
const KNOWN_LARGE: &[&str] = &[];

struct Source {
    /// Relative to the crate, with `/` separators: `src/sources/api.rs`.
    path: String,
    /// Module path: `["sources", "api"]`; `[]` for lib.rs and main.rs.
    module: Vec<String>,
    /// The file without comments, string and char literals, and `#[cfg(test)]` items.
    code: String,
    raw: String,
}

impl Source {
    fn top(&self) -> &str {
        match self.module.first() {
            Some(m) => m,
            None => self.path.trim_start_matches("src/").trim_end_matches(".rs"),
        }
    }
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    collect(&crate_dir().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs")) // `#[cfg(test)] mod tests;`
        .map(|file| {
            let raw = std::fs::read_to_string(&file).unwrap();
            let path = file
                .strip_prefix(crate_dir())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let mut module: Vec<String> = path
                .trim_start_matches("src/")
                .trim_end_matches(".rs")
                .split('/')
                .map(String::from)
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module.len() == 1 && ROOT.contains(&module[0].as_str()) {
                module.clear();
            }
            let code = without_test_items(&blank_comments_and_literals(&raw));
            Source {
                path,
                module,
                code,
                raw,
            }
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Comments, strings and char literals become spaces (newlines are kept, so
/// line numbers stay right): a `crate::` or a brace inside them is not code.
fn blank_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            loop {
                if i + 1 < c.len() && c[i] == '/' && c[i + 1] == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if i + 1 < c.len() && c[i] == '*' && c[i + 1] == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                } else {
                    break;
                }
            }
        } else if (c[i] == 'r' || (c[i] == 'b' && next == Some('r')))
            && !ident_char(i.checked_sub(1).map(|p| c[p]))
            && {
                let mut j = i + if c[i] == 'b' { 2 } else { 1 };
                while c.get(j) == Some(&'#') {
                    j += 1;
                }
                c.get(j) == Some(&'"')
            }
        {
            // Raw string: r"..", r#".."#, br#".."#.
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            out.push_str(&" ".repeat(j + 1 - i));
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|h| c.get(i + h) == Some(&'#')) {
                    out.push_str(&" ".repeat(hashes + 1));
                    i += hashes + 1;
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' && (next == Some('\\') || c.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\'', '\u{1F600}'); a lifetime has no closing quote.
            out.push(' ');
            i += 1;
            if c[i] == '\\' {
                out.push(' ');
                i += 1;
            }
            while i < c.len() && c[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Drops every item marked `#[cfg(test)]`: up to its `;`, or its `{...}`.
fn without_test_items(code: &str) -> String {
    let mut out = code.to_string();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let bytes = out.as_bytes();
        let mut i = at + "#[cfg(test)]".len();
        let mut depth = 0usize;
        let end = loop {
            match bytes.get(i) {
                None => break out.len(),
                Some(b'{') => depth += 1,
                Some(b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        break i + 1;
                    }
                }
                Some(b';') if depth == 0 => break i + 1,
                _ => {}
            }
            i += 1;
        };
        let blanked: String = out[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = end;
    }
    out
}

/// Every top-level module a file's code names, with the line: `crate::x`,
/// `crate::{x, y::z}`, and `super::` paths that climb to the crate root.
fn imports(source: &Source, modules: &BTreeSet<String>) -> Vec<(String, usize)> {
    let code = &source.code;
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut push = |name: &str, at: usize| {
        let target = if modules.contains(name) {
            name.to_string()
        } else {
            "lib".to_string()
        };
        found.push((target, line_of(at)));
    };
    let bytes = code.as_bytes();
    let word_at = |i: usize, word: &str| {
        code[i..].starts_with(word)
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'$'))
    };
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let ident = |i: usize| {
        let end = code[i..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(code.len(), |e| e + i);
        &code[i..end]
    };
    for i in 0..bytes.len() {
        let after = if word_at(i, "crate") {
            let j = skip_ws(i + "crate".len());
            if !code[j..].starts_with("::") {
                continue; // pub(crate)
            }
            j + 2
        } else if word_at(i, "super") && (i < 2 || &code[i - 2..i] != "::") {
            // `super::super::x`: climbs one module per `super`.
            let (mut j, mut climbs) = (i, 0);
            while word_at(j, "super") && code[skip_ws(j + 5)..].starts_with("::") {
                j = skip_ws(skip_ws(j + 5) + 2);
                climbs += 1;
            }
            if climbs == 0 || climbs < source.module.len() {
                continue; // stays inside the module
            }
            j
        } else {
            continue;
        };
        let j = skip_ws(after);
        if bytes.get(j) == Some(&b'{') {
            // `crate::{a, b::c, d::{e, f}}`: the first name of each part.
            let (mut k, mut depth, mut expect) = (j + 1, 1, true);
            while k < bytes.len() && depth > 0 {
                match bytes[k] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b',' if depth == 1 => expect = true,
                    b if expect && depth == 1 && (b.is_ascii_alphabetic() || b == b'_') => {
                        let name = ident(k);
                        if name != "self" {
                            push(name, k);
                        }
                        expect = false;
                        k += name.len();
                        continue;
                    }
                    _ => {}
                }
                k += 1;
            }
        } else {
            let name = ident(j);
            if !name.is_empty() {
                push(name, j);
            }
        }
    }
    found
}

/// (from, to) -> the places (`src/x.rs:12`) that make the edge.
fn module_graph() -> BTreeMap<(String, String), Vec<String>> {
    let sources = sources();
    let modules: BTreeSet<String> = sources
        .iter()
        .map(|s| s.top().to_string())
        .filter(|m| !ROOT.contains(&m.as_str()))
        .collect();
    let mut graph: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for source in &sources {
        let from = source.top();
        for (to, line) in imports(source, &modules) {
            if to != from {
                graph
                    .entry((from.to_string(), to))
                    .or_default()
                    .push(format!("{}:{line}", source.path));
            }
        }
    }
    graph
}

fn allowed(from: &str, to: &str) -> bool {
    ALLOWED.iter().any(|(m, targets)| *m == from && targets.contains(&to))
}

#[test]
fn every_module_is_placed_in_the_architecture() {
    let unplaced: Vec<String> = sources()
        .iter()
        .map(|s| s.top().to_string())
        .filter(|m| !ROOT.contains(&m.as_str()) && !ALLOWED.iter().any(|(a, _)| a == m))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        unplaced.is_empty(),
        "add these modules to ALLOWED in tests/architecture.rs, with what they may import: {unplaced:?}"
    );
}

#[test]
fn modules_import_only_what_the_architecture_allows() {
    let graph = module_graph();
    let mut problems = Vec::new();
    for ((from, to), places) in &graph {
        if ROOT.contains(&from.as_str()) {
            continue;
        }
        if to == "lib" {
            problems.push(format!(
                "{from} names an item of lib.rs (the root) at {}",
                places.join(", ")
            ));
        } else if !allowed(from, to) && !KNOWN.contains(&(from.as_str(), to.as_str())) {
            problems.push(format!("{from} -> {to} is not allowed, at {}", places.join(", ")));
        }
    }
    for (from, to) in KNOWN {
        if !graph.contains_key(&(from.to_string(), to.to_string())) {
            problems.push(format!(
                "{from} -> {to} is gone: remove it from KNOWN in tests/architecture.rs"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "module architecture (issue 13):\n  {}",
        problems.join("\n  ")
    );
}

/// A cycle, if any, as `a -> b -> a`.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(cycle) = visit(to, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for (from, _) in edges {
        if let Some(cycle) = visit(from, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_import_cycle_between_modules() {
    let graph = module_graph();
    let edges: BTreeSet<(String, String)> = graph
        .keys()
        .filter(|(from, _)| !ROOT.contains(&from.as_str()))
        .cloned()
        .collect();
    if let Some(cycle) = find_cycle(&edges) {
        let places: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                format!(
                    "{} -> {} at {}",
                    w[0],
                    w[1],
                    graph[&(w[0].clone(), w[1].clone())].join(", ")
                )
            })
            .collect();
        panic!("import cycle {}:\n  {}", cycle.join(" -> "), places.join("\n  "));
    }
}

#[test]
fn the_table_is_acyclic_and_keeps_the_rules_of_issue_13() {
    let edges: BTreeSet<(String, String)> = ALLOWED
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from.to_string(), to.to_string())))
        .collect();
    assert_eq!(find_cycle(&edges), None, "ALLOWED has a cycle");
    let may = |from: &str| ALLOWED.iter().find(|(m, _)| *m == from).map_or(&[][..], |(_, t)| *t);
    assert!(
        may("aws").is_empty(),
        "aws imports nothing of the domain, the metrics or the sources"
    );
    for forbidden in ["config", "metrics", "refresh", "cli"] {
        assert!(
            !may("sources").contains(&forbidden),
            "sources must not import {forbidden}"
        );
    }
    for (module, targets) in ALLOWED {
        assert!(
            !targets.contains(&"cli") || *module == "config",
            "{module}: only the root and config (which merges the flags) read cli"
        );
    }
    for output in ["metrics", "report", "status_page"] {
        assert!(
            !may(output).contains(&"policy"),
            "{output} renders the assessed model; it does not assess"
        );
    }
}

#[test]
fn files_stay_small_or_say_why() {
    let mut problems = Vec::new();
    for source in sources() {
        let lines = source.code.lines().filter(|l| !l.trim().is_empty()).count();
        let reason = source.raw.lines().take(10).any(|l| l.contains(SIZE_REASON));
        let known = KNOWN_LARGE.contains(&source.path.as_str());
        if lines > MAX_LINES && !reason && !known {
            problems.push(format!(
                "{}: {lines} lines of code (max {MAX_LINES}, or say \"{SIZE_REASON} ...\" at the top)",
                source.path
            ));
        }
        if known && lines <= MAX_LINES {
            problems.push(format!("{}: now small, remove it from KNOWN_LARGE", source.path));
        }
    }
    let paths: BTreeSet<String> = sources().into_iter().map(|s| s.path).collect();
    for gone in KNOWN_LARGE.iter().filter(|p| !paths.contains(**p)) {
        problems.push(format!("{gone}: no such file, remove it from KNOWN_LARGE"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_contract_is_not_referenced_outside_the_repository() {
    for source in sources() {
        for (n, line) in source.raw.lines().enumerate() {
            assert!(
                !line.contains("../shared") && !line.contains("SPEC §"),
                "{}:{}: point to docs/ instead: {line}",
                source.path,
                n + 1
            );
        }
    }
}

/// The lint's own parser, on the shapes it must read.
#[test]
fn the_import_reader_reads_every_form() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let source = |path: &str, module: &[&str], text: &str| Source {
        path: path.into(),
        module: module.iter().map(|m| m.to_string()).collect(),
        code: without_test_items(&blank_comments_and_literals(text)),
        raw: text.into(),
    };
    let text = r#####"
use crate::a::X;
use crate::{b, c::{Y, Z}};
pub(crate) fn f() -> crate::d::T { let s = "crate::c"; let r = r#"crate::c {"#; let q = '{'; g::<'static>() }
// crate::c in a comment
/* crate::c /* nested */ */
#[cfg(test)]
mod tests { use crate::c::W; const S: &str = "}"; }
"#####;
    let names: Vec<String> = imports(&source("src/x.rs", &["x"], text), &modules)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    let nested = source(
        "src/x/y.rs",
        &["x", "y"],
        "use super::z; use super::super::a::Q; use crate::Error;",
    );
    let names: Vec<String> = imports(&nested, &modules).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["a", "lib"]);
}
