//! A crashed Linux kernel, read through its dump alone.
//!
//! [`kscope_vmcore`] gives physical memory and kernel virtual addresses;
//! this crate gives them meaning, with nothing but the dump where the
//! kernel carries what is needed (kallsyms, BTF, VMCOREINFO), and a
//! System.map when one is given:
//!
//! - [`symbols`]: the kernel's symbol table ([`SymbolTable`]): from a
//!   System.map, moved by the dump's KASLR offset, or decoded from the
//!   kallsyms tables in the dump's memory ([`kallsyms`],
//!   [`read_kallsyms`]).
//! - the kernel's types from its BTF, found between `__start_BTF` and
//!   `__stop_BTF` in memory ([`read_btf`]), and through them, in
//!   [`types`], struct layouts, member offsets by path and structs
//!   printed as crash prints them.
//! - [`log`]: the printk log, from the lockless ring buffer (5.10 and
//!   later) or `log_buf` (3.5 to 5.9), formatted as makedumpfile's
//!   `--dump-dmesg` ([`read_log`]).
//! - [`system`]: what crash's `sys` shows ([`read_system`]).
//! - [`tasks`]: every task (the task list, each thread group, each CPU's
//!   idle task) with its pid, parent, CPU, state and memory, and which
//!   task is current on each CPU ([`read_tasks`]).
//! - [`stack`] and [`orc`]: kernel stacks unwound with the kernel's own
//!   ORC tables (the panicking CPU from its registers in the dump, the
//!   others from their saved context), across the IRQ, exception and task
//!   stacks, with a marked frame-pointer and scan fallback ([`Unwinder`]).
//! - [`modules`]: the loaded modules, their memory and ORC tables
//!   ([`read_modules`]).
//! - [`kmem`]: the memory summary of crash's `kmem -i`
//!   ([`read_memory_info`]).
//! - [`vm`]: a task's memory map, from the maple tree (6.1 and later) or
//!   the `mmap` list ([`read_memory_map`]).
//! - [`files`]: a task's open files with their paths, rebuilt through
//!   the dentry and mount trees ([`read_files`]).
//!
//! - [`session`]: [`Kernel`], a dump opened for a session of commands,
//!   which decides where the symbols come from ([`SymbolSource`]) and
//!   reads them and the BTF once; [`commands`]: crash's commands over it,
//!   each returning a value that serializes to the command's JSON.
//!
//! Readers of kernel structures take any [`KernelRead`]: the dump's
//! [`KernelMemory`], or a [`MemoryImage`] built by a test or a fuzzer.
//!
//! ```no_run
//! use kscope_kernel::{read_btf, read_kallsyms, read_log, read_system};
//! use kscope_vmcore::{KernelMemory, Vmcore};
//!
//! let dump = Vmcore::open("vmcore")?;
//! let info = dump.vmcoreinfo().expect("VMCOREINFO");
//! let memory = KernelMemory::new(&dump)?;
//! let symbols = read_kallsyms(&memory, info)?;
//! let blob = read_btf(&memory, &symbols)?;
//! let btf = kscope_btf::Btf::parse(&blob)?;
//! let log = read_log(&memory, info, Some(&btf))?;
//! print!("{}", log.dmesg());
//! let sys = read_system(&memory, info, &symbols, Some(&btf), Some(&log))?;
//! println!("{} panicked: {:?}", sys.utsname.release, sys.panic_message);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A session of crash's commands opens the kernel once:
//!
//! ```no_run
//! use kscope_kernel::{Kernel, SymbolSource};
//! use kscope_vmcore::Vmcore;
//!
//! let dump = Vmcore::open("vmcore")?;
//! let kernel = Kernel::open(&dump, SymbolSource::Kallsyms)?;
//! let sys = kernel.system()?; // reads the symbols, and the BTF
//! let ps = kernel.ps()?; // the same symbols, the same parsed BTF
//! println!("{}: {} tasks", sys.system.utsname.release, ps.0.tasks.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The readers of kernel structures (the printk log, tasks, stacks,
//! modules) read them at the offsets BTF or VMCOREINFO give, never at offsets
//! compiled into kscope.

pub mod commands;
mod error;
pub mod files;
pub mod kallsyms;
pub mod kmem;
pub mod log;
mod memory;
pub mod modules;
pub mod orc;
pub mod session;
pub mod stack;
pub mod symbols;
pub mod system;
pub mod tasks;
pub mod types;
pub mod vm;

pub use error::Error;
pub use files::{OpenFile, TaskFiles, read_files};
pub use kallsyms::read_kallsyms;
pub use kmem::{MemoryInfo, read_memory_info};
pub use log::{Log, LogRecord, read_log};
pub use memory::{KernelRead, MemoryImage};
pub use modules::{Module, ModuleList, read_modules};
pub use orc::{OrcTable, read_kernel_orc};
pub use session::{Kernel, SymbolSource};
pub use stack::{Backtrace, Frame, FrameSource, Unwinder};
pub use symbols::{KernelSymbol, SymbolTable};
pub use system::{SystemInfo, read_system};
pub use tasks::{PerCpu, Task, TaskList, TaskState, read_tasks};
pub use vm::{MemoryMap, Vma, read_memory_map};

use kscope_vmcore::KernelMemory;

/// The most BTF a kernel carries that is read (a distribution kernel has
/// 4-6 MiB).
pub const MAX_BTF: u64 = 64 << 20;

/// The kernel's BTF blob, the bytes between `__start_BTF` and `__stop_BTF`.
///
/// # Errors
///
/// [`Error::MissingSymbol`] when the table lacks either symbol (a kernel
/// built without CONFIG_DEBUG_INFO_BTF), [`Error::Corrupt`] when they are
/// out of order or too far apart, and [`Error::Memory`] when the dump
/// does not hold the bytes.
pub fn read_btf(memory: &KernelMemory<'_>, symbols: &SymbolTable) -> Result<Vec<u8>, Error> {
    let start = symbols.required("__start_BTF")?;
    let stop = symbols.required("__stop_BTF")?;
    let len = stop
        .checked_sub(start)
        .filter(|len| *len <= MAX_BTF)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "__start_BTF {start:#x} and __stop_BTF {stop:#x} do not bound a BTF blob"
            ))
        })?;
    let len = usize::try_from(len).map_err(|_| Error::Corrupt("BTF too large".into()))?;
    memory.read_vec(start, len).map_err(|source| Error::Memory {
        what: "the kernel's BTF".into(),
        source,
    })
}
