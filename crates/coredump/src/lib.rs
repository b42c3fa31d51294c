//! ELF core dumps of Linux user processes, read without copying.
//!
//! The caller maps or reads the core file; [`Core::parse`] checks the ELF
//! header (`ET_CORE`, 64-bit little-endian, x86-64 or aarch64), reads the
//! program headers and decodes the notes: the threads with their registers
//! (`NT_PRSTATUS`, the crashing thread first), the process
//! (`NT_PRPSINFO`), the fatal signal (`NT_SIGINFO`), the auxiliary vector
//! (`NT_AUXV`) and the file-backed mappings (`NT_FILE`). Memory of the
//! `PT_LOAD` segments is read with [`Core::read`], and [`Core::modules`]
//! groups the mappings by file and finds each one's build-id in the dumped
//! ELF headers. x86-64 registers are decoded; aarch64 cores are recognised
//! and their registers kept raw ([`Registers::Unsupported`]).
//!
//! [`Unwinder`] walks each thread's stack from its registers, with the
//! `.eh_frame` CFI of the files on disk (the core holds no code or unwind
//! tables of file mappings) and the frame-pointer chain where there is no
//! CFI (x86-64 only for now).
//!
//! [`CoreReport::new`] is `kscope core info`: the process, the signal
//! (a SIGSEGV next to the stack pointer is a stack overflow), the modules
//! whose file is another build, and each thread's frames symbolized by
//! `kscope-symbols`, as data that serializes to the command's JSON.
//!
//! The bytes-level format (header, notes and their contents) is
//! `kscope-elf`'s, re-exported here. Every parse error carries the byte
//! offset and what was expected there; hostile input gives errors, never
//! panics or allocations beyond the size of the input.
//!
//! ```no_run
//! let bytes = std::fs::read("core")?;
//! let core = kscope_coredump::Core::parse(&bytes)?;
//! if let Some(sig) = core.siginfo() {
//!     println!("{}", sig.describe()); // SIGSEGV: address not mapped, at 0x0
//! }
//! for thread in core.threads() {
//!     println!("thread {} pc {:#x?}", thread.tid, thread.registers.pc());
//! }
//! for module in core.modules() {
//!     println!("{:#x} {}", module.start, module.path.display());
//! }
//! let mut unwinder = kscope_coredump::Unwinder::new(&core);
//! for frame in unwinder.backtrace(&core.threads()[0].registers) {
//!     println!("{:#x}", frame.pc);
//! }
//! let options = kscope_coredump::ReportOptions::default();
//! let report = kscope_coredump::CoreReport::new(&core, "core".as_ref(), &options);
//! println!("{} threads", report.threads.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod report;
mod sys;
mod unwind;

use std::collections::HashMap;
use std::path::Path;

pub use kscope_elf::{
    AT_BASE, AT_ENTRY, AT_EXECFN, AT_PAGESZ, AT_PHDR, AT_SYSINFO_EHDR, Arch, AuxEntry, ELF_MAGIC,
    Error, MappedFile, NT_AUXV, NT_FILE, NT_FPREGSET, NT_GNU_BUILD_ID, NT_PRPSINFO, NT_PRSTATUS,
    NT_SIGINFO, NT_X86_XSTATE, Note, NoteData, Notes, PrStatusLayout, ProcessInfo, Registers,
    SI_KERNEL, SigInfo, Thread, X86_64Registers, code_text, parse_notes, signal_name,
};
pub use report::{
    CoreReport, FrameReport, Mismatch, Process, ReportOptions, STACK_OVERFLOW_REACH, Signal,
    ThreadReport,
};
pub use sys::{CoreFile, OpenError};
pub use unwind::{BuildIdMismatch, FrameSource, MAX_FRAMES, Unwinder, UnwoundFrame};

use kscope_elf::{CoreHeader, PHDR_SIZE, PT_LOAD, PT_NOTE, ProgramHeader, Reader};

/// A `PT_LOAD` segment: a range of the process's memory and the bytes of
/// it that the core holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`: the size of the mapping.
    pub memsz: u64,
    /// `p_flags` (PF_X 1, PF_W 2, PF_R 4).
    pub flags: u32,
    /// The dumped bytes: `p_filesz` bytes at `p_offset`, cut where the file
    /// ends when the core is truncated.
    pub data: &'a [u8],
    /// `p_filesz` as the header says.
    pub filesz: u64,
}

/// A file mapped into the process, all its `NT_FILE` mappings together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module<'a> {
    /// The path as the kernel printed it.
    pub path: &'a Path,
    /// Lowest start of its mappings.
    pub start: u64,
    /// Highest end of its mappings.
    pub end: u64,
    /// Mapped address minus link-time address: the first mapping's start
    /// minus the page-aligned lowest `PT_LOAD` vaddr of the ELF header
    /// dumped there. `None` when that header is not in the core or is not
    /// an ELF header.
    pub load_bias: Option<u64>,
    /// The `NT_GNU_BUILD_ID` found through the dumped ELF header, when the
    /// core holds it.
    pub build_id: Option<&'a [u8]>,
}

/// A parsed core dump, borrowing the file's bytes.
#[derive(Debug, Clone)]
pub struct Core<'a> {
    arch: Arch,
    segments: Vec<Segment<'a>>,
    note_segments: Vec<(&'a [u8], u64)>,
    threads: Vec<Thread<'a>>,
    process: Option<ProcessInfo<'a>>,
    siginfo: Option<SigInfo>,
    auxv: Vec<AuxEntry>,
    files: Vec<MappedFile<'a>>,
    page_size: u64,
}

impl<'a> Core<'a> {
    /// Parses the ELF header, program headers and notes of a core file.
    pub fn parse(bytes: &'a [u8]) -> Result<Core<'a>, Error> {
        let header = CoreHeader::parse(bytes)?;
        let arch = Arch::from_machine(header.machine).ok_or_else(|| {
            Error::at(
                18,
                format!(
                    "e_machine x86-64 (62) or aarch64 (183), found {}",
                    header.machine
                ),
            )
        })?;
        let mut core = Core {
            arch,
            segments: Vec::new(),
            note_segments: Vec::new(),
            threads: Vec::new(),
            process: None,
            siginfo: None,
            auxv: Vec::new(),
            files: Vec::new(),
            page_size: 4096,
        };
        for ph in header.program_headers()? {
            let ph = ph?;
            match ph.kind {
                PT_LOAD => {
                    // Bytes past p_memsz are not memory, even if p_filesz says so.
                    let start = to_usize(ph.offset).unwrap_or(usize::MAX).min(bytes.len());
                    let end = to_usize(ph.offset.saturating_add(ph.filesz.min(ph.memsz)))
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    core.segments.push(Segment {
                        vaddr: ph.vaddr,
                        memsz: ph.memsz,
                        flags: ph.flags,
                        data: &bytes[start..end.max(start)],
                        filesz: ph.filesz,
                    });
                }
                PT_NOTE => {
                    let data = header.note_segment(&ph)?;
                    core.note_segments.push((data, ph.offset));
                }
                _ => {}
            }
        }
        core.segments.sort_by_key(|s| s.vaddr);
        for (data, offset) in core.note_segments.clone() {
            core.read_notes(data, offset)?;
        }
        Ok(core)
    }

    fn read_notes(&mut self, data: &'a [u8], offset: u64) -> Result<(), Error> {
        for note in parse_notes(data, offset, 4) {
            match note?.decode(self.arch)? {
                NoteData::PrStatus(thread) => self.threads.push(thread),
                NoteData::PrPsInfo(info) => self.process = Some(info),
                NoteData::SigInfo(info) => self.siginfo = Some(info),
                NoteData::Auxv(auxv) => {
                    if let Some(e) = auxv.iter().find(|e| e.key == AT_PAGESZ) {
                        self.page_size = e.value;
                    }
                    self.auxv = auxv;
                }
                NoteData::File(files) => self.files = files,
                NoteData::FpRegSet => {
                    if let Some(t) = self.threads.last_mut() {
                        t.has_fpregset = true;
                    }
                }
                NoteData::X86XState => {
                    if let Some(t) = self.threads.last_mut() {
                        t.has_xstate = true;
                    }
                }
                NoteData::GnuBuildId(_) | NoteData::Other => {}
            }
        }
        Ok(())
    }

    /// The machine the core was dumped on.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The threads in note order; the first is the one that crashed.
    pub fn threads(&self) -> &[Thread<'a>] {
        &self.threads
    }

    /// The process, from `NT_PRPSINFO`.
    pub fn process(&self) -> Option<&ProcessInfo<'a>> {
        self.process.as_ref()
    }

    /// The fatal signal, from `NT_SIGINFO`.
    pub fn siginfo(&self) -> Option<&SigInfo> {
        self.siginfo.as_ref()
    }

    /// The auxiliary vector without its `AT_NULL`.
    pub fn auxv(&self) -> &[AuxEntry] {
        &self.auxv
    }

    /// The value of auxiliary vector entry `key` (`AT_ENTRY`...).
    pub fn aux_value(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|e| e.key == key).map(|e| e.value)
    }

    /// The file-backed mappings, from `NT_FILE`, in address order.
    pub fn mapped_files(&self) -> &[MappedFile<'a>] {
        &self.files
    }

    /// The `PT_LOAD` segments in address order.
    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }

    /// All notes of all `PT_NOTE` segments, undecoded.
    pub fn notes(&self) -> impl Iterator<Item = Result<Note<'a>, Error>> + '_ {
        self.note_segments
            .iter()
            .flat_map(|&(data, offset)| parse_notes(data, offset, 4))
    }

    /// Whether a note is named "VMCOREINFO": the core of a whole kernel
    /// (`/proc/vmcore`, QEMU's `dump-guest-memory`), not of a process.
    pub fn has_vmcoreinfo(&self) -> bool {
        self.notes()
            .any(|note| note.is_ok_and(|n| n.name == b"VMCOREINFO"))
    }

    /// Whether some `PT_LOAD` segment's `p_filesz` bytes run past the end
    /// of the file (a core cut short by RLIMIT_CORE or a full disk).
    pub fn is_truncated(&self) -> bool {
        self.segments
            .iter()
            .any(|s| (s.data.len() as u64) < s.filesz.min(s.memsz))
    }

    /// `len` bytes of process memory at `address`, borrowed from the core.
    ///
    /// `None` when any of those bytes is not in the core: outside every
    /// `PT_LOAD` segment, in the part of a segment past `p_filesz` (memory
    /// the kernel did not dump, such as the code of file-backed mappings;
    /// it is not zeros), past the end of a truncated file, or across two
    /// segments (a read never spans segments).
    pub fn read(&self, address: u64, len: usize) -> Option<&'a [u8]> {
        let i = self.segments.partition_point(|s| s.vaddr <= address);
        let segment = self.segments.get(i.checked_sub(1)?)?;
        let start = to_usize(address - segment.vaddr)?;
        let end = start.checked_add(len)?;
        segment.data.get(start..end)
    }

    /// The little-endian u64 at `address`, when the core holds it.
    pub fn read_u64(&self, address: u64) -> Option<u64> {
        let b = self.read(address, 8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    /// The mapped files grouped by path, in order of their lowest address,
    /// each with its load bias and build-id when the core holds its ELF
    /// header.
    pub fn modules(&self) -> Vec<Module<'a>> {
        let mut modules: Vec<Module<'a>> = Vec::new();
        let mut first_mapping: Vec<(u64, u64)> = Vec::new();
        // A hash map keeps hostile cores with millions of entries linear.
        let mut index: HashMap<&Path, usize> = HashMap::new();
        for f in &self.files {
            match index.get(f.path).copied() {
                Some(i) => {
                    let m = &mut modules[i];
                    m.start = m.start.min(f.start);
                    m.end = m.end.max(f.end);
                    if f.start < first_mapping[i].0 {
                        first_mapping[i] = (f.start, f.file_offset);
                    }
                }
                None => {
                    index.insert(f.path, modules.len());
                    modules.push(Module {
                        path: f.path,
                        start: f.start,
                        end: f.end,
                        load_bias: None,
                        build_id: None,
                    });
                    first_mapping.push((f.start, f.file_offset));
                }
            }
        }
        for (m, &(start, file_offset)) in modules.iter_mut().zip(&first_mapping) {
            if file_offset == 0
                && let Some((bias, build_id)) = self.mapped_elf(start)
            {
                m.load_bias = Some(bias);
                m.build_id = build_id;
            }
        }
        modules.sort_by_key(|m| m.start);
        modules
    }

    /// The load bias and build-id of the ELF image whose header is dumped
    /// at `base`: its program headers, lowest `PT_LOAD` vaddr and
    /// `PT_NOTE` segments, all read from the core's memory.
    fn mapped_elf(&self, base: u64) -> Option<(u64, Option<&'a [u8]>)> {
        let header = Reader::new(self.read(base, 64)?, base);
        if header.slice(0, 4, "").ok()? != ELF_MAGIC || header.slice(4, 2, "").ok()? != [2, 1] {
            return None;
        }
        let phoff = header.u64(32, "").ok()?;
        let phnum = u64::from(header.u16(56, "").ok()?);
        if u64::from(header.u16(54, "").ok()?) != PHDR_SIZE {
            return None;
        }
        let table = self.read(base.checked_add(phoff)?, to_usize(phnum * PHDR_SIZE)?)?;
        let phdrs = table
            .chunks_exact(PHDR_SIZE as usize)
            .filter_map(|p| ProgramHeader::parse(Reader::new(p, 0)).ok());
        let lowest = phdrs
            .clone()
            .filter(|p| p.kind == PT_LOAD)
            .map(|p| p.vaddr)
            .min()?;
        let page_size = if self.page_size.is_power_of_two() {
            self.page_size
        } else {
            4096
        };
        let page_mask = !(page_size - 1);
        let bias = base.wrapping_sub(lowest & page_mask);
        let build_id = phdrs.filter(|p| p.kind == PT_NOTE).find_map(|p| {
            let at = p.vaddr.wrapping_add(bias);
            let notes = self.read(at, to_usize(p.filesz)?)?;
            kscope_elf::build_id(notes, at, p.align)
        });
        Some((bias, build_id))
    }
}

fn to_usize(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

#[cfg(test)]
mod tests;
