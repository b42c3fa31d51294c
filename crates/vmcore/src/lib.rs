//! Linux kernel crash dumps (vmcores), read without debuginfo: physical
//! memory, VMCOREINFO, the CPUs' registers, and x86-64 kernel virtual
//! addresses.
//!
//! This crate is the bottom of `kscope crash`: every command (log, ps, bt,
//! kmem, ...) is a helper above it that asks for kernel memory by virtual
//! address and lays out what it finds.
//!
//! # The pieces
//!
//! - [`Vmcore::open`] maps the file and tells the format by its magic:
//!   - **ELF** (`\x7fELF`): `/proc/vmcore` saved by kdump, or QEMU's
//!     `dump-guest-memory`. Physical memory is the `PT_LOAD` segments by
//!     `p_paddr`; the notes hold the VMCOREINFO (a note named
//!     "VMCOREINFO", which QEMU copies from the guest through its
//!     `etc/vmcoreinfo` fw_cfg file) and one `NT_PRSTATUS` per CPU.
//!   - **kdump-compressed** (`KDUMP   `): makedumpfile's format, also
//!     written by QEMU's `dump-guest-memory -z/-l/-s`. Pages are found
//!     through the second bitmap (a rank table built once at open) and
//!     their `page_desc`, and decompressed (zlib, LZO, snappy or zstd).
//!   - **flattened** (`makedumpfile`): the kdump-compressed file as a
//!     stream of (offset, size, data) records. The records are indexed at
//!     open, later ones winning where they overlap, and the kdump reader
//!     reads through the index: no temporary file.
//! - [`Vmcore::read_phys`] reads physical memory across pages. A page the
//!   dump lacks (not RAM, excluded by makedumpfile's dump level, never
//!   written) is [`Error::PageMissing`] with the reason, never mixed up
//!   with a corrupt file ([`Error::Format`], [`Error::Decompress`]) or
//!   an I/O error. Decompressed pages stay in an LRU cache of
//!   [`DEFAULT_CACHE_PAGES`] pages.
//! - [`VmcoreInfo`] parses the `KEY=VALUE` text into typed accessors.
//! - [`KernelMemory`] translates x86-64 kernel virtual addresses and reads
//!   through them ([`KernelMemory::read_virt`], `read_u64`,
//!   `read_cstr`...): the kernel image by `phys_base`, the direct map by
//!   `page_offset_base`, everything else by a 4- or 5-level walk of the
//!   kernel's page tables from `init_top_pgt`. See [`X86_64Layout`] for
//!   how each value is found, `page_offset_base` included, which QEMU's
//!   dumps do not carry.
//!
//! Every length and offset in a dump is untrusted: reads are bounds
//! checked, allocations are capped by the input's size or a stated limit,
//! and a page must decompress to exactly one page. The limits: VMCOREINFO
//! text of at most 1 MiB (QEMU's own limit for the guest's note), kdump
//! notes of at most 64 MiB, page sizes from 1 KiB to 256 KiB, 65536
//! separate RAM ranges, reads of a flattened dump at most 1 MiB larger
//! than the stream (bytes no record wrote read as zeros, as in the sparse
//! file `makedumpfile -R` would write), [`MAX_READ`] bytes in one
//! [`KernelMemory::read_vec`], and 4096 walks in the search for the
//! direct map.
//!
//! Tested on synthetic dumps of every format and compression, and on real
//! QEMU dumps of Debian's 6.1 kernel with 4- and 5-level paging, with and
//! without KASLR, in ELF, flattened and kdump form (`scripts/make-vmcore`).
//!
//! ```no_run
//! use kscope_vmcore::{KernelMemory, Vmcore};
//!
//! let dump = Vmcore::open("vmcore")?;
//! println!("{:?}, pages of {} bytes", dump.format(), dump.page_size());
//! let info = dump.vmcoreinfo().expect("the dump has VMCOREINFO");
//! println!("kernel {}", info.osrelease().unwrap_or("?"));
//! for cpu in dump.cpus() {
//!     println!("cpu {} rip {:#x?}", cpu.cpu, cpu.registers.map(|r| r.rip));
//! }
//! let kernel = KernelMemory::new(&dump)?;
//! let banner = info.symbol("linux_banner").expect("an address");
//! println!("{}", String::from_utf8_lossy(&kernel.read_cstr(banner, 512)?));
//! # Ok::<(), kscope_vmcore::Error>(())
//! ```

mod cache;
mod compress;
mod elf;
mod error;
mod flattened;
mod kdump;
mod memory;
mod notes;
mod sys;
mod vmcoreinfo;
mod x86_64;

use std::path::Path;
use std::sync::Mutex;

pub use compress::Compression;
pub use elf::LoadSegment;
pub use error::{Absence, Error};
pub use flattened::SIGNATURE as FLATTENED_SIGNATURE;
pub use kdump::{DISKDUMP_SIGNATURE, KdumpHeader, SIGNATURE as KDUMP_SIGNATURE};
pub use kscope_elf::ELF_MAGIC;
pub use kscope_elf::X86_64Registers;
pub use memory::{KernelMemory, MAX_READ, read_cstr_with, read_vec_with};
pub use notes::CpuState;
pub use vmcoreinfo::VmcoreInfo;
pub use x86_64::{
    Mapping, PAGE_OFFSET_BASE_L4, PAGE_OFFSET_BASE_L5, START_KERNEL_MAP, Translation, X86_64Layout,
};

use cache::PageCache;
use elf::ElfDump;
use kdump::{Container, KdumpDump};
use sys::DumpBytes;

/// How many decompressed pages a [`Vmcore`] keeps by default (16 MiB of
/// 4 KiB pages).
pub const DEFAULT_CACHE_PAGES: usize = 4096;

/// The format of a dump file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// An ELF core (`/proc/vmcore`, QEMU `dump-guest-memory`).
    Elf,
    /// makedumpfile's kdump-compressed format.
    Kdump,
    /// makedumpfile's flattened format of a kdump-compressed file.
    FlattenedKdump,
}

/// A range of physical memory, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

#[derive(Debug)]
enum Reader {
    Elf(ElfDump),
    Kdump(Box<KdumpDump>),
}

/// An opened dump.
#[derive(Debug)]
pub struct Vmcore {
    bytes: DumpBytes,
    reader: Reader,
    format: DumpFormat,
    page_size: u64,
    vmcoreinfo_text: Option<String>,
    vmcoreinfo: Option<VmcoreInfo>,
    cpus: Vec<CpuState>,
    cache: Mutex<PageCache>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (hits, misses) = self.stats();
        write!(f, "PageCache {{ hits: {hits}, misses: {misses} }}")
    }
}

impl Vmcore {
    /// Maps the dump at `path` and reads its headers, notes and (for
    /// kdump-compressed dumps) bitmaps.
    pub fn open(path: impl AsRef<Path>) -> Result<Vmcore, Error> {
        Vmcore::parse(DumpBytes::map(path.as_ref())?)
    }

    /// Reads a dump held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Vmcore, Error> {
        Vmcore::parse(DumpBytes::Owned(bytes.into_boxed_slice()))
    }

    fn parse(bytes: DumpBytes) -> Result<Vmcore, Error> {
        let file = bytes.bytes();
        let (reader, format, notes) = if file.starts_with(ELF_MAGIC) {
            let (elf, notes) = ElfDump::parse(file)?;
            (Reader::Elf(elf), DumpFormat::Elf, notes)
        } else if file.starts_with(kdump::SIGNATURE) || file.starts_with(kdump::DISKDUMP_SIGNATURE)
        {
            let (dump, notes) = KdumpDump::parse(file, Container::Plain)?;
            (Reader::Kdump(Box::new(dump)), DumpFormat::Kdump, notes)
        } else if file.starts_with(flattened::SIGNATURE) {
            let index = flattened::FlatIndex::build(file)?;
            let (dump, notes) = KdumpDump::parse(file, Container::Flattened(index))?;
            (
                Reader::Kdump(Box::new(dump)),
                DumpFormat::FlattenedKdump,
                notes,
            )
        } else {
            return Err(Error::at(
                0,
                "a vmcore: the magic of an ELF core (\\x7fELF), a kdump-compressed dump (\"KDUMP   \") or a flattened one (\"makedumpfile\")",
            ));
        };
        if notes.vmcoreinfo.is_none() && notes.process_notes {
            return Err(Error::UserCore);
        }
        let vmcoreinfo = notes.vmcoreinfo.as_deref().map(VmcoreInfo::parse);
        let page_size = match &reader {
            Reader::Kdump(k) => k.header.block_size,
            Reader::Elf(_) => vmcoreinfo
                .as_ref()
                .and_then(VmcoreInfo::page_size)
                .filter(|p| p.is_power_of_two() && (1024..=1 << 18).contains(p))
                .unwrap_or(4096),
        };
        Ok(Vmcore {
            bytes,
            reader,
            format,
            page_size,
            vmcoreinfo_text: notes.vmcoreinfo,
            vmcoreinfo,
            cpus: notes.cpus,
            cache: Mutex::new(PageCache::new(page_size as usize, DEFAULT_CACHE_PAGES)),
        })
    }

    /// Keeps up to `pages` decompressed pages in the cache (at least one).
    pub fn with_cache_pages(self, pages: usize) -> Vmcore {
        Vmcore {
            cache: Mutex::new(PageCache::new(self.page_size as usize, pages)),
            ..self
        }
    }

    /// The file's format.
    pub fn format(&self) -> DumpFormat {
        self.format
    }

    /// The page size: the kdump header's block size, or an ELF dump's
    /// VMCOREINFO `PAGESIZE` (4096 without it).
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.bytes().len() as u64
    }

    /// The ELF machine (`e_machine`, 62 for x86-64) of an ELF dump, or
    /// the one a kdump header's `utsname.machine` names; 0 when unknown.
    pub fn machine(&self) -> u16 {
        match &self.reader {
            Reader::Elf(elf) => elf.machine,
            Reader::Kdump(k) => match k.header.machine.as_str() {
                "x86_64" => 62,
                "aarch64" | "arm64" => 183,
                _ => 0,
            },
        }
    }

    /// The page compressions a kdump-compressed dump's header names (its
    /// pages may also be stored as they are); empty for an ELF dump.
    pub fn compression(&self) -> Vec<Compression> {
        match &self.reader {
            Reader::Elf(_) => Vec::new(),
            Reader::Kdump(k) => Compression::from_status(k.header.status),
        }
    }

    /// The headers of a kdump-compressed (or flattened) dump.
    pub fn kdump_header(&self) -> Option<&KdumpHeader> {
        match &self.reader {
            Reader::Elf(_) => None,
            Reader::Kdump(k) => Some(&k.header),
        }
    }

    /// The `PT_LOAD` segments of an ELF dump, in file order; empty for a
    /// kdump-compressed one.
    pub fn elf_segments(&self) -> &[LoadSegment] {
        match &self.reader {
            Reader::Elf(elf) => &elf.segments,
            Reader::Kdump(_) => &[],
        }
    }

    /// The physical memory the dump describes, in address order: the
    /// `PT_LOAD` ranges of an ELF dump, the RAM of a kdump-compressed
    /// dump's first bitmap (some of whose pages may be excluded). An
    /// error only for a bitmap of more than 65536 separate ranges.
    pub fn memory_ranges(&self) -> Result<Vec<MemoryRange>, Error> {
        match &self.reader {
            Reader::Elf(elf) => Ok(elf.ranges()),
            Reader::Kdump(k) => k.ranges(self.bytes.bytes()),
        }
    }

    /// The VMCOREINFO text, as the kernel wrote it.
    pub fn vmcoreinfo_text(&self) -> Option<&str> {
        self.vmcoreinfo_text.as_deref()
    }

    /// The parsed VMCOREINFO.
    pub fn vmcoreinfo(&self) -> Option<&VmcoreInfo> {
        self.vmcoreinfo.as_ref()
    }

    /// The CPUs' registers from the `NT_PRSTATUS` notes, in note order.
    pub fn cpus(&self) -> &[CpuState] {
        &self.cpus
    }

    /// Fills `buf` with physical memory at `paddr`; the range may cross
    /// pages and memory ranges.
    pub fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let file = self.bytes.bytes();
        match &self.reader {
            Reader::Elf(elf) => elf.read(file, paddr, buf),
            Reader::Kdump(k) => {
                let page = self.page_size;
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                let mut done = 0usize;
                while done < buf.len() {
                    let addr = paddr.checked_add(done as u64).ok_or(Error::PageMissing {
                        paddr: u64::MAX,
                        why: Absence::NoSuchMemory,
                    })?;
                    let pfn = addr / page;
                    let within = (addr % page) as usize;
                    let n = (page as usize - within).min(buf.len() - done);
                    let data = cache.get_or_insert(pfn, |out| k.read_page(file, pfn, out))?;
                    buf[done..done + n].copy_from_slice(&data[within..within + n]);
                    done += n;
                }
                Ok(())
            }
        }
    }

    /// One past the highest physical address the dump describes: the end
    /// of the last `PT_LOAD`, or `max_mapnr` pages.
    pub fn max_phys_addr(&self) -> u64 {
        match &self.reader {
            Reader::Elf(elf) => elf.ranges().last().map_or(0, |r| r.end),
            Reader::Kdump(k) => k.header.max_mapnr.saturating_mul(self.page_size),
        }
    }

    /// The little-endian u64 at physical address `paddr`.
    pub fn read_phys_u64(&self, paddr: u64) -> Result<u64, Error> {
        let mut b = [0; 8];
        self.read_phys(paddr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// (hits, misses) of the page cache so far (kdump-compressed dumps;
    /// ELF dumps are read from the mapped file without it).
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).stats()
    }
}
