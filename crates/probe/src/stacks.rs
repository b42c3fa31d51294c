//! Stack traces in user space: the addresses a probe's BPF code stored
//! with `bpf_get_stackid` (kernel stacks, and user stacks with
//! `BPF_F_USER_STACK`) turned into SystemTap's text, and into folded
//! stacks for flame graphs.
//!
//! - [`KernelSymbols`] (`/proc/kallsyms`) and [`UserStacks`] (processes'
//!   mappings and ELF files, remembered while they live) say what is at
//!   an address: a [`Location`], through the [`Symbols`] trait.
//! - [`frame_line`], [`print_backtrace`], [`backtrace_string`],
//!   [`print_stack`], [`sprint_stack`] and [`symdata`] write what SystemTap's
//!   `print_backtrace()`/`print_ubacktrace()`, `backtrace()`/
//!   `ubacktrace()`, `print_stack()`/`print_ustack()` (and `sprint_`) and
//!   `symdata()`/`usymdata()` print, after its runtime (runtime/sym.c,
//!   runtime/stack.c) and tapsets (tapset/linux/context-*.stp,
//!   ucontext-*.stp) of SystemTap 5.5 (sourceware git, 2026-08).
//! - [`Folded`] counts stacks and writes `root;...;leaf COUNT` lines.
//!
//! ```
//! use kscope_probe::stacks::{KernelSymbols, backtrace_string, print_stack};
//!
//! let kernel = KernelSymbols::parse(
//!     "ffffffff81000000 T _text\n\
//!      ffffffff81000100 T __schedule\n\
//!      ffffffff81000a60 T schedule\n",
//! );
//! assert_eq!(
//!     kernel.kernel_frame(0xffffffff810003e5),
//!     " 0xffffffff810003e5 : __schedule+0x2e5/0x960 [kernel]"
//! );
//! let stack = [0xffffffff810003e5, 0xffffffff82000000, 0];
//! let s = backtrace_string(&stack, 511);
//! assert_eq!(s, "0xffffffff810003e5 0xffffffff82000000 ");
//! assert_eq!(
//!     print_stack(&kernel, &s),
//!     " 0xffffffff810003e5 : __schedule+0x2e5/0x960 [kernel]\n \
//!      0xffffffff82000000 : 0xffffffff82000000\n"
//! );
//! ```

mod folded;
mod kernel;
mod line;
mod sys;
mod user;

pub use folded::Folded;
pub use kernel::{KernelSymbols, KernelSymbolsError};
pub use line::{
    KERNEL_MODULE, Location, MAX_BACKTRACE, Symbols, backtrace_string, frame_line, frames,
    print_backtrace, print_stack, sprint_stack, symdata,
};
pub use user::{ProcessSymbols, UserStacks, UserStacksError};
