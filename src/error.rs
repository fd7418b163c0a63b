use std::path::PathBuf;

/// Exit status of `report` when no account at all was read: no data is not
/// a clean result, and a script must be able to tell it from one failed
/// account among many (1).
pub const EXIT_NOTHING_READ: i32 = 4;

/// Everything that can stop the exporter or one of its commands.
///
/// A failed refresh of one account is *not* an `Error`: it is kept in the
/// snapshot as a [`crate::domain::failure::SourceError`] so that the other accounts and
/// the last good data are not affected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<String>),

    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot listen on {address}: {source}{}", listen_hint(.source))]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },

    /// `report` could not read every account: one entry per failure.
    #[error("refresh failed, no report written: {}", .0.join("; "))]
    ReportIncomplete(Vec<String>),

    /// `report` read no account at all (exit [`EXIT_NOTHING_READ`]).
    #[error("no report written: {0}")]
    NothingRead(String),

    #[error("cannot write output: {0}")]
    Output(String),

    #[error("the refresh task ended unexpectedly ({0}); exiting rather than serving stale data")]
    RefreshStopped(&'static str),
}

impl Error {
    /// Exit code for the process: 2 for anything the user must fix in flags or
    /// configuration (as clap does for usage errors; a config file that cannot
    /// be read is one), 1 for failures at run time (a port taken, AWS or the
    /// report file failing, output that cannot be written).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::ReadFile { .. } => 2,
            Error::NothingRead(_) => EXIT_NOTHING_READ,
            Error::Listen { .. } | Error::ReportIncomplete(_) | Error::Output(_) | Error::RefreshStopped(_) => 1,
        }
    }
}

/// What to do about the common bind failure.
fn listen_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process listens there: stop it, or choose another address with --web.listen-address"
        }
        _ => "",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
