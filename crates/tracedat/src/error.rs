//! The one error type of the crate. A parse error says where in the file it
//! is (a byte offset, and for data that had to be decompressed the offset
//! inside the uncompressed block too) and what was expected there; a write
//! error says what the chosen version cannot hold.

use std::path::PathBuf;

use crate::Compression;

/// Where a parse error is, for messages: the byte offset in the file, and
/// for the contents of a compressed block, the offset inside its
/// uncompressed bytes (then `offset` is that of the block).
fn at(offset: u64, uncompressed: Option<u64>) -> String {
    match uncompressed {
        None => format!("at byte {offset}"),
        Some(inner) => format!("at byte {inner} of the block compressed at byte {offset}"),
    }
}

/// Everything that can go wrong reading or writing a trace.dat.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, mapping or writing a file failed.
    #[error("{}: {source}", path.as_ref().map_or_else(|| "trace.dat".to_string(), |p| p.display().to_string()))]
    Io {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not what the format puts there.
    #[error("not a valid trace.dat {}: expected {expected}", at(*offset, *uncompressed))]
    Format {
        /// Offset in the file (of the compressed block, when `uncompressed`).
        offset: u64,
        /// Offset inside the uncompressed contents of a compressed block.
        uncompressed: Option<u64>,
        /// What the format wants there.
        expected: String,
    },
    /// The file (or a decompressed block) ends before something it declares.
    #[error("truncated trace.dat {}: {what} needs {needed} bytes, {available} are left", at(*offset, *uncompressed))]
    Truncated {
        /// Where the missing part starts (see [`Error::Format`]).
        offset: u64,
        /// Offset inside the uncompressed contents of a compressed block.
        uncompressed: Option<u64>,
        /// What was being read.
        what: &'static str,
        /// How many bytes it needs.
        needed: u64,
        /// How many the file (or block) still has.
        available: u64,
    },
    /// A compressed block or chunk does not decompress to what it declares.
    #[error("cannot decompress the {algorithm:?} data at byte {offset}: {source}")]
    Decompress {
        /// Offset of the compressed data in the file.
        offset: u64,
        /// The file's compression.
        algorithm: Compression,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A declared size is beyond what this crate accepts (see the crate
    /// doc's limits), so as not to allocate or loop without end on a
    /// hostile file.
    #[error("trace.dat {}: {what} of {size} is more than the limit of {limit}", at(*offset, *uncompressed))]
    TooLarge {
        /// Where the size is declared (see [`Error::Format`]).
        offset: u64,
        /// Offset inside the uncompressed contents of a compressed block.
        uncompressed: Option<u64>,
        /// What the size is of.
        what: &'static str,
        /// The declared size.
        size: u64,
        /// The most that is accepted.
        limit: u64,
    },
    /// A valid file that uses a part of the format this crate does not
    /// read (another version, another compression, latency-tracer text).
    #[error("unsupported trace.dat {}: {what}", at(*offset, *uncompressed))]
    Unsupported {
        /// Where (see [`Error::Format`]).
        offset: u64,
        /// Offset inside the uncompressed contents of a compressed block.
        uncompressed: Option<u64>,
        /// What it is and what to do.
        what: String,
    },
    /// `write` was given data that the chosen version cannot hold.
    #[error("cannot write this trace.dat: {what}")]
    Unrepresentable {
        /// What, and why.
        what: String,
    },
}

impl Error {
    /// The file offset of a parse error (of the compressed block, for an
    /// error inside one); `None` for I/O errors and write errors.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::Format { offset, .. }
            | Error::Truncated { offset, .. }
            | Error::TooLarge { offset, .. }
            | Error::Unsupported { offset, .. }
            | Error::Decompress { offset, .. } => Some(*offset),
            Error::Io { .. } | Error::Unrepresentable { .. } => None,
        }
    }

    /// An I/O error while writing (no path: the writer is the caller's).
    pub(crate) fn write(source: std::io::Error) -> Error {
        Error::Io { path: None, source }
    }

    /// A write-side refusal.
    pub(crate) fn unrepresentable(what: impl Into<String>) -> Error {
        Error::Unrepresentable { what: what.into() }
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Error {
        Error::write(source)
    }
}
