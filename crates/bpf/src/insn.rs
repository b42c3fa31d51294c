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

const BPF_ALU64: u8 = 0x07;
const BPF_JMP: u8 = 0x05;
const BPF_MOV: u8 = 0xb0;
const BPF_EXIT: u8 = 0x90;
const BPF_K: u8 = 0x00;

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
    fn registers_and_immediates_land_in_their_fields() {
        let bytes = Insn::mov64_imm(3, -2).encode();
        assert_eq!(bytes[1], 0x03);
        assert_eq!(
            i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            -2
        );
    }
}
