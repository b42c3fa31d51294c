//! Address to symbol, `file:line` and inlined frames for user-space ELF files.
//!
//! This crate sits between a source of addresses (a core dump's stack, a
//! perf sample, a uprobe hit) and the text a user reads. Given an ELF file,
//! and optionally its separate debug file, it turns an address relative to
//! the file's load bias (an address as the ELF's own vaddrs spell it) into
//! frames: inlined functions first, then the real function, each with a
//! demangled name and a source location when DWARF says so.
//!
//! DWARF (through `addr2line`) is used when present; otherwise the ELF
//! symbol tables are used: `.symtab`, `.dynsym`, and the `.symtab` inside
//! the xz-compressed MiniDebugInfo section `.gnu_debugdata`. Separate debug
//! files are found by build-id and by `.gnu_debuglink` ([`DebugFiles`]).
//!
//! ```no_run
//! use kscope_symbols::{DebugFiles, ObjectFile, Symbolizer};
//!
//! # fn main() -> Result<(), kscope_symbols::Error> {
//! let object = ObjectFile::open("/usr/bin/ls")?;
//! let debug = DebugFiles::find(&object, None);
//! let symbolizer = Symbolizer::new(object, debug)?;
//! for frame in symbolizer.lookup(0x4a10) {
//!     println!("{frame}");
//! }
//! # Ok(())
//! # }
//! ```

mod cache;
mod debug_files;
mod demangle;
mod dwarf;
mod error;
mod names;
mod object_file;
mod symbolizer;
mod symtab;
mod sys;

pub use cache::DwarfCache;
pub use debug_files::{Candidate, DebugFiles};
pub use demangle::demangle;
pub use error::Error;
pub use object_file::ObjectFile;
pub use symbolizer::{Frame, FunctionSymbol, Symbolizer};

/// The `gimli` reader over DWARF sections copied out of a file (and
/// decompressed, for `SHF_COMPRESSED` sections): shared by the DWARF
/// loader and the namespace walk of function names.
pub(crate) type Reader = gimli::EndianReader<gimli::RunTimeEndian, sys::SharedBytes>;
