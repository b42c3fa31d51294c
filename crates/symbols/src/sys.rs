//! The only side effect of this crate: mapping a file into memory.
#![allow(unsafe_code)]

use std::fs::File;

use memmap2::Mmap;

/// Maps `file` read-only.
pub(crate) fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is read-only and private to this process. If another
    // process truncates or rewrites the file while it is mapped, reads may
    // fault or see changed bytes; every parser over these bytes is bounds
    // checked and never trusts them, which is the same contract as the
    // `object` and `addr2line` loaders accept.
    unsafe { Mmap::map(file) }
}
