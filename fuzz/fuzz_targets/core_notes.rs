//! Fuzz target: arbitrary bytes as a note segment (decoded for x86-64 and
//! aarch64) and as a whole core file; neither may panic, and a parsed core
//! answers reads and module lookups without panicking.

#![no_main]

use kscope_coredump::{Arch, Core, parse_notes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        for note in parse_notes(data, 0, 4) {
            let Ok(note) = note else { break };
            if let Ok(decoded) = note.decode(arch) {
                std::hint::black_box(decoded);
            }
        }
    }
    for note in parse_notes(data, 0, 8).flatten() {
        std::hint::black_box(note);
    }
    if let Ok(core) = Core::parse(data) {
        for module in core.modules() {
            std::hint::black_box(core.read(module.start, 64));
        }
        for thread in core.threads() {
            if let Some(sp) = thread.registers.sp() {
                std::hint::black_box(core.read_u64(sp));
            }
            std::hint::black_box(thread.registers.list());
        }
        if let Some(sig) = core.siginfo() {
            std::hint::black_box(sig.describe());
        }
        std::hint::black_box(core.is_truncated());
        std::hint::black_box(core.notes().count());
    }
});
