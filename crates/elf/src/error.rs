//! The one error type of the crate: where in the file a parse failed and
//! what was expected there.

use std::borrow::Cow;

/// A parse error: the byte offset in the file and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset:#x}: expected {expected}")]
pub struct Error {
    /// Byte offset in the file.
    pub offset: u64,
    /// What was expected at `offset`.
    pub expected: Cow<'static, str>,
}

impl Error {
    /// An error at byte `offset` of the file.
    pub fn at(offset: u64, expected: impl Into<Cow<'static, str>>) -> Error {
        Error {
            offset,
            expected: expected.into(),
        }
    }
}
