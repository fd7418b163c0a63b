//! The IAM credential report's CSV, as AWS writes it (and moto's variant of
//! it): text in, one account's data or an error naming the line out. Pure:
//! the live source ([`super::live_report`]) hands it AWS's bytes, the file
//! source ([`super::report_file`]) a file's.
//!
//! Longer than 400 lines with its tests: one file format and every shape real
//! reports take (booleans in any case, rows of one user merged, root keys, bad
//! rows skipped), kept together so that the format's rules are read in one place.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::intern::Interner;
use super::is_missing;
use crate::domain::ids::IamArn;
use crate::domain::key::{AccessKey, AccountData, KeyStatus, User, ROOT_USER};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("credential report line {line}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub message: String,
}

/// Values echoed into a log line or an error are cut to this many
/// characters: a report field can be megabytes long.
const ECHO_CHARS: usize = 100;

/// Skipped rows and merged users described one by one in the warnings; the
/// rest are counted in one more line, so a report of a million bad rows
/// cannot flood the log.
const MAX_WARNINGS: usize = 20;

struct Columns {
    user: usize,
    arn: usize,
    keys: [KeyColumns; 2],
    names: Vec<String>,
}

struct KeyColumns {
    active: usize,
    last_rotated: usize,
    last_used_date: usize,
    last_used_region: usize,
    last_used_service: usize,
}

impl Columns {
    fn find(header: &csv::StringRecord) -> Result<Columns, ParseError> {
        let index = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| ParseError {
                line: 1,
                message: format!("missing column {name:?} in the header"),
            })
        };
        let key = |n: u8| -> Result<KeyColumns, ParseError> {
            Ok(KeyColumns {
                active: index(&format!("access_key_{n}_active"))?,
                last_rotated: index(&format!("access_key_{n}_last_rotated"))?,
                last_used_date: index(&format!("access_key_{n}_last_used_date"))?,
                last_used_region: index(&format!("access_key_{n}_last_used_region"))?,
                last_used_service: index(&format!("access_key_{n}_last_used_service"))?,
            })
        };
        Ok(Columns {
            user: index("user")?,
            arn: index("arn")?,
            keys: [key(1)?, key(2)?],
            names: header.iter().map(|h| h.trim().to_string()).collect(),
        })
    }

    /// `column 10 (access_key_1_last_rotated)`, numbered from 1 like a spreadsheet.
    fn describe(&self, index: usize) -> String {
        format!("column {} ({})", index + 1, self.names[index])
    }
}

/// A row that could not be read: the column at fault, when one is, and why.
type RowError = (Option<usize>, String);

/// One row read: a user (or root) and the keys in its two columns.
struct Row {
    /// Shared by its keys.
    user: Arc<str>,
    /// `None` for the root row.
    path: Option<Arc<str>>,
    account_id: String,
    keys: [Option<AccessKey>; 2],
}

/// Everything known about one user, possibly from several rows. Its keys
/// stay in the one list of keys read, found by index: at 100,000 keys,
/// holding them here and moving them out at the end doubled the parser's
/// memory.
struct Entry {
    path: Option<Arc<str>>,
    keys: [Option<usize>; 2],
    line: u64,
    /// The lines of its further rows; empty, and so never allocated, for
    /// almost every user.
    more_lines: Vec<u64>,
}

/// Parses a whole report into one account's data. A file that is not a
/// credential report (no header, a required column missing) is an error; a
/// row that cannot be read is skipped and counted, so one bad row never
/// costs the account. Rows of one user are merged. Keys keep the number of
/// their column. The account id comes from the ARNs; it is empty for a report
/// without rows (AWS always writes the root row, moto does not), which only
/// the caller can place.
pub fn parse(text: &str) -> Result<AccountData, ParseError> {
    parse_reader(text.as_bytes())
}

/// [`parse`] from a stream, so that a large report file need not be held
/// whole in memory while it is read.
pub(super) fn parse_reader(input: impl std::io::Read) -> Result<AccountData, ParseError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let header = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
    if let Some(message) = not_a_report(&header) {
        return Err(ParseError { line: 1, message });
    }
    let columns = Columns::find(&header)?;

    let mut account_id = String::new();
    // Users by name, as indexes into `entries`, which keeps the report's order.
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut interner = Interner::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut keys: Vec<AccessKey> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut first_problem: Option<ParseError> = None;
    let mut skipped_rows = 0u64;
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        // A blank line (`flexible` reads it as one empty field) is no row.
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        rows += 1;
        let row = if record.len() == header.len() {
            parse_row(&record, &columns, &account_id, &mut interner)
        } else {
            match rejoin_unquoted_user(&record, header.len(), &columns) {
                Some(fixed) => parse_row(&fixed, &columns, &account_id, &mut interner),
                None => Err((
                    None,
                    format!("expected {} fields, found {}", header.len(), record.len()),
                )),
            }
        };
        let mut row = match row {
            Ok(row) => row,
            Err((column, message)) => {
                skipped_rows += 1;
                // Only the described ones are kept: a million bad rows must not cost memory.
                if skipped.len() < MAX_WARNINGS {
                    let place = column.map_or(String::new(), |c| format!(", {}", columns.describe(c)));
                    skipped.push(format!("credential report line {line}{place}: {message}; row skipped"));
                }
                let place = column.map_or(String::new(), |c| format!("{}: ", columns.describe(c)));
                first_problem.get_or_insert(ParseError {
                    line,
                    message: format!("{place}{message}"),
                });
                continue;
            }
        };
        if account_id.is_empty() {
            account_id = row.account_id;
        }
        let entry = match index.get_key_value(&row.user) {
            Some((name, &i)) => {
                // One allocation of the name for all of a user's keys, whichever row they came from.
                for key in row.keys.iter_mut().flatten() {
                    key.user = Arc::clone(name);
                }
                entries[i].more_lines.push(line);
                &mut entries[i]
            }
            None => {
                index.insert(row.user, entries.len());
                entries.push(Entry {
                    path: row.path,
                    keys: [None, None],
                    line,
                    more_lines: Vec::new(),
                });
                entries.last_mut().expect("just pushed")
            }
        };
        for (kept, new) in entry.keys.iter_mut().zip(row.keys) {
            let Some(new) = new else { continue };
            match *kept {
                None => {
                    *kept = Some(keys.len());
                    keys.push(new);
                }
                // Filled in both rows: the later rotation is the key now in the column.
                Some(k) if new.created >= keys[k].created => keys[k] = new,
                Some(_) => {}
            }
        }
    }
    drop(reader);
    // Grown by doubling: up to half of it would stay unused for as long as the data is kept.
    keys.shrink_to_fit();
    if let Some(mut first) = first_problem.filter(|_| skipped_rows == rows) {
        first.message += &format!(" (not one of the report's {rows} rows could be read)");
        return Err(first);
    }

    // The names move out of the index, with no copy of each.
    let mut names: Vec<Option<Arc<str>>> = vec![None; entries.len()];
    for (name, i) in index {
        names[i] = Some(name);
    }
    let mut users = Vec::with_capacity(entries.iter().filter(|e| e.path.is_some()).count());
    let mut root_access_key_present = false;
    let mut merged = Vec::new();
    for (entry, name) in entries.into_iter().zip(names) {
        let name = name.expect("every entry has a name in the index");
        if !entry.more_lines.is_empty() {
            let lines: Vec<String> = std::iter::once(entry.line)
                .chain(entry.more_lines)
                .map(|l| l.to_string())
                .collect();
            merged.push(format!(
                "credential report: user {} is listed on lines {}; its rows were merged",
                echo(&name),
                lines.join(", ")
            ));
        }
        match entry.path {
            None => root_access_key_present |= entry.keys.iter().any(Option::is_some),
            Some(path) => users.push(User::new(name, path)),
        }
    }
    // (user, position) is unique, so an unstable sort gives the one order
    // without the stable sort's scratch copy of the keys.
    keys.sort_unstable_by(|a, b| (&*a.user, a.position).cmp(&(&*b.user, b.position)));
    let mut data = AccountData {
        account_id,
        users,
        keys,
        root_access_key_present,
        credential_report_skipped_rows: Some(skipped_rows),
        ..AccountData::default()
    };
    if skipped_rows > MAX_WARNINGS as u64 {
        skipped.push(format!(
            "credential report: {} more rows skipped",
            skipped_rows - MAX_WARNINGS as u64
        ));
    }
    data.credential_report_warnings = skipped.into_iter().chain(bounded(merged)).collect();
    Ok(data)
}

/// At most `MAX_WARNINGS` merged users described, the rest counted in one more line.
fn bounded(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_WARNINGS {
        let more = lines.len() - MAX_WARNINGS;
        lines.truncate(MAX_WARNINGS);
        lines.push(format!(
            "credential report: {more} more users listed on several rows; their rows were merged"
        ));
    }
    lines
}

/// A value quoted for a message, cut to `ECHO_CHARS` characters.
fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &value[..end], value.len()),
    }
}

/// IAM user names may hold commas, and moto writes them unquoted: `a,b` then
/// spreads over two cells in the user column and two in the ARN column. The
/// row is put back together when the ARN's end proves where the name ends.
fn rejoin_unquoted_user(record: &csv::StringRecord, expected: usize, columns: &Columns) -> Option<csv::StringRecord> {
    // The name's commas stand once in the user cell and once in the ARN.
    let extra = record.len().checked_sub(expected).filter(|n| *n > 0 && n % 2 == 0)? / 2;
    if (columns.user, columns.arn) != (0, 1) {
        return None;
    }
    let cells: Vec<&str> = record.iter().collect();
    let user = cells[..=extra].join(",");
    let arn = cells[extra + 1..=2 * extra + 1].join(",");
    if !arn.ends_with(&format!("/{user}")) {
        return None;
    }
    let mut fixed = csv::StringRecord::new();
    fixed.push_field(&user);
    fixed.push_field(&arn);
    for cell in &cells[2 * extra + 2..] {
        fixed.push_field(cell);
    }
    Some(fixed)
}

fn csv_error(e: &csv::Error, line: u64) -> ParseError {
    let line = e.position().map_or(line, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} fields, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    ParseError { line, message }
}

/// One row; `account_id` is the account of the rows read so far (empty before the first).
fn parse_row(
    record: &csv::StringRecord,
    columns: &Columns,
    account_id: &str,
    interner: &mut Interner,
) -> Result<Row, RowError> {
    let field = |i: usize| record.get(i).unwrap_or("").trim();
    let user = field(columns.user);
    let arn = field(columns.arn);
    if user.is_empty() {
        return Err((Some(columns.user), "empty user name".into()));
    }
    let at_arn = |message| (Some(columns.arn), message);
    let IamArn {
        account: arn_account,
        resource,
        ..
    } = IamArn::parse(arn).ok_or_else(|| at_arn(format!("invalid ARN {}", echo(arn))))?;
    if !account_id.is_empty() && account_id != arn_account {
        return Err(at_arn(format!(
            "ARN {} belongs to account {arn_account}, but earlier rows belong to {account_id}",
            echo(arn)
        )));
    }
    let path = if user == ROOT_USER {
        None
    } else {
        let path = resource
            .strip_prefix("user")
            .and_then(|rest| rest.strip_suffix(user))
            .filter(|path| path.starts_with('/'))
            .ok_or_else(|| at_arn(format!("ARN {} is not the ARN of user {}", echo(arn), echo(user))))?;
        Some(interner.get(path))
    };

    let name: Arc<str> = Arc::from(user);
    let mut keys = [None, None];
    for (n, key) in columns.keys.iter().enumerate() {
        let active = parse_bool(field(key.active)).map_err(|e| (Some(key.active), e))?;
        let rotated = parse_time(field(key.last_rotated)).map_err(|e| (Some(key.last_rotated), e))?;
        let Some(created) = rotated else {
            if active {
                return Err((
                    Some(key.last_rotated),
                    "the key is active but has no last_rotated time".into(),
                ));
            }
            continue;
        };
        let last_used = parse_time(field(key.last_used_date)).map_err(|e| (Some(key.last_used_date), e))?;
        keys[n] = Some(
            AccessKey::new(Arc::clone(&name), created)
                .position(n as u8 + 1)
                .status(if active { KeyStatus::Active } else { KeyStatus::Inactive })
                .last_used(last_used)
                .last_used_in(
                    optional(field(key.last_used_service), interner),
                    optional(field(key.last_used_region), interner),
                ),
        );
    }
    Ok(Row {
        user: name,
        path,
        account_id: arn_account.to_string(),
        keys,
    })
}

/// AWS's documentation writes `TRUE`, its reports `true`; one real report
/// mixes both in a row.
fn parse_bool(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("expected true or false, found {}", echo(value)))
    }
}

fn parse_time(value: &str) -> Result<Option<DateTime<Utc>>, String> {
    if is_missing(value) {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| format!("invalid timestamp {} ({e})", echo(value)))
}

fn optional(value: &str, interner: &mut Interner) -> Option<Arc<str>> {
    (!is_missing(value)).then(|| interner.get(value))
}

/// The two first mistakes with a report file, each worded on its own
/// instead of as a missing column: an empty file, and the base64 text that
/// `aws iam get-credential-report --query Content --output text` prints
/// when `base64 -d` is left out.
fn not_a_report(header: &csv::StringRecord) -> Option<String> {
    let first = header.get(0).unwrap_or("").trim();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Some("the report is empty (a credential report starts with the header line \"user,arn,...\")".into());
    }
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    // "user,arn," encoded: every report's header starts so.
    if header.len() == 1 && (first.starts_with("dXNlcixhcm4") || (first.len() >= 64 && first.chars().all(base64))) {
        return Some(
            "the report is base64-encoded, as `aws iam get-credential-report` prints it: decode it first, \
e.g. `aws iam get-credential-report --query Content --output text | base64 -d > report.csv`"
                .into(),
        );
    }
    None
}

/// Why bytes are not a credential report: not text, or not a report.
#[derive(Debug)]
pub enum BytesError {
    NotUtf8(std::str::Utf8Error),
    Parse(ParseError),
}

/// A report as AWS or a file hands it over, as bytes; each caller words the
/// error for its own log line.
pub fn parse_bytes(bytes: &[u8]) -> Result<AccountData, BytesError> {
    let text = std::str::from_utf8(bytes).map_err(BytesError::NotUtf8)?;
    parse(text).map_err(BytesError::Parse)
}

/// The header row of every credential report, for the tests' reports.
#[cfg(test)]
pub(crate) const TEST_HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

/// A row of [`TEST_HEADER`]: user `ok`, no keys, for the tests' reports.
#[cfg(test)]
pub(crate) const TEST_ROW: &str = "ok,arn:aws:iam::111122223333:user/ok,2020-01-01T10:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use super::TEST_HEADER as HEADER;

    fn t(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, 10, 0, 0).unwrap()
    }

    fn key(user: &str, position: u8, status: KeyStatus, created: DateTime<Utc>) -> AccessKey {
        AccessKey::new(user, created).position(position).status(status)
    }

    /// AWS's real values: `N/A`, `no_information`, `not_supported`, the root row,
    /// a global service with region `N/A`, quoted names.
    #[test]
    fn parses_what_aws_writes() {
        let report = format!(
            "{HEADER}\n\
<root_account>,arn:aws:iam::111122223333:root,2016-01-01T10:00:00+00:00,not_supported,2026-01-01T10:00:00+00:00,not_supported,not_supported,true,false,2020-01-01T10:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
alice,arn:aws:iam::111122223333:user/alice,2020-01-01T10:00:00+00:00,true,no_information,2020-01-01T10:00:00+00:00,N/A,false,true,2024-02-01T10:00:00+00:00,2026-11-01T10:00:00+00:00,eu-west-1,s3,true,2023-01-01T10:00:00+00:00,2026-10-01T10:00:00+00:00,N/A,iam,false,N/A,false,N/A\n\
\"a=b,c\",\"arn:aws:iam::111122223333:user/ci/a=b,c\",2020-01-01T10:00:00+00:00,false,N/A,N/A,N/A,false,false,2021-01-01T10:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
nokeys,arn:aws:iam::111122223333:user/nokeys,2020-01-01T10:00:00+00:00,true,2026-11-01T10:00:00+00:00,2020-01-01T10:00:00+00:00,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        let data = parse(&report).unwrap();
        // Column 1 holds alice's newer key: `key` follows the column.
        let alice_new = key("alice", 1, KeyStatus::Active, t(2024, 2, 1))
            .last_used(t(2026, 11, 1))
            .last_used_in(Some("s3".into()), Some("eu-west-1".into()));
        let alice_old = key("alice", 2, KeyStatus::Active, t(2023, 1, 1))
            .last_used(t(2026, 10, 1))
            .last_used_in(Some("iam".into()), None);
        let expected = AccountData {
            account_id: "111122223333".into(),
            account_name: String::new(),
            users: vec![
                User::new("alice", "/"),
                User::new("a=b,c", "/ci/"),
                User::new("nokeys", "/"),
            ],
            keys: vec![
                key(ROOT_USER, 1, KeyStatus::Inactive, t(2020, 1, 1)),
                key("a=b,c", 1, KeyStatus::Inactive, t(2021, 1, 1)),
                alice_new,
                alice_old,
            ],
            root_access_key_present: true,
            credential_report_skipped_rows: Some(0),
            ..AccountData::default()
        };
        assert_eq!(data, expected);
        // One allocation for a repeated path, and for a user's name in its keys.
        assert!(Arc::ptr_eq(&data.users[0].path, &data.users[2].path));
        assert!(Arc::ptr_eq(&data.users[0].name, &data.keys[2].user));
        assert!(Arc::ptr_eq(&data.keys[2].user, &data.keys[3].user));
    }

    /// moto writes `not_supported` for the last-used region and service.
    #[test]
    fn parses_what_moto_writes() {
        let report = format!(
            "{HEADER}\nbob,arn:aws:iam::123456789012:user/bob,2026-11-28T10:00:00+00:00,false,not_supported,N/A,N/A,false,true,2026-11-28T10:00:00+00:00,2026-11-28T11:00:00+00:00,not_supported,not_supported,false,N/A,N/A,not_supported,not_supported,false,N/A,false,N/A\n"
        );
        let data = parse(&report).unwrap();
        assert!(!data.root_access_key_present);
        assert_eq!(
            data.keys,
            [key(
                "bob",
                1,
                KeyStatus::Active,
                Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
            )
            .last_used(Utc.with_ymd_and_hms(2026, 11, 28, 11, 0, 0).unwrap())]
        );
    }

    /// moto does not quote a user name with a comma.
    #[test]
    fn unquoted_commas_in_user_names_are_put_back_together() {
        let report = format!(
            "{HEADER}\ndave,eve,arn:aws:iam::123456789012:user/x/dave,eve,2026-11-28T10:00:00+00:00,false,not_supported,N/A,N/A,false,true,2026-11-28T10:00:00+00:00,N/A,not_supported,not_supported,false,N/A,N/A,not_supported,not_supported,false,N/A,false,N/A\n"
        );
        let data = parse(&report).unwrap();
        assert_eq!(&*data.users[0].name, "dave,eve");
        assert_eq!(&*data.users[0].path, "/x/");
        assert_eq!(&*data.keys[0].user, "dave,eve");
        let broken = report.replace("user/x/dave,eve", "user/x/dave,other");
        assert_eq!(
            parse(&broken).unwrap_err().to_string(),
            "credential report line 2: expected 22 fields, found 24 (not one of the report's 1 rows could be read)"
        );
    }

    #[test]
    fn root_without_keys_is_not_present() {
        let report = format!(
            "{HEADER}\n<root_account>,arn:aws:iam::111122223333:root,2016-01-01T10:00:00+00:00,not_supported,no_information,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        let data = parse(&report).unwrap();
        assert_eq!(
            (data.account_id.as_str(), data.root_access_key_present, data.users.len()),
            ("111122223333", false, 0)
        );
    }

    use super::TEST_ROW as GOOD;

    /// The user `ok` of `GOOD`, the one row left of a report whose other rows are bad.
    fn only_ok(warnings: &[&str], skipped: u64) -> AccountData {
        AccountData {
            account_id: "111122223333".into(),
            users: vec![User::new("ok", "/")],
            credential_report_skipped_rows: Some(skipped),
            credential_report_warnings: warnings.iter().map(|w| w.to_string()).collect(),
            ..AccountData::default()
        }
    }

    /// Every way a row can be wrong: the row is skipped with its line and
    /// column, the others are read.
    #[test]
    fn bad_rows_are_skipped_and_named_by_line_and_column() {
        let bad_date = GOOD
            .replace("false,N/A,N/A,N/A,N/A,false", "true,2020-13-01,N/A,N/A,N/A,false")
            .replace("ok", "date");
        let cases = [
            ("short,row\n".to_string(), "credential report line 2: expected 22 fields, found 2; row skipped"),
            (
                GOOD.replace("false,N/A,N/A,N/A,N/A,false", "yes,N/A,N/A,N/A,N/A,false").replace("ok", "b"),
                "credential report line 2, column 9 (access_key_1_active): expected true or false, found \"yes\"; row skipped",
            ),
            (
                GOOD.replace("false,N/A,N/A,N/A,N/A,false", "true,N/A,N/A,N/A,N/A,false").replace("ok", "c"),
                "credential report line 2, column 10 (access_key_1_last_rotated): the key is active but has no last_rotated time; row skipped",
            ),
            (
                bad_date,
                "credential report line 2, column 10 (access_key_1_last_rotated): invalid timestamp \"2020-13-01\" (premature end of input); row skipped",
            ),
            (
                GOOD.replace("arn:aws:iam::111122223333:user/ok", "arn:aws:s3:::bucket"),
                "credential report line 2, column 2 (arn): invalid ARN \"arn:aws:s3:::bucket\"; row skipped",
            ),
            (
                GOOD.replace("user/ok", "user/someone-else"),
                "credential report line 2, column 2 (arn): ARN \"arn:aws:iam::111122223333:user/someone-else\" is not the ARN of user \"ok\"; row skipped",
            ),
            (
                GOOD.replace("ok,arn", ",arn"),
                "credential report line 2, column 1 (user): empty user name; row skipped",
            ),
        ];
        for (bad, warning) in cases {
            let data = parse(&format!("{HEADER}\n{bad}{GOOD}")).unwrap();
            assert_eq!(data, only_ok(&[warning], 1), "rows: {bad}");
        }
        // A row of another account, after one that set the account.
        let other = GOOD.replace("111122223333", "999988887777").replace("ok,", "other,");
        assert_eq!(
            parse(&format!("{HEADER}\n{GOOD}{other}")).unwrap(),
            only_ok(&["credential report line 3, column 2 (arn): ARN \"arn:aws:iam::999988887777:user/other\" belongs to account 999988887777, but earlier rows belong to 111122223333; row skipped"], 1)
        );
    }

    /// A report that has rows but none readable is not taken for an empty account.
    #[test]
    fn a_report_of_only_bad_rows_is_rejected() {
        let err = parse(&format!("{HEADER}\nshort,row\nother,row\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential report line 2: expected 22 fields, found 2 (not one of the report's 2 rows could be read)"
        );
    }

    /// A 10 MB field is echoed as its first 100 characters.
    #[test]
    fn echoed_values_are_cut() {
        let huge = "9".repeat(10 << 20);
        let row = GOOD
            .replace("false,N/A,N/A,N/A,N/A,false", &format!("true,{huge},N/A,N/A,N/A,false"))
            .replace("ok", "big");
        let data = parse(&format!("{HEADER}\n{row}{GOOD}")).unwrap();
        let expected = format!(
            "credential report line 2, column 10 (access_key_1_last_rotated): invalid timestamp \"{}\"... (10485760 bytes) (input contains invalid characters); row skipped",
            "9".repeat(100)
        );
        assert_eq!(data, only_ok(&[&expected], 1));
    }

    /// Thousands of bad rows: every one counted, twenty described.
    #[test]
    fn warnings_are_bounded() {
        let bad = "short,row\n".repeat(1000);
        let data = parse(&format!("{HEADER}\n{GOOD}{bad}")).unwrap();
        assert_eq!(data.credential_report_skipped_rows, Some(1000));
        assert_eq!(data.credential_report_warnings.len(), 21);
        assert_eq!(
            data.credential_report_warnings[20],
            "credential report: 980 more rows skipped"
        );
        let repeated: String = (0..30)
            .map(|i| GOOD.replace("ok", &format!("u{i}")).repeat(2))
            .collect();
        let data = parse(&format!("{HEADER}\n{repeated}")).unwrap();
        assert_eq!(data.users.len(), 30);
        assert_eq!(data.credential_report_warnings.len(), 21);
        assert_eq!(
            data.credential_report_warnings[0],
            "credential report: user \"u0\" is listed on lines 2, 3; its rows were merged"
        );
        assert_eq!(
            data.credential_report_warnings[20],
            "credential report: 10 more users listed on several rows; their rows were merged"
        );
    }

    /// Only the caller can place a report without rows (moto writes no root row).
    #[test]
    fn a_report_without_rows_has_no_account() {
        let data = parse(&format!("{HEADER}\n")).unwrap();
        assert_eq!((data.account_id.as_str(), data.users.len()), ("", 0));
    }

    #[test]
    fn missing_column_is_named() {
        let err = parse("user,arn\nx,arn:aws:iam::111122223333:user/x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential report line 1: missing column \"access_key_1_active\" in the header"
        );
    }

    #[test]
    fn bundled_sample_report_parses() {
        let data = parse(include_str!("../../../examples/credential-report.csv")).unwrap();
        assert_eq!(data.account_id, "123456789012");
        assert!(data.users.len() >= 40, "sample has {} users", data.users.len());
        assert!(data.root_access_key_present);
    }

    /// A row of `HEADER` for `user` (ARN `user/NAME`) with two key columns,
    /// each `(active, last_rotated, last_used)` or `None` for an empty column.
    fn row(user: &str, keys: [Option<(&str, &str, &str)>; 2]) -> String {
        let arn = if user == ROOT_USER {
            "arn:aws:iam::111122223333:root".to_string()
        } else {
            format!("arn:aws:iam::111122223333:user/{user}")
        };
        let mut cells = vec![user.to_string(), arn, "2015-01-01T10:00:00+00:00".into()];
        cells.extend(["false", "N/A", "N/A", "N/A", "false"].map(String::from));
        for key in keys {
            match key {
                None => cells.extend(["false", "N/A", "N/A", "N/A", "N/A"].map(String::from)),
                Some((active, rotated, used)) => {
                    let (region, service) = if used == "N/A" {
                        ("N/A", "N/A")
                    } else {
                        ("us-east-1", "s3")
                    };
                    cells.extend([active, rotated, used, region, service].map(String::from));
                }
            }
        }
        cells.extend(["false", "N/A", "false", "N/A"].map(String::from));
        cells.join(",") + "\n"
    }

    fn used(key: AccessKey, when: DateTime<Utc>) -> AccessKey {
        key.last_used(when)
            .last_used_in(Some("s3".into()), Some("us-east-1".into()))
    }

    fn user(name: &str) -> User {
        User::new(name, "/")
    }

    fn report_data(users: &[&str], keys: Vec<AccessKey>, warnings: &[&str]) -> AccountData {
        AccountData {
            account_id: "111122223333".into(),
            users: users.iter().map(|u| user(u)).collect(),
            keys,
            credential_report_skipped_rows: Some(0),
            credential_report_warnings: warnings.iter().map(|w| w.to_string()).collect(),
            ..AccountData::default()
        }
    }

    const T2020: &str = "2020-01-01T10:00:00+00:00";
    const T2021: &str = "2021-01-01T10:00:00+00:00";
    const T2024: &str = "2024-02-01T10:00:00+00:00";

    /// AWS's documentation writes `TRUE`/`FALSE`; one real report mixes cases in a row.
    #[test]
    fn booleans_in_any_case() {
        let report = format!(
            "{HEADER}\n{}{}",
            row("upper", [Some(("TRUE", T2020, "N/A")), Some(("FALSE", T2021, "N/A"))]),
            row("mixed", [Some(("True", T2020, "N/A")), Some(("fAlSe", T2021, "N/A"))]),
        )
        .replace("false,N/A,N/A,N/A,false", "FALSE,N/A,N/A,N/A,false");
        let expected = report_data(
            &["upper", "mixed"],
            vec![
                key("mixed", 1, KeyStatus::Active, t(2020, 1, 1)),
                key("mixed", 2, KeyStatus::Inactive, t(2021, 1, 1)),
                key("upper", 1, KeyStatus::Active, t(2020, 1, 1)),
                key("upper", 2, KeyStatus::Inactive, t(2021, 1, 1)),
            ],
            &[],
        );
        assert_eq!(parse(&report).unwrap(), expected);
    }

    /// `key` is the report's column: column 1 holds the newer key here.
    #[test]
    fn key_is_the_column_even_when_key_1_is_newer() {
        let report = format!(
            "{HEADER}\n{}",
            row(
                "carol",
                [
                    Some(("true", T2024, "N/A")),
                    Some(("true", T2020, "2026-01-01T10:00:00Z"))
                ]
            )
        );
        let expected = report_data(
            &["carol"],
            vec![
                key("carol", 1, KeyStatus::Active, t(2024, 2, 1)),
                used(key("carol", 2, KeyStatus::Active, t(2020, 1, 1)), t(2026, 1, 1)),
            ],
            &[],
        );
        assert_eq!(parse(&report).unwrap(), expected);
    }

    /// A user on two rows is one user: a column filled in one row is taken
    /// from it, filled in both the later rotation wins, and one warning names
    /// the user.
    #[test]
    fn rows_of_one_user_are_merged() {
        let report = format!(
            "{HEADER}\n{}{}{}{}{}",
            // dup: a key and a password use in one row, nothing in the other.
            row("dup", [Some(("true", T2021, "N/A")), None]),
            row("solo", [None, None]),
            row("dup", [None, None]),
            // both: keys in both rows, column 1 in both.
            row("both", [Some(("true", T2020, "N/A")), None]),
            row("both", [Some(("false", T2024, "N/A")), Some(("true", T2021, "N/A"))]),
        );
        let expected = report_data(
            &["dup", "solo", "both"],
            vec![
                key("both", 1, KeyStatus::Inactive, t(2024, 2, 1)),
                key("both", 2, KeyStatus::Active, t(2021, 1, 1)),
                key("dup", 1, KeyStatus::Active, t(2021, 1, 1)),
            ],
            &[
                "credential report: user \"dup\" is listed on lines 2, 4; its rows were merged",
                "credential report: user \"both\" is listed on lines 5, 6; its rows were merged",
            ],
        );
        let data = parse(&report).unwrap();
        assert_eq!(data, expected);
        // Keys of a later row share the name read first.
        let both = data.users.iter().find(|u| &*u.name == "both").unwrap();
        assert!(data.keys[..2].iter().all(|k| Arc::ptr_eq(&k.user, &both.name)));
        // The later rotation wins whichever row comes first.
        let swapped = format!(
            "{HEADER}\n{}{}",
            row("both", [Some(("false", T2024, "N/A")), None]),
            row("both", [Some(("true", T2020, "N/A")), None]),
        );
        assert_eq!(
            parse(&swapped).unwrap().keys,
            [key("both", 1, KeyStatus::Inactive, t(2024, 2, 1))]
        );
    }

    /// Root's keys are keys, under `<root_account>`; root is no IAM user.
    #[test]
    fn root_keys_are_exported_per_key() {
        let report = format!(
            "{HEADER}\n{}{}",
            row(
                ROOT_USER,
                [
                    Some(("true", "2011-05-01T10:00:00+00:00", "N/A")),
                    Some(("false", T2024, "N/A"))
                ]
            ),
            row("alice", [None, None]),
        );
        let data = parse(&report).unwrap();
        let expected = AccountData {
            root_access_key_present: true,
            ..report_data(
                &["alice"],
                vec![
                    key(ROOT_USER, 1, KeyStatus::Active, t(2011, 5, 1)),
                    key(ROOT_USER, 2, KeyStatus::Inactive, t(2024, 2, 1)),
                ],
                &[],
            )
        };
        assert_eq!(data, expected);
        let root_only = format!("{HEADER}\n{}", row(ROOT_USER, [Some(("false", T2020, "N/A")), None]));
        let data = parse(&root_only).unwrap();
        assert_eq!(
            (data.users.len(), data.keys.len(), data.root_access_key_present),
            (0, 1, true)
        );
    }

    /// A bad date in one row costs that row only.
    #[test]
    fn a_bad_date_among_good_rows_skips_its_row() {
        let report = format!(
            "{HEADER}\n{}{}{}",
            row("before", [Some(("true", T2020, "N/A")), None]),
            row("bad", [Some(("true", "last tuesday", "N/A")), None]),
            row("after", [None, Some(("false", T2021, "N/A"))]),
        );
        let expected = AccountData {
            credential_report_skipped_rows: Some(1),
            ..report_data(
                &["before", "after"],
                vec![
                    key("after", 2, KeyStatus::Inactive, t(2021, 1, 1)),
                    key("before", 1, KeyStatus::Active, t(2020, 1, 1)),
                ],
                &["credential report line 3, column 10 (access_key_1_last_rotated): invalid timestamp \"last tuesday\" (premature end of input); row skipped"],
            )
        };
        assert_eq!(parse(&report).unwrap(), expected);
    }

    /// What real reports look like and was read before stays read: CRLF, a
    /// BOM, no final newline, blank trailing lines, every field quoted, `Z`
    /// and `+00:00`, extra trailing columns, a date in the future.
    #[test]
    fn real_world_shapes_are_read_exactly() {
        let plain = format!(
            "{HEADER}\n{}{}",
            row(
                "alice",
                [
                    Some(("true", "2020-01-01T10:00:00Z", "2099-01-01T10:00:00+00:00")),
                    None
                ]
            ),
            row("bob", [None, Some(("false", T2021, "N/A"))]),
        );
        let expected = parse(&plain).unwrap();
        assert_eq!(
            expected,
            report_data(
                &["alice", "bob"],
                vec![
                    used(key("alice", 1, KeyStatus::Active, t(2020, 1, 1)), t(2099, 1, 1)),
                    key("bob", 2, KeyStatus::Inactive, t(2021, 1, 1)),
                ],
                &[]
            )
        );
        let quoted: String = plain
            .lines()
            .map(|l| l.split(',').map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(",") + "\n")
            .collect();
        let extra_columns: String = plain.lines().map(|l| format!("{l},extra\n")).collect();
        let shapes = [
            ("CRLF", plain.replace('\n', "\r\n")),
            ("BOM", format!("\u{feff}{plain}")),
            ("no final newline", plain.trim_end().to_string()),
            ("blank trailing lines", format!("{plain}\n\n\r\n")),
            ("quoted", quoted),
            ("extra columns", extra_columns),
        ];
        for (shape, text) in shapes {
            assert_eq!(parse(&text).as_ref(), Ok(&expected), "{shape}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    use super::TEST_HEADER as HEADER;

    /// One key slot: (active, rotated secs, used secs after rotation).
    type Slot = Option<(bool, i64, Option<i64>)>;

    fn slot() -> impl Strategy<Value = Slot> {
        proptest::option::of((
            any::<bool>(),
            1_400_000_000i64..1_800_000_000,
            proptest::option::of(0i64..100_000_000),
        ))
    }

    fn time(secs: i64) -> String {
        DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339()
    }

    proptest! {
        /// Whatever bytes arrive, the parser answers with data or an error
        /// naming a line; it never panics.
        #[test]
        fn arbitrary_input_never_panics(text in "\\PC{0,400}") {
            if let Err(e) = parse(&format!("{HEADER}\n{text}")) {
                prop_assert!(e.line >= 1);
            }
        }

        /// Reports written the way AWS writes them parse back to the same
        /// users and keys.
        #[test]
        fn well_formed_reports_round_trip(
            users in proptest::collection::btree_map("[a-zA-Z0-9+=,.@_-]{1,20}", (slot(), slot()), 0..30),
        ) {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(HEADER.split(',')).unwrap();
            let mut expected_keys = 0;
            for (name, slots) in &users {
                let mut row = vec![name.clone(), format!("arn:aws:iam::111122223333:user/{name}"), time(1_300_000_000),
                    "false".into(), "N/A".into(), "N/A".into(), "N/A".into(), "false".into()];
                for slot in [slots.0, slots.1] {
                    match slot {
                        None => row.extend(["false", "N/A", "N/A", "N/A", "N/A"].map(String::from)),
                        Some((active, rotated, used)) => {
                            expected_keys += 1;
                            row.push(active.to_string());
                            row.push(time(rotated));
                            match used {
                                Some(after) => row.extend([time(rotated + after), "us-east-1".into(), "s3".into()]),
                                None => row.extend(["N/A", "N/A", "N/A"].map(String::from)),
                            }
                        }
                    }
                }
                row.extend(["false", "N/A", "false", "N/A"].map(String::from));
                writer.write_record(&row).unwrap();
            }
            let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let data = parse(&text).unwrap();
            prop_assert_eq!(data.users.len(), users.len());
            prop_assert_eq!(data.keys.len(), expected_keys);
            for key in &data.keys {
                prop_assert!(key.position == 1 || key.position == 2);
                prop_assert!(key.last_used.is_none_or(|u| u >= key.created));
            }
        }

        /// However often users repeat, with whatever keys in each row: one
        /// user each, keys only in columns 1 and 2, no series twice, and each
        /// column's key is the latest rotation any of the user's rows holds.
        #[test]
        fn merging_repeated_rows_never_duplicates_a_series(
            rows in proptest::collection::vec((0usize..4, slot(), slot()), 1..40),
        ) {
            let names = ["a", "b", "c", ROOT_USER];
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(HEADER.split(',')).unwrap();
            let mut latest: std::collections::BTreeMap<(&str, u8), i64> = Default::default();
            for (who, one, two) in &rows {
                let name = names[*who];
                let arn = if name == ROOT_USER {
                    "arn:aws:iam::111122223333:root".to_string()
                } else {
                    format!("arn:aws:iam::111122223333:user/{name}")
                };
                let mut row = vec![name.to_string(), arn, time(1_300_000_000),
                    "false".into(), "N/A".into(), "N/A".into(), "N/A".into(), "false".into()];
                for (n, slot) in [(1u8, one), (2, two)] {
                    match slot {
                        None => row.extend(["false", "N/A", "N/A", "N/A", "N/A"].map(String::from)),
                        Some((active, rotated, _)) => {
                            let best = latest.entry((name, n)).or_insert(*rotated);
                            *best = (*best).max(*rotated);
                            row.extend([active.to_string(), time(*rotated), "N/A".into(), "N/A".into(), "N/A".into()]);
                        }
                    }
                }
                row.extend(["false", "N/A", "false", "N/A"].map(String::from));
                writer.write_record(&row).unwrap();
            }
            let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let data = parse(&text).unwrap();
            let mut series = std::collections::BTreeSet::new();
            for key in &data.keys {
                prop_assert!(key.position == 1 || key.position == 2);
                prop_assert!(series.insert((key.user.clone(), key.position)), "{} key {} twice", key.user, key.position);
                prop_assert_eq!(Some(&key.created.timestamp()), latest.get(&(&*key.user, key.position)));
            }
            prop_assert_eq!(series.len(), latest.len());
            let users: std::collections::BTreeSet<&str> = data.users.iter().map(|u| &*u.name).collect();
            prop_assert_eq!(users.len(), data.users.len(), "a user listed twice");
            let expected: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| names[r.0]).filter(|n| *n != ROOT_USER).collect();
            prop_assert_eq!(users, expected);
        }
    }

    /// An empty file and a base64-encoded report each say what they are,
    /// not that a column is missing.
    #[test]
    fn an_empty_or_base64_report_says_so() {
        for empty in ["", "\n", "\r\n\r\n"] {
            let e = parse(empty).unwrap_err();
            assert_eq!(e.line, 1);
            assert!(e.message.starts_with("the report is empty"), "{empty:?}: {}", e.message);
        }
        use base64::Engine as _;
        let report = format!("{HEADER}\n{}", super::TEST_ROW);
        let encoded = base64::engine::general_purpose::STANDARD.encode(report);
        for text in [encoded.clone(), format!("{encoded}\n")] {
            let e = parse(&text).unwrap_err();
            assert!(
                e.message.contains("base64-encoded") && e.message.contains("base64 -d"),
                "{}",
                e.message
            );
        }
        let e = parse("name,arn\nx,y\n").unwrap_err();
        assert_eq!(
            e.message, "missing column \"user\" in the header",
            "other files as before"
        );
    }
}
