//! The errors of the lab. Those about a guest carry the tail of its
//! console, because that is where a kernel says what went wrong.

use std::io;
use std::path::PathBuf;

/// What went wrong preparing or running a guest.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A host program the lab needs is not installed.
    #[error("the guest lab needs {program}, which is not installed: apt-get install {package}")]
    MissingTool {
        /// The program looked for.
        program: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A host program failed.
    #[error("{what} failed: {detail}")]
    Tool {
        /// The command that was run.
        what: String,
        /// Its status and the end of its stderr.
        detail: String,
    },
    /// A file of the lab could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The kernel package does not have the layout the lab expects.
    #[error("the kernel package in {path} has no {missing}")]
    KernelLayout {
        /// The extracted package.
        path: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// A command of the batch did not run to a successful end.
    #[error(
        "guest command {name:?} {detail}\n--- its stderr ---\n{stderr}\n--- guest console (last lines) ---\n{console_tail}"
    )]
    Command {
        /// The command's name in the batch.
        name: String,
        /// "exited with status 3", "never started: the guest panicked", ...
        detail: String,
        /// What the command wrote to stderr.
        stderr: String,
        /// The end of the guest's console.
        console_tail: String,
    },
}

impl LabError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { path, source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
