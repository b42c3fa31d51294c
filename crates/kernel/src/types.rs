//! The kernel's types, from its BTF: a struct's layout (every member C
//! code can name, through anonymous structs and unions, with its type
//! spelled as C spells it and its byte and bit offsets), a member's offset
//! by dotted path, and a struct instance printed as crash's
//! `struct TYPE ADDRESS` prints it ([`ValuePrinter`]).
//!
//! crash prints values through gdb, with `print pretty on`, no limit on
//! elements or repeats, and symbols shown: one member a line, nested
//! structs and arrays of structs indented two spaces a level, integers in
//! decimal, `char`-typed integers with their character (`0 '\000'`),
//! `char` arrays as strings of every byte but a last NUL, pointers in hex
//! followed by `<symbol+offset>` when they point into the kernel image
//! and by the string they point at when they are `char` pointers, enums
//! by name. [`ValuePrinter`] does the same from BTF and the dump alone.

use kscope_btf::{Btf, Kind, Member, TypeId};

use crate::Error;
use crate::memory::KernelRead;
use crate::symbols::SymbolTable;

/// The largest struct [`ValuePrinter::print_struct`] reads (a `task_struct` is about
/// 10 KiB).
pub const MAX_STRUCT_SIZE: u64 = 1 << 20;

/// The longest string a `char` pointer shows.
const MAX_POINTED_STRING: usize = 4096;

/// How deep values nest before the printer stops (C types nest a few
/// levels; a damaged BTF may nest without end).
const MAX_NESTING: usize = 64;

/// How long one printed value may grow: every value, member and element
/// adds to the text, so this also bounds the work when a damaged BTF
/// makes a struct hold several members of its own type (N^64 values by
/// depth alone). A 1 MiB `char` array with every byte escaped is 4 MiB.
const MAX_PRINTED: usize = 8 << 20;

/// The id of the type that `name` names: `struct task_struct`,
/// `task_struct` (tried as a struct, then a union), `union
/// thread_union`, `pid_t`, `unsigned long`.
///
/// # Errors
///
/// [`Error::Type`] when BTF has no such type.
pub fn find_type(btf: &Btf<'_>, name: &str) -> Result<TypeId, Error> {
    let name = name.trim();
    btf.find(name)
        .or_else(|| btf.find(&format!("struct {name}")))
        .or_else(|| btf.find(&format!("union {name}")))
        .ok_or_else(|| Error::Type(format!("the kernel's BTF has no type {name}")))
}

/// One member of a struct as C code names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The member's name (a member of an anonymous struct or union
    /// member has its own name: C reaches it directly).
    pub name: String,
    /// Its type as C spells it: `struct list_head`, `char [16]`,
    /// `void (*)(struct callback_head *)`.
    pub type_name: String,
    /// Its type.
    pub type_id: TypeId,
    /// Its offset in bytes (of the byte that holds a bitfield's first
    /// bit).
    pub offset: u64,
    /// Its offset in bits.
    pub bit_offset: u64,
    /// Its width in bits when it is a bitfield, else 0.
    pub bitfield_size: u32,
    /// Its size in bytes (that of the bitfield's type for a bitfield);
    /// None for a type without a size (a flexible array's element...).
    pub size: Option<u64>,
}

/// A struct's or union's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    /// `struct NAME` or `union NAME`.
    pub name: String,
    /// Its type.
    pub type_id: TypeId,
    /// `sizeof`.
    pub size: u64,
    /// Its members, anonymous struct and union members replaced by
    /// theirs, in offset order as declared.
    pub fields: Vec<Field>,
}

/// The layout of struct or union `name` (see [`find_type`] for names).
///
/// # Errors
///
/// [`Error::Type`] when BTF has no such type or it is not a struct or
/// union.
pub fn struct_layout(btf: &Btf<'_>, name: &str) -> Result<StructLayout, Error> {
    let type_id = btf.resolve(find_type(btf, name)?);
    let members = btf
        .flat_members(type_id)
        .ok_or_else(|| Error::Type(format!("{name} is not a struct or union")))?;
    let fields = members
        .iter()
        .map(|m| Field {
            name: m.name.to_string(),
            type_name: btf.type_name(m.type_id),
            type_id: m.type_id,
            offset: m.byte_offset(),
            bit_offset: m.bit_offset,
            bitfield_size: m.bitfield_size,
            size: btf.size(m.type_id),
        })
        .collect();
    Ok(StructLayout {
        name: btf.type_name(type_id),
        type_id,
        size: btf.size(type_id).unwrap_or(0),
        fields,
    })
}

/// The byte offset of the member a dotted path names in struct or union
/// `type_name`: `tasks.next`, `thread.sp`, a member of an anonymous
/// union...
///
/// # Errors
///
/// [`Error::Type`] when BTF has no such type or member, or the member is
/// a bitfield that does not start a byte.
pub fn member_offset(btf: &Btf<'_>, type_name: &str, path: &str) -> Result<u64, Error> {
    let member = find_member(btf, type_name, path)?;
    if member.bit_offset % 8 != 0 {
        return Err(Error::Type(format!(
            "{type_name}.{path} is a bitfield at bit {} of its byte",
            member.bit_offset % 8
        )));
    }
    Ok(member.byte_offset())
}

/// The member a dotted path names in struct or union `type_name`, its
/// offset from the struct's start.
///
/// # Errors
///
/// [`Error::Type`] when BTF has no such type or member.
pub fn find_member<'a>(btf: &Btf<'a>, type_name: &str, path: &str) -> Result<Member<'a>, Error> {
    let id = find_type(btf, type_name)?;
    btf.member_path(id, path)
        .ok_or_else(|| Error::Type(format!("{type_name} has no member {path}")))
}

/// Prints values of kernel types as crash (gdb) does; see the module
/// documentation.
///
/// ```no_run
/// # fn demo(btf: &kscope_btf::Btf<'_>, symbols: &kscope_kernel::SymbolTable,
/// #         memory: &dyn kscope_kernel::KernelRead) -> Result<(), kscope_kernel::Error> {
/// use kscope_kernel::types::{ValuePrinter, find_type};
/// let init_task = symbols.required("init_task")?;
/// let printer = ValuePrinter::new(btf).with_symbols(symbols).with_memory(memory);
/// print!("{}", printer.print_struct("task_struct", init_task)?);
/// # Ok(()) }
/// ```
pub struct ValuePrinter<'p, 'a> {
    btf: &'p Btf<'a>,
    symbols: Option<&'p SymbolTable>,
    memory: Option<&'p dyn KernelRead>,
    /// `[_text, _end)`: pointers into it are shown with their symbol.
    image: Option<(u64, u64)>,
}

impl std::fmt::Debug for ValuePrinter<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValuePrinter")
            .field("symbols", &self.symbols.map(SymbolTable::len))
            .field("memory", &self.memory.is_some())
            .field("image", &self.image)
            .finish()
    }
}

impl<'p, 'a> ValuePrinter<'p, 'a> {
    /// A printer of values of `btf`'s types; pointers are shown as bare
    /// addresses until [`ValuePrinter::with_symbols`] and
    /// [`ValuePrinter::with_memory`] give it more.
    pub fn new(btf: &'p Btf<'a>) -> ValuePrinter<'p, 'a> {
        ValuePrinter {
            btf,
            symbols: None,
            memory: None,
            image: None,
        }
    }

    /// Shows pointers into the kernel image (`_text` to `_end`) with
    /// their symbol and offset.
    pub fn with_symbols(self, symbols: &'p SymbolTable) -> ValuePrinter<'p, 'a> {
        let start = symbols
            .address("_text")
            .or_else(|| symbols.address("_stext"));
        let image = start.zip(symbols.address("_end"));
        ValuePrinter {
            symbols: Some(symbols),
            image,
            ..self
        }
    }

    /// Shows the strings that `char` pointers point at, read from
    /// `memory`.
    pub fn with_memory(self, memory: &'p dyn KernelRead) -> ValuePrinter<'p, 'a> {
        ValuePrinter {
            memory: Some(memory),
            ..self
        }
    }

    /// `struct NAME {` ... `}` and a newline: the struct or union of type
    /// `type_name` at `address`, read from the printer's memory.
    ///
    /// # Errors
    ///
    /// [`Error::Type`] for an unknown type or one without a size (or
    /// larger than [`MAX_STRUCT_SIZE`]), [`Error::Memory`] when there is
    /// no memory or it lacks the struct's bytes.
    pub fn print_struct(&self, type_name: &str, address: u64) -> Result<String, Error> {
        let id = find_type(self.btf, type_name)?;
        let size = self
            .btf
            .size(id)
            .filter(|&s| s <= MAX_STRUCT_SIZE)
            .ok_or_else(|| {
                Error::Type(format!(
                    "{type_name} has no size, or one beyond {MAX_STRUCT_SIZE} bytes"
                ))
            })?;
        let memory = self.memory.ok_or_else(|| {
            Error::Type("printing a struct at an address needs the dump's memory".into())
        })?;
        let bytes = memory
            .read_vec(address, size as usize)
            .map_err(|source| Error::Memory {
                what: format!("{type_name} at {address:#x}"),
                source,
            })?;
        Ok(self.format_struct(id, &bytes, address))
    }

    /// `struct NAME {` ... `}` and a newline: a value of struct or union
    /// type `id` held in `bytes`, which were read at `address` (other
    /// types print as [`ValuePrinter::format`] does).
    pub fn format_struct(&self, id: TypeId, bytes: &[u8], address: u64) -> String {
        let mut out = self.btf.type_name(self.btf.resolve(id));
        out.push(' ');
        self.value(&mut out, id, bytes, address, 0);
        out.push('\n');
        out
    }

    /// A value of type `id` held in `bytes`, which were read at
    /// `address`, as gdb prints it after `$1 = `. (The address matters
    /// only to a zero-length array, which gdb shows as the address where
    /// it starts.)
    pub fn format(&self, id: TypeId, bytes: &[u8], address: u64) -> String {
        let mut out = String::new();
        self.value(&mut out, id, bytes, address, 0);
        out
    }

    fn value(&self, out: &mut String, id: TypeId, bytes: &[u8], at: u64, depth: usize) {
        if depth > MAX_NESTING {
            out.push_str("<nested too deep>");
            return;
        }
        if out.len() > MAX_PRINTED {
            out.push_str("<too long>");
            return;
        }
        let btf = self.btf;
        let id = btf.resolve(id);
        let Some(size) = btf.size(id) else {
            out.push_str(match btf.kind(id) {
                Some(Kind::Void) => "void",
                _ => "<incomplete type>",
            });
            return;
        };
        let Some(bytes) = usize::try_from(size).ok().and_then(|n| bytes.get(..n)) else {
            out.push_str("<unavailable>");
            return;
        };
        match btf.kind(id) {
            Some(Kind::Struct | Kind::Union) => self.aggregate(out, id, bytes, at, depth),
            Some(Kind::Array) => self.array(out, id, bytes, at, depth),
            Some(Kind::Pointer) => self.pointer(out, btf.target(id), le(bytes) as u64),
            Some(Kind::Float) => match bytes.len() {
                4 => out.push_str(&f32::from_le_bytes(fixed(bytes)).to_string()),
                8 => out.push_str(&f64::from_le_bytes(fixed(bytes)).to_string()),
                _ => out.push_str(&format!("{:#x}", le(bytes))),
            },
            _ => self.scalar(out, id, le(bytes), bytes.len() as u32 * 8),
        }
    }

    /// An integer, `char`, `_Bool` or enum whose low `bits` bits are in
    /// `raw`.
    fn scalar(&self, out: &mut String, id: TypeId, raw: u128, bits: u32) {
        let btf = self.btf;
        let id = btf.resolve(id);
        let signed = match btf.kind(id) {
            Some(Kind::Enum | Kind::Enum64) => btf.enum_is_signed(id),
            _ => btf.int_encoding(id).is_some_and(|i| i.signed),
        };
        let value = extend(raw, bits, signed);
        match btf.kind(id) {
            Some(Kind::Enum | Kind::Enum64) => self.enumerator(out, id, value, bits),
            Some(Kind::Int) => {
                let int = btf.int_encoding(id);
                if int.is_some_and(|i| i.bool) && (value == 0 || value == 1) {
                    out.push_str(if value == 1 { "true" } else { "false" });
                } else if is_char(btf, id) {
                    out.push_str(&format!("{value} '"));
                    escape_char(out, raw as u8, b'\'', &mut false);
                    out.push('\'');
                } else {
                    out.push_str(&value.to_string());
                }
            }
            _ => out.push_str(&value.to_string()),
        }
    }

    fn enumerator(&self, out: &mut String, id: TypeId, value: i128, bits: u32) {
        let constants = self.btf.enumerators(id).unwrap_or_default();
        let mask = if bits >= 128 { !0 } else { (1i128 << bits) - 1 };
        if let Some(c) = constants
            .iter()
            .find(|c| i128::from(c.value) & mask == value & mask)
        {
            out.push_str(c.name);
            return;
        }
        // gdb shows a value of a "flag enum" (disjoint non-zero values)
        // as the constants whose bits it has.
        let flags = !constants.is_empty()
            && constants.iter().all(|c| c.value > 0)
            && constants
                .iter()
                .enumerate()
                .all(|(i, a)| constants[i + 1..].iter().all(|b| a.value & b.value == 0));
        if !flags || value <= 0 {
            out.push_str(&value.to_string());
            return;
        }
        let mut rest = value;
        let mut parts = Vec::new();
        for c in &constants {
            let v = i128::from(c.value);
            if rest & v == v {
                parts.push(c.name.to_string());
                rest &= !v;
            }
        }
        if rest != 0 {
            parts.push(format!("unknown: {rest:#x}"));
        }
        out.push_str(&format!("({})", parts.join(" | ")));
    }

    fn aggregate(&self, out: &mut String, id: TypeId, bytes: &[u8], at: u64, depth: usize) {
        let members = self.btf.members(id).unwrap_or_default();
        if members.is_empty() {
            out.push_str("{<No data fields>}");
            return;
        }
        out.push_str("{\n");
        for (i, m) in members.iter().enumerate() {
            indent(out, depth + 1);
            if !m.name.is_empty() {
                out.push_str(m.name);
                out.push_str(" = ");
            }
            if m.is_bitfield() {
                self.bitfield(out, m, bytes);
            } else {
                let from = usize::try_from(m.byte_offset()).unwrap_or(usize::MAX);
                let inner = bytes.get(from..).unwrap_or(&[]);
                self.value(
                    out,
                    m.type_id,
                    inner,
                    at.wrapping_add(m.byte_offset()),
                    depth + 1,
                );
            }
            out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
        }
        indent(out, depth);
        out.push('}');
    }

    fn bitfield(&self, out: &mut String, m: &Member<'_>, bytes: &[u8]) {
        let first = usize::try_from(m.bit_offset / 8).unwrap_or(usize::MAX);
        let shift = (m.bit_offset % 8) as u32;
        let width = m.bitfield_size.min(64);
        let span = ((shift + width).div_ceil(8)) as usize;
        let Some(window) = first
            .checked_add(span)
            .and_then(|end| bytes.get(first..end))
        else {
            out.push_str("<unavailable>");
            return;
        };
        let raw = (le(window) >> shift) & ((1u128 << width) - 1);
        self.scalar(out, m.type_id, raw, width);
    }

    fn array(&self, out: &mut String, id: TypeId, bytes: &[u8], at: u64, depth: usize) {
        let btf = self.btf;
        let Some(array) = btf.array(id) else {
            out.push_str("<unavailable>");
            return;
        };
        if array.count == 0 {
            // gdb shows a zero-length array as a pointer to where it starts.
            self.pointer(out, Some(array.element), at);
            return;
        }
        let element = btf.resolve(array.element);
        if btf.kind(element) == Some(Kind::Int) && is_char(btf, element) {
            // Every byte, but a NUL that ends the array.
            let text = match bytes.split_last() {
                Some((0, rest)) => rest,
                _ => bytes,
            };
            quote(out, text);
            return;
        }
        let Some(step) = btf.size(element).filter(|&s| s > 0) else {
            out.push_str("{}");
            return;
        };
        out.push('{');
        for (i, chunk) in bytes.chunks(step as usize).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let at = at.wrapping_add(i as u64 * step);
            self.value(out, element, chunk, at, depth + 1);
        }
        out.push('}');
    }

    /// A pointer to `pointee` (None: void).
    fn pointer(&self, out: &mut String, pointee: Option<TypeId>, address: u64) {
        let btf = self.btf;
        out.push_str(&format!("{address:#x}"));
        if address == 0 {
            return;
        }
        if let Some(symbol) = self.symbol_at(address) {
            out.push_str(&format!(" <{symbol}>"));
        }
        let pointee = pointee.map(|t| btf.resolve(t));
        let Some(pointee) = pointee.filter(|&t| btf.kind(t) == Some(Kind::Int)) else {
            return;
        };
        let Some(memory) = self.memory.filter(|_| is_char(btf, pointee)) else {
            return;
        };
        match memory.read_cstr(address, MAX_POINTED_STRING) {
            Ok(text) => {
                out.push(' ');
                quote(out, &text);
                if text.len() == MAX_POINTED_STRING {
                    out.push_str("...");
                }
            }
            Err(_) => out.push_str(&format!(
                " <error: Cannot access memory at address {address:#x}>"
            )),
        }
    }

    /// `name` or `name+offset` of a kernel-image address, as gdb shows
    /// it: gdb takes the closest symbol at or below the address, but
    /// shows nothing when that is a data symbol of size 0 (a linker
    /// script's label, such as `_sdata` or `__start___param`). kallsyms
    /// has no sizes; [`is_label`] tells such labels by their names.
    fn symbol_at(&self, address: u64) -> Option<String> {
        let (start, end) = self.image?;
        if !(start..end).contains(&address) {
            return None;
        }
        let symbols = self.symbols?.symbols();
        let after = symbols.partition_point(|s| s.address <= address);
        let closest = symbols.get(after.checked_sub(1)?)?.address;
        let first = symbols.partition_point(|s| s.address < closest);
        let symbol = symbols[first..after]
            .iter()
            .find(|s| "TtWw".contains(s.kind) || !is_label(&s.name))?;
        let offset = address - symbol.address;
        Some(if offset == 0 {
            symbol.name.clone()
        } else {
            format!("{}+{offset}", symbol.name)
        })
    }
}

/// Whether a data symbol's name is one that linker scripts and
/// `EXPORT_SYMBOL`, initcall and lockdep macros give to labels of size 0:
/// section bounds (`__start_*`, `__stop_*`, `__end_*`, `_sdata`,
/// `__bss_start`, `__init_begin`...), `__ksymtab_*`, `__kstrtab_*`,
/// `__initcall_*` entries, lockdep's `__key.N`, and the initial task's
/// stack labels. On Debian's 6.1 kernel this names 11,809 of the
/// 11,926 data symbols in kallsyms that vmlinux gives size 0, and none
/// with a size.
fn is_label(name: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "__start_",
        "__stop_",
        "__end_",
        "__kstrtab_",
        "__kstrtabns_",
        "__ksymtab_",
        "__initcall_",
        "__key.",
    ];
    const NAMES: [&str; 12] = [
        "_text",
        "_stext",
        "_etext",
        "_sdata",
        "_edata",
        "_sinittext",
        "_einittext",
        "__bss_start",
        "__bss_stop",
        "_end",
        "init_stack",
        "init_thread_union",
    ];
    // Tracepoints and events named after an event ending in `_start`
    // are objects.
    const OBJECTS: [&str; 7] = [
        "__event_",
        "__bpf_trace_",
        "__tpstrtab_",
        "__tracepoint_",
        "__traceiter_",
        "__SCK__",
        "__SCT__",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || NAMES.contains(&name)
        || (name.starts_with("__")
            && ["_start", "_end", "_begin"]
                .iter()
                .any(|s| name.ends_with(s))
            && !OBJECTS.iter().any(|p| name.starts_with(p)))
}

/// Whether integer type `id` is a character type, which gdb prints with
/// its character: the one-byte `char`, `signed char` and `unsigned char`
/// (and so `u8` and `s8`).
fn is_char(btf: &Btf<'_>, id: TypeId) -> bool {
    btf.int_encoding(id)
        .is_some_and(|i| i.size == 1 && !i.bool && (i.char || btf.name(id).contains("char")))
}

fn indent(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n(' ', 2 * depth));
}

/// Up to 16 little-endian bytes as a number.
fn le(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .take(16)
        .rev()
        .fold(0u128, |acc, &b| (acc << 8) | u128::from(b))
}

fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// The low `bits` bits of `raw`, sign-extended when `signed`.
fn extend(raw: u128, bits: u32, signed: bool) -> i128 {
    if bits == 0 || bits >= 128 {
        return raw as i128;
    }
    let raw = raw & ((1u128 << bits) - 1);
    if signed && raw >> (bits - 1) & 1 == 1 {
        (raw | !((1u128 << bits) - 1)) as i128
    } else {
        raw as i128
    }
}

/// `bytes` as a C string literal in gdb's spelling.
fn quote(out: &mut String, bytes: &[u8]) {
    out.push('"');
    let mut after_octal = false;
    for &b in bytes {
        escape_char(out, b, b'"', &mut after_octal);
    }
    out.push('"');
}

/// One character of a string or character literal delimited by `quote`:
/// itself when printable, a C escape, or three octal digits.
fn escape_char(out: &mut String, b: u8, quote: u8, after_octal: &mut bool) {
    let named = match b {
        7 => Some('a'),
        8 => Some('b'),
        12 => Some('f'),
        b'\n' => Some('n'),
        b'\r' => Some('r'),
        b'\t' => Some('t'),
        11 => Some('v'),
        _ => None,
    };
    if let Some(c) = named {
        out.push('\\');
        out.push(c);
        *after_octal = false;
    } else if b == quote || b == b'\\' {
        out.push('\\');
        out.push(char::from(b));
        *after_octal = false;
    } else if (0x20..0x7f).contains(&b) {
        out.push(char::from(b));
        *after_octal = false;
    } else {
        out.push_str(&format!("\\{b:03o}"));
        *after_octal = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_escaped_as_gdb_does() {
        let mut out = String::new();
        quote(&mut out, b"a\"b\\c\n\x1b\0\xff'");
        assert_eq!(out, r#""a\"b\\c\n\033\000\377'""#);
        let mut out = String::new();
        escape_char(&mut out, b'\'', b'\'', &mut false);
        assert_eq!(out, r"\'");
    }

    #[test]
    fn integers_extend_their_sign_at_their_width() {
        assert_eq!(extend(0b101, 3, true), -3);
        assert_eq!(extend(0b101, 3, false), 5);
        assert_eq!(extend(0xff, 8, true), -1);
        assert_eq!(
            extend(u128::from(u64::MAX), 64, false),
            i128::from(u64::MAX)
        );
        assert_eq!(le(&[1, 2]), 0x201);
    }

    #[test]
    fn a_struct_of_itself_prints_in_bounded_time_and_text() {
        // BTF of `struct fan { struct fan a, b, c, d, e, f, g, h; }`, 4
        // bytes: each member starts at 0 and is the struct again.
        let words = |w: &[u32]| w.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        let strings = b"\0fan\0a\0";
        let mut types = words(&[1, (4 << 24) | 8, 4]);
        for _ in 0..8 {
            types.extend(words(&[5, 1, 0]));
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        let (t, n) = (types.len() as u32, strings.len() as u32);
        blob.extend(words(&[24, 0, t, t, n]));
        blob.extend(types);
        blob.extend(strings);
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.find("struct fan"), Some(1));
        let started = std::time::Instant::now();
        let text = ValuePrinter::new(&btf).format(1, &[0; 4], 0x1000);
        assert!(text.starts_with("{\n  a = {\n    a = {"), "{text:.40}");
        assert!(text.len() < 2 * MAX_PRINTED, "{}", text.len());
        assert!(text.contains("<too long>"));
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
