//! The one error type of the crate. Format errors say where in the file
//! they are and what was expected there; a page the dump does not hold is
//! its own variant ([`Error::PageMissing`]), apart from I/O and format
//! errors, because a debugger reads on past it; translation failures say
//! which page-table level stopped the walk.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use crate::Compression;

/// Why a physical page cannot be read from the dump although nothing is
/// wrong with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// No memory range of the dump holds the address: it is not RAM of
    /// the dumped machine, or the dump left the range out.
    NoSuchMemory,
    /// A kdump-compressed dump: the address is past `max_mapnr` or not RAM
    /// in the first bitmap.
    NotRam,
    /// A kdump-compressed dump: the page is RAM but makedumpfile excluded
    /// it (its dump level filters zero, cache, user or free pages).
    Excluded,
    /// A kdump-compressed dump: the page's descriptor was never written
    /// (offset 0), as in a dump cut short by a full disk.
    Incomplete,
    /// One file of a split dump: the page belongs to another part.
    OtherSplitPart,
    /// An ELF dump: the address is between a segment's `p_filesz` and
    /// `p_memsz`, memory the dumper did not write.
    NotWritten,
}

impl fmt::Display for Absence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Absence::NoSuchMemory => "no memory range of the dump holds it",
            Absence::NotRam => "it is not RAM in the dump's first bitmap",
            Absence::Excluded => "makedumpfile excluded the page (see the dump level)",
            Absence::Incomplete => "the dump is incomplete: the page was never written",
            Absence::OtherSplitPart => "the page is in another file of this split dump",
            Absence::NotWritten => "the segment's p_memsz covers it but its p_filesz does not",
        })
    }
}

/// Everything that can go wrong reading a vmcore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening, mapping or reading a file failed.
    #[error("{}: {source}", path.as_ref().map_or_else(|| "vmcore".to_string(), |p| p.display().to_string()))]
    Io {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not what the format puts there. For a flattened dump
    /// the offset is in the kdump file that the stream reconstructs.
    #[error("vmcore at byte {offset:#x}: expected {expected}")]
    Format {
        /// Byte offset in the dump file.
        offset: u64,
        /// What the format wants there.
        expected: Cow<'static, str>,
    },
    /// A size declared in the file is beyond what this crate accepts, so
    /// as not to allocate or loop without end on a hostile file.
    #[error("vmcore at byte {offset:#x}: {what} of {size} is more than the limit of {limit}")]
    TooLarge {
        /// Where the size is declared.
        offset: u64,
        /// What the size is of.
        what: &'static str,
        /// The declared size.
        size: u64,
        /// The most that is accepted.
        limit: u64,
    },
    /// A valid dump of a kind this crate does not read.
    #[error("unsupported vmcore: {what}")]
    Unsupported {
        /// What is not supported, and what is.
        what: String,
    },
    /// An ELF core of a user-space process (`NT_FILE` or `NT_AUXV` notes
    /// and no VMCOREINFO), not of a kernel.
    #[error(
        "this is a user-space core (a process's NT_FILE and NT_AUXV notes, no VMCOREINFO), not a kernel crash dump: read it with `kscope core info`"
    )]
    UserCore,
    /// A compressed page does not decompress to exactly one page.
    #[error("cannot decompress the {method} page of pfn {pfn:#x} at byte {offset:#x}: {detail}")]
    Decompress {
        /// The page frame number.
        pfn: u64,
        /// Offset of the compressed data in the (reconstructed) kdump file.
        offset: u64,
        /// The page's compression.
        method: Compression,
        /// What went wrong.
        detail: String,
    },
    /// The dump does not hold this physical address; the file is fine.
    #[error("physical address {paddr:#x} is not in the dump: {why}")]
    PageMissing {
        /// The address asked for.
        paddr: u64,
        /// Why the dump lacks it.
        why: Absence,
    },
    /// A virtual address whose page-table walk ends at an entry without
    /// the present bit.
    #[error(
        "virtual address {vaddr:#x} is not mapped: its {level} entry {entry:#x} (at physical {entry_paddr:#x}) is not present"
    )]
    NotMapped {
        /// The address asked for.
        vaddr: u64,
        /// The level whose entry is not present ("PGD", "P4D", "PUD", "PMD", "PTE").
        level: &'static str,
        /// The entry's value.
        entry: u64,
        /// The entry's physical address.
        entry_paddr: u64,
    },
    /// A virtual address that no x86-64 page table can map: bits 63..47
    /// (63..56 with 5-level paging) are not all equal.
    #[error("virtual address {vaddr:#x} is not canonical for {levels}-level paging")]
    NonCanonical {
        /// The address asked for.
        vaddr: u64,
        /// 4 or 5.
        levels: u8,
    },
    /// Something the translation needs is neither in the dump's VMCOREINFO
    /// nor anywhere else in the dump.
    #[error("cannot translate kernel addresses: {what}")]
    MissingInfo {
        /// What is missing, and where it was looked for.
        what: String,
    },
}

impl From<kscope_elf::Error> for Error {
    fn from(e: kscope_elf::Error) -> Error {
        Error::Format {
            offset: e.offset,
            expected: e.expected,
        }
    }
}

impl Error {
    /// An error at byte `offset` of the file.
    pub(crate) fn at(offset: u64, expected: impl Into<Cow<'static, str>>) -> Error {
        Error::Format {
            offset,
            expected: expected.into(),
        }
    }

    /// Whether this is a page the dump lacks ([`Error::PageMissing`]) or a
    /// virtual address that is not mapped: what a debugger prints as
    /// "not available" and reads on past.
    pub fn is_missing(&self) -> bool {
        matches!(self, Error::PageMissing { .. } | Error::NotMapped { .. })
    }
}
