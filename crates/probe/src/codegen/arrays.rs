//! Arrays and statistics in BPF. Each array is a hash map whose key is
//! its keys side by side (8 bytes per long, [`STR`] per string, strings
//! zero-padded so that equal strings are equal keys), built in the
//! scratch area; each statistic is a per-CPU hash map whose value is
//! count, sum, min, max, sum of squares and the histogram's buckets
//! ([`ArrayType::value_size`]), updated without locks on the CPU the
//! event happened on and merged over CPUs when read. A full map refuses
//! the update: the array's drop counter in the globals counts it, and
//! user space warns at the end.

use kscope_bpf::{Alu, Insn, Jmp, Size};

use super::{
    BPF_ANY, BPF_NOEXIST, Gen, MAP_DELETE_ELEM, MAP_LOOKUP_ELEM, MAP_LOOKUP_PERCPU_ELEM,
    MAP_UPDATE_ELEM, MapRef, PROBE_READ_KERNEL, PROBE_READ_KERNEL_STR, Result, STR, StrLoc,
};
use crate::ast::{AssignOp, BinaryOp, Expr, ExprKind, StatOp};
use crate::check::{ArrayType, Ty};
use crate::source::Span;
use crate::stats::{Aggregate, HistKind, StatsError, WORD_HIST};

/// The layout of an array's key and value in its BPF map, which the
/// runtime and the host interpreter read too.
impl ArrayType {
    /// The bytes one key takes in the map: 8 per long, [`STR`] per
    /// string, and 8 for a statistic without keys (whose one entry has
    /// key 0).
    pub fn key_size(&self) -> u32 {
        self.keys.iter().map(|&t| slot_size(t)).sum::<u32>().max(8)
    }

    /// Where each key starts in a map key.
    pub fn key_offsets(&self) -> Vec<u32> {
        let mut at = 0;
        self.keys
            .iter()
            .map(|&t| {
                let here = at;
                at += slot_size(t);
                here
            })
            .collect()
    }

    /// A statistic's entry as its per-CPU map gives it (one value per
    /// possible CPU) merged over the CPUs.
    pub fn merge_stat(&self, raw: &[u8]) -> std::result::Result<Aggregate, StatsError> {
        let stride = (self.value_size() as usize).next_multiple_of(8);
        let slots: Vec<&[u8]> = raw.chunks_exact(stride).collect();
        Aggregate::merge_cpus(&slots, self.hist.as_ref())
    }

    /// The bytes one value takes in the map (per CPU for a statistic).
    pub fn value_size(&self) -> u32 {
        if self.stat {
            crate::stats::value_size(self.hist.as_ref()) as u32
        } else {
            slot_size(self.value)
        }
    }
}

/// The native-endian i64 at byte `at` of a map's key or value (or the
/// globals), 0 past their end.
pub fn word_at(bytes: &[u8], at: usize) -> i64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i64::from_ne_bytes)
}

/// The bytes a long or a string takes in a key or a value.
fn slot_size(t: Ty) -> u32 {
    if t == Ty::Str { STR } else { 8 }
}

impl Gen<'_> {
    /// The array `name`: its index among the maps and its type.
    fn array(&self, name: &str, span: Span) -> Result<(usize, ArrayType)> {
        self.arrays
            .iter()
            .position(|a| a.name == name)
            .map(|i| (i, self.arrays[i].clone()))
            .ok_or_else(|| self.error(span, format!("internal error: '{name}' is not an array")))
    }

    /// Builds the map key of `array[keys]` in the scratch area and
    /// returns its offset there.
    fn key(&mut self, array: &ArrayType, keys: &[Expr]) -> Result<u32> {
        let size = array.key_size();
        let at = self.alloc_scratch(size)?;
        if array.keys.contains(&Ty::Str) || keys.is_empty() {
            for i in (0..size).step_by(8) {
                self.emit(Insn::st(Size::DW, 8, (at + i) as i16, 0));
            }
        }
        for ((key, ty), offset) in keys.iter().zip(&array.keys).zip(array.key_offsets()) {
            let dst = at + offset;
            if *ty == Ty::Str {
                let s = self.scoped(|g| g.string(key))?;
                // Up to the NUL only, the zeros after it stay.
                self.emit(Insn::mov64_reg(1, 8));
                self.emit(Insn::alu64_imm(Alu::Add, 1, dst as i32));
                self.emit(Insn::mov64_imm(2, STR as i32));
                self.address(3, s);
                self.emit(Insn::call(PROBE_READ_KERNEL_STR));
            } else {
                self.scoped(|g| g.int(key))?;
                self.emit(Insn::stx(Size::DW, 8, dst as i16, 0));
            }
        }
        Ok(at)
    }

    /// r0 = the value of `map[key]`'s address, or 0.
    fn lookup(&mut self, map: usize, key: u32) {
        self.load_map(1, MapRef::Array(map));
        self.emit(Insn::mov64_reg(2, 8));
        self.emit(Insn::alu64_imm(Alu::Add, 2, key as i32));
        self.emit(Insn::call(MAP_LOOKUP_ELEM));
    }

    /// map[key] = the `size` bytes at r3, with `flags`; a full map counts
    /// a drop. Leaves bpf_map_update_elem's result in r0.
    fn update(&mut self, map: usize, array: &str, key: u32, flags: i32) {
        self.load_map(1, MapRef::Array(map));
        self.emit(Insn::mov64_reg(2, 8));
        self.emit(Insn::alu64_imm(Alu::Add, 2, key as i32));
        self.emit(Insn::mov64_imm(4, flags));
        self.emit(Insn::call(MAP_UPDATE_ELEM));
        // -E2BIG: the map is full.
        let done = self.label();
        self.jump(Insn::jmp_imm(Jmp::Ne, 0, -7, 0), done);
        let off = self.globals.drop_offset(array);
        self.emit(Insn::mov64_imm(1, 1));
        self.emit(Insn::atomic_add64(7, off as i16, 1));
        self.bind(done);
    }

    /// r0 = the address of `map[key]`'s value, inserted as zeros (`size`
    /// bytes) if missing; 0 when the full map refused it.
    fn lookup_or_insert(&mut self, map: usize, array: &ArrayType, key: u32) -> Result<()> {
        let found = self.label();
        self.lookup(map, key);
        self.jump(Insn::jmp_imm(Jmp::Ne, 0, 0, 0), found);
        self.scoped(|g| {
            let size = array.value_size();
            let zeros = g.alloc_scratch(size)?;
            for i in (0..size).step_by(8) {
                g.emit(Insn::st(Size::DW, 8, (zeros + i) as i16, 0));
            }
            g.emit(Insn::mov64_reg(3, 8));
            g.emit(Insn::alu64_imm(Alu::Add, 3, zeros as i32));
            g.update(map, &array.name, key, BPF_NOEXIST);
            Ok(())
        })?;
        self.lookup(map, key);
        self.bind(found);
        Ok(())
    }

    /// r0 = `array[keys]`, 0 when absent.
    pub(super) fn element_int(&mut self, array: &str, keys: &[Expr]) -> Result<()> {
        let (map, ty) = self.array(array, self.span)?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            g.lookup(map, key);
            g.emit(Insn::jmp_imm(Jmp::Eq, 0, 0, 1));
            g.emit(Insn::ldx(Size::DW, 0, 0, 0));
            Ok(())
        })
    }

    /// The string `array[keys]`, `""` when absent, copied to a temporary.
    pub(super) fn element_string(&mut self, array: &str, keys: &[Expr]) -> Result<StrLoc> {
        let (map, ty) = self.array(array, self.span)?;
        let t = self.str_temp()?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            g.read_string(map, key, t);
            Ok(())
        })?;
        Ok(t)
    }

    /// Copies the string under `key` of `map` to `t`, `""` when absent.
    fn read_string(&mut self, map: usize, key: u32, t: StrLoc) {
        self.lookup(map, key);
        self.emit(Insn::st(Size::B, t.reg, t.off as i16, 0));
        let absent = self.label();
        self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), absent);
        self.emit(Insn::mov64_reg(3, 0));
        self.address(1, t);
        self.emit(Insn::mov64_imm(2, STR as i32));
        self.emit(Insn::call(PROBE_READ_KERNEL));
        self.bind(absent);
    }

    /// r0 = 1 if `array[keys]` exists.
    pub(super) fn contains(&mut self, array: &str, keys: &[Expr]) -> Result<()> {
        let (map, ty) = self.array(array, self.span)?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            g.lookup(map, key);
            g.emit(Insn::jmp_imm(Jmp::Eq, 0, 0, 1));
            g.emit(Insn::mov64_imm(0, 1));
            Ok(())
        })
    }

    /// `delete array[keys]`, or `delete s` of a statistic without keys.
    pub(super) fn delete_element(&mut self, array: &str, keys: &[Expr]) -> Result<()> {
        let (map, ty) = self.array(array, self.span)?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            g.load_map(1, MapRef::Array(map));
            g.emit(Insn::mov64_reg(2, 8));
            g.emit(Insn::alu64_imm(Alu::Add, 2, key as i32));
            g.emit(Insn::call(MAP_DELETE_ELEM));
            Ok(())
        })
    }

    /// An assignment to an integer element; r0 = the value assigned.
    pub(super) fn assign_element_int(
        &mut self,
        op: AssignOp,
        array: &str,
        keys: &[Expr],
        value: &Expr,
        span: Span,
    ) -> Result<()> {
        let (map, ty) = self.array(array, self.span)?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            let slot = g.push_slot()?;
            g.int(value)?;
            g.emit(Insn::stx(Size::DW, 10, slot, 0));
            match op {
                AssignOp::Assign => {
                    g.emit(Insn::mov64_reg(3, 10));
                    g.emit(Insn::alu64_imm(Alu::Add, 3, i32::from(slot)));
                    g.update(map, array, key, BPF_ANY);
                    g.emit(Insn::ldx(Size::DW, 0, 10, slot));
                }
                AssignOp::Compound(BinaryOp::Add | BinaryOp::Sub) => {
                    if op == AssignOp::Compound(BinaryOp::Sub) {
                        g.emit(Insn::alu64_imm(Alu::Neg, 0, 0));
                        g.emit(Insn::stx(Size::DW, 10, slot, 0));
                    }
                    g.add_to_element(map, &ty, key, slot)?;
                }
                AssignOp::Compound(bin) => {
                    g.lookup_or_insert(map, &ty, key)?;
                    let dropped = g.label();
                    g.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), dropped);
                    let at = g.push_slot()?;
                    g.emit(Insn::stx(Size::DW, 10, at, 0));
                    g.emit(Insn::ldx(Size::DW, 0, 0, 0));
                    g.emit(Insn::ldx(Size::DW, 1, 10, slot));
                    g.arith(bin, span)?;
                    g.emit(Insn::ldx(Size::DW, 1, 10, at));
                    g.emit(Insn::stx(Size::DW, 1, 0, 0));
                    g.bind(dropped);
                }
                AssignOp::Aggregate => {
                    return Err(g.error(span, "internal error: '<<<' as an assignment"));
                }
            }
            Ok(())
        })
    }

    /// `array[key] += *(r10 + slot)` atomically; r0 = the new value (0
    /// when the full map refused the entry).
    fn add_to_element(&mut self, map: usize, ty: &ArrayType, key: u32, slot: i16) -> Result<()> {
        self.lookup_or_insert(map, ty, key)?;
        let dropped = self.label();
        self.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), dropped);
        self.emit(Insn::ldx(Size::DW, 1, 10, slot));
        self.emit(Insn::atomic_add64(0, 0, 1));
        self.emit(Insn::ldx(Size::DW, 0, 0, 0));
        self.bind(dropped);
        Ok(())
    }

    /// `array[keys]++` and the others; r0 = the value the expression has.
    pub(super) fn crement_element(
        &mut self,
        array: &str,
        keys: &[Expr],
        delta: i32,
        post: bool,
    ) -> Result<()> {
        let (map, ty) = self.array(array, self.span)?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            let slot = g.push_slot()?;
            g.emit(Insn::st(Size::DW, 10, slot, delta));
            g.add_to_element(map, &ty, key, slot)?;
            if post {
                g.emit(Insn::alu64_imm(Alu::Sub, 0, delta));
            }
            Ok(())
        })
    }

    /// An assignment to a string element; the value assigned. The keys
    /// are evaluated once, before the value, as for a long element and in
    /// kscope's process.
    pub(super) fn assign_element_string(
        &mut self,
        op: AssignOp,
        array: &str,
        keys: &[Expr],
        value: &Expr,
    ) -> Result<StrLoc> {
        let (map, ty) = self.array(array, self.span)?;
        let t = self.str_temp()?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            let v = match op {
                AssignOp::Assign => g.string(value)?,
                _ => {
                    let old = g.str_temp()?;
                    g.read_string(map, key, old);
                    let more = g.string(value)?;
                    g.concat(old, more)?
                }
            };
            g.copy_str(t, v);
            g.address(3, t);
            g.update(map, array, key, BPF_ANY);
            Ok(())
        })?;
        Ok(t)
    }

    /// `target <<< value`.
    pub(super) fn aggregate_add(&mut self, target: &Expr, value: &Expr) -> Result<()> {
        let (array, keys): (&str, &[Expr]) = match &target.kind {
            ExprKind::Var(name) => (name, &[]),
            ExprKind::Index { array, keys } => (array, keys),
            _ => return Err(self.error(target.span, "internal error: '<<<' to a non-statistic")),
        };
        let (map, ty) = self.array(array, target.span)?;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            let v = g.push_slot()?;
            g.int(value)?;
            g.emit(Insn::stx(Size::DW, 10, v, 0));
            g.lookup_or_insert(map, &ty, key)?;
            let done = g.label();
            g.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), done);
            g.emit(Insn::mov64_reg(9, 0));
            g.emit(Insn::ldx(Size::DW, 1, 10, v));
            // min and max: the first value sets both.
            g.emit(Insn::ldx(Size::DW, 2, 9, 0));
            let set = g.label();
            let max = g.label();
            let after = g.label();
            g.jump(Insn::jmp_imm(Jmp::Eq, 2, 0, 0), set);
            g.emit(Insn::ldx(Size::DW, 3, 9, 16));
            g.jump(Insn::jmp_reg(Jmp::Sge, 1, 3, 0), max);
            g.emit(Insn::stx(Size::DW, 9, 16, 1));
            g.bind(max);
            g.emit(Insn::ldx(Size::DW, 3, 9, 24));
            g.jump(Insn::jmp_reg(Jmp::Sle, 1, 3, 0), after);
            g.emit(Insn::stx(Size::DW, 9, 24, 1));
            g.goto(after);
            g.bind(set);
            g.emit(Insn::stx(Size::DW, 9, 16, 1));
            g.emit(Insn::stx(Size::DW, 9, 24, 1));
            g.bind(after);
            // count, sum, sum of squares.
            g.emit(Insn::alu64_imm(Alu::Add, 2, 1));
            g.emit(Insn::stx(Size::DW, 9, 0, 2));
            g.emit(Insn::ldx(Size::DW, 2, 9, 8));
            g.emit(Insn::alu64_reg(Alu::Add, 2, 1));
            g.emit(Insn::stx(Size::DW, 9, 8, 2));
            g.emit(Insn::mov64_reg(2, 1));
            g.emit(Insn::alu64_reg(Alu::Mul, 2, 1));
            g.emit(Insn::ldx(Size::DW, 3, 9, 32));
            g.emit(Insn::alu64_reg(Alu::Add, 3, 2));
            g.emit(Insn::stx(Size::DW, 9, 32, 3));
            if let Some(hist) = ty.hist {
                g.bucket(hist);
                // r0 = the bucket, bounded for the verifier.
                let last = hist.buckets() as i32 - 1;
                g.emit(Insn::jmp_imm(Jmp::Sle, 0, last, 1));
                g.emit(Insn::mov64_imm(0, last));
                g.emit(Insn::jmp_imm(Jmp::Sge, 0, 0, 1));
                g.emit(Insn::mov64_imm(0, 0));
                g.emit(Insn::alu64_imm(Alu::Lsh, 0, 3));
                g.emit(Insn::alu64_reg(Alu::Add, 0, 9));
                g.emit(Insn::ldx(Size::DW, 1, 0, (8 * WORD_HIST) as i16));
                g.emit(Insn::alu64_imm(Alu::Add, 1, 1));
                g.emit(Insn::stx(Size::DW, 0, (8 * WORD_HIST) as i16, 1));
            }
            g.bind(done);
            Ok(())
        })
    }

    /// r0 = the histogram bucket of the value in r1.
    fn bucket(&mut self, hist: HistKind) {
        match hist {
            HistKind::Log => {
                // 64 for 0; 65 + log2(v) for v > 0; 63 - log2(-v) below.
                let zero = self.label();
                let end = self.label();
                self.emit(Insn::mov64_imm(4, 1));
                self.jump(Insn::jmp_imm(Jmp::Eq, 1, 0, 0), zero);
                self.emit(Insn::jmp_imm(Jmp::Sgt, 1, 0, 2));
                self.emit(Insn::alu64_imm(Alu::Neg, 1, 0));
                self.emit(Insn::mov64_imm(4, -1));
                // r2 = floor(log2(r1)), by halving the range each step.
                self.emit(Insn::mov64_imm(2, 0));
                for shift in [32, 16, 8, 4, 2, 1] {
                    self.emit(Insn::mov64_reg(3, 1));
                    self.emit(Insn::alu64_imm(Alu::Rsh, 3, shift));
                    self.emit(Insn::jmp_imm(Jmp::Eq, 3, 0, 2));
                    self.emit(Insn::mov64_reg(1, 3));
                    self.emit(Insn::alu64_imm(Alu::Add, 2, shift));
                }
                // 64 + sign * (log2 + 1).
                self.emit(Insn::alu64_imm(Alu::Add, 2, 1));
                self.emit(Insn::alu64_reg(Alu::Mul, 2, 4));
                self.emit(Insn::mov64_imm(0, 64));
                self.emit(Insn::alu64_reg(Alu::Add, 0, 2));
                self.goto(end);
                self.bind(zero);
                self.emit(Insn::mov64_imm(0, 64));
                self.bind(end);
            }
            HistKind::Linear(linear) => {
                // 0 below lo; else q = (v - lo) / step (unsigned), the
                // overflow bucket when q is past the in-range ones, else
                // 1 + q: SystemTap's buckets (stats.rs).
                let overflow = linear.in_range_buckets() as i32 + 1;
                let end = self.label();
                self.emit(Insn::mov64_imm(0, 0));
                self.mov_imm(2, linear.lo());
                self.jump(Insn::jmp_reg(Jmp::Slt, 1, 2, 0), end);
                self.emit(Insn::mov64_reg(0, 1));
                self.emit(Insn::alu64_reg(Alu::Sub, 0, 2));
                self.mov_imm(2, linear.step());
                self.emit(Insn::alu64_reg(Alu::Div, 0, 2));
                self.emit(Insn::alu64_imm(Alu::Add, 0, 1));
                self.jump(Insn::jmp_imm(Jmp::Le, 0, overflow - 1, 0), end);
                self.emit(Insn::mov64_imm(0, overflow));
                self.bind(end);
            }
        }
    }

    /// r0 = `op` of the statistic `operand`, merged over every CPU. An
    /// empty statistic has count and sum 0; its min, max, average and
    /// variance are a runtime error, as in SystemTap.
    pub(super) fn stat_read(&mut self, op: StatOp, operand: &Expr, span: Span) -> Result<()> {
        let (array, keys): (&str, &[Expr]) = match &operand.kind {
            ExprKind::Var(name) => (name, &[]),
            ExprKind::Index { array, keys } => (array, keys),
            _ => return Err(self.error(operand.span, "internal error: not a statistic")),
        };
        let (map, ty) = self.array(array, operand.span)?;
        let cpus = self.options.cpus.max(1) as i32;
        self.scoped(|g| {
            let key = g.key(&ty, keys)?;
            // count, sum, min, max, sum of squares; the CPU.
            let acc: Vec<i16> = (0..5).map(|_| g.push_slot()).collect::<Result<_>>()?;
            let cpu = g.push_slot()?;
            for &slot in &acc {
                g.emit(Insn::st(Size::DW, 10, slot, 0));
            }
            g.emit(Insn::st(Size::DW, 10, cpu, 0));
            let top = g.label();
            let next = g.label();
            let done = g.label();
            g.bind(top);
            g.emit(Insn::ldx(Size::DW, 3, 10, cpu));
            g.jump(Insn::jmp_imm(Jmp::Sge, 3, cpus, 0), done);
            g.load_map(1, MapRef::Array(map));
            g.emit(Insn::mov64_reg(2, 8));
            g.emit(Insn::alu64_imm(Alu::Add, 2, key as i32));
            g.emit(Insn::call(MAP_LOOKUP_PERCPU_ELEM));
            g.jump(Insn::jmp_imm(Jmp::Eq, 0, 0, 0), next);
            g.emit(Insn::ldx(Size::DW, 1, 0, 0));
            g.jump(Insn::jmp_imm(Jmp::Eq, 1, 0, 0), next);
            // min and max: the first CPU with values sets them.
            let first = g.label();
            let merged = g.label();
            g.emit(Insn::ldx(Size::DW, 2, 10, acc[0]));
            g.jump(Insn::jmp_imm(Jmp::Eq, 2, 0, 0), first);
            g.emit(Insn::ldx(Size::DW, 2, 0, 16));
            g.emit(Insn::ldx(Size::DW, 3, 10, acc[2]));
            g.emit(Insn::jmp_reg(Jmp::Sge, 2, 3, 1));
            g.emit(Insn::stx(Size::DW, 10, acc[2], 2));
            g.emit(Insn::ldx(Size::DW, 2, 0, 24));
            g.emit(Insn::ldx(Size::DW, 3, 10, acc[3]));
            g.emit(Insn::jmp_reg(Jmp::Sle, 2, 3, 1));
            g.emit(Insn::stx(Size::DW, 10, acc[3], 2));
            g.goto(merged);
            g.bind(first);
            g.emit(Insn::ldx(Size::DW, 2, 0, 16));
            g.emit(Insn::stx(Size::DW, 10, acc[2], 2));
            g.emit(Insn::ldx(Size::DW, 2, 0, 24));
            g.emit(Insn::stx(Size::DW, 10, acc[3], 2));
            g.bind(merged);
            for (word, slot) in [(0, acc[0]), (8, acc[1]), (32, acc[4])] {
                g.emit(Insn::ldx(Size::DW, 2, 0, word));
                g.emit(Insn::ldx(Size::DW, 3, 10, slot));
                g.emit(Insn::alu64_reg(Alu::Add, 3, 2));
                g.emit(Insn::stx(Size::DW, 10, slot, 3));
            }
            g.bind(next);
            g.emit(Insn::ldx(Size::DW, 3, 10, cpu));
            g.emit(Insn::alu64_imm(Alu::Add, 3, 1));
            g.emit(Insn::stx(Size::DW, 10, cpu, 3));
            g.goto(top);
            g.bind(done);
            if !matches!(op, StatOp::Count | StatOp::Sum) {
                let some = g.label();
                g.emit(Insn::ldx(Size::DW, 0, 10, acc[0]));
                g.jump(Insn::jmp_imm(Jmp::Ne, 0, 0, 0), some);
                g.runtime_error(
                    span,
                    &format!(
                        "empty aggregate: {}() of a statistic with no values",
                        op.name()
                    ),
                )?;
                g.bind(some);
            }
            match op {
                StatOp::Count => g.emit(Insn::ldx(Size::DW, 0, 10, acc[0])),
                StatOp::Sum => g.emit(Insn::ldx(Size::DW, 0, 10, acc[1])),
                StatOp::Min => g.emit(Insn::ldx(Size::DW, 0, 10, acc[2])),
                StatOp::Max => g.emit(Insn::ldx(Size::DW, 0, 10, acc[3])),
                StatOp::Avg => {
                    g.emit(Insn::ldx(Size::DW, 0, 10, acc[1]));
                    g.emit(Insn::ldx(Size::DW, 1, 10, acc[0]));
                    g.arith(BinaryOp::Div, span)?;
                }
                StatOp::Variance => {
                    // stats::variance_of, step by step: m = sum / n,
                    // r = sum - n·m, S = sumsq - 2·m·sum + n·m²,
                    // (S - ceil(r²/n)) / (n - 1); 0 for one value.
                    let one = g.label();
                    let end = g.label();
                    let m = g.push_slot()?;
                    let spread = g.push_slot()?;
                    g.emit(Insn::ldx(Size::DW, 1, 10, acc[0]));
                    g.jump(Insn::jmp_imm(Jmp::Le, 1, 1, 0), one);
                    g.emit(Insn::ldx(Size::DW, 0, 10, acc[1]));
                    g.arith(BinaryOp::Div, span)?;
                    g.emit(Insn::stx(Size::DW, 10, m, 0));
                    g.emit(Insn::ldx(Size::DW, 1, 10, acc[1]));
                    g.emit(Insn::alu64_reg(Alu::Mul, 0, 1));
                    g.emit(Insn::alu64_imm(Alu::Lsh, 0, 1));
                    g.emit(Insn::ldx(Size::DW, 1, 10, acc[4]));
                    g.emit(Insn::alu64_reg(Alu::Sub, 1, 0));
                    g.emit(Insn::ldx(Size::DW, 0, 10, m));
                    g.emit(Insn::alu64_reg(Alu::Mul, 0, 0));
                    g.emit(Insn::ldx(Size::DW, 2, 10, acc[0]));
                    g.emit(Insn::alu64_reg(Alu::Mul, 0, 2));
                    g.emit(Insn::alu64_reg(Alu::Add, 1, 0));
                    g.emit(Insn::stx(Size::DW, 10, spread, 1));
                    // r² rounded up over n (unsigned: r² >= 0, n > 0).
                    g.emit(Insn::ldx(Size::DW, 0, 10, m));
                    g.emit(Insn::alu64_reg(Alu::Mul, 0, 2));
                    g.emit(Insn::ldx(Size::DW, 1, 10, acc[1]));
                    g.emit(Insn::alu64_reg(Alu::Sub, 1, 0));
                    g.emit(Insn::alu64_reg(Alu::Mul, 1, 1));
                    g.emit(Insn::alu64_reg(Alu::Add, 1, 2));
                    g.emit(Insn::alu64_imm(Alu::Sub, 1, 1));
                    g.emit(Insn::alu64_reg(Alu::Div, 1, 2));
                    g.emit(Insn::ldx(Size::DW, 0, 10, spread));
                    g.emit(Insn::alu64_reg(Alu::Sub, 0, 1));
                    g.emit(Insn::ldx(Size::DW, 1, 10, acc[0]));
                    g.emit(Insn::alu64_imm(Alu::Sub, 1, 1));
                    g.arith(BinaryOp::Div, span)?;
                    g.goto(end);
                    g.bind(one);
                    g.emit(Insn::mov64_imm(0, 0));
                    g.bind(end);
                }
            }
            Ok(())
        })
    }
}
