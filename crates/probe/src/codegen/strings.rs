//! Strings, each at most [`STR`] bytes with the NUL and named by where it
//! lies ([`StrLoc`]): literals stored a word at a time, copies, joins and
//! reads bounded by [`STR`] through bpf_probe_read_*_str, comparisons
//! unrolled over [`STR`] bytes, and `isinstr` as one loop over positions
//! with a branch-free comparison at each.

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::{Gen, PROBE_READ_KERNEL_STR, Result, STR, StrLoc};
use crate::ast::{AssignOp, BinaryOp, Expr, ExprKind, Literal};
use crate::catalog::{FieldKind, TpField};
use crate::check::Binding;
use crate::points::ContextVar;
use crate::source::Span;

impl Gen<'_> {
    /// Copies a whole string slot, 8 bytes at a time.
    pub(super) fn copy_str(&mut self, dst: StrLoc, src: StrLoc) {
        if dst == src {
            return;
        }
        for i in (0..STR).step_by(8) {
            self.emit(Insn::ldx(Size::DW, 1, src.reg, (src.off + i) as i16));
            self.emit(Insn::stx(Size::DW, dst.reg, (dst.off + i) as i16, 1));
        }
    }

    /// `r0 = a <=> b` over the bytes up to the first NUL: the difference
    /// of the first bytes that differ, or 0. Unrolled, so the verifier
    /// needs no loop bound.
    pub(super) fn strcmp(&mut self, a: StrLoc, b: StrLoc) {
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

    /// r0 = the length of the string at `s`, measured by copying it
    /// (bpf_probe_read_kernel_str returns the bytes copied with the NUL).
    pub(super) fn string_length(&mut self, s: StrLoc) -> Result<()> {
        let junk = self.str_temp()?;
        self.copy_measured(junk, s);
        Ok(())
    }

    /// Copies the string at `src` to `dst` (at most [`STR`] bytes with the
    /// NUL) and leaves its length in r0: the bytes copied without the
    /// NUL, 0 when the read failed.
    fn copy_measured(&mut self, dst: StrLoc, src: StrLoc) {
        self.address(1, dst);
        self.emit(Insn::mov64_imm(2, STR as i32));
        self.address(3, src);
        self.emit(Insn::call(PROBE_READ_KERNEL_STR));
        self.emit(Insn::alu64_imm(Alu::Sub, 0, 1));
        self.emit(Insn::jmp_imm(Jmp::Sge, 0, 0, 1));
        self.emit(Insn::mov64_imm(0, 0));
    }

    /// r0 = 1 if `needle` occurs in `hay`. A loop over the start position
    /// (kept on the stack, where the verifier sees it count); at each
    /// position the string is compared eight bytes at a time without a
    /// branch (XOR, masked to the needle's length, ORed together), so that
    /// the verifier follows one short path per position, not one per byte:
    /// about 15,000 instructions per call, where the verifier gives up
    /// after 1,000,000.
    pub(super) fn isinstr(&mut self, hay: StrLoc, needle: StrLoc) -> Result<()> {
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
    pub(super) fn needle_mask(&mut self, mask: u32) {
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

    pub(super) fn string(&mut self, e: &Expr) -> Result<StrLoc> {
        let saved = self.span;
        self.span = e.span;
        let out = self.string_inner(e);
        self.span = saved;
        out
    }

    pub(super) fn literal(&mut self, text: &str, span: Span) -> Result<StrLoc> {
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

    pub(super) fn string_inner(&mut self, e: &Expr) -> Result<StrLoc> {
        match &e.kind {
            ExprKind::Literal(Literal::Str(s)) => self.literal(s, e.span),
            ExprKind::Var(name) => {
                let scope = self.frame().scope;
                if let Some(Binding::Context(n)) = self.types.binding(scope, name) {
                    return match self.attachment.context.var(&n).cloned() {
                        Some(ContextVar::Name(s)) => self.literal(&s, e.span),
                        Some(ContextVar::SyscallName) => self.fan_in_name(),
                        Some(ContextVar::Argstr(_) | ContextVar::SyscallArgstr) => Err(self.error(
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
            ExprKind::Index { array, keys } => self.element_string(array, keys),
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
                self.int(cond)?;
                let into_t = |g: &mut Self, e| {
                    let s = g.string(e)?;
                    g.copy_str(t, s);
                    Ok(())
                };
                self.branch(|g| into_t(g, then), |g| into_t(g, otherwise))?;
                Ok(t)
            }
            ExprKind::Assign { op, target, value } => {
                if let ExprKind::Index { array, keys } = &target.kind {
                    return self.assign_element_string(*op, array, keys, value);
                }
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
    pub(super) fn concat(&mut self, a: StrLoc, b: StrLoc) -> Result<StrLoc> {
        // Twice the size, so that the second copy's destination range is
        // inside the value for every length of `a` the verifier considers.
        let off = self.alloc_scratch(2 * STR)?;
        let t = StrLoc { reg: 8, off };
        // r0 = the length of `a`; the second copy starts on its NUL.
        self.copy_measured(t, a);
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
    pub(super) fn field_string(&mut self, field: &TpField) -> Result<StrLoc> {
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
    pub(super) fn empty_on_error(&mut self, t: StrLoc) {
        self.emit(Insn::jmp_imm(Jmp::Sgt, 0, 0, 1));
        self.emit(Insn::st(Size::B, t.reg, t.off as i16, 0));
    }
}
