//! The IAM credential report: parsing the CSV that AWS writes (and moto's
//! variant of it), and reading it from a file.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{is_missing, AccessKey, AccountData, ErrorReason, KeyStatus, SourceError, User};

const ROOT_USER: &str = "<root_account>";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("credential report line {line}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub message: String,
}

struct Columns {
    user: usize,
    arn: usize,
    keys: [KeyColumns; 2],
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
        })
    }
}

/// Parses a whole report into one account's data. Every row must be valid:
/// a report that is wrong in one place is rejected whole, so that a bad file
/// never replaces good data with half of it. The account id comes from the
/// ARNs; it is empty for a report without rows (AWS always writes the root
/// row, moto does not), which only the caller can place.
pub fn parse(text: &str) -> Result<AccountData, ParseError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
    let columns = Columns::find(&header)?;

    let mut data = AccountData::default();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        let fail = |message| ParseError { line, message };
        if record.len() != header.len() {
            record = rejoin_unquoted_user(&record, header.len(), &columns)
                .ok_or_else(|| fail(format!("expected {} fields, found {}", header.len(), record.len())))?;
        }
        parse_row(&record, &columns, &mut data).map_err(fail)?;
    }
    super::number_keys_by_creation(&mut data.keys);
    Ok(data)
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

fn parse_row(record: &csv::StringRecord, columns: &Columns, data: &mut AccountData) -> Result<(), String> {
    let field = |i: usize| record.get(i).unwrap_or("").trim();
    let user = field(columns.user);
    let arn = field(columns.arn);
    if user.is_empty() {
        return Err("empty user name".into());
    }
    let (account_id, resource) = parse_arn(arn).ok_or_else(|| format!("invalid ARN {arn:?}"))?;
    if data.account_id.is_empty() {
        data.account_id = account_id.to_string();
    } else if data.account_id != account_id {
        return Err(format!(
            "ARN {arn:?} belongs to account {account_id}, but earlier rows belong to {}",
            data.account_id
        ));
    }

    let mut keys = Vec::with_capacity(2);
    for (n, key) in columns.keys.iter().enumerate() {
        let n = n + 1;
        let active = parse_bool(field(key.active)).map_err(|e| format!("access_key_{n}_active: {e}"))?;
        let rotated = parse_time(field(key.last_rotated)).map_err(|e| format!("access_key_{n}_last_rotated: {e}"))?;
        let Some(created) = rotated else {
            if active {
                return Err(format!("access_key_{n} is active but has no last_rotated time"));
            }
            continue;
        };
        let last_used =
            parse_time(field(key.last_used_date)).map_err(|e| format!("access_key_{n}_last_used_date: {e}"))?;
        keys.push(AccessKey {
            user: user.to_string(),
            position: n as u8,
            access_key_id: None,
            status: if active { KeyStatus::Active } else { KeyStatus::Inactive },
            created,
            last_used,
            last_used_service: optional(field(key.last_used_service)),
            last_used_region: optional(field(key.last_used_region)),
        });
    }

    if user == ROOT_USER {
        // Root keys are reported as presence only, as GetAccountSummary does in
        // the API source, so that both sources export the same series.
        data.root_access_key_present |= !keys.is_empty();
        return Ok(());
    }
    let path = resource
        .strip_prefix("user")
        .and_then(|rest| rest.strip_suffix(user))
        .filter(|path| path.starts_with('/'))
        .ok_or_else(|| format!("ARN {arn:?} is not the ARN of user {user:?}"))?;
    data.users.push(User {
        name: user.to_string(),
        path: path.to_string(),
        tags: Default::default(),
    });
    data.keys.extend(keys);
    Ok(())
}

/// `arn:PARTITION:iam::ACCOUNT:RESOURCE` -> (ACCOUNT, RESOURCE).
fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, _partition, service, _region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let (account, resource) = (parts.next()?, parts.next()?);
    let valid =
        scheme == "arn" && service == "iam" && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((account, resource))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("expected true or false, found {other:?}")),
    }
}

fn parse_time(value: &str) -> Result<Option<DateTime<Utc>>, String> {
    if is_missing(value) {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| format!("invalid timestamp {value:?} ({e})"))
}

fn optional(value: &str) -> Option<String> {
    (!is_missing(value)).then(|| value.to_string())
}

/// Reads and parses a report file. The file's modification time stands for
/// the time the report was generated, which the CSV does not carry.
pub fn read_file(path: &Path) -> Result<AccountData, SourceError> {
    let fail = |reason, message: String| SourceError::new(reason, format!("{}: {message}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| fail(ErrorReason::Other, format!("cannot read: {e}")))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| fail(ErrorReason::InvalidResponse, format!("not UTF-8: {e}")))?;
    let mut data = parse(text).map_err(|e| fail(ErrorReason::InvalidResponse, e.to_string()))?;
    if data.account_id.is_empty() {
        let message = "credential report line 1: the report has no rows, so its account is unknown".to_string();
        return Err(fail(ErrorReason::InvalidResponse, message));
    }
    data.credential_report_generated = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    fn t(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, 10, 0, 0).unwrap()
    }

    fn key(user: &str, position: u8, status: KeyStatus, created: DateTime<Utc>) -> AccessKey {
        AccessKey {
            user: user.into(),
            position,
            access_key_id: None,
            status,
            created,
            last_used: None,
            last_used_service: None,
            last_used_region: None,
        }
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
        let alice_new = AccessKey {
            last_used: Some(t(2026, 11, 1)),
            last_used_service: Some("s3".into()),
            last_used_region: Some("eu-west-1".into()),
            ..key("alice", 2, KeyStatus::Active, t(2024, 2, 1))
        };
        let alice_old = AccessKey {
            last_used: Some(t(2026, 10, 1)),
            last_used_service: Some("iam".into()),
            ..key("alice", 1, KeyStatus::Active, t(2023, 1, 1))
        };
        let expected = AccountData {
            account_id: "111122223333".into(),
            account_name: String::new(),
            users: vec![
                User {
                    name: "alice".into(),
                    path: "/".into(),
                    tags: Default::default(),
                },
                User {
                    name: "a=b,c".into(),
                    path: "/ci/".into(),
                    tags: Default::default(),
                },
                User {
                    name: "nokeys".into(),
                    path: "/".into(),
                    tags: Default::default(),
                },
            ],
            keys: vec![
                key("a=b,c", 1, KeyStatus::Inactive, t(2021, 1, 1)),
                alice_old,
                alice_new,
            ],
            root_access_key_present: true,
            credential_report_generated: None,
        };
        assert_eq!(data, expected);
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
            [AccessKey {
                last_used: Some(Utc.with_ymd_and_hms(2026, 11, 28, 11, 0, 0).unwrap()),
                ..key(
                    "bob",
                    1,
                    KeyStatus::Active,
                    Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
                )
            }]
        );
    }

    /// moto does not quote a user name with a comma.
    #[test]
    fn unquoted_commas_in_user_names_are_put_back_together() {
        let report = format!(
            "{HEADER}\ndave,eve,arn:aws:iam::123456789012:user/x/dave,eve,2026-11-28T10:00:00+00:00,false,not_supported,N/A,N/A,false,true,2026-11-28T10:00:00+00:00,N/A,not_supported,not_supported,false,N/A,N/A,not_supported,not_supported,false,N/A,false,N/A\n"
        );
        let data = parse(&report).unwrap();
        assert_eq!(data.users[0].name, "dave,eve");
        assert_eq!(data.users[0].path, "/x/");
        assert_eq!(data.keys[0].user, "dave,eve");
        let broken = report.replace("user/x/dave,eve", "user/x/dave,other");
        assert_eq!(
            parse(&broken).unwrap_err().to_string(),
            "credential report line 2: expected 22 fields, found 24"
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

    fn error_of(rows: &str) -> String {
        parse(&format!("{HEADER}\n{rows}")).unwrap_err().to_string()
    }

    const GOOD: &str = "ok,arn:aws:iam::111122223333:user/ok,2020-01-01T10:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n";

    #[test]
    fn malformed_reports_name_the_line_and_the_problem() {
        let cases = [
            (format!("{GOOD}short,row\n"), "credential report line 3: expected 22 fields, found 2"),
            (
                format!("{GOOD}{}", GOOD.replace("false,N/A,N/A,N/A,N/A,false", "yes,N/A,N/A,N/A,N/A,false")),
                "credential report line 3: access_key_1_active: expected true or false, found \"yes\"",
            ),
            (
                GOOD.replace("false,N/A,N/A,N/A,N/A,false", "true,N/A,N/A,N/A,N/A,false"),
                "credential report line 2: access_key_1 is active but has no last_rotated time",
            ),
            (
                GOOD.replace("false,N/A,N/A,N/A,N/A,false", "true,2020-13-01,N/A,N/A,N/A,false"),
                "credential report line 2: access_key_1_last_rotated: invalid timestamp \"2020-13-01\" (premature end of input)",
            ),
            (GOOD.replace("arn:aws:iam::111122223333:user/ok", "arn:aws:s3:::bucket"), "credential report line 2: invalid ARN \"arn:aws:s3:::bucket\""),
            (
                format!("{GOOD}{}", GOOD.replace("111122223333", "999988887777").replace("ok,", "other,")),
                "credential report line 3: ARN \"arn:aws:iam::999988887777:user/other\" belongs to account 999988887777, but earlier rows belong to 111122223333",
            ),
            (GOOD.replace("user/ok", "user/someone-else"), "credential report line 2: ARN \"arn:aws:iam::111122223333:user/someone-else\" is not the ARN of user \"ok\""),
        ];
        for (rows, expected) in cases {
            assert_eq!(error_of(&rows), expected, "rows: {rows}");
        }
    }

    #[test]
    fn a_report_without_rows_has_no_account_and_a_file_of_it_is_rejected() {
        let data = parse(&format!("{HEADER}\n")).unwrap();
        assert_eq!((data.account_id.as_str(), data.users.len()), ("", 0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.csv");
        std::fs::write(&path, format!("{HEADER}\n")).unwrap();
        let err = read_file(&path).unwrap_err();
        assert_eq!(err.reason, ErrorReason::InvalidResponse);
        assert!(err
            .message
            .ends_with("credential report line 1: the report has no rows, so its account is unknown"));
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
        let data = parse(include_str!("../../examples/credential-report.csv")).unwrap();
        assert_eq!(data.account_id, "123456789012");
        assert!(data.users.len() >= 40, "sample has {} users", data.users.len());
        assert!(data.root_access_key_present);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

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
    }
}
