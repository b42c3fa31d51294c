//! Output records: what `printf`, `exit()` and a runtime error send to
//! user space through the BPF ring buffer. A record is a u64 naming an
//! [`Output`] and then the raw arguments laid out as [`ArgSlot`]s,
//! built in the scratch value and sent with one bpf_ringbuf_output; a
//! record the full ring buffer refuses is counted at [`LOST_COUNTER`] in
//! the globals.

use kscope_bpf::{Insn, Jmp, Size};

use super::{
    EXIT_FLAG, Gen, LOST_COUNTER, MapRef, PROBE_READ_USER_STR, RINGBUF_OUTPUT, Result, STR, StrLoc,
    SyscallArgs,
};
use crate::ast::{Expr, ExprKind};
use crate::catalog::{FieldKind, TpField};
use crate::check::{Binding, Ty};
use crate::points::ContextVar;
use crate::printf::Format;
use crate::source::Span;

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
    /// 8 bytes, a stack value ([`crate::codegen::stack_value`]): shown as
    /// SystemTap's string of addresses, or with `lines`, one symbolized
    /// frame a line as `print_stack` shows it.
    Stack {
        /// Symbolized, one frame a line.
        lines: bool,
    },
    /// A syscall fan-in's `argstr`: the syscall number, the raw
    /// arguments and user strings, formatted by number.
    SyscallArgstr(SyscallArgs),
}

impl ArgSlot {
    /// Its size in the record.
    pub fn size(&self) -> u32 {
        match self {
            ArgSlot::Int | ArgSlot::Stack { .. } => 8,
            ArgSlot::Str => STR,
            ArgSlot::Argstr(fields) => fields
                .iter()
                .map(|f| if is_user_string(f) { 8 + STR } else { 8 })
                .sum(),
            ArgSlot::SyscallArgstr(args) => args.size(),
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
    /// A process whose user stack was taken for the first time: its
    /// tgid follows, so that user space reads its maps while it lives.
    Process,
}

impl Gen<'_> {
    pub(super) fn print(&mut self, format: Format, args: &[Expr]) -> Result<()> {
        self.print_as(format, args, false)
    }

    /// `print`, with stack arguments symbolized one frame a line when
    /// `lines` (print_stack) or as their addresses.
    pub(super) fn print_as(&mut self, format: Format, args: &[Expr], lines: bool) -> Result<()> {
        enum Part {
            Int(i16),
            Str(StrLoc),
            Argstr(Vec<TpField>),
            SyscallArgstr,
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
            if let ExprKind::Var(name) = &arg.kind
                && let Some(Binding::Context(n)) = self.types.binding(self.frame().scope, name)
                && let Some(ContextVar::SyscallArgstr) = self.attachment.context.var(&n)
                && let Some(args) = self.fan_in_args()
            {
                slots.push(ArgSlot::SyscallArgstr(args));
                parts.push(Part::SyscallArgstr);
                continue;
            }
            let ty = self.ty(arg);
            if ty == Ty::Str {
                let s = self.string(arg)?;
                slots.push(ArgSlot::Str);
                parts.push(Part::Str(s));
            } else {
                self.int(arg)?;
                let slot = self.push_slot()?;
                self.emit(Insn::stx(Size::DW, 10, slot, 0));
                slots.push(if ty == Ty::Stack {
                    ArgSlot::Stack { lines }
                } else {
                    ArgSlot::Int
                });
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
                Part::SyscallArgstr => at += self.fan_in_argstr(at)?,
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
    pub(super) fn record(&mut self, id: usize, _: &[()]) -> Result<()> {
        let record = self.alloc_scratch(8)?;
        self.send(id, record, 8);
        Ok(())
    }

    /// Writes `id` at `record` and sends `size` bytes from there.
    pub(super) fn send(&mut self, id: usize, record: u32, size: u32) {
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
    pub(super) fn runtime_error(&mut self, span: Span, message: &str) -> Result<()> {
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
