//! The code of a fan-in ([`FanIn`]): one program on
//! `raw_syscalls:sys_enter` (or `sys_exit`) standing for many syscall
//! probes. Its prologue reads the record's syscall number (`long id`)
//! and leaves at once unless the number is one the glob matched and the
//! syscall is a 64-bit one; its context reads give the syscall's name
//! and `pp()` by that number, and `argstr` the raw arguments with the
//! user strings of the syscalls that have them, formatted in user space
//! by number ([`SyscallArgs`]).
//!
//! The set of numbers is a bitmap held in the instructions: the number's
//! 64-bit word is picked by a chain of compares, each loading its word
//! as an immediate, and the bit tested with a shift. The verifier sees
//! only constants and scalars there: no map value to bound, no helper,
//! and one short path per word. Names are fixed-width tables in the
//! read-only map, indexed by number after a bound check; every fan-in of
//! a script shares them.
//!
//! Compat syscalls: `raw_syscalls` also fires for a 32-bit syscall (an
//! ia32 program, or `int $0x80` from a 64-bit one) with its ia32 number,
//! which names another syscall here (ia32's 20 is getpid, x86-64's
//! writev); the kernel's `syscalls:*` tracepoints skip them
//! (`trace_get_syscall_nr` gives -1 when `in_ia32_syscall()`). The
//! prologue does the same test: `TS_COMPAT` in the current task's
//! `thread_info.status`, at the offset BTF gives
//! ([`super::Options::compat_status`]). Without BTF the test is left out
//! and compat syscalls are counted under their ia32 numbers (documented
//! in docs/PROBE-LANGUAGE.md).

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::is_user_string;
use super::{
    GET_CURRENT_TASK, Gen, KEY_SLOT, Label, MapRef, PROBE_READ_USER_STR, PSEUDO_MAP_VALUE, Result,
    STR, StrLoc,
};
use crate::catalog::TpField;
use crate::points::{AttachKind, FanIn};
use crate::syscall_table::SYSCALLS;

/// `TS_COMPAT` in x86's `thread_info.status`: a 32-bit syscall is
/// running (arch/x86/include/asm/thread_info.h).
const TS_COMPAT: i32 = 0x0002;

/// The width of an entry of the name table: the longest tracepoint name
/// (23 bytes: `landlock_create_ruleset`) and its NUL, rounded up to 8.
const NAME_WIDTH: u32 = 24;

/// The width of an entry of the `pp()` tables: `syscall.`, the longest
/// name, `.return` and the NUL (39 bytes), rounded up to 8.
const PP_WIDTH: u32 = 40;

/// How many arguments a `raw_syscalls:sys_enter` record carries
/// (`unsigned long args[6]`).
const RAW_ARGS: u32 = 6;

/// How user space formats a fan-in's `argstr`: the record holds the
/// syscall number (8 bytes), the six raw arguments (8 bytes each), then
/// [`STR`] bytes of user string for each of `string_positions`, read
/// only for the syscalls whose argument there is a `const char *`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallArgs {
    /// The argument positions that are a user string for some syscall.
    pub string_positions: Vec<u32>,
    /// Each syscall's number and arguments (its `sys_enter_NAME` fields),
    /// by number.
    pub syscalls: Vec<(u32, Vec<TpField>)>,
}

impl SyscallArgs {
    fn of(fan_in: &FanIn) -> SyscallArgs {
        let syscalls: Vec<(u32, Vec<TpField>)> = fan_in
            .syscalls
            .iter()
            .map(|(nr, a)| {
                (
                    *nr,
                    a.context.targets.iter().map(|(_, f)| f.clone()).collect(),
                )
            })
            .collect();
        let string_positions = (0..RAW_ARGS)
            .filter(|&p| {
                syscalls
                    .iter()
                    .any(|(_, fields)| fields.get(p as usize).is_some_and(is_user_string))
            })
            .collect();
        SyscallArgs {
            string_positions,
            syscalls,
        }
    }

    /// The bytes of the record that this takes.
    pub fn size(&self) -> u32 {
        8 + 8 * RAW_ARGS + STR * self.string_positions.len() as u32
    }

    /// The arguments of syscall `nr` and its bytes in the layout that a
    /// fixed `argstr` has (each argument's 8 bytes, followed by [`STR`]
    /// bytes of string for a user string), rebuilt from `bytes`, this
    /// slot of a record; `None` when the number is not one of these.
    pub fn fixed_layout(&self, bytes: &[u8]) -> Option<(&[TpField], Vec<u8>)> {
        let nr = u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?);
        let i = self
            .syscalls
            .binary_search_by_key(&nr, |(n, _)| u64::from(*n))
            .ok()?;
        let fields = &self.syscalls[i].1;
        let strings = 8 + 8 * RAW_ARGS as usize;
        let mut out = Vec::new();
        for (position, field) in fields.iter().enumerate().take(RAW_ARGS as usize) {
            let at = 8 + 8 * position;
            out.extend_from_slice(bytes.get(at..at + 8)?);
            if is_user_string(field) {
                let slot = self
                    .string_positions
                    .iter()
                    .position(|&p| p as usize == position)?;
                let at = strings + STR as usize * slot;
                out.extend_from_slice(bytes.get(at..at + STR as usize)?);
            }
        }
        Some((fields, out))
    }
}

impl<'a> Gen<'a> {
    /// The fan-in this program stands for, if it is one.
    fn fan_in(&self) -> Option<&'a FanIn> {
        match &self.attachment.kind {
            AttachKind::SyscallFanIn(f) => Some(f),
            _ => None,
        }
    }

    /// Whether this program is a fan-in's.
    pub(super) fn is_fan_in(&self) -> bool {
        self.fan_in().is_some()
    }

    /// For a fan-in, with the record in r6: leaves the program unless the
    /// record's syscall number is one of the fan-in's and the syscall is
    /// not a compat one. Emitted before anything else, as it runs for
    /// every syscall of the system; it uses the map key's stack slot,
    /// which is written after it.
    pub(super) fn fan_in_filter(&mut self) -> Result<()> {
        let Some(fan_in) = self.fan_in() else {
            return Ok(());
        };
        let numbers: Vec<u32> = fan_in.syscalls.iter().map(|(nr, _)| *nr).collect();
        let exit = self.exit_label;
        self.load_number(fan_in, 2);
        self.number_in(2, &numbers, exit);
        if let Some(status) = self.options.compat_status {
            self.emit(Insn::call(GET_CURRENT_TASK));
            self.emit(Insn::mov64_reg(3, 0));
            self.emit(Insn::alu64_imm(Alu::Add, 3, status as i32));
            self.emit(Insn::st(Size::W, 10, KEY_SLOT, 0));
            self.read_kernel_into(KEY_SLOT, 4);
            self.emit(Insn::ldx(Size::W, 1, 10, KEY_SLOT));
            self.emit(Insn::alu64_imm(Alu::And, 1, TS_COMPAT));
            self.jump(Insn::jmp_imm(Jmp::Ne, 1, 0, 0), exit);
        }
        Ok(())
    }

    /// `reg` = the record's syscall number.
    fn load_number(&mut self, fan_in: &FanIn, reg: u8) {
        self.emit(Insn::ldx(Size::DW, reg, 6, fan_in.id_offset as i16));
    }

    /// Jumps to `miss` unless the number in `reg` is one of `numbers`;
    /// `reg` is kept, r3 to r5 are not. Numbers past the last (and
    /// negative ones, compared unsigned) miss at once.
    fn number_in(&mut self, reg: u8, numbers: &[u32], miss: Label) {
        let last = numbers.iter().copied().max().unwrap_or(0);
        let mut words = vec![0u64; last as usize / 64 + 1];
        for &nr in numbers {
            words[nr as usize / 64] |= 1 << (nr % 64);
        }
        self.jump(Insn::jmp_imm(Jmp::Gt, reg, last as i32, 0), miss);
        self.emit(Insn::mov64_reg(3, reg));
        self.emit(Insn::alu64_imm(Alu::Rsh, 3, 6));
        self.emit(Insn::mov64_imm(4, 0));
        let found = self.label();
        for (k, word) in words.iter().enumerate().filter(|(_, w)| **w != 0) {
            let next = self.label();
            self.jump(Insn::jmp_imm(Jmp::Ne, 3, k as i32, 0), next);
            self.emit_wide(Insn::ld_imm64(4, 0, *word));
            self.goto(found);
            self.bind(next);
        }
        self.bind(found);
        self.emit(Insn::mov64_reg(5, reg));
        self.emit(Insn::alu64_imm(Alu::And, 5, 63));
        self.emit(Insn::alu64_reg(Alu::Rsh, 4, 5));
        self.emit(Insn::alu64_imm(Alu::And, 4, 1));
        self.jump(Insn::jmp_imm(Jmp::Eq, 4, 0, 0), miss);
    }

    /// `name` and `probefunc()` of a fan-in: the syscall's name.
    pub(super) fn fan_in_name(&mut self) -> Result<StrLoc> {
        let table = string_table(NAME_WIDTH, |name| name.to_string());
        self.table_string(&table, NAME_WIDTH)
    }

    /// `pp()` of a fan-in: `syscall.NAME`, or `syscall.NAME.return`.
    pub(super) fn fan_in_pp(&mut self) -> Result<StrLoc> {
        let suffix = match self.fan_in() {
            Some(f) if f.ret => ".return",
            _ => "",
        };
        let table = string_table(PP_WIDTH, |name| format!("syscall.{name}{suffix}"));
        self.table_string(&table, PP_WIDTH)
    }

    /// A new string: the entry of `table` (one of `width` bytes per
    /// syscall number) for the record's number.
    fn table_string(&mut self, table: &[u8], width: u32) -> Result<StrLoc> {
        let Some(fan_in) = self.fan_in() else {
            return Err(self.error(self.span, "internal error: a syscall name outside a fan-in"));
        };
        let at = self.rodata_table(table);
        let entries = table.len() as u32 / width;
        let t = self.str_temp()?;
        self.emit(Insn::st(Size::B, 8, t.off as i16, 0));
        let done = self.label();
        self.load_number(fan_in, 2);
        self.jump(Insn::jmp_imm(Jmp::Ge, 2, entries as i32, 0), done);
        self.emit(Insn::alu64_imm(Alu::Mul, 2, width as i32));
        self.relocations.push((self.insns.len(), MapRef::Rodata));
        self.emit_wide(Insn::ld_imm64(1, PSEUDO_MAP_VALUE, u64::from(at) << 32));
        self.emit(Insn::alu64_reg(Alu::Add, 1, 2));
        for i in (0..width).step_by(8) {
            self.emit(Insn::ldx(Size::DW, 3, 1, i as i16));
            self.emit(Insn::stx(Size::DW, 8, (t.off + i) as i16, 3));
        }
        self.bind(done);
        Ok(t)
    }

    /// The offset of `table` in the read-only map: of a copy there
    /// already (each fan-in's name table is the same), or appended at an
    /// 8-byte boundary.
    fn rodata_table(&mut self, table: &[u8]) -> u32 {
        let found = (0..self.rodata.len())
            .step_by(8)
            .find(|&at| self.rodata.get(at..at + table.len()) == Some(table));
        let at = found.unwrap_or_else(|| {
            let at = self.rodata.len().next_multiple_of(8);
            self.rodata.resize(at, 0);
            self.rodata.extend_from_slice(table);
            at
        });
        at as u32
    }

    /// How the record of a fan-in's `argstr` is laid out.
    pub(super) fn fan_in_args(&self) -> Option<SyscallArgs> {
        self.fan_in().map(SyscallArgs::of)
    }

    /// Writes a fan-in's `argstr` at scratch offset `at` (the layout of
    /// [`SyscallArgs`]); returns the bytes it takes.
    pub(super) fn fan_in_argstr(&mut self, at: u32) -> Result<u32> {
        let (Some(fan_in), Some(args)) = (self.fan_in(), self.fan_in_args()) else {
            return Err(self.error(self.span, "internal error: argstr of a fan-in outside one"));
        };
        let raw = raw_args_offset(fan_in);
        self.load_number(fan_in, 2);
        self.emit(Insn::stx(Size::DW, 8, at as i16, 2));
        for p in 0..RAW_ARGS {
            self.emit(Insn::ldx(Size::DW, 1, 6, (raw + 8 * p) as i16));
            self.emit(Insn::stx(Size::DW, 8, (at + 8 + 8 * p) as i16, 1));
        }
        for (slot, &p) in args.string_positions.iter().enumerate() {
            let numbers: Vec<u32> = args
                .syscalls
                .iter()
                .filter(|(_, f)| f.get(p as usize).is_some_and(is_user_string))
                .map(|(nr, _)| *nr)
                .collect();
            let to = StrLoc {
                reg: 8,
                off: at + 8 + 8 * RAW_ARGS + STR * slot as u32,
            };
            let skip = self.label();
            self.load_number(fan_in, 2);
            self.number_in(2, &numbers, skip);
            self.emit(Insn::ldx(Size::DW, 3, 6, (raw + 8 * p) as i16));
            self.address(1, to);
            self.emit(Insn::mov64_imm(2, STR as i32));
            self.emit(Insn::call(PROBE_READ_USER_STR));
            self.empty_on_error(to);
            self.bind(skip);
        }
        Ok(args.size())
    }
}

/// The offset of `args[0]` in a `raw_syscalls:sys_enter` record, from
/// its format (resolution makes a fan-in only when it has `args`).
fn raw_args_offset(fan_in: &FanIn) -> u32 {
    fan_in
        .tracepoint
        .field("args")
        .map_or(fan_in.id_offset + 8, |f| f.offset)
}

/// A table of `width` bytes per syscall number, from 0 to the last in
/// the syscall table: `text` of each syscall's name, NUL-padded; empty
/// for the numbers without a syscall.
fn string_table(width: u32, text: impl Fn(&str) -> String) -> Vec<u8> {
    let last = SYSCALLS.last().map_or(0, |(nr, _)| *nr);
    let mut table = vec![0u8; (last as usize + 1) * width as usize];
    for (nr, name) in SYSCALLS {
        let entry = text(name);
        let bytes = &entry.as_bytes()[..entry.len().min(width as usize - 1)];
        let at = *nr as usize * width as usize;
        table[at..at + bytes.len()].copy_from_slice(bytes);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_point_fits_its_table_with_its_nul() {
        for (_, name) in SYSCALLS {
            assert!(name.len() < NAME_WIDTH as usize, "{name}");
            assert!(
                format!("syscall.{name}.return").len() < PP_WIDTH as usize,
                "{name}"
            );
        }
    }

    fn field(name: &str, c_type: &str, position: u32) -> TpField {
        TpField {
            name: name.to_string(),
            c_type: c_type.to_string(),
            offset: 16 + 8 * position,
            size: 8,
            signed: false,
            kind: crate::catalog::FieldKind::Int,
        }
    }

    #[test]
    fn argstr_bytes_are_rebuilt_in_the_fixed_layout_of_the_records_syscall() {
        // openat (257): a string at position 1; close (3): none; a
        // made-up syscall 300 with a string at position 0.
        let args = SyscallArgs {
            string_positions: vec![0, 1],
            syscalls: vec![
                (3, vec![field("fd", "unsigned int", 0)]),
                (
                    257,
                    vec![
                        field("dfd", "int", 0),
                        field("filename", "const char *", 1),
                        field("flags", "int", 2),
                        field("mode", "umode_t", 3),
                    ],
                ),
                (300, vec![field("path", "const char *", 0)]),
            ],
        };
        assert_eq!(args.size(), 8 + 48 + 2 * STR);
        let mut record = vec![0u8; args.size() as usize];
        let put = |record: &mut Vec<u8>, at: usize, v: u64| {
            record[at..at + 8].copy_from_slice(&v.to_ne_bytes())
        };
        put(&mut record, 0, 257);
        for (p, v) in [(0, (-100i64) as u64), (1, 0x7000), (2, 0x80000), (3, 0)] {
            put(&mut record, 8 + 8 * p, v);
        }
        let second = 8 + 48 + STR as usize;
        record[second..second + 4].copy_from_slice(b"/etc");
        let (fields, bytes) = args.fixed_layout(&record).expect("openat is known");
        assert_eq!(fields.len(), 4);
        // dfd, filename and its string, flags, mode.
        assert_eq!(bytes.len(), 4 * 8 + STR as usize);
        assert_eq!(&bytes[..8], &((-100i64) as u64).to_ne_bytes());
        assert_eq!(&bytes[16..20], b"/etc");
        assert_eq!(
            &bytes[16 + STR as usize..24 + STR as usize],
            &0x80000u64.to_ne_bytes()
        );
        // close has no string; an unknown number or a short record gives
        // nothing.
        put(&mut record, 0, 3);
        assert_eq!(args.fixed_layout(&record).expect("close").1.len(), 8);
        put(&mut record, 0, 4);
        assert!(args.fixed_layout(&record).is_none());
        assert!(args.fixed_layout(&record[..20]).is_none());
    }

    #[test]
    fn a_name_table_entry_is_found_at_its_number() {
        let table = string_table(NAME_WIDTH, |n| n.to_string());
        let entry = |nr: usize| {
            let at = nr * NAME_WIDTH as usize;
            let bytes = &table[at..at + NAME_WIDTH as usize];
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        if cfg!(target_arch = "x86_64") {
            assert_eq!(entry(257), "openat");
            assert_eq!(entry(0), "read");
            assert_eq!(entry(134), "", "no syscall at 134");
        }
    }
}
