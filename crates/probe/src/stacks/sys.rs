//! The files the stack symbolizers read from the running system:
//! `/proc/kallsyms` and a process's `/proc/PID/maps`. The ELF files the
//! maps name are opened (mapped) by `kscope_symbols::ObjectFile`.

use std::io;
use std::path::PathBuf;

/// `/proc/kallsyms` (addresses are zeros for a reader without the right
/// to see them).
pub(super) fn kallsyms() -> io::Result<String> {
    std::fs::read_to_string("/proc/kallsyms")
}

/// `/proc/PID/maps` of process `pid`.
pub(super) fn maps(pid: u32) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
}

/// The kernel's link to the file mapped at `start..end` in process `pid`
/// (`/proc/PID/map_files/START-END`): it opens the very file mapped, even
/// one deleted since or outside this mount namespace (root only).
pub(super) fn map_file(pid: u32, start: u64, end: u64) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/map_files/{start:x}-{end:x}"))
}
