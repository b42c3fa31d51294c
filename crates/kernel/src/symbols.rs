//! The kernel's symbol table: names, addresses and `nm` kinds, sorted for
//! address lookups, from a System.map or from the dump's kallsyms.

use std::collections::HashMap;
use std::path::Path;

use crate::Error;

/// The lowest address of the kernel image (`__START_KERNEL_map`); KASLR
/// moves the symbols at or above it, not the per-CPU offsets and absolute
/// values below.
pub const KERNEL_IMAGE_BASE: u64 = 0xffff_ffff_8000_0000;

/// One symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSymbol {
    /// The symbol's name.
    pub name: String,
    /// Its address in the crashed kernel.
    pub address: u64,
    /// Its `nm` kind: `T`/`t` text, `D`/`d` data, `B`/`b` bss, `R`/`r`
    /// read-only, `A` absolute, `W` weak...
    pub kind: char,
}

/// The symbols, sorted by address, with an index by name.
#[derive(Debug, Default, Clone)]
pub struct SymbolTable {
    symbols: Vec<KernelSymbol>,
    by_name: HashMap<String, usize>,
}

impl SymbolTable {
    /// A table of `symbols` (in any order).
    pub fn new(mut symbols: Vec<KernelSymbol>) -> SymbolTable {
        symbols.sort_by(|a, b| a.address.cmp(&b.address).then_with(|| a.name.cmp(&b.name)));
        let mut by_name = HashMap::with_capacity(symbols.len());
        for (i, symbol) in symbols.iter().enumerate() {
            by_name.entry(symbol.name.clone()).or_insert(i);
        }
        SymbolTable { symbols, by_name }
    }

    /// Parses a System.map (`ADDRESS KIND NAME` lines), moving the kernel
    /// image's symbols by `kaslr_offset` (the dump's KERNELOFFSET).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the first line that is not a symbol.
    pub fn from_system_map(text: &str, kaslr_offset: u64) -> Result<SymbolTable, Error> {
        let mut symbols = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let parsed = (|| {
                let address = u64::from_str_radix(fields.next()?, 16).ok()?;
                let mut kind = fields.next()?.chars();
                let (kind, None) = (kind.next()?, kind.next()) else {
                    return None;
                };
                let name = fields.next()?.to_string();
                Some((address, kind, name))
            })();
            let Some((address, kind, name)) = parsed else {
                return Err(Error::Corrupt(format!(
                    "System.map line {}: not `ADDRESS KIND NAME`: {line:?}",
                    n + 1
                )));
            };
            let address = if address >= KERNEL_IMAGE_BASE {
                address.wrapping_add(kaslr_offset)
            } else {
                address
            };
            symbols.push(KernelSymbol {
                name,
                address,
                kind,
            });
        }
        Ok(SymbolTable::new(symbols))
    }

    /// Reads and parses the System.map at `path`; see
    /// [`SymbolTable::from_system_map`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, else as
    /// [`SymbolTable::from_system_map`].
    pub fn read_system_map(path: &Path, kaslr_offset: u64) -> Result<SymbolTable, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        SymbolTable::from_system_map(&text, kaslr_offset)
    }

    /// The symbol table of a vmlinux ELF file (its `.symtab`), moved by
    /// `kaslr_offset`, after checking that its build-id is `build_id`
    /// (the dump's VMCOREINFO `BUILD-ID`, when it has one).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, [`Error::Corrupt`] when
    /// it is not an ELF file with symbols or its build-id is another's.
    pub fn read_vmlinux(
        path: &Path,
        kaslr_offset: u64,
        build_id: Option<&[u8]>,
    ) -> Result<SymbolTable, Error> {
        use object::{Object, ObjectSymbol, SymbolKind};
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = object::File::parse(&*bytes)
            .map_err(|e| Error::Corrupt(format!("{}: not an ELF file: {e}", path.display())))?;
        let hex = |id: &[u8]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
        if let Some(expected) = build_id {
            let theirs = file.build_id().ok().flatten();
            if theirs != Some(expected) {
                return Err(Error::Corrupt(format!(
                    "{} is build-id {}, but the dump's kernel is {}: another build",
                    path.display(),
                    theirs.map_or_else(|| "none".to_string(), hex),
                    hex(expected)
                )));
            }
        }
        let mut symbols = Vec::new();
        for symbol in file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            if name.is_empty() || symbol.is_undefined() {
                continue;
            }
            let kind = match symbol.kind() {
                SymbolKind::Text => 't',
                SymbolKind::Data => 'd',
                SymbolKind::Unknown if symbol.address() == 0 => continue,
                _ => '?',
            };
            let kind = if symbol.is_global() {
                kind.to_ascii_uppercase()
            } else {
                kind
            };
            let address = symbol.address();
            let address = if address >= KERNEL_IMAGE_BASE {
                address.wrapping_add(kaslr_offset)
            } else {
                address
            };
            symbols.push(KernelSymbol {
                name: name.to_string(),
                address,
                kind,
            });
        }
        if symbols.is_empty() {
            return Err(Error::Corrupt(format!("{} has no symbols", path.display())));
        }
        Ok(SymbolTable::new(symbols))
    }

    /// Checks the table against the addresses the dump's kernel wrote in
    /// VMCOREINFO (`(name, address)` of its `SYMBOL()` entries): a System.map
    /// of another build, or a wrong KASLR offset, disagrees.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the first symbol whose address differs.
    pub fn check_against(&self, known: &[(String, u64)]) -> Result<(), Error> {
        for (name, address) in known {
            if let Some(ours) = self.address(name)
                && ours != *address
            {
                return Err(Error::Corrupt(format!(
                    "the symbols do not match the dump: {name} is at {ours:#x} in them and at {address:#x} in the dump's VMCOREINFO (another kernel build?)"
                )));
            }
        }
        Ok(())
    }

    /// The address of `name`, if the table has it.
    pub fn address(&self, name: &str) -> Option<u64> {
        self.get(name).map(|symbol| symbol.address)
    }

    /// The symbol called `name` (the lowest, when several are).
    pub fn get(&self, name: &str) -> Option<&KernelSymbol> {
        self.by_name.get(name).map(|&i| &self.symbols[i])
    }

    /// The address of `name`, or [`Error::MissingSymbol`].
    ///
    /// # Errors
    ///
    /// [`Error::MissingSymbol`] when the table lacks `name`.
    pub fn required(&self, name: &str) -> Result<u64, Error> {
        self.address(name)
            .ok_or_else(|| Error::MissingSymbol(name.to_string()))
    }

    /// The symbol at or below `address` and the offset into it; `None`
    /// below the first symbol. (Symbol sizes are not in System.map or
    /// kallsyms: past a function's end this names the function before
    /// the next symbol.)
    pub fn lookup(&self, address: u64) -> Option<(&KernelSymbol, u64)> {
        let after = self.symbols.partition_point(|s| s.address <= address);
        let at = self.symbols.get(after.checked_sub(1)?)?.address;
        // Of the symbols at one address, the first by name.
        let first = self.symbols.partition_point(|s| s.address < at);
        let symbol = &self.symbols[first];
        Some((symbol, address - symbol.address))
    }

    /// Every symbol, sorted by address.
    pub fn symbols(&self) -> &[KernelSymbol] {
        &self.symbols
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "\
0000000000000000 D __per_cpu_start
00000000000001ea A kexec_control_code_size
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81001000 T do_one_initcall
ffffffff82600000 D linux_banner
";

    #[test]
    fn system_map_symbols_move_by_the_kaslr_offset_above_the_image_base() {
        let table = SymbolTable::from_system_map(MAP, 0x1660_0000).expect("parses");
        assert_eq!(table.len(), 6);
        assert_eq!(table.address("__per_cpu_start"), Some(0));
        assert_eq!(table.address("kexec_control_code_size"), Some(0x1ea));
        assert_eq!(
            table.address("do_one_initcall"),
            Some(0xffff_ffff_9760_1000)
        );
        let (symbol, offset) = table.lookup(0xffff_ffff_9760_1010).expect("found");
        assert_eq!((symbol.name.as_str(), offset), ("do_one_initcall", 0x10));
        assert_eq!(symbol.kind, 'T');
    }

    #[test]
    fn lookups_below_the_first_symbol_and_between_symbols() {
        let table = SymbolTable::from_system_map(MAP, 0).expect("parses");
        let (symbol, offset) = table.lookup(0xffff_ffff_8100_0fff).expect("found");
        // Two symbols at one address: the first by name.
        assert_eq!((symbol.name.as_str(), offset), ("_stext", 0xfff));
        let empty = SymbolTable::default();
        assert!(empty.lookup(0x1000).is_none());
        assert!(empty.is_empty());
    }

    #[test]
    fn a_line_that_is_not_a_symbol_is_refused_with_its_number() {
        let err = SymbolTable::from_system_map("ffffffff81000000 T _stext\nhello\n", 0)
            .expect_err("refused");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = SymbolTable::from_system_map("ffffffff81000000 TT x\n", 0).expect_err("refused");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(SymbolTable::required(&SymbolTable::default(), "x").is_err());
    }
}
