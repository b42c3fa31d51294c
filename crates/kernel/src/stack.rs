//! Kernel stack backtraces (`bt`), unwound with the kernel's own ORC
//! tables ([`crate::orc`]) the way its `unwind_orc.c` does, from one of
//! two starts:
//!
//! - a task a CPU was running: that CPU's registers in the dump
//!   (`NT_PRSTATUS`; for QEMU's dumps, the registers at the dump, so
//!   the panicking CPU is inside `panic()`'s delay loop);
//! - any other task: the frame `__switch_to_asm` left at its saved
//!   stack pointer (`thread.sp` → `struct inactive_task_frame`: the saved
//!   `rbp` and the return address into `__schedule`).
//!
//! Each step looks up the ORC entry of the instruction (of the call
//! before a return address), finds the caller's stack pointer, and
//! reads either a return address (CALL), a whole `pt_regs` (REGS: an
//! interrupt, exception or syscall entry) or an IRET frame
//! (REGS_PARTIAL). Stacks change as ORC says: from a CPU's IRQ stack to
//! the task stack through the saved stack pointer at the IRQ stack's top,
//! from an exception stack through `pt_regs`. Frame-pointer frames stand
//! in where ORC has no entry, and when neither works a scan of the rest
//! of the stack for return addresses ends the trace; both are marked
//! ([`FrameSource`]). Reads are confined to the known stacks, a stack
//! must grow towards its top and not be re-entered once left, and a
//! trace has at most [`MAX_FRAMES`] frames: a damaged stack ends the
//! trace with the reason ([`Ending::Error`]), never a hang.

use std::collections::HashSet;

use kscope_btf::Btf;
use kscope_vmcore::{CpuState, X86_64Registers};

use crate::modules::Module;
use crate::orc::{OrcEntry, OrcReg, OrcTable, OrcType, read_kernel_orc, read_orc_table};
use crate::tasks::{PerCpu, Task};
use crate::{Error, KernelRead, SymbolTable};

/// The most frames one trace has.
pub const MAX_FRAMES: usize = 256;

/// `struct pt_regs`' members in `user_regs_struct` order, which the
/// kernel keeps the same so that ptrace can copy one into the other.
const PT_REGS_MEMBERS: [&str; 21] = [
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
    "orig_ax", "ip", "cs", "flags", "sp", "ss",
];
const PT_IP: usize = 16;
const PT_CS: usize = 17;
const PT_FLAGS: usize = 18;
const PT_SP: usize = 19;
const PT_SS: usize = 20;
/// The largest stack believed (the exception stacks of a CPU are 76 KiB).
const MAX_STACK: u64 = 1 << 20;
/// The most bytes of `struct pt_regs` read (x86-64's has 168).
const MAX_PT_REGS: u64 = 4096;
/// `user_regs_struct` has 6 more registers than `pt_regs`.
const USER_REGS_BYTES: usize = 27 * 8;

/// Which stack an address is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StackKind {
    /// The task's own kernel stack.
    Task,
    /// A CPU's hard-IRQ stack.
    Irq {
        /// The CPU.
        cpu: u32,
    },
    /// A CPU's exception stacks (double fault, NMI, debug, machine
    /// check, VC).
    Exception {
        /// The CPU.
        cpu: u32,
    },
    /// None that is known.
    Unknown,
}

/// How a frame was found.
/// Serialized as its variant's name in lower case (`savedcontext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameSource {
    /// The CPU's registers in the dump.
    Registers,
    /// The frame `__switch_to_asm` saved for a task that is not running.
    SavedContext,
    /// The ORC tables.
    Orc,
    /// A guess: the frame-pointer chain, where ORC had no answer.
    FramePointer,
    /// A guess: a word on the stack that looks like a return address
    /// (kernel text right after a call instruction).
    Scan,
}

/// One frame of a backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The instruction address: where the CPU was for an exact frame,
    /// else the return address.
    pub pc: u64,
    /// The stack pointer in this frame (for a caller, just above the
    /// return address it pushed; crash prints that slot, `sp - 8`).
    pub sp: u64,
    /// The symbol holding `pc` (for a return address, the one holding the
    /// call before it), when the symbol table has one.
    pub symbol: Option<String>,
    /// `pc` minus the symbol's address (or the module's base).
    pub offset: u64,
    /// The module whose code holds `pc`.
    pub module: Option<String>,
    /// How the frame was found.
    pub source: FrameSource,
    /// Whether `pc` is the exact instruction (the CPU's, or one an
    /// interrupt or exception stopped) rather than a return address.
    pub exact: bool,
    /// The stack `sp` is on.
    pub stack: StackKind,
    /// The registers at `pc` when this frame was entered through an
    /// exception frame (`pt_regs`) or is the CPU's own; `None` for a
    /// frame found through a return address.
    pub regs: Option<X86_64Registers>,
}

impl Frame {
    /// Whether ORC, or the dump itself, gave this frame.
    pub fn is_reliable(&self) -> bool {
        !matches!(self.source, FrameSource::FramePointer | FrameSource::Scan)
    }
}

/// Where a trace started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A CPU's registers in the dump.
    Registers {
        /// The CPU.
        cpu: u32,
    },
    /// The task's saved context (`thread.sp`).
    SavedContext,
}

/// Why a trace ended.
/// Serialized as its variant's name, `{"Error": "why"}` for an error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Ending {
    /// At the end of the kernel stack (a kernel thread's first frame).
    EndOfStack,
    /// At an entry from user space; its registers are in
    /// [`Backtrace::user_regs`].
    UserMode,
    /// Unwinding failed; frames after the failure, if any, are guesses.
    Error(String),
    /// [`MAX_FRAMES`] frames.
    FrameLimit,
}

/// A task's kernel stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backtrace {
    /// The task's `task_struct` address.
    pub task: u64,
    /// Where the trace started.
    pub start: Start,
    /// The frames, innermost first.
    pub frames: Vec<Frame>,
    /// The user-space registers saved at the kernel entry.
    pub user_regs: Option<X86_64Registers>,
    /// Why the trace ended.
    pub ending: Ending,
}

impl Backtrace {
    /// Whether every frame is reliable and the trace ended where a stack
    /// ends.
    pub fn is_reliable(&self) -> bool {
        matches!(self.ending, Ending::EndOfStack | Ending::UserMode)
            && self.frames.iter().all(Frame::is_reliable)
    }
}

/// The sizes and offsets unwinding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackLayout {
    /// THREAD_SIZE: a task stack's size (`__end_init_task -
    /// __start_init_task`).
    pub thread_size: u64,
    /// `sizeof(struct irq_stack)` (THREAD_SIZE when BTF lacks it: the
    /// two are the same on x86-64).
    pub irq_stack_size: u64,
    /// `sizeof(struct cea_exception_stacks)`; 0 when unknown.
    pub exception_stacks_size: u64,
    /// `sizeof(struct inactive_task_frame)`.
    pub switch_frame_size: u64,
    /// `inactive_task_frame.bp`.
    pub switch_frame_bp: u64,
    /// `inactive_task_frame.ret_addr`.
    pub switch_frame_ret_addr: u64,
    /// `sizeof(struct pt_regs)`.
    pub pt_regs_size: u64,
    /// The offsets of `pt_regs`' members, in `user_regs_struct` order
    /// (r15 ... ss).
    pub pt_regs: [u64; 21],
    /// `pcpu_hot.hardirq_stack_ptr` (Linux 6.2+); `None`: the per-CPU
    /// `hardirq_stack_ptr`.
    pub pcpu_hot_hardirq_stack: Option<u64>,
}

fn btf_member(btf: &Btf<'_>, ty: &str, name: &str) -> Result<u64, Error> {
    btf.member_offset(ty, name)
        .ok_or_else(|| Error::Corrupt(format!("the kernel's BTF has no member {name} in {ty}")))
}

fn btf_size(btf: &Btf<'_>, ty: &str) -> Result<u64, Error> {
    btf.type_size(ty)
        .ok_or_else(|| Error::Corrupt(format!("the kernel's BTF has no {ty}")))
}

impl StackLayout {
    /// Finds the layout in BTF, THREAD_SIZE from the symbols around
    /// `init_task`'s stack.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming what BTF lacks, [`Error::MissingSymbol`]
    /// without `__start_init_task` and `__end_init_task`.
    pub fn from_btf(btf: &Btf<'_>, symbols: &SymbolTable) -> Result<StackLayout, Error> {
        let start = symbols.required("__start_init_task")?;
        let thread_size = symbols
            .required("__end_init_task")?
            .checked_sub(start)
            .filter(|s| s.is_power_of_two() && (4096..=MAX_STACK).contains(s))
            .ok_or_else(|| {
                Error::Corrupt(
                    "__start_init_task and __end_init_task do not bound a task stack".into(),
                )
            })?;
        let mut pt_regs = [0; 21];
        for (slot, name) in pt_regs.iter_mut().zip(PT_REGS_MEMBERS) {
            *slot = btf_member(btf, "struct pt_regs", name)?;
        }
        const FRAME: &str = "struct inactive_task_frame";
        Ok(StackLayout {
            thread_size,
            irq_stack_size: btf
                .type_size("struct irq_stack")
                .filter(|&s| s <= MAX_STACK)
                .unwrap_or(thread_size),
            exception_stacks_size: btf
                .type_size("struct cea_exception_stacks")
                .filter(|&s| s <= MAX_STACK)
                .unwrap_or(0),
            switch_frame_size: btf_size(btf, FRAME)?,
            switch_frame_bp: btf_member(btf, FRAME, "bp")?,
            switch_frame_ret_addr: btf_member(btf, FRAME, "ret_addr")?,
            pt_regs_size: btf_size(btf, "struct pt_regs")?,
            pt_regs,
            pcpu_hot_hardirq_stack: btf.member_offset("struct pcpu_hot", "hardirq_stack_ptr"),
        })
    }
}

/// A stack, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    kind: StackKind,
    start: u64,
    end: u64,
}

impl Region {
    fn holds(&self, addr: u64, len: u64) -> bool {
        addr >= self.start && addr.checked_add(len).is_some_and(|end| end <= self.end)
    }
}

/// A module's code and ORC table.
#[derive(Debug, Clone)]
struct ModuleCode {
    name: String,
    start: u64,
    end: u64,
    orc: Option<OrcTable>,
}

/// The unwinder's state between frames (the kernel's `unwind_state`).
#[derive(Debug, Clone)]
struct State {
    ip: u64,
    sp: u64,
    bp: u64,
    /// `ip` is exact, not a return address.
    signal: bool,
    /// The last `pt_regs` met, and whether it is whole (else only its
    /// IRET frame was read).
    regs: Option<X86_64Registers>,
    full_regs: bool,
    /// The whole `pt_regs` before an IRET frame.
    prev_regs: Option<X86_64Registers>,
}

impl State {
    /// A register from the last `pt_regs`, as the kernel's `get_reg`.
    fn reg(&self, pick: fn(&X86_64Registers) -> u64) -> Option<u64> {
        if self.full_regs {
            return self.regs.as_ref().map(pick);
        }
        self.regs.as_ref()?;
        self.prev_regs.as_ref().map(pick)
    }
}

/// What one step gave: the caller's state, with the registers of the
/// exception frame it was found through.
enum Step {
    Frame(Box<(State, Option<X86_64Registers>)>),
    End,
}

/// Unwinds kernel stacks of one dump.
pub struct Unwinder<'a> {
    memory: &'a dyn KernelRead,
    symbols: &'a SymbolTable,
    layout: StackLayout,
    kernel_orc: OrcTable,
    /// `[_stext, _etext)` and `[_sinittext, _einittext)`.
    kernel_text: Vec<(u64, u64)>,
    modules: Vec<ModuleCode>,
    /// Each CPU's IRQ and exception stacks.
    cpu_stacks: Vec<Region>,
    /// Each CPU's registers in the dump, by CPU number.
    cpu_registers: Vec<Option<X86_64Registers>>,
    ret_from_fork: Vec<u64>,
}

impl std::fmt::Debug for Unwinder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwinder")
            .field("layout", &self.layout)
            .field("kernel_orc_entries", &self.kernel_orc.len())
            .field("modules", &self.modules.len())
            .field("cpu_stacks", &self.cpu_stacks)
            .finish_non_exhaustive()
    }
}

/// Whether registers were saved in user mode (CPL 3 in `cs`).
fn user_mode(regs: &X86_64Registers) -> bool {
    regs.cs & 3 != 0
}

impl<'a> Unwinder<'a> {
    /// An unwinder with the kernel's ORC table, each CPU's stacks (from
    /// `per_cpu`) and registers (`cpus`, the dump's `NT_PRSTATUS` notes,
    /// one per CPU in order).
    ///
    /// # Errors
    ///
    /// As [`StackLayout::from_btf`] and [`read_kernel_orc`];
    /// [`Error::MissingSymbol`] without `_stext` and `_etext`.
    pub fn new(
        memory: &'a dyn KernelRead,
        symbols: &'a SymbolTable,
        btf: &Btf<'_>,
        per_cpu: &PerCpu,
        cpus: &[CpuState],
    ) -> Result<Unwinder<'a>, Error> {
        let layout = StackLayout::from_btf(btf, symbols)?;
        let kernel_orc = read_kernel_orc(memory, symbols, Some(btf))?;
        Unwinder::with_layout(memory, symbols, layout, kernel_orc, per_cpu, cpus)
    }

    /// An unwinder with a layout and ORC table the caller has.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSymbol`] without `_stext` and `_etext`.
    pub fn with_layout(
        memory: &'a dyn KernelRead,
        symbols: &'a SymbolTable,
        layout: StackLayout,
        kernel_orc: OrcTable,
        per_cpu: &PerCpu,
        cpus: &[CpuState],
    ) -> Result<Unwinder<'a>, Error> {
        let mut kernel_text = vec![(symbols.required("_stext")?, symbols.required("_etext")?)];
        if let (Some(start), Some(end)) =
            (symbols.address("_sinittext"), symbols.address("_einittext"))
        {
            kernel_text.push((start, end));
        }
        let mut cpu_stacks = Vec::new();
        let hardirq = match layout.pcpu_hot_hardirq_stack {
            Some(member) => symbols.address("pcpu_hot").map(|a| a.wrapping_add(member)),
            None => symbols.address("hardirq_stack_ptr"),
        };
        let exception = symbols.address("cea_exception_stacks");
        for cpu in 0..per_cpu.len() {
            let read = |var: Option<u64>| {
                let at = per_cpu.address(cpu, var?)?;
                memory.read_u64(at).ok().filter(|&p| p != 0)
            };
            // hardirq_stack_ptr points at the top word of the IRQ stack.
            if let Some(top) = read(hardirq) {
                let end = top.wrapping_add(8);
                cpu_stacks.push(Region {
                    kind: StackKind::Irq { cpu: cpu as u32 },
                    start: end.wrapping_sub(layout.irq_stack_size),
                    end,
                });
            }
            if layout.exception_stacks_size > 0
                && let Some(start) = read(exception)
            {
                cpu_stacks.push(Region {
                    kind: StackKind::Exception { cpu: cpu as u32 },
                    start,
                    end: start.wrapping_add(layout.exception_stacks_size),
                });
            }
        }
        let mut cpu_registers = vec![None; cpus.len()];
        for state in cpus {
            if let Some(slot) = cpu_registers.get_mut(state.cpu) {
                *slot = state.registers;
            }
        }
        let ret_from_fork = ["ret_from_fork", "ret_from_fork_asm"]
            .iter()
            .filter_map(|name| symbols.address(name))
            .collect();
        Ok(Unwinder {
            memory,
            symbols,
            layout,
            kernel_orc,
            kernel_text,
            modules: Vec::new(),
            cpu_stacks,
            cpu_registers,
            ret_from_fork,
        })
    }

    /// Adds a module's code and its ORC table (`module.arch`), so that
    /// frames in it unwind and are named after it.
    ///
    /// # Errors
    ///
    /// As [`read_orc_table`] when the module's table cannot be read; the
    /// module's code is added anyway, for naming frames.
    pub fn add_module(&mut self, module: &Module) -> Result<(), Error> {
        let orc = module
            .orc
            .map(|o| {
                read_orc_table(
                    self.memory,
                    o.count,
                    o.ip_table,
                    o.entries,
                    Some(self.kernel_orc.version()),
                )
            })
            .transpose();
        let (orc, result) = match orc {
            Ok(orc) => (orc, Ok(())),
            Err(e) => (None, Err(e)),
        };
        self.modules.push(ModuleCode {
            name: module.name.clone(),
            start: module.base,
            end: module.base.wrapping_add(module.text_size),
            orc,
        });
        result
    }

    /// The layout in use.
    pub fn layout(&self) -> &StackLayout {
        &self.layout
    }

    /// The kernel's ORC table.
    pub fn kernel_orc(&self) -> &OrcTable {
        &self.kernel_orc
    }

    /// Whether `addr` is kernel or module code.
    pub fn is_text(&self, addr: u64) -> bool {
        self.kernel_text
            .iter()
            .any(|&(s, e)| (s..e).contains(&addr))
            || self
                .modules
                .iter()
                .any(|m| (m.start..m.end).contains(&addr))
    }

    /// The backtrace of `task`: from its CPU's registers when it was
    /// running on a CPU whose registers the dump has (and whose stack
    /// pointer is on one of its stacks), else from its saved context.
    pub fn backtrace(&self, task: &Task) -> Backtrace {
        if task.current
            && let Some(cpu) = task.cpu
            && let Some(Some(regs)) = self.cpu_registers.get(cpu as usize)
        {
            let on_stack = self
                .regions(task)
                .iter()
                .any(|r| r.holds(regs.rsp, 8) && r.kind != StackKind::Unknown);
            if user_mode(regs) || on_stack {
                return self.backtrace_from(task, regs, Start::Registers { cpu });
            }
        }
        self.backtrace_saved(task)
    }

    /// The backtrace of `task` from registers the caller has (`start`
    /// says where they come from).
    pub fn backtrace_from(&self, task: &Task, regs: &X86_64Registers, start: Start) -> Backtrace {
        if user_mode(regs) {
            return Backtrace {
                task: task.address,
                start,
                frames: Vec::new(),
                user_regs: Some(*regs),
                ending: Ending::UserMode,
            };
        }
        let state = State {
            ip: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
            signal: true,
            regs: Some(*regs),
            full_regs: true,
            prev_regs: None,
        };
        self.unwind(task, state, FrameSource::Registers, Some(*regs), start)
    }

    /// The backtrace of a task that is not running, from the frame
    /// `__switch_to_asm` pushed at its `thread.sp`.
    pub fn backtrace_saved(&self, task: &Task) -> Backtrace {
        let l = &self.layout;
        let regions = self.regions(task);
        let frame = task.saved_sp;
        let read = |off: u64| -> Result<u64, String> {
            let at = frame.wrapping_add(off);
            if !regions.iter().any(|r| r.holds(at, 8)) {
                return Err(format!(
                    "the saved stack pointer {frame:#x} is not on the task's stack"
                ));
            }
            self.memory
                .read_u64(at)
                .map_err(|e| format!("cannot read the saved frame at {frame:#x}: {e}"))
        };
        let start = match (read(l.switch_frame_ret_addr), read(l.switch_frame_bp)) {
            (Ok(ip), Ok(bp)) => State {
                ip,
                sp: frame.wrapping_add(l.switch_frame_size),
                bp,
                signal: self.ret_from_fork.contains(&ip),
                regs: None,
                full_regs: false,
                prev_regs: None,
            },
            (Err(e), _) | (_, Err(e)) => {
                return Backtrace {
                    task: task.address,
                    start: Start::SavedContext,
                    frames: Vec::new(),
                    user_regs: None,
                    ending: Ending::Error(e),
                };
            }
        };
        self.unwind(
            task,
            start,
            FrameSource::SavedContext,
            None,
            Start::SavedContext,
        )
    }

    /// The stacks a task's trace may use: its own, then every CPU's.
    fn regions(&self, task: &Task) -> Vec<Region> {
        let mut regions = vec![Region {
            kind: StackKind::Task,
            start: task.stack,
            end: task.stack.wrapping_add(self.layout.thread_size),
        }];
        regions.extend(self.cpu_stacks.iter().copied());
        regions
    }

    fn unwind(
        &self,
        task: &Task,
        mut state: State,
        source: FrameSource,
        regs: Option<X86_64Registers>,
        start: Start,
    ) -> Backtrace {
        let regions = self.regions(task);
        let region_of = |sp: u64| regions.iter().copied().find(|r| r.holds(sp, 1));
        let mut frames = vec![self.frame(&state, source, regs, region_of(state.sp))];
        let mut left: HashSet<StackKind> = HashSet::new();
        let mut user_regs = None;
        let ending = loop {
            if frames.len() >= MAX_FRAMES {
                break Ending::FrameLimit;
            }
            let entry = self.orc_entry(&state);
            let (step, source) = match entry {
                Some(entry) => (self.step(&state, entry, &regions), FrameSource::Orc),
                None => (Err("no ORC entry".to_string()), FrameSource::Orc),
            };
            let step = step.and_then(|s| self.check(&state, s, &regions, &left));
            let (step, source) = match step {
                Ok(step) => (Ok(step), source),
                Err(e) => {
                    // The kernel's own fallback for code without ORC
                    // data: assume a frame pointer.
                    let fp = self
                        .step(&state, OrcEntry::FRAME_POINTER, &regions)
                        .and_then(|s| self.check(&state, s, &regions, &left));
                    match fp {
                        Ok(step @ Step::Frame(..)) => (Ok(step), FrameSource::FramePointer),
                        _ => (Err(e), FrameSource::Orc),
                    }
                }
            };
            match step {
                Ok(Step::End) => break Ending::EndOfStack,
                Ok(Step::Frame(found)) => {
                    let (next, frame_regs) = *found;
                    if let Some(regs) = frame_regs.as_ref().filter(|r| user_mode(r)) {
                        user_regs = Some(*regs);
                        break Ending::UserMode;
                    }
                    let (old, new) = (region_of(state.sp), region_of(next.sp));
                    if let (Some(old), Some(new)) = (old, new)
                        && old.kind != new.kind
                    {
                        left.insert(old.kind);
                    }
                    frames.push(self.frame(&next, source, frame_regs, new));
                    state = next;
                }
                Err(e) => {
                    let room = MAX_FRAMES - frames.len();
                    frames.extend(self.scan(&state, region_of(state.sp), room));
                    break Ending::Error(e);
                }
            }
        };
        Backtrace {
            task: task.address,
            start,
            frames,
            user_regs,
            ending,
        }
    }

    /// The ORC entry for the state's instruction (for a return address,
    /// the call before it): from the kernel's table for kernel text, the
    /// module's for module code, the NULL-call entry for address 0.
    fn orc_entry(&self, state: &State) -> Option<OrcEntry> {
        if state.ip == 0 {
            return Some(OrcEntry::NULL_CALL);
        }
        let ip = if state.signal {
            state.ip
        } else {
            state.ip.wrapping_sub(1)
        };
        if self.kernel_text.iter().any(|&(s, e)| (s..e).contains(&ip)) {
            return self.kernel_orc.find(ip);
        }
        self.modules
            .iter()
            .find(|m| (m.start..m.end).contains(&ip))?
            .orc
            .as_ref()?
            .find(ip)
    }

    /// One step of the kernel's `unwind_next_frame` with `entry`.
    fn step(&self, state: &State, entry: OrcEntry, regions: &[Region]) -> Result<Step, String> {
        let read = |addr: u64| -> Result<u64, String> {
            if !regions.iter().any(|r| r.holds(addr, 8)) {
                return Err(format!("{addr:#x} is not on a known stack"));
            }
            self.memory
                .read_u64(addr)
                .map_err(|e| format!("cannot read the stack at {addr:#x}: {e}"))
        };
        let missing = |name: &str| format!("the ORC entry needs {name}, which no pt_regs gave");
        match entry.kind {
            OrcType::EndOfStack => return Ok(Step::End),
            OrcType::Undefined => {
                return Err(format!("no unwind information at {:#x}", state.ip));
            }
            OrcType::Unknown(t) => return Err(format!("unknown ORC entry type {t}")),
            OrcType::Call | OrcType::Regs | OrcType::RegsPartial => {}
        }
        let offset = i64::from(entry.sp_offset);
        let sp = match entry.sp_reg {
            OrcReg::Sp => state.sp.wrapping_add_signed(offset),
            OrcReg::Bp => state.bp.wrapping_add_signed(offset),
            OrcReg::SpIndirect => read(state.sp)?.wrapping_add_signed(offset),
            OrcReg::BpIndirect => read(state.bp.wrapping_add_signed(offset))?,
            OrcReg::R10 => state.reg(|r| r.r10).ok_or_else(|| missing("r10"))?,
            OrcReg::R13 => state.reg(|r| r.r13).ok_or_else(|| missing("r13"))?,
            OrcReg::Di => state.reg(|r| r.rdi).ok_or_else(|| missing("rdi"))?,
            OrcReg::Dx => state.reg(|r| r.rdx).ok_or_else(|| missing("rdx"))?,
            other => return Err(format!("unknown ORC sp base {other:?}")),
        };
        let mut next = State {
            signal: entry.signal,
            ..state.clone()
        };
        let mut frame_regs = None;
        match entry.kind {
            OrcType::Call => {
                next.ip = read(sp.wrapping_sub(8))?;
                next.sp = sp;
                next.regs = None;
                next.prev_regs = None;
            }
            OrcType::Regs => {
                let regs = self.read_pt_regs(sp, regions)?;
                next.ip = regs.rip;
                next.sp = regs.rsp;
                next.regs = Some(regs);
                next.prev_regs = None;
                next.full_regs = true;
                frame_regs = Some(regs);
            }
            _ => {
                // An IRET frame: the end of a pt_regs, at sp.
                let l = &self.layout;
                let base = sp.wrapping_sub(l.pt_regs[PT_IP]);
                let field = |i: usize| read(base.wrapping_add(l.pt_regs[i]));
                let regs = X86_64Registers {
                    rip: field(PT_IP)?,
                    cs: field(PT_CS)?,
                    eflags: field(PT_FLAGS)?,
                    rsp: field(PT_SP)?,
                    ss: field(PT_SS)?,
                    ..X86_64Registers::default()
                };
                next.ip = regs.rip;
                next.sp = regs.rsp;
                if state.full_regs {
                    next.prev_regs = state.regs;
                }
                next.regs = Some(regs);
                next.full_regs = false;
                frame_regs = Some(regs);
            }
        }
        next.bp = match entry.bp_reg {
            OrcReg::Undefined => next.reg(|r| r.rbp).unwrap_or(state.bp),
            OrcReg::PrevSp => read(sp.wrapping_add_signed(i64::from(entry.bp_offset)))?,
            OrcReg::Bp => read(state.bp.wrapping_add_signed(i64::from(entry.bp_offset)))?,
            other => return Err(format!("unknown ORC bp base {other:?}")),
        };
        // A return address must be code (0 is no exception: only the
        // CPU itself can be at 0); an exception frame may hold user
        // registers, which end the trace.
        if entry.kind == OrcType::Call && !self.is_text(next.ip) {
            return Err(format!(
                "the return address {:#x} is not kernel code",
                next.ip
            ));
        }
        Ok(Step::Frame(Box::new((next, frame_regs))))
    }

    /// The kernel's guard against bad ORC data: on one stack the stack
    /// pointer only grows, and a stack left is not entered again.
    fn check(
        &self,
        old: &State,
        step: Step,
        regions: &[Region],
        left: &HashSet<StackKind>,
    ) -> Result<Step, String> {
        let Step::Frame(found) = &step else {
            return Ok(step);
        };
        let (next, regs) = &**found;
        if regs.as_ref().is_some_and(user_mode) {
            return Ok(step);
        }
        let region_of = |sp: u64| regions.iter().find(|r| r.holds(sp, 1)).map(|r| r.kind);
        match (region_of(old.sp), region_of(next.sp)) {
            (_, None) => Err(format!(
                "the stack pointer {:#x} is not on a known stack",
                next.sp
            )),
            (Some(a), Some(b)) if a == b && next.sp <= old.sp => Err(format!(
                "the stack goes the wrong way, from {:#x} to {:#x}",
                old.sp, next.sp
            )),
            (_, Some(b)) if left.contains(&b) => Err(format!(
                "the unwinder came back to a stack it had left, at {:#x}",
                next.sp
            )),
            _ => Ok(step),
        }
    }

    /// The `pt_regs` at `at`.
    fn read_pt_regs(&self, at: u64, regions: &[Region]) -> Result<X86_64Registers, String> {
        let l = &self.layout;
        if l.pt_regs_size > MAX_PT_REGS {
            return Err(format!("struct pt_regs of {} bytes", l.pt_regs_size));
        }
        if !regions.iter().any(|r| r.holds(at, l.pt_regs_size)) {
            return Err(format!("the pt_regs at {at:#x} are not on a known stack"));
        }
        let size = usize::try_from(l.pt_regs_size).map_err(|_| "pt_regs too large")?;
        let bytes = self
            .memory
            .read_vec(at, size)
            .map_err(|e| format!("cannot read the pt_regs at {at:#x}: {e}"))?;
        let mut user = [0u8; USER_REGS_BYTES];
        for (i, &off) in l.pt_regs.iter().enumerate() {
            let value = crate::tasks::le_u64(&bytes, off)
                .ok_or_else(|| format!("pt_regs member at offset {off} is past its size"))?;
            user[i * 8..i * 8 + 8].copy_from_slice(&value.to_le_bytes());
        }
        X86_64Registers::from_bytes(&user).ok_or_else(|| "no registers".to_string())
    }

    /// Guessed frames: the words from the state's stack pointer to the
    /// end of its stack that are kernel code right after a call.
    fn scan(&self, state: &State, region: Option<Region>, room: usize) -> Vec<Frame> {
        let Some(region) = region else {
            return Vec::new();
        };
        let Some(from) = state.sp.checked_next_multiple_of(8) else {
            return Vec::new();
        };
        let from = from.max(region.start);
        let Some(len) = region
            .end
            .checked_sub(from)
            .and_then(|l| usize::try_from(l).ok())
        else {
            return Vec::new();
        };
        let Ok(words) = self.memory.read_vec(from, len) else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        for (i, word) in words.chunks_exact(8).enumerate() {
            if frames.len() >= room {
                break;
            }
            let pc = crate::tasks::le_u64(word, 0).unwrap_or(0);
            if !self.is_text(pc) || !self.follows_call(pc) {
                continue;
            }
            let scanned = State {
                ip: pc,
                sp: from.wrapping_add(8 * i as u64 + 8),
                bp: 0,
                signal: false,
                regs: None,
                full_regs: false,
                prev_regs: None,
            };
            frames.push(self.frame(&scanned, FrameSource::Scan, None, Some(region)));
        }
        frames
    }

    /// Whether the bytes before `ret` end in a call: `call rel32` (E8)
    /// or an indirect `call` (FF /2) of 2, 3, 6 or 7 bytes.
    fn follows_call(&self, ret: u64) -> bool {
        let mut code = [0u8; 7];
        if self
            .memory
            .read_virt(ret.wrapping_sub(7), &mut code)
            .is_err()
        {
            return false;
        }
        let indirect = |at: usize| code[at] == 0xff && (code[at + 1] >> 3) & 7 == 2;
        code[2] == 0xe8 || indirect(5) || indirect(4) || indirect(1) || indirect(0)
    }

    fn frame(
        &self,
        state: &State,
        source: FrameSource,
        regs: Option<X86_64Registers>,
        region: Option<Region>,
    ) -> Frame {
        let exact = state.signal;
        let look = if exact {
            state.ip
        } else {
            state.ip.wrapping_sub(1)
        };
        let (mut symbol, mut offset, mut module) = (None, 0, None);
        if let Some(m) = self
            .modules
            .iter()
            .find(|m| (m.start..m.end).contains(&look))
        {
            module = Some(m.name.clone());
            offset = state.ip - m.start;
        } else if self.is_text(look)
            && let Some((sym, _)) = self.symbols.lookup(look)
        {
            symbol = Some(sym.name.clone());
            offset = state.ip.wrapping_sub(sym.address);
        }
        Frame {
            pc: state.ip,
            sp: state.sp,
            symbol,
            offset,
            module,
            source,
            exact,
            stack: region.map_or(StackKind::Unknown, |r| r.kind),
            regs,
        }
    }
}
