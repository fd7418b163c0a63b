//! The report file as a source (`--credential-report.file`): one account's
//! credential report, written by something else, read only once it holds
//! still and again when its content or identity changes (looked at every
//! [`POLL`]), and every interval. Reading, hashing and telling versions apart
//! is [`ReportFile`]; what a read means to the refresh (the first read retried
//! while the file is being written, the account id learned from it, a file
//! being written for a whole interval failing the account) is
//! [`ReportFileSource`]. The CSV itself is [`super::report_csv`]'s.

use std::hash::Hasher as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use super::report_csv::{self, BytesError};
use super::{Occasion, UserFilter};
use crate::collect::file_watch::{FileMeta, POLL};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::AccountData;

/// Looks at a file being written before the first read (the first refresh,
/// the `report` command) gives up on it.
const FILE_ATTEMPTS: u32 = 5;

/// The report file and what the refresh learned from it.
#[derive(Debug)]
pub struct ReportFileSource {
    file: ReportFile,
    /// The account id learned by the last successful read.
    known_id: Option<String>,
    /// Since when the file has been seen being written, for one log line per
    /// spell of writing and to give up after an interval of it.
    changing_since: Option<Instant>,
}

impl ReportFileSource {
    pub fn new(path: PathBuf) -> ReportFileSource {
        ReportFileSource {
            file: ReportFile::new(path),
            known_id: None,
            changing_since: None,
        }
    }

    /// The account the file held when it was last read.
    pub fn known_id(&self) -> Option<&str> {
        self.known_id.as_deref()
    }

    /// Reads the file for `occasion`, without the users `filter` excludes;
    /// `None` when there is nothing new to publish: unchanged since the last
    /// read, or being written (a due read is then asked for again at once).
    pub async fn read(
        &mut self,
        occasion: Occasion,
        interval: Duration,
        filter: &UserFilter,
    ) -> Option<Result<AccountData, SourceError>> {
        let result = match occasion {
            Occasion::First => Some(self.first_read().await),
            Occasion::Due => self.look(true, interval).await,
            Occasion::Look => self.look(false, interval).await,
        }?;
        let result = result.map(|mut data| {
            filter.apply(&mut data);
            data
        });
        if let Ok(data) = &result {
            self.known_id = Some(data.account_id.clone());
        }
        Some(result)
    }

    /// The first read must answer: a file being written is looked at again,
    /// up to `FILE_ATTEMPTS` times.
    async fn first_read(&mut self) -> Result<AccountData, SourceError> {
        let mut attempts = 1;
        loop {
            match self.file.read_new_version(true).await {
                FileRead::Read(result) => return result,
                FileRead::Changing | FileRead::Unchanged if attempts < FILE_ATTEMPTS => {
                    attempts += 1;
                    tokio::time::sleep(POLL).await;
                }
                FileRead::Changing | FileRead::Unchanged => {
                    return Err(SourceError::new(ErrorReason::Other, self.still_changing()));
                }
            }
        }
    }

    /// A look at the file, read whole when `due`; a version still being
    /// written waits for the next look, and fails the account once it has
    /// been written for a whole interval.
    async fn look(&mut self, due: bool, interval: Duration) -> Option<Result<AccountData, SourceError>> {
        let started = Instant::now();
        match self.file.read_new_version(due).await {
            FileRead::Unchanged => None,
            FileRead::Changing => {
                // One line per spell of writing, not one per look.
                if self.changing_since.is_none() {
                    tracing::info!(file = %self.file.path().display(), "credential report file is being written; waiting until it holds still");
                }
                let since = *self.changing_since.get_or_insert(started);
                if due && since.elapsed() >= interval {
                    self.changing_since = None;
                    return Some(Err(SourceError::new(ErrorReason::Other, self.still_changing())));
                }
                None
            }
            FileRead::Read(result) => {
                if !due {
                    tracing::info!(file = %self.file.path().display(), "credential report file changed; read it again");
                }
                self.changing_since = None;
                Some(result)
            }
        }
    }

    fn still_changing(&self) -> String {
        format!(
            "{}: the file kept changing while it was read; write it elsewhere and rename it into place",
            self.file.path().display()
        )
    }
}

/// Filesystems stamp modification times coarsely (a second on some): a
/// file whose stamp is this close to the time it was read may have been
/// written again since without its metadata showing it, so its content is
/// compared.
const COARSE_TIMESTAMPS: Duration = Duration::from_secs(2);

/// Pause between two looks at a file that must be the same to be taken.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The version of the file last taken.
#[derive(Debug, Clone)]
struct Taken {
    meta: FileMeta,
    hash: u64,
    read_at: SystemTime,
}

/// What one look at a report file found.
#[derive(Debug)]
pub enum FileRead {
    /// The same version as the one last taken.
    Unchanged,
    /// Being written: it changed while it was read. Try again later.
    Changing,
    /// A version read whole: its data, or why it is not a report.
    Read(Result<AccountData, SourceError>),
}

/// A credential report file, read only once it holds still, and again when
/// its content or identity changes.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    settle: Duration,
    taken: Option<Taken>,
    /// The error of the last look, so that a missing file is counted and
    /// logged once per interval, not at every look.
    last_error: Option<String>,
}

impl ReportFile {
    pub fn new(path: PathBuf) -> ReportFile {
        ReportFile {
            path,
            settle: SETTLE,
            taken: None,
            last_error: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file if it is a version not taken yet (or always, with
    /// `force`), on the blocking pool: reading and parsing a large report
    /// must not hold up an async worker.
    pub async fn read_new_version(&mut self, force: bool) -> FileRead {
        let path = self.path.clone();
        let settle = self.settle;
        let taken = if force { None } else { self.taken.clone() };
        let joined =
            tokio::task::spawn_blocking(move || look(&path, taken.as_ref(), || std::thread::sleep(settle))).await;
        let (read, taken) = joined.unwrap_or_else(|e| {
            let message = format!("{}: reading the file failed: {e}", self.path.display());
            (FileRead::Read(Err(SourceError::new(ErrorReason::Other, message))), None)
        });
        if let Some(taken) = taken {
            self.taken = Some(taken);
        }
        match &read {
            FileRead::Read(Err(e)) => {
                if !force && self.last_error.as_ref() == Some(&e.message) {
                    return FileRead::Unchanged;
                }
                self.last_error = Some(e.message.clone());
            }
            FileRead::Read(Ok(_)) => self.last_error = None,
            FileRead::Changing | FileRead::Unchanged => {}
        }
        read
    }
}

/// One look at the file; `settle` is the pause before the last look (a
/// hook, so tests can write to the file then). Returns the version taken.
fn look(path: &Path, taken: Option<&Taken>, settle: impl FnOnce()) -> (FileRead, Option<Taken>) {
    let fail = |reason, message: String| {
        let message = format!("{}: {message}", path.display());
        (FileRead::Read(Err(SourceError::new(reason, message))), None)
    };
    let meta = |path: &Path| std::fs::metadata(path).map(|m| FileMeta::of(&m));
    let before = match meta(path) {
        Ok(m) => m,
        Err(e) => return fail(ErrorReason::Other, format!("cannot read: {e}")),
    };
    let racy = |t: &Taken| before.modified.is_none_or(|m| m + COARSE_TIMESTAMPS > t.read_at);
    if taken.is_some_and(|t| t.meta == before && !racy(t)) {
        return (FileRead::Unchanged, None);
    }
    let read_at = SystemTime::now();
    // Streamed twice, never held whole: a first pass to learn the version,
    // a second to parse it. At 100,000 keys the file held whole was a
    // quarter of the memory a read needs.
    let scanned = std::fs::File::open(path).and_then(|mut file| Ok((scan(&mut file)?, file)));
    let (scanned, mut file) = match scanned {
        Ok(s) => s,
        Err(e) => return fail(ErrorReason::Other, format!("cannot read: {e}")),
    };
    let after = meta(path).ok();
    if after != Some(before) || scanned.len != before.len {
        return (FileRead::Changing, None);
    }
    settle();
    if meta(path).ok() != Some(before) {
        return (FileRead::Changing, None);
    }
    let version = Taken {
        meta: before,
        hash: scanned.hash,
        read_at,
    };
    if taken.is_some_and(|t| t.hash == scanned.hash) {
        return (FileRead::Unchanged, Some(version));
    }
    let (result, reread) = match parse_again(&mut file, scanned.utf8) {
        Ok(parsed) => parsed,
        Err(e) => return fail(ErrorReason::Other, format!("cannot read: {e}")),
    };
    // Written in place since the scan, though its metadata did not show it.
    if (reread.len, reread.hash) != (scanned.len, scanned.hash) {
        return (FileRead::Changing, None);
    }
    let result = result.map_err(|(reason, message)| SourceError::new(reason, format!("{}: {message}", path.display())));
    let result = result.map(|mut data| {
        data.credential_report_generated = before.modified.map(DateTime::<Utc>::from);
        data
    });
    (FileRead::Read(result), Some(version))
}

/// What one pass over a file saw.
struct Scan {
    len: u64,
    hash: u64,
    utf8: bool,
}

/// Bytes of a file looked at at once by [`scan`].
const SCAN_BUFFER: usize = 64 * 1024;

/// Hashes a file and checks that it is UTF-8, a buffer at a time.
fn scan(file: &mut std::fs::File) -> std::io::Result<Scan> {
    use std::io::Read as _;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut buffer = vec![0u8; SCAN_BUFFER];
    let (mut len, mut carried, mut utf8) = (0u64, 0usize, true);
    loop {
        let n = match file.read(&mut buffer[carried..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.write(&buffer[carried..carried + n]);
        len += n as u64;
        let filled = carried + n;
        carried = 0;
        if utf8 {
            match std::str::from_utf8(&buffer[..filled]) {
                Ok(_) => {}
                // A character cut by the buffer's end: checked whole with the next read.
                Err(e) if e.error_len().is_none() => {
                    carried = filled - e.valid_up_to();
                    buffer.copy_within(e.valid_up_to()..filled, 0);
                }
                Err(_) => utf8 = false,
            }
        }
    }
    Ok(Scan {
        len,
        hash: hasher.finish(),
        utf8: utf8 && carried == 0,
    })
}

/// Parses a scanned file from its start, hashing what it reads so that a
/// version other than the scanned one is noticed. A file that is not UTF-8
/// is read whole instead, for the error to name the byte as
/// [`report_csv::parse_bytes`] does.
fn parse_again(file: &mut std::fs::File, utf8: bool) -> std::io::Result<(FileData, Scan)> {
    use std::io::{Read, Seek as _};
    struct Hashing<'a> {
        file: &'a mut std::fs::File,
        hasher: std::collections::hash_map::DefaultHasher,
        len: u64,
        error: Option<std::io::Error>,
    }
    impl Read for Hashing<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let n = self.file.read(buffer).inspect_err(|e| {
                // The parser makes a CSV error of it: kept to be told as a read failure.
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.error
                        .get_or_insert_with(|| std::io::Error::new(e.kind(), e.to_string()));
                }
            })?;
            self.hasher.write(&buffer[..n]);
            self.len += n as u64;
            Ok(n)
        }
    }
    file.rewind()?;
    let mut reader = Hashing {
        file,
        hasher: std::collections::hash_map::DefaultHasher::new(),
        len: 0,
        error: None,
    };
    let result = if utf8 {
        checked(report_csv::parse_reader(&mut reader).map_err(BytesError::Parse))
    } else {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        parse_file(&bytes)
    };
    if let Some(e) = reader.error.take() {
        return Err(e);
    }
    // A report that failed early leaves the rest to hash.
    std::io::copy(&mut reader, &mut std::io::sink())?;
    let reread = Scan {
        len: reader.len,
        hash: reader.hasher.finish(),
        utf8,
    };
    Ok((result, reread))
}

/// A report file's bytes to its data. The file's modification time stands
/// for the time the report was generated, which the CSV does not carry.
fn parse_file(bytes: &[u8]) -> FileData {
    checked(report_csv::parse_bytes(bytes))
}

/// A report file's data, or why it cannot be taken.
type FileData = Result<AccountData, (ErrorReason, String)>;

fn checked(parsed: Result<AccountData, BytesError>) -> FileData {
    let data = parsed.map_err(|e| {
        let message = match e {
            BytesError::NotUtf8(e) => format!("not UTF-8: {e}"),
            BytesError::Parse(e) => e.to_string(),
        };
        (ErrorReason::InvalidResponse, message)
    })?;
    if data.account_id.is_empty() {
        let message = "credential report line 1: the report has no rows, so its account is unknown".to_string();
        return Err((ErrorReason::InvalidResponse, message));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::sources::report_csv::{parse, TEST_HEADER as HEADER, TEST_ROW as GOOD};

    #[test]
    fn a_file_of_a_report_without_rows_is_rejected() {
        let (reason, message) = parse_file(format!("{HEADER}\n").as_bytes()).unwrap_err();
        assert_eq!(reason, ErrorReason::InvalidResponse);
        assert_eq!(
            message,
            "credential report line 1: the report has no rows, so its account is unknown"
        );
    }

    /// What is not a credential report at all still fails the account.
    #[test]
    fn files_that_are_not_reports_are_rejected() {
        assert_eq!(
            parse_file(b"\xff\xfe binary").unwrap_err(),
            (
                ErrorReason::InvalidResponse,
                "not UTF-8: invalid utf-8 sequence of 1 bytes from index 0".to_string()
            )
        );
        assert_eq!(
            parse_file(&[0u8; 64]).unwrap_err().1,
            format!("credential report line 1: missing column \"user\" in the header")
        );
        assert_eq!(
            parse_file(GOOD.as_bytes()).unwrap_err().1,
            "credential report line 1: missing column \"user\" in the header"
        );
    }

    /// A file written in place while it is read is not taken; once it holds
    /// still it is, and a look at it unchanged reads nothing.
    #[test]
    fn a_file_rewritten_while_read_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        let whole = format!("{HEADER}\n{GOOD}{}", GOOD.replace("ok", "more"));
        let half = &whole[..whole.len() - 40];
        std::fs::write(&path, half).unwrap();
        // The writer goes on while the reader settles.
        let (read, taken) = look(&path, None, || std::fs::write(&path, &whole).unwrap());
        assert!(matches!(read, FileRead::Changing), "{read:?}");
        assert!(taken.is_none());

        let (read, taken) = look(&path, None, || {});
        let FileRead::Read(Ok(data)) = read else {
            panic!("{read:?}")
        };
        assert_eq!(data.users.len(), 2);
        let taken = taken.unwrap();
        // Unchanged: content compared (the stamp is recent), nothing parsed.
        let (read, _) = look(&path, Some(&taken), || {});
        assert!(matches!(read, FileRead::Unchanged), "{read:?}");

        // The same size, rewritten in place within the same stamp: the content tells.
        let same_size = whole.replace("more", "mora");
        let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, &same_size).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(stamp)
            .unwrap();
        let (read, _) = look(&path, Some(&taken), || {});
        let FileRead::Read(Ok(data)) = read else {
            panic!("{read:?}")
        };
        assert_eq!(&*data.users[1].name, "mora");
    }

    /// A file read in pieces reads as its bytes do whole: a character cut
    /// by a piece's end is no error, and a byte that is not UTF-8 is named
    /// as in a report handed over whole.
    #[test]
    fn a_file_read_in_pieces_reads_as_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        let mut text = format!("{HEADER}\n");
        while text.len() + 2 * GOOD.len() < SCAN_BUFFER {
            text += &GOOD.replace("ok", &format!("u{}", text.len()));
        }
        let cut = format!("{}é", "x".repeat(SCAN_BUFFER - 1 - text.len()));
        text += &GOOD.replace("ok", &cut);
        assert_eq!(&text.as_bytes()[SCAN_BUFFER - 1..=SCAN_BUFFER], "é".as_bytes());
        text += &GOOD.replace("ok", "after");
        std::fs::write(&path, &text).unwrap();
        // Not UTF-8 would still parse, read whole: the scan must see the character.
        assert!(scan(&mut std::fs::File::open(&path).unwrap()).unwrap().utf8);
        let (read, _) = look(&path, None, || {});
        let FileRead::Read(Ok(data)) = read else {
            panic!("{read:?}")
        };
        let whole = AccountData {
            credential_report_generated: data.credential_report_generated,
            ..parse(&text).unwrap()
        };
        assert!(
            data == whole,
            "read in pieces, the report differs from its text parsed whole"
        );
        assert_eq!(&*data.users[data.users.len() - 2].name, cut);

        let mut bytes = text.into_bytes();
        let at = SCAN_BUFFER + 10;
        bytes[at] = 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (read, _) = look(&path, None, || {});
        let FileRead::Read(Err(e)) = read else {
            panic!("{read:?}")
        };
        let expected = parse_file(&bytes).unwrap_err().1;
        assert!(expected.contains(&format!("from index {at}")), "{expected}");
        assert_eq!(e.message, format!("{}: {expected}", path.display()));
    }

    /// A missing file names itself.
    #[test]
    fn a_missing_file_is_named() {
        let (read, _) = look(Path::new("/nonexistent/report.csv"), None, || {});
        let FileRead::Read(Err(e)) = read else {
            panic!("{read:?}")
        };
        assert_eq!(
            e.message,
            "/nonexistent/report.csv: cannot read: No such file or directory (os error 2)"
        );
    }
}
