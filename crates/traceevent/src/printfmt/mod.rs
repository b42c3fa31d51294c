//! The `print fmt` language of trace events: parsed once per event
//! ([`PrintFmt`], a format string and C argument expressions), then
//! evaluated per record ([`Formatter::render`]) into the same text the
//! kernel's `trace` file shows.

mod binary;
mod ctype;
mod eval;
mod lex;
mod parse;
mod printf;

pub use binary::{format_packed, format_packed_pointer};
pub use ctype::{CType, is_signed_type, type_size};
pub use eval::{
    Dialect, Env, EvalError, FieldValue, Formatter, NoSymbols, Symbol, SymbolResolver,
    field_values, render_raw,
};
pub(crate) use parse::unescape;
pub use parse::{Expr, PrintFmt};
pub use printf::{Piece, Spec, pieces};

/// A print fmt that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("print fmt, byte {offset}: expected {expected}")]
pub struct PrintFmtError {
    /// Byte offset in the print fmt text.
    pub offset: usize,
    /// What the parser needed there.
    pub expected: &'static str,
}

impl PrintFmtError {
    pub(crate) fn new(offset: usize, expected: &'static str) -> PrintFmtError {
        PrintFmtError { offset, expected }
    }
}
