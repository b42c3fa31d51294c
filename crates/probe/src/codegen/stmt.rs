//! Statements: the handler's prologue (the context in r6, the globals and
//! scratch values looked up into r7 and r8, the exit flag checked), the
//! probe's condition and body, `if`, loops with their `break` and
//! `continue` targets, `next`, `return` and `delete`.

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::{EXIT_FLAG, GET_CURRENT_PID_TGID, Gen, KEY_SLOT, Loc, MAP_LOOKUP_ELEM, MapRef, Result};
use crate::ast::{Block, Expr, ExprKind, Loop, Stmt, StmtKind};
use crate::check::{Scope, Ty};
use crate::points::AttachKind;

impl Gen<'_> {
    pub(super) fn probe(&mut self) -> Result<()> {
        let probe = &self.script.probes[self.attachment.probe];
        self.span = probe.span;
        self.emit(Insn::mov64_reg(6, 1));
        self.fan_in_filter()?;
        self.skip_own_process();
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

    pub(super) fn block(&mut self, block: &Block) -> Result<()> {
        for stmt in &block.stmts {
            self.stmt(stmt)?;
        }
        Ok(())
    }

    pub(super) fn stmt(&mut self, stmt: &Stmt) -> Result<()> {
        self.span = stmt.span;
        if let Some(l) = stmt.kind.as_loop() {
            self.loops.push(stmt.span);
            return self.looping(l);
        }
        match &stmt.kind {
            StmtKind::Block(b) => self.block(b),
            // `while` and `for` are the loop above.
            StmtKind::Empty | StmtKind::While { .. } | StmtKind::For { .. } => Ok(()),
            StmtKind::Expr(e) => self.scoped(|g| g.effect(e)),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.scoped(|g| g.int(cond))?;
                self.branch(
                    |g| g.stmt(then),
                    |g| otherwise.as_ref().map_or(Ok(()), |o| g.stmt(o)),
                )
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
            StmtKind::Delete(Expr {
                kind: ExprKind::Index { array, keys },
                ..
            }) => self.delete_element(array, keys),
            StmtKind::Delete(Expr {
                kind: ExprKind::Var(name),
                ..
            }) if self.types.array(name).is_some() => self.delete_element(name, &[]),
            StmtKind::Foreach(each) => Err(self.error(
                each.array_span,
                "internal error: foreach in a probe compiled to BPF",
            )),
            StmtKind::Delete(Expr {
                kind: ExprKind::Var(name),
                ..
            }) => {
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
            StmtKind::Delete(what) => Err(self.error(
                what.span,
                "internal error: 'delete' of something not a variable",
            )),
        }
    }

    /// Leaves kscope's own syscalls untraced: its polls of the ring buffer
    /// and writes of the output would count themselves (a `syscall_any`
    /// count would grow by what printing it costs). Only syscall points,
    /// whose events are the current task's own: a tracepoint such as
    /// sched_switch, or a kprobe, may be about another task while kscope
    /// runs (kscope switching to the traced command), and is kept.
    fn skip_own_process(&mut self) {
        let event = match &self.attachment.kind {
            AttachKind::SyscallFanIn(_) => true,
            AttachKind::Tracepoint(tp) => matches!(tp.system.as_str(), "syscalls" | "raw_syscalls"),
            _ => false,
        };
        if !event || self.options.own_pid <= 0 {
            return;
        }
        self.emit(Insn::call(GET_CURRENT_PID_TGID));
        self.emit(Insn::alu64_imm(Alu::Rsh, 0, 32));
        let exit = self.exit_label;
        self.jump(
            Insn::jmp_imm(Jmp::Eq, 0, self.options.own_pid as i32, 0),
            exit,
        );
    }

    /// A loop: `init`, then `cond` checked before each run of `body`,
    /// `step` after each (where `continue` goes).
    fn looping(&mut self, l: Loop<'_>) -> Result<()> {
        if let Some(e) = l.init {
            self.scoped(|g| g.effect(e))?;
        }
        let top = self.label();
        let cont = self.label();
        let brk = self.label();
        self.bind(top);
        if let Some(c) = l.cond {
            self.span = c.span;
            self.scoped(|g| g.int(c))?;
            self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), brk);
        }
        self.frames
            .last_mut()
            .expect("a frame is pushed for every handler")
            .loops
            .push((brk, cont));
        self.stmt(l.body)?;
        self.frames
            .last_mut()
            .expect("a frame is pushed for every handler")
            .loops
            .pop();
        self.bind(cont);
        if let Some(e) = l.step {
            self.scoped(|g| g.effect(e))?;
        }
        self.goto(top);
        self.bind(brk);
        Ok(())
    }
}
