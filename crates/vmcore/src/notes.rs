//! The ELF notes of a vmcore (the `PT_NOTE` segments of an ELF dump, the
//! note area of a kdump-compressed one): the kernel's VMCOREINFO note
//! (owner "VMCOREINFO"; QEMU copies the guest's note as it is) and one
//! `NT_PRSTATUS` note (owner "CORE") per CPU, whose `struct elf_prstatus`
//! is decoded by `kscope-coredump`, the same as in a user core.

use kscope_coredump::{Arch, NT_AUXV, NT_FILE, NT_PRSTATUS, NoteData, X86_64Registers};

use crate::Error;
use crate::reader::{Reader, until_nul};

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
    let r = Reader::new(bytes, base);
    let mut pos = 0u64;
    // Where the zero padding after the last note starts.
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i as u64 + 1);
    while pos < end {
        let namesz = u64::from(r.u32(pos, "note header n_namesz")?);
        let descsz = u64::from(r.u32(pos + 4, "note header n_descsz")?);
        let kind = r.u32(pos + 8, "note header n_type")?;
        let name = until_nul(r.slice(pos + 12, namesz, "note name of n_namesz bytes")?);
        let desc_pos = (pos + 12 + namesz).next_multiple_of(4);
        let desc = r.slice(desc_pos, descsz, "note descriptor of n_descsz bytes")?;
        pos = (desc_pos + descsz).next_multiple_of(4);
        match (name, kind) {
            (b"VMCOREINFO", _) if out.vmcoreinfo.is_none() => {
                if descsz > MAX_VMCOREINFO {
                    return Err(Error::TooLarge {
                        offset: base + desc_pos,
                        what: "VMCOREINFO note",
                        size: descsz,
                        limit: MAX_VMCOREINFO,
                    });
                }
                out.vmcoreinfo = Some(String::from_utf8_lossy(until_nul(desc)).into_owned());
            }
            (b"CORE", NT_FILE | NT_AUXV) => out.process_notes = true,
            (b"CORE", NT_PRSTATUS) => out.cpus.push(decode_prstatus(
                desc,
                base + desc_pos,
                machine,
                out.cpus.len(),
            )?),
            _ => {}
        }
    }
    Ok(())
}

fn decode_prstatus(desc: &[u8], offset: u64, machine: u16, cpu: usize) -> Result<CpuState, Error> {
    let note = kscope_coredump::Note {
        name: b"CORE",
        kind: NT_PRSTATUS,
        desc,
        desc_offset: offset,
    };
    match Arch::from_machine(machine) {
        Some(Arch::X86_64) => match note.decode(Arch::X86_64) {
            Ok(NoteData::PrStatus(thread)) => Ok(CpuState {
                cpu,
                pid: thread.tid,
                registers: match thread.registers {
                    kscope_coredump::Registers::X86_64(regs) => Some(regs),
                    _ => None,
                },
            }),
            Ok(_) => Err(Error::at(offset, "struct elf_prstatus")),
            Err(e) => Err(Error::Format {
                offset: e.offset,
                expected: e.expected,
            }),
        },
        _ => Ok(CpuState {
            cpu,
            pid: Reader::new(desc, offset).u32(32, "pr_pid")? as i32,
            registers: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(name);
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn prstatus_and_vmcoreinfo_and_zero_padding() {
        let mut prstatus = vec![0u8; 336];
        prstatus[32..36].copy_from_slice(&7i32.to_le_bytes());
        prstatus[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffffffff81000000u64.to_le_bytes());
        let mut bytes = note(b"CORE", NT_PRSTATUS, &prstatus);
        bytes.extend(note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\n"));
        bytes.extend(note(b"QEMU", 0, &[1; 20]));
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
            read_notes(&note(b"CORE", kind, &[0; 16]), 0, 62, &mut out).unwrap();
            assert!(out.process_notes, "{kind:#x}");
        }
        let mut out = NoteContents::default();
        read_notes(&note(b"QEMU", NT_AUXV, &[0; 16]), 0, 62, &mut out).unwrap();
        assert!(!out.process_notes);
    }

    #[test]
    fn short_prstatus_and_cut_notes_are_errors_with_offsets() {
        let bytes = note(b"CORE", NT_PRSTATUS, &[1; 100]);
        let err = read_notes(&bytes, 1000, 62, &mut NoteContents::default()).unwrap_err();
        assert!(
            matches!(err, Error::Format { offset, .. } if offset >= 1000),
            "{err}"
        );
        let bytes = note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\n");
        let err = read_notes(&bytes[..32], 0, 62, &mut NoteContents::default()).unwrap_err();
        assert!(err.to_string().contains("n_descsz"), "{err}");
        let mut out = NoteContents::default();
        read_notes(&note(b"CORE", NT_PRSTATUS, &[0; 40]), 0, 183, &mut out).unwrap();
        assert_eq!(out.cpus[0].registers, None);
    }
}
