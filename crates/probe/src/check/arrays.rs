//! Arrays and statistics in the checker. A global is an array when it is
//! indexed (`a[k]`), walked (`foreach`), tested (`[k] in a`) or declared
//! with a size (`global a[100]`); it is a statistic when values are added
//! to it with `<<<` (a statistic may be indexed too: `lat[name] <<< t`).
//! An array's keys and values have types like any variable, inferred and
//! checked in the same way; [`ArrayType`] is what code generation and the
//! runtime see, with the layout of a key and a value in the BPF map.

use crate::codegen::STR;
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
    /// Where it is declared.
    pub span: Span,
}

impl ArrayType {
    /// The bytes one key takes in the map: 8 per long, [`STR`] per
    /// string, and 8 for a statistic without keys (whose one entry has
    /// key 0).
    pub fn key_size(&self) -> u32 {
        self.keys.iter().map(|&t| slot_size(t)).sum::<u32>().max(8)
    }

    /// Where each key starts in a map key.
    pub fn key_offsets(&self) -> Vec<u32> {
        let mut at = 0;
        self.keys
            .iter()
            .map(|&t| {
                let here = at;
                at += slot_size(t);
                here
            })
            .collect()
    }

    /// The bytes one value takes in the map (per CPU for a statistic).
    pub fn value_size(&self) -> u32 {
        if self.stat {
            crate::stats::value_size(self.hist.as_ref()) as u32
        } else {
            slot_size(self.value)
        }
    }
}

/// The bytes a long or a string takes in a key or a value.
fn slot_size(t: Ty) -> u32 {
    if t == Ty::Str { STR } else { 8 }
}
