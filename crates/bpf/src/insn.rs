//! eBPF instructions in the kernel's 8-byte encoding (opcode, dst and src
//! registers in one byte, 16-bit offset, 32-bit immediate), as described in
//! the kernel's Documentation/bpf/standardization/instruction-set.rst.

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Operation code: class, source and operation bits.
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10).
    pub src: u8,
    /// Signed offset (jumps, memory).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU64: u8 = 0x07;
const BPF_JMP: u8 = 0x05;
const BPF_MOV: u8 = 0xb0;
const BPF_ADD: u8 = 0x00;
const BPF_EXIT: u8 = 0x90;
const BPF_CALL: u8 = 0x80;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_ATOMIC: u8 = 0xc0;
const BPF_DW: u8 = 0x18;
const BPF_W: u8 = 0x00;

/// `src` of an ld_imm64 whose immediate is a map's fd.
pub const PSEUDO_MAP_FD: u8 = 1;

/// 64-bit arithmetic operations (the `op` bits of BPF_ALU64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    /// `+=`
    Add = 0x00,
    /// `-=`
    Sub = 0x10,
    /// `*=`
    Mul = 0x20,
    /// `/=`, unsigned
    Div = 0x30,
    /// `|=`
    Or = 0x40,
    /// `&=`
    And = 0x50,
    /// `<<=`
    Lsh = 0x60,
    /// `>>=`, logical
    Rsh = 0x70,
    /// `= -dst`
    Neg = 0x80,
    /// `%=`, unsigned
    Mod = 0x90,
    /// `^=`
    Xor = 0xa0,
    /// `=`
    Mov = 0xb0,
    /// `s>>=`, arithmetic
    Arsh = 0xc0,
}

/// Conditional jumps (the `op` bits of BPF_JMP); `S` marks signed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jmp {
    /// `==`
    Eq = 0x10,
    /// `>`, unsigned
    Gt = 0x20,
    /// `>=`, unsigned
    Ge = 0x30,
    /// `&`, non-zero
    Set = 0x40,
    /// `!=`
    Ne = 0x50,
    /// `s>`
    Sgt = 0x60,
    /// `s>=`
    Sge = 0x70,
    /// `<`, unsigned
    Lt = 0xa0,
    /// `<=`, unsigned
    Le = 0xb0,
    /// `s<`
    Slt = 0xc0,
    /// `s<=`
    Sle = 0xd0,
}

/// Memory access sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 1 byte
    B = 0x10,
    /// 2 bytes
    H = 0x08,
    /// 4 bytes
    W = 0x00,
    /// 8 bytes
    DW = 0x18,
}

impl Size {
    /// The access size for `bytes` (1, 2, 4 or 8).
    pub fn of_bytes(bytes: u32) -> Option<Size> {
        match bytes {
            1 => Some(Size::B),
            2 => Some(Size::H),
            4 => Some(Size::W),
            8 => Some(Size::DW),
            _ => None,
        }
    }

    /// The size in bytes.
    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
}

impl Insn {
    /// `dst OP= src` (64-bit).
    pub fn alu64_reg(op: Alu, dst: u8, src: u8) -> Insn {
        Insn {
            code: BPF_ALU64 | op as u8 | BPF_X,
            dst,
            src,
            off: 0,
            imm: 0,
        }
    }

    /// `dst OP= imm` (64-bit, the immediate sign-extended).
    pub fn alu64_imm(op: Alu, dst: u8, imm: i32) -> Insn {
        Insn {
            code: BPF_ALU64 | op as u8 | BPF_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// `if dst OP src goto +off` (64-bit compare).
    pub fn jmp_reg(op: Jmp, dst: u8, src: u8, off: i16) -> Insn {
        Insn {
            code: BPF_JMP | op as u8 | BPF_X,
            dst,
            src,
            off,
            imm: 0,
        }
    }

    /// `if dst OP imm goto +off` (64-bit compare with a sign-extended
    /// immediate).
    pub fn jmp_imm(op: Jmp, dst: u8, imm: i32, off: i16) -> Insn {
        Insn {
            code: BPF_JMP | op as u8 | BPF_K,
            dst,
            src: 0,
            off,
            imm,
        }
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Insn {
        Insn {
            code: BPF_JMP,
            dst: 0,
            src: 0,
            off,
            imm: 0,
        }
    }

    /// `dst = *(size *)(src + off)`, zero-extended.
    pub fn ldx(size: Size, dst: u8, src: u8, off: i16) -> Insn {
        Insn {
            code: BPF_LDX | BPF_MEM | size as u8,
            dst,
            src,
            off,
            imm: 0,
        }
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(size: Size, dst: u8, off: i16, src: u8) -> Insn {
        Insn {
            code: BPF_STX | BPF_MEM | size as u8,
            dst,
            src,
            off,
            imm: 0,
        }
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st(size: Size, dst: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code: BPF_ST | BPF_MEM | size as u8,
            dst,
            src: 0,
            off,
            imm,
        }
    }

    /// `lock *(u64 *)(dst + off) += src`: an atomic add, safe when probes
    /// on several CPUs update the same counter.
    pub fn atomic_add64(dst: u8, off: i16, src: u8) -> Insn {
        Insn {
            code: BPF_STX | BPF_ATOMIC | BPF_DW,
            dst,
            src,
            off,
            imm: i32::from(BPF_ADD),
        }
    }

    /// `dst = map` for the map whose fd is `fd`: two instruction slots.
    pub fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
        Insn::ld_imm64(dst, PSEUDO_MAP_FD, fd as u32 as u64)
    }

    /// `dst = imm` (64-bit move of a sign-extended immediate).
    pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn {
            code: BPF_ALU64 | BPF_MOV | BPF_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// `dst = src` (64-bit).
    pub fn mov64_reg(dst: u8, src: u8) -> Insn {
        Insn {
            code: BPF_ALU64 | BPF_MOV | BPF_X,
            dst,
            src,
            off: 0,
            imm: 0,
        }
    }

    /// `dst += imm` (64-bit).
    pub fn add64_imm(dst: u8, imm: i32) -> Insn {
        Insn {
            code: BPF_ALU64 | BPF_ADD | BPF_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// `dst = imm64`: two instruction slots. With `src` PSEUDO_MAP_FD the
    /// value is a map fd that the kernel replaces by the map.
    pub fn ld_imm64(dst: u8, src: u8, value: u64) -> [Insn; 2] {
        [
            Insn {
                code: BPF_LD | BPF_DW | BPF_IMM,
                dst,
                src,
                off: 0,
                imm: value as u32 as i32,
            },
            Insn {
                code: 0,
                dst: 0,
                src: 0,
                off: 0,
                imm: (value >> 32) as u32 as i32,
            },
        ]
    }

    /// `*(u32 *)(dst + off) = imm`.
    pub fn st_w(dst: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code: BPF_ST | BPF_MEM | BPF_W,
            dst,
            src: 0,
            off,
            imm,
        }
    }

    /// `*(u32 *)(dst + off) = src`.
    pub fn stx_w(dst: u8, off: i16, src: u8) -> Insn {
        Insn {
            code: BPF_STX | BPF_MEM | BPF_W,
            dst,
            src,
            off,
            imm: 0,
        }
    }

    /// `call helper`: arguments in r1-r5, result in r0.
    pub fn call(helper: i32) -> Insn {
        Insn {
            code: BPF_JMP | BPF_CALL,
            dst: 0,
            src: 0,
            off: 0,
            imm: helper,
        }
    }

    /// `exit`: return r0 to the kernel.
    pub fn exit() -> Insn {
        Insn {
            code: BPF_JMP | BPF_EXIT,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        }
    }

    /// The instruction's 8 bytes as the kernel reads them (little-endian
    /// host order for the offset and immediate; registers dst in the low
    /// nibble on little-endian machines).
    pub fn encode(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[0] = self.code;
        out[1] = (self.src << 4) | (self.dst & 0x0f);
        out[2..4].copy_from_slice(&self.off.to_ne_bytes());
        out[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_zero_encodes_as_the_kernel_documents() {
        // "r0 = 0; exit" as bpftool prints it: b7 00 00 00 00 00 00 00,
        // 95 00 00 00 00 00 00 00.
        assert_eq!(Insn::mov64_imm(0, 0).encode(), [0xb7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_wide_load_splits_its_immediate_over_two_slots() {
        let [a, b] = Insn::ld_imm64(1, PSEUDO_MAP_FD, 0x1122_3344_5566_7788);
        assert_eq!(a.encode(), [0x18, 0x11, 0, 0, 0x88, 0x77, 0x66, 0x55]);
        assert_eq!(b.encode(), [0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(Insn::call(113).encode(), [0x85, 0, 0, 0, 113, 0, 0, 0]);
        assert_eq!(Insn::mov64_reg(1, 10).encode()[..2], [0xbf, 0xa1]);
        assert_eq!(
            Insn::st_w(10, -16, 3).encode()[..4],
            [0x62, 0x0a, 0xf0, 0xff]
        );
        assert_eq!(Insn::stx_w(10, -4, 1).encode()[..2], [0x63, 0x1a]);
    }

    #[test]
    fn generic_constructors_match_the_documented_opcodes() {
        // Opcodes from the instruction-set document's tables.
        assert_eq!(Insn::alu64_reg(Alu::Add, 1, 2).code, 0x0f);
        assert_eq!(Insn::alu64_imm(Alu::Mov, 1, 5).code, 0xb7);
        assert_eq!(Insn::alu64_imm(Alu::Arsh, 1, 5).code, 0xc7);
        assert_eq!(Insn::jmp_imm(Jmp::Eq, 1, 0, 3).code, 0x15);
        assert_eq!(Insn::jmp_reg(Jmp::Sgt, 1, 2, -1).code, 0x6d);
        assert_eq!(Insn::ja(2).code, 0x05);
        assert_eq!(Insn::ldx(Size::DW, 0, 10, -8).code, 0x79);
        assert_eq!(Insn::ldx(Size::B, 0, 1, 0).code, 0x71);
        assert_eq!(Insn::stx(Size::DW, 10, -8, 1).code, 0x7b);
        assert_eq!(Insn::st(Size::B, 10, -1, 0).code, 0x72);
        assert_eq!(Insn::atomic_add64(1, 0, 2).code, 0xdb);
        assert_eq!(Insn::ld_map_fd(1, 7)[0].src, PSEUDO_MAP_FD);
        assert_eq!(Size::of_bytes(2), Some(Size::H));
        assert_eq!(Size::of_bytes(3), None);
    }

    #[test]
    fn registers_and_immediates_land_in_their_fields() {
        let bytes = Insn::mov64_imm(3, -2).encode();
        assert_eq!(bytes[1], 0x03);
        assert_eq!(
            i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            -2
        );
    }
}
