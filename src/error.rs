use std::path::PathBuf;

/// Everything that can stop the exporter or one of its commands.
///
/// A failed refresh of one account is *not* an `Error`: it is kept in the
/// snapshot as a [`crate::sources::SourceError`] so that the other accounts and
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

    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },

    #[error("refresh failed: {0}")]
    Refresh(#[from] crate::sources::SourceError),

    #[error("cannot write output: {0}")]
    Output(String),

    #[error("the refresh task ended unexpectedly ({0}); exiting rather than serving stale data")]
    RefreshStopped(&'static str),
}

impl Error {
    /// Exit code for the process: 2 for anything the user must fix in flags or
    /// configuration (as clap does for usage errors), 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
