//! Arrays and statistics in the checker. A global is an array when it is
//! indexed (`a[k]`), walked (`foreach`), tested (`[k] in a`) or declared
//! with a size (`global a[100]`); it is a statistic when values are added
//! to it with `<<<` (a statistic may be indexed too: `lat[name] <<< t`).
//! An array's keys and values have types like any variable, inferred and
//! checked in the same way; [`ArrayType`] is what code generation and the
//! runtime see (code generation gives it the layout of a key and a value
//! in the BPF map).

use crate::source::Span;
pub use crate::stats::HistKind;

use super::Ty;

/// How many entries an array holds unless declared otherwise: SystemTap's
/// MAXMAPENTRIES.
pub const DEFAULT_CAPACITY: u32 = 2048;

/// A checked array or statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayType {
    /// Its name.
    pub name: String,
    /// Each key's type; none for a statistic without keys.
    pub keys: Vec<Ty>,
    /// The type of its values: a long or a string, or for a statistic
    /// what `<<<` adds (a long).
    pub value: Ty,
    /// Whether it is a statistic (`<<<`).
    pub stat: bool,
    /// The histogram a statistic keeps, if one is printed.
    pub hist: Option<HistKind>,
    /// How many entries it holds.
    pub capacity: u32,
    /// Whether a full map makes room by dropping the least recently used
    /// entry (the hidden arrays of `@entry`) instead of refusing the new
    /// one.
    pub recent: bool,
    /// Where it is declared.
    pub span: Span,
}
