//! The kernel's own symbol table, decoded from the kallsyms tables in its
//! memory: what `/proc/kallsyms` shows, found in a dump through the
//! `SYMBOL(kallsyms_*)` entries of VMCOREINFO (kernels 6.0 and later
//! write them for dump readers that have no System.map).
//!
//! The layout, as `scripts/kallsyms.c` writes it and `kernel/kallsyms.c`
//! reads it:
//!
//! - `kallsyms_num_syms`: a `u32`, the number of symbols.
//! - `kallsyms_names`: one entry per symbol, in address order: a length,
//!   then that many token numbers (bytes). The length is one byte, or,
//!   from 6.1, two when the first has bit 7 set (the low 7 bits, then the
//!   next byte shifted left by 7). Expanded, the tokens spell the symbol's
//!   `nm` kind (one character) and its name.
//! - `kallsyms_token_table`: 256 NUL-terminated strings;
//!   `kallsyms_token_index`: 256 `u16` offsets of them in the table.
//! - With CONFIG_KALLSYMS_BASE_RELATIVE, `kallsyms_offsets` (one `i32` per
//!   symbol) and `kallsyms_relative_base` (a `u64`): an address is the
//!   base plus the offset taken as unsigned, except with
//!   CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP), where an offset of 0 or
//!   more is itself the address (per-CPU symbols, which start at 0) and a
//!   negative one is `relative_base - 1 - offset`. Without it,
//!   `kallsyms_addresses`: one `u64` per symbol.
//!
//! Kernels 6.1 and older keep symbols in `kallsyms_names` unsorted by
//! name and have no size for them; a lookup by address takes the closest
//! symbol below. The counts are bounded ([`MAX_SYMBOLS`], names of at most
//! [`KSYM_NAME_LEN`] bytes), so a damaged dump gives an error, not a hang
//! or an allocation without end.

use kscope_vmcore::VmcoreInfo;

use crate::Error;
use crate::memory::KernelRead;
use crate::symbols::{KernelSymbol, SymbolTable};

/// The most symbols accepted (a distribution kernel has about 100,000;
/// one with every option built in, a few hundred thousand).
pub const MAX_SYMBOLS: u32 = 1 << 22;

/// The longest name the kernel allows, its kind character included
/// (`KSYM_NAME_LEN` of 6.1 and later; older kernels allow 128).
pub const KSYM_NAME_LEN: usize = 512;

/// How much of `kallsyms_names` is read at a time.
const CHUNK: usize = 64 << 10;

/// Where a kernel keeps its symbol addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KallsymsAddresses {
    /// `kallsyms_offsets` and `kallsyms_relative_base`
    /// (CONFIG_KALLSYMS_BASE_RELATIVE).
    Relative {
        /// The address of `kallsyms_offsets`.
        offsets: u64,
        /// The address of `kallsyms_relative_base`.
        relative_base: u64,
    },
    /// `kallsyms_addresses`.
    Absolute {
        /// The address of `kallsyms_addresses`.
        addresses: u64,
    },
}

/// The addresses of the kallsyms tables in the crashed kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KallsymsTables {
    /// `kallsyms_num_syms`.
    pub num_syms: u64,
    /// `kallsyms_names`.
    pub names: u64,
    /// `kallsyms_token_table`.
    pub token_table: u64,
    /// `kallsyms_token_index`.
    pub token_index: u64,
    /// Where the symbols' addresses are.
    pub addresses: KallsymsAddresses,
}

impl KallsymsTables {
    /// The tables that VMCOREINFO's `SYMBOL()` entries locate.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSymbol`] naming the first table VMCOREINFO lacks
    /// (kernels before 6.0 do not write them).
    pub fn from_vmcoreinfo(info: &VmcoreInfo) -> Result<KallsymsTables, Error> {
        let symbol = |name: &str| {
            info.symbol(name)
                .ok_or_else(|| Error::MissingSymbol(format!("{name} (in VMCOREINFO)")))
        };
        let addresses = match (
            info.symbol("kallsyms_offsets"),
            info.symbol("kallsyms_relative_base"),
        ) {
            (Some(offsets), Some(relative_base)) => KallsymsAddresses::Relative {
                offsets,
                relative_base,
            },
            _ => KallsymsAddresses::Absolute {
                addresses: symbol("kallsyms_addresses")?,
            },
        };
        Ok(KallsymsTables {
            num_syms: symbol("kallsyms_num_syms")?,
            names: symbol("kallsyms_names")?,
            token_table: symbol("kallsyms_token_table")?,
            token_index: symbol("kallsyms_token_index")?,
            addresses,
        })
    }

    /// Decodes every symbol.
    ///
    /// # Errors
    ///
    /// [`Error::Memory`] when the dump lacks a table's bytes, and
    /// [`Error::Corrupt`] when the tables do not have the kernel's shape
    /// (too many symbols, a name of length 0 or longer than
    /// [`KSYM_NAME_LEN`]).
    pub fn read(&self, memory: &impl KernelRead) -> Result<SymbolTable, Error> {
        let count = memory
            .read_u32(self.num_syms)
            .map_err(|source| Error::Memory {
                what: "kallsyms_num_syms".into(),
                source,
            })?;
        if count > MAX_SYMBOLS {
            return Err(Error::Corrupt(format!(
                "kallsyms_num_syms is {count}, more than the {MAX_SYMBOLS} a kernel can have"
            )));
        }
        let count = count as usize;
        let tokens = self.tokens(memory)?;
        let addresses = self.addresses(memory, count)?;
        let mut names = NameStream {
            memory,
            next: self.names,
            buf: Vec::new(),
            at: 0,
            read: 0,
            // Each name takes at most two length bytes and 0x3fff tokens.
            limit: (count as u64).saturating_mul(2 + 0x3fff),
        };
        let mut symbols = Vec::with_capacity(count);
        let mut expanded = Vec::with_capacity(KSYM_NAME_LEN);
        for (i, address) in addresses.into_iter().enumerate() {
            let first = names.byte()?;
            let len = if first & 0x80 != 0 {
                usize::from(first & 0x7f) | usize::from(names.byte()?) << 7
            } else {
                usize::from(first)
            };
            if len == 0 {
                return Err(Error::Corrupt(format!(
                    "kallsyms_names: symbol {i} of {count} has length 0"
                )));
            }
            expanded.clear();
            for _ in 0..len {
                let token = &tokens[usize::from(names.byte()?)];
                expanded.extend_from_slice(token);
                if expanded.len() > KSYM_NAME_LEN {
                    return Err(Error::Corrupt(format!(
                        "kallsyms_names: symbol {i} of {count} expands past {KSYM_NAME_LEN} bytes"
                    )));
                }
            }
            let Some((&kind, name)) = expanded.split_first() else {
                return Err(Error::Corrupt(format!(
                    "kallsyms_names: symbol {i} of {count} expands to nothing"
                )));
            };
            symbols.push(KernelSymbol {
                name: String::from_utf8_lossy(name).into_owned(),
                address,
                kind: char::from(kind),
            });
        }
        Ok(SymbolTable::new(symbols))
    }

    /// The 256 tokens.
    fn tokens(&self, memory: &impl KernelRead) -> Result<Vec<Vec<u8>>, Error> {
        let index = memory
            .read_vec(self.token_index, 256 * 2)
            .map_err(|source| Error::Memory {
                what: "kallsyms_token_index".into(),
                source,
            })?;
        index
            .chunks_exact(2)
            .map(|b| {
                let offset = u64::from(u16::from_le_bytes([b[0], b[1]]));
                memory
                    .read_cstr(self.token_table.wrapping_add(offset), KSYM_NAME_LEN)
                    .map_err(|source| Error::Memory {
                        what: format!("kallsyms_token_table at offset {offset}"),
                        source,
                    })
            })
            .collect()
    }

    /// The address of each of the `count` symbols.
    fn addresses(&self, memory: &impl KernelRead, count: usize) -> Result<Vec<u64>, Error> {
        match self.addresses {
            KallsymsAddresses::Absolute { addresses } => {
                let bytes =
                    memory
                        .read_vec(addresses, count * 8)
                        .map_err(|source| Error::Memory {
                            what: "kallsyms_addresses".into(),
                            source,
                        })?;
                Ok(bytes
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect())
            }
            KallsymsAddresses::Relative {
                offsets,
                relative_base,
            } => {
                let base = memory
                    .read_u64(relative_base)
                    .map_err(|source| Error::Memory {
                        what: "kallsyms_relative_base".into(),
                        source,
                    })?;
                let bytes =
                    memory
                        .read_vec(offsets, count * 4)
                        .map_err(|source| Error::Memory {
                            what: "kallsyms_offsets".into(),
                            source,
                        })?;
                let offsets: Vec<i32> = bytes
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                // Only the absolute-percpu encoding has negative offsets:
                // without it every offset is an unsigned distance from a
                // base below the whole image, and with it every symbol of
                // the image is negative.
                let absolute_percpu = offsets.iter().any(|&o| o < 0);
                Ok(offsets
                    .into_iter()
                    .map(|o| {
                        if !absolute_percpu {
                            base.wrapping_add(u64::from(o as u32))
                        } else if o >= 0 {
                            o as u64
                        } else {
                            base.wrapping_sub(1).wrapping_sub(i64::from(o) as u64)
                        }
                    })
                    .collect())
            }
        }
    }
}

/// `kallsyms_names`, read a chunk at a time: its length is nowhere
/// stored, and its end may be the end of mapped memory.
struct NameStream<'m, M: KernelRead + ?Sized> {
    memory: &'m M,
    /// The address of the next chunk.
    next: u64,
    buf: Vec<u8>,
    at: usize,
    /// Bytes read so far, and the most there may be.
    read: u64,
    limit: u64,
}

impl<M: KernelRead + ?Sized> NameStream<'_, M> {
    fn byte(&mut self) -> Result<u8, Error> {
        if self.at == self.buf.len() {
            self.refill()?;
        }
        let b = self.buf[self.at];
        self.at += 1;
        Ok(b)
    }

    fn refill(&mut self) -> Result<(), Error> {
        if self.read >= self.limit {
            return Err(Error::Corrupt(
                "kallsyms_names is longer than its symbols can take".into(),
            ));
        }
        // Up to the next page boundary, then whole chunks: a shorter read
        // where the table ends before unmapped memory.
        let to_page = 4096 - (self.next % 4096) as usize;
        let len = if to_page < 4096 { to_page } else { CHUNK };
        let len = len.min((self.limit - self.read).min(CHUNK as u64) as usize);
        self.buf.resize(len, 0);
        let attempt = self.memory.read_virt(self.next, &mut self.buf);
        if let Err(source) = attempt {
            // The table may end within the chunk: retry one page.
            let page = 4096usize.min(len);
            self.buf.truncate(page);
            self.memory
                .read_virt(self.next, &mut self.buf)
                .map_err(|_| Error::Memory {
                    what: format!("kallsyms_names at {:#x}", self.next),
                    source,
                })?;
        }
        self.next = self.next.wrapping_add(self.buf.len() as u64);
        self.read += self.buf.len() as u64;
        self.at = 0;
        Ok(())
    }
}

/// The kernel's symbols, decoded from the kallsyms tables that the dump's
/// VMCOREINFO locates.
///
/// # Errors
///
/// As [`KallsymsTables::from_vmcoreinfo`] and [`KallsymsTables::read`].
pub fn read_kallsyms(memory: &impl KernelRead, info: &VmcoreInfo) -> Result<SymbolTable, Error> {
    KallsymsTables::from_vmcoreinfo(info)?.read(memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryImage;

    const BASE: u64 = 0xffff_ffff_8100_0000;
    const NUM: u64 = 0xffff_ffff_8200_0000;
    const NAMES: u64 = 0xffff_ffff_8200_1000;
    const TABLE: u64 = 0xffff_ffff_8201_0000;
    const INDEX: u64 = 0xffff_ffff_8202_0000;
    const OFFSETS: u64 = 0xffff_ffff_8203_0000;
    const RELATIVE_BASE: u64 = 0xffff_ffff_8204_0000;

    fn tables() -> KallsymsTables {
        KallsymsTables {
            num_syms: NUM,
            names: NAMES,
            token_table: TABLE,
            token_index: INDEX,
            addresses: KallsymsAddresses::Relative {
                offsets: OFFSETS,
                relative_base: RELATIVE_BASE,
            },
        }
    }

    /// Tables with one token per byte value (token `b` is the byte `b`
    /// itself, and 0x80.. are two-letter tokens), encoding `symbols` of
    /// (kind+name, offset).
    fn image(symbols: &[(&str, i32)]) -> MemoryImage {
        let mut table = Vec::new();
        let mut index = Vec::new();
        for b in 0..=255u8 {
            index.extend_from_slice(&(table.len() as u16).to_le_bytes());
            if b >= 0x80 {
                table.extend_from_slice(b"ab");
            } else {
                table.push(b);
            }
            table.push(0);
        }
        let mut names = Vec::new();
        let mut offsets = Vec::new();
        for (name, offset) in symbols {
            let len = name.len();
            if len > 0x7f {
                names.push((len as u8 & 0x7f) | 0x80);
                names.push((len >> 7) as u8);
            } else {
                names.push(len as u8);
            }
            names.extend_from_slice(name.as_bytes());
            offsets.extend_from_slice(&offset.to_le_bytes());
        }
        // Memory comes in pages: the tables' pages are all there.
        names.resize(names.len().max(4096), 0);
        table.resize(4096, 0);
        let mut image = MemoryImage::default();
        image.insert(NUM, (symbols.len() as u32).to_le_bytes().to_vec());
        image.insert(NAMES, names);
        image.insert(TABLE, table);
        image.insert(INDEX, index);
        image.insert(OFFSETS, offsets);
        image.insert(RELATIVE_BASE, BASE.to_le_bytes().to_vec());
        image
    }

    /// `bytes` padded to a page, as memory comes.
    fn page(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.resize(bytes.len().max(4096), 0);
        bytes
    }

    #[test]
    fn absolute_percpu_offsets_and_big_names_decode() {
        let long = format!("t{}", "x".repeat(200));
        let memory = image(&[
            ("Dfixed_percpu_data", 0),
            ("Dcpu_tss_rw", 0x6000),
            ("T_text", -1),
            ("Tdo_one_initcall", -0x1001),
            (&long, -0x2001),
        ]);
        let table = tables().read(&memory).expect("decodes");
        assert_eq!(table.len(), 5);
        assert_eq!(table.address("fixed_percpu_data"), Some(0));
        assert_eq!(table.address("cpu_tss_rw"), Some(0x6000));
        assert_eq!(table.address("_text"), Some(BASE));
        assert_eq!(table.address("do_one_initcall"), Some(BASE + 0x1000));
        assert_eq!(table.address(&long[1..]), Some(BASE + 0x2000));
        let (symbol, offset) = table.lookup(BASE + 0x1010).expect("found");
        assert_eq!(
            (symbol.name.as_str(), symbol.kind, offset),
            ("do_one_initcall", 'T', 0x10)
        );
    }

    #[test]
    fn unsigned_offsets_are_relative_to_the_base() {
        let memory = image(&[("T_text", 0), ("tlate", 0x3fff_0000)]);
        let table = tables().read(&memory).expect("decodes");
        assert_eq!(table.address("late"), Some(BASE + 0x3fff_0000));
    }

    #[test]
    fn tokens_expand_to_several_letters() {
        // Byte 0x80 is the token "ab".
        let mut memory = image(&[("Tx", -1)]);
        memory.insert(NAMES, page(vec![3, b'T', 0x80, 0x80]));
        let table = tables().read(&memory).expect("decodes");
        assert_eq!(table.address("abab"), Some(BASE));
    }

    #[test]
    fn hostile_tables_are_errors() {
        let mut memory = image(&[("Tx", -1)]);
        memory.insert(NUM, (MAX_SYMBOLS + 1).to_le_bytes().to_vec());
        let err = tables().read(&memory).expect_err("too many");
        assert!(err.to_string().contains("kallsyms_num_syms"), "{err}");

        let mut memory = image(&[("Tx", -1)]);
        memory.insert(NAMES, page(vec![0, 0, 0]));
        let err = tables().read(&memory).expect_err("length 0");
        assert!(err.to_string().contains("length 0"), "{err}");

        // 0x3fff tokens of two letters each: far past KSYM_NAME_LEN.
        let mut memory = image(&[("Tx", -1)]);
        let mut names = vec![0xff, 0x7f];
        names.resize(2 + 0x3fff, 0x80);
        memory.insert(NAMES, page(names));
        let err = tables().read(&memory).expect_err("too long");
        assert!(err.to_string().contains("expands past"), "{err}");

        // More symbols than the names table holds: it ends in unmapped
        // memory.
        let mut memory = image(&[("Tx", -1)]);
        memory.insert(NUM, 2049u32.to_le_bytes().to_vec());
        memory.insert(NAMES, [1, b'x'].repeat(2048));
        memory.insert(OFFSETS, vec![0xff; 2049 * 4]);
        let err = tables().read(&memory).expect_err("short names");
        assert!(err.to_string().contains("kallsyms_names at"), "{err}");

        let mut memory = image(&[("Tx", -1)]);
        memory.insert(INDEX, vec![0xff; 10]);
        assert!(tables().read(&memory).is_err());
    }

    #[test]
    fn vmcoreinfo_locates_the_tables() {
        let info = VmcoreInfo::parse(&format!(
            "SYMBOL(kallsyms_names)={NAMES:x}\nSYMBOL(kallsyms_num_syms)={NUM:x}\n\
             SYMBOL(kallsyms_token_table)={TABLE:x}\nSYMBOL(kallsyms_token_index)={INDEX:x}\n\
             SYMBOL(kallsyms_offsets)={OFFSETS:x}\nSYMBOL(kallsyms_relative_base)={RELATIVE_BASE:x}\n"
        ));
        assert_eq!(
            KallsymsTables::from_vmcoreinfo(&info).expect("found"),
            tables()
        );
        let table = read_kallsyms(&image(&[("Tx", -1)]), &info).expect("decodes");
        assert_eq!(table.address("x"), Some(BASE));

        let info = VmcoreInfo::parse("SYMBOL(kallsyms_names)=ffffffff81000000\n");
        let err = KallsymsTables::from_vmcoreinfo(&info).expect_err("incomplete");
        assert!(err.to_string().contains("kallsyms_addresses"), "{err}");

        let info = VmcoreInfo::parse(
            "SYMBOL(kallsyms_names)=1\nSYMBOL(kallsyms_num_syms)=2\nSYMBOL(kallsyms_token_table)=3\n\
             SYMBOL(kallsyms_token_index)=4\nSYMBOL(kallsyms_addresses)=5\n",
        );
        let tables = KallsymsTables::from_vmcoreinfo(&info).expect("found");
        assert_eq!(
            tables.addresses,
            KallsymsAddresses::Absolute { addresses: 5 }
        );
    }

    #[test]
    fn absolute_addresses_are_read_as_they_are() {
        let mut memory = image(&[("Tx", 0)]);
        memory.insert(OFFSETS, BASE.to_le_bytes().to_vec());
        let tables = KallsymsTables {
            addresses: KallsymsAddresses::Absolute { addresses: OFFSETS },
            ..tables()
        };
        let table = tables.read(&memory).expect("decodes");
        assert_eq!(table.address("x"), Some(BASE));
    }
}
