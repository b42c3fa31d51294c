//! eBPF for kscope: instructions, loading programs through bpf(2), maps
//! and ring buffers, and perf events through perf_event_open(2).
//!
//! This crate sits at the bottom of the probe data flow: the probe compiler
//! produces [`Insn`]s, [`Program::load`] hands them to the kernel's
//! verifier, and perf events carry them to their attach points. Programs
//! keep their state in [`Map`]s and send records to user space through a
//! [`RingBuf`], which is read in place from pages shared with the kernel.
//! [`disassemble`] shows a program as bpftool would, and
//! [`loaded_programs`] / [`loaded_maps`] list what the kernel holds. Every
//! syscall is in the private `sys` module; the rest is plain data.
//!
//! ```no_run
//! use std::time::Duration;
//! use kscope_bpf::{Insn, Program, ProgramType, RingBuf};
//! let mut ring = RingBuf::create("kscope_events", 1 << 16)?;
//! // Send ctx[0] to the ring buffer, then return 0.
//! let mut insns = vec![
//!     Insn::ldx(kscope_bpf::Size::DW, 2, 1, 0),
//!     Insn::stx(kscope_bpf::Size::DW, 10, -8, 2),
//! ];
//! insns.extend(Insn::ld_map_fd(1, ring.map().raw_fd()));
//! insns.extend([
//!     Insn::mov64_reg(2, 10),
//!     Insn::add64_imm(2, -8),
//!     Insn::mov64_imm(3, 8),
//!     Insn::mov64_imm(4, 0),
//!     Insn::call(130), // bpf_ringbuf_output
//!     Insn::mov64_imm(0, 0),
//!     Insn::exit(),
//! ]);
//! let program = Program::load(ProgramType::RawTracepoint, "example", &insns)?;
//! program.test_run(&[42])?;
//! ring.poll(Duration::from_millis(100), |record| println!("{record:?}"))?;
//! drop(program); // closing the fd unloads it
//! # Ok::<(), kscope_bpf::Error>(())
//! ```

mod disasm;
mod error;
mod insn;
mod kmem;
mod map;
mod objects;
mod perf;
mod program;
mod ringbuf;
mod sys;
#[cfg(test)]
mod testing;

pub use disasm::disassemble;
pub use error::{Error, Result};
pub use insn::{Alu, Insn, Jmp, PSEUDO_MAP_FD, Size};
pub use kmem::read_kernel_u64s;
pub use map::{Map, MapType, MappedValue};
pub use objects::{ObjectInfo, loaded_maps, loaded_programs};
pub use perf::{PerfEvent, SoftwareEvent, online_cpus, possible_cpu_ids_end, possible_cpus};
pub use program::{Program, ProgramType};
pub use ringbuf::RingBuf;
