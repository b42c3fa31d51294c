//! The only side effect of this crate: mapping a module's file to read its
//! unwind tables.
#![allow(unsafe_code)]

use std::fs::File;

use memmap2::Mmap;

/// Maps `file` read-only.
pub(crate) fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is read-only and private to this process. If
    // another process truncates or rewrites the file while it is mapped,
    // reads may fault or see changed bytes; the ELF and CFI parsers over
    // these bytes are bounds checked and never trust them (a library is
    // replaced by rename when upgraded, which leaves the mapped inode as it
    // was).
    unsafe { Mmap::map(file) }
}
