//! Pass 3: BPF code generation. Each [`Attachment`] gets one program that
//! runs its probe's handler, with the script's functions inlined.
//!
//! Register use: r6 holds the context (the tracepoint's record), r7 the
//! globals (one array map value shared by every CPU), r8 the scratch area
//! (a per-CPU array map value: string temporaries, string locals and
//! output records, which would not fit the 512-byte stack). Integer locals
//! and temporaries live on the stack, where the verifier tracks their
//! values, so that loops over them can be proven to end. Integer
//! expressions leave their value in r0; string expressions name the place
//! that holds them. Strings are at most [`STR`] bytes with the NUL.
//!
//! Output is a record in the BPF ring buffer: a u64 naming an [`Output`]
//! and then the raw arguments (8 bytes per integer, [`STR`] bytes per
//! string), formatted in user space.
//!
//! This module holds the generated code's types, the instruction buffer
//! with its labels and jumps, and [`generate`]; the generator's concerns
//! are one file each: `stmt` (the handler and its statements), `frame`
//! (where locals and temporaries live, inlined calls), `expr` (integer
//! expressions), `strings`, `builtins` (the built-in functions),
//! `output` (ring-buffer records) and `fanin` (the prologue and context
//! of one program standing for many syscalls).

use std::collections::HashMap;

use kscope_bpf::{Alu, Insn, Jmp};

use crate::ast::{Literal, Script};
use crate::check::{ArrayType, Scope, Ty, Types};
use crate::diagnostic::Diagnostic;
use crate::points::Attachment;
use crate::source::{SourceFile, Span};

mod arrays;
mod builtins;
mod expr;
mod fanin;
mod frame;
mod output;
mod stacks;
mod stmt;
mod strings;
#[cfg(test)]
mod tests;

pub use arrays::word_at;
pub use fanin::SyscallArgs;
pub use output::{ArgSlot, Output, is_user_string};
pub use stacks::stack_value;

/// The longest string, NUL included (SystemTap's MAXSTRINGLEN is 512;
/// records and comparisons grow with it).
pub const STR: u32 = 128;

/// Offset in the globals of the flag that `exit()` (and user space, to
/// stop the session) sets.
pub const EXIT_FLAG: u32 = 0;
/// Offset in the globals of the count of records the full ring buffer
/// refused.
pub const LOST_COUNTER: u32 = 8;
/// The stack slot that holds the map key 0 for lookups.
const KEY_SLOT: i16 = -8;
/// The BPF stack is 512 bytes.
const STACK_LIMIT: i32 = 512;

// Helper function ids (enum bpf_func_id in include/uapi/linux/bpf.h).
const MAP_LOOKUP_ELEM: i32 = 1;
const MAP_UPDATE_ELEM: i32 = 2;
const MAP_DELETE_ELEM: i32 = 3;
const GET_STACKID: i32 = 27;
const MAP_LOOKUP_PERCPU_ELEM: i32 = 195;
const KTIME_GET_NS: i32 = 5;
const GET_SMP_PROCESSOR_ID: i32 = 8;
const GET_CURRENT_PID_TGID: i32 = 14;
const GET_CURRENT_UID_GID: i32 = 15;
const GET_CURRENT_COMM: i32 = 16;
const GET_CURRENT_TASK: i32 = 35;
const PROBE_READ_KERNEL: i32 = 113;
const PROBE_READ_USER_STR: i32 = 114;
const PROBE_READ_KERNEL_STR: i32 = 115;
const RINGBUF_OUTPUT: i32 = 130;
const SNPRINTF: i32 = 165;
/// bpf_map_update_elem's flags: create or replace, create only.
const BPF_ANY: i32 = 0;
const BPF_NOEXIST: i32 = 1;
/// `src` of an ld_imm64 that loads the address of a map's value plus the
/// second immediate (BPF_PSEUDO_MAP_VALUE).
const PSEUDO_MAP_VALUE: u8 = 2;

/// The maps a program refers to; the loader puts their fds in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRef {
    /// The globals (an array map with one value).
    Globals,
    /// The per-CPU scratch area.
    Scratch,
    /// The ring buffer that carries output to user space.
    Events,
    /// The read-only constants (sprintf formats); the instruction is a
    /// BPF_PSEUDO_MAP_VALUE load whose second immediate is the offset.
    Rodata,
    /// The map of array or statistic N of [`Generated::arrays`].
    Array(usize),
    /// The kernel stack traces of `backtrace()`.
    KernelStacks,
    /// The user stack traces of `ubacktrace()`.
    UserStacks,
    /// The processes whose user stacks were taken (tgid keys), so that
    /// user space hears of each once, while it can still read its maps.
    Processes,
}

/// How many frames a stack trace keeps: SystemTap's MAXBACKTRACE.
pub const STACK_FRAMES: u32 = crate::stacks::MAX_BACKTRACE as u32;

/// Where a global lives in the globals value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalVar {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Its offset.
    pub offset: u32,
    /// Its initial value.
    pub init: Option<Literal>,
}

/// The layout of the globals map's single value: the exit flag, the count
/// of lost records, then each scalar
/// global (8 bytes for a long, [`STR`] for a string), then for each array
/// the count of updates its full map refused.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// The variables.
    pub vars: Vec<GlobalVar>,
    /// Each array's name and the offset of its count of dropped updates.
    pub drops: Vec<(String, u32)>,
    /// The value's size.
    pub size: u32,
}

impl Globals {
    fn of(script: &Script, types: &Types) -> Globals {
        let mut offset = LOST_COUNTER + 8;
        let mut vars = Vec::new();
        let mut drops = Vec::new();
        for g in &script.globals {
            if types.array(&g.name).is_some() {
                drops.push((g.name.clone(), 0));
                continue;
            }
            let ty = types.global(&g.name);
            vars.push(GlobalVar {
                name: g.name.clone(),
                ty,
                offset,
                init: g.init.clone(),
            });
            offset += if ty == Ty::Str { STR } else { 8 };
        }
        for (_, at) in &mut drops {
            *at = offset;
            offset += 8;
        }
        Globals {
            vars,
            drops,
            size: offset,
        }
    }

    /// The offset of array `name`'s count of dropped updates.
    pub fn drop_offset(&self, name: &str) -> u32 {
        self.drops
            .iter()
            .find(|(n, _)| n == name)
            .map_or(LOST_COUNTER, |(_, at)| *at)
    }

    /// The initial value: zeros, with each initializer in place.
    pub fn initial_value(&self) -> Vec<u8> {
        let mut value = vec![0u8; self.size as usize];
        for v in &self.vars {
            let at = v.offset as usize;
            match &v.init {
                Some(Literal::Int(n)) => value[at..at + 8].copy_from_slice(&n.to_ne_bytes()),
                Some(Literal::Str(s)) => {
                    let bytes = &s.as_bytes()[..s.len().min(STR as usize - 1)];
                    value[at..at + bytes.len()].copy_from_slice(bytes);
                }
                None => {}
            }
        }
        value
    }

    fn offset(&self, name: &str) -> Option<u32> {
        self.vars.iter().find(|v| v.name == name).map(|v| v.offset)
    }
}

/// One generated program.
#[derive(Debug, Clone)]
pub struct BpfProgram {
    /// Index of its attachment.
    pub attachment: usize,
    /// The instructions.
    pub insns: Vec<Insn>,
    /// The source each instruction came from.
    pub spans: Vec<Span>,
    /// Instructions whose ld_imm64 must get a map's fd.
    pub relocations: Vec<(usize, MapRef)>,
    /// The source of the script's own loops (`while`, `for`) in this
    /// program, to tell a loop the verifier gave up on from a program
    /// too large for it.
    pub loops: Vec<Span>,
}

/// The whole generated code.
#[derive(Debug, Clone)]
pub struct Generated {
    /// One program per attachment, in the same order.
    pub programs: Vec<BpfProgram>,
    /// What each record id means.
    pub outputs: Vec<Output>,
    /// The globals' layout.
    pub globals: Globals,
    /// The per-CPU scratch value's size.
    pub scratch_size: u32,
    /// The read-only constants (NUL-terminated sprintf formats); empty
    /// when nothing needs them.
    pub rodata: Vec<u8>,
    /// The arrays and statistics, one map each.
    pub arrays: Vec<ArrayType>,
}

/// What code generation needs from the running session.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// What `target()` returns: the `-x` pid or the `-c` command's.
    pub target: i64,
    /// CLOCK_REALTIME minus the clock of bpf_ktime_get_ns, for
    /// `gettimeofday_*()`.
    pub realtime_offset_ns: i64,
    /// Offsets of `task_struct.real_parent` and `task_struct.tgid`, from
    /// BTF, for `ppid()`.
    pub task_offsets: Option<(u32, u32)>,
    /// One past the highest CPU id the kernel may have (nr_cpu_ids): the
    /// CPUs over which reads of statistics merge.
    pub cpus: u32,
    /// kscope's own pid as BPF sees it, whose syscalls the syscall probes
    /// leave untraced (0: trace every process).
    pub own_pid: i64,
    /// Offset of `task_struct.thread_info.status`, from BTF, for the
    /// test by which a syscall fan-in skips compat syscalls.
    pub compat_status: Option<u32>,
}

/// Generates a program for every attachment.
pub fn generate(
    file: &SourceFile,
    script: &Script,
    types: &Types,
    attachments: &[Attachment],
    options: &Options,
) -> Result<Generated> {
    let globals = Globals::of(script, types);
    let arrays = types.arrays(script);
    let mut outputs = Vec::new();
    let mut rodata = Vec::new();
    let mut programs = Vec::new();
    let mut scratch_size = 8;
    for (index, attachment) in attachments.iter().enumerate() {
        // Probes that walk arrays run interpreted, in kscope's process.
        if types.is_host(attachment.probe) {
            continue;
        }
        let mut g = Gen {
            file,
            script,
            types,
            attachment,
            options,
            globals: &globals,
            arrays: &arrays,
            outputs: &mut outputs,
            rodata: &mut rodata,
            insns: Vec::new(),
            spans: Vec::new(),
            relocations: Vec::new(),
            loops: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
            span: script.probes[attachment.probe].span,
            stack_used: 8,
            scratch_used: 0,
            scratch_max: 0,
            frames: Vec::new(),
            exit_label: Label(0),
        };
        g.exit_label = g.label();
        g.probe()?;
        scratch_size = scratch_size.max(g.scratch_max);
        programs.push(g.finish(index)?);
    }
    Ok(Generated {
        programs,
        outputs,
        globals,
        scratch_size: scratch_size.next_multiple_of(8),
        rodata,
        arrays,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

/// Where a variable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// A long on the stack, at r10 + offset.
    Stack(i16),
    /// A string in the scratch area.
    Scratch(u32),
    /// A global, either type.
    Global(u32),
}

/// A string's place: base register (r7 globals, r8 scratch) and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StrLoc {
    reg: u8,
    off: u32,
}

struct Frame {
    scope: Scope,
    vars: HashMap<String, Loc>,
    /// For inlined functions: where `return` puts the value and jumps.
    ret: Option<(Option<Loc>, Label)>,
    /// (break, continue) targets of the enclosing loops.
    loops: Vec<(Label, Label)>,
}

struct Gen<'a> {
    file: &'a SourceFile,
    script: &'a Script,
    types: &'a Types,
    attachment: &'a Attachment,
    options: &'a Options,
    globals: &'a Globals,
    arrays: &'a [ArrayType],
    outputs: &'a mut Vec<Output>,
    rodata: &'a mut Vec<u8>,
    insns: Vec<Insn>,
    spans: Vec<Span>,
    relocations: Vec<(usize, MapRef)>,
    loops: Vec<Span>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
    span: Span,
    /// Bytes of stack in use below r10.
    stack_used: i32,
    scratch_used: u32,
    scratch_max: u32,
    frames: Vec<Frame>,
    exit_label: Label,
}

type Result<T> = std::result::Result<T, Diagnostic>;

impl Gen<'_> {
    fn emit(&mut self, insn: Insn) {
        self.insns.push(insn);
        self.spans.push(self.span);
    }

    fn emit_wide(&mut self, pair: [Insn; 2]) {
        self.emit(pair[0]);
        self.emit(pair[1]);
    }

    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    /// Emits a jump (whose `off` is filled in later) to `label`.
    fn jump(&mut self, insn: Insn, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.emit(insn);
    }

    fn goto(&mut self, label: Label) {
        self.jump(Insn::ja(0), label);
    }

    /// With a condition's value in r0: the code of `then` runs when it is
    /// not 0, that of `otherwise` when it is.
    fn branch(
        &mut self,
        then: impl FnOnce(&mut Self) -> Result<()>,
        otherwise: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let other = self.label();
        let end = self.label();
        self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), other);
        then(self)?;
        self.goto(end);
        self.bind(other);
        otherwise(self)?;
        self.bind(end);
        Ok(())
    }

    fn load_map(&mut self, reg: u8, map: MapRef) {
        self.relocations.push((self.insns.len(), map));
        self.emit_wide(Insn::ld_map_fd(reg, 0));
    }

    fn mov_imm(&mut self, reg: u8, value: i64) {
        match i32::try_from(value) {
            Ok(v) => self.emit(Insn::mov64_imm(reg, v)),
            Err(_) => self.emit_wide(Insn::ld_imm64(reg, 0, value as u64)),
        }
    }

    /// `reg = base + offset` for a string's address.
    fn address(&mut self, reg: u8, loc: StrLoc) {
        self.emit(Insn::mov64_reg(reg, loc.reg));
        if loc.off != 0 {
            self.emit(Insn::alu64_imm(Alu::Add, reg, loc.off as i32));
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(span, message, None)
    }

    /// Resolves the jumps and drops the code no path reaches (what
    /// follows a `next`, `return`, `break` or `continue`), which the
    /// verifier refuses to load.
    fn finish(self, attachment: usize) -> Result<BpfProgram> {
        let n = self.insns.len();
        // Each jump's absolute target.
        let mut targets: Vec<Option<usize>> = vec![None; n];
        for (at, insn) in self.insns.iter().enumerate() {
            if is_jump(insn) {
                targets[at] = usize::try_from(at as i64 + 1 + i64::from(insn.off)).ok();
            }
        }
        for &(at, label) in &self.fixups {
            let Some(target) = self.labels[label.0] else {
                return Err(self.error(self.span, "internal error: a jump to a label never placed"));
            };
            targets[at] = Some(target);
        }
        let mut reachable = vec![false; n];
        let mut work = vec![0usize];
        while let Some(at) = work.pop() {
            if at >= n || reachable[at] {
                continue;
            }
            reachable[at] = true;
            let insn = &self.insns[at];
            if insn.code == 0x18 {
                // ld_imm64 takes two slots.
                if at + 1 < n {
                    reachable[at + 1] = true;
                }
                work.push(at + 2);
                continue;
            }
            if insn.code == 0x95 {
                continue;
            }
            if let Some(t) = targets[at] {
                work.push(t);
                if insn.code == 0x05 {
                    continue;
                }
            }
            work.push(at + 1);
        }
        let mut new_index = vec![0usize; n + 1];
        let mut kept = 0;
        for at in 0..n {
            new_index[at] = kept;
            if reachable[at] {
                kept += 1;
            }
        }
        new_index[n] = kept;
        let mut insns = Vec::with_capacity(kept);
        let mut spans = Vec::with_capacity(kept);
        for at in (0..n).filter(|&at| reachable[at]) {
            let mut insn = self.insns[at];
            if let Some(t) = targets[at] {
                let off = new_index[t] as i64 - new_index[at] as i64 - 1;
                insn.off = i16::try_from(off).map_err(|_| {
                    self.error(
                        self.spans[at],
                        "this handler is too large for one BPF program (a jump spans more than 32767 instructions); split it",
                    )
                })?;
            }
            insns.push(insn);
            spans.push(self.spans[at]);
        }
        if insns.len() > 1_000_000 {
            return Err(self.error(
                self.span,
                "this handler needs more than a million BPF instructions",
            ));
        }
        let relocations = self
            .relocations
            .iter()
            .filter(|(at, _)| reachable[*at])
            .map(|&(at, map)| (new_index[at], map))
            .collect();
        Ok(BpfProgram {
            attachment,
            insns,
            spans,
            relocations,
            loops: self.loops,
        })
    }
}

/// Whether `insn` is a jump with an offset (not a call or an exit).
fn is_jump(insn: &Insn) -> bool {
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    (class == 0x05 || class == 0x06) && op != 0x80 && op != 0x90
}
