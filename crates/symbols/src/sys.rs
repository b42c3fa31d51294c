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

/// Bytes shared by the `gimli` readers of one file's DWARF: a range of a
/// buffer that is never changed once made, so clones and sub-ranges are
/// cheap and need no copy (an `Arc<[u8]>` made from a `Vec` copies it).
#[derive(Debug, Clone)]
pub(crate) struct SharedBytes {
    buffer: std::sync::Arc<Backing>,
    range: std::ops::Range<usize>,
}

/// What holds the bytes: memory of our own, or a file mapped read-only.
#[derive(Debug)]
enum Backing {
    Owned(Vec<u8>),
    Mapped(Mmap),
}

impl SharedBytes {
    /// Shares all of `bytes`.
    pub(crate) fn new(bytes: Vec<u8>) -> SharedBytes {
        let range = 0..bytes.len();
        SharedBytes {
            buffer: std::sync::Arc::new(Backing::Owned(bytes)),
            range,
        }
    }

    /// Shares the bytes of `file`, mapped (see [`map`] for the contract).
    pub(crate) fn map(file: &File) -> std::io::Result<SharedBytes> {
        let map = map(file)?;
        let range = 0..map.len();
        Ok(SharedBytes {
            buffer: std::sync::Arc::new(Backing::Mapped(map)),
            range,
        })
    }

    /// The bytes of `range` (relative to these), or `None` when it is not
    /// within them.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Option<SharedBytes> {
        let start = self.range.start.checked_add(range.start)?;
        let end = self.range.start.checked_add(range.end)?;
        (start <= end && end <= self.range.end).then(|| SharedBytes {
            buffer: std::sync::Arc::clone(&self.buffer),
            range: start..end,
        })
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let all: &[u8] = match &*self.buffer {
            Backing::Owned(bytes) => bytes,
            Backing::Mapped(map) => map,
        };
        &all[self.range.clone()]
    }
}

// SAFETY: the slice lives in the `Vec`'s heap buffer or the mapping, which
// the `Arc` keeps alive and which nothing can reach mutably (`SharedBytes`
// gives out only `&[u8]`, and its range never changes), so every deref of
// this value and of its clones gives the same address for as long as any
// of them lives: what `StableDeref` and `CloneStableDeref` promise.
unsafe impl gimli::StableDeref for SharedBytes {}
// SAFETY: see above; a clone shares the same `Arc` and range.
unsafe impl gimli::CloneStableDeref for SharedBytes {}
