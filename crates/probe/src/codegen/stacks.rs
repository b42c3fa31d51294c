//! Stack traces: `backtrace()` and `ubacktrace()` store the current stack
//! in a BPF stack-trace map with bpf_get_stackid and give a stack value
//! ([`stack_value`]) that can be kept, used as an array key and printed;
//! user space reads the addresses back by id and symbolizes them. The
//! first user stack of each process sends its tgid to user space, which
//! reads its memory maps while it still runs.

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::{
    BPF_NOEXIST, GET_CURRENT_PID_TGID, GET_STACKID, Gen, MAP_UPDATE_ELEM, MapRef, Output, Result,
};

/// bpf_get_stackid flag: the user stack.
const BPF_F_USER_STACK: i32 = 1 << 8;
/// The bit of a stack value that marks a user stack.
const USER_BIT: i64 = 1 << 31;

/// A stack value: the stack map id in the low 31 bits; for a user stack,
/// bit 31 set and the process's tgid in the high 32 bits; -1 when the
/// stack could not be taken.
pub fn stack_value(value: i64) -> Option<(u32, Option<u32>)> {
    if value < 0 {
        return None;
    }
    let id = (value & (USER_BIT - 1)) as u32;
    let user = (value & USER_BIT != 0).then_some((value >> 32) as u32);
    Some((id, user))
}

impl Gen<'_> {
    /// r0 = the stack value of the current kernel or user stack.
    pub(super) fn backtrace(&mut self, user: bool) -> Result<()> {
        let failed = self.label();
        let end = self.label();
        self.emit(Insn::mov64_reg(1, 6));
        let map = if user {
            MapRef::UserStacks
        } else {
            MapRef::KernelStacks
        };
        self.load_map(2, map);
        self.emit(Insn::mov64_imm(3, if user { BPF_F_USER_STACK } else { 0 }));
        self.emit(Insn::call(GET_STACKID));
        self.jump(Insn::jmp_imm(Jmp::Slt, 0, 0, 0), failed);
        if user {
            self.scoped(|g| g.user_stack_value())?;
        }
        self.goto(end);
        self.bind(failed);
        self.emit(Insn::mov64_imm(0, -1));
        self.bind(end);
        Ok(())
    }

    /// With a user stack's id in r0: r0 = its stack value, after telling
    /// user space of the process the first time.
    fn user_stack_value(&mut self) -> Result<()> {
        let id = self.push_slot()?;
        let tgid = self.push_slot()?;
        let zero = self.push_slot()?;
        self.emit(Insn::stx(Size::DW, 10, id, 0));
        self.emit(Insn::call(GET_CURRENT_PID_TGID));
        self.emit(Insn::alu64_imm(Alu::Rsh, 0, 32));
        self.emit(Insn::stx(Size::DW, 10, tgid, 0));
        self.emit(Insn::st(Size::DW, 10, zero, 0));
        self.load_map(1, MapRef::Processes);
        self.emit(Insn::mov64_reg(2, 10));
        self.emit(Insn::alu64_imm(Alu::Add, 2, i32::from(tgid)));
        self.emit(Insn::mov64_reg(3, 10));
        self.emit(Insn::alu64_imm(Alu::Add, 3, i32::from(zero)));
        self.emit(Insn::mov64_imm(4, BPF_NOEXIST));
        self.emit(Insn::call(MAP_UPDATE_ELEM));
        let known = self.label();
        self.jump(Insn::jmp_imm(Jmp::Ne, 0, 0, 0), known);
        self.outputs.push(Output::Process);
        let output = self.outputs.len() - 1;
        let record = self.alloc_scratch(16)?;
        self.emit(Insn::ldx(Size::DW, 1, 10, tgid));
        self.emit(Insn::stx(Size::DW, 8, (record + 8) as i16, 1));
        self.send(output, record, 16);
        self.bind(known);
        self.emit(Insn::ldx(Size::DW, 0, 10, tgid));
        self.emit(Insn::alu64_imm(Alu::Lsh, 0, 32));
        self.emit(Insn::ldx(Size::DW, 1, 10, id));
        self.emit(Insn::alu64_reg(Alu::Or, 0, 1));
        self.mov_imm(1, USER_BIT);
        self.emit(Insn::alu64_reg(Alu::Or, 0, 1));
        Ok(())
    }
}
