//! The commands that read memory or types at an address: `struct` (a
//! layout, or an instance printed as crash prints it), `sym` (the symbol
//! at an address, or a symbol's address), `rd` (64-bit words) and `dis`
//! (x86-64 disassembly in AT&T syntax, as crash and gdb print it).

use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, OpKind};
use kscope_vmcore::KernelMemory;
use serde::Serialize;

use crate::session::parse_hex;
use crate::types::{StructLayout, ValuePrinter, struct_layout};
use crate::{Error, Kernel};

/// The most words `rd` reads, and instructions `dis` decodes, at once.
pub const MAX_COUNT: u64 = 1 << 16;

/// `struct TYPE [ADDR]`: a type's layout, or an instance of it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StructReport {
    /// The layout: each member's offset, type and name.
    Layout(#[serde(serialize_with = "layout_json")] StructLayout),
    /// The struct at an address, printed as crash prints it.
    Value {
        /// The type's name as given.
        #[serde(rename = "type")]
        name: String,
        /// Its address.
        address: u64,
        /// The struct, printed.
        text: String,
    },
}

/// A layout as `struct`'s JSON has it: the type's name and size, and
/// each member's name, type, offset, bit offset, bitfield size and size.
fn layout_json<S: serde::Serializer>(
    layout: &StructLayout,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Field<'r> {
        name: &'r str,
        #[serde(rename = "type")]
        type_name: &'r str,
        offset: u64,
        bit_offset: u64,
        bitfield_size: u32,
        size: Option<u64>,
    }
    #[derive(Serialize)]
    struct Json<'r> {
        #[serde(rename = "type")]
        name: &'r str,
        size: u64,
        fields: Vec<Field<'r>>,
    }
    Json {
        name: &layout.name,
        size: layout.size,
        fields: (layout.fields.iter())
            .map(|field| Field {
                name: &field.name,
                type_name: &field.type_name,
                offset: field.offset,
                bit_offset: field.bit_offset,
                bitfield_size: field.bitfield_size,
                size: field.size,
            })
            .collect(),
    }
    .serialize(serializer)
}

/// `sym`: an address and the symbol at or below it.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolReport {
    /// The address asked about.
    pub address: u64,
    /// The symbol's kind, as `nm` letters it (`?` for VMCOREINFO's).
    pub kind: char,
    /// The symbol's name.
    pub symbol: String,
    /// Its address.
    pub symbol_address: u64,
    /// How far `address` is past it.
    pub offset: u64,
}

/// `rd`: 64-bit words of memory.
#[derive(Debug, Clone, Serialize)]
pub struct Words {
    /// The first word's address.
    pub address: u64,
    /// Whether it is physical.
    pub physical: bool,
    /// The words.
    pub words: Vec<u64>,
}

/// `dis`: decoded instructions.
#[derive(Debug, Clone, Serialize)]
pub struct Disassembly {
    /// Where decoding started.
    pub address: u64,
    /// The instructions.
    pub instructions: Vec<Instruction>,
}

/// One decoded instruction.
#[derive(Debug, Clone, Serialize)]
pub struct Instruction {
    /// Its address.
    pub address: u64,
    /// Its length in bytes.
    pub length: usize,
    /// Its AT&T text, a branch's target named.
    pub text: String,
    /// Its address as `symbol+0xoff`.
    #[serde(skip)]
    pub location: String,
}

impl Kernel<'_> {
    /// `struct TYPE [ADDR|SYMBOL]`: the layout of `name`, or, at an
    /// address, the struct printed with its values.
    ///
    /// # Errors
    ///
    /// As [`Kernel::address`] and [`Kernel::btf`]; [`Error::Type`] when
    /// the BTF has no such struct; and when its memory cannot be read.
    pub fn structure(&self, name: &str, at: Option<&str>) -> Result<StructReport, Error> {
        let address = at.map(|word| self.address(word)).transpose()?;
        let btf = self.btf()?;
        Ok(match address {
            Some(address) => StructReport::Value {
                text: ValuePrinter::new(btf)
                    .with_symbols(self.symbols()?)
                    .with_memory(self.memory())
                    .print_struct(name, address)?,
                name: name.to_string(),
                address,
            },
            None => StructReport::Layout(struct_layout(btf, name)?),
        })
    }

    /// `sym ADDR|NAME`: the symbol at or below an address; a name is
    /// answered with that symbol, not another at the same address
    /// (`swapper_pg_dir` and `init_top_pgt`).
    ///
    /// # Errors
    ///
    /// As [`Kernel::address`], and [`Error::Argument`] when no symbol is
    /// at or below the address.
    pub fn symbol(&self, word: &str) -> Result<SymbolReport, Error> {
        let address = self.address(word)?;
        let symbols = self.symbols()?;
        let named = (symbols.get(word))
            .filter(|s| s.address == address)
            .map(|s| (s, 0));
        let (symbol, offset) = named
            .or_else(|| symbols.lookup(address))
            .ok_or_else(|| Error::Argument(format!("no symbol at or below {address:#x}")))?;
        Ok(SymbolReport {
            address,
            kind: symbol.kind,
            symbol: symbol.name.clone(),
            symbol_address: symbol.address,
            offset,
        })
    }

    /// `rd [-p] ADDR|NAME [COUNT]`: `count` 64-bit words from a kernel
    /// virtual address (a symbol or hex), or with `physical` a physical
    /// one (hex).
    ///
    /// # Errors
    ///
    /// [`Error::Argument`] for a count beyond [`MAX_COUNT`] or a word
    /// that is no address, and [`Error::Memory`] when the dump does not
    /// hold the words.
    pub fn read_words(&self, word: &str, count: u64, physical: bool) -> Result<Words, Error> {
        if count == 0 || count > MAX_COUNT {
            return Err(Error::Argument(format!("a count is 1 to {MAX_COUNT}")));
        }
        let start = if physical {
            parse_hex(word)
                .ok_or_else(|| Error::Argument(format!("{word:?} is not a hex address")))?
        } else {
            self.address(word)?
        };
        let mut bytes = vec![0; count as usize * 8];
        let read = if physical {
            self.dump().read_phys(start, &mut bytes)
        } else {
            self.memory().read_virt(start, &mut bytes)
        };
        read.map_err(|source| Error::Memory {
            what: format!("{count} words at {start:#x}"),
            source,
        })?;
        let words = (bytes.chunks_exact(8))
            .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
            .collect();
        Ok(Words {
            address: start,
            physical,
            words,
        })
    }

    /// `dis ADDR|NAME [COUNT]`: `count` instructions from an address, or
    /// without a count the whole function a name starts (up to the next
    /// symbol), in AT&T syntax with branch targets named.
    ///
    /// # Errors
    ///
    /// As [`Kernel::address`]; [`Error::Argument`] for a count beyond
    /// [`MAX_COUNT`]; [`Error::Memory`] when the first byte cannot be
    /// read.
    pub fn disassemble(&self, word: &str, count: Option<u64>) -> Result<Disassembly, Error> {
        if count.is_some_and(|count| count == 0 || count > MAX_COUNT) {
            return Err(Error::Argument(format!("a count is 1 to {MAX_COUNT}")));
        }
        let start = self.address(word)?;
        let symbols = self.symbols()?;
        // A function ends where the next symbol starts; a bare address or
        // a count reads enough for the count.
        let end = match (count, symbols.lookup(start)) {
            (None, Some((symbol, 0))) => (symbols.symbols().iter())
                .find(|s| s.address > symbol.address)
                .map_or(start + 256, |next| next.address.min(start + (1 << 16))),
            (Some(count), _) => start + count * 15,
            (None, _) => start + 15,
        };
        let want = count.unwrap_or(u64::MAX);
        let mut code = vec![0; (end - start) as usize];
        read_prefix(self.memory(), start, &mut code)?;
        let mut decoder = Decoder::with_ip(64, &code, start, DecoderOptions::NONE);
        let mut formatter = GasFormatter::new();
        // As gdb (and so crash) spell it: lower-case 0x hex, operands in a
        // column.
        formatter.options_mut().set_uppercase_hex(false);
        formatter.options_mut().set_hex_prefix("0x");
        formatter.options_mut().set_hex_suffix("");
        formatter.options_mut().set_first_operand_char_index(7);
        let mut instruction = iced_x86::Instruction::default();
        let mut instructions = Vec::new();
        while decoder.can_decode() && (instructions.len() as u64) < want {
            decoder.decode_out(&mut instruction);
            if instruction.is_invalid() && count.is_none() {
                break;
            }
            let mut text = String::new();
            formatter.format(&instruction, &mut text);
            let branch = instruction.op_count() > 0
                && matches!(
                    instruction.op0_kind(),
                    OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
                );
            if branch {
                let target = instruction.near_branch_target();
                text.push_str(&format!(" <{}>", self.describe(target)));
            }
            instructions.push(Instruction {
                address: instruction.ip(),
                length: instruction.len(),
                text,
                location: self.describe(instruction.ip()),
            });
        }
        Ok(Disassembly {
            address: start,
            instructions,
        })
    }
}

/// Reads as much of `buf` as the dump holds from `start` on: code near the
/// end of a mapping is still disassembled up to it.
fn read_prefix(memory: &KernelMemory<'_>, start: u64, buf: &mut [u8]) -> Result<(), Error> {
    let first = buf.len().min(4096 - (start % 4096) as usize);
    memory
        .read_virt(start, &mut buf[..first])
        .map_err(|source| Error::Memory {
            what: format!("kernel memory at {start:#x}"),
            source,
        })?;
    let mut done = first;
    while done < buf.len() {
        let n = (buf.len() - done).min(4096);
        if memory
            .read_virt(start + done as u64, &mut buf[done..done + n])
            .is_err()
        {
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}
