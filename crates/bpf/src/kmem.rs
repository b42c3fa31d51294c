//! Reading kernel variables without /proc/kcore: a small BPF program
//! copies each address's 8 bytes with bpf_probe_read_kernel into an array
//! map when this process hits a tracepoint, and the map is read back.
//! Everything (program, map, perf event) is closed before returning.

use crate::error::{Error, Result};
use crate::insn::{Insn, PSEUDO_MAP_FD};
use crate::map::{Map, MapType};
use crate::perf::PerfEvent;
use crate::program::{Program, ProgramType};

const HELPER_MAP_UPDATE_ELEM: i32 = 2;
const HELPER_PROBE_READ_KERNEL: i32 = 113;

/// The program: for each address i, read 8 bytes to the stack, then
/// `map[i] = them`.
fn program(map: i32, addresses: &[u64]) -> Vec<Insn> {
    let mut insns = Vec::new();
    for (i, &address) in addresses.iter().enumerate() {
        insns.push(Insn::mov64_reg(1, 10));
        insns.push(Insn::add64_imm(1, -8));
        insns.push(Insn::mov64_imm(2, 8));
        insns.extend(Insn::ld_imm64(3, 0, address));
        insns.push(Insn::call(HELPER_PROBE_READ_KERNEL));
        insns.push(Insn::st_w(10, -16, i as i32));
        insns.extend(Insn::ld_imm64(1, PSEUDO_MAP_FD, map as u32 as u64));
        insns.push(Insn::mov64_reg(2, 10));
        insns.push(Insn::add64_imm(2, -16));
        insns.push(Insn::mov64_reg(3, 10));
        insns.push(Insn::add64_imm(3, -8));
        insns.push(Insn::mov64_imm(4, 0));
        insns.push(Insn::call(HELPER_MAP_UPDATE_ELEM));
    }
    insns.push(Insn::mov64_imm(0, 0));
    insns.push(Insn::exit());
    insns
}

/// Reads one u64 at each kernel address. `tracepoint_id` is the id of a
/// tracepoint that `trigger` makes this process hit (a syscall's
/// sys_enter event and the syscall itself, say).
pub fn read_kernel_u64s(
    addresses: &[u64],
    tracepoint_id: u64,
    trigger: impl FnOnce(),
) -> Result<Vec<u64>> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let count = u32::try_from(addresses.len()).map_err(|_| Error::Invalid {
        name: "kscope_kread".into(),
        reason: "too many addresses",
    })?;
    let map = Map::create(MapType::Array, "kscope_kread", 4, 8, count)?;
    let program = Program::load(
        ProgramType::Tracepoint,
        "kscope_kread",
        &program(map.raw_fd(), addresses),
    )?;
    let event = PerfEvent::tracepoint_of_this_process(tracepoint_id)?;
    event.attach(&program)?;
    event.enable(true)?;
    trigger();
    event.enable(false)?;
    addresses
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let key = (i as u32).to_ne_bytes();
            let mut value = [0u8; 8];
            map.lookup(&key, &mut value)
                .map(|()| u64::from_ne_bytes(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_reads_then_stores_each_address() {
        let insns = program(3, &[0xffff_ffff_8100_0000, 0xffff_ffff_8200_0000]);
        // 15 slots per address (two ld_imm64 take two each), then r0 = 0; exit.
        assert_eq!(insns.len(), 2 * 15 + 2);
        assert_eq!(insns[5].imm, HELPER_PROBE_READ_KERNEL);
        assert_eq!(insns[7].src, PSEUDO_MAP_FD);
        assert_eq!(insns[7].imm, 3);
        assert_eq!(insns.last().map(Insn::encode), Some(Insn::exit().encode()));
    }
}
