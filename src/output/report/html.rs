//! The report as one self-contained HTML document: inline CSS, the age chart
//! as inline SVG, and a small inline script that only adds sorting. It must
//! open from an email attachment, offline, so nothing is loaded from anywhere,
//! and a Content-Security-Policy says so to the browser as well. A pure
//! function of the report model and the settings it was made with.
//!
//! Longer than 400 lines: the document is one template (styles, chart,
//! tables, print rules, the sort script and their CSP hashes) that is read
//! and changed as a whole.

use std::fmt::Write as _;

use base64::Engine as _;
use sha2::Digest as _;

use crate::domain::disclosure::KeyIdLabel;

use super::{AccountRow, CellValue, KeyRow, Report, NOT_READ};
use crate::output::key_series::{self, HtmlTables};

/// What the report was made with: the policy and key id masking it applies,
/// and, for its header, where the data came from and which accounts it covers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    pub key_ids: KeyIdLabel,
    /// The user tags exported (`labels.user_tags`), one details column each.
    pub user_tags: Vec<String>,
    pub source: String,
    pub scope: String,
}

/// The dashboard's bucket colours (Grafana's named colours of the "Access
/// key age by account" panel), youngest to oldest, with a text colour that
/// reads on each.
const PALETTE: [(&str, &str, &str); 5] = [
    ("green", "#73BF69", "#000"),
    ("yellow", "#FADE2A", "#000"),
    ("orange", "#FF9830", "#000"),
    ("red", "#F2495C", "#000"),
    ("dark-red", "#C4162A", "#fff"),
];

/// The palette entry of bucket `index` of `count`: the five dashboard colours
/// as they are for the default buckets, spread over the range for others, so
/// that the oldest bucket is always dark red.
fn bucket_colour(index: usize, count: usize) -> (&'static str, &'static str, &'static str) {
    let last = PALETTE.len() - 1;
    let at = if count <= 1 {
        0
    } else {
        (index * last + (count - 1) / 2) / (count - 1)
    };
    PALETTE[at.min(last)]
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; margin: 24px; }
h1 { font-size: 24px; margin: 0 0 8px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 2px solid #d0d7de; padding-bottom: 4px; }
dl.about { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.about dt { font-weight: 600; }
dl.about dd { margin: 0; }
.note { color: #57606a; margin: 4px 0 8px; }
.chart svg { display: block; width: 100%; max-width: 1100px; height: auto; }
.chart text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; text-align: left; vertical-align: top; }
thead th { background: #f0f3f6; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #f8f9fa; }
tfoot td, tfoot th { font-weight: 600; background: #f0f3f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td time, td.key-id { white-space: nowrap; }
td.key-id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
.account-id { color: #57606a; font-size: 0.9em; }
.risk { color: #a40e26; font-weight: 600; }
.muted { color: #57606a; }
table.sortable.js thead th { cursor: pointer; }
table.sortable.js thead th[aria-sort="ascending"]::after { content: " \25B2"; }
table.sortable.js thead th[aria-sort="descending"]::after { content: " \25BC"; }
@page { size: landscape; margin: 12mm; }
@media print {
  body { margin: 0; font-size: 9pt; }
  h2 { margin-top: 0; }
  #high-risk, #details, #summary { break-before: page; }
  h2, caption { break-after: avoid; }
  .scroll { overflow: visible; }
  table { font-size: 7.5pt; }
  thead { display: table-header-group; }
  thead th { position: static; }
  tfoot { display: table-row-group; }
  tr { break-inside: avoid; }
  .chart svg { max-width: none; break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Sorts a table by the clicked header (numbers as numbers, the rest as
/// text). Only an aid: every table is complete and ordered without it.
const SCRIPT: &str = r#"
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.classList.add("js");
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var value = function (row) {
        var cell = row.cells[column];
        var v = cell.getAttribute("data-sort");
        return v === null ? cell.textContent.trim() : v;
      };
      var number = /^-?\d+(\.\d+)?$/;
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = value(a), y = value(b);
        var order = number.test(x) && number.test(y) ? x - y : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
});
"#;

/// `'sha256-…'` of an inline element's text, for the Content-Security-Policy.
pub(crate) fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Text made safe for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The name an account is shown by, as on the dashboard: its name, or its id
/// when it has none.
fn account_label<'a>(name: &'a str, id: &'a str) -> &'a str {
    if name.is_empty() {
        id
    } else {
        name
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn keys(n: usize) -> String {
    plural(n, "key")
}

/// `name (id)`, or the id alone for an account without a name.
fn account_title(account: &AccountRow) -> String {
    if account.account_name.is_empty() {
        account.account_id.clone()
    } else {
        format!("{} ({})", account.account_name, account.account_id)
    }
}

/// The whole document.
pub fn render(report: &Report, context: &Context) -> String {
    let mut out = String::with_capacity(4096 + report.details.len() * 600);
    // Made of constants and base64: nothing to escape.
    let csp = format!(
        "default-src 'none'; style-src {}; script-src {}; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>AWS IAM access keys, {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        csp,
        escape(&report.generated)
    );
    header(&mut out, report, context);
    if report.nothing_read() {
        // Said first and plainly: an empty report must not pass for a clean
        // audit, and an empty chart would draw one.
        out.push_str(
            "<p class=\"risk nothing-read\" role=\"alert\">No account could be read. \
This report holds no data: it does not say that any key is safe.</p>\n",
        );
    } else {
        chart(&mut out, report);
    }
    high_risk(&mut out, report);
    details(&mut out, report, context);
    summary(&mut out, report);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, report: &Report, context: &Context) {
    let policy = &report.policy;
    let unused = match &policy.unused_more_than {
        Some(limit) => format!(", or unused for more than {limit}"),
        None => "; there is no limit on the time since last use".to_string(),
    };
    let masking = match context.key_ids {
        KeyIdLabel::Full => "shown in full",
        KeyIdLabel::Last4 => "last four characters only",
        KeyIdLabel::None => "not shown",
    };
    let generated = report.generated.replace('T', " ").replace('Z', " UTC");
    let _ = write!(
        out,
        "<header>\n<h1>AWS IAM access keys</h1>\n<dl class=\"about\">\n\
<dt>Generated</dt><dd><time datetime=\"{}\">{}</time></dd>\n\
<dt>Accounts</dt><dd>{} read: {}</dd>\n{}\
<dt>Source</dt><dd>{}</dd>\n\
<dt>Policy</dt><dd>An active key is high risk when it is not rotated for more than {} \
({} for an admin-equivalent user), never used more than {} after its creation{}. \
An active key of the root user, or of a user AWS quarantined, is high risk at any age.</dd>\n\
<dt>Age buckets</dt><dd>{}</dd>\n\
<dt>Key ids</dt><dd>{masking}</dd>\n\
<dt>Keys</dt><dd>{}</dd>\n</dl>\n</header>\n",
        escape(&report.generated),
        escape(&generated),
        plural(report.summary.len(), "account"),
        escape(&context.scope),
        not_read(report),
        escape(&context.source),
        policy.rotated_more_than,
        policy.admin_rotated_more_than,
        policy.never_used_after,
        unused,
        escape(&policy.age_buckets.join(", ")),
        match (report.nothing_read(), report.not_read.len()) {
            (true, _) => "not known: no account could be read".to_string(),
            (false, 0) => format!("{}, {} high risk", keys(report.details.len()), report.high_risk.len()),
            (false, _) => format!(
                "{}, {} high risk, in the accounts read",
                keys(report.details.len()),
                report.high_risk.len()
            ),
        },
    );
}

/// The accounts missing from the report because no refresh of theirs has
/// succeeded yet, named with their last error so that a gap is never silent.
fn not_read(report: &Report) -> String {
    if report.not_read.is_empty() {
        return String::new();
    }
    let accounts: Vec<String> = report
        .not_read
        .iter()
        .map(|n| format!("{} ({})", escape(&n.who()), escape(&n.error)))
        .collect();
    format!(
        "<dt>Not read</dt><dd class=\"risk\">{} could not be read, so their keys are in no table below: {}</dd>\n",
        plural(report.not_read.len(), "account"),
        accounts.join("; ")
    )
}

/// Layout of the chart, in SVG user units.
const CHART_WIDTH: f64 = 1000.0;
const LABEL_WIDTH: f64 = 210.0;
const BAR_AREA: f64 = 520.0;
const ROW_HEIGHT: f64 = 26.0;
const BAR_HEIGHT: f64 = 18.0;
const TOP: f64 = 40.0;
/// Width of a character of the 11-unit chart font, generously, so that a
/// count is only written inside a segment that surely holds it.
const CHAR_WIDTH: f64 = 7.0;

/// A round axis step (1, 2 or 5 times a power of ten) giving at most five
/// intervals up to `max`.
fn axis_step(max: usize) -> usize {
    let mut power = 1;
    loop {
        for m in [1, 2, 5] {
            if max.div_ceil(m * power) <= 5 {
                return m * power;
            }
        }
        power *= 10;
    }
}

fn chart(out: &mut String, report: &Report) {
    let labels = &report.policy.age_buckets;
    let mut accounts: Vec<&AccountRow> = report.summary.iter().collect();
    accounts.sort_by(|a, b| {
        (account_label(&a.account_name, &a.account_id), &a.account_id)
            .cmp(&(account_label(&b.account_name, &b.account_id), &b.account_id))
    });
    let max = accounts.iter().map(|a| a.keys).max().unwrap_or(0).max(1);
    let step = axis_step(max);
    let axis_max = max.div_ceil(step) * step;
    let scale = BAR_AREA / axis_max as f64;
    let height = TOP + ROW_HEIGHT * accounts.len() as f64 + 30.0;
    let _ = write!(
        out,
        "<section id=\"age\" class=\"chart\">\n<h2>Key age by account</h2>\n\
<p class=\"note\">Access keys, active and inactive, per account by age (time since creation, that is since the last rotation). \
The same numbers are in the summary table.</p>\n\
<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {CHART_WIDTH} {height}\" role=\"img\" aria-labelledby=\"age-title age-desc\">\n\
<title id=\"age-title\">Access key age by account</title>\n\
<desc id=\"age-desc\">Stacked horizontal bars, one per account ({}), one segment per age bucket ({}), \
each labelled with its number of keys.</desc>\n",
        plural(accounts.len(), "account"),
        escape(&labels.join(", "))
    );
    out.push_str("<g class=\"legend\" font-size=\"12\">\n");
    let mut x = LABEL_WIDTH;
    for (i, label) in labels.iter().enumerate() {
        let (_, fill, _) = bucket_colour(i, labels.len());
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{fill}\"/><text x=\"{}\" y=\"16\">{}</text>",
            x + 16.0,
            escape(label)
        );
        x += 16.0 + label.chars().count() as f64 * CHAR_WIDTH + 20.0;
    }
    out.push_str("</g>\n<g class=\"axis\" font-size=\"11\" fill=\"#57606a\">\n");
    let bottom = TOP + ROW_HEIGHT * accounts.len() as f64;
    for tick in (0..=axis_max).step_by(step) {
        let tx = LABEL_WIDTH + tick as f64 * scale;
        let _ = writeln!(
            out,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{bottom}\" stroke=\"#d0d7de\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\">{tick}</text>",
            TOP - 6.0,
            bottom + 14.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">access keys</text>\n</g>",
        LABEL_WIDTH + BAR_AREA / 2.0,
        bottom + 27.0
    );
    for (row, account) in accounts.iter().enumerate() {
        let y = TOP + row as f64 * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
        let text_y = y + BAR_HEIGHT / 2.0 + 4.0;
        let label = account_label(&account.account_name, &account.account_id);
        let shown: String = if label.chars().count() > 28 {
            label.chars().take(27).chain(['…']).collect()
        } else {
            label.to_string()
        };
        let _ = write!(
            out,
            "<g class=\"bar\" data-account=\"{}\" font-size=\"11\">\n<title>{}: {}</title>\n\
<text class=\"account\" x=\"{}\" y=\"{text_y}\" text-anchor=\"end\" font-size=\"12\">{}</text>\n",
            escape(&account.account_id),
            escape(&account_title(account)),
            keys(account.keys),
            LABEL_WIDTH - 8.0,
            escape(&shown)
        );
        let mut x = LABEL_WIDTH;
        // Counts of segments too narrow to hold them follow the bar, named.
        let mut beside = String::new();
        for (i, (bucket, count)) in account.age_buckets.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let (_, fill, ink) = bucket_colour(i, account.age_buckets.len());
            let width = *count as f64 * scale;
            let _ = write!(
                out,
                "<g class=\"segment\" data-bucket=\"{}\" data-count=\"{count}\">\
<title>{}: {} {}</title><rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT}\" fill=\"{fill}\"/>",
                escape(bucket),
                escape(label),
                keys(*count),
                escape(bucket)
            );
            let text = count.to_string();
            if text.len() as f64 * CHAR_WIDTH + 4.0 <= width {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{text_y}\" text-anchor=\"middle\" fill=\"{ink}\">{text}</text>",
                    x + width / 2.0
                );
            } else {
                let _ = write!(
                    beside,
                    "<tspan class=\"beside\" data-bucket=\"{}\">, {}: {text}</tspan>",
                    escape(bucket),
                    escape(bucket)
                );
            }
            out.push_str("</g>\n");
            x += width;
        }
        let _ = write!(
            out,
            "<text class=\"total\" x=\"{:.1}\" y=\"{text_y}\" fill=\"#1f2328\">{}{beside}</text>\n</g>\n",
            x + 6.0,
            keys(account.keys)
        );
    }
    out.push_str("</svg>\n</section>\n");
}

/// One table cell: its HTML (already escaped), a class, and the value to
/// sort by when the text does not sort right (dates shown as days).
struct Cell {
    html: String,
    class: &'static str,
    sort: Option<String>,
}

fn text(value: &str) -> Cell {
    Cell {
        html: escape(value),
        class: "",
        sort: None,
    }
}

fn number(value: impl std::fmt::Display) -> Cell {
    Cell {
        html: value.to_string(),
        class: "num",
        sort: None,
    }
}

/// A date shown as the day, the whole timestamp kept for sorting and tools.
fn date(timestamp: Option<&str>) -> Cell {
    match timestamp {
        Some(t) => Cell {
            html: format!(
                "<time datetime=\"{}\">{}</time>",
                escape(t),
                escape(&t[..t.len().min(10)])
            ),
            class: "",
            sort: Some(escape(t)),
        },
        None => Cell {
            html: "<span class=\"muted\">never</span>".into(),
            class: "",
            sort: Some(String::new()),
        },
    }
}

fn yes_no(value: bool) -> Cell {
    text(if value { "yes" } else { "no" })
}

fn account_cell(name: &str, id: &str) -> Cell {
    let html = if name.is_empty() {
        format!("<span class=\"account-id\">{}</span>", escape(id))
    } else {
        format!("{}<br><span class=\"account-id\">{}</span>", escape(name), escape(id))
    };
    Cell {
        html,
        class: "",
        sort: Some(escape(account_label(name, id))),
    }
}

fn risk_reasons(row: &KeyRow) -> String {
    row.risk_reasons.join(", ")
}

/// The columns of the key itself that begin the high-risk and details
/// tables; the facts' columns follow (see `key_series::FACTS`).
const KEY_COLUMNS: [(&str, bool); 7] = [
    ("Account", false),
    ("User", false),
    ("Key", true),
    ("Access key id", false),
    ("Status", false),
    ("Admin", false),
    ("Exposed", false),
];

/// The facts' columns that `tables` show, with their index among the
/// facts' cells, their title and whether they are numbers.
fn fact_columns(tables: HtmlTables) -> impl Iterator<Item = (usize, (String, bool))> {
    key_series::columns().enumerate().filter_map(move |(i, column)| {
        let (title, shown) = column.html?;
        (shown == tables).then(|| (i, (title.to_string(), matches!(column.cell, key_series::Cell::Days(_)))))
    })
}

fn fact_cell(value: &CellValue) -> Cell {
    match value {
        CellValue::Time(time) => date(time.as_deref()),
        CellValue::Days(days) => number(days),
        CellValue::Text(value) => text(value),
        CellValue::Flag(flag) => yes_no(*flag),
        CellValue::List(items) => text(&items.join(", ")),
    }
}

fn fact_cells(row: &KeyRow, tables: HtmlTables) -> impl Iterator<Item = Cell> + '_ {
    fact_columns(tables).map(|(i, _)| fact_cell(&row.facts.0[i]))
}

fn key_cells(row: &KeyRow) -> Vec<Cell> {
    let key_id = if row.access_key_id.is_empty() {
        Cell {
            html: "<span class=\"muted\">\u{2014}</span>".into(),
            class: "key-id",
            sort: Some(String::new()),
        }
    } else {
        Cell {
            class: "key-id",
            ..text(&row.access_key_id)
        }
    };
    [
        account_cell(&row.account_name, &row.account_id),
        text(&row.user),
        number(row.key),
        key_id,
        text(row.status.as_str()),
        known_flag(row.admin),
        known_flag(row.exposed),
    ]
    .into_iter()
    .chain(fact_cells(row, HtmlTables::Both))
    .collect()
}

/// "yes" (marked as a risk) or "no", or "not read" when the source did not
/// read it: never "no" for what nobody looked at.
fn known_flag(value: Option<bool>) -> Cell {
    match value {
        Some(true) => Cell {
            class: "risk",
            ..text("yes")
        },
        Some(false) => text("no"),
        None => Cell {
            class: "muted",
            ..text(NOT_READ)
        },
    }
}

/// A count only known when the source read it.
fn known_number(value: Option<usize>) -> Cell {
    value.map_or_else(
        || Cell {
            class: "muted",
            ..text(NOT_READ)
        },
        number,
    )
}

/// A sortable table; `rows` empty gives one row that says `empty`.
fn table(
    out: &mut String,
    caption: &str,
    columns: &[(String, bool)],
    rows: Vec<Vec<Cell>>,
    empty: &str,
    footer: Option<Vec<Cell>>,
) {
    let _ = write!(
        out,
        "<div class=\"scroll\">\n<table class=\"sortable\">\n<caption>{}</caption>\n<thead><tr>",
        escape(caption)
    );
    for (name, numeric) in columns {
        let class = if *numeric { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape(name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{}\" class=\"muted\">{}</td></tr>",
            columns.len(),
            escape(empty)
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str("<td");
            if !cell.class.is_empty() {
                let _ = write!(out, " class=\"{}\"", cell.class);
            }
            if let Some(sort) = &cell.sort {
                let _ = write!(out, " data-sort=\"{sort}\"");
            }
            let _ = write!(out, ">{}</td>", cell.html);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n");
    if let Some(cells) = footer {
        out.push_str("<tfoot><tr>");
        for (i, cell) in cells.into_iter().enumerate() {
            let tag = if i == 0 { "th scope=\"row\"" } else { "td" };
            let class = if cell.class.is_empty() {
                String::new()
            } else {
                format!(" class=\"{}\"", cell.class)
            };
            let _ = write!(out, "<{tag}{class}>{}</{}>", cell.html, &tag[..2]);
        }
        out.push_str("</tr></tfoot>\n");
    }
    out.push_str("</table>\n</div>\n");
}

fn key_columns() -> impl Iterator<Item = (String, bool)> {
    KEY_COLUMNS
        .iter()
        .map(|(n, numeric)| (n.to_string(), *numeric))
        .chain(fact_columns(HtmlTables::Both).map(|(_, column)| column))
}

fn high_risk(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"high-risk\">\n<h2>High-risk keys</h2>\n\
<p class=\"note\">Active keys that break the policy in the header; the last column says how.</p>"
    );
    let rows = report
        .high_risk
        .iter()
        .map(|row| {
            let mut cells = key_cells(row);
            cells.push(Cell {
                class: "risk",
                ..text(&risk_reasons(row))
            });
            cells
        })
        .collect();
    table(
        out,
        &format!("High-risk access keys ({})", report.high_risk.len()),
        &key_columns().chain([("Why".to_string(), false)]).collect::<Vec<_>>(),
        rows,
        &match (report.nothing_read(), report.not_read.len()) {
            (true, _) => "Not known: no account could be read.".to_string(),
            (false, 0) => "No access key is high risk.".to_string(),
            (false, n) => format!(
                "No access key of the accounts read is high risk; {} not read (see the header).",
                plural(n, "account")
            ),
        },
        None,
    );
    out.push_str("</section>\n");
}

fn details(out: &mut String, report: &Report, context: &Context) {
    out.push_str("<section id=\"details\">\n<h2>Details</h2>\n");
    let extra = fact_columns(HtmlTables::Details)
        .map(|(_, column)| column)
        .chain(context.user_tags.iter().map(|tag| (format!("Tag {tag}"), false)))
        .chain([("High risk".to_string(), false)]);
    let rows = report
        .details
        .iter()
        .map(|row| {
            let mut cells = key_cells(row);
            cells.extend(fact_cells(row, HtmlTables::Details));
            for tag in &context.user_tags {
                cells.push(text(row.tags.get(tag).map_or("", String::as_str)));
            }
            cells.push(if row.high_risk() {
                Cell {
                    class: "risk",
                    ..text(&format!("yes: {}", risk_reasons(row)))
                }
            } else {
                text("no")
            });
            cells
        })
        .collect();
    table(
        out,
        &format!("Every access key ({})", report.details.len()),
        &key_columns().chain(extra).collect::<Vec<_>>(),
        rows,
        if report.nothing_read() {
            "Not known: no account could be read."
        } else {
            "No access keys."
        },
        None,
    );
    out.push_str("</section>\n");
}

/// The total of a count some accounts may not know: the sum of those that
/// do, saying how many did not.
fn known_sum(report: &Report, count: fn(&AccountRow) -> Option<usize>) -> Cell {
    let known: Vec<usize> = report.summary.iter().filter_map(count).collect();
    match report.summary.len() - known.len() {
        0 => number(known.iter().sum::<usize>()),
        n if known.is_empty() => Cell {
            class: "muted",
            ..text(&format!("not read in {}", plural(n, "account")))
        },
        n => text(&format!(
            "{}, not read in {}",
            known.iter().sum::<usize>(),
            plural(n, "account")
        )),
    }
}

fn summary(out: &mut String, report: &Report) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    let labels = &report.policy.age_buckets;
    let header = [("Account".to_string(), false)]
        .into_iter()
        .chain(labels.iter().map(|l| (l.clone(), true)))
        .chain(
            [
                ("Total", true),
                ("Active", true),
                ("High risk", true),
                ("Admin keys", true),
                ("Exposed keys", true),
                ("Users with two active keys", true),
                ("Root key", false),
                ("Users", true),
                ("Last refresh ok", false),
            ]
            .map(|(n, numeric)| (n.to_string(), numeric)),
        );
    let header: Vec<(String, bool)> = header.collect();
    let header_len = header.len();
    let rows = report
        .summary
        .iter()
        .map(|a| {
            let mut cells = vec![account_cell(&a.account_name, &a.account_id)];
            cells.extend(a.age_buckets.iter().map(|(_, n)| number(n)));
            cells.extend([
                number(a.keys),
                number(a.active_keys),
                number(a.high_risk_keys),
                known_number(a.admin_keys),
                known_number(a.exposed_keys),
                number(a.users_multiple_active_keys),
                if a.root_access_key_present {
                    Cell {
                        class: "risk",
                        ..text("present")
                    }
                } else {
                    text("none")
                },
                number(a.users),
                yes_no(a.up),
            ]);
            cells
        })
        .chain(report.not_read.iter().map(|n| {
            let mut cells = vec![account_cell("", &n.account_id)];
            cells.resize_with(header_len - 1, || Cell {
                class: "risk",
                ..text(NOT_READ)
            });
            cells.push(Cell {
                class: "risk",
                ..text("no")
            });
            cells
        }))
        .collect();
    let read = report.summary.len();
    let sum = |f: &dyn Fn(&AccountRow) -> usize| number(report.summary.iter().map(f).sum::<usize>());
    let mut footer = vec![text("All accounts")];
    footer.extend((0..labels.len()).map(|i| sum(&|a| a.age_buckets.get(i).map_or(0, |b| b.1))));
    footer.extend([
        sum(&|a| a.keys),
        sum(&|a| a.active_keys),
        sum(&|a| a.high_risk_keys),
        known_sum(report, |a| a.admin_keys),
        known_sum(report, |a| a.exposed_keys),
        number(report.summary.iter().map(|a| a.users_multiple_active_keys).sum::<i64>()),
        // Worded as the account rows are, so that a count does not stand
        // where the rows say "present" and "yes".
        match report.summary.iter().filter(|a| a.root_access_key_present).count() {
            0 => text("none"),
            n => Cell {
                class: "risk",
                ..text(&format!("present in {}", plural(n, "account")))
            },
        },
        sum(&|a| a.users),
        text(&format!(
            "{} of {}",
            report.summary.iter().filter(|a| a.up).count(),
            read + report.not_read.len()
        )),
    ]);
    if report.nothing_read() {
        // Totals of nothing would be zeros that read as a clean result.
        for cell in footer.iter_mut().skip(1) {
            *cell = Cell {
                class: "risk",
                ..text(NOT_READ)
            };
        }
    }
    table(
        out,
        &format!("Keys by account ({})", plural(read + report.not_read.len(), "account")),
        &header,
        rows,
        "No account could be read.",
        Some(footer),
    );
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key::{AccountData, KeyStatus, User};
    use crate::domain::policy::Policy;
    use crate::domain::snapshot::{Outcome, Snapshot};
    use crate::output::report::tests::{build, key, now, three_keys};
    use std::time::Duration;

    const GOLDEN: &str = "src/output/report/testdata/small.html";
    const HOSTILE_NAME: &str = "<script>alert(\"name\")</script> & 'Co'";
    const HOSTILE_TAG: &str = "<script>alert('tag')</script> \"R&D\"";

    /// Two accounts: one with a name that tries to break out of the markup
    /// and a user tag that does too, one without a name; young, old, never
    /// used and inactive keys.
    fn snapshot() -> Snapshot {
        let user = |name: &str, team: &str| User::new(name, "/").tags([("team".to_string(), team.to_string())].into());
        let outcome = |data| Outcome {
            previous_id: None,
            result: Ok(data),
            finished: now(),
            duration: Duration::from_secs(1),
        };
        Snapshot::default().with_outcomes([
            outcome(AccountData {
                account_id: "111122223333".into(),
                account_name: HOSTILE_NAME.into(),
                users: vec![user("alice", HOSTILE_TAG), user("bob", "ops")],
                keys: three_keys(),
                root_access_key_present: true,
                ..AccountData::default()
            }),
            outcome(AccountData {
                account_id: "444455556666".into(),
                account_name: String::new(),
                users: vec![user("carol", "web")],
                keys: (0..2)
                    .map(|i| {
                        key(
                            "carol",
                            i + 1,
                            "AKIACAROL00000000004",
                            KeyStatus::Active,
                            20 + i as i64,
                            Some(2),
                        )
                    })
                    .collect(),
                root_access_key_present: false,
                ..AccountData::default()
            }),
        ])
    }

    fn context() -> Context {
        Context {
            key_ids: KeyIdLabel::Last4,
            user_tags: vec!["team".into()],
            source: "IAM API".into(),
            scope: "2 accounts listed in the configuration".into(),
        }
    }

    fn document() -> String {
        let context = context();
        let report = build(snapshot(), &Policy::default(), context.key_ids);
        render(&report, &context)
    }

    /// The whole document, compared with a file reviewed in a browser.
    /// `UPDATE_GOLDEN=1 cargo test golden` rewrites it after a deliberate
    /// change; the diff then shows what changed.
    #[test]
    fn golden_document() {
        let html = document();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &html).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        assert!(
            html == golden,
            "{GOLDEN} differs; review and rerun with UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn values_from_aws_and_the_config_are_text_not_markup() {
        let html = document();
        assert_eq!(html.matches("<script").count(), 1, "only the document's own script");
        assert!(!html.contains("alert(\"") && !html.contains("alert('"));
        assert!(html.contains("&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt; &amp; &#39;Co&#39;"));
        assert!(html.contains("&lt;script&gt;alert(&#39;tag&#39;)&lt;/script&gt; &quot;R&amp;D&quot;"));
        let mut context = context();
        context.scope = "<b>\"scope\"</b>".into();
        context.source = "file a&b.csv".into();
        let html = render(&build(snapshot(), &Policy::default(), context.key_ids), &context);
        assert!(html.contains("&lt;b&gt;&quot;scope&quot;&lt;/b&gt;") && html.contains("file a&amp;b.csv"));
    }

    #[test]
    fn nothing_is_loaded_from_anywhere() {
        let html = document();
        for needle in ["http://", "https://", "src=", "href=", "@import", "url("] {
            let allowed = needle == "http://"
                && html.matches(needle).count() == html.matches("http://www.w3.org/2000/svg").count();
            assert!(allowed || !html.contains(needle), "{needle} in the document");
        }
        let csp = html.split("Content-Security-Policy\" content=\"").nth(1).unwrap();
        let csp = &csp[..csp.find('"').unwrap()];
        assert!(csp.starts_with("default-src 'none'; "));
        // The inline style and script are allowed by their hashes, nothing else.
        assert!(csp.contains(&csp_hash(STYLE)) && csp.contains(&csp_hash(SCRIPT)));
        assert!(
            html.contains(&format!("<style>{STYLE}</style>")) && html.contains(&format!("<script>{SCRIPT}</script>"))
        );
    }

    /// The chart's colours are the dashboard's, bucket for bucket.
    #[test]
    fn bucket_colours_match_the_dashboard() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../grafana/dashboards/aws-iam-access-keys.json")).unwrap();
        let panel = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == "Access key age by account")
            .unwrap();
        let colours: std::collections::BTreeMap<&str, &str> = panel["fieldConfig"]["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["matcher"]["options"].as_str().unwrap(),
                    o["properties"][0]["value"]["fixedColor"].as_str().unwrap(),
                )
            })
            .collect();
        let labels = Policy::default().age_buckets.labels().to_vec();
        assert_eq!(colours.len(), labels.len());
        for (i, label) in labels.iter().enumerate() {
            assert_eq!(bucket_colour(i, labels.len()).0, colours[label.as_str()], "{label}");
        }
        // Other bucket counts keep the ends: youngest green, oldest dark red.
        for count in [1, 2, 3, 7] {
            assert_eq!(bucket_colour(0, count).0, "green");
            assert_eq!(
                bucket_colour(count - 1, count).0,
                if count == 1 { "green" } else { "dark-red" }
            );
        }
    }

    #[test]
    fn accounts_without_data_are_named_in_the_header() {
        let failed = |id: Option<&str>| Outcome {
            previous_id: id.map(String::from),
            result: Err(crate::domain::failure::SourceError::new(
                crate::domain::failure::ErrorReason::AccessDenied,
                "denied",
            )),
            finished: now(),
            duration: Duration::from_secs(1),
        };
        let snapshot = snapshot().with_outcomes([failed(Some("777788889999"))]);
        let context = context();
        let html = render(&build(snapshot.clone(), &Policy::default(), context.key_ids), &context);
        assert!(html.contains(
            "<dt>Not read</dt><dd class=\"risk\">1 account could not be read, so their keys are in no table below: \
account 777788889999 (access denied: denied)</dd>"
        ));
        assert!(html.contains("<dt>Accounts</dt><dd>2 accounts read"));
        assert!(html.contains("<caption>Keys by account (3 accounts)</caption>"));
        let unread_row = "<span class=\"account-id\">777788889999</span></td>";
        let row = &html[html.find(unread_row).expect("a summary row")..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert_eq!(row.matches(">not read</td>").count(), 13, "every count: {row}");
        assert!(!row.contains(">0<"), "never 0: {row}");
        assert!(html.contains("<svg"), "the accounts read are drawn");
        assert!(!document().contains("Not read"));
        let unknown = Snapshot::default().with_outcomes([failed(None)]);
        let html = render(&build(unknown, &Policy::default(), context.key_ids), &context);
        assert!(html.contains("the account (its id is not known yet) (access denied: denied)"));
    }

    /// Nothing read: said first and in plain words; no chart, and no table
    /// that reads as a clean result.
    #[test]
    fn nothing_read_says_so_and_claims_no_risk_level() {
        let failed = Outcome {
            previous_id: None,
            result: Err(crate::domain::failure::SourceError::new(
                crate::domain::failure::ErrorReason::Credentials,
                "GetCallerIdentity: no AWS credentials found",
            )),
            finished: now(),
            duration: Duration::from_secs(1),
        };
        let context = context();
        let snapshot = Snapshot::default().with_outcomes([failed]);
        let html = render(&build(snapshot, &Policy::default(), context.key_ids), &context);
        let body = &html[html.find("<body>").unwrap()..];
        let alert = body
            .find("No account could be read. This report holds no data")
            .expect("the banner");
        assert!(alert < body.find("<section").unwrap(), "before every section");
        assert!(html.contains("(no valid credentials: GetCallerIdentity: no AWS credentials found)"));
        assert!(!html.contains("<svg"), "no empty chart");
        assert!(!html.contains("No access key is high risk"));
        assert!(html.contains("Not known: no account could be read."));
        assert!(html.contains("<dt>Keys</dt><dd>not known: no account could be read</dd>"));
        let totals = &html[html.find("<tfoot>").unwrap()..html.find("</tfoot>").unwrap()];
        assert!(!totals.contains(">0<"), "no zero totals: {totals}");
    }

    /// A segment too narrow for its count still shows it, after the bar.
    #[test]
    fn narrow_segments_have_their_count_beside_the_bar() {
        let mut keys: Vec<_> = (0..200)
            .map(|i| {
                key(
                    &format!("u{i:03}"),
                    1,
                    "AKIAYOUNG00000000000",
                    KeyStatus::Active,
                    3,
                    Some(1),
                )
            })
            .collect();
        keys.push(key("old", 1, "AKIAOLD0000000000009", KeyStatus::Active, 400, Some(1)));
        let snapshot = Snapshot::default().with_outcomes([Outcome {
            previous_id: None,
            result: Ok(AccountData {
                account_id: "111122223333".into(),
                keys,
                ..AccountData::default()
            }),
            finished: now(),
            duration: Duration::from_secs(1),
        }]);
        let context = context();
        let html = render(&build(snapshot.clone(), &Policy::default(), context.key_ids), &context);
        let bar = &html[html.find("<g class=\"bar\"").unwrap()..html.find("</svg>").unwrap()];
        assert!(bar.contains(">200</text></g>"), "wide enough: written on the segment");
        assert!(bar.contains("<g class=\"segment\" data-bucket=\"365d+\" data-count=\"1\">"));
        assert!(
            bar.contains("201 keys<tspan class=\"beside\" data-bucket=\"365d+\">, 365d+: 1</tspan></text>"),
            "{bar}"
        );
    }

    #[test]
    fn axis_steps_are_round_and_few() {
        for (max, step) in [
            (1, 1),
            (5, 1),
            (6, 2),
            (10, 2),
            (11, 5),
            (52, 20),
            (99, 20),
            (101, 50),
            (4000, 1000),
        ] {
            assert_eq!(axis_step(max), step, "{max}");
        }
    }
}
