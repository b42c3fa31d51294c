//! A sorted table of function symbols, merged from `.symtab`, `.dynsym` and
//! MiniDebugInfo, for address lookup when there is no DWARF.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// One function symbol: its start, end (exclusive) and raw name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Symbol {
    pub(crate) address: u64,
    pub(crate) end: u64,
    pub(crate) name: String,
}

/// Function symbols sorted by address, duplicates removed.
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    symbols: Vec<Symbol>,
}

impl SymbolTable {
    /// Adds the defined function symbols of `file`'s `.symtab` and `.dynsym`.
    pub(crate) fn add_from(&mut self, file: &object::File<'_>) {
        let all = file.symbols().chain(file.dynamic_symbols());
        for symbol in all {
            if symbol.kind() != SymbolKind::Text || symbol.is_undefined() || symbol.address() == 0 {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            if name.is_empty() {
                continue;
            }
            let address = symbol.address();
            let end = if symbol.size() > 0 {
                address.saturating_add(symbol.size())
            } else {
                // A symbol without size (`_start`, assembly) covers up to the
                // next symbol, but never past the end of its section.
                symbol
                    .section_index()
                    .and_then(|index| file.section_by_index(index).ok())
                    .map_or(address, |s| s.address().saturating_add(s.size()))
            };
            self.symbols.push(Symbol {
                address,
                end,
                name: name.to_string(),
            });
        }
    }

    /// Sorts the table; call once after the last [`SymbolTable::add_from`].
    /// At one address, the symbol reaching farthest sorts first.
    pub(crate) fn finish(&mut self) {
        self.symbols.sort_by(|a, b| {
            a.address
                .cmp(&b.address)
                .then(b.end.cmp(&a.end))
                .then(a.name.cmp(&b.name))
        });
        self.symbols
            .dedup_by(|b, a| a.address == b.address && a.name == b.name);
    }

    /// The symbol covering `address`: the last one starting at or before
    /// it, if it ends after it.
    pub(crate) fn find(&self, address: u64) -> Option<&Symbol> {
        let index = self.symbols.partition_point(|s| s.address <= address);
        let candidates = &self.symbols[..index];
        let last = candidates.last()?;
        // Several symbols may start at the same address (aliases); the
        // first of them reaches farthest.
        let start = candidates.partition_point(|s| s.address < last.address);
        let symbol = &candidates[start];
        (address < symbol.end).then_some(symbol)
    }
}

#[cfg(test)]
mod tests {
    use super::{Symbol, SymbolTable};

    fn table(symbols: &[(u64, u64, &str)]) -> SymbolTable {
        let mut table = SymbolTable {
            symbols: symbols
                .iter()
                .map(|&(address, end, name)| Symbol {
                    address,
                    end,
                    name: name.to_string(),
                })
                .collect(),
        };
        table.finish();
        table
    }

    #[test]
    fn finds_covering_symbol() {
        let t = table(&[(0x2000, 0x2010, "b"), (0x1000, 0x1020, "a")]);
        assert_eq!(t.find(0x1000).map(|s| s.name.as_str()), Some("a"));
        assert_eq!(t.find(0x101f).map(|s| s.name.as_str()), Some("a"));
        assert_eq!(t.find(0x1020), None);
        assert_eq!(t.find(0xfff), None);
        assert_eq!(t.find(0x2005).map(|s| s.name.as_str()), Some("b"));
    }

    #[test]
    fn aliases_prefer_the_farthest_reaching() {
        let t = table(&[
            (0x1000, 0x1000, "alias"),
            (0x1000, 0x1010, "real"),
            (0x1000, 0x1010, "real"),
        ]);
        assert_eq!(t.find(0x1008).map(|s| s.name.as_str()), Some("real"));
    }

    #[test]
    fn symbol_reaching_past_next_stops_at_next() {
        let t = table(&[(0x1000, 0x3000, "start"), (0x2000, 0x2004, "next")]);
        assert_eq!(t.find(0x1fff).map(|s| s.name.as_str()), Some("start"));
        assert_eq!(t.find(0x2004), None);
    }
}
