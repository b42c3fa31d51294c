//! The crate's error type: every variant names the file and what failed.

use std::path::PathBuf;

/// What went wrong while reading an object file or its debug information.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened, read or mapped.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed ELF file, or one of its parts is not.
    #[error("{path}: cannot parse {what}: {source}")]
    Parse {
        /// The file (`<memory>` for bytes given by the caller).
        path: PathBuf,
        /// The part that failed, e.g. "ELF header" or "section .debug_info".
        what: String,
        /// The underlying error.
        #[source]
        source: object::Error,
    },
    /// The DWARF debug information is malformed.
    #[error("{path}: malformed DWARF: {source}")]
    Dwarf {
        /// The file that holds the DWARF.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: gimli::Error,
    },
    /// The MiniDebugInfo section `.gnu_debugdata` could not be decompressed
    /// or does not hold an ELF file.
    #[error("{path}: bad .gnu_debugdata (MiniDebugInfo): {message}")]
    MiniDebugInfo {
        /// The file that holds the section.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}
