//! `/proc/kallsyms`: one `ADDRESS TYPE NAME [MODULE]` line per kernel
//! symbol. What matters for a debugger is whether the addresses are real
//! or hidden as zeros (kptr_restrict, or not being root).

use serde::{Deserialize, Serialize};

/// What a kallsyms listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KallsymsSummary {
    /// Well-formed symbol lines.
    pub symbols: usize,
    /// Lines whose address reads as zero.
    pub zero_addresses: usize,
    /// Text (code) symbols, types `t` and `T`.
    pub text_symbols: usize,
    /// The address of `_stext` (or `_text`) when listed and not hidden.
    pub stext: Option<u64>,
    /// Symbols that belong to a loadable module (`[name]` suffix).
    pub module_symbols: usize,
}

impl KallsymsSummary {
    /// Reads a kallsyms listing; malformed lines are skipped.
    pub fn parse(text: &str) -> KallsymsSummary {
        let mut summary = KallsymsSummary::default();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(address), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(address) = u64::from_str_radix(address, 16) else {
                continue;
            };
            if kind.len() != 1 {
                continue;
            }
            summary.symbols += 1;
            if address == 0 {
                summary.zero_addresses += 1;
            }
            if kind.eq_ignore_ascii_case("t") {
                summary.text_symbols += 1;
            }
            if fields.next().is_some_and(|m| m.starts_with('[')) {
                summary.module_symbols += 1;
            }
            if address != 0 && summary.stext.is_none() && (name == "_stext" || name == "_text") {
                summary.stext = Some(address);
            }
        }
        summary
    }

    /// True when every address is zero: the symbols are listed but their
    /// addresses are hidden from this reader.
    pub fn addresses_hidden(&self) -> bool {
        self.symbols > 0 && self.zero_addresses == self.symbols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISIBLE: &str = "\
ffffffff81000000 T srso_alias_untrain_ret
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81001000 t early_idt_handler_common
ffffffff82a3c000 D jiffies
ffffffffc0a01000 t ext4_fill_super\t[ext4]
garbage line
zzzz T bad_address
";

    #[test]
    fn real_addresses_are_counted_and_stext_found() {
        let s = KallsymsSummary::parse(VISIBLE);
        assert_eq!(s.symbols, 6);
        assert_eq!(s.text_symbols, 5);
        assert_eq!(s.module_symbols, 1);
        assert_eq!(s.stext, Some(0xffff_ffff_8100_0000));
        assert!(!s.addresses_hidden());
    }

    #[test]
    fn zeroed_addresses_mean_hidden() {
        let hidden = "0000000000000000 T _stext\n0000000000000000 t do_one_initcall\n";
        let s = KallsymsSummary::parse(hidden);
        assert_eq!(s.symbols, 2);
        assert!(s.addresses_hidden());
        assert_eq!(s.stext, None);
    }

    #[test]
    fn an_empty_listing_is_not_hidden_but_empty() {
        let s = KallsymsSummary::parse("");
        assert_eq!(s.symbols, 0);
        assert!(!s.addresses_hidden());
    }
}
