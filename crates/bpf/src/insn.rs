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
const BPF_DW: u8 = 0x18;
const BPF_W: u8 = 0x00;

/// `src` of an ld_imm64 whose immediate is a map's fd.
pub const PSEUDO_MAP_FD: u8 = 1;

impl Insn {
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
    fn registers_and_immediates_land_in_their_fields() {
        let bytes = Insn::mov64_imm(3, -2).encode();
        assert_eq!(bytes[1], 0x03);
        assert_eq!(
            i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            -2
        );
    }
}
