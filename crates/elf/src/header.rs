//! The ELF header of a 64-bit little-endian core (`ET_CORE`) and its
//! program headers, as Linux writes them for a process (`fs/binfmt_elf.c`)
//! and for the whole machine (`/proc/vmcore`, QEMU's `dump-guest-memory`).
//! More than 0xfffe program headers are counted by section 0's `sh_info`
//! (`PN_XNUM`).

use crate::{Error, Reader};

/// The first bytes of every ELF file.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
/// `e_type` of a core file.
pub const ET_CORE: u16 = 4;
/// `p_type` of a loadable segment: memory.
pub const PT_LOAD: u32 = 1;
/// `p_type` of a note segment.
pub const PT_NOTE: u32 = 4;
/// `e_phnum` that says the count is in section 0's `sh_info`.
const PN_XNUM: u16 = 0xffff;
/// The size of an ELF64 program header.
pub const PHDR_SIZE: u64 = 56;

/// Why a file is not a 64-bit little-endian ELF core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// `EI_CLASS` is not 2: a 32-bit ELF file (or garbage).
    #[error("at byte 0x4: expected EI_CLASS 2 (64-bit), found {0}")]
    Not64Bit(u8),
    /// `EI_DATA` is not 1: a big-endian ELF file (or garbage).
    #[error("at byte 0x5: expected EI_DATA 1 (little-endian), found {0}")]
    NotLittleEndian(u8),
    /// Anything else: not ELF, not a core, a header cut short.
    #[error(transparent)]
    Format(#[from] Error),
}

impl From<HeaderError> for Error {
    /// The error at the identification byte for a file of another class
    /// or byte order, for a reader that reads nothing else.
    fn from(e: HeaderError) -> Error {
        match e {
            HeaderError::Not64Bit(_) => Error::at(4, "EI_CLASS 2 (64-bit)"),
            HeaderError::NotLittleEndian(_) => Error::at(5, "EI_DATA 1 (little-endian)"),
            HeaderError::Format(e) => e,
        }
    }
}

/// The ELF header of a core file, borrowing the file.
///
/// ```
/// let mut file = vec![0u8; 64];
/// file[..6].copy_from_slice(b"\x7fELF\x02\x01");
/// file[16] = 4; // ET_CORE
/// file[18] = 62; // x86-64
/// file[54] = 56; // e_phentsize
/// let header = kscope_elf::CoreHeader::parse(&file)?;
/// assert_eq!(header.machine, 62);
/// assert_eq!(header.program_headers()?.count(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CoreHeader<'a> {
    file: Reader<'a>,
    /// `e_machine` (62 for x86-64, 183 for aarch64).
    pub machine: u16,
}

impl<'a> CoreHeader<'a> {
    /// Checks the identification bytes and `e_type`, and reads
    /// `e_machine`, which the caller judges.
    pub fn parse(bytes: &'a [u8]) -> Result<CoreHeader<'a>, HeaderError> {
        let r = Reader::new(bytes, 0);
        if r.slice(0, 4, "ELF magic")? != ELF_MAGIC {
            return Err(Error::at(0, "ELF magic \\x7fELF").into());
        }
        let class = r.u8(4, "EI_CLASS")?;
        if class != 2 {
            return Err(HeaderError::Not64Bit(class));
        }
        let data = r.u8(5, "EI_DATA")?;
        if data != 1 {
            return Err(HeaderError::NotLittleEndian(data));
        }
        let e_type = r.u16(16, "e_type")?;
        if e_type != ET_CORE {
            return Err(Error::at(16, format!("e_type ET_CORE (4), found {e_type}")).into());
        }
        Ok(CoreHeader {
            file: r,
            machine: r.u16(18, "e_machine")?,
        })
    }

    /// The program headers, each read when the iterator comes to it (the
    /// count is bounded by the file's size that way).
    pub fn program_headers(&self) -> Result<ProgramHeaders<'a>, Error> {
        let r = self.file;
        let phoff = r.u64(32, "e_phoff")?;
        let shoff = r.u64(40, "e_shoff")?;
        let phentsize = r.u16(54, "e_phentsize")?;
        if u64::from(phentsize) != PHDR_SIZE {
            return Err(Error::at(54, format!("e_phentsize 56, found {phentsize}")));
        }
        let mut count = u64::from(r.u16(56, "e_phnum")?);
        if count == u64::from(PN_XNUM) {
            // More than 0xfffe headers: section 0's sh_info has the count.
            count = u64::from(r.u32(
                shoff.saturating_add(44),
                "sh_info of section 0 (the program header count)",
            )?);
        }
        Ok(ProgramHeaders {
            file: r,
            phoff,
            next: 0,
            count,
        })
    }

    /// The bytes of the note segment `ph` in the file.
    pub fn note_segment(&self, ph: &ProgramHeader) -> Result<&'a [u8], Error> {
        self.file
            .slice(ph.offset, ph.filesz, "PT_NOTE segment inside the file")
    }
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type` (`PT_LOAD`, `PT_NOTE`...).
    pub kind: u32,
    /// `p_flags` (PF_X 1, PF_W 2, PF_R 4).
    pub flags: u32,
    /// `p_offset`: where the segment's bytes are in the file.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`: how many bytes the file holds.
    pub filesz: u64,
    /// `p_memsz`: the size in memory.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
    /// Where this header itself is, as `ph`'s base says.
    pub at: u64,
}

impl ProgramHeader {
    /// The header in the first [`PHDR_SIZE`] bytes of `ph`.
    pub fn parse(ph: Reader<'_>) -> Result<ProgramHeader, Error> {
        ph.slice(0, PHDR_SIZE, "program header")?;
        Ok(ProgramHeader {
            kind: ph.u32(0, "p_type")?,
            flags: ph.u32(4, "p_flags")?,
            offset: ph.u64(8, "p_offset")?,
            vaddr: ph.u64(16, "p_vaddr")?,
            paddr: ph.u64(24, "p_paddr")?,
            filesz: ph.u64(32, "p_filesz")?,
            memsz: ph.u64(40, "p_memsz")?,
            align: ph.u64(48, "p_align")?,
            at: ph.base,
        })
    }
}

/// The program headers of a core, in file order. Yields an error once, at
/// the first header that is not in the file, then stops.
#[derive(Debug, Clone)]
pub struct ProgramHeaders<'a> {
    file: Reader<'a>,
    phoff: u64,
    next: u64,
    count: u64,
}

impl Iterator for ProgramHeaders<'_> {
    type Item = Result<ProgramHeader, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let at = self
            .phoff
            .saturating_add(self.next.saturating_mul(PHDR_SIZE));
        self.next += 1;
        let header = self
            .file
            .slice(at, PHDR_SIZE, "program header")
            .and_then(|bytes| ProgramHeader::parse(Reader::new(bytes, at)));
        if header.is_err() {
            self.next = self.count;
        }
        Some(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, e_type: u16, phnum: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        h[16..18].copy_from_slice(&e_type.to_le_bytes());
        h[18..20].copy_from_slice(&62u16.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&phnum.to_le_bytes());
        h
    }

    fn phdr(kind: u32, offset: u64, filesz: u64) -> Vec<u8> {
        let mut p = vec![0u8; 56];
        p[..4].copy_from_slice(&kind.to_le_bytes());
        p[4..8].copy_from_slice(&6u32.to_le_bytes());
        p[8..16].copy_from_slice(&offset.to_le_bytes());
        p[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
        p[24..32].copy_from_slice(&0x2000u64.to_le_bytes());
        p[32..40].copy_from_slice(&filesz.to_le_bytes());
        p[40..48].copy_from_slice(&(filesz * 2).to_le_bytes());
        p[48..56].copy_from_slice(&4u64.to_le_bytes());
        p
    }

    #[test]
    fn identification_and_type_are_checked_in_order() {
        let err = |bytes: &[u8]| CoreHeader::parse(bytes).unwrap_err();
        assert_eq!(
            err(b"\x7fEL").to_string(),
            "at byte 0x0: expected ELF magic (4 bytes; only 3 remain)"
        );
        assert_eq!(
            err(b"MZ\0\0\x02\x01").to_string(),
            "at byte 0x0: expected ELF magic \\x7fELF"
        );
        assert_eq!(err(&header(1, 1, 4, 0)), HeaderError::Not64Bit(1));
        assert_eq!(err(&header(2, 2, 4, 0)), HeaderError::NotLittleEndian(2));
        assert_eq!(
            Error::from(err(&header(2, 2, 4, 0))).to_string(),
            "at byte 0x5: expected EI_DATA 1 (little-endian)"
        );
        assert_eq!(
            err(&header(2, 1, 2, 0)).to_string(),
            "at byte 0x10: expected e_type ET_CORE (4), found 2"
        );
        let cut = &header(2, 1, 4, 0)[..19];
        assert!(err(cut).to_string().contains("e_machine"), "{}", err(cut));
    }

    #[test]
    fn program_headers_are_read_one_by_one() {
        let mut file = header(2, 1, 4, 2);
        file.extend(phdr(PT_NOTE, 176, 4));
        file.extend(phdr(PT_LOAD, 180, 8));
        file.extend(b"note");
        let core = CoreHeader::parse(&file).unwrap();
        let headers: Vec<_> = core
            .program_headers()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(headers.len(), 2);
        assert_eq!(
            headers[1],
            ProgramHeader {
                kind: PT_LOAD,
                flags: 6,
                offset: 180,
                vaddr: 0x1000,
                paddr: 0x2000,
                filesz: 8,
                memsz: 16,
                align: 4,
                at: 120,
            }
        );
        assert_eq!(core.note_segment(&headers[0]).unwrap(), b"note");
        let err = core.note_segment(&headers[1]).unwrap_err();
        assert_eq!(err.offset, 180);
        assert!(err.expected.contains("PT_NOTE"), "{err}");
    }

    #[test]
    fn a_table_past_the_end_errs_once() {
        let mut file = header(2, 1, 4, 3);
        file.extend(phdr(PT_LOAD, 0, 0));
        let core = CoreHeader::parse(&file).unwrap();
        let mut headers = core.program_headers().unwrap();
        assert!(headers.next().unwrap().is_ok());
        let err = headers.next().unwrap().unwrap_err();
        assert_eq!(err.offset, 120);
        assert!(err.expected.contains("program header"), "{err}");
        assert!(headers.next().is_none(), "stops after an error");
    }

    #[test]
    fn pn_xnum_takes_the_count_from_section_0() {
        let mut file = header(2, 1, 4, 0xffff);
        file[40..48].copy_from_slice(&64u64.to_le_bytes());
        let core = CoreHeader::parse(&file).unwrap();
        let err = core.program_headers().unwrap_err();
        assert!(err.expected.contains("sh_info"), "{err}");
        file.resize(64 + 64, 0);
        file[64 + 44..64 + 48].copy_from_slice(&1u32.to_le_bytes());
        let core = CoreHeader::parse(&file).unwrap();
        // The one header is section 0's bytes, read as a program header.
        assert_eq!(core.program_headers().unwrap().count(), 1);
        let mut bad = header(2, 1, 4, 0);
        bad[54] = 32;
        let err = CoreHeader::parse(&bad)
            .unwrap()
            .program_headers()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "at byte 0x36: expected e_phentsize 56, found 32"
        );
    }
}
