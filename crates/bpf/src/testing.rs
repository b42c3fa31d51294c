//! Helpers for this crate's unit tests: the gate of the tests that need
//! bpf(2), and programs more than one module's tests run.

use crate::error::Error;
use crate::insn::{Insn, Size};
use crate::map::{Map, MapType};

/// Whether bpf(2) works here; when it says EPERM or ENOSYS, the test
/// skips with the reason printed (or fails under KSCOPE_REQUIRE_LIVE=1).
pub(crate) fn bpf_works(what: &str) -> bool {
    match Map::create(MapType::Array, "kscope_t_gate", 4, 4, 1) {
        Ok(_) => true,
        Err(Error::Map { source, .. })
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) =>
        {
            kscope_testkit::live(what, Some(format!("bpf(2) says: {source}")))
        }
        Err(other) => panic!("bpf(2) fails unexpectedly: {other}"),
    }
}

/// A raw_tracepoint program that copies its first `words` context
/// arguments to the stack and sends them to `ring` as one record with
/// bpf_ringbuf_output, then returns 0 (the last two instructions).
pub(crate) fn ctx_to_ringbuf_program(ring: &Map, words: i16) -> Vec<Insn> {
    let mut insns = Vec::new();
    for i in 0..words {
        insns.push(Insn::ldx(Size::DW, 2, 1, 8 * i));
        insns.push(Insn::stx(Size::DW, 10, -8 * words + 8 * i, 2));
    }
    insns.extend(Insn::ld_map_fd(1, ring.raw_fd()));
    insns.push(Insn::mov64_reg(2, 10));
    insns.push(Insn::add64_imm(2, -8 * i32::from(words)));
    insns.push(Insn::mov64_imm(3, 8 * i32::from(words)));
    insns.push(Insn::mov64_imm(4, 0));
    insns.push(Insn::call(HELPER_RINGBUF_OUTPUT));
    insns.push(Insn::mov64_imm(0, 0));
    insns.push(Insn::exit());
    insns
}

/// `bpf_ringbuf_output(map, data, size, flags)`.
pub(crate) const HELPER_RINGBUF_OUTPUT: i32 = 130;
