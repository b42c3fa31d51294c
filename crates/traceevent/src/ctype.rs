//! C types as print fmts name them in casts and sizeof: their size and
//! signedness from the C and kernel base types, worked out once when the
//! print fmt is parsed (kernel structs come from BTF at evaluation).

/// A type named in a cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CType {
    /// The type as written (`unsigned long`, `struct page *`).
    pub text: String,
    /// True for a pointer type.
    pub pointer: bool,
    /// The size of the type, or of what it points to; `None` when only
    /// BTF can tell (kernel structs).
    pub size: Option<usize>,
    /// True for signed integer types.
    pub signed: bool,
}

impl CType {
    /// Works out what the base types tell about `text`.
    pub fn new(text: String) -> CType {
        match text.strip_suffix('*') {
            Some(pointee) => {
                let pointee = pointee.trim();
                let size = match pointee {
                    "void" | "const void" | "char" | "const char" => Some(1),
                    other => type_size(other),
                };
                CType {
                    pointer: true,
                    size,
                    signed: false,
                    text,
                }
            }
            None => CType {
                pointer: false,
                size: type_size(&text),
                signed: is_signed_type(&text),
                text,
            },
        }
    }

    /// The type's name without a trailing `*`.
    pub fn base(&self) -> &str {
        self.text.trim_end_matches('*').trim()
    }
}

/// The size of a C scalar type as the kernels kscope reads use it
/// (LP64); `None` for types it does not know.
pub fn type_size(type_name: &str) -> Option<usize> {
    if type_name.contains('*') {
        return Some(8);
    }
    let base = type_name
        .trim_end_matches("[]")
        .trim()
        .trim_start_matches("const ")
        .trim_start_matches("volatile ");
    let base = base
        .strip_prefix("unsigned ")
        .or_else(|| base.strip_prefix("signed "))
        .unwrap_or(base)
        .trim();
    Some(match base {
        "char" | "u8" | "s8" | "__u8" | "__s8" | "bool" | "_Bool" => 1,
        "short" | "short int" | "u16" | "s16" | "__u16" | "__s16" | "__le16" | "__be16"
        | "umode_t" => 2,
        "int" | "unsigned" | "uint" | "u32" | "s32" | "__u32" | "__s32" | "__le32" | "__be32"
        | "pid_t" | "uid_t" | "gid_t" | "gfp_t" | "fmode_t" | "dev_t" | "clockid_t"
        | "key_serial_t" | "__wsum" | "blk_opf_t" | "blk_status_t" => 4,
        "long" | "long int" | "long long" | "long long int" | "u64" | "s64" | "__u64" | "__s64"
        | "__le64" | "__be64" | "size_t" | "ssize_t" | "loff_t" | "sector_t" | "dma_addr_t"
        | "phys_addr_t" | "resource_size_t" | "ino_t" | "off_t" | "time64_t" | "ktime_t"
        | "u_long" | "pgoff_t" | "xfs_ino_t" => 8,
        _ => return None,
    })
}

/// True for the C types that are signed.
pub fn is_signed_type(type_name: &str) -> bool {
    let t = type_name.trim();
    !(t.contains("unsigned")
        || t.starts_with('u')
        || t.starts_with("__u")
        || t.contains('*')
        || t == "bool"
        || t.starts_with("__le")
        || t.starts_with("__be")
        || t.ends_with("size_t") && !t.starts_with("ssize"))
}
