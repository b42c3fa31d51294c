//! ELF notes: the iterator over a note segment and the decoding of the
//! notes a Linux core holds (`NT_PRSTATUS`, `NT_PRPSINFO`, `NT_SIGINFO`,
//! `NT_AUXV`, `NT_FILE`, `NT_FPREGSET`, `NT_X86_XSTATE`) and of
//! `NT_GNU_BUILD_ID`. Layouts are those of the kernel's
//! `fs/binfmt_elf.c` and `include/linux/elfcore.h` for 64-bit machines.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::reader::{Reader, until_nul};
use crate::{Arch, Error, Registers, SigInfo, X86_64Registers};

/// `n_type` of `struct elf_prstatus`, one per thread.
pub const NT_PRSTATUS: u32 = 1;
/// `n_type` of the floating-point registers (`user_i387_struct`).
pub const NT_FPREGSET: u32 = 2;
/// `n_type` of `struct elf_prpsinfo`.
pub const NT_PRPSINFO: u32 = 3;
/// `n_type` of the auxiliary vector.
pub const NT_AUXV: u32 = 6;
/// `n_type` of the x86 XSAVE area (owner "LINUX").
pub const NT_X86_XSTATE: u32 = 0x202;
/// `n_type` of the `siginfo_t` of the fatal signal.
pub const NT_SIGINFO: u32 = 0x5349_4749;
/// `n_type` of the table of file-backed mappings.
pub const NT_FILE: u32 = 0x4649_4c45;
/// `n_type` of a GNU build-id note (owner "GNU").
pub const NT_GNU_BUILD_ID: u32 = 3;

/// One note: its owner name, type and descriptor, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    /// The owner name without its NUL ("CORE", "LINUX", "GNU").
    pub name: &'a [u8],
    /// `n_type`.
    pub kind: u32,
    /// The descriptor.
    pub desc: &'a [u8],
    /// File offset of the descriptor (for errors while decoding it).
    pub desc_offset: u64,
}

/// Iterates the notes of a note segment. Yields an error once, at the first
/// malformed note, then stops.
#[derive(Debug, Clone)]
pub struct Notes<'a> {
    reader: Reader<'a>,
    pos: u64,
    /// Where the notes end: the end of the bytes, or where the zero
    /// padding after the last note starts.
    end: u64,
    align: u64,
    done: bool,
}

/// The notes in `bytes`, whose first byte is at file offset `base`;
/// `align` is 4 for core notes, 8 for notes in a segment with `p_align` 8.
pub fn parse_notes(bytes: &[u8], base: u64, align: u64) -> Notes<'_> {
    Notes {
        reader: Reader::new(bytes, base),
        pos: 0,
        end: bytes.len() as u64,
        align: if align == 8 { 8 } else { 4 },
        done: false,
    }
}

impl<'a> Notes<'a> {
    /// The same notes, ending where only zero bytes are left: kexec pads
    /// the note segment of `/proc/vmcore` that way. The last note's
    /// descriptor is still read whole, zeros at its end included.
    pub fn stop_at_zero_padding(self) -> Notes<'a> {
        let bytes = self.reader.bytes;
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Notes {
            end: end as u64,
            ..self
        }
    }

    fn parse_one(&mut self) -> Result<Note<'a>, Error> {
        let r = self.reader;
        let start = self.pos;
        let namesz = u64::from(r.u32(start, "note header n_namesz")?);
        let descsz = u64::from(r.u32(start + 4, "note header n_descsz")?);
        let kind = r.u32(start + 8, "note header n_type")?;
        let name_pos = start + 12;
        let name = r.slice(name_pos, namesz, "note name of n_namesz bytes")?;
        // Both fit: the name is inside the bytes, and sizes are 32 bits.
        let desc_pos = (name_pos + namesz).next_multiple_of(self.align);
        let desc = r.slice(desc_pos, descsz, "note descriptor of n_descsz bytes")?;
        // Padding after the last descriptor may be missing.
        self.pos = (desc_pos + descsz).next_multiple_of(self.align);
        Ok(Note {
            name: until_nul(name),
            kind,
            desc,
            desc_offset: r.offset(desc_pos),
        })
    }
}

impl<'a> Iterator for Notes<'a> {
    type Item = Result<Note<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.end {
            return None;
        }
        let note = self.parse_one();
        self.done = note.is_err();
        Some(note)
    }
}

/// The descriptor of the first `NT_GNU_BUILD_ID` note (owner "GNU") among
/// the notes in `bytes` (at file offset `base`, aligned to `align`): the
/// build-id. A malformed note ends the search.
///
/// ```
/// let notes = [4u32.to_le_bytes(), 2u32.to_le_bytes(), 3u32.to_le_bytes()].concat();
/// let notes = [&notes[..], b"GNU\0", &[0xab, 0xcd, 0, 0]].concat();
/// assert_eq!(kscope_elf::build_id(&notes, 0, 4), Some(&[0xab, 0xcd][..]));
/// ```
pub fn build_id(bytes: &[u8], base: u64, align: u64) -> Option<&[u8]> {
    parse_notes(bytes, base, align)
        .map_while(Result::ok)
        .find(|n| n.name == b"GNU" && n.kind == NT_GNU_BUILD_ID)
        .map(|n| n.desc)
}

/// Lower-case hex, as `readelf -n` and `file` print build-ids.
///
/// ```
/// assert_eq!(kscope_elf::hex(&[0xab, 0x01]), "ab01");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A thread from `NT_PRSTATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread<'a> {
    /// `pr_pid`: the thread id.
    pub tid: i32,
    /// `pr_cursig`: the signal the thread was handling (0 for none).
    pub signal: u16,
    /// The general registers.
    pub registers: Registers<'a>,
    /// An `NT_FPREGSET` note followed this thread's `NT_PRSTATUS`.
    pub has_fpregset: bool,
    /// An `NT_X86_XSTATE` note followed this thread's `NT_PRSTATUS`.
    pub has_xstate: bool,
}

/// The process from `NT_PRPSINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessInfo<'a> {
    /// `pr_pid`.
    pub pid: i32,
    /// `pr_ppid`.
    pub ppid: i32,
    /// `pr_uid`.
    pub uid: u32,
    /// `pr_gid`.
    pub gid: u32,
    /// `pr_sname`: the state letter as in /proc/PID/stat ('R', 'S', ...).
    pub state: u8,
    /// `pr_fname`: the comm, up to 15 bytes, without its NUL.
    pub fname: &'a [u8],
    /// `pr_psargs`: the command line, arguments joined by spaces, cut at
    /// 79 bytes. The kernel turns every NUL of the command line into a
    /// space, the final one included; that final space is dropped here.
    pub psargs: &'a [u8],
}

/// One entry of the auxiliary vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxEntry {
    /// `a_type` (`AT_ENTRY` is 9...).
    pub key: u64,
    /// `a_val`.
    pub value: u64,
}

impl AuxEntry {
    /// The name of the key, like "AT_ENTRY"; `None` for a key not listed
    /// in the kernel's `include/uapi/linux/auxvec.h`.
    pub fn name(&self) -> Option<&'static str> {
        Some(match self.key {
            0 => "AT_NULL",
            1 => "AT_IGNORE",
            2 => "AT_EXECFD",
            3 => "AT_PHDR",
            4 => "AT_PHENT",
            5 => "AT_PHNUM",
            6 => "AT_PAGESZ",
            7 => "AT_BASE",
            8 => "AT_FLAGS",
            9 => "AT_ENTRY",
            10 => "AT_NOTELF",
            11 => "AT_UID",
            12 => "AT_EUID",
            13 => "AT_GID",
            14 => "AT_EGID",
            15 => "AT_PLATFORM",
            16 => "AT_HWCAP",
            17 => "AT_CLKTCK",
            23 => "AT_SECURE",
            24 => "AT_BASE_PLATFORM",
            25 => "AT_RANDOM",
            26 => "AT_HWCAP2",
            27 => "AT_RSEQ_FEATURE_SIZE",
            28 => "AT_RSEQ_ALIGN",
            29 => "AT_HWCAP3",
            30 => "AT_HWCAP4",
            31 => "AT_EXECFN",
            32 => "AT_SYSINFO",
            33 => "AT_SYSINFO_EHDR",
            51 => "AT_MINSIGSTKSZ",
            _ => return None,
        })
    }
}

/// `AT_PHDR`: address of the executable's program headers.
pub const AT_PHDR: u64 = 3;
/// `AT_PAGESZ`: the page size.
pub const AT_PAGESZ: u64 = 6;
/// `AT_BASE`: load address of the interpreter.
pub const AT_BASE: u64 = 7;
/// `AT_ENTRY`: the executable's entry point.
pub const AT_ENTRY: u64 = 9;
/// `AT_EXECFN`: address of the executed file name.
pub const AT_EXECFN: u64 = 31;
/// `AT_SYSINFO_EHDR`: address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: u64 = 33;

/// A file-backed mapping from `NT_FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedFile<'a> {
    /// First address of the mapping.
    pub start: u64,
    /// End of the mapping (exclusive).
    pub end: u64,
    /// Offset in the file: the note's page offset times its page size.
    pub file_offset: u64,
    /// The file's path as the kernel printed it (" (deleted)" included).
    pub path: &'a Path,
}

/// What a note holds, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteData<'a> {
    /// `NT_PRSTATUS`.
    PrStatus(Thread<'a>),
    /// `NT_PRPSINFO`.
    PrPsInfo(ProcessInfo<'a>),
    /// `NT_SIGINFO`.
    SigInfo(SigInfo),
    /// `NT_AUXV`, up to its `AT_NULL`.
    Auxv(Vec<AuxEntry>),
    /// `NT_FILE`.
    File(Vec<MappedFile<'a>>),
    /// `NT_FPREGSET` (not decoded).
    FpRegSet,
    /// `NT_X86_XSTATE` (not decoded).
    X86XState,
    /// `NT_GNU_BUILD_ID`: the build-id bytes.
    GnuBuildId(&'a [u8]),
    /// Any other note.
    Other,
}

impl<'a> Note<'a> {
    /// Decodes the note for a core of `arch`.
    pub fn decode(&self, arch: Arch) -> Result<NoteData<'a>, Error> {
        let r = Reader::new(self.desc, self.desc_offset);
        Ok(match (self.name, self.kind) {
            (b"CORE", NT_PRSTATUS) => NoteData::PrStatus(decode_prstatus(r, arch)?),
            (b"CORE", NT_PRPSINFO) => NoteData::PrPsInfo(decode_prpsinfo(r)?),
            (b"CORE", NT_SIGINFO) => NoteData::SigInfo(
                SigInfo::from_bytes(self.desc)
                    .ok_or_else(|| Error::at(self.desc_offset, "siginfo_t of 128 bytes"))?,
            ),
            (b"CORE", NT_AUXV) => NoteData::Auxv(decode_auxv(r)),
            (b"CORE", NT_FILE) => NoteData::File(decode_file(r)?),
            (b"CORE", NT_FPREGSET) => NoteData::FpRegSet,
            (b"LINUX", NT_X86_XSTATE) => NoteData::X86XState,
            (b"GNU", NT_GNU_BUILD_ID) => NoteData::GnuBuildId(self.desc),
            _ => NoteData::Other,
        })
    }
}

fn decode_prstatus(r: Reader<'_>, arch: Arch) -> Result<Thread<'_>, Error> {
    let layout = arch.prstatus_layout();
    let regs_offset = layout.regs_offset as u64;
    r.slice(0, layout.size as u64, "struct elf_prstatus")?;
    let raw = r.slice(regs_offset, layout.reg_count as u64 * 8, "pr_reg")?;
    let registers = match arch {
        Arch::X86_64 => X86_64Registers::from_bytes(raw)
            .map(Registers::X86_64)
            .ok_or_else(|| Error::at(r.offset(regs_offset), "27 x86-64 registers"))?,
        Arch::Aarch64 => Registers::Unsupported { arch, raw },
    };
    Ok(Thread {
        tid: r.i32(32, "pr_pid")?,
        signal: r.u16(12, "pr_cursig")?,
        registers,
        has_fpregset: false,
        has_xstate: false,
    })
}

fn decode_prpsinfo(r: Reader<'_>) -> Result<ProcessInfo<'_>, Error> {
    r.slice(0, 136, "struct elf_prpsinfo of 136 bytes")?;
    Ok(ProcessInfo {
        state: r.u8(1, "pr_sname")?,
        uid: r.u32(16, "pr_uid")?,
        gid: r.u32(20, "pr_gid")?,
        pid: r.i32(24, "pr_pid")?,
        ppid: r.i32(28, "pr_ppid")?,
        fname: until_nul(r.slice(40, 16, "pr_fname")?),
        psargs: strip_final_space(until_nul(r.slice(56, 80, "pr_psargs")?)),
    })
}

/// `bytes` without one trailing space.
fn strip_final_space(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b" ").unwrap_or(bytes)
}

fn decode_auxv(r: Reader<'_>) -> Vec<AuxEntry> {
    r.bytes
        .chunks_exact(16)
        .map(|c| {
            let mut k = [0; 8];
            let mut v = [0; 8];
            k.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            AuxEntry {
                key: u64::from_le_bytes(k),
                value: u64::from_le_bytes(v),
            }
        })
        .take_while(|e| e.key != 0)
        .collect()
}

/// `NT_FILE`: count and page size, `count` triples (start, end, page
/// offset), then `count` NUL-terminated paths.
fn decode_file(r: Reader<'_>) -> Result<Vec<MappedFile<'_>>, Error> {
    let count = r.u64(0, "NT_FILE count")?;
    let page_size = r.u64(8, "NT_FILE page size")?;
    let table_len = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(24))
        .filter(|&len| len <= r.bytes.len().saturating_sub(16))
        .ok_or_else(|| {
            Error::at(
                r.offset(0),
                format!("an NT_FILE count whose 24-byte entries fit in the note ({count} do not)"),
            )
        })?;
    let mut names = r.bytes[16 + table_len..].split(|&b| b == 0);
    let mut files = Vec::with_capacity(table_len / 24);
    let mut name_pos = 16 + table_len;
    for i in 0..table_len / 24 {
        let at = 16 + i as u64 * 24;
        let start = r.u64(at, "mapping start")?;
        let end = r.u64(at + 8, "mapping end")?;
        let pgoff = r.u64(at + 16, "mapping page offset")?;
        let name = names
            .next()
            .filter(|_| name_pos < r.bytes.len())
            .ok_or_else(|| {
                Error::at(
                    r.offset(name_pos as u64),
                    "one NUL-terminated path per NT_FILE entry",
                )
            })?;
        if name_pos + name.len() >= r.bytes.len() {
            return Err(Error::at(
                r.offset(name_pos as u64),
                "a NUL after the NT_FILE path",
            ));
        }
        name_pos += name.len() + 1;
        files.push(MappedFile {
            start,
            end,
            file_offset: pgoff.wrapping_mul(page_size),
            path: Path::new(OsStr::from_bytes(name)),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use kscope_testkit::elf::{NoteBuilder, file_note, prpsinfo, prstatus};

    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<NoteData<'_>>, Error> {
        parse_notes(bytes, 0x100, 4)
            .map(|n| n.and_then(|n| n.decode(Arch::X86_64)))
            .collect()
    }

    fn sample() -> Vec<u8> {
        let mut auxv = Vec::new();
        for (k, v) in [(9u64, 0x401000u64), (33, 0x7fff0000), (0, 0), (5, 5)] {
            auxv.extend_from_slice(&k.to_le_bytes());
            auxv.extend_from_slice(&v.to_le_bytes());
        }
        NoteBuilder::default()
            .note("CORE", NT_PRSTATUS, &prstatus(7, 11, 0x401234, 0x7ffe0000))
            .note("CORE", NT_PRPSINFO, &prpsinfo(7, "crash", "./crash a b "))
            .note("CORE", NT_AUXV, &auxv)
            .note(
                "CORE",
                NT_FILE,
                &file_note(4096, &[(0x400000, 0x401000, 2, "/bin/x")]),
            )
            .note("LINUX", NT_X86_XSTATE, &[0; 5])
            .bytes
    }

    #[test]
    fn decodes_core_notes() {
        let bytes = sample();
        let notes = decode_all(&bytes).unwrap();
        let NoteData::PrStatus(t) = &notes[0] else {
            panic!("{notes:?}")
        };
        assert_eq!((t.tid, t.signal), (7, 11));
        assert_eq!(t.registers.pc(), Some(0x401234));
        assert_eq!(t.registers.sp(), Some(0x7ffe0000));
        assert_eq!(t.registers.list()[0], ("rip", 0x401234));
        let NoteData::PrPsInfo(p) = &notes[1] else {
            panic!("{notes:?}")
        };
        assert_eq!(
            (p.pid, p.ppid, p.uid, p.gid, p.state),
            (7, 1, 1000, 100, b'R')
        );
        assert_eq!((p.fname, p.psargs), (&b"crash"[..], &b"./crash a b"[..]));
        let NoteData::Auxv(a) = &notes[2] else {
            panic!("{notes:?}")
        };
        assert_eq!(a.len(), 2, "stops at AT_NULL");
        assert_eq!((a[0].name(), a[0].value), (Some("AT_ENTRY"), 0x401000));
        assert_eq!(a[1].name(), Some("AT_SYSINFO_EHDR"));
        let NoteData::File(f) = &notes[3] else {
            panic!("{notes:?}")
        };
        assert_eq!(f[0].file_offset, 2 * 4096);
        assert_eq!(f[0].path, Path::new("/bin/x"));
        assert_eq!(notes[4], NoteData::X86XState);
    }

    #[test]
    fn aarch64_registers_are_unsupported() {
        let mut d = vec![0u8; 392];
        d[32] = 9;
        let bytes = NoteBuilder::default().note("CORE", NT_PRSTATUS, &d).bytes;
        let note = parse_notes(&bytes, 0, 4).next().unwrap().unwrap();
        let NoteData::PrStatus(t) = note.decode(Arch::Aarch64).unwrap() else {
            panic!()
        };
        assert_eq!(t.tid, 9);
        assert!(
            matches!(t.registers, Registers::Unsupported { arch: Arch::Aarch64, raw } if raw.len() == 272)
        );
        assert_eq!(t.registers.pc(), None);
        assert!(t.registers.list().is_empty());
    }

    #[test]
    fn truncated_at_every_offset_errs_and_never_panics() {
        let bytes = sample();
        let full = decode_all(&bytes).unwrap().len();
        for cut in 0..bytes.len() {
            match decode_all(&bytes[..cut]) {
                // Only the padding after the last descriptor may be cut.
                Ok(notes) => assert!(notes.len() < full || cut > bytes.len() - 4, "cut at {cut}"),
                // The offset is where the missing part starts: at most the
                // cut plus the padding before a descriptor.
                Err(e) => assert!(
                    e.offset >= 0x100 && e.offset <= 0x100 + cut as u64 + 3,
                    "{e}"
                ),
            }
        }
    }

    #[test]
    fn zero_padding_ends_the_notes_only_when_asked() {
        let mut bytes = NoteBuilder::default()
            .note("CORE", NT_PRSTATUS, &[0; 8])
            .bytes;
        bytes.extend([0; 30]);
        let notes: Vec<_> = parse_notes(&bytes, 0, 4).stop_at_zero_padding().collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        // The descriptor's own zeros are read whole.
        assert_eq!(notes[0].as_ref().unwrap().desc, &[0; 8]);
        // Read as notes, 30 zero bytes are two empty notes and a cut one.
        let kinds: Vec<_> = parse_notes(&bytes, 0, 4)
            .map(|n| n.map(|n| n.kind))
            .collect();
        assert_eq!(kinds.len(), 4);
        assert!(kinds[3].as_ref().unwrap_err().expected.contains("n_descsz"));
        assert_eq!(
            parse_notes(&[0; 64], 0, 4).stop_at_zero_padding().count(),
            0
        );
    }

    #[test]
    fn build_ids_are_found_after_other_notes_and_not_past_a_bad_one() {
        let id: Vec<u8> = (1..=20).collect();
        let notes = NoteBuilder::default()
            .note("Linux", 1, b"6.1\0")
            .note("GNU", NT_GNU_BUILD_ID, &id)
            .bytes;
        assert_eq!(build_id(&notes, 0, 4), Some(&id[..]));
        let notes = NoteBuilder::default()
            .raw_header(4, 1 << 20, 1)
            .note("GNU", NT_GNU_BUILD_ID, &id)
            .bytes;
        assert_eq!(build_id(&notes, 0, 4), None);
    }

    #[test]
    fn hostile_sizes_are_errors() {
        let huge_name = NoteBuilder::default().raw_header(u32::MAX, 4, 1).bytes;
        let err = parse_notes(&huge_name, 0x40, 4)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.offset, 0x40 + 12);
        assert!(err.expected.contains("note name"), "{err}");
        let mut huge_desc = NoteBuilder::default().raw_header(5, u32::MAX, 1).bytes;
        huge_desc.extend_from_slice(b"CORE\0\0\0\0");
        let err = parse_notes(&huge_desc, 0, 4).next().unwrap().unwrap_err();
        assert_eq!(err.offset, 20);
        assert!(err.expected.contains("descriptor"), "{err}");
        let mut it = parse_notes(&huge_desc, 0, 4);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none(), "stops after an error");
    }

    #[test]
    fn nt_file_count_that_would_overflow() {
        for count in [u64::MAX, u64::MAX / 24 + 1, 1 << 40, 2] {
            let mut d = file_note(4096, &[(1, 2, 0, "/a")]);
            d[..8].copy_from_slice(&count.to_le_bytes());
            let bytes = NoteBuilder::default().note("CORE", NT_FILE, &d).bytes;
            let err = decode_all(&bytes).unwrap_err();
            assert_eq!(err.offset, 0x100 + 20, "{err}");
        }
    }

    #[test]
    fn nt_file_paths_must_be_terminated() {
        let mut d = file_note(4096, &[(1, 2, 0, "/a"), (3, 4, 0, "/b")]);
        d.pop();
        let bytes = NoteBuilder::default().note("CORE", NT_FILE, &d).bytes;
        let err = decode_all(&bytes).unwrap_err();
        assert!(err.expected.contains("NUL"), "{err}");
        let d = file_note(4096, &[(1, 2, 0, "/a"), (3, 4, 0, "/b")]);
        let d = &d[..d.len() - 3];
        let bytes = NoteBuilder::default().note("CORE", NT_FILE, d).bytes;
        assert!(decode_all(&bytes).is_err());
    }

    #[test]
    fn short_descriptors_are_errors() {
        for kind in [NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO] {
            let bytes = NoteBuilder::default().note("CORE", kind, &[0; 20]).bytes;
            let err = decode_all(&bytes).unwrap_err();
            assert_eq!(err.offset, 0x100 + 20, "{err}");
        }
        let bytes = NoteBuilder::default()
            .note("XYZ", NT_PRSTATUS, &[0; 3])
            .bytes;
        assert_eq!(decode_all(&bytes).unwrap(), vec![NoteData::Other]);
    }
}
