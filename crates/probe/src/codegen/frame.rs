//! Where values live while a handler runs: integer locals and
//! temporaries in 8-byte stack slots below r10 (at most 512 bytes), string
//! locals and temporaries in the per-CPU scratch value (r8), globals in
//! the globals value (r7); one [`Frame`] of locals per probe handler and
//! per inlined function call, whose arguments are copied in.

use std::collections::HashMap;

use kscope_bpf::{Insn, Size};

use super::{Frame, Gen, Label, Loc, Result, STACK_LIMIT, STR, StrLoc};
use crate::ast::Expr;
use crate::check::{Binding, Scope, Ty};
use crate::source::Span;

impl Gen<'_> {
    pub(super) fn push_slot(&mut self) -> Result<i16> {
        self.stack_used += 8;
        if self.stack_used > STACK_LIMIT {
            return Err(self.error(
                self.span,
                "this handler needs more than the 512 bytes of BPF stack for its numbers; use fewer locals or simpler expressions",
            ));
        }
        Ok(-(self.stack_used as i16))
    }

    pub(super) fn alloc_scratch(&mut self, bytes: u32) -> Result<u32> {
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

    pub(super) fn str_temp(&mut self) -> Result<StrLoc> {
        Ok(StrLoc {
            reg: 8,
            off: self.alloc_scratch(STR)?,
        })
    }

    /// Runs `f` and then frees the temporaries it took.
    pub(super) fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let (stack, scratch) = (self.stack_used, self.scratch_used);
        let out = f(self);
        self.stack_used = stack;
        self.scratch_used = scratch;
        out
    }

    pub(super) fn frame(&self) -> &Frame {
        self.frames
            .last()
            .expect("a frame is pushed for every handler")
    }

    /// Creates the locals of `scope`, zeroed.
    pub(super) fn push_frame(
        &mut self,
        scope: Scope,
        ret: Option<(Option<Loc>, Label)>,
    ) -> Result<()> {
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

    pub(super) fn var_loc(&self, name: &str, span: Span) -> Result<(Loc, Ty)> {
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

    pub(super) fn str_loc(loc: Loc) -> StrLoc {
        match loc {
            Loc::Global(off) => StrLoc { reg: 7, off },
            Loc::Scratch(off) => StrLoc { reg: 8, off },
            Loc::Stack(_) => StrLoc { reg: 8, off: 0 },
        }
    }

    pub(super) fn load_int(&mut self, loc: Loc) {
        match loc {
            Loc::Stack(slot) => self.emit(Insn::ldx(Size::DW, 0, 10, slot)),
            Loc::Global(off) => self.emit(Insn::ldx(Size::DW, 0, 7, off as i16)),
            Loc::Scratch(off) => self.emit(Insn::ldx(Size::DW, 0, 8, off as i16)),
        }
    }

    pub(super) fn store_int(&mut self, loc: Loc) {
        match loc {
            Loc::Stack(slot) => self.emit(Insn::stx(Size::DW, 10, slot, 0)),
            Loc::Global(off) => self.emit(Insn::stx(Size::DW, 7, off as i16, 0)),
            Loc::Scratch(off) => self.emit(Insn::stx(Size::DW, 8, off as i16, 0)),
        }
    }

    /// The index of the script's function `name`.
    pub(super) fn function(&self, name: &str) -> Option<usize> {
        self.script.functions.iter().position(|f| f.name == name)
    }

    /// Inlines function `index` with `args`; returns where its value is.
    pub(super) fn inline(
        &mut self,
        index: usize,
        args: &[Expr],
        span: Span,
    ) -> Result<Option<Loc>> {
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
            Ty::Long | Ty::Stack => Some(Loc::Stack(self.push_slot()?)),
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
}
