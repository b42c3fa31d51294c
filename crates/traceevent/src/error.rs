//! The error of the kernel's format files (`events/*/*/format`,
//! `header_page`, `header_event`): where their text leaves the kernel's
//! shape, by line.

/// A format file that does not have the kernel's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: expected {expected}, found {found:?}")]
pub struct FormatError {
    /// 1-based line number.
    pub line: usize,
    /// What the parser needed there.
    pub expected: &'static str,
    /// The start of what it found.
    pub found: String,
}

impl FormatError {
    pub(crate) fn new(line: usize, expected: &'static str, found: &str) -> FormatError {
        FormatError {
            line,
            expected,
            found: found.chars().take(80).collect(),
        }
    }
}
