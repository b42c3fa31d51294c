//! The ELF core format as Linux writes it, read without copying: the one
//! home of the bytes-level parsing that `kscope-coredump` (process cores),
//! `kscope-vmcore` (kernel dumps) and `kscope-doctor` (the kernel's own
//! build-id note) share.
//!
//! - [`Reader`]: bounds-checked little- and big-endian reads from a
//!   borrowed slice that knows its offset in the file; every failure is an
//!   [`Error`] naming the absolute offset and what was expected there.
//! - [`CoreHeader`]: the ELF header of a 64-bit little-endian `ET_CORE`
//!   file and its [`ProgramHeaders`] (`PN_XNUM` counts included).
//! - [`parse_notes`]: the notes of a note segment, as a fallible iterator
//!   ([`Notes`]), and [`build_id`]; [`Note::decode`] decodes the notes of
//!   a Linux core (`NT_PRSTATUS` with the registers of x86-64 or aarch64,
//!   `NT_PRPSINFO`, `NT_SIGINFO` in words, `NT_AUXV`, `NT_FILE`).
//!
//! Hostile input gives errors, never panics or allocations beyond the size
//! of the input.
//!
//! ```
//! use kscope_elf::{Arch, NT_PRSTATUS, NoteData, parse_notes};
//!
//! let mut prstatus = vec![0u8; 336];
//! prstatus[32..36].copy_from_slice(&42i32.to_le_bytes()); // pr_pid
//! let mut notes = Vec::new();
//! for word in [5u32, 336, NT_PRSTATUS] {
//!     notes.extend_from_slice(&word.to_le_bytes());
//! }
//! notes.extend_from_slice(b"CORE\0\0\0\0");
//! notes.extend_from_slice(&prstatus);
//! for note in parse_notes(&notes, 0x1000, 4) {
//!     if let NoteData::PrStatus(thread) = note?.decode(Arch::X86_64)? {
//!         assert_eq!(thread.tid, 42);
//!     }
//! }
//! # Ok::<(), kscope_elf::Error>(())
//! ```

mod arch;
mod error;
mod header;
mod notes;
mod reader;
mod siginfo;

pub use arch::{Arch, PrStatusLayout, Registers, X86_64Registers};
pub use error::Error;
pub use header::{
    CoreHeader, ELF_MAGIC, ET_CORE, HeaderError, PHDR_SIZE, PT_LOAD, PT_NOTE, ProgramHeader,
    ProgramHeaders,
};
pub use notes::{
    AT_BASE, AT_ENTRY, AT_EXECFN, AT_PAGESZ, AT_PHDR, AT_SYSINFO_EHDR, AuxEntry, MappedFile,
    NT_AUXV, NT_FILE, NT_FPREGSET, NT_GNU_BUILD_ID, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO,
    NT_X86_XSTATE, Note, NoteData, Notes, ProcessInfo, Thread, build_id, hex, parse_notes,
};
pub use reader::{Reader, le_u64, until_nul};
pub use siginfo::{SI_KERNEL, SigInfo, code_text, signal_name};
