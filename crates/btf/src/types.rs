//! Walking the type graph: each type's kind, name and size, a struct's
//! members (also through anonymous structs and unions, and by dotted
//! path), arrays, integer encodings, enumerators, and types spelled as C
//! spells them (`struct list_head *`, `char [16]`,
//! `void (*)(struct callback_head *)`).
//!
//! Every walk is bounded: BTF from a dump is untrusted, and a damaged
//! blob may make a type refer to itself.

use crate::{
    Btf, KIND_ARRAY, KIND_CONST, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM, KIND_ENUM64, KIND_FLOAT,
    KIND_FUNC, KIND_FUNC_PROTO, KIND_INT, KIND_PTR, KIND_RESTRICT, KIND_STRUCT, KIND_TYPE_TAG,
    KIND_TYPEDEF, KIND_UNION, KIND_VAR, KIND_VOLATILE, Namespace, read_u32, string,
};

/// A type's index in the BTF type section; 0 is `void`.
pub type TypeId = u32;

/// How deep a walk through referring types (typedefs, qualifiers,
/// pointers, arrays, nested anonymous members) goes before it gives up.
const MAX_DEPTH: u32 = 32;

/// How many members one search through anonymous members may read, all
/// levels together (`flat_members`, `member_path`): with the depth alone,
/// a struct of N anonymous members of its own type costs N^32. The
/// kernel's largest structs flatten to a few hundred members.
const MAX_MEMBERS_READ: usize = 1 << 16;

/// How many types one spelling (`type_name`, `declaration`) may visit: a
/// prototype whose parameters point back to it would otherwise fan out
/// at every level. A real function pointer's spelling visits a few dozen.
const MAX_SPELLED: u32 = 256;

/// BTF's forward declaration kind (`struct x;`).
const KIND_FWD: u32 = 7;

/// The kind of a BTF type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Type id 0.
    Void,
    /// An integer, `char` or `_Bool`.
    Int,
    /// A pointer.
    Pointer,
    /// An array.
    Array,
    /// A struct.
    Struct,
    /// A union.
    Union,
    /// An enum of up to 32-bit values.
    Enum,
    /// A forward declaration.
    Forward,
    /// A typedef.
    Typedef,
    /// `volatile`.
    Volatile,
    /// `const`.
    Const,
    /// `restrict`.
    Restrict,
    /// A function (its name and prototype).
    Function,
    /// A function prototype.
    FunctionProto,
    /// A variable.
    Variable,
    /// A data section's variables.
    DataSection,
    /// A floating-point type.
    Float,
    /// A declaration tag.
    DeclTag,
    /// A type tag (`__user`, `__rcu`...).
    TypeTag,
    /// An enum of 64-bit values.
    Enum64,
}

/// A member of a struct or union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Its name; empty for an anonymous struct or union member.
    pub name: &'a str,
    /// Its type.
    pub type_id: TypeId,
    /// Its offset in bits from the start of the outermost type asked
    /// about (the containing struct for [`Btf::members`]).
    pub bit_offset: u64,
    /// Its width in bits when it is a bitfield, else 0.
    pub bitfield_size: u32,
}

impl Member<'_> {
    /// The byte offset (the byte holding the first bit of a bitfield).
    pub fn byte_offset(&self) -> u64 {
        self.bit_offset / 8
    }

    /// Whether the member is a bitfield.
    pub fn is_bitfield(&self) -> bool {
        self.bitfield_size != 0
    }
}

/// An array type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array {
    /// The element type.
    pub element: TypeId,
    /// How many elements (0 for a flexible array member).
    pub count: u32,
}

/// How an integer type is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntEncoding {
    /// Size in bytes.
    pub size: u32,
    /// Whether it is signed.
    pub signed: bool,
    /// Whether BTF marks it as a character type.
    pub char: bool,
    /// Whether it is `_Bool`.
    pub bool: bool,
    /// How many bits hold the value.
    pub bits: u32,
    /// The value's first bit.
    pub offset: u32,
}

/// One constant of an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enumerator<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value (an unsigned 64-bit value is kept as its bits).
    pub value: i64,
}

impl<'a> Btf<'a> {
    /// How many types there are, void included.
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The id of a named type: `struct task_struct`, `union x`, `enum y`,
    /// a typedef (`pid_t`) or a base type (`unsigned long`). Where names
    /// repeat, the first type wins, except that a complete struct or
    /// union is preferred to a forward declaration of it.
    pub fn find(&self, name: &str) -> Option<TypeId> {
        // "struct  x" or "struct\tx" too: the namespace word is split off.
        let (space, bare) = Namespace::split(name);
        self.named(space, bare)
    }

    /// The first type named `name` in `space`: from the index, or by a
    /// walk of the types when the blob was parsed lean.
    pub(crate) fn named(&self, space: Namespace, name: &str) -> Option<TypeId> {
        if self.indexed {
            return self.names.get(&(space, name)).copied();
        }
        (1..self.types.len() as TypeId).find(|&id| {
            let kind = self.types[id as usize].kind;
            let in_space = match space {
                Namespace::Struct => kind == KIND_STRUCT,
                Namespace::Union => kind == KIND_UNION,
                Namespace::Enum => matches!(kind, KIND_ENUM | KIND_ENUM64),
                Namespace::Func => kind == KIND_FUNC,
                Namespace::Plain => matches!(kind, KIND_INT | KIND_TYPEDEF | KIND_FLOAT),
            };
            in_space && self.name(id) == name
        })
    }

    /// The kind of type `id`.
    pub fn kind(&self, id: TypeId) -> Option<Kind> {
        let t = self.types.get(id as usize)?;
        Some(match t.kind {
            0 => Kind::Void,
            KIND_INT => Kind::Int,
            KIND_PTR => Kind::Pointer,
            KIND_ARRAY => Kind::Array,
            KIND_STRUCT => Kind::Struct,
            KIND_UNION => Kind::Union,
            KIND_ENUM => Kind::Enum,
            KIND_FWD => Kind::Forward,
            KIND_TYPEDEF => Kind::Typedef,
            KIND_VOLATILE => Kind::Volatile,
            KIND_CONST => Kind::Const,
            KIND_RESTRICT => Kind::Restrict,
            KIND_FUNC => Kind::Function,
            KIND_FUNC_PROTO => Kind::FunctionProto,
            KIND_VAR => Kind::Variable,
            KIND_DATASEC => Kind::DataSection,
            KIND_FLOAT => Kind::Float,
            KIND_DECL_TAG => Kind::DeclTag,
            KIND_TYPE_TAG => Kind::TypeTag,
            KIND_ENUM64 => Kind::Enum64,
            _ => return None,
        })
    }

    /// The name of type `id` as BTF stores it: `task_struct` (no
    /// `struct`), `pid_t`, `unsigned int`; empty for anonymous types,
    /// pointers, arrays and unknown ids.
    pub fn name(&self, id: TypeId) -> &'a str {
        let Some(t) = self.types.get(id as usize) else {
            return "";
        };
        if id == 0 {
            return "";
        }
        // The record's first word is its name's offset.
        read_u32(self.blob, t.data().saturating_sub(12))
            .map(|off| string(self.strings, off))
            .unwrap_or("")
    }

    /// The size of type `id` in bytes (typedefs and qualifiers followed,
    /// arrays multiplied out); None for void, functions and unknown ids.
    pub fn size(&self, id: TypeId) -> Option<u64> {
        self.size_of(id, 0)
    }

    /// `id` with typedefs, qualifiers and type tags taken off.
    pub fn resolve(&self, id: TypeId) -> TypeId {
        self.strip(id, 0).unwrap_or(id)
    }

    /// The type a pointer, typedef, qualifier, type tag, function or
    /// variable refers to (a function prototype's return type).
    pub fn target(&self, id: TypeId) -> Option<TypeId> {
        let t = self.types.get(id as usize)?;
        matches!(
            t.kind,
            KIND_PTR
                | KIND_TYPEDEF
                | KIND_VOLATILE
                | KIND_CONST
                | KIND_RESTRICT
                | KIND_TYPE_TAG
                | KIND_FUNC
                | KIND_FUNC_PROTO
                | KIND_VAR
        )
        .then_some(t.size_or_type)
    }

    /// The element type and count of array type `id`.
    pub fn array(&self, id: TypeId) -> Option<Array> {
        let (element, count) = self.types.get(id as usize)?.array(self.blob)?;
        Some(Array { element, count })
    }

    /// The encoding of integer type `id`.
    pub fn int_encoding(&self, id: TypeId) -> Option<IntEncoding> {
        let t = self.types.get(id as usize)?;
        if t.kind != KIND_INT {
            return None;
        }
        let word = read_u32(self.blob, t.data()).ok()?;
        let encoding = word >> 24;
        Some(IntEncoding {
            size: t.size_or_type,
            signed: encoding & 1 != 0,
            char: encoding & 2 != 0,
            bool: encoding & 4 != 0,
            bits: word & 0xff,
            offset: (word >> 16) & 0xff,
        })
    }

    /// Whether enum type `id` holds signed values.
    pub fn enum_is_signed(&self, id: TypeId) -> bool {
        self.types
            .get(id as usize)
            .is_some_and(|t| matches!(t.kind, KIND_ENUM | KIND_ENUM64) && t.kind_flag)
    }

    /// The constants of enum type `id`, in order.
    pub fn enumerators(&self, id: TypeId) -> Option<Vec<Enumerator<'a>>> {
        let t = self.types.get(id as usize)?;
        let (stride, wide) = match t.kind {
            KIND_ENUM => (8, false),
            KIND_ENUM64 => (12, true),
            _ => return None,
        };
        (0..t.vlen())
            .map(|i| {
                let entry = t.data() + i * stride;
                let name = string(self.strings, read_u32(self.blob, entry).ok()?);
                let low = read_u32(self.blob, entry + 4).ok()?;
                let value = if wide {
                    let high = read_u32(self.blob, entry + 8).ok()?;
                    ((u64::from(high) << 32) | u64::from(low)) as i64
                } else if t.kind_flag {
                    i64::from(low as i32)
                } else {
                    i64::from(low)
                };
                Some(Enumerator { name, value })
            })
            .collect()
    }

    /// The direct members of struct or union `id` (typedefs and
    /// qualifiers followed), offsets from its start; None when `id` is
    /// not a struct or union.
    pub fn members(&self, id: TypeId) -> Option<Vec<Member<'a>>> {
        let id = self.resolve(id);
        let t = self.types.get(id as usize)?;
        if !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        (0..t.vlen())
            .map(|i| {
                let entry = t.data() + i * 12;
                let name = string(self.strings, read_u32(self.blob, entry).ok()?);
                let type_id = read_u32(self.blob, entry + 4).ok()?;
                let raw = read_u32(self.blob, entry + 8).ok()?;
                let (bit_offset, mut bitfield_size) = if t.kind_flag {
                    (raw & 0x00ff_ffff, raw >> 24)
                } else {
                    (raw, 0)
                };
                if bitfield_size == 0 {
                    // Old-style bitfields: an integer narrower than its type.
                    let int = self.int_encoding(self.resolve(type_id));
                    if let Some(int) = int.filter(|i| i.bits != 0 && i.bits < i.size * 8) {
                        bitfield_size = int.bits;
                    }
                }
                Some(Member {
                    name,
                    type_id,
                    bit_offset: u64::from(bit_offset),
                    bitfield_size,
                })
            })
            .collect()
    }

    /// The members of struct or union `id` with every anonymous struct or
    /// union member replaced by its own members, recursively, offsets
    /// from the start of `id`: the names C code can use on an instance.
    pub fn flat_members(&self, id: TypeId) -> Option<Vec<Member<'a>>> {
        let mut out = Vec::new();
        let mut budget = MAX_MEMBERS_READ;
        self.flatten(self.members(id)?, 0, 0, &mut budget, &mut out)?;
        Some(out)
    }

    /// `members` flattened into `out`; None when the walk goes deeper
    /// than [`MAX_DEPTH`] or reads more than `budget` members.
    fn flatten(
        &self,
        members: Vec<Member<'a>>,
        base: u64,
        depth: u32,
        budget: &mut usize,
        out: &mut Vec<Member<'a>>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        *budget = budget.checked_sub(members.len())?;
        for member in members {
            let at = base.checked_add(member.bit_offset)?;
            let inner = if member.name.is_empty() {
                self.members(member.type_id)
            } else {
                None
            };
            match inner {
                Some(inner) => self.flatten(inner, at, depth + 1, budget, out)?,
                None => out.push(Member {
                    bit_offset: at,
                    ..member
                }),
            }
        }
        Some(())
    }

    /// The member of struct or union `id` that a dotted path names
    /// (`tasks.next`, `thread.sp`, `se.load.weight`), looking into
    /// anonymous structs and unions at each step as C does; its offset is
    /// from the start of `id`. Each step but the last must be a struct or
    /// union (not a pointer to one).
    pub fn member_path(&self, id: TypeId, path: &str) -> Option<Member<'a>> {
        let mut found: Option<Member<'a>> = None;
        let mut current = id;
        let mut base = 0u64;
        for part in path.split('.') {
            let part = part.trim();
            if part.is_empty() {
                return None;
            }
            let mut budget = MAX_MEMBERS_READ;
            let member = self.member_named(current, part, 0, &mut budget)?;
            let at = base.checked_add(member.bit_offset)?;
            found = Some(Member {
                bit_offset: at,
                ..member
            });
            current = member.type_id;
            base = at;
        }
        found
    }

    /// `name` among the members of `id` and of its anonymous members,
    /// offset from the start of `id`; None past [`MAX_DEPTH`] or once
    /// `budget` members have been read.
    fn member_named(
        &self,
        id: TypeId,
        name: &str,
        depth: u32,
        budget: &mut usize,
    ) -> Option<Member<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let members = self.members(id)?;
        *budget = budget.checked_sub(members.len())?;
        if let Some(m) = members.iter().find(|m| m.name == name) {
            return Some(*m);
        }
        members.iter().filter(|m| m.name.is_empty()).find_map(|m| {
            let inner = self.member_named(m.type_id, name, depth + 1, budget)?;
            Some(Member {
                bit_offset: m.bit_offset.checked_add(inner.bit_offset)?,
                ..inner
            })
        })
    }

    /// The parameters of function prototype `id` (a function's own id is
    /// followed to its prototype): each name (often empty in prototypes)
    /// and type; a last parameter of type 0 stands for `...`.
    pub fn params(&self, id: TypeId) -> Option<Vec<(&'a str, TypeId)>> {
        let mut t = self.types.get(id as usize)?;
        if t.kind == KIND_FUNC {
            t = self.types.get(t.size_or_type as usize)?;
        }
        if t.kind != KIND_FUNC_PROTO {
            return None;
        }
        (0..t.vlen())
            .map(|i| {
                let entry = t.data() + i * 8;
                let name = string(self.strings, read_u32(self.blob, entry).ok()?);
                Some((name, read_u32(self.blob, entry + 4).ok()?))
            })
            .collect()
    }

    /// Type `id` as C spells it without a name: `unsigned long`,
    /// `struct list_head *`, `char [16]`, `const char *`,
    /// `void (*)(struct callback_head *)`, `struct {...}` for an
    /// anonymous struct.
    pub fn type_name(&self, id: TypeId) -> String {
        let mut budget = MAX_SPELLED;
        self.declarator(id, String::new(), 0, &mut budget)
    }

    /// A declaration of `name` with type `id`, as in a struct definition
    /// without its `;`: `char comm[16]`, `struct list_head *next`,
    /// `void (*func)(struct callback_head *)`.
    pub fn declaration(&self, id: TypeId, name: &str) -> String {
        let mut budget = MAX_SPELLED;
        self.declarator(id, name.to_string(), 0, &mut budget)
    }

    /// C's inside-out declarators: `inner` is what is declared so far
    /// (a name, `*name`, `name[4]`...), and each type wraps it; past
    /// [`MAX_DEPTH`], or once `budget` types have been visited, a type is
    /// spelled `?`.
    fn declarator(&self, id: TypeId, inner: String, depth: u32, budget: &mut u32) -> String {
        let join = |base: String, inner: &str| {
            if inner.is_empty() {
                base
            } else {
                format!("{base} {inner}")
            }
        };
        let Some(t) = self.types.get(id as usize) else {
            return join("?".into(), &inner);
        };
        if depth > MAX_DEPTH || *budget == 0 {
            return join("?".into(), &inner);
        }
        *budget -= 1;
        // A suffix ([N] or (params)) binds tighter than a prefix `*`.
        let wrap = |inner: String| {
            if inner.starts_with('*') {
                format!("({inner})")
            } else {
                inner
            }
        };
        let named = |keyword: &str| {
            let name = self.name(id);
            if name.is_empty() {
                format!("{keyword} {{...}}")
            } else {
                format!("{keyword} {name}")
            }
        };
        match t.kind {
            0 => join("void".into(), &inner),
            KIND_PTR => {
                // `* const p`, as gdb spells a qualified pointer.
                let inner = if inner.starts_with("const") || inner.starts_with("volatile") {
                    format!("* {inner}")
                } else {
                    format!("*{inner}")
                };
                self.declarator(t.size_or_type, inner, depth + 1, budget)
            }
            KIND_CONST | KIND_VOLATILE => {
                let qualifier = if t.kind == KIND_CONST {
                    "const"
                } else {
                    "volatile"
                };
                let target = t.size_or_type;
                match self.types.get(target as usize).map(|t| t.kind) {
                    // A qualified pointer: the qualifier follows the `*`.
                    Some(KIND_PTR) => {
                        let inner = if inner.is_empty() {
                            qualifier.to_string()
                        } else {
                            format!("{qualifier} {inner}")
                        };
                        self.declarator(target, inner, depth + 1, budget)
                    }
                    _ => format!(
                        "{qualifier} {}",
                        self.declarator(target, inner, depth + 1, budget)
                    ),
                }
            }
            KIND_RESTRICT | KIND_TYPE_TAG => {
                self.declarator(t.size_or_type, inner, depth + 1, budget)
            }
            KIND_ARRAY => {
                let (element, count) = t.array(self.blob).unwrap_or((0, 0));
                let dims = if count == 0 {
                    "[]".to_string()
                } else {
                    format!("[{count}]")
                };
                self.declarator(element, format!("{}{dims}", wrap(inner)), depth + 1, budget)
            }
            KIND_FUNC_PROTO => {
                let params = self.params(id).unwrap_or_default();
                let list = if params.is_empty() {
                    "void".to_string()
                } else {
                    params
                        .iter()
                        .map(|&(_, ty)| {
                            if ty == 0 {
                                "...".to_string()
                            } else {
                                self.declarator(ty, String::new(), depth + 1, budget)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.declarator(
                    t.size_or_type,
                    format!("{}({list})", wrap(inner)),
                    depth + 1,
                    budget,
                )
            }
            KIND_FUNC => self.declarator(t.size_or_type, inner, depth + 1, budget),
            KIND_STRUCT => join(named("struct"), &inner),
            KIND_UNION => join(named("union"), &inner),
            KIND_ENUM | KIND_ENUM64 => join(named("enum"), &inner),
            KIND_FWD => join(named(if t.kind_flag { "union" } else { "struct" }), &inner),
            _ => join(self.name(id).to_string(), &inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BtfError, MAGIC};

    /// BTF assembled type by type; ids count from 1 in push order.
    #[derive(Default)]
    struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn name(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            if self.strings.is_empty() {
                self.strings.push(0);
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            at
        }

        fn push(&mut self, name: &str, kind: u32, flag: bool, vlen: u32, size_or_type: u32) {
            let name = self.name(name);
            let info = (u32::from(flag) << 31) | (kind << 24) | vlen;
            for word in [name, info, size_or_type] {
                self.types.extend_from_slice(&word.to_le_bytes());
            }
        }

        fn word(&mut self, word: u32) {
            self.types.extend_from_slice(&word.to_le_bytes());
        }

        fn int(&mut self, name: &str, size: u32, encoding: u32) {
            self.push(name, KIND_INT, false, 0, size);
            self.word((encoding << 24) | (size * 8));
        }

        /// A struct or union of (name, type, bit offset, bitfield size).
        fn aggregate(
            &mut self,
            kind: u32,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32, u32)],
        ) {
            let bitfields = members.iter().any(|m| m.3 != 0);
            self.push(name, kind, bitfields, members.len() as u32, size);
            for &(member, ty, offset, bits) in members {
                let n = self.name(member);
                self.word(n);
                self.word(ty);
                self.word(if bitfields {
                    (bits << 24) | offset
                } else {
                    offset
                });
            }
        }

        fn blob(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            let (t, s) = (self.types.len() as u32, self.strings.len() as u32);
            for word in [24u32, 0, t, t, s] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// 1 int, 2 char, 3 unsigned long, 4 struct list_head, 5 pointer to
    /// it, 6 char [16], 7 union (anonymous), 8 struct task, 9 func proto
    /// void (struct list_head *, ...), 10 pointer to it, 11 const char,
    /// 12 pointer to that, 13 typedef task_t, 14 enum state, 15 _Bool,
    /// 16 struct loop (an anonymous member of its own type), 17 pointer
    /// to char [16], 18 const pointer to char.
    fn btf_blob() -> Vec<u8> {
        let mut b = Builder::default();
        b.int("int", 4, 1);
        b.int("char", 1, 1 | 2);
        b.int("unsigned long", 8, 0);
        b.aggregate(
            KIND_STRUCT,
            "list_head",
            16,
            &[("next", 5, 0, 0), ("prev", 5, 64, 0)],
        );
        b.push("", KIND_PTR, false, 0, 4);
        b.push("", KIND_ARRAY, false, 0, 0);
        b.word(2);
        b.word(1);
        b.word(16);
        b.aggregate(KIND_UNION, "", 4, &[("a", 1, 0, 0), ("b", 2, 0, 0)]);
        b.aggregate(
            KIND_STRUCT,
            "task",
            64,
            &[
                ("pid", 1, 0, 0),
                ("", 7, 32, 0),
                ("tasks", 4, 64, 0),
                ("comm", 6, 192, 0),
                ("flag", 1, 320, 1),
                ("more", 1, 321, 3),
                ("fn", 10, 384, 0),
                ("name", 12, 448, 0),
            ],
        );
        b.push("", KIND_FUNC_PROTO, false, 2, 0);
        b.word(0);
        b.word(5);
        b.word(0);
        b.word(0);
        b.push("", KIND_PTR, false, 0, 9);
        b.push("", KIND_CONST, false, 0, 2);
        b.push("", KIND_PTR, false, 0, 11);
        b.push("task_t", KIND_TYPEDEF, false, 0, 8);
        b.push("state", KIND_ENUM, true, 2, 4);
        let (run, dead) = (b.name("RUNNING"), b.name("DEAD"));
        b.word(run);
        b.word(0);
        b.word(dead);
        b.word((-1i32) as u32);
        b.int("_Bool", 1, 4);
        b.aggregate(KIND_STRUCT, "loop", 4, &[("", 16, 0, 0)]);
        b.push("", KIND_PTR, false, 0, 6);
        b.push("", KIND_CONST, false, 0, 12);
        b.blob()
    }

    #[test]
    fn types_are_spelled_as_c_spells_them() {
        let blob = btf_blob();
        let btf = Btf::parse(&blob).expect("parses");
        assert_eq!(btf.type_count(), 19);
        assert_eq!(btf.type_name(5), "struct list_head *");
        assert_eq!(btf.type_name(6), "char [16]");
        assert_eq!(btf.type_name(7), "union {...}");
        assert_eq!(btf.type_name(10), "void (*)(struct list_head *, ...)");
        assert_eq!(btf.type_name(12), "const char *");
        assert_eq!(btf.type_name(13), "task_t");
        assert_eq!(btf.type_name(14), "enum state");
        assert_eq!(btf.type_name(17), "char (*)[16]");
        assert_eq!(btf.type_name(18), "const char * const");
        assert_eq!(btf.type_name(0), "void");
        assert_eq!(btf.type_name(99), "?");
        assert_eq!(btf.declaration(6, "comm"), "char comm[16]");
        assert_eq!(
            btf.declaration(10, "fn"),
            "void (*fn)(struct list_head *, ...)"
        );
        assert_eq!(btf.declaration(17, "p"), "char (*p)[16]");
        assert_eq!(btf.declaration(5, "next"), "struct list_head *next");
    }

    #[test]
    fn kinds_names_sizes_and_targets() {
        let blob = btf_blob();
        let btf = Btf::parse(&blob).expect("parses");
        assert_eq!(btf.find("struct  task"), Some(8));
        assert_eq!(btf.find("task_t"), Some(13));
        assert_eq!(btf.find("struct nothing"), None);
        assert_eq!(btf.find(""), None);
        assert_eq!(btf.kind(8), Some(Kind::Struct));
        assert_eq!(btf.kind(7), Some(Kind::Union));
        assert_eq!(btf.kind(0), Some(Kind::Void));
        assert_eq!(btf.kind(99), None);
        assert_eq!(btf.name(8), "task");
        assert_eq!(btf.name(5), "");
        assert_eq!(btf.resolve(13), 8);
        assert_eq!(btf.size(13), Some(64));
        assert_eq!(btf.size(6), Some(16));
        assert_eq!(btf.target(5), Some(4));
        assert_eq!(btf.target(8), None);
        assert_eq!(
            btf.array(6),
            Some(Array {
                element: 2,
                count: 16
            })
        );
        assert_eq!(btf.array(5), None);
        let char_encoding = btf.int_encoding(2).expect("int");
        assert!(char_encoding.char && char_encoding.signed && !char_encoding.bool);
        assert!(btf.int_encoding(15).expect("bool").bool);
        assert_eq!(btf.int_encoding(4), None);
        let states = btf.enumerators(14).expect("enum");
        assert_eq!(
            states[1],
            Enumerator {
                name: "DEAD",
                value: -1
            }
        );
        assert!(btf.enum_is_signed(14));
        assert_eq!(btf.enumerators(8), None);
        assert_eq!(btf.params(9).expect("proto"), [("", 5), ("", 0)]);
        assert_eq!(btf.params(8), None);
    }

    #[test]
    fn members_by_path_and_through_anonymous_unions() {
        let blob = btf_blob();
        let btf = Btf::parse(&blob).expect("parses");
        let members = btf.members(13).expect("a struct through its typedef");
        assert_eq!(members.len(), 8);
        assert_eq!(members[1].name, "");
        assert_eq!((members[4].bit_offset, members[4].bitfield_size), (320, 1));
        assert!(members[5].is_bitfield() && !members[0].is_bitfield());
        let flat: Vec<&str> = btf
            .flat_members(8)
            .expect("flat")
            .iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(
            flat,
            [
                "pid", "a", "b", "tasks", "comm", "flag", "more", "fn", "name"
            ]
        );
        let b = btf.member_path(8, "b").expect("in the union");
        assert_eq!((b.byte_offset(), b.type_id), (4, 2));
        let prev = btf.member_path(8, "tasks.prev").expect("nested");
        assert_eq!(prev.byte_offset(), 16);
        assert_eq!(btf.member_offset("struct task", "tasks.prev"), Some(16));
        assert_eq!(btf.member_offset("task_t", "comm"), Some(24));
        assert_eq!(btf.member_offset("struct task", "more"), None);
        assert_eq!(btf.member_offset("struct task", "flag"), Some(40));
        assert_eq!(btf.member_path(8, "tasks..prev"), None);
        assert_eq!(btf.member_path(8, "comm.x"), None);
        assert_eq!(btf.member_path(8, "nothing"), None);
        // A struct that holds itself: walks end, they do not loop.
        assert_eq!(btf.member_path(16, "x"), None);
        assert_eq!(btf.flat_members(16), None);
    }

    #[test]
    fn damaged_member_records_are_none_not_panics() {
        // A struct that claims 1000 members and has one: its records run
        // into the strings and off the blob.
        let mut b = Builder::default();
        b.int("int", 4, 1);
        b.aggregate(KIND_STRUCT, "big", 8, &[("x", 1, 0, 0)]);
        let mut blob = b.blob();
        let info = 24 + 16 + 4;
        blob[info..info + 4].copy_from_slice(&((KIND_STRUCT << 24) | 1000).to_le_bytes());
        let btf = Btf::parse(&blob).expect("parses");
        assert_eq!(btf.members(2), None);
        assert_eq!(btf.flat_members(2), None);
        assert_eq!(btf.member_path(2, "x"), None);
        assert_eq!(btf.type_name(2), "struct big");
        let _: Option<BtfError> = Btf::parse(&blob[..30]).err();
    }

    #[test]
    fn types_that_fan_out_into_themselves_end_quickly() {
        // 1 struct fan: 8 anonymous members of its own type; 2 a function
        // prototype of 8 parameters, each 3, a pointer to 2; 4 struct
        // with a name longer than the kernel allows.
        let mut b = Builder::default();
        b.aggregate(KIND_STRUCT, "fan", 4, &[("", 1, 0, 0); 8]);
        b.push("", KIND_FUNC_PROTO, false, 8, 0);
        for _ in 0..8 {
            b.word(0);
            b.word(3);
        }
        b.push("", KIND_PTR, false, 0, 2);
        b.aggregate(KIND_STRUCT, &"x".repeat(100_000), 4, &[]);
        let blob = b.blob();
        let btf = Btf::parse(&blob).expect("parses");
        let started = std::time::Instant::now();
        assert_eq!(btf.flat_members(1), None);
        assert_eq!(btf.member_path(1, "nothing"), None);
        assert_eq!(btf.member_offset("struct fan", "nothing"), None);
        let spelled = btf.type_name(3);
        // The parameters are spelled first, so the budget runs out at
        // the outermost types: they read `?`.
        assert!(spelled.contains("void (*)(void (*)("), "{spelled:.80}");
        assert!(spelled.len() < 1 << 20, "{}", spelled.len());
        assert_eq!(btf.name(4), "");
        assert_eq!(btf.type_name(4), "struct {...}");
        let took = started.elapsed();
        assert!(took.as_secs() < 2, "{took:?}");
    }
}
