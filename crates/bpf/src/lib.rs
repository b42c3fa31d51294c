//! eBPF for kscope: instructions, loading programs through bpf(2), and
//! perf events through perf_event_open(2).
//!
//! This crate sits at the bottom of the probe data flow: the probe compiler
//! produces [`Insn`]s, [`Program::load`] hands them to the kernel's
//! verifier, and perf events carry them to their attach points. Every
//! syscall is in the private `sys` module; the rest is plain data.
//!
//! ```no_run
//! use kscope_bpf::{Insn, Program, ProgramType};
//! let insns = [Insn::mov64_imm(0, 0), Insn::exit()];
//! let program = Program::load(ProgramType::Tracepoint, "noop", &insns)?;
//! drop(program); // closing the fd unloads it
//! # Ok::<(), kscope_bpf::Error>(())
//! ```

mod error;
mod insn;
mod kmem;
mod perf;
mod program;
mod sys;

pub use error::{Error, Result};
pub use insn::{Alu, Insn, Jmp, PSEUDO_MAP_FD, Size};
pub use kmem::read_kernel_u64s;
pub use perf::{PerfEvent, SoftwareEvent};
pub use program::{Program, ProgramType};
