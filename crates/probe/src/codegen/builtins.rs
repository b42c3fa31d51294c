//! The built-in functions: those that give a number (`pid()`, `cpu()`,
//! `gettimeofday_*()`, `ppid()` through task_struct's layout, `strlen`,
//! `isinstr`), those that give a string (`execname()`, `pp()`,
//! `user_string*()`, `substr`, `sprintf` through bpf_snprintf), those
//! that give nothing (`printf`, `print`, `println`, `exit()`), and the
//! script's own functions, inlined.

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::{
    EXIT_FLAG, GET_CURRENT_COMM, GET_CURRENT_PID_TGID, GET_CURRENT_TASK, GET_CURRENT_UID_GID,
    GET_SMP_PROCESSOR_ID, Gen, KTIME_GET_NS, Loc, MapRef, Output, PROBE_READ_KERNEL,
    PROBE_READ_KERNEL_STR, PROBE_READ_USER_STR, PSEUDO_MAP_VALUE, Result, SNPRINTF, STR, StrLoc,
};
use crate::ast::{Expr, ExprKind, Literal};
use crate::check::Ty;
use crate::printf::{ArgKind, Format, concatenation};

impl Gen<'_> {
    pub(super) fn call_int(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Result<()> {
        if let (Some(op), Some(operand)) = (crate::ast::StatOp::from_name(name), args.first()) {
            return self.stat_read(op, operand, e.span);
        }
        match name {
            "backtrace" => self.backtrace(false)?,
            "ubacktrace" => self.backtrace(true)?,
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
            _ => match self.function(name) {
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
    pub(super) fn low_or_high(&mut self, high: bool) {
        if high {
            self.emit(Insn::alu64_imm(Alu::Rsh, 0, 32));
        } else {
            self.emit(Insn::alu64_imm(Alu::Lsh, 0, 32));
            self.emit(Insn::alu64_imm(Alu::Rsh, 0, 32));
        }
    }

    /// bpf_probe_read_kernel(r10 + slot, size, r3).
    pub(super) fn read_kernel_into(&mut self, slot: i16, size: i32) {
        self.emit(Insn::mov64_reg(1, 10));
        self.emit(Insn::alu64_imm(Alu::Add, 1, i32::from(slot)));
        self.emit(Insn::mov64_imm(2, size));
        self.emit(Insn::call(PROBE_READ_KERNEL));
    }

    pub(super) fn call_string(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Result<StrLoc> {
        match name {
            "execname" => {
                let t = self.str_temp()?;
                self.address(1, t);
                self.emit(Insn::mov64_imm(2, 16));
                self.emit(Insn::call(GET_CURRENT_COMM));
                Ok(t)
            }
            "pp" if self.is_fan_in() => self.fan_in_pp(),
            "probefunc" if self.is_fan_in() => self.fan_in_name(),
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
            _ => match self.function(name) {
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
    pub(super) fn sprintf(&mut self, e: &Expr, args: &[Expr]) -> Result<StrLoc> {
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

    pub(super) fn call_void(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Result<()> {
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
                        if matches!(self.ty(a), Ty::Str | Ty::Stack) {
                            ArgKind::Str
                        } else {
                            ArgKind::Int
                        }
                    })
                    .collect();
                self.print(concatenation(&kinds, name == "println"), args)
            }
            "print_backtrace" | "print_ubacktrace" | "print_stack" | "print_ustack" => {
                let taken;
                let stack = match args.first() {
                    Some(arg) => arg,
                    None => {
                        let call = if name == "print_backtrace" {
                            "backtrace"
                        } else {
                            "ubacktrace"
                        };
                        taken = Expr {
                            kind: ExprKind::Call {
                                name: call.into(),
                                args: Vec::new(),
                            },
                            span: e.span,
                        };
                        &taken
                    }
                };
                let format = Format::parse("%s").map_err(|err| self.error(e.span, err.message))?;
                self.print_as(format, std::slice::from_ref(stack), true)
            }
            "exit" => {
                self.emit(Insn::mov64_imm(1, 1));
                self.emit(Insn::stx(Size::DW, 7, EXIT_FLAG as i16, 1));
                self.outputs.push(Output::Exit);
                let id = self.outputs.len() - 1;
                self.record(id, &[])
            }
            _ => match self.function(name) {
                Some(index) => self.inline(index, args, e.span).map(drop),
                None => Err(self.error(e.span, format!("unknown function '{name}'"))),
            },
        }
    }
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
