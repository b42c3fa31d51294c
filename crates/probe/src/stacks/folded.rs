//! Folded stacks: the text flame-graph tools read (Brendan Gregg's
//! `flamegraph.pl`, inferno, speedscope): one line per distinct stack,
//! its frames from the outermost to the innermost joined by `;`, then a
//! space and how many times it was seen. Frames are function names
//! without offsets, so that samples at different places in one function
//! add up; a `;` inside a name becomes `:` (as the `stackcollapse`
//! scripts do), since it would split the frame.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::line::Symbols;

/// Stacks and their counts, written as folded lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// Folded frames (outermost first) to count; sorted, so the output
    /// is the same whatever order stacks came in.
    stacks: BTreeMap<String, u64>,
}

impl Folded {
    /// No stack yet.
    pub fn new() -> Folded {
        Folded::default()
    }

    /// Adds `count` to the stack of `frames`, given innermost first (the
    /// order a stack map holds them). A stack without frames is not
    /// added: it has nothing to draw.
    pub fn add<S: AsRef<str>>(&mut self, frames: &[S], count: u64) {
        if frames.is_empty() {
            return;
        }
        let mut key = String::new();
        for (i, frame) in frames.iter().rev().enumerate() {
            if i > 0 {
                key.push(';');
            }
            key.extend(
                frame
                    .as_ref()
                    .chars()
                    .map(|c| if c == ';' { ':' } else { c }),
            );
        }
        let total = self.stacks.entry(key).or_default();
        *total = total.saturating_add(count);
    }

    /// Adds `count` to `stack` (addresses innermost first, up to the first
    /// zero, as the kernel's stack map stores them), each frame named by
    /// `symbols`.
    pub fn add_stack(&mut self, symbols: &impl Symbols, stack: &[u64], count: u64) {
        let frames: Vec<String> = stack
            .iter()
            .take_while(|&&address| address != 0)
            .map(|&address| symbols.locate(address).function_name(address))
            .collect();
        self.add(&frames, count);
    }

    /// Writes one `root;...;leaf COUNT` line per stack, sorted by its
    /// frames.
    ///
    /// # Errors
    ///
    /// What writing to `out` returns.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        for (frames, count) in &self.stacks {
            writeln!(out, "{frames} {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::line::Location;

    fn text(folded: &Folded) -> String {
        let mut out = Vec::new();
        folded.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_go_root_to_leaf_sorted_with_counts_summed() {
        let mut folded = Folded::new();
        folded.add(&["schedule", "do_nanosleep", "main"], 3);
        folded.add(&["read", "main"], 1);
        folded.add(&["schedule", "do_nanosleep", "main"], 2);
        folded.add(&["work", "a;b"], 7);
        folded.add::<&str>(&[], 9);
        assert_eq!(
            text(&folded),
            "a:b;work 7\nmain;do_nanosleep;schedule 5\nmain;read 1\n"
        );
    }

    #[test]
    fn an_empty_collection_writes_nothing() {
        assert_eq!(text(&Folded::new()), "");
    }

    /// Names `0x10..0x20` `leaf`, `0x20..0x30` `root`; the rest unknown.
    struct Two;

    impl Symbols for Two {
        fn locate(&self, address: u64) -> Location<'_> {
            let name = match address {
                0x10..0x20 => "leaf",
                0x20..0x30 => "root",
                _ => return Location::Unknown,
            };
            Location::Symbol {
                name,
                offset: address & 0xf,
                size: 0x10,
                module: "kernel",
            }
        }
    }

    #[test]
    fn stacks_fold_by_function_whatever_the_offset() {
        let mut folded = Folded::new();
        folded.add_stack(&Two, &[0x11, 0x25, 0, 0x99], 1);
        folded.add_stack(&Two, &[0x1f, 0x20], 1);
        folded.add_stack(&Two, &[0x99, 0x21], 4);
        assert_eq!(text(&folded), "root;0x99 4\nroot;leaf 2\n");
    }
}
