//! Expressions of a host probe: literals, variables (locals, globals, the
//! point's context), array elements and `in`, every operator with `&&`,
//! `||` and `?:` short-circuiting, assignments (plain, compound, `.=`,
//! `<<<`) and `++`/`--` to variables and elements, calls of built-ins,
//! of the `@` operators and of the script's functions.

use super::exec::{Interp, Result};
use super::value::{Arith, Value, arith, compare};
use crate::ast::{AssignOp, BinaryOp, Expr, ExprKind, Literal, StatOp, UnaryOp};
use crate::check::Binding;
use crate::points::ContextVar;
use crate::source::Span;

impl Interp<'_> {
    /// The value of `e`.
    pub(super) fn eval(&mut self, e: &Expr) -> Result<Value> {
        self.step(e.span)?;
        match &e.kind {
            ExprKind::Literal(Literal::Int(n)) => Ok(Value::Long(*n)),
            ExprKind::Literal(Literal::Str(s)) => Ok(Value::string(s.as_bytes())),
            ExprKind::Var(name) => self.var(name, e.span),
            ExprKind::Target { name, .. } => Err(self.error(
                &format!("internal error: '${name}' in a probe run in kscope's process"),
                e.span,
            )),
            ExprKind::Index { array, keys } => {
                let keys = self.eval_all(keys)?;
                self.element(array, &keys, e.span)
            }
            ExprKind::In { keys, array } => {
                let keys = self.eval_all(keys)?;
                Ok(Value::Long(i64::from(self.contains(array, &keys, e.span)?)))
            }
            ExprKind::Call { name, args } => self.call(name, args, e.span),
            ExprKind::Unary { op, operand } => self.unary(*op, operand, e.span),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                if self.eval(cond)?.truth() {
                    self.eval(then)
                } else {
                    self.eval(otherwise)
                }
            }
            ExprKind::Assign {
                op: AssignOp::Aggregate,
                target,
                value,
            } => {
                // The keys first, then the value, as in BPF.
                let (array, keys) = self.place(target)?;
                let v = self.eval(value)?.long();
                self.stat_add(&array, &keys, v, target.span)?;
                Ok(Value::Long(0))
            }
            ExprKind::Assign { op, target, value } => self.assign(*op, target, value, e.span),
        }
    }

    /// The values of `exprs`, left to right.
    pub(super) fn eval_all(&mut self, exprs: &[Expr]) -> Result<Vec<Value>> {
        exprs.iter().map(|e| self.eval(e)).collect()
    }

    /// Variable `name`: a local, a global or a context variable.
    fn var(&mut self, name: &str, span: Span) -> Result<Value> {
        match self.binding(name) {
            Some(Binding::Global(g)) => self.read_global(&g, span),
            Some(Binding::Context(c)) => match self.attachment.context.var(&c) {
                Some(ContextVar::Name(s)) => Ok(Value::string(s.as_bytes())),
                _ => Err(self.error(
                    &format!(
                        "internal error: context variable '{c}' in a probe run in kscope's process"
                    ),
                    span,
                )),
            },
            Some(Binding::Local(_)) | None => Ok(self.local(name)),
        }
    }

    /// The array and keys of a statistic operand (`s` or `s[k...]`).
    fn place(&mut self, target: &Expr) -> Result<(String, Vec<Value>)> {
        match &target.kind {
            ExprKind::Var(name) => Ok((name.clone(), Vec::new())),
            ExprKind::Index { array, keys } => Ok((array.clone(), self.eval_all(keys)?)),
            _ => Err(self.error("internal error: not a statistic", target.span)),
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Result<Value> {
        match op {
            BinaryOp::And => {
                let v = self.eval(lhs)?.truth() && self.eval(rhs)?.truth();
                return Ok(Value::Long(i64::from(v)));
            }
            BinaryOp::Or => {
                let v = self.eval(lhs)?.truth() || self.eval(rhs)?.truth();
                return Ok(Value::Long(i64::from(v)));
            }
            _ => {}
        }
        let a = self.eval(lhs)?;
        let b = self.eval(rhs)?;
        self.combine(op, &a, &b, span)
    }

    /// `a op b` for an operator that is not short-circuiting.
    fn combine(&self, op: BinaryOp, a: &Value, b: &Value, span: Span) -> Result<Value> {
        if op == BinaryOp::Concat {
            return Ok(a.concat(b));
        }
        if op.is_comparison() {
            return Ok(Value::Long(compare(op, a, b)));
        }
        match arith(op, a.long(), b.long()) {
            Arith::Value(n) => Ok(Value::Long(n)),
            Arith::DivisionByZero => Err(self.error("division by 0", span)),
        }
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr, span: Span) -> Result<Value> {
        let (delta, post) = match op {
            UnaryOp::Plus => return self.eval(operand),
            UnaryOp::Neg => return Ok(Value::Long(self.eval(operand)?.long().wrapping_neg())),
            UnaryOp::Not => return Ok(Value::Long(i64::from(!self.eval(operand)?.truth()))),
            UnaryOp::BitNot => return Ok(Value::Long(!self.eval(operand)?.long())),
            UnaryOp::PreInc => (1, false),
            UnaryOp::PreDec => (-1, false),
            UnaryOp::PostInc => (1, true),
            UnaryOp::PostDec => (-1, true),
        };
        let new = self.crement(operand, delta, span)?;
        Ok(Value::Long(if post {
            new.wrapping_sub(delta)
        } else {
            new
        }))
    }

    fn assign(&mut self, op: AssignOp, target: &Expr, value: &Expr, span: Span) -> Result<Value> {
        // The target's keys are evaluated before the value, as in BPF.
        let place = match &target.kind {
            ExprKind::Index { array, keys } => Some((array.clone(), self.eval_all(keys)?)),
            _ => None,
        };
        let v = self.eval(value)?;
        let combine = |this: &Self, old: &Value| match op {
            AssignOp::Compound(bin) => this.combine(bin, old, &v, span),
            AssignOp::Assign | AssignOp::Aggregate => Ok(v.clone()),
        };
        match (place, &target.kind) {
            (Some((array, keys)), _) => {
                let old = self.element(&array, &keys, target.span)?;
                let new = combine(self, &old)?;
                self.set_element(&array, &keys, &new, target.span)?;
                Ok(new)
            }
            (None, ExprKind::Var(name)) => {
                if let (
                    Some(Binding::Global(g)),
                    AssignOp::Compound(BinaryOp::Add | BinaryOp::Sub),
                ) = (self.binding(name), op)
                {
                    let delta = if op == AssignOp::Compound(BinaryOp::Sub) {
                        v.long().wrapping_neg()
                    } else {
                        v.long()
                    };
                    return Ok(Value::Long(self.add_global(&g, delta, target.span)?));
                }
                let old = self.var(name, target.span)?;
                let new = combine(self, &old)?;
                self.set_var(name, new.clone(), target.span)?;
                Ok(new)
            }
            _ => Err(self.error(
                "internal error: an assignment to something not a variable",
                target.span,
            )),
        }
    }

    /// Adds `delta` to the long variable or element `target` (`++` and
    /// `--`); the new value. A global takes an atomic add.
    fn crement(&mut self, target: &Expr, delta: i64, span: Span) -> Result<i64> {
        match &target.kind {
            ExprKind::Index { array, keys } => {
                let keys = self.eval_all(keys)?;
                let new = self
                    .element(array, &keys, target.span)?
                    .long()
                    .wrapping_add(delta);
                self.set_element(array, &keys, &Value::Long(new), target.span)?;
                Ok(new)
            }
            ExprKind::Var(name) => {
                if let Some(Binding::Global(g)) = self.binding(name) {
                    return self.add_global(&g, delta, target.span);
                }
                let new = self.local(name).long().wrapping_add(delta);
                self.set_local(name, Value::Long(new));
                Ok(new)
            }
            _ => Err(self.error(
                "internal error: '++' or '--' of something not a variable",
                span,
            )),
        }
    }

    /// `@count(s)` and the others, merged over CPUs.
    pub(super) fn stat_op(&mut self, op: StatOp, operand: &Expr, span: Span) -> Result<Value> {
        let (array, keys) = self.place(operand)?;
        let stat = self.stat(&array, &keys, operand.span)?;
        match super::arrays::stat_get(&stat, op) {
            Some(n) => Ok(Value::Long(n)),
            None => Err(self.error(
                &format!(
                    "empty aggregate: {}() of a statistic with no values",
                    op.name()
                ),
                span,
            )),
        }
    }
}
