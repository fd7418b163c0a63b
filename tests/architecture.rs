//! The architecture, checked on every `cargo test`. The folders under `src/`
//! are the layers; the table below says which layer may import which, and
//! within a layer its components (`src/<layer>/<component>`) may import each
//! other as long as no cycle forms. Also: files that stay small, and no
//! contract that lives outside the repository. Reads `src/**/*.rs`;
//! `#[cfg(test)]` items are ignored (tests may reach anywhere). std only, so
//! it costs no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The composition root (and the root's tests): may import everything, and
/// nothing imports it.
const ROOT: &[&str] = &["lib", "main", "tests"];

/// The crate's one `Error` and `Result`: any layer may name it, it names no layer.
const SHARED: &[&str] = &["error"];

/// Each folder of `src/` and the layers it may import, lowest first. The
/// table itself must stay a DAG (checked below), so it cannot be "fixed" by
/// adding a back edge.
const LAYERS: &[(&str, &[&str])] = &[
    // The key model, the policy, the snapshot: no AWS, HTTP or files.
    ("domain", &[]),
    // AWS access, the sources and the refresh loop, building domain values.
    ("collect", &["domain"]),
    // Renderings of the assessed snapshot: metrics, report, landing page.
    ("output", &["domain"]),
    // Listeners, TLS, auth, routes; the web config file is watched with
    // collect's file watcher.
    ("http", &["domain", "collect", "output"]),
    // Flags and file, merged into the settings that every layer receives.
    ("config", &["domain", "collect", "output", "http"]),
];

/// Non-test lines a file may have, unless its first lines say why it needs more.
const MAX_LINES: usize = 400;
const SIZE_REASON: &str = "Longer than 400 lines:";
/// Files over the limit today, split step by step; only shrinks.
const KNOWN_LARGE: &[&str] = &[];

struct Source {
    /// Relative to the crate, with `/` separators: `src/collect/sources/api.rs`.
    path: String,
    /// Module path: `["collect", "sources", "api"]`; `["lib"]` for lib.rs.
    module: Vec<String>,
    /// The file without comments, string and char literals, and `#[cfg(test)]` items.
    code: String,
    raw: String,
}

impl Source {
    /// `layer::component`, or the layer alone for its `mod.rs`, or a root
    /// or shared file's name.
    fn component(&self) -> String {
        self.module.iter().take(2).cloned().collect::<Vec<_>>().join("::")
    }

    fn layer(&self) -> &str {
        &self.module[0]
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
        // `#[cfg(test)] mod tests;` of a module; src/tests.rs is the root's.
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs") || f.parent() == Some(&crate_dir().join("src")))
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

/// Every component a file's code names, with the line: `crate::x::y`,
/// `crate::x::{y, z::w}`, `crate::{x::y, z}` and `super::` paths that climb
/// out of the file's module. A path into a layer that names no component
/// (`crate::domain::Item`) names the layer's `mod.rs`; `crate::Error` names
/// the root.
fn imports(source: &Source, components: &BTreeSet<String>) -> Vec<(String, usize)> {
    let code = &source.code;
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
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
    // After `at`, up to `want` more names of a path: `a::b`, or each first
    // name of a `{a, b::c}` group (each group part its own path).
    fn parts<'c>(
        code: &'c str,
        at: usize,
        want: usize,
        ident: &dyn Fn(usize) -> &'c str,
        skip_ws: &dyn Fn(usize) -> usize,
    ) -> Vec<(Vec<&'c str>, usize)> {
        let bytes = code.as_bytes();
        let j = skip_ws(at);
        if want == 0 {
            return vec![(Vec::new(), j)];
        }
        if bytes.get(j) == Some(&b'{') {
            let (mut k, mut depth, mut expect) = (j + 1, 1, true);
            let mut found = Vec::new();
            while k < bytes.len() && depth > 0 {
                match bytes[k] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b',' if depth == 1 => expect = true,
                    b if expect && depth == 1 && (b.is_ascii_alphabetic() || b == b'_') => {
                        found.extend(parts(code, k, want, ident, skip_ws));
                        expect = false;
                    }
                    _ => {}
                }
                k += 1;
            }
            return found;
        }
        let name = ident(j);
        if name.is_empty() || name == "self" {
            return vec![(Vec::new(), j)];
        }
        let after = skip_ws(j + name.len());
        let mut rest = if code[after..].starts_with("::") {
            parts(code, after + 2, want - 1, ident, skip_ws)
        } else {
            vec![(Vec::new(), j)]
        };
        for (path, at) in &mut rest {
            path.insert(0, name);
            *at = j.min(*at);
        }
        rest
    }
    let mut found = Vec::new();
    for i in 0..bytes.len() {
        let (base, after): (Vec<String>, usize) = if word_at(i, "crate") {
            let j = skip_ws(i + "crate".len());
            if !code[j..].starts_with("::") {
                continue; // pub(crate)
            }
            (Vec::new(), j + 2)
        } else if word_at(i, "super") && (i < 2 || &code[i - 2..i] != "::") {
            // `super::super::x`: climbs one module per `super`.
            let (mut j, mut climbs) = (i, 0);
            while word_at(j, "super") && code[skip_ws(j + 5)..].starts_with("::") {
                j = skip_ws(skip_ws(j + 5) + 2);
                climbs += 1;
            }
            if climbs == 0 {
                continue;
            }
            let mut base = source.module.clone();
            // A file that is not a `mod.rs` is a module inside its folder's.
            base.truncate(base.len().saturating_sub(climbs));
            (base, j)
        } else {
            continue;
        };
        let want = 2usize.saturating_sub(base.len());
        for (names, at) in parts(code, after, want, &ident, &skip_ws) {
            let mut path = base.clone();
            path.extend(names.iter().map(|n| n.to_string()));
            let target = match path.as_slice() {
                [] => continue,
                [top, ..] if SHARED.contains(&top.as_str()) => top.clone(),
                [layer, component, ..] if components.contains(&format!("{layer}::{component}")) => {
                    format!("{layer}::{component}")
                }
                [layer, ..] if components.contains(layer) => layer.clone(),
                _ => "lib".to_string(),
            };
            found.push((target, line_of(at)));
        }
    }
    found
}

/// (from, to) component -> the places (`src/x/y.rs:12`) that make the edge.
fn component_graph() -> BTreeMap<(String, String), Vec<String>> {
    let sources = sources();
    let components: BTreeSet<String> = sources.iter().map(Source::component).collect();
    let mut graph: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for source in &sources {
        let from = source.component();
        for (to, line) in imports(source, &components) {
            if to != from {
                graph
                    .entry((from.clone(), to))
                    .or_default()
                    .push(format!("{}:{line}", source.path));
            }
        }
    }
    graph
}

fn layer_of(component: &str) -> &str {
    component.split("::").next().unwrap()
}

fn layer_may(from: &str, to: &str) -> bool {
    from == to || LAYERS.iter().any(|(l, may)| *l == from && may.contains(&to))
}

/// The rules that hold inside the layers, stated on components.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "collect::aws",
        "collect::sources",
        "AWS access knows nothing of the sources",
    ),
    (
        "collect::aws",
        "collect::refresh",
        "AWS access knows nothing of the refresh",
    ),
    (
        "collect::sources",
        "collect::refresh",
        "a source reads; the refresh loop drives it",
    ),
    (
        "output::metrics",
        "domain::policy",
        "outputs render the assessed model; they do not assess",
    ),
    (
        "output::report",
        "domain::policy",
        "outputs render the assessed model; they do not assess",
    ),
    (
        "output::status_page",
        "domain::policy",
        "outputs render the assessed model; they do not assess",
    ),
];

#[test]
fn every_file_lives_in_a_layer_folder() {
    let mut problems = Vec::new();
    for source in sources() {
        let top = source.layer();
        let placed = match source.module.len() {
            1 => ROOT.contains(&top) || SHARED.contains(&top) || LAYERS.iter().any(|(l, _)| *l == top),
            _ => LAYERS.iter().any(|(l, _)| *l == top),
        };
        if !placed {
            problems.push(format!(
                "{}: put it in one of the layer folders {:?}, or add its folder to LAYERS in tests/architecture.rs",
                source.path,
                LAYERS.iter().map(|(l, _)| *l).collect::<Vec<_>>()
            ));
        }
    }
    for (layer, _) in LAYERS {
        if !crate_dir().join("src").join(layer).join("mod.rs").is_file() {
            problems.push(format!("LAYERS names {layer}, but src/{layer}/mod.rs does not exist"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn one_module_style_mod_rs_never_a_file_beside_its_folder() {
    let mut problems = Vec::new();
    for source in sources() {
        let file = crate_dir().join(&source.path);
        if file.file_name().is_some_and(|n| n != "mod.rs") && file.with_extension("").is_dir() {
            problems.push(format!(
                "{}: a module with children is a folder with a mod.rs",
                source.path
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn components_import_only_what_the_layers_allow() {
    let graph = component_graph();
    let mut problems = Vec::new();
    for ((from, to), places) in &graph {
        let (from_layer, to_layer) = (layer_of(from), layer_of(to));
        if ROOT.contains(&from_layer) {
            continue;
        }
        if to == "lib" {
            problems.push(format!(
                "{from} names an item of lib.rs (the root) at {}",
                places.join(", ")
            ));
        } else if SHARED.contains(&from_layer) && !SHARED.contains(&to_layer) {
            problems.push(format!(
                "{from} is shared by every layer and names {to} at {}",
                places.join(", ")
            ));
        } else if !SHARED.contains(&to_layer) && !layer_may(from_layer, to_layer) {
            problems.push(format!(
                "{from} -> {to}: layer {from_layer} may not import layer {to_layer}, at {}",
                places.join(", ")
            ));
        }
        if let Some((_, _, why)) = FORBIDDEN.iter().find(|(f, t, _)| f == from && t == to) {
            problems.push(format!("{from} -> {to}: {why}, at {}", places.join(", ")));
        }
    }
    assert!(problems.is_empty(), "architecture:\n  {}", problems.join("\n  "));
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
fn no_import_cycle_between_components() {
    let graph = component_graph();
    let edges: BTreeSet<(String, String)> = graph
        .keys()
        .filter(|(from, _)| !ROOT.contains(&layer_of(from)))
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
fn the_layer_table_is_acyclic_and_config_stays_at_the_edge() {
    let edges: BTreeSet<(String, String)> = LAYERS
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from.to_string(), to.to_string())))
        .collect();
    assert_eq!(find_cycle(&edges), None, "LAYERS has a cycle");
    let may = |from: &str| LAYERS.iter().find(|(l, _)| *l == from).map_or(&[][..], |(_, t)| *t);
    assert!(may("domain").is_empty(), "the domain imports no other layer");
    for (layer, targets) in LAYERS {
        assert!(
            !targets.contains(&"config"),
            "{layer}: only the root reads the configuration layer; the others get plain settings"
        );
    }
    assert!(
        !may("output").contains(&"collect"),
        "outputs render the snapshot, not the sources"
    );
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
    let components: BTreeSet<String> = ["a", "a::x", "a::y", "b", "b::z", "error"].map(String::from).into();
    let source = |path: &str, module: &[&str], text: &str| Source {
        path: path.into(),
        module: module.iter().map(|m| m.to_string()).collect(),
        code: without_test_items(&blank_comments_and_literals(text)),
        raw: text.into(),
    };
    let text = r#####"
use crate::a::x::X;
use crate::a::{y, x::{Y, Z}};
use crate::{b::z::W, a::Item};
pub(crate) fn f() -> crate::b::z::T { let s = "crate::b::z"; let r = r#"crate::b {"#; let q = '{'; g::<'static>() }
// crate::b::z in a comment
/* crate::b::z /* nested */ */
#[cfg(test)]
mod tests { use crate::b::z::W; const S: &str = "}"; }
"#####;
    let names: Vec<String> = imports(&source("src/a/x.rs", &["a", "x"], text), &components)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(names, ["a::x", "a::y", "a::x", "b::z", "a", "b::z"]);
    let nested = source(
        "src/a/y/q.rs",
        &["a", "y", "q"],
        "use super::p; use super::super::x::Q; use super::super::super::b::z; use crate::Error; use crate::error::Result;",
    );
    let names: Vec<String> = imports(&nested, &components).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["a::y", "a::x", "b::z", "lib", "error"]);
}
