//! Architectures and their register layouts in `NT_PRSTATUS`: the
//! `struct elf_prstatus` of the kernel's `include/linux/elfcore.h`, whose
//! `pr_reg` is the architecture's `elf_gregset_t`. x86-64 registers are
//! decoded; aarch64 cores are recognised and their registers kept raw.

/// The machine a core was dumped on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (`EM_X86_64`, 62).
    X86_64,
    /// 64-bit Arm (`EM_AARCH64`, 183): recognised, registers not decoded.
    Aarch64,
}

/// Where things lie in an architecture's `struct elf_prstatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrStatusLayout {
    /// Size of the whole struct, the `descsz` of `NT_PRSTATUS`.
    pub size: usize,
    /// Offset of `pr_reg`.
    pub regs_offset: usize,
    /// Number of 8-byte registers in `pr_reg`.
    pub reg_count: usize,
}

impl Arch {
    /// The architecture of an ELF `e_machine`, if it is one this crate knows.
    pub fn from_machine(machine: u16) -> Option<Arch> {
        match machine {
            62 => Some(Arch::X86_64),
            183 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The layout of `struct elf_prstatus` on this architecture. Both are
    /// the 64-bit generic layout (`pr_pid` at 32, `pr_reg` at 112); they
    /// differ in the register count: 27 on x86-64 (`struct
    /// user_regs_struct`), 34 on aarch64 (x0-x30, sp, pc, pstate).
    pub fn prstatus_layout(self) -> PrStatusLayout {
        match self {
            Arch::X86_64 => PrStatusLayout {
                size: 336,
                regs_offset: 112,
                reg_count: 27,
            },
            Arch::Aarch64 => PrStatusLayout {
                size: 392,
                regs_offset: 112,
                reg_count: 34,
            },
        }
    }
}

/// A thread's general registers from `NT_PRSTATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registers<'a> {
    /// Decoded x86-64 registers.
    X86_64(X86_64Registers),
    /// An architecture whose registers this crate does not decode yet:
    /// the raw `pr_reg` bytes.
    Unsupported {
        /// The architecture of the core.
        arch: Arch,
        /// `pr_reg`, little-endian 8-byte registers in the kernel's order.
        raw: &'a [u8],
    },
}

impl Registers<'_> {
    /// The program counter, when decoded.
    pub fn pc(&self) -> Option<u64> {
        match self {
            Registers::X86_64(r) => Some(r.rip),
            Registers::Unsupported { .. } => None,
        }
    }

    /// The stack pointer, when decoded.
    pub fn sp(&self) -> Option<u64> {
        match self {
            Registers::X86_64(r) => Some(r.rsp),
            Registers::Unsupported { .. } => None,
        }
    }

    /// The registers as (name, value) in the order a person reads them;
    /// empty when they are not decoded.
    pub fn list(&self) -> Vec<(&'static str, u64)> {
        match self {
            Registers::X86_64(r) => r.list().to_vec(),
            Registers::Unsupported { .. } => Vec::new(),
        }
    }
}

/// x86-64 `struct user_regs_struct` (arch/x86/include/asm/user_64.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)] // Each field is the register of its name.
pub struct X86_64Registers {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The syscall number on syscall entry, else -1.
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl X86_64Registers {
    /// Decodes `pr_reg`: 27 little-endian u64 in the kernel's order.
    /// `None` when `raw` is shorter than 216 bytes.
    pub fn from_bytes(raw: &[u8]) -> Option<X86_64Registers> {
        let r = |i: usize| -> Option<u64> {
            let b = raw.get(i * 8..i * 8 + 8)?;
            let mut a = [0; 8];
            a.copy_from_slice(b);
            Some(u64::from_le_bytes(a))
        };
        Some(X86_64Registers {
            r15: r(0)?,
            r14: r(1)?,
            r13: r(2)?,
            r12: r(3)?,
            rbp: r(4)?,
            rbx: r(5)?,
            r11: r(6)?,
            r10: r(7)?,
            r9: r(8)?,
            r8: r(9)?,
            rax: r(10)?,
            rcx: r(11)?,
            rdx: r(12)?,
            rsi: r(13)?,
            rdi: r(14)?,
            orig_rax: r(15)?,
            rip: r(16)?,
            cs: r(17)?,
            eflags: r(18)?,
            rsp: r(19)?,
            ss: r(20)?,
            fs_base: r(21)?,
            gs_base: r(22)?,
            ds: r(23)?,
            es: r(24)?,
            fs: r(25)?,
            gs: r(26)?,
        })
    }

    /// (name, value) in reading order: rip, rsp, rbp, the other general
    /// registers, eflags, segments, fs_base, gs_base, orig_rax.
    pub fn list(&self) -> [(&'static str, u64); 27] {
        [
            ("rip", self.rip),
            ("rsp", self.rsp),
            ("rbp", self.rbp),
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
            ("eflags", self.eflags),
            ("cs", self.cs),
            ("ss", self.ss),
            ("ds", self.ds),
            ("es", self.es),
            ("fs", self.fs),
            ("gs", self.gs),
            ("fs_base", self.fs_base),
            ("gs_base", self.gs_base),
            ("orig_rax", self.orig_rax),
        ]
    }
}
