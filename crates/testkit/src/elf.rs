//! Builders of ELF cores for tests: notes written as the kernel writes
//! them, the descriptors of `NT_PRSTATUS`, `NT_PRPSINFO` and `NT_FILE`
//! (x86-64 layouts), an ELF64 header and program headers.

/// Writes notes as the kernel does: header, name and NUL padded to 4,
/// descriptor padded to 4.
///
/// ```
/// let notes = kscope_testkit::elf::NoteBuilder::default().note("GNU", 3, &[1, 2]).bytes;
/// assert_eq!(notes.len(), 12 + 4 + 4);
/// ```
#[derive(Debug, Default)]
pub struct NoteBuilder {
    /// The notes written so far.
    pub bytes: Vec<u8>,
}

impl NoteBuilder {
    /// Appends a note of owner `name` (its NUL added), type `kind`.
    pub fn note(mut self, name: &str, kind: u32, desc: &[u8]) -> NoteBuilder {
        let namesz = name.len() as u32 + 1;
        self = self.raw_header(namesz, desc.len() as u32, kind);
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(desc);
        self.pad();
        self
    }

    /// Appends a note header alone, with any sizes.
    pub fn raw_header(mut self, namesz: u32, descsz: u32, kind: u32) -> NoteBuilder {
        for v in [namesz, descsz, kind] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

/// An x86-64 `struct elf_prstatus` (336 bytes) of thread `tid` handling
/// signal `cursig`, with `rip` and `rsp` set and every other register 0.
pub fn prstatus(tid: i32, cursig: u16, rip: u64, rsp: u64) -> Vec<u8> {
    let mut d = vec![0u8; 336];
    d[12..14].copy_from_slice(&cursig.to_le_bytes());
    d[32..36].copy_from_slice(&tid.to_le_bytes());
    d[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&rip.to_le_bytes());
    d[112 + 19 * 8..112 + 20 * 8].copy_from_slice(&rsp.to_le_bytes());
    d
}

/// A `struct elf_prpsinfo` (136 bytes): state 'R', uid 1000, gid 100,
/// ppid 1.
pub fn prpsinfo(pid: i32, fname: &str, psargs: &str) -> Vec<u8> {
    let mut d = vec![0u8; 136];
    d[1] = b'R';
    d[16..20].copy_from_slice(&1000u32.to_le_bytes());
    d[20..24].copy_from_slice(&100u32.to_le_bytes());
    d[24..28].copy_from_slice(&pid.to_le_bytes());
    d[28..32].copy_from_slice(&1i32.to_le_bytes());
    d[40..40 + fname.len()].copy_from_slice(fname.as_bytes());
    d[56..56 + psargs.len()].copy_from_slice(psargs.as_bytes());
    d
}

/// An `NT_FILE` descriptor: each mapping is (start, end, page offset,
/// path).
pub fn file_note(page_size: u64, maps: &[(u64, u64, u64, &str)]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&(maps.len() as u64).to_le_bytes());
    d.extend_from_slice(&page_size.to_le_bytes());
    for (s, e, o, _) in maps {
        for v in [s, e, o] {
            d.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (.., p) in maps {
        d.extend_from_slice(p.as_bytes());
        d.push(0);
    }
    d
}

/// An ELF64 little-endian header of `e_type` for `machine`, with `phnum`
/// program headers of 56 bytes at `phoff`.
pub fn elf_header(e_type: u16, machine: u16, phoff: u64, phnum: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16..18].copy_from_slice(&e_type.to_le_bytes());
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[32..40].copy_from_slice(&phoff.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes());
    h[54..56].copy_from_slice(&56u16.to_le_bytes());
    h[56..58].copy_from_slice(&phnum.to_le_bytes());
    h
}

/// Program header fields: type, flags, offset, vaddr (also written as
/// paddr), filesz, memsz, align.
pub type Phdr = (u32, u32, u64, u64, u64, u64, u64);

/// A program header of 56 bytes.
pub fn phdr(p: Phdr) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&p.0.to_le_bytes());
    b.extend_from_slice(&p.1.to_le_bytes());
    for v in [p.2, p.3, p.3, p.4, p.5, p.6] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}
