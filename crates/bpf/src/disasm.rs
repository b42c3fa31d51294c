//! A disassembler for eBPF instructions, in the notation of the kernel's
//! verifier log and `bpftool prog dump xlated` (kernel/bpf/disasm.c)
//! without the opcode column: "r0 += 1", "if r1 s> 0x5 goto +3",
//! "*(u32 *)(r10 -8) = r1". Jumps show the relative offset ("goto +3",
//! where the kernel writes "goto pc+3"), helper calls their number
//! ("call 14"), and a map fd loaded with ld_imm64 "r1 = map[fd 7] ll".
//! Every class is decoded from the code byte; what the kernel would not
//! accept reads "(bad 0xNN)" with the reason.

use crate::insn::{Insn, PSEUDO_MAP_FD};

const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_ALU64: u8 = 0x07;

const BPF_X: u8 = 0x08;

const BPF_IMM: u8 = 0x00;
const BPF_ABS: u8 = 0x20;
const BPF_IND: u8 = 0x40;
const BPF_MEM: u8 = 0x60;
const BPF_MEMSX: u8 = 0x80;
const BPF_ATOMIC: u8 = 0xc0;

const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;

const BPF_FETCH: i32 = 0x01;
const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;
const BPF_LOAD_ACQ: i32 = 0x100;
const BPF_STORE_REL: i32 = 0x110;

/// `src` of an ld_imm64 whose first immediate is a map fd and whose
/// second is an offset into the map's value.
const PSEUDO_MAP_VALUE: u8 = 2;
/// `src` of a call to a function of the same program.
const PSEUDO_CALL: u8 = 1;
/// `src` of a call to a kernel function (kfunc) by BTF id.
const PSEUDO_KFUNC_CALL: u8 = 2;

/// One line per instruction slot, in bpftool's notation without the
/// opcode column ("r1 = r6", "r0 += 1", "if r1 s> 0x5 goto +3",
/// "*(u32 *)(r10 -8) = r1", "r0 = *(u8 *)(r1 +0)", "call 14", "exit",
/// "r1 = map[fd 7] ll", "r1 = 0x1234 ll", "lock *(u64 *)(r1 +0) += r2",
/// "goto +3"). The second slot of an ld_imm64 gives an empty string, so
/// that line `i` is instruction `i` and jump targets can be counted.
/// Decodes every class generically from the code byte (ALU64 and ALU as
/// `r` and `w` registers, JMP and JMP32, LD/LDX/ST/STX, atomics), and
/// shows "(bad 0xNN: why)" for what the kernel would not accept; never
/// panics.
pub fn disassemble(insns: &[Insn]) -> Vec<String> {
    let mut lines = Vec::with_capacity(insns.len());
    let mut slots = insns.iter().peekable();
    while let Some(insn) = slots.next() {
        if insn.code == BPF_LD | BPF_IMM | BPF_DW {
            match slots.next() {
                Some(high) => {
                    lines.push(ld_imm64(insn, high));
                    lines.push(String::new());
                }
                None => lines.push(bad(insn, "an ld_imm64 without its second slot")),
            }
            continue;
        }
        lines.push(one(insn));
    }
    lines
}

fn bad(insn: &Insn, why: &str) -> String {
    format!("(bad 0x{:02x}: {why})", insn.code)
}

fn one(insn: &Insn) -> String {
    match insn.code & 0x07 {
        BPF_ALU | BPF_ALU64 => alu(insn),
        BPF_JMP | BPF_JMP32 => jmp(insn),
        BPF_LDX => ldx(insn),
        BPF_ST => st(insn),
        BPF_STX => stx(insn),
        // BPF_LD: ld_imm64 is handled by the caller, with its second slot.
        _ => ld(insn),
    }
}

/// `u8`, `u16`, `u32`, `u64` from the size bits.
fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x00 => "u32",
        0x08 => "u16",
        0x10 => "u8",
        _ => "u64",
    }
}

fn ld_imm64(insn: &Insn, high: &Insn) -> String {
    let value = (u64::from(high.imm as u32) << 32) | u64::from(insn.imm as u32);
    match insn.src {
        0 => format!("r{} = 0x{value:x} ll", insn.dst),
        PSEUDO_MAP_FD => format!("r{} = map[fd {}] ll", insn.dst, insn.imm),
        PSEUDO_MAP_VALUE => format!(
            "r{} = map[fd {}] value +{} ll",
            insn.dst, insn.imm, high.imm as u32
        ),
        src => format!("r{} = 0x{value:x} ll (pseudo src {src})", insn.dst),
    }
}

fn ld(insn: &Insn) -> String {
    let size = size_name(insn.code);
    match insn.code & 0xe0 {
        // The legacy packet loads of socket filters.
        BPF_ABS => format!("r0 = *({size} *)skb[{}]", insn.imm),
        BPF_IND => format!("r0 = *({size} *)skb[r{} + {}]", insn.src, insn.imm),
        BPF_IMM => bad(insn, "an immediate load other than ld_imm64"),
        _ => bad(insn, "an unknown load mode"),
    }
}

fn ldx(insn: &Insn) -> String {
    match insn.code & 0xe0 {
        BPF_MEM => format!(
            "r{} = *({} *)(r{} {:+})",
            insn.dst,
            size_name(insn.code),
            insn.src,
            insn.off
        ),
        BPF_MEMSX if insn.code & 0x18 != BPF_DW => {
            let bits = match insn.code & 0x18 {
                0x10 => 8,
                0x08 => 16,
                _ => 32,
            };
            format!("r{} = *(s{bits} *)(r{} {:+})", insn.dst, insn.src, insn.off)
        }
        _ => bad(insn, "an unknown load mode"),
    }
}

fn st(insn: &Insn) -> String {
    if insn.code & 0xe0 != BPF_MEM {
        return bad(insn, "an unknown store mode");
    }
    format!(
        "*({} *)(r{} {:+}) = {}",
        size_name(insn.code),
        insn.dst,
        insn.off,
        insn.imm
    )
}

fn stx(insn: &Insn) -> String {
    let size = size_name(insn.code);
    let (dst, src, off) = (insn.dst, insn.src, insn.off);
    match insn.code & 0xe0 {
        BPF_MEM => format!("*({size} *)(r{dst} {off:+}) = r{src}"),
        BPF_ATOMIC => {
            let wide = insn.code & 0x18 == BPF_DW;
            let rmw_size = wide || insn.code & 0x18 == BPF_W;
            let bits = if wide { "64" } else { "" };
            let op = match insn.imm & !BPF_FETCH {
                0x00 => Some(("+=", "add")),
                0x40 => Some(("|=", "or")),
                0x50 => Some(("&=", "and")),
                0xa0 => Some(("^=", "xor")),
                _ => None,
            };
            match (insn.imm, op) {
                (BPF_LOAD_ACQ, _) => format!("r{dst} = load_acquire(({size} *)(r{src} {off:+}))"),
                (BPF_STORE_REL, _) => format!("store_release(({size} *)(r{dst} {off:+}), r{src})"),
                _ if !rmw_size => bad(insn, "an atomic operation on 1 or 2 bytes"),
                (BPF_XCHG, _) => {
                    format!("r{src} = atomic{bits}_xchg(({size} *)(r{dst} {off:+}), r{src})")
                }
                (BPF_CMPXCHG, _) => {
                    format!("r0 = atomic{bits}_cmpxchg(({size} *)(r{dst} {off:+}), r0, r{src})")
                }
                (imm, Some((assign, _))) if imm & BPF_FETCH == 0 => {
                    format!("lock *({size} *)(r{dst} {off:+}) {assign} r{src}")
                }
                (_, Some((_, name))) => format!(
                    "r{src} = atomic{bits}_fetch_{name}(({size} *)(r{dst} {off:+}), r{src})"
                ),
                (_, None) => bad(insn, "an unknown atomic operation"),
            }
        }
        _ => bad(insn, "an unknown store mode"),
    }
}

fn alu(insn: &Insn) -> String {
    let wide = insn.code & 0x07 == BPF_ALU64;
    let r = if wide { 'r' } else { 'w' };
    let (dst, src) = (insn.dst, insn.src);
    let by_register = insn.code & BPF_X != 0;
    let op = insn.code & 0xf0;
    match op {
        // neg: no source, no immediate.
        0x80 if by_register || insn.imm != 0 => bad(insn, "neg takes no source"),
        0x80 => format!("{r}{dst} = -{r}{dst}"),
        // Byte swaps: to_le/to_be in ALU, unconditional bswap in ALU64.
        0xd0 => {
            let bits = insn.imm;
            if !matches!(bits, 16 | 32 | 64) {
                bad(insn, "a byte swap of other than 16, 32 or 64 bits")
            } else if wide && by_register {
                bad(insn, "a 64-bit byte swap with the to-big-endian bit")
            } else if wide {
                format!("r{dst} = bswap{bits} r{dst}")
            } else {
                let order = if by_register { "be" } else { "le" };
                format!("r{dst} = {order}{bits} r{dst}")
            }
        }
        0xe0 | 0xf0 => bad(insn, "an unknown arithmetic operation"),
        _ => {
            let assign = match (op, insn.off) {
                (0x00, 0) => "+=",
                (0x10, 0) => "-=",
                (0x20, 0) => "*=",
                (0x30, 0) => "/=",
                (0x30, 1) => "s/=",
                (0x40, 0) => "|=",
                (0x50, 0) => "&=",
                (0x60, 0) => "<<=",
                (0x70, 0) => ">>=",
                (0x90, 0) => "%=",
                (0x90, 1) => "s%=",
                (0xa0, 0) => "^=",
                (0xb0, 0) => "=",
                (0xc0, 0) => "s>>=",
                // mov with sign extension of the source's low bits.
                (0xb0, 8 | 16 | 32) if by_register && (wide || insn.off != 32) => {
                    return format!("{r}{dst} = (s{}){r}{src}", insn.off);
                }
                _ => return bad(insn, "an unknown offset for this operation"),
            };
            if by_register {
                format!("{r}{dst} {assign} {r}{src}")
            } else {
                format!("{r}{dst} {assign} {}", insn.imm)
            }
        }
    }
}

fn jmp(insn: &Insn) -> String {
    let wide = insn.code & 0x07 == BPF_JMP;
    let r = if wide { 'r' } else { 'w' };
    let by_register = insn.code & BPF_X != 0;
    let (dst, src, off) = (insn.dst, insn.src, insn.off);
    let compare = match insn.code & 0xf0 {
        0x00 if by_register => return bad(insn, "an indirect jump"),
        0x00 if wide => return format!("goto {off:+}"),
        0x00 => return format!("gotol {:+}", insn.imm),
        0x80 if by_register => return bad(insn, "a call by register"),
        0x80 if !wide => return bad(insn, "a call in the JMP32 class"),
        0x80 => {
            return match src {
                0 => format!("call {}", insn.imm),
                PSEUDO_CALL => format!("call pc{:+}", insn.imm),
                PSEUDO_KFUNC_CALL => format!("call kfunc {}", insn.imm),
                _ => bad(insn, "a call of an unknown kind"),
            };
        }
        0x90 if by_register => return bad(insn, "an exit with the register bit"),
        0x90 if !wide => return bad(insn, "an exit in the JMP32 class"),
        0x90 => return "exit".to_string(),
        0xe0 if wide && !by_register && src == 0 => return format!("may_goto {off:+}"),
        0xe0 | 0xf0 => return bad(insn, "an unknown jump"),
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        _ => "s<=",
    };
    if by_register {
        format!("if {r}{dst} {compare} {r}{src} goto {off:+}")
    } else {
        format!("if {r}{dst} {compare} 0x{:x} goto {off:+}", insn.imm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{Alu, Jmp, Size};

    fn line(insn: Insn) -> String {
        let lines = disassemble(&[insn]);
        assert_eq!(lines.len(), 1);
        lines.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn every_alu_operation_by_register_and_by_immediate() {
        let cases = [
            (Alu::Add, "r1 += r2", "r1 += 5"),
            (Alu::Sub, "r1 -= r2", "r1 -= 5"),
            (Alu::Mul, "r1 *= r2", "r1 *= 5"),
            (Alu::Div, "r1 /= r2", "r1 /= 5"),
            (Alu::Or, "r1 |= r2", "r1 |= 5"),
            (Alu::And, "r1 &= r2", "r1 &= 5"),
            (Alu::Lsh, "r1 <<= r2", "r1 <<= 5"),
            (Alu::Rsh, "r1 >>= r2", "r1 >>= 5"),
            (Alu::Mod, "r1 %= r2", "r1 %= 5"),
            (Alu::Xor, "r1 ^= r2", "r1 ^= 5"),
            (Alu::Mov, "r1 = r2", "r1 = 5"),
            (Alu::Arsh, "r1 s>>= r2", "r1 s>>= 5"),
        ];
        for (op, by_register, by_immediate) in cases {
            assert_eq!(line(Insn::alu64_reg(op, 1, 2)), by_register, "{op:?}");
            assert_eq!(line(Insn::alu64_imm(op, 1, 5)), by_immediate, "{op:?}");
        }
        // Negation has no source: the immediate form with 0 is the real one.
        assert_eq!(line(Insn::alu64_imm(Alu::Neg, 1, 0)), "r1 = -r1");
        assert_eq!(
            line(Insn::alu64_reg(Alu::Neg, 1, 2)),
            "(bad 0x8f: neg takes no source)"
        );
        assert_eq!(line(Insn::alu64_imm(Alu::Add, 0, -1)), "r0 += -1");
        assert_eq!(line(Insn::mov64_reg(1, 6)), "r1 = r6");
        assert_eq!(line(Insn::mov64_imm(0, 0)), "r0 = 0");
        assert_eq!(line(Insn::add64_imm(0, 1)), "r0 += 1");
    }

    #[test]
    fn every_jump_by_register_and_by_immediate() {
        let cases = [
            (Jmp::Eq, "=="),
            (Jmp::Gt, ">"),
            (Jmp::Ge, ">="),
            (Jmp::Set, "&"),
            (Jmp::Ne, "!="),
            (Jmp::Sgt, "s>"),
            (Jmp::Sge, "s>="),
            (Jmp::Lt, "<"),
            (Jmp::Le, "<="),
            (Jmp::Slt, "s<"),
            (Jmp::Sle, "s<="),
        ];
        for (op, text) in cases {
            assert_eq!(
                line(Insn::jmp_reg(op, 1, 2, -4)),
                format!("if r1 {text} r2 goto -4")
            );
            assert_eq!(
                line(Insn::jmp_imm(op, 1, 5, 3)),
                format!("if r1 {text} 0x5 goto +3")
            );
        }
        // The immediate prints as the kernel's 0x%x does: 32 bits.
        assert_eq!(
            line(Insn::jmp_imm(Jmp::Eq, 0, -1, 0)),
            "if r0 == 0xffffffff goto +0"
        );
        assert_eq!(line(Insn::ja(3)), "goto +3");
        assert_eq!(line(Insn::ja(-2)), "goto -2");
        assert_eq!(line(Insn::call(14)), "call 14");
        assert_eq!(line(Insn::exit()), "exit");
    }

    #[test]
    fn loads_and_stores_of_every_size() {
        assert_eq!(line(Insn::ldx(Size::B, 0, 1, 0)), "r0 = *(u8 *)(r1 +0)");
        assert_eq!(line(Insn::ldx(Size::H, 0, 1, 2)), "r0 = *(u16 *)(r1 +2)");
        assert_eq!(line(Insn::ldx(Size::W, 0, 1, 4)), "r0 = *(u32 *)(r1 +4)");
        assert_eq!(
            line(Insn::ldx(Size::DW, 3, 10, -8)),
            "r3 = *(u64 *)(r10 -8)"
        );
        assert_eq!(line(Insn::stx(Size::W, 10, -8, 1)), "*(u32 *)(r10 -8) = r1");
        assert_eq!(
            line(Insn::stx(Size::DW, 10, -16, 2)),
            "*(u64 *)(r10 -16) = r2"
        );
        assert_eq!(line(Insn::st(Size::B, 10, -1, 7)), "*(u8 *)(r10 -1) = 7");
        assert_eq!(line(Insn::st(Size::H, 10, -2, -3)), "*(u16 *)(r10 -2) = -3");
        assert_eq!(line(Insn::st_w(10, -16, 3)), "*(u32 *)(r10 -16) = 3");
        assert_eq!(line(Insn::stx_w(10, -4, 1)), "*(u32 *)(r10 -4) = r1");
        assert_eq!(
            line(Insn::atomic_add64(1, 0, 2)),
            "lock *(u64 *)(r1 +0) += r2"
        );
    }

    #[test]
    fn wide_loads_take_two_lines_the_second_empty() {
        assert_eq!(
            disassemble(&Insn::ld_map_fd(1, 7)),
            ["r1 = map[fd 7] ll", ""]
        );
        assert_eq!(
            disassemble(&Insn::ld_imm64(2, 0, 0x1234)),
            ["r2 = 0x1234 ll", ""]
        );
        assert_eq!(
            disassemble(&Insn::ld_imm64(3, 0, 0xffff_ffff_8100_0000)),
            ["r3 = 0xffffffff81000000 ll", ""]
        );
        let mut program = vec![Insn::mov64_imm(0, 0)];
        program.extend(Insn::ld_map_fd(1, 3));
        program.push(Insn::exit());
        assert_eq!(
            disassemble(&program),
            ["r0 = 0", "r1 = map[fd 3] ll", "", "exit"]
        );
        // Cut off after its first slot.
        assert_eq!(
            disassemble(&Insn::ld_imm64(1, 0, 5)[..1]),
            ["(bad 0x18: an ld_imm64 without its second slot)"]
        );
    }

    fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    #[test]
    fn the_classes_the_constructors_do_not_make() {
        // 32-bit ALU and JMP32 use w registers.
        assert_eq!(line(raw(0x0c, 1, 2, 0, 0)), "w1 += w2");
        assert_eq!(line(raw(0xb4, 1, 0, 0, -1)), "w1 = -1");
        assert_eq!(line(raw(0x84, 3, 0, 0, 0)), "w3 = -w3");
        assert_eq!(line(raw(0x1e, 1, 2, 5, 0)), "if w1 == w2 goto +5");
        assert_eq!(line(raw(0x66, 1, 0, -1, 9)), "if w1 s> 0x9 goto -1");
        assert_eq!(line(raw(0x06, 0, 0, 0, 300)), "gotol +300");
        // Signed division, sign-extending moves and loads, byte swaps.
        assert_eq!(line(raw(0x3f, 1, 2, 1, 0)), "r1 s/= r2");
        assert_eq!(line(raw(0x97, 1, 0, 1, 3)), "r1 s%= 3");
        assert_eq!(line(raw(0xbf, 1, 2, 16, 0)), "r1 = (s16)r2");
        assert_eq!(line(raw(0xbc, 1, 2, 8, 0)), "w1 = (s8)w2");
        assert_eq!(line(raw(0x91, 1, 2, 4, 0)), "r1 = *(s8 *)(r2 +4)");
        assert_eq!(line(raw(0xd4, 1, 0, 0, 16)), "r1 = le16 r1");
        assert_eq!(line(raw(0xdc, 1, 0, 0, 32)), "r1 = be32 r1");
        assert_eq!(line(raw(0xd7, 1, 0, 0, 64)), "r1 = bswap64 r1");
        // Atomics beyond add.
        assert_eq!(line(raw(0xc3, 1, 2, 0, 0x40)), "lock *(u32 *)(r1 +0) |= r2");
        assert_eq!(
            line(raw(0xdb, 1, 2, 8, 0x01)),
            "r2 = atomic64_fetch_add((u64 *)(r1 +8), r2)"
        );
        assert_eq!(
            line(raw(0xc3, 1, 2, 0, 0xa1)),
            "r2 = atomic_fetch_xor((u32 *)(r1 +0), r2)"
        );
        assert_eq!(
            line(raw(0xdb, 1, 2, 0, 0xe1)),
            "r2 = atomic64_xchg((u64 *)(r1 +0), r2)"
        );
        assert_eq!(
            line(raw(0xdb, 1, 2, 0, 0xf1)),
            "r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)"
        );
        assert_eq!(
            line(raw(0xd3, 0, 1, 0, 0x100)),
            "r0 = load_acquire((u8 *)(r1 +0))"
        );
        // Calls of other kinds, may_goto, packet loads, map values.
        assert_eq!(line(raw(0x85, 0, 1, 0, 4)), "call pc+4");
        assert_eq!(line(raw(0x85, 0, 2, 0, 1234)), "call kfunc 1234");
        assert_eq!(line(raw(0xe5, 0, 0, 2, 0)), "may_goto +2");
        assert_eq!(line(raw(0x30, 0, 0, 0, 12)), "r0 = *(u8 *)skb[12]");
        assert_eq!(
            disassemble(&[raw(0x18, 1, 2, 0, 5), raw(0, 0, 0, 0, 16)]),
            ["r1 = map[fd 5] value +16 ll", ""]
        );
    }

    #[test]
    fn what_the_kernel_would_refuse_reads_bad() {
        for (insn, why) in [
            (raw(0xe7, 1, 0, 0, 0), "unknown arithmetic"),
            (raw(0xf5, 0, 0, 0, 0), "unknown jump"),
            (raw(0x8d, 0, 0, 0, 0), "call by register"),
            (raw(0x86, 0, 0, 0, 0), "call in the JMP32"),
            (raw(0x9d, 0, 0, 0, 0), "exit with the register bit"),
            (raw(0x96, 0, 0, 0, 0), "exit in the JMP32"),
            (raw(0xd7, 1, 0, 0, 24), "byte swap"),
            (raw(0xdb, 1, 2, 0, 0x30), "unknown atomic"),
            (raw(0xd3, 1, 2, 0, 0x00), "1 or 2 bytes"),
            (raw(0x99, 0, 1, 0, 0), "unknown load mode"),
            (raw(0x0f, 1, 2, 3, 0), "unknown offset"),
            (raw(0x85, 0, 7, 0, 0), "unknown kind"),
            (raw(0x0d, 1, 0, 0, 0), "indirect jump"),
        ] {
            let text = line(insn);
            assert!(
                text.starts_with(&format!("(bad 0x{:02x}: ", insn.code)) && text.contains(why),
                "{insn:?}: {text}"
            );
        }
    }

    #[test]
    fn no_code_byte_makes_it_panic() {
        let mut insns = Vec::new();
        for code in 0..=255u8 {
            for (off, imm) in [(0, 0), (1, 1), (8, 16), (-1, -1), (i16::MAX, i32::MIN)] {
                insns.push(raw(code, 15, 15, off, imm));
            }
        }
        let lines = disassemble(&insns);
        assert_eq!(lines.len(), insns.len());
        // Every slot gives text, except second halves of wide loads.
        let empty = lines.iter().filter(|l| l.is_empty()).count();
        assert!(empty > 0 && empty < lines.len());
    }
}
