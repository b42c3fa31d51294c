//! The ELF notes of a vmcore (the `PT_NOTE` segments of an ELF dump, the
//! note area of a kdump-compressed one): the kernel's VMCOREINFO note
//! (owner "VMCOREINFO"; QEMU copies the guest's note as it is) and one
//! `NT_PRSTATUS` note (owner "CORE") per CPU, whose `struct elf_prstatus`
//! is decoded by `kscope-elf`, the same as in a user core.

use kscope_elf::{
    Arch, NT_AUXV, NT_FILE, NT_PRSTATUS, Note, NoteData, Reader, Registers, X86_64Registers,
    parse_notes, until_nul,
};

use crate::Error;

/// The most VMCOREINFO text accepted: the kernel writes at most a page,
/// QEMU accepts a guest note of up to 1 MiB.
pub(crate) const MAX_VMCOREINFO: u64 = 1 << 20;

/// One CPU's registers at the time of the dump, from its `NT_PRSTATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuState {
    /// The note's position among the `NT_PRSTATUS` notes: the CPU number
    /// for kdump and QEMU dumps, which write one note per CPU in order.
    pub cpu: usize,
    /// `pr_pid`: the task running on the CPU for a kdump dump; QEMU puts
    /// the CPU's index plus one there.
    pub pid: i32,
    /// The general registers (`pr_reg`); `None` for another architecture
    /// than x86-64.
    pub registers: Option<X86_64Registers>,
}

/// What the notes hold.
#[derive(Debug, Default)]
pub(crate) struct NoteContents {
    pub(crate) vmcoreinfo: Option<String>,
    pub(crate) cpus: Vec<CpuState>,
    /// A note only a user-space process's core has (`NT_FILE`, `NT_AUXV`).
    pub(crate) process_notes: bool,
}

/// Decodes the notes in `bytes` (at file offset `base`), adding to `out`.
/// Zero bytes where a note header should be end the notes: kexec pads its
/// note segment that way.
pub(crate) fn read_notes(
    bytes: &[u8],
    base: u64,
    machine: u16,
    out: &mut NoteContents,
) -> Result<(), Error> {
    for note in parse_notes(bytes, base, 4).stop_at_zero_padding() {
        let note = note?;
        match (note.name, note.kind) {
            (b"VMCOREINFO", _) if out.vmcoreinfo.is_none() => {
                let size = note.desc.len() as u64;
                if size > MAX_VMCOREINFO {
                    return Err(Error::TooLarge {
                        offset: note.desc_offset,
                        what: "VMCOREINFO note",
                        size,
                        limit: MAX_VMCOREINFO,
                    });
                }
                out.vmcoreinfo = Some(String::from_utf8_lossy(until_nul(note.desc)).into_owned());
            }
            (b"CORE", NT_FILE | NT_AUXV) => out.process_notes = true,
            (b"CORE", NT_PRSTATUS) => {
                out.cpus
                    .push(decode_prstatus(&note, machine, out.cpus.len())?)
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_prstatus(note: &Note<'_>, machine: u16, cpu: usize) -> Result<CpuState, Error> {
    match Arch::from_machine(machine) {
        Some(Arch::X86_64) => match note.decode(Arch::X86_64)? {
            NoteData::PrStatus(thread) => Ok(CpuState {
                cpu,
                pid: thread.tid,
                registers: match thread.registers {
                    Registers::X86_64(regs) => Some(regs),
                    Registers::Unsupported { .. } => None,
                },
            }),
            _ => Err(Error::at(note.desc_offset, "struct elf_prstatus")),
        },
        _ => Ok(CpuState {
            cpu,
            pid: Reader::new(note.desc, note.desc_offset).i32(32, "pr_pid")?,
            registers: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use kscope_testkit::elf::NoteBuilder;

    use super::*;

    fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
        NoteBuilder::default().note(name, kind, desc).bytes
    }

    #[test]
    fn prstatus_and_vmcoreinfo_and_zero_padding() {
        let mut prstatus = vec![0u8; 336];
        prstatus[32..36].copy_from_slice(&7i32.to_le_bytes());
        prstatus[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffffffff81000000u64.to_le_bytes());
        let mut bytes = note("CORE", NT_PRSTATUS, &prstatus);
        bytes.extend(note("VMCOREINFO", 0, b"OSRELEASE=6.1\n"));
        bytes.extend(note("QEMU", 0, &[1; 20]));
        bytes.extend([0; 30]);
        let mut out = NoteContents::default();
        read_notes(&bytes, 100, 62, &mut out).unwrap();
        assert_eq!(out.vmcoreinfo.as_deref(), Some("OSRELEASE=6.1\n"));
        assert_eq!(out.cpus.len(), 1);
        assert_eq!(out.cpus[0].pid, 7);
        assert_eq!(out.cpus[0].registers.unwrap().rip, 0xffffffff81000000);
    }

    #[test]
    fn a_process_core_is_told_by_its_file_and_auxv_notes() {
        for kind in [NT_FILE, NT_AUXV] {
            let mut out = NoteContents::default();
            read_notes(&note("CORE", kind, &[0; 16]), 0, 62, &mut out).unwrap();
            assert!(out.process_notes, "{kind:#x}");
        }
        let mut out = NoteContents::default();
        read_notes(&note("QEMU", NT_AUXV, &[0; 16]), 0, 62, &mut out).unwrap();
        assert!(!out.process_notes);
    }

    #[test]
    fn short_prstatus_and_cut_notes_are_errors_with_offsets() {
        let bytes = note("CORE", NT_PRSTATUS, &[1; 100]);
        let err = read_notes(&bytes, 1000, 62, &mut NoteContents::default()).unwrap_err();
        assert!(
            matches!(err, Error::Format { offset, .. } if offset >= 1000),
            "{err}"
        );
        let bytes = note("VMCOREINFO", 0, b"OSRELEASE=6.1\n");
        let err = read_notes(&bytes[..32], 0, 62, &mut NoteContents::default()).unwrap_err();
        assert!(err.to_string().contains("n_descsz"), "{err}");
        let mut out = NoteContents::default();
        read_notes(&note("CORE", NT_PRSTATUS, &[0; 40]), 0, 183, &mut out).unwrap();
        assert_eq!(out.cpus[0].registers, None);
    }
}
