//! Parsers of the kernel's own files that the checks read. Each is pure
//! (text or bytes in, data out) and unit-tested on samples.

pub mod config;
pub mod core_pattern;
pub mod events;
pub mod kallsyms;
pub mod limits;
pub mod notes;
