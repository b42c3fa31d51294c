//! The `print fmt` language of trace events: parsed once per event
//! ([`PrintFmt`], a format string and C argument expressions), then
//! evaluated per record ([`Formatter::render`]) into the same text the
//! kernel's `trace` file shows.

mod binary;
mod eval;
mod lex;
mod parse;
mod printf;

pub use crate::ctype::{CType, is_signed_type, type_size};
pub use binary::{format_packed, format_packed_pointer};
pub use eval::{
    Dialect, Env, EvalError, FieldValue, Formatter, NoSymbols, Symbol, SymbolResolver,
    field_values, render_raw,
};
pub(crate) use parse::unescape;
pub use parse::{Expr, MAX_DEPTH, PrintFmt};
pub use printf::{Piece, Spec, pieces};

/// A print fmt that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("print fmt, byte {offset}: {problem}")]
pub struct PrintFmtError {
    /// Byte offset in the print fmt text.
    pub offset: usize,
    /// What is wrong there.
    pub problem: PrintFmtProblem,
}

/// What is wrong where a print fmt stops parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintFmtProblem {
    /// The parser needed this there.
    #[error("expected {0}")]
    Expected(&'static str),
    /// Expressions nest deeper than [`MAX_DEPTH`].
    #[error("expression nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

impl PrintFmtError {
    pub(crate) fn new(offset: usize, expected: &'static str) -> PrintFmtError {
        PrintFmtError {
            offset,
            problem: PrintFmtProblem::Expected(expected),
        }
    }
}
