//! ELF vmcores: `/proc/vmcore` as kexec's capture kernel shows it (and
//! what `makedumpfile -E` or `cp` save of it), and QEMU's
//! `dump-guest-memory` without a compression option. ELF64 little-endian
//! `ET_CORE`; physical memory is the `PT_LOAD` segments by `p_paddr` (QEMU
//! sets `p_vaddr` to 0 or to `p_paddr`; kexec sets the kernel's virtual
//! address of the range, which this reader does not need), and the notes
//! are the `PT_NOTE` segments.

use kscope_elf::{CoreHeader, HeaderError, PT_LOAD, PT_NOTE, Reader};

use crate::notes::{NoteContents, read_notes};
use crate::{Absence, Error, MemoryRange};

/// A `PT_LOAD` segment as the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// `p_paddr`: the physical address of the segment's memory.
    pub paddr: u64,
    /// `p_vaddr`: the kernel's virtual address of it (kexec), or 0 or
    /// `p_paddr` (QEMU).
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_filesz`: how much of it the file holds.
    pub filesz: u64,
    /// `p_offset`.
    pub offset: u64,
}

/// A part of physical memory and where the file holds it; the parts are
/// disjoint and in address order.
#[derive(Debug, Clone, Copy)]
struct Extent {
    paddr: u64,
    memsz: u64,
    filesz: u64,
    offset: u64,
}

/// An ELF vmcore's memory map.
#[derive(Debug, Clone)]
pub(crate) struct ElfDump {
    pub(crate) machine: u16,
    pub(crate) segments: Vec<LoadSegment>,
    extents: Vec<Extent>,
}

impl ElfDump {
    /// Reads the ELF header, program headers and notes.
    pub(crate) fn parse(bytes: &[u8]) -> Result<(ElfDump, NoteContents), Error> {
        let header = CoreHeader::parse(bytes).map_err(|e| match e {
            HeaderError::Not64Bit(_) => Error::Unsupported {
                what: "a 32-bit ELF vmcore (EI_CLASS 1); only ELF64 dumps are read".into(),
            },
            HeaderError::NotLittleEndian(_) => Error::Unsupported {
                what: "a big-endian ELF vmcore; only little-endian dumps are read".into(),
            },
            HeaderError::Format(e) => e.into(),
        })?;
        let machine = header.machine;
        let mut segments = Vec::new();
        let mut notes = NoteContents::default();
        for ph in header.program_headers()? {
            let ph = ph?;
            match ph.kind {
                PT_LOAD => {
                    if ph.paddr.checked_add(ph.memsz).is_none() {
                        return Err(Error::at(
                            ph.at + 24,
                            "a PT_LOAD whose p_paddr + p_memsz fits in 64 bits",
                        ));
                    }
                    segments.push(LoadSegment {
                        vaddr: ph.vaddr,
                        paddr: ph.paddr,
                        filesz: ph.filesz,
                        memsz: ph.memsz,
                        offset: ph.offset,
                    });
                }
                PT_NOTE => read_notes(header.note_segment(&ph)?, ph.offset, machine, &mut notes)?,
                _ => {}
            }
        }
        let extents = disjoint_extents(&segments);
        Ok((
            ElfDump {
                machine,
                segments,
                extents,
            },
            notes,
        ))
    }

    /// The physical ranges the segments cover, merged where they touch.
    pub(crate) fn ranges(&self) -> Vec<MemoryRange> {
        let mut out: Vec<MemoryRange> = Vec::new();
        for e in &self.extents {
            let end = e.paddr + e.memsz;
            match out.last_mut() {
                Some(last) if last.end == e.paddr => last.end = end,
                _ => out.push(MemoryRange {
                    start: e.paddr,
                    end,
                }),
            }
        }
        out
    }

    /// Copies physical memory at `paddr` into `buf`.
    pub(crate) fn read(&self, bytes: &[u8], paddr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr.wrapping_add(done as u64);
            let missing = |why| Error::PageMissing { paddr: addr, why };
            let i = self.extents.partition_point(|e| e.paddr <= addr);
            let e = i
                .checked_sub(1)
                .map(|i| self.extents[i])
                .filter(|e| addr - e.paddr < e.memsz)
                .ok_or(missing(Absence::NoSuchMemory))?;
            let within = addr - e.paddr;
            if within >= e.filesz {
                return Err(missing(Absence::NotWritten));
            }
            let n = ((e.filesz - within).min((buf.len() - done) as u64)) as usize;
            let src = Reader::new(bytes, 0).slice(
                e.offset.saturating_add(within),
                n as u64,
                "PT_LOAD data (the dump is truncated)",
            )?;
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(())
    }
}

/// The segments' memory as disjoint extents in address order. Where
/// segments overlap (kexec describes the kernel image both in its own
/// segment and in the RAM segment that holds it; the bytes are the same),
/// the first in address order (the longest of those starting together)
/// serves the overlap.
fn disjoint_extents(segments: &[LoadSegment]) -> Vec<Extent> {
    let mut sorted: Vec<&LoadSegment> = segments.iter().filter(|s| s.memsz > 0).collect();
    sorted.sort_by_key(|s| (s.paddr, std::cmp::Reverse(s.memsz)));
    let mut out = Vec::with_capacity(sorted.len());
    let mut covered_end = 0u64;
    for s in sorted {
        let end = s.paddr + s.memsz;
        if !out.is_empty() && end <= covered_end {
            continue;
        }
        let start = if out.is_empty() {
            s.paddr
        } else {
            s.paddr.max(covered_end)
        };
        let skip = start - s.paddr;
        out.push(Extent {
            paddr: start,
            memsz: end - start,
            filesz: s.filesz.min(s.memsz).saturating_sub(skip),
            offset: s.offset.saturating_add(skip),
        });
        covered_end = end;
    }
    out
}
