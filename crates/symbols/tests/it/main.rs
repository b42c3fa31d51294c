//! Integration tests for `kscope-symbols`: programs compiled with gcc/g++
//! into a temp dir, with binutils (`addr2line`, `nm`) as the reference.
//!
//! Helpers outside `#[test]` functions are test code too, but clippy's
//! `allow-unwrap-in-tests` covers only the `#[test]` functions themselves.
#![allow(clippy::unwrap_used)]

mod debuglink;
mod demangle;
mod dwarf;
mod malformed;
mod minidebuginfo;
mod stripped;
mod util;
