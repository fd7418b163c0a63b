//! Noticing that a file changed without reading it: a stamp per file
//! (length, modification time and, on Unix, device, inode and change time,
//! which tell a file renamed into place from the one it replaced), taken on
//! the blocking pool, and the one polling period. Shared by the credential
//! report file and the web configuration's files.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How often watched files are looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub len: u64,
    pub modified: Option<SystemTime>,
    #[cfg(unix)]
    identity: (u64, u64, i64, i64),
}

impl FileMeta {
    pub fn of(meta: &std::fs::Metadata) -> FileMeta {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        FileMeta {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            identity: (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The stamps of `paths`, `None` for a file that cannot be looked at. On the
/// blocking pool: a slow or remote filesystem must not stall an async worker.
pub async fn stamps(paths: Vec<PathBuf>) -> Vec<Option<FileMeta>> {
    let count = paths.len();
    tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| std::fs::metadata(p).ok().map(|m| FileMeta::of(&m)))
            .collect()
    })
    .await
    .unwrap_or_else(|_| vec![None; count])
}
