//! The kernel's BTF (BPF Type Format), as `/sys/kernel/btf/vmlinux` holds
//! it (and as a crashed kernel holds it in memory, between `__start_BTF`
//! and `__stop_BTF`): every C type of the kernel, compactly. kscope reads
//! from it the value of every enum constant (trace events name enum
//! constants in their print fmt that the kernel does not export to
//! tracefs), the size of types by name (`sizeof(struct page)` for pointer
//! arithmetic in print fmts), struct members' offsets (for probes that
//! read `task_struct` fields, such as `ppid()`, and for every kernel
//! structure a crash dump is read through), and, through the type graph
//! of [`Kind`], [`Member`] and [`Btf::type_name`], whole structs to print
//! as C declares them.
//!
//! The layout is documented in the kernel's Documentation/bpf/btf.rst: a
//! header, a type section of `btf_type` records each followed by data that
//! depends on its kind, and a string section. The btf-rs crate parses BTF
//! too, but is LGPL-licensed and resolves types one at a time by id; this
//! reader makes the two name tables kscope needs in one pass and borrows
//! the blob.
//!
//! ```no_run
//! let blob = std::fs::read("/sys/kernel/btf/vmlinux")?;
//! let btf = kscope_btf::Btf::parse(&blob)?;
//! assert_eq!(btf.enum_value("IOPRIO_CLASS_BE"), Some(2));
//! assert_eq!(btf.type_size("struct page"), Some(64));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

mod types;

pub use types::{Array, Enumerator, IntEncoding, Kind, Member, TypeId};

/// BTF that does not have the documented shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BTF, offset {offset}: expected {expected}")]
pub struct BtfError {
    /// Byte offset in the blob.
    pub offset: usize,
    /// What was needed there.
    pub expected: &'static str,
}

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// One type record: what sizes need, in 16 bytes (the kernel's BTF has
/// some 130,000 types; the rest is read from the blob when asked).
#[derive(Debug, Clone, Copy)]
struct Type {
    kind: u32,
    /// `size` for INT, STRUCT, UNION, ENUM, FLOAT; the referred type id
    /// for PTR, TYPEDEF, qualifiers.
    size_or_type: u32,
    /// Where the kind's own data starts in the blob (an INT's encoding,
    /// STRUCT members, FUNC_PROTO parameters, an ARRAY's element and count).
    data: u32,
    /// The record count of that data.
    vlen: u16,
    /// The info word's kind_flag: bitfield offsets for STRUCT, signed
    /// values for ENUM.
    kind_flag: bool,
}

impl Type {
    /// Where the kind's own data starts in the blob.
    fn data(&self) -> usize {
        self.data as usize
    }

    /// How many records that data holds.
    fn vlen(&self) -> usize {
        usize::from(self.vlen)
    }

    /// For an ARRAY: its element type and count, read from `blob`.
    fn array(&self, blob: &[u8]) -> Option<(u32, u32)> {
        if self.kind != KIND_ARRAY {
            return None;
        }
        Some((
            read_u32(blob, self.data()).ok()?,
            read_u32(blob, self.data() + 8).ok()?,
        ))
    }
}

/// A function parameter or return value as BTF describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The parameter's name (empty for a return value).
    pub name: String,
    /// Its C type: `int`, `size_t`, `struct file *`.
    pub type_name: String,
    /// Its size in bytes once typedefs are resolved.
    pub size: u32,
    /// Whether it is a signed integer.
    pub signed: bool,
    /// What kind of value it is.
    pub kind: ValueKind,
}

/// What a [`Value`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// An integer or enum.
    Integer,
    /// A pointer.
    Pointer,
    /// A struct, union, array or float.
    Other,
}

/// Parsed BTF: enum constants and named types.
#[derive(Debug, Clone, Default)]
pub struct Btf<'a> {
    types: Vec<Type>,
    enums: HashMap<&'a str, i64>,
    /// Named types by namespace and name: `struct page` is
    /// `(Namespace::Struct, "page")`; typedef and base names are plain.
    names: HashMap<(Namespace, &'a str), u32>,
    /// Whether `names` and `enums` were built ([`Btf::parse`]); without
    /// them ([`Btf::parse_lean`]) a name is found by a walk of the types.
    indexed: bool,
    blob: &'a [u8],
    strings: &'a [u8],
}

fn read_u32(blob: &[u8], offset: usize) -> Result<u32, BtfError> {
    blob.get(offset..offset + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError {
            offset,
            expected: "4 more bytes",
        })
}

/// The kernel's longest name, its NUL included (`KSYM_NAME_LEN`): the
/// kernel refuses BTF with longer names, and kscope reads them as empty,
/// so that a damaged string section cannot make every spelling huge.
const KSYM_NAME_LEN: usize = 512;

/// The name at `offset` of the string section; empty when it is out of
/// the section, not UTF-8, or longer than the kernel allows.
fn string(strings: &[u8], offset: u32) -> &str {
    let start = offset as usize;
    let Some(rest) = strings.get(start..) else {
        return "";
    };
    let end = match rest.iter().take(KSYM_NAME_LEN).position(|&b| b == 0) {
        Some(end) => end,
        None if rest.len() < KSYM_NAME_LEN => rest.len(),
        None => return "",
    };
    std::str::from_utf8(&rest[..end]).unwrap_or("")
}

/// The C namespaces a type name lives in, as kscope looks types up:
/// `struct x`, `union x`, `enum x`, functions, and the plain names of
/// typedefs and base types. Keys borrow the blob's strings, so that
/// parsing the kernel's 100,000 types allocates no name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Namespace {
    Struct,
    Union,
    Enum,
    Func,
    Plain,
}

impl Namespace {
    /// `name` as written (`struct task_struct`, `pid_t`) split into its
    /// namespace and bare name.
    fn split(name: &str) -> (Namespace, &str) {
        let name = name.trim();
        let (first, rest) = name
            .split_once(char::is_whitespace)
            .map_or((name, ""), |(a, b)| (a, b.trim()));
        let space = match first {
            "struct" => Namespace::Struct,
            "union" => Namespace::Union,
            "enum" => Namespace::Enum,
            "func" => Namespace::Func,
            _ => return (Namespace::Plain, name),
        };
        (space, rest)
    }
}

impl<'a> Btf<'a> {
    /// Parses a little-endian BTF blob (all kscope's targets are).
    pub fn parse(blob: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        Btf::parse_with(blob, true)
    }

    /// Parses a blob for a few lookups of named types: no index of names
    /// and no enum constants are built (a lookup walks the types; the
    /// enum constants are not known), which for the kernel's BTF saves
    /// some 4 MB and most of the time.
    pub fn parse_lean(blob: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        Btf::parse_with(blob, false)
    }

    fn parse_with(blob: &'a [u8], indexed: bool) -> Result<Btf<'a>, BtfError> {
        let magic = blob.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if magic != Some(MAGIC) {
            return Err(BtfError {
                offset: 0,
                expected: "the BTF magic 0xeb9f (little-endian)",
            });
        }
        if u32::try_from(blob.len()).is_err() {
            return Err(BtfError {
                offset: 0,
                expected: "a blob smaller than 4 GiB",
            });
        }
        let hdr_len = read_u32(blob, 4)? as usize;
        let type_off = read_u32(blob, 8)? as usize;
        let type_len = read_u32(blob, 12)? as usize;
        let str_off = read_u32(blob, 16)? as usize;
        let str_len = read_u32(blob, 20)? as usize;
        let strings = blob
            .get(
                hdr_len.saturating_add(str_off)
                    ..hdr_len.saturating_add(str_off).saturating_add(str_len),
            )
            .ok_or(BtfError {
                offset: hdr_len + str_off,
                expected: "a string section inside the blob",
            })?;
        let start = hdr_len.saturating_add(type_off);
        let end = start.saturating_add(type_len);
        if end > blob.len() {
            return Err(BtfError {
                offset: start,
                expected: "a type section inside the blob",
            });
        }
        // Type id 0 is void. A record takes 12 bytes at least: the vector
        // is sized once, not grown (and copied) as the kernel's 130,000
        // types come.
        let mut types = Vec::with_capacity(type_len / 12 + 1);
        types.push(Type {
            kind: 0,
            size_or_type: 0,
            data: 0,
            vlen: 0,
            kind_flag: false,
        });
        let mut btf = Btf {
            types,
            indexed,

            blob,
            strings,
            ..Btf::default()
        };
        let mut at = start;
        while at < end {
            let name_off = read_u32(blob, at)?;
            let info = read_u32(blob, at + 4)?;
            let size_or_type = read_u32(blob, at + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let data = at + 12;
            let id = btf.types.len() as u32;
            let name = string(strings, name_off);
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC => vlen * 12,
                KIND_ENUM if indexed => {
                    for i in 0..vlen {
                        let entry = data + i * 8;
                        let value = read_u32(blob, entry + 4)? as i32;
                        btf.enums
                            .insert(string(strings, read_u32(blob, entry)?), i64::from(value));
                    }
                    vlen * 8
                }
                KIND_ENUM => vlen * 8,
                KIND_ENUM64 if indexed => {
                    for i in 0..vlen {
                        let entry = data + i * 12;
                        let low = u64::from(read_u32(blob, entry + 4)?);
                        let high = u64::from(read_u32(blob, entry + 8)?);
                        btf.enums.insert(
                            string(strings, read_u32(blob, entry)?),
                            ((high << 32) | low) as i64,
                        );
                    }
                    vlen * 12
                }
                KIND_ENUM64 => vlen * 12,
                KIND_FUNC_PROTO => vlen * 8,
                KIND_PTR | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                _ => {
                    return Err(BtfError {
                        offset: at,
                        expected: "a known BTF kind (1 to 19)",
                    });
                }
            };
            if indexed && !name.is_empty() {
                let space = match kind {
                    KIND_STRUCT => Some(Namespace::Struct),
                    KIND_UNION => Some(Namespace::Union),
                    KIND_ENUM | KIND_ENUM64 => Some(Namespace::Enum),
                    KIND_INT | KIND_TYPEDEF | KIND_FLOAT => Some(Namespace::Plain),
                    KIND_FUNC => Some(Namespace::Func),
                    _ => None,
                };
                if let Some(space) = space {
                    btf.names.entry((space, name)).or_insert(id);
                }
            }
            btf.types.push(Type {
                kind,
                size_or_type,
                // The blob is smaller than 4 GiB (checked above).
                data: data as u32,
                vlen: vlen as u16,
                kind_flag: info >> 31 != 0,
            });
            at = data + extra;
        }
        Ok(btf)
    }

    /// The value of an enum constant (None from a lean parse, which keeps
    /// no constants).
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        self.enums.get(name).copied()
    }

    /// How many enum constants there are.
    pub fn enum_count(&self) -> usize {
        self.enums.len()
    }

    /// The size of a named type: `struct page`, `union x`, `enum y`, a
    /// typedef (`pid_t`) or a base type (`unsigned int`).
    pub fn type_size(&self, name: &str) -> Option<u64> {
        self.size_of(self.find(name)?, 0)
    }

    /// The byte offset of `member` in a struct or union (`struct
    /// task_struct`, `tgid`), looking into anonymous struct and union
    /// members as C does; `member` may be a dotted path through nested
    /// structs (`thread.sp`). None for a bitfield that does not start a
    /// byte, and for unknown names.
    pub fn member_offset(&self, type_name: &str, member: &str) -> Option<u64> {
        let member = self.member_path(self.find(type_name)?, member)?;
        (member.bit_offset % 8 == 0).then_some(member.bit_offset / 8)
    }

    /// A kernel function's parameters, in order, from its BTF prototype;
    /// None when BTF does not know the function.
    pub fn function_params(&self, function: &str) -> Option<Vec<Value>> {
        let func = self
            .types
            .get(self.named(Namespace::Func, function)? as usize)?;
        let proto = self.types.get(func.size_or_type as usize)?;
        if proto.kind != KIND_FUNC_PROTO {
            return None;
        }
        (0..proto.vlen())
            .map(|i| {
                let entry = proto.data() + i * 8;
                let name = string(self.strings, read_u32(self.blob, entry).ok()?).to_string();
                let ty = read_u32(self.blob, entry + 4).ok()?;
                Some(self.value(name, ty))
            })
            .collect()
    }

    /// What a kernel function returns; None when BTF does not know it or
    /// it returns void.
    pub fn function_return(&self, function: &str) -> Option<Value> {
        let func = self
            .types
            .get(self.named(Namespace::Func, function)? as usize)?;
        let proto = self.types.get(func.size_or_type as usize)?;
        let ret = proto.size_or_type;
        (proto.kind == KIND_FUNC_PROTO && ret != 0).then(|| self.value(String::new(), ret))
    }

    /// Whether BTF knows a kernel function of this name.
    pub fn has_function(&self, function: &str) -> bool {
        self.named(Namespace::Func, function).is_some()
    }

    /// Every kernel function BTF knows, unordered (none from a lean parse).
    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .keys()
            .filter(|(space, _)| *space == Namespace::Func)
            .map(|&(_, name)| name)
    }

    fn value(&self, name: String, ty: u32) -> Value {
        let stripped = self.strip(ty, 0).unwrap_or(0);
        let t = self.types.get(stripped as usize);
        let (size, signed, kind) = match t.map(|t| t.kind) {
            Some(KIND_INT) => {
                let t = t.map_or(0, |t| t.data());
                let encoding = read_u32(self.blob, t).unwrap_or(0);
                let size = self.types[stripped as usize].size_or_type;
                (size, (encoding >> 24) & 1 != 0, ValueKind::Integer)
            }
            Some(KIND_ENUM | KIND_ENUM64) => {
                let t = &self.types[stripped as usize];
                (t.size_or_type, t.kind_flag, ValueKind::Integer)
            }
            Some(KIND_PTR) => (8, false, ValueKind::Pointer),
            _ => (
                self.size_of(ty, 0).unwrap_or(0) as u32,
                false,
                ValueKind::Other,
            ),
        };
        Value {
            name,
            type_name: self.type_name(ty),
            size,
            signed,
            kind,
        }
    }

    /// `id` without typedefs and qualifiers.
    fn strip(&self, id: u32, depth: u32) -> Option<u32> {
        let t = self.types.get(id as usize)?;
        match t.kind {
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                if depth < 32 =>
            {
                self.strip(t.size_or_type, depth + 1)
            }
            _ => Some(id),
        }
    }

    fn size_of(&self, id: u32, depth: u32) -> Option<u64> {
        if depth > 32 {
            return None;
        }
        let t = self.types.get(id as usize)?;
        match t.kind {
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT => {
                Some(u64::from(t.size_or_type))
            }
            KIND_PTR => Some(8),
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                self.size_of(t.size_or_type, depth + 1)
            }
            KIND_ARRAY => {
                let (elem, count) = t.array(self.blob)?;
                self.size_of(elem, depth + 1)?.checked_mul(u64::from(count))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with: 1 int "int" (4), 2 struct "pair" { int a; int b; } (8),
    /// 3 enum "mode" { MODE_A = 1, MODE_B = -2 }, 4 typedef "pair_t" -> 2,
    /// 5 array of 3 pair_t, 6 enum64 "big" { BIG = 1 << 40 }.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0pair\0a\0b\0mode\0MODE_A\0MODE_B\0pair_t\0big\0BIG\0";
        let at = |s: &str| {
            let needle = format!("\0{s}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut push = |words: &[u32]| {
            words
                .iter()
                .for_each(|w| types.extend_from_slice(&w.to_le_bytes()))
        };
        push(&[at("int"), KIND_INT << 24, 4, 0x20]);
        push(&[
            at("pair"),
            (KIND_STRUCT << 24) | 2,
            8,
            at("a"),
            1,
            0,
            at("b"),
            1,
            32,
        ]);
        push(&[
            at("mode"),
            (KIND_ENUM << 24) | 2,
            4,
            at("MODE_A"),
            1,
            at("MODE_B"),
            (-2i32) as u32,
        ]);
        push(&[at("pair_t"), KIND_TYPEDEF << 24, 2]);
        push(&[0, KIND_ARRAY << 24, 0, 4, 1, 3]);
        push(&[at("big"), (KIND_ENUM64 << 24) | 1, 8, at("BIG"), 0, 1 << 8]);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for word in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn enum_constants_and_type_sizes_are_found_by_name() {
        let blob = blob();
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.enum_value("MODE_A"), Some(1));
        assert_eq!(btf.enum_value("MODE_B"), Some(-2));
        assert_eq!(btf.enum_value("BIG"), Some(1 << 40));
        assert_eq!(btf.enum_count(), 3);
        assert_eq!(btf.type_size("int"), Some(4));
        assert_eq!(btf.type_size("struct pair"), Some(8));
        assert_eq!(btf.type_size("pair_t"), Some(8));
        assert_eq!(btf.type_size("enum mode"), Some(4));
        assert_eq!(btf.type_size("struct nothing"), None);
        assert_eq!(btf.member_offset("struct pair", "a"), Some(0));
        assert_eq!(btf.member_offset("struct pair", "b"), Some(4));
        assert_eq!(btf.member_offset("struct pair", "c"), None);
        assert_eq!(btf.member_offset("enum mode", "a"), None);
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let good = blob();
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(b"\x9f\xeb").is_err());
        for end in 2..good.len() {
            let _ = Btf::parse(&good[..end]);
        }
        let mut bad_kind = good.clone();
        bad_kind[24 + 7] = 30; // kind 30 in the first type's info
        assert!(Btf::parse(&bad_kind).is_err());
    }

    #[test]
    fn the_running_kernels_btf_parses() {
        let path = "/sys/kernel/btf/vmlinux";
        let blob = match std::fs::read(path) {
            Ok(blob) => blob,
            Err(e) => {
                // CONFIG_DEBUG_INFO_BTF off: the synthetic blobs above
                // still run.
                kscope_testkit::live("the running kernel's BTF", Some(format!("{path}: {e}")));
                return;
            }
        };
        let btf = Btf::parse(&blob).unwrap();
        assert!(btf.enum_count() > 1000);
        assert_eq!(btf.type_size("struct list_head"), Some(16));
        assert_eq!(btf.member_offset("struct list_head", "prev"), Some(8));
        let params = btf.function_params("vfs_read").unwrap();
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["file", "buf", "count", "pos"]);
        assert_eq!(params[0].type_name, "struct file *");
        assert_eq!(params[0].kind, ValueKind::Pointer);
        assert_eq!((params[2].size, params[2].signed), (8, false));
        let ret = btf.function_return("vfs_read").unwrap();
        assert_eq!(
            (ret.type_name.as_str(), ret.size, ret.signed),
            ("ssize_t", 8, true)
        );
        assert!(btf.has_function("do_sys_openat2"));
        assert!(!btf.has_function("no_such_function"));
        let task = btf.find("struct task_struct").unwrap();
        let comm = btf.member_path(task, "comm").unwrap();
        assert_eq!(btf.type_name(comm.type_id), "char [16]");
        let next = btf.member_path(task, "tasks.next").unwrap();
        assert_eq!(btf.type_name(next.type_id), "struct list_head *");
        assert_eq!(
            btf.member_offset("struct task_struct", "tasks.next"),
            btf.member_offset("struct task_struct", "tasks")
        );
        let flat = btf.flat_members(task).unwrap();
        assert!(flat.iter().all(|m| !m.name.is_empty()));
        assert!(flat.iter().any(|m| m.name == "pid"));
        let tgid = btf.member_offset("struct task_struct", "tgid").unwrap();
        let pid = btf.member_offset("struct task_struct", "pid").unwrap();
        assert_eq!(tgid, pid + 4);
        assert!(
            btf.enum_value("TASK_COMM_LEN").is_some()
                || btf.enum_value("BPF_MAP_TYPE_ARRAY") == Some(2)
        );
    }

    #[test]
    fn a_lean_parse_finds_what_the_full_one_finds() {
        // The running kernel's BTF, where it can be read; the lookups
        // kscope makes with a lean parse.
        let Ok(blob) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        let full = Btf::parse(&blob).expect("the kernel's BTF parses");
        let lean = Btf::parse_lean(&blob).expect("the kernel's BTF parses lean");
        for (ty, member) in [
            ("struct task_struct", "real_parent"),
            ("struct task_struct", "tgid"),
            ("struct task_struct", "thread_info.status"),
            ("struct file", "f_pos"),
        ] {
            assert_eq!(
                lean.member_offset(ty, member),
                full.member_offset(ty, member),
                "{ty} {member}"
            );
        }
        assert!(lean.member_offset("struct task_struct", "tgid").is_some());
        assert_eq!(lean.find("pid_t"), full.find("pid_t"));
        assert_eq!(lean.has_function("vfs_read"), full.has_function("vfs_read"));
        assert_eq!(lean.enum_value("TASK_COMM_LEN"), None);
    }
}
