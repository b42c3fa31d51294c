//! Integer expressions, whose value is left in r0: the type each
//! expression has as the checker decided it, variables and tracepoint
//! fields (sign-extended as SystemTap reads them), operators with C's
//! signed division, comparisons, logic and assignments (an atomic add for
//! globals).

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::{Gen, Loc, Result};
use crate::ast::{AssignOp, BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use crate::catalog::{FieldKind, TpField};
use crate::check::{Binding, Ty, builtin};
use crate::points::ContextVar;
use crate::source::Span;

impl Gen<'_> {
    /// The type of `e` as the checker decided it.
    pub(super) fn ty(&self, e: &Expr) -> Ty {
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
                "printf" | "print" | "println" => Ty::Void,
                "sprintf" => Ty::Str,
                other => match (builtin(other), self.function(other)) {
                    (Some(b), _) => b.result,
                    (None, Some(i)) => self.types.returns(i),
                    (None, None) => Ty::Long,
                },
            },
            ExprKind::Index { array, .. } => self.types.array(array).map_or(Ty::Long, |a| a.value),
            ExprKind::In { .. } => Ty::Long,
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
                AssignOp::Aggregate => Ty::Void,
                AssignOp::Compound(BinaryOp::Concat) => Ty::Str,
                AssignOp::Compound(_) => Ty::Long,
                AssignOp::Assign => self.ty(target),
            },
        }
    }

    /// Evaluates `e` for its side effects.
    pub(super) fn effect(&mut self, e: &Expr) -> Result<()> {
        match self.ty(e) {
            Ty::Str => self.string(e).map(drop),
            Ty::Long | Ty::Stack => self.int(e),
            Ty::Void => {
                if let ExprKind::Assign {
                    op: AssignOp::Aggregate,
                    target,
                    value,
                } = &e.kind
                {
                    return self.aggregate_add(target, value);
                }
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

    pub(super) fn int(&mut self, e: &Expr) -> Result<()> {
        let saved = self.span;
        self.span = e.span;
        let out = self.int_inner(e);
        self.span = saved;
        out
    }

    pub(super) fn int_inner(&mut self, e: &Expr) -> Result<()> {
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
            ExprKind::Index { array, keys } => self.element_int(array, keys),
            ExprKind::In { keys, array } => self.contains(array, keys),
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
                    if let ExprKind::Index { array, keys } = &operand.kind {
                        return self.crement_element(array, keys, delta as i32, post);
                    }
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
                self.int(cond)?;
                self.branch(|g| g.int(then), |g| g.int(otherwise))
            }
            ExprKind::Assign { op, target, value } => {
                if let ExprKind::Index { array, keys } = &target.kind {
                    return self.assign_element_int(*op, array, keys, value, e.span);
                }
                let loc = self.lvalue(target)?;
                match op {
                    AssignOp::Assign | AssignOp::Aggregate => {
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
    pub(super) fn add_to(&mut self, loc: Loc) {
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

    pub(super) fn lvalue(&mut self, target: &Expr) -> Result<Loc> {
        match &target.kind {
            ExprKind::Var(name) => Ok(self.var_loc(name, target.span)?.0),
            _ => Err(self.error(target.span, "only a variable can be assigned to")),
        }
    }

    /// `r0 = (r0 OP 0) ? 1 : 0`.
    pub(super) fn truth(&mut self, op: Jmp) {
        self.emit(Insn::mov64_reg(1, 0));
        self.emit(Insn::mov64_imm(0, 1));
        self.emit(Insn::jmp_imm(op, 1, 0, 1));
        self.emit(Insn::mov64_imm(0, 0));
    }

    pub(super) fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr) -> Result<()> {
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
    pub(super) fn arith(&mut self, op: BinaryOp, span: Span) -> Result<()> {
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

    pub(super) fn target_field(&self, name: &str, span: Span) -> Result<TpField> {
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

    pub(super) fn load_field_int(&mut self, field: &TpField) -> Result<()> {
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
