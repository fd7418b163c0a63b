//! The `report` command's output: the details, high-risk and summary tables
//! of the classic "Access Keys" report, as a text table, JSON or CSV. Pure
//! functions of the assessed model ([`crate::domain::assess`]), which also feeds
//! `/metrics`. The HTML document is in [`html`].

pub mod html;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::assess::{Assessed, Assessment, Assessor, PolicyTerms};
use crate::domain::disclosure::KeyIdLabel;
use crate::domain::failure::SourceError;
use crate::domain::key::{AccessKey, KeyStatus};
use crate::output::key_series::{self, Cell};

/// How `report` prints (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    /// One self-contained HTML document with the age chart and every table.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportTable {
    All,
    Details,
    HighRisk,
    Summary,
}

/// A titled table: title, header, rows.
type Table<'a> = (&'a str, Vec<String>, Vec<Vec<String>>);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRow {
    pub account_id: String,
    pub account_name: String,
    pub user: String,
    pub key: u8,
    pub access_key_id: String,
    pub status: KeyStatus,
    /// Whether the key's user is admin-equivalent; `None` (JSON `null`,
    /// "not read" in the tables) when its policies were not read.
    pub admin: Option<bool>,
    /// Whether AWS quarantined the key's user, having found one of its keys
    /// exposed; `None` as for `admin`.
    pub exposed: Option<bool>,
    /// What the per-key facts put in the report.
    #[serde(flatten)]
    pub facts: FactCells,
    /// Why the policy judged the key high risk, for the tables that pick or
    /// mark the high-risk keys.
    #[serde(skip)]
    pub risk_reasons: Vec<&'static str>,
    /// The user's exported tags (`labels.user_tags`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl KeyRow {
    pub fn high_risk(&self) -> bool {
        !self.risk_reasons.is_empty()
    }
}

/// One cell per column of [`key_series::columns`], in that order; JSON
/// writes them in the tables' order.
#[derive(Debug, Clone, PartialEq)]
pub struct FactCells(pub Vec<CellValue>);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CellValue {
    /// `None` for a key without that time.
    Time(Option<String>),
    Days(u64),
    Text(String),
    Flag(bool),
    List(Vec<&'static str>),
}

impl FactCells {
    fn of(key: &AccessKey, assessment: &Assessment) -> FactCells {
        let text =
            |value: &Option<std::sync::Arc<str>>| CellValue::Text(value.as_deref().unwrap_or_default().to_string());
        FactCells(
            key_series::columns()
                .map(|column| match column.cell {
                    Cell::Time(time) => CellValue::Time(time.of(key).map(timestamp)),
                    Cell::Days(span) => CellValue::Days(span.days(assessment)),
                    Cell::LastUsedService => text(&key.last_used_service),
                    Cell::LastUsedRegion => text(&key.last_used_region),
                    Cell::Verdict(verdict) => CellValue::Flag(verdict.of(assessment)),
                    Cell::RiskReasons => CellValue::List(assessment.reasons.iter().map(|r| r.describe()).collect()),
                })
                .collect(),
        )
    }
}

impl Serialize for FactCells {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (i, column) in key_series::report_columns() {
            map.serialize_entry(column.name, &self.0[i])?;
        }
        map.end()
    }
}

impl CellValue {
    /// The cell in the text and CSV tables.
    fn text(&self) -> String {
        match self {
            CellValue::Time(time) => time.clone().unwrap_or_else(|| "Never".into()),
            CellValue::Days(days) => days.to_string(),
            CellValue::Text(text) => text.clone(),
            CellValue::Flag(flag) => flag.to_string(),
            CellValue::List(items) => items.join("; "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRow {
    pub account_id: String,
    pub account_name: String,
    pub up: bool,
    pub users: usize,
    pub keys: usize,
    pub active_keys: usize,
    pub high_risk_keys: usize,
    /// `None` (JSON `null`, "not read" in the tables) when the account's
    /// privileges were not read.
    pub admin_keys: Option<usize>,
    pub exposed_keys: Option<usize>,
    pub users_multiple_active_keys: i64,
    pub root_access_key_present: bool,
    /// Keys per age bucket, in bucket order.
    pub age_buckets: Vec<(String, usize)>,
}

/// An account that could not be read, and why, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotRead {
    /// Empty when the first read failed before the id was known.
    pub account_id: String,
    pub error: String,
}

impl NotRead {
    /// "account 111122223333", or what stands for an id not known yet.
    pub fn who(&self) -> String {
        if self.account_id.is_empty() {
            "the account (its id is not known yet)".to_string()
        } else {
            format!("account {}", self.account_id)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub generated: String,
    pub details: Vec<KeyRow>,
    pub high_risk: Vec<KeyRow>,
    pub summary: Vec<AccountRow>,
    /// Accounts without data: every refresh of theirs so far failed. Their
    /// keys are in no table: "not read" is never "no risk".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_read: Vec<NotRead>,
    /// The policy the keys were assessed against, for the HTML header.
    #[serde(skip)]
    pub policy: PolicyTerms,
}

/// What `/report` serves: the assessment of the current snapshot, presented
/// as `context` says.
#[derive(Debug)]
pub struct Page {
    pub assessor: Assessor,
    pub context: html::Context,
}

impl Page {
    pub fn render(&self) -> String {
        let report = Report::build(&self.assessor.assess(), self.context.key_ids);
        html::render(&report, &self.context)
    }
}

impl Report {
    pub fn build(assessed: &Assessed, key_ids: KeyIdLabel) -> Report {
        let mut details = Vec::new();
        let mut summary = Vec::new();
        for account in &assessed.accounts {
            let data = &account.data;
            let tags: BTreeMap<&str, &BTreeMap<String, String>> =
                data.users.iter().map(|u| (&*u.name, &u.tags)).collect();
            for (key, a) in account.keys() {
                details.push(KeyRow {
                    account_id: account.id.clone(),
                    account_name: data.account_name.clone(),
                    user: key.user.to_string(),
                    key: key.position,
                    access_key_id: key_ids.render(key.access_key_id.as_deref()).to_string(),
                    status: key.status,
                    admin: key.privilege.map(|p| p.admin),
                    exposed: key.privilege.map(|p| p.quarantined),
                    facts: FactCells::of(key, a),
                    risk_reasons: a.reasons.iter().map(|r| r.describe()).collect(),
                    tags: tags.get(&*key.user).map(|t| (*t).clone()).unwrap_or_default(),
                });
            }
            let s = &account.summary;
            summary.push(AccountRow {
                account_id: account.id.clone(),
                account_name: data.account_name.clone(),
                up: account.up,
                users: s.users,
                keys: s.keys,
                active_keys: s.active_keys,
                high_risk_keys: s.high_risk_keys,
                admin_keys: s.admin_keys,
                exposed_keys: s.exposed_keys,
                users_multiple_active_keys: s.users_multiple_active_keys as i64,
                root_access_key_present: s.root_access_key_present,
                age_buckets: assessed
                    .policy
                    .age_buckets
                    .iter()
                    .cloned()
                    .zip(s.buckets.iter().copied())
                    .collect(),
            });
        }
        let high_risk = details.iter().filter(|r| r.high_risk()).cloned().collect();
        Report {
            generated: timestamp(assessed.now),
            details,
            high_risk,
            summary,
            not_read: assessed
                .not_read()
                .map(|(id, error)| NotRead {
                    account_id: id.to_string(),
                    error: error.map_or_else(|| "not read yet".to_string(), SourceError::describe),
                })
                .collect(),
            policy: assessed.policy.clone(),
        }
    }

    pub fn has_high_risk(&self) -> bool {
        !self.high_risk.is_empty()
    }

    /// The report in `format`; `table` picks the tables of the text formats
    /// (the HTML document always has them all), `context` is for HTML's header.
    pub fn render(&self, format: ReportFormat, table: ReportTable, context: &html::Context) -> String {
        let tables: Vec<Table> = [
            (
                ReportTable::Details,
                "Access key details",
                key_header(),
                self.details.iter().map(key_cells).collect(),
            ),
            (
                ReportTable::HighRisk,
                "High-risk access keys",
                key_header(),
                self.high_risk.iter().map(key_cells).collect(),
            ),
            (
                ReportTable::Summary,
                "Summary by account",
                self.summary_header(),
                self.summary_rows(),
            ),
        ]
        .into_iter()
        .filter(|(which, ..)| table == ReportTable::All || table == *which)
        .map(|(_, title, header, rows)| (title, header, rows))
        .collect();
        match format {
            ReportFormat::Html => html::render(self, context),
            ReportFormat::Json => {
                let value = match table {
                    ReportTable::All => serde_json::to_value(self),
                    ReportTable::Details => serde_json::to_value(&self.details),
                    ReportTable::HighRisk => serde_json::to_value(&self.high_risk),
                    ReportTable::Summary => serde_json::to_value(&self.summary),
                };
                let mut out = serde_json::to_string_pretty(&value.expect("report rows serialize"))
                    .expect("JSON value serializes");
                out.push('\n');
                out
            }
            ReportFormat::Csv => tables
                .iter()
                .map(|(_, header, rows)| csv_table(header, rows))
                .collect::<Vec<_>>()
                .join("\n"),
            ReportFormat::Table => {
                let mut out = tables
                    .iter()
                    .map(|(title, header, rows)| format!("{title} ({})\n{}", rows.len(), text_table(header, rows)))
                    .collect::<Vec<_>>()
                    .join("\n");
                if !self.not_read.is_empty() {
                    out.push_str(&format!(
                        "\nNot read ({}): their keys are in no table above\n",
                        self.not_read.len()
                    ));
                    for n in &self.not_read {
                        out.push_str(&format!("{}: {}\n", n.who(), n.error));
                    }
                }
                out
            }
        }
    }

    /// No account was read: the report holds no data, which is not a clean
    /// result.
    pub fn nothing_read(&self) -> bool {
        self.summary.is_empty()
    }

    /// One row per account read, then one per account not read with "not
    /// read" in every count, so that a failed account never reads as 0.
    fn summary_rows(&self) -> Vec<Vec<String>> {
        let width = self.summary_header().len();
        let unread = self.not_read.iter().map(|n| {
            let mut cells = vec![n.account_id.clone(), String::new(), "false".to_string()];
            cells.resize(width, NOT_READ.to_string());
            cells
        });
        self.summary.iter().map(summary_cells).chain(unread).collect()
    }

    fn summary_header(&self) -> Vec<String> {
        let mut header: Vec<String> = [
            "account_id",
            "account_name",
            "up",
            "users",
            "keys",
            "active_keys",
            "high_risk_keys",
            "admin_keys",
            "exposed_keys",
            "users_multiple_active_keys",
            "root_access_key_present",
        ]
        .map(String::from)
        .to_vec();
        header.extend(self.policy.age_buckets.iter().map(|label| format!("age_{label}")));
        header
    }
}

/// The cell of a count that is not known because the account was not read.
pub(crate) const NOT_READ: &str = "not read";

/// Times as every output writes them: RFC 3339 in UTC, whole seconds.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn key_header() -> Vec<String> {
    [
        "account_id",
        "account_name",
        "user",
        "key",
        "access_key_id",
        "status",
        "admin",
        "exposed",
    ]
    .into_iter()
    .chain(key_series::report_columns().into_iter().map(|(_, column)| column.name))
    .map(String::from)
    .collect()
}

fn key_cells(r: &KeyRow) -> Vec<String> {
    let mut cells = vec![
        r.account_id.clone(),
        r.account_name.clone(),
        r.user.clone(),
        r.key.to_string(),
        r.access_key_id.clone(),
        r.status.as_str().to_string(),
        known(r.admin),
        known(r.exposed),
    ];
    cells.extend(
        key_series::report_columns()
            .into_iter()
            .map(|(i, _)| r.facts.0[i].text()),
    );
    cells
}

/// A value that is only known when the source read it.
fn known(value: Option<impl ToString>) -> String {
    value.map_or_else(|| NOT_READ.to_string(), |v| v.to_string())
}

fn summary_cells(r: &AccountRow) -> Vec<String> {
    let mut cells = vec![
        r.account_id.clone(),
        r.account_name.clone(),
        r.up.to_string(),
        r.users.to_string(),
        r.keys.to_string(),
        r.active_keys.to_string(),
        r.high_risk_keys.to_string(),
        known(r.admin_keys),
        known(r.exposed_keys),
        r.users_multiple_active_keys.to_string(),
        r.root_access_key_present.to_string(),
    ];
    cells.extend(r.age_buckets.iter().map(|(_, n)| n.to_string()));
    cells
}

fn text_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let upper: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let mut out = line(&upper);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn csv_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing CSV records into memory cannot fail.
    writer.write_record(header).expect("in-memory CSV");
    for row in rows {
        writer
            .write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned()))
            .expect("in-memory CSV");
    }
    String::from_utf8(writer.into_inner().expect("in-memory CSV")).expect("CSV of UTF-8 cells is UTF-8")
}

/// A cell a spreadsheet will not run as a formula (CSV injection, the OWASP
/// rule): one that starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`. Account names from Organizations, user names
/// and the last-used service come from whoever can name them; no cell the
/// exporter makes itself (ids, times, counts) starts with these.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

#[cfg(test)]
mod tests;
