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

use std::collections::HashMap;

use kscope_bpf::{Alu, Insn, Jmp, Size};

use crate::ast::{
    AssignOp, BinaryOp, Block, Expr, ExprKind, Literal, Script, Stmt, StmtKind, UnaryOp,
};
use crate::catalog::{FieldKind, TpField};
use crate::check::{Binding, Scope, Ty, Types};
use crate::diagnostic::Diagnostic;
use crate::points::{AttachKind, Attachment, ContextVar};
use crate::printf::{ArgKind, Format, concatenation};
use crate::source::{SourceFile, Span};

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
}

/// How one argument sits in an output record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgSlot {
    /// 8 bytes, a long.
    Int,
    /// [`STR`] bytes, a NUL-terminated string.
    Str,
    /// A syscall's `argstr`: each argument's 8 raw bytes, followed by
    /// [`STR`] bytes of the user string for `const char *` arguments.
    Argstr(Vec<TpField>),
}

impl ArgSlot {
    /// Its size in the record.
    pub fn size(&self) -> u32 {
        match self {
            ArgSlot::Int => 8,
            ArgSlot::Str => STR,
            ArgSlot::Argstr(fields) => fields
                .iter()
                .map(|f| if is_user_string(f) { 8 + STR } else { 8 })
                .sum(),
        }
    }
}

/// Whether `argstr` shows a syscall argument as a quoted user string.
pub fn is_user_string(field: &TpField) -> bool {
    field.kind == FieldKind::Int && field.c_type.replace(' ', "").starts_with("constchar*")
}

/// What a record in the ring buffer means.
#[derive(Debug, Clone)]
pub enum Output {
    /// `printf` (and `print`, `println`): the format and its arguments.
    Printf {
        /// The format.
        format: Format,
        /// The arguments' layout.
        args: Vec<ArgSlot>,
    },
    /// `exit()` was called.
    Exit,
    /// A runtime error ended the session.
    Error {
        /// What went wrong, with where.
        message: String,
    },
}

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
/// of lost records, then each
/// global (8 bytes for a long, [`STR`] for a string).
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// The variables.
    pub vars: Vec<GlobalVar>,
    /// The value's size.
    pub size: u32,
}

impl Globals {
    fn of(script: &Script, types: &Types) -> Globals {
        let mut offset = LOST_COUNTER + 8;
        let mut vars = Vec::new();
        for g in &script.globals {
            let ty = types.global(&g.name);
            vars.push(GlobalVar {
                name: g.name.clone(),
                ty,
                offset,
                init: g.init.clone(),
            });
            offset += if ty == Ty::Str { STR } else { 8 };
        }
        Globals { vars, size: offset }
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
    let mut outputs = Vec::new();
    let mut rodata = Vec::new();
    let mut programs = Vec::new();
    let mut scratch_size = 8;
    for (index, attachment) in attachments.iter().enumerate() {
        let mut g = Gen {
            file,
            script,
            types,
            attachment,
            options,
            globals: &globals,
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
    // ---- emission -------------------------------------------------------

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

    // ---- storage --------------------------------------------------------

    fn push_slot(&mut self) -> Result<i16> {
        self.stack_used += 8;
        if self.stack_used > STACK_LIMIT {
            return Err(self.error(
                self.span,
                "this handler needs more than the 512 bytes of BPF stack for its numbers; use fewer locals or simpler expressions",
            ));
        }
        Ok(-(self.stack_used as i16))
    }

    fn alloc_scratch(&mut self, bytes: u32) -> Result<u32> {
        let at = self.scratch_used;
        self.scratch_used += bytes.next_multiple_of(8);
        self.scratch_max = self.scratch_max.max(self.scratch_used);
        if self.scratch_used > 30_000 {
            return Err(self.error(
                self.span,
                "this handler needs more than 30 KB of string space; use fewer string temporaries",
            ));
        }
        Ok(at)
    }

    fn str_temp(&mut self) -> Result<StrLoc> {
        Ok(StrLoc {
            reg: 8,
            off: self.alloc_scratch(STR)?,
        })
    }

    /// Runs `f` and then frees the temporaries it took.
    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let (stack, scratch) = (self.stack_used, self.scratch_used);
        let out = f(self);
        self.stack_used = stack;
        self.scratch_used = scratch;
        out
    }

    fn frame(&self) -> &Frame {
        self.frames
            .last()
            .expect("a frame is pushed for every handler")
    }

    /// Creates the locals of `scope`, zeroed.
    fn push_frame(&mut self, scope: Scope, ret: Option<(Option<Loc>, Label)>) -> Result<()> {
        let mut vars = HashMap::new();
        for name in self.types.locals(scope).to_vec() {
            if matches!(scope, Scope::Probe(_)) && self.globals.offset(&name).is_some() {
                continue;
            }
            let loc = if self.types.local(scope, &name) == Ty::Str {
                let off = self.alloc_scratch(STR)?;
                self.emit(Insn::st(Size::B, 8, off as i16, 0));
                Loc::Scratch(off)
            } else {
                let slot = self.push_slot()?;
                self.emit(Insn::st(Size::DW, 10, slot, 0));
                Loc::Stack(slot)
            };
            vars.insert(name, loc);
        }
        self.frames.push(Frame {
            scope,
            vars,
            ret,
            loops: Vec::new(),
        });
        Ok(())
    }

    fn var_loc(&self, name: &str, span: Span) -> Result<(Loc, Ty)> {
        let frame = self.frame();
        match self.types.binding(frame.scope, name) {
            Some(Binding::Local(n)) => {
                let loc = frame.vars.get(&n).copied().ok_or_else(|| {
                    self.error(span, format!("internal error: local '{n}' has no place"))
                })?;
                Ok((loc, self.types.local(frame.scope, &n)))
            }
            Some(Binding::Global(n)) => {
                let off = self.globals.offset(&n).unwrap_or(0);
                Ok((Loc::Global(off), self.types.global(&n)))
            }
            _ => Err(self.error(span, format!("'{name}' is not a variable here"))),
        }
    }

    fn str_loc(loc: Loc) -> StrLoc {
        match loc {
            Loc::Global(off) => StrLoc { reg: 7, off },
            Loc::Scratch(off) => StrLoc { reg: 8, off },
            Loc::Stack(_) => StrLoc { reg: 8, off: 0 },
        }
    }

    fn load_int(&mut self, loc: Loc) {
        match loc {
            Loc::Stack(slot) => self.emit(Insn::ldx(Size::DW, 0, 10, slot)),
            Loc::Global(off) => self.emit(Insn::ldx(Size::DW, 0, 7, off as i16)),
            Loc::Scratch(off) => self.emit(Insn::ldx(Size::DW, 0, 8, off as i16)),
        }
    }

    fn store_int(&mut self, loc: Loc) {
        match loc {
            Loc::Stack(slot) => self.emit(Insn::stx(Size::DW, 10, slot, 0)),
            Loc::Global(off) => self.emit(Insn::stx(Size::DW, 7, off as i16, 0)),
            Loc::Scratch(off) => self.emit(Insn::stx(Size::DW, 8, off as i16, 0)),
        }
    }

    /// Copies a whole string slot, 8 bytes at a time.
    fn copy_str(&mut self, dst: StrLoc, src: StrLoc) {
        if dst == src {
            return;
        }
        for i in (0..STR).step_by(8) {
            self.emit(Insn::ldx(Size::DW, 1, src.reg, (src.off + i) as i16));
            self.emit(Insn::stx(Size::DW, dst.reg, (dst.off + i) as i16, 1));
        }
    }

    // ---- handler --------------------------------------------------------

    fn probe(&mut self) -> Result<()> {
        let probe = &self.script.probes[self.attachment.probe];
        self.span = probe.span;
        self.emit(Insn::mov64_reg(6, 1));
        self.emit(Insn::st(Size::W, 10, KEY_SLOT, 0));
        for (reg, map) in [(7, MapRef::Globals), (8, MapRef::Scratch)] {
            self.load_map(1, map);
            self.emit(Insn::mov64_reg(2, 10));
            self.emit(Insn::alu64_imm(Alu::Add, 2, i32::from(KEY_SLOT)));
            self.emit(Insn::call(MAP_LOOKUP_ELEM));
            let exit = self.exit_label;
            self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), exit);
            self.emit(Insn::mov64_reg(reg, 0));
        }
        if !matches!(self.attachment.kind, AttachKind::End | AttachKind::Error) {
            // After exit() only the end probes run.
            self.emit(Insn::ldx(Size::DW, 1, 7, EXIT_FLAG as i16));
            let exit = self.exit_label;
            self.jump(Insn::jmp_imm(Jmp::Ne, 1, 0, 0), exit);
        }
        self.push_frame(Scope::Probe(self.attachment.probe), None)?;
        if let Some(cond) = &probe.condition {
            self.span = cond.span;
            self.scoped(|g| g.int(cond))?;
            let exit = self.exit_label;
            self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), exit);
        }
        self.block(&probe.body)?;
        self.span = probe.span;
        let exit = self.exit_label;
        self.bind(exit);
        self.emit(Insn::mov64_imm(0, 0));
        self.emit(Insn::exit());
        Ok(())
    }

    fn block(&mut self, block: &Block) -> Result<()> {
        for stmt in &block.stmts {
            self.stmt(stmt)?;
        }
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<()> {
        self.span = stmt.span;
        match &stmt.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Empty => Ok(()),
            StmtKind::Expr(e) => self.scoped(|g| g.effect(e)),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let otherwise_label = self.label();
                let end = self.label();
                self.scoped(|g| g.int(cond))?;
                self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), otherwise_label);
                self.stmt(then)?;
                self.goto(end);
                self.bind(otherwise_label);
                if let Some(o) = otherwise {
                    self.stmt(o)?;
                }
                self.bind(end);
                Ok(())
            }
            StmtKind::While { cond, body } => {
                self.loops.push(stmt.span);
                self.looping(None, Some(cond), None, body)
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                self.loops.push(stmt.span);
                self.looping(init.as_ref(), cond.as_ref(), step.as_ref(), body)
            }
            StmtKind::Next => {
                let exit = self.exit_label;
                self.goto(exit);
                Ok(())
            }
            StmtKind::Break | StmtKind::Continue => {
                let Some(&(brk, cont)) = self.frame().loops.last() else {
                    return Err(
                        self.error(stmt.span, "'break' and 'continue' belong inside a loop")
                    );
                };
                self.goto(if stmt.kind == StmtKind::Break {
                    brk
                } else {
                    cont
                });
                Ok(())
            }
            StmtKind::Return(value) => {
                let Some((slot, label)) = self.frame().ret else {
                    return Err(self.error(stmt.span, "'return' outside a function"));
                };
                if let (Some(v), Some(slot)) = (value, slot) {
                    self.scoped(|g| match slot {
                        Loc::Stack(_) => {
                            g.int(v)?;
                            g.store_int(slot);
                            Ok(())
                        }
                        _ => {
                            let s = g.string(v)?;
                            g.copy_str(Self::str_loc(slot), s);
                            Ok(())
                        }
                    })?;
                }
                self.goto(label);
                Ok(())
            }
            StmtKind::Delete(name) => {
                let (loc, ty) = self.var_loc(name, stmt.span)?;
                if ty == Ty::Str {
                    let s = Self::str_loc(loc);
                    self.emit(Insn::st(Size::B, s.reg, s.off as i16, 0));
                } else {
                    self.emit(Insn::mov64_imm(0, 0));
                    self.store_int(loc);
                }
                Ok(())
            }
        }
    }

    fn looping(
        &mut self,
        init: Option<&Expr>,
        cond: Option<&Expr>,
        step: Option<&Expr>,
        body: &Stmt,
    ) -> Result<()> {
        if let Some(e) = init {
            self.scoped(|g| g.effect(e))?;
        }
        let top = self.label();
        let cont = self.label();
        let brk = self.label();
        self.bind(top);
        if let Some(c) = cond {
            self.span = c.span;
            self.scoped(|g| g.int(c))?;
            self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), brk);
        }
        self.frames
            .last_mut()
            .expect("a frame is pushed for every handler")
            .loops
            .push((brk, cont));
        self.stmt(body)?;
        self.frames
            .last_mut()
            .expect("a frame is pushed for every handler")
            .loops
            .pop();
        self.bind(cont);
        if let Some(e) = step {
            self.scoped(|g| g.effect(e))?;
        }
        self.goto(top);
        self.bind(brk);
        Ok(())
    }

    /// The type of `e` as the checker decided it.
    fn ty(&self, e: &Expr) -> Ty {
        let scope = self.frame().scope;
        match &e.kind {
            ExprKind::Literal(Literal::Int(_)) => Ty::Long,
            ExprKind::Literal(Literal::Str(_)) => Ty::Str,
            ExprKind::Var(name) => match self.types.binding(scope, name) {
                Some(Binding::Local(n)) => self.types.local(scope, &n),
                Some(Binding::Global(n)) => self.types.global(&n),
                Some(Binding::Context(n)) => match self.attachment.context.var(&n) {
                    Some(ContextVar::Retval(_) | ContextVar::Field(_)) => Ty::Long,
                    _ => Ty::Str,
                },
                None => Ty::Long,
            },
            ExprKind::Target { name, .. } => match self.attachment.context.target(name) {
                Some(f) if f.kind != FieldKind::Int => Ty::Str,
                _ => Ty::Long,
            },
            ExprKind::Call { name, .. } => match name.as_str() {
                "printf" | "print" | "println" | "exit" => Ty::Void,
                "sprintf" | "execname" | "pp" | "probefunc" | "user_string" | "user_string_n"
                | "kernel_string" | "substr" => Ty::Str,
                other => match self.script.functions.iter().position(|f| f.name == other) {
                    Some(i) => self.types.returns(i),
                    None => Ty::Long,
                },
            },
            ExprKind::Unary { .. } => Ty::Long,
            ExprKind::Binary { op, .. } => {
                if *op == BinaryOp::Concat {
                    Ty::Str
                } else {
                    Ty::Long
                }
            }
            ExprKind::Ternary { then, .. } => self.ty(then),
            ExprKind::Assign { op, target, .. } => match op {
                AssignOp::Compound(BinaryOp::Concat) => Ty::Str,
                AssignOp::Compound(_) => Ty::Long,
                AssignOp::Assign => self.ty(target),
            },
        }
    }

    /// Evaluates `e` for its side effects.
    fn effect(&mut self, e: &Expr) -> Result<()> {
        match self.ty(e) {
            Ty::Str => self.string(e).map(drop),
            Ty::Long => self.int(e),
            Ty::Void => {
                let ExprKind::Call { name, args } = &e.kind else {
                    return Err(self.error(
                        e.span,
                        "internal error: a value-less expression that is not a call",
                    ));
                };
                self.call_void(e, name, args)
            }
        }
    }

    // ---- integers -------------------------------------------------------

    fn int(&mut self, e: &Expr) -> Result<()> {
        let saved = self.span;
        self.span = e.span;
        let out = self.int_inner(e);
        self.span = saved;
        out
    }

    fn int_inner(&mut self, e: &Expr) -> Result<()> {
        match &e.kind {
            ExprKind::Literal(Literal::Int(v)) => {
                self.mov_imm(0, *v);
                Ok(())
            }
            ExprKind::Var(name) => {
                let scope = self.frame().scope;
                if let Some(Binding::Context(n)) = self.types.binding(scope, name) {
                    return match self.attachment.context.var(&n).cloned() {
                        Some(ContextVar::Retval(field) | ContextVar::Field(field)) => {
                            self.load_field_int(&field)
                        }
                        _ => Err(self.error(e.span, format!("'{name}' is not a number"))),
                    };
                }
                let (loc, _) = self.var_loc(name, e.span)?;
                self.load_int(loc);
                Ok(())
            }
            ExprKind::Target { name, .. } => {
                let field = self.target_field(name, e.span)?;
                self.load_field_int(&field)
            }
            ExprKind::Call { name, args } => self.call_int(e, name, args),
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Plus => self.int(operand),
                UnaryOp::Neg => {
                    self.int(operand)?;
                    self.emit(Insn::alu64_imm(Alu::Neg, 0, 0));
                    Ok(())
                }
                UnaryOp::BitNot => {
                    self.int(operand)?;
                    self.emit(Insn::alu64_imm(Alu::Xor, 0, -1));
                    Ok(())
                }
                UnaryOp::Not => {
                    self.int(operand)?;
                    self.truth(Jmp::Eq);
                    Ok(())
                }
                UnaryOp::PreInc | UnaryOp::PreDec | UnaryOp::PostInc | UnaryOp::PostDec => {
                    let delta = if matches!(op, UnaryOp::PreInc | UnaryOp::PostInc) {
                        1
                    } else {
                        -1
                    };
                    let post = matches!(op, UnaryOp::PostInc | UnaryOp::PostDec);
                    let loc = self.lvalue(operand)?;
                    self.mov_imm(1, delta);
                    self.add_to(loc);
                    if post {
                        self.emit(Insn::alu64_imm(Alu::Sub, 0, delta as i32));
                    }
                    Ok(())
                }
            },
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let other = self.label();
                let end = self.label();
                self.int(cond)?;
                self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), other);
                self.int(then)?;
                self.goto(end);
                self.bind(other);
                self.int(otherwise)?;
                self.bind(end);
                Ok(())
            }
            ExprKind::Assign { op, target, value } => {
                let loc = self.lvalue(target)?;
                match op {
                    AssignOp::Assign => {
                        self.int(value)?;
                        self.store_int(loc);
                    }
                    AssignOp::Compound(BinaryOp::Add) => {
                        self.int(value)?;
                        self.emit(Insn::mov64_reg(1, 0));
                        self.add_to(loc);
                    }
                    AssignOp::Compound(BinaryOp::Sub) => {
                        self.int(value)?;
                        self.emit(Insn::mov64_reg(1, 0));
                        self.emit(Insn::alu64_imm(Alu::Neg, 1, 0));
                        self.add_to(loc);
                    }
                    AssignOp::Compound(op) => {
                        self.int(value)?;
                        self.emit(Insn::mov64_reg(1, 0));
                        self.load_int(loc);
                        self.arith(*op, e.span)?;
                        self.store_int(loc);
                    }
                }
                Ok(())
            }
            ExprKind::Literal(Literal::Str(_)) => {
                Err(self.error(e.span, "expected a number, found a string"))
            }
        }
    }

    /// `loc += r1`, leaving the new value in r0. Globals are updated with
    /// an atomic add, as probes on several CPUs may count at once.
    fn add_to(&mut self, loc: Loc) {
        match loc {
            Loc::Global(off) => {
                self.emit(Insn::atomic_add64(7, off as i16, 1));
                self.emit(Insn::ldx(Size::DW, 0, 7, off as i16));
            }
            _ => {
                self.load_int(loc);
                self.emit(Insn::alu64_reg(Alu::Add, 0, 1));
                self.store_int(loc);
            }
        }
    }

    fn lvalue(&mut self, target: &Expr) -> Result<Loc> {
        match &target.kind {
            ExprKind::Var(name) => Ok(self.var_loc(name, target.span)?.0),
            _ => Err(self.error(target.span, "only a variable can be assigned to")),
        }
    }

    /// `r0 = (r0 OP 0) ? 1 : 0`.
    fn truth(&mut self, op: Jmp) {
        self.emit(Insn::mov64_reg(1, 0));
        self.emit(Insn::mov64_imm(0, 1));
        self.emit(Insn::jmp_imm(op, 1, 0, 1));
        self.emit(Insn::mov64_imm(0, 0));
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr) -> Result<()> {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let short = self.label();
                let end = self.label();
                self.int(lhs)?;
                let jump = if op == BinaryOp::And {
                    Jmp::Eq
                } else {
                    Jmp::Ne
                };
                self.jump(Insn::jmp_imm(jump, 0, 0, 0), short);
                self.int(rhs)?;
                self.truth(Jmp::Ne);
                self.goto(end);
                self.bind(short);
                self.mov_imm(0, i64::from(op == BinaryOp::Or));
                self.bind(end);
                Ok(())
            }
            op if op.is_comparison() && self.ty(lhs) == Ty::Str => {
                let a = self.string(lhs)?;
                let b = self.string(rhs)?;
                self.strcmp(a, b);
                self.truth(signed_jump(op));
                Ok(())
            }
            BinaryOp::Concat => Err(self.error(
                lhs.span.to(rhs.span),
                "'.' joins strings, and gives a string",
            )),
            _ => {
                self.int(lhs)?;
                let slot = self.push_slot()?;
                self.emit(Insn::stx(Size::DW, 10, slot, 0));
                self.int(rhs)?;
                self.emit(Insn::mov64_reg(1, 0));
                self.emit(Insn::ldx(Size::DW, 0, 10, slot));
                self.stack_used -= 8;
                self.arith(op, lhs.span.to(rhs.span))
            }
        }
    }

    /// `r0 = r0 OP r1`.
    fn arith(&mut self, op: BinaryOp, span: Span) -> Result<()> {
        let alu = |g: &mut Self, a: Alu| g.emit(Insn::alu64_reg(a, 0, 1));
        match op {
            BinaryOp::Add => alu(self, Alu::Add),
            BinaryOp::Sub => alu(self, Alu::Sub),
            BinaryOp::Mul => alu(self, Alu::Mul),
            BinaryOp::Shl => alu(self, Alu::Lsh),
            BinaryOp::Shr => alu(self, Alu::Arsh),
            BinaryOp::BitAnd => alu(self, Alu::And),
            BinaryOp::BitOr => alu(self, Alu::Or),
            BinaryOp::BitXor => alu(self, Alu::Xor),
            BinaryOp::Div | BinaryOp::Rem => {
                // Signed, as C and SystemTap: divide the magnitudes, then
                // give the quotient the sign of both and the remainder the
                // sign of the dividend. (BPF's own division is unsigned;
                // its signed form needs kernel 6.6.)
                let ok = self.label();
                self.jump(Insn::jmp_imm(Jmp::Ne, 1, 0, 0), ok);
                self.runtime_error(span, "division by 0")?;
                self.bind(ok);
                self.emit(Insn::mov64_imm(2, 0));
                self.emit(Insn::jmp_imm(Jmp::Sge, 0, 0, 2));
                self.emit(Insn::alu64_imm(Alu::Neg, 0, 0));
                self.emit(Insn::alu64_imm(Alu::Xor, 2, 1));
                let rem = op == BinaryOp::Rem;
                self.emit(Insn::jmp_imm(Jmp::Sge, 1, 0, if rem { 1 } else { 2 }));
                self.emit(Insn::alu64_imm(Alu::Neg, 1, 0));
                if !rem {
                    self.emit(Insn::alu64_imm(Alu::Xor, 2, 1));
                }
                self.emit(Insn::alu64_reg(if rem { Alu::Mod } else { Alu::Div }, 0, 1));
                self.emit(Insn::jmp_imm(Jmp::Eq, 2, 0, 1));
                self.emit(Insn::alu64_imm(Alu::Neg, 0, 0));
            }
            op if op.is_comparison() => {
                self.emit(Insn::mov64_reg(2, 0));
                self.emit(Insn::mov64_imm(0, 1));
                self.emit(Insn::jmp_reg(signed_jump(op), 2, 1, 1));
                self.emit(Insn::mov64_imm(0, 0));
            }
            _ => {
                return Err(self.error(span, "internal error: not an arithmetic operator"));
            }
        }
        Ok(())
    }

    /// `r0 = a <=> b` over the bytes up to the first NUL: the difference
    /// of the first bytes that differ, or 0. Unrolled, so the verifier
    /// needs no loop bound.
    fn strcmp(&mut self, a: StrLoc, b: StrLoc) {
        let differ = self.label();
        let equal = self.label();
        let end = self.label();
        for i in 0..STR {
            self.emit(Insn::ldx(Size::B, 1, a.reg, (a.off + i) as i16));
            self.emit(Insn::ldx(Size::B, 2, b.reg, (b.off + i) as i16));
            self.jump(Insn::jmp_reg(Jmp::Ne, 1, 2, 0), differ);
            self.jump(Insn::jmp_imm(Jmp::Eq, 1, 0, 0), equal);
        }
        self.goto(equal);
        self.bind(differ);
        self.emit(Insn::mov64_reg(0, 1));
        self.emit(Insn::alu64_reg(Alu::Sub, 0, 2));
        self.goto(end);
        self.bind(equal);
        self.emit(Insn::mov64_imm(0, 0));
        self.bind(end);
    }

    fn target_field(&self, name: &str, span: Span) -> Result<TpField> {
        self.attachment
            .context
            .target(name)
            .cloned()
            .ok_or_else(|| {
                self.error(
                    span,
                    format!("'${name}' does not exist at {}", self.attachment.name),
                )
            })
    }

    fn load_field_int(&mut self, field: &TpField) -> Result<()> {
        let size = Size::of_bytes(field.size).ok_or_else(|| {
            self.error(
                self.span,
                format!("'${}' is {} bytes, not a number", field.name, field.size),
            )
        })?;
        self.emit(Insn::ldx(size, 0, 6, field.offset as i16));
        let width = signed_width(field);
        if width < 8 {
            let shift = 64 - 8 * width as i32;
            self.emit(Insn::alu64_imm(Alu::Lsh, 0, shift));
            self.emit(Insn::alu64_imm(Alu::Arsh, 0, shift));
        }
        Ok(())
    }

    fn call_int(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Result<()> {
        match name {
            "pid" | "tid" => {
                self.emit(Insn::call(GET_CURRENT_PID_TGID));
                self.low_or_high(name == "pid");
            }
            "uid" | "gid" => {
                self.emit(Insn::call(GET_CURRENT_UID_GID));
                self.low_or_high(name == "gid");
            }
            "cpu" => self.emit(Insn::call(GET_SMP_PROCESSOR_ID)),
            "target" => self.mov_imm(0, self.options.target),
            "local_clock_ns" => self.emit(Insn::call(KTIME_GET_NS)),
            "gettimeofday_ns" | "gettimeofday_us" | "gettimeofday_ms" | "gettimeofday_s" => {
                self.emit(Insn::call(KTIME_GET_NS));
                self.emit_wide(Insn::ld_imm64(1, 0, self.options.realtime_offset_ns as u64));
                self.emit(Insn::alu64_reg(Alu::Add, 0, 1));
                let div = match name {
                    "gettimeofday_us" => 1_000,
                    "gettimeofday_ms" => 1_000_000,
                    "gettimeofday_s" => 1_000_000_000,
                    _ => 1,
                };
                if div > 1 {
                    self.emit(Insn::alu64_imm(Alu::Div, 0, div));
                }
            }
            "ppid" => {
                let Some((real_parent, tgid)) = self.options.task_offsets else {
                    return Err(self.error(e.span, "ppid() needs task_struct's layout from the kernel's BTF (/sys/kernel/btf/vmlinux), which is missing"));
                };
                let slot = self.push_slot()?;
                self.emit(Insn::call(GET_CURRENT_TASK));
                self.emit(Insn::mov64_reg(3, 0));
                self.emit(Insn::alu64_imm(Alu::Add, 3, real_parent as i32));
                self.read_kernel_into(slot, 8);
                self.emit(Insn::ldx(Size::DW, 3, 10, slot));
                self.emit(Insn::alu64_imm(Alu::Add, 3, tgid as i32));
                self.emit(Insn::st(Size::DW, 10, slot, 0));
                self.read_kernel_into(slot, 4);
                self.emit(Insn::ldx(Size::W, 0, 10, slot));
                self.stack_used -= 8;
            }
            "strlen" => {
                let s = self.string(&args[0])?;
                self.string_length(s)?;
            }
            "isinstr" => {
                let hay = self.string(&args[0])?;
                let needle = self.string(&args[1])?;
                self.isinstr(hay, needle)?;
            }
            _ => match self.script.functions.iter().position(|f| f.name == name) {
                Some(index) => {
                    let slot = self.inline(index, args, e.span)?;
                    match slot {
                        Some(loc @ Loc::Stack(_)) => self.load_int(loc),
                        _ => return Err(self.error(e.span, format!("{name}() returns no number"))),
                    }
                }
                None => return Err(self.error(e.span, format!("{name}() does not give a number"))),
            },
        }
        Ok(())
    }

    /// r0 = the high (`high`) or low 32 bits of r0.
    fn low_or_high(&mut self, high: bool) {
        if high {
            self.emit(Insn::alu64_imm(Alu::Rsh, 0, 32));
        } else {
            self.emit(Insn::alu64_imm(Alu::Lsh, 0, 32));
            self.emit(Insn::alu64_imm(Alu::Rsh, 0, 32));
        }
    }

    /// bpf_probe_read_kernel(r10 + slot, size, r3).
    fn read_kernel_into(&mut self, slot: i16, size: i32) {
        self.emit(Insn::mov64_reg(1, 10));
        self.emit(Insn::alu64_imm(Alu::Add, 1, i32::from(slot)));
        self.emit(Insn::mov64_imm(2, size));
        self.emit(Insn::call(PROBE_READ_KERNEL));
    }

    /// r0 = the length of the string at `s`, measured by copying it
    /// (bpf_probe_read_kernel_str returns the bytes copied with the NUL).
    fn string_length(&mut self, s: StrLoc) -> Result<()> {
        let junk = self.str_temp()?;
        self.address(1, junk);
        self.emit(Insn::mov64_imm(2, STR as i32));
        self.address(3, s);
        self.emit(Insn::call(PROBE_READ_KERNEL_STR));
        self.emit(Insn::alu64_imm(Alu::Sub, 0, 1));
        self.emit(Insn::jmp_imm(Jmp::Sge, 0, 0, 1));
        self.emit(Insn::mov64_imm(0, 0));
        Ok(())
    }

    /// r0 = 1 if `needle` occurs in `hay`. A loop over the start position
    /// (kept on the stack, where the verifier sees it count); at each
    /// position the string is compared eight bytes at a time without a
    /// branch (XOR, masked to the needle's length, ORed together), so that
    /// the verifier follows one short path per position, not one per byte:
    /// about 15,000 instructions per call, where the verifier gives up
    /// after 1,000,000.
    fn isinstr(&mut self, hay: StrLoc, needle: StrLoc) -> Result<()> {
        const WORDS: u32 = STR / 8;
        // The answer is a number: the string space taken here is free
        // again once it is known.
        let scratch = self.scratch_used;
        // The haystack is copied into a slot twice as long, so that reads
        // at start + j stay inside the scratch value for every start.
        let wide = self.alloc_scratch(2 * STR)?;
        let mask = self.alloc_scratch(STR)?;
        self.copy_str(StrLoc { reg: 8, off: wide }, hay);
        self.string_length(needle)?;
        let counter = self.push_slot()?;
        self.emit(Insn::st(Size::DW, 10, counter, 0));
        let top = self.label();
        let found = self.label();
        let not_found = self.label();
        let end = self.label();
        // Every string holds the empty string.
        self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), found);
        self.needle_mask(mask);
        self.bind(top);
        self.emit(Insn::ldx(Size::DW, 3, 10, counter));
        self.jump(Insn::jmp_imm(Jmp::Ge, 3, (STR - 1) as i32, 0), not_found);
        self.emit(Insn::mov64_reg(4, 8));
        self.emit(Insn::alu64_imm(Alu::Add, 4, wide as i32));
        self.emit(Insn::alu64_reg(Alu::Add, 4, 3));
        self.emit(Insn::ldx(Size::B, 1, 4, 0));
        self.jump(Insn::jmp_imm(Jmp::Eq, 1, 0, 0), not_found);
        self.emit(Insn::mov64_imm(5, 0));
        for k in 0..WORDS {
            let at = (8 * k) as i16;
            self.emit(Insn::ldx(Size::DW, 1, needle.reg, needle.off as i16 + at));
            self.emit(Insn::ldx(Size::DW, 2, 4, at));
            self.emit(Insn::alu64_reg(Alu::Xor, 1, 2));
            self.emit(Insn::ldx(Size::DW, 2, 8, mask as i16 + at));
            self.emit(Insn::alu64_reg(Alu::And, 1, 2));
            self.emit(Insn::alu64_reg(Alu::Or, 5, 1));
        }
        self.jump(Insn::jmp_imm(Jmp::Eq, 5, 0, 0), found);
        self.emit(Insn::ldx(Size::DW, 3, 10, counter));
        self.emit(Insn::alu64_imm(Alu::Add, 3, 1));
        self.emit(Insn::stx(Size::DW, 10, counter, 3));
        self.goto(top);
        self.bind(found);
        self.emit(Insn::mov64_imm(0, 1));
        self.goto(end);
        self.bind(not_found);
        self.emit(Insn::mov64_imm(0, 0));
        self.bind(end);
        self.stack_used -= 8;
        self.scratch_used = scratch;
        Ok(())
    }

    /// Writes at scratch offset `mask` STR bytes that are 0xff below the
    /// needle's length (r0, 1 to STR - 1) and 0 from it on, one 64-bit
    /// word at a time and without a branch. With r = len - 8k, word k is
    /// all ones when r >= 8, zero when r <= 0, and its low r bytes
    /// otherwise (little-endian, as BPF's loads are on x86-64).
    fn needle_mask(&mut self, mask: u32) {
        for k in 0..STR / 8 {
            let r = 8 * k as i32;
            // r1 = r; r2 = -1 when r >= 8; r3 = -1 when r <= 0.
            self.emit(Insn::mov64_reg(1, 0));
            self.emit(Insn::alu64_imm(Alu::Sub, 1, r));
            self.emit(Insn::mov64_reg(2, 1));
            self.emit(Insn::alu64_imm(Alu::Sub, 2, 8));
            self.emit(Insn::alu64_imm(Alu::Arsh, 2, 63));
            self.emit(Insn::alu64_imm(Alu::Xor, 2, -1));
            self.emit(Insn::mov64_reg(3, 1));
            self.emit(Insn::alu64_imm(Alu::Sub, 3, 1));
            self.emit(Insn::alu64_imm(Alu::Arsh, 3, 63));
            // r4 = (1 << 8 * (r & 7)) - 1: the low r bytes for r in 1..8.
            self.emit(Insn::alu64_imm(Alu::And, 1, 7));
            self.emit(Insn::alu64_imm(Alu::Lsh, 1, 3));
            self.emit(Insn::mov64_imm(4, 1));
            self.emit(Insn::alu64_reg(Alu::Lsh, 4, 1));
            self.emit(Insn::alu64_imm(Alu::Sub, 4, 1));
            // word = (r4 & !(r2 | r3)) | r2
            self.emit(Insn::alu64_reg(Alu::Or, 3, 2));
            self.emit(Insn::alu64_imm(Alu::Xor, 3, -1));
            self.emit(Insn::alu64_reg(Alu::And, 4, 3));
            self.emit(Insn::alu64_reg(Alu::Or, 4, 2));
            self.emit(Insn::stx(Size::DW, 8, (mask + 8 * k) as i16, 4));
        }
    }

    /// Inlines function `index` with `args`; returns where its value is.
    fn inline(&mut self, index: usize, args: &[Expr], span: Span) -> Result<Option<Loc>> {
        let function = &self.script.functions[index];
        if self.frames.len() > 32 {
            return Err(self.error(span, "functions nest more than 32 deep"));
        }
        let scope = Scope::Function(index);
        // Evaluate the arguments in the caller's frame.
        let mut values = Vec::new();
        for (arg, param) in args.iter().zip(&function.params) {
            if self.types.local(scope, &param.name) == Ty::Str {
                let s = self.string(arg)?;
                let copy = self.str_temp()?;
                self.copy_str(copy, s);
                values.push(Loc::Scratch(copy.off));
            } else {
                self.int(arg)?;
                let slot = self.push_slot()?;
                self.emit(Insn::stx(Size::DW, 10, slot, 0));
                values.push(Loc::Stack(slot));
            }
        }
        let ret = match self.types.returns(index) {
            Ty::Long => Some(Loc::Stack(self.push_slot()?)),
            Ty::Str => Some(Loc::Scratch(self.alloc_scratch(STR)?)),
            Ty::Void => None,
        };
        if let Some(Loc::Stack(slot)) = ret {
            self.emit(Insn::st(Size::DW, 10, slot, 0));
        }
        if let Some(Loc::Scratch(off)) = ret {
            self.emit(Insn::st(Size::B, 8, off as i16, 0));
        }
        let end = self.label();
        self.push_frame(scope, Some((ret, end)))?;
        for (param, value) in function.params.iter().zip(values) {
            let loc = self.frame().vars.get(&param.name).copied();
            match (loc, value) {
                (Some(dst @ Loc::Stack(_)), src) => {
                    self.load_int(src);
                    self.store_int(dst);
                }
                (Some(dst), src) => self.copy_str(Self::str_loc(dst), Self::str_loc(src)),
                (None, _) => {}
            }
        }
        let saved = self.span;
        self.block(&function.body)?;
        self.span = saved;
        self.bind(end);
        self.frames.pop();
        Ok(ret)
    }

    // ---- strings --------------------------------------------------------

    fn string(&mut self, e: &Expr) -> Result<StrLoc> {
        let saved = self.span;
        self.span = e.span;
        let out = self.string_inner(e);
        self.span = saved;
        out
    }

    fn literal(&mut self, text: &str, span: Span) -> Result<StrLoc> {
        if text.len() >= STR as usize {
            return Err(self.error(
                span,
                format!(
                    "this string is {} bytes; strings hold at most {}",
                    text.len(),
                    STR - 1
                ),
            ));
        }
        let t = self.str_temp()?;
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        while !bytes.len().is_multiple_of(4) {
            bytes.push(0);
        }
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let word = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.emit(Insn::st(Size::W, 8, (t.off + 4 * i as u32) as i16, word));
        }
        Ok(t)
    }

    fn string_inner(&mut self, e: &Expr) -> Result<StrLoc> {
        match &e.kind {
            ExprKind::Literal(Literal::Str(s)) => self.literal(s, e.span),
            ExprKind::Var(name) => {
                let scope = self.frame().scope;
                if let Some(Binding::Context(n)) = self.types.binding(scope, name) {
                    return match self.attachment.context.var(&n).cloned() {
                        Some(ContextVar::Name(s)) => self.literal(&s, e.span),
                        Some(ContextVar::Argstr(_)) => Err(self.error(
                            e.span,
                            "'argstr' is formatted in user space, so it can only be printed (printf, print, println)",
                        )),
                        _ => Err(self.error(e.span, format!("'{name}' is not a string"))),
                    };
                }
                let (loc, _) = self.var_loc(name, e.span)?;
                Ok(Self::str_loc(loc))
            }
            ExprKind::Target { name, .. } => {
                let field = self.target_field(name, e.span)?;
                self.field_string(&field)
            }
            ExprKind::Call { name, args } => self.call_string(e, name, args),
            ExprKind::Binary {
                op: BinaryOp::Concat,
                lhs,
                rhs,
            } => {
                let a = self.string(lhs)?;
                let b = self.string(rhs)?;
                self.concat(a, b)
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let t = self.str_temp()?;
                let other = self.label();
                let end = self.label();
                self.int(cond)?;
                self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), other);
                let a = self.string(then)?;
                self.copy_str(t, a);
                self.goto(end);
                self.bind(other);
                let b = self.string(otherwise)?;
                self.copy_str(t, b);
                self.bind(end);
                Ok(t)
            }
            ExprKind::Assign { op, target, value } => {
                let loc = Self::str_loc(self.lvalue(target)?);
                let v = match op {
                    AssignOp::Assign => self.string(value)?,
                    _ => {
                        let b = self.string(value)?;
                        self.concat(loc, b)?
                    }
                };
                self.copy_str(loc, v);
                Ok(loc)
            }
            _ => Err(self.error(e.span, "expected a string here")),
        }
    }

    /// A new string: `a` followed by `b`, cut to fit.
    fn concat(&mut self, a: StrLoc, b: StrLoc) -> Result<StrLoc> {
        // Twice the size, so that the second copy's destination range is
        // inside the value for every length of `a` the verifier considers.
        let off = self.alloc_scratch(2 * STR)?;
        let t = StrLoc { reg: 8, off };
        self.address(1, t);
        self.emit(Insn::mov64_imm(2, STR as i32));
        self.address(3, a);
        self.emit(Insn::call(PROBE_READ_KERNEL_STR));
        // r0 = bytes copied with the NUL; the second copy starts on it.
        self.emit(Insn::alu64_imm(Alu::Sub, 0, 1));
        self.emit(Insn::jmp_imm(Jmp::Sge, 0, 0, 1));
        self.emit(Insn::mov64_imm(0, 0));
        self.emit(Insn::jmp_imm(Jmp::Sle, 0, (STR - 1) as i32, 1));
        self.emit(Insn::mov64_imm(0, (STR - 1) as i32));
        self.address(1, t);
        self.emit(Insn::alu64_reg(Alu::Add, 1, 0));
        self.emit(Insn::mov64_imm(2, STR as i32));
        self.emit(Insn::alu64_reg(Alu::Sub, 2, 0));
        self.address(3, b);
        self.emit(Insn::call(PROBE_READ_KERNEL_STR));
        Ok(t)
    }

    /// A tracepoint field that holds a string, copied to a temporary.
    fn field_string(&mut self, field: &TpField) -> Result<StrLoc> {
        let t = self.str_temp()?;
        match field.kind {
            FieldKind::CharArray => {
                let n = field.size.min(STR - 1);
                for i in 0..n {
                    self.emit(Insn::ldx(Size::B, 1, 6, (field.offset + i) as i16));
                    self.emit(Insn::stx(Size::B, 8, (t.off + i) as i16, 1));
                }
                self.emit(Insn::st(Size::B, 8, (t.off + n) as i16, 0));
            }
            FieldKind::DataLocString | FieldKind::RelLocString => {
                // The u32 at the field: low 16 bits the data's offset.
                self.emit(Insn::ldx(Size::W, 3, 6, field.offset as i16));
                self.emit(Insn::alu64_imm(Alu::And, 3, 0xffff));
                if field.kind == FieldKind::RelLocString {
                    self.emit(Insn::alu64_imm(Alu::Add, 3, (field.offset + 4) as i32));
                }
                self.emit(Insn::alu64_reg(Alu::Add, 3, 6));
                self.address(1, t);
                self.emit(Insn::mov64_imm(2, STR as i32));
                self.emit(Insn::call(PROBE_READ_KERNEL_STR));
                self.empty_on_error(t);
            }
            _ => return Err(self.error(self.span, format!("'${}' is not a string", field.name))),
        }
        Ok(t)
    }

    /// After a string read into `t`: an empty string if it failed.
    fn empty_on_error(&mut self, t: StrLoc) {
        self.emit(Insn::jmp_imm(Jmp::Sgt, 0, 0, 1));
        self.emit(Insn::st(Size::B, t.reg, t.off as i16, 0));
    }

    fn call_string(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Result<StrLoc> {
        match name {
            "execname" => {
                let t = self.str_temp()?;
                self.address(1, t);
                self.emit(Insn::mov64_imm(2, 16));
                self.emit(Insn::call(GET_CURRENT_COMM));
                Ok(t)
            }
            "pp" => {
                let text = self.attachment.name.clone();
                self.literal(&text, e.span)
            }
            "probefunc" => {
                let text = self.attachment.function.clone().unwrap_or_default();
                self.literal(&text, e.span)
            }
            "user_string" | "kernel_string" | "user_string_n" => {
                self.int(&args[0])?;
                let slot = self.push_slot()?;
                self.emit(Insn::stx(Size::DW, 10, slot, 0));
                if name == "user_string_n" {
                    // At most n bytes and the NUL, within the slot.
                    self.int(&args[1])?;
                    self.emit(Insn::alu64_imm(Alu::Add, 0, 1));
                    self.emit(Insn::jmp_imm(Jmp::Sge, 0, 1, 1));
                    self.emit(Insn::mov64_imm(0, 1));
                    self.emit(Insn::jmp_imm(Jmp::Sle, 0, STR as i32, 1));
                    self.emit(Insn::mov64_imm(0, STR as i32));
                    self.emit(Insn::mov64_reg(2, 0));
                } else {
                    self.emit(Insn::mov64_imm(2, STR as i32));
                }
                let t = self.str_temp()?;
                self.address(1, t);
                self.emit(Insn::ldx(Size::DW, 3, 10, slot));
                let helper = if name == "kernel_string" {
                    PROBE_READ_KERNEL_STR
                } else {
                    PROBE_READ_USER_STR
                };
                self.emit(Insn::call(helper));
                self.empty_on_error(t);
                self.stack_used -= 8;
                Ok(t)
            }
            "substr" => {
                // substr(s, start, length): start counts from 0.
                let s = self.string(&args[0])?;
                let copy = self.alloc_scratch(2 * STR)?;
                let copy = StrLoc { reg: 8, off: copy };
                self.address(1, copy);
                self.emit(Insn::mov64_imm(2, STR as i32));
                self.address(3, s);
                self.emit(Insn::call(PROBE_READ_KERNEL_STR));
                // r0 - 1 = the length; start beyond it gives "".
                let len = self.push_slot()?;
                self.emit(Insn::alu64_imm(Alu::Sub, 0, 1));
                self.emit(Insn::stx(Size::DW, 10, len, 0));
                self.int(&args[2])?;
                let count = self.push_slot()?;
                self.emit(Insn::stx(Size::DW, 10, count, 0));
                self.int(&args[1])?;
                let t = self.str_temp()?;
                self.emit(Insn::st(Size::B, 8, t.off as i16, 0));
                let done = self.label();
                self.jump(Insn::jmp_imm(Jmp::Slt, 0, 0, 0), done);
                self.emit(Insn::ldx(Size::DW, 1, 10, len));
                self.jump(Insn::jmp_reg(Jmp::Sge, 0, 1, 0), done);
                self.jump(Insn::jmp_imm(Jmp::Sgt, 0, (STR - 1) as i32, 0), done);
                // r3 = copy + start; r2 = min(count, STR - 1) + 1.
                self.address(3, copy);
                self.emit(Insn::alu64_reg(Alu::Add, 3, 0));
                self.emit(Insn::ldx(Size::DW, 2, 10, count));
                self.jump(Insn::jmp_imm(Jmp::Sle, 2, 0, 0), done);
                self.emit(Insn::jmp_imm(Jmp::Sle, 2, (STR - 1) as i32, 1));
                self.emit(Insn::mov64_imm(2, (STR - 1) as i32));
                self.emit(Insn::alu64_imm(Alu::Add, 2, 1));
                self.address(1, t);
                self.emit(Insn::call(PROBE_READ_KERNEL_STR));
                self.bind(done);
                self.stack_used -= 16;
                Ok(t)
            }
            "sprintf" => self.sprintf(e, args),
            _ => match self.script.functions.iter().position(|f| f.name == name) {
                Some(index) => match self.inline(index, args, e.span)? {
                    Some(loc @ Loc::Scratch(_)) => Ok(Self::str_loc(loc)),
                    _ => Err(self.error(e.span, format!("{name}() returns no string"))),
                },
                None => Err(self.error(e.span, format!("{name}() does not give a string"))),
            },
        }
    }

    /// `sprintf` through bpf_snprintf: the format, turned into the
    /// kernel's printf dialect, sits in the read-only map; the arguments
    /// go in an array of u64 (a string as its address).
    fn sprintf(&mut self, e: &Expr, args: &[Expr]) -> Result<StrLoc> {
        let Some(ExprKind::Literal(Literal::Str(text))) = args.first().map(|a| &a.kind) else {
            return Err(self.error(e.span, "sprintf needs a literal format"));
        };
        let format = Format::parse(text).map_err(|err| self.error(e.span, err.message))?;
        let kernel = kernel_format(&format).map_err(|why| {
            self.error(args[0].span, format!("{why}; the kernel's bpf_snprintf, which sprintf runs on, cannot do it (printf can)"))
        })?;
        let values = &args[1..];
        if values.len() > 12 {
            return Err(self.error(
                e.span,
                "sprintf takes at most 12 values (a limit of the kernel's bpf_snprintf)",
            ));
        }
        let at = self.rodata.len();
        self.rodata.extend_from_slice(kernel.as_bytes());
        self.rodata.push(0);
        let data = self.alloc_scratch(8 * values.len().max(1) as u32)?;
        for (i, value) in values.iter().enumerate() {
            let slot = (data + 8 * i as u32) as i16;
            if self.ty(value) == Ty::Str {
                let s = self.string(value)?;
                self.address(1, s);
                self.emit(Insn::stx(Size::DW, 8, slot, 1));
            } else {
                self.int(value)?;
                self.emit(Insn::stx(Size::DW, 8, slot, 0));
            }
        }
        let t = self.str_temp()?;
        self.address(1, t);
        self.emit(Insn::mov64_imm(2, STR as i32));
        self.relocations.push((self.insns.len(), MapRef::Rodata));
        self.emit_wide(Insn::ld_imm64(3, PSEUDO_MAP_VALUE, (at as u64) << 32));
        if values.is_empty() {
            self.emit(Insn::mov64_imm(4, 0));
        } else {
            self.address(4, StrLoc { reg: 8, off: data });
        }
        self.emit(Insn::mov64_imm(5, 8 * values.len() as i32));
        self.emit(Insn::call(SNPRINTF));
        Ok(t)
    }

    // ---- statements without a value --------------------------------------

    fn call_void(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Result<()> {
        match name {
            "printf" => {
                let Some(ExprKind::Literal(Literal::Str(text))) = args.first().map(|a| &a.kind)
                else {
                    return Err(self.error(e.span, "printf needs a literal format"));
                };
                let format = Format::parse(text).map_err(|err| self.error(e.span, err.message))?;
                self.print(format, &args[1..])
            }
            "print" | "println" => {
                let kinds: Vec<ArgKind> = args
                    .iter()
                    .map(|a| {
                        if self.ty(a) == Ty::Str {
                            ArgKind::Str
                        } else {
                            ArgKind::Int
                        }
                    })
                    .collect();
                self.print(concatenation(&kinds, name == "println"), args)
            }
            "exit" => {
                self.emit(Insn::mov64_imm(1, 1));
                self.emit(Insn::stx(Size::DW, 7, EXIT_FLAG as i16, 1));
                self.outputs.push(Output::Exit);
                let id = self.outputs.len() - 1;
                self.record(id, &[])
            }
            _ => match self.script.functions.iter().position(|f| f.name == name) {
                Some(index) => self.inline(index, args, e.span).map(drop),
                None => Err(self.error(e.span, format!("unknown function '{name}'"))),
            },
        }
    }

    fn print(&mut self, format: Format, args: &[Expr]) -> Result<()> {
        enum Part {
            Int(i16),
            Str(StrLoc),
            Argstr(Vec<TpField>),
        }
        let mut parts = Vec::new();
        let mut slots = Vec::new();
        for arg in args {
            if let ExprKind::Var(name) = &arg.kind
                && let Some(Binding::Context(n)) = self.types.binding(self.frame().scope, name)
                && let Some(ContextVar::Argstr(fields)) = self.attachment.context.var(&n)
            {
                slots.push(ArgSlot::Argstr(fields.clone()));
                parts.push(Part::Argstr(fields.clone()));
                continue;
            }
            if self.ty(arg) == Ty::Str {
                let s = self.string(arg)?;
                slots.push(ArgSlot::Str);
                parts.push(Part::Str(s));
            } else {
                self.int(arg)?;
                let slot = self.push_slot()?;
                self.emit(Insn::stx(Size::DW, 10, slot, 0));
                slots.push(ArgSlot::Int);
                parts.push(Part::Int(slot));
            }
        }
        let size: u32 = 8 + slots.iter().map(ArgSlot::size).sum::<u32>();
        let record = self.alloc_scratch(size)?;
        let mut at = record + 8;
        for part in &parts {
            match part {
                Part::Int(slot) => {
                    self.emit(Insn::ldx(Size::DW, 1, 10, *slot));
                    self.emit(Insn::stx(Size::DW, 8, at as i16, 1));
                    at += 8;
                }
                Part::Str(s) => {
                    self.copy_str(StrLoc { reg: 8, off: at }, *s);
                    at += STR;
                }
                Part::Argstr(fields) => {
                    for field in fields {
                        self.load_field_int(field)?;
                        self.emit(Insn::stx(Size::DW, 8, at as i16, 0));
                        at += 8;
                        if is_user_string(field) {
                            self.emit(Insn::mov64_reg(3, 0));
                            self.address(1, StrLoc { reg: 8, off: at });
                            self.emit(Insn::mov64_imm(2, STR as i32));
                            self.emit(Insn::call(PROBE_READ_USER_STR));
                            self.empty_on_error(StrLoc { reg: 8, off: at });
                            at += STR;
                        }
                    }
                }
            }
        }
        self.outputs.push(Output::Printf {
            format,
            args: slots,
        });
        let id = self.outputs.len() - 1;
        self.send(id, record, size);
        Ok(())
    }

    /// A record of just an id.
    fn record(&mut self, id: usize, _: &[()]) -> Result<()> {
        let record = self.alloc_scratch(8)?;
        self.send(id, record, 8);
        Ok(())
    }

    /// Writes `id` at `record` and sends `size` bytes from there.
    fn send(&mut self, id: usize, record: u32, size: u32) {
        self.mov_imm(1, id as i64);
        self.emit(Insn::stx(Size::DW, 8, record as i16, 1));
        self.load_map(1, MapRef::Events);
        self.address(
            2,
            StrLoc {
                reg: 8,
                off: record,
            },
        );
        self.emit(Insn::mov64_imm(3, size as i32));
        self.emit(Insn::mov64_imm(4, 0));
        self.emit(Insn::call(RINGBUF_OUTPUT));
        self.emit(Insn::jmp_imm(Jmp::Eq, 0, 0, 2));
        self.emit(Insn::mov64_imm(1, 1));
        self.emit(Insn::atomic_add64(7, LOST_COUNTER as i16, 1));
    }

    /// Ends the session with `message`, as SystemTap's runtime errors do:
    /// the record tells user space, the exit flag stops the other probes.
    fn runtime_error(&mut self, span: Span, message: &str) -> Result<()> {
        let (line, col) = self.file.line_col(span.start);
        self.outputs.push(Output::Error {
            message: format!(
                "{message} at {}:{line}:{col} in {}",
                self.file.name, self.attachment.name
            ),
        });
        let id = self.outputs.len() - 1;
        self.emit(Insn::mov64_imm(1, 1));
        self.emit(Insn::stx(Size::DW, 7, EXIT_FLAG as i16, 1));
        self.record(id, &[])?;
        let exit = self.exit_label;
        self.goto(exit);
        Ok(())
    }
}

/// The width at which a field's value is sign-extended: its own size if
/// it is signed, the C type's for syscall arguments (which the kernel
/// stores as unsigned 8-byte slots whatever their type, so that an `int
/// dfd` of AT_FDCWD reads -100 as SystemTap shows it), 8 if unsigned.
fn signed_width(field: &TpField) -> u32 {
    let c = field.c_type.trim();
    if field.signed {
        return field.size;
    }
    if field.size == 8 {
        match c {
            "int" | "pid_t" | "clockid_t" | "key_serial_t" | "mqd_t" | "timer_t" | "rwf_t"
            | "key_t" => return 4,
            "long" | "off_t" | "loff_t" | "ssize_t" | "time_t" | "long long" => return 8,
            _ => {}
        }
    }
    8
}

/// A SystemTap format in the dialect of the kernel's bpf_snprintf
/// (kernel/bpf/helpers.c: flags `0 + - space`, a width, and `d i u x X`
/// with `ll`, `s`, `c`; no precision, no `#`, no `o`; printable ASCII).
fn kernel_format(format: &Format) -> std::result::Result<String, String> {
    use crate::printf::{Conversion, Piece};
    let mut out = String::new();
    for piece in format.pieces() {
        match piece {
            Piece::Text(text) => {
                for c in text.chars() {
                    if !(c.is_ascii_graphic() || c.is_ascii_whitespace()) {
                        return Err(format!(
                            "the format holds {c:?}, which is not printable ASCII"
                        ));
                    }
                    if c == '%' {
                        out.push('%');
                    }
                    out.push(c);
                }
            }
            Piece::Directive(d) => {
                if d.precision.is_some() {
                    return Err("the format has a precision".into());
                }
                if d.flags.alternate {
                    return Err("the format has the '#' flag".into());
                }
                let conversion = match d.conversion {
                    Conversion::Signed => "lld",
                    Conversion::Unsigned => "llu",
                    Conversion::HexLower => "llx",
                    Conversion::HexUpper => "llX",
                    Conversion::Str => "s",
                    Conversion::Char => "c",
                    Conversion::Pointer if d.width.is_none() => {
                        out.push_str("0x%llx");
                        continue;
                    }
                    Conversion::Pointer => return Err("the format has %p with a width".into()),
                    Conversion::Octal => return Err("the format has %o".into()),
                };
                out.push('%');
                for (on, flag) in [
                    (d.flags.left, '-'),
                    (d.flags.plus, '+'),
                    (d.flags.space, ' '),
                    (d.flags.zero, '0'),
                ] {
                    if on {
                        out.push(flag);
                    }
                }
                if let Some(w) = d.width {
                    out.push_str(&w.to_string());
                }
                out.push_str(conversion);
            }
        }
    }
    Ok(out)
}

/// Whether `insn` is a jump with an offset (not a call or an exit).
fn is_jump(insn: &Insn) -> bool {
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    (class == 0x05 || class == 0x06) && op != 0x80 && op != 0x90
}

fn signed_jump(op: BinaryOp) -> Jmp {
    match op {
        BinaryOp::Eq => Jmp::Eq,
        BinaryOp::Ne => Jmp::Ne,
        BinaryOp::Lt => Jmp::Slt,
        BinaryOp::Le => Jmp::Sle,
        BinaryOp::Gt => Jmp::Sgt,
        _ => Jmp::Sge,
    }
}
