//! The errors of this crate. Each one names the file it concerns and, for a
//! rejected write, the kernel's own explanation from `error_log` when the
//! kernel left one.

use std::io;
use std::path::PathBuf;

/// What went wrong while looking at or changing tracefs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tracefs (or securityfs) is mounted nowhere and we may not (or
    /// could not) mount it.
    #[error("{what} is not mounted{hint}")]
    NotMounted {
        /// The filesystem(s): "tracefs", "securityfs".
        what: String,
        /// One sentence on what to do, starting with "; ".
        hint: String,
    },
    /// mount(2) of tracefs (or securityfs) in kscope's private mount
    /// namespace failed.
    #[error("cannot mount {path}: {source}")]
    Mount {
        /// The mount point that was tried.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A file in tracefs could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The kernel refused a write to a control file.
    #[error("cannot write {value:?} to {path}: {source}{}", error_log_suffix(.error_log))]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The kernel's answer.
        source: io::Error,
        /// The entry the kernel added to `error_log` for this write, if any.
        error_log: Option<String>,
    },
    /// An instance directory could not be created or removed.
    #[error("cannot {action} instance {path}: {source}")]
    Instance {
        /// "create" or "remove".
        action: &'static str,
        /// The instance directory.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A probe definition was malformed before it reached the kernel.
    #[error("bad probe definition {definition:?}: {reason}")]
    ProbeDefinition {
        /// The definition as given.
        definition: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file that must be changed through a dedicated call was given to
    /// the generic setter, which could not restore it correctly.
    #[error("{path} cannot be set as a plain value; use {use_instead}")]
    NotAPlainSetting {
        /// The file.
        path: PathBuf,
        /// The call to use.
        use_instead: &'static str,
    },
    /// The journal of changes under /run/kscope could not be created,
    /// written or removed; the change was not made.
    #[error("cannot keep the journal of tracefs changes in {path}: {source}")]
    Journal {
        /// The journal directory or file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The journal directory or a journal in it is not what kscope made
    /// (a link, another user's, open to others) or could not be opened.
    #[error("cannot keep the journal of tracefs changes: {0}")]
    JournalFile(#[from] kscope_outfile::Error),
    /// A journal left by another kscope does not read as one.
    #[error("{path} is not a journal kscope can read ({reason}); look at it, then delete it")]
    CorruptJournal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong, with the line.
        reason: String,
    },
    /// A temporary directory kscope made could not be deleted.
    #[error("cannot delete the temporary directory {path}: {source}")]
    TempDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// Some changes could not be undone; each failure is listed.
    #[error("could not restore {} tracefs change(s): {}", .0.len(), join_errors(.0))]
    Restore(Vec<Error>),
}

fn error_log_suffix(entry: &Option<String>) -> String {
    match entry {
        Some(text) => format!("\nkernel error_log:\n{text}"),
        None => String::new(),
    }
}

fn join_errors(errors: &[Error]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
