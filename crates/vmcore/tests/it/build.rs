//! Builders of synthetic dumps, laid out as the formats' documentation and
//! makedumpfile's `diskdump_mod.h` say: ELF vmcores with notes and
//! `PT_LOAD`s, kdump-compressed files with any page compression, their
//! flattened streams, and x86-64 page tables in synthetic physical memory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kscope_testkit::elf::NoteBuilder;
use kscope_vmcore::Compression;

pub const PAGE: u64 = 4096;

/// An ELF note with 4-byte padding.
pub fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
    NoteBuilder::default().note(name, kind, desc).bytes
}

/// An x86-64 `struct elf_prstatus` (336 bytes) with `pid`, `rip`, `rsp`.
pub fn prstatus(pid: i32, rip: u64, rsp: u64) -> Vec<u8> {
    kscope_testkit::elf::prstatus(pid, 0, rip, rsp)
}

/// The notes of a two-CPU x86-64 dump with `vmcoreinfo`.
pub fn standard_notes(vmcoreinfo: &str) -> Vec<u8> {
    let mut notes = note(
        "CORE",
        1,
        &prstatus(101, 0xffff_ffff_8100_1000, 0xffff_c900_0000_3f00),
    );
    notes.extend(note(
        "CORE",
        1,
        &prstatus(0, 0xffff_ffff_8100_2000, 0xffff_c900_0000_7f00),
    ));
    notes.extend(note("QEMU", 0, &[7; 40]));
    notes.extend(note("VMCOREINFO", 0, vmcoreinfo.as_bytes()));
    notes
}

pub const VMCOREINFO: &str = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a13e60\nNUMBER(phys_base)=16777216\nKERNELOFFSET=0\n";

/// A kdump of 8 pages (pfn `n` filled with `n + 1`), all RAM and dumped.
pub fn small_kdump(method: Compression) -> Kdump {
    let pages: BTreeMap<u64, Vec<u8>> = (0..8u64)
        .map(|pfn| (pfn, vec![pfn as u8 + 1; PAGE as usize]))
        .collect();
    Kdump {
        max_mapnr: 8,
        ram: (0..8).collect(),
        pages,
        method,
        notes: standard_notes(VMCOREINFO),
        vmcoreinfo: Some(VMCOREINFO.to_string()),
        ..Kdump::default()
    }
}

/// Synthetic physical memory: the pages that hold something.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub pages: BTreeMap<u64, Vec<u8>>,
}

impl Memory {
    /// Writes `bytes` at `paddr`, creating zeroed pages as needed.
    pub fn write(&mut self, paddr: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let addr = paddr + i as u64;
            let page = self
                .pages
                .entry(addr / PAGE)
                .or_insert_with(|| vec![0; PAGE as usize]);
            page[(addr % PAGE) as usize] = *b;
        }
    }

    pub fn write_u64(&mut self, paddr: u64, value: u64) {
        self.write(paddr, &value.to_le_bytes());
    }

    pub fn read_u64(&self, paddr: u64) -> u64 {
        let page = self.pages.get(&(paddr / PAGE));
        let mut b = [0u8; 8];
        if let Some(page) = page {
            let at = (paddr % PAGE) as usize;
            b.copy_from_slice(&page[at..at + 8]);
        }
        u64::from_le_bytes(b)
    }

    /// Runs of consecutive pages as (paddr, bytes).
    pub fn runs(&self) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for (&pfn, page) in &self.pages {
            match out.last_mut() {
                Some((start, data)) if *start + data.len() as u64 == pfn * PAGE => {
                    data.extend_from_slice(page)
                }
                _ => out.push((pfn * PAGE, page.clone())),
            }
        }
        out
    }

    /// An ELF vmcore of this memory (QEMU style: `p_vaddr` 0).
    pub fn elf(&self, notes: &[u8]) -> Vec<u8> {
        let loads = self
            .runs()
            .into_iter()
            .map(|(paddr, data)| Load {
                paddr,
                vaddr: 0,
                memsz: data.len() as u64,
                data,
            })
            .collect();
        Elf {
            notes: notes.to_vec(),
            loads,
        }
        .build()
    }

    /// A kdump-compressed dump of this memory, every page RAM and dumped.
    pub fn kdump(&self, notes: &[u8], vmcoreinfo: &str, method: Compression) -> Vec<u8> {
        let max_mapnr = self.pages.keys().last().map_or(1, |p| p + 1);
        Kdump {
            pages: self.pages.clone(),
            ram: (0..max_mapnr).collect(),
            max_mapnr,
            notes: notes.to_vec(),
            vmcoreinfo: Some(vmcoreinfo.to_string()),
            method,
            ..Kdump::default()
        }
        .build()
    }
}

/// A `PT_LOAD`: `data` (its `p_filesz` bytes) of `memsz` at `paddr`.
#[derive(Debug, Clone)]
pub struct Load {
    pub paddr: u64,
    pub vaddr: u64,
    pub memsz: u64,
    pub data: Vec<u8>,
}

/// An ELF64 x86-64 `ET_CORE` file: one `PT_NOTE`, then the loads.
#[derive(Debug, Clone, Default)]
pub struct Elf {
    pub notes: Vec<u8>,
    pub loads: Vec<Load>,
}

impl Elf {
    pub fn build(&self) -> Vec<u8> {
        let phnum = 1 + self.loads.len();
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&4u16.to_le_bytes());
        out[18..20].copy_from_slice(&62u16.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        let mut data_offset = 64 + 56 * phnum as u64;
        if phnum >= 0xffff {
            // The count goes in section 0's sh_info.
            out[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
            out[40..48].copy_from_slice(&data_offset.to_le_bytes());
            out[58..60].copy_from_slice(&64u16.to_le_bytes());
            out[60..62].copy_from_slice(&1u16.to_le_bytes());
            data_offset += 64;
        } else {
            out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        }
        let mut phdrs = Vec::new();
        let mut body = Vec::new();
        let mut offset = data_offset;
        phdrs.extend(phdr(
            4,
            offset,
            0,
            0,
            self.notes.len() as u64,
            self.notes.len() as u64,
        ));
        body.extend_from_slice(&self.notes);
        offset += self.notes.len() as u64;
        for load in &self.loads {
            phdrs.extend(phdr(
                1,
                offset,
                load.vaddr,
                load.paddr,
                load.data.len() as u64,
                load.memsz,
            ));
            body.extend_from_slice(&load.data);
            offset += load.data.len() as u64;
        }
        out.extend(phdrs);
        if phnum >= 0xffff {
            let mut shdr = vec![0u8; 64];
            shdr[44..48].copy_from_slice(&(phnum as u32).to_le_bytes());
            out.extend(shdr);
        }
        out.extend(body);
        out
    }
}

fn phdr(kind: u32, offset: u64, vaddr: u64, paddr: u64, filesz: u64, memsz: u64) -> Vec<u8> {
    let mut p = vec![0u8; 56];
    p[0..4].copy_from_slice(&kind.to_le_bytes());
    p[4..8].copy_from_slice(&7u32.to_le_bytes());
    p[8..16].copy_from_slice(&offset.to_le_bytes());
    p[16..24].copy_from_slice(&vaddr.to_le_bytes());
    p[24..32].copy_from_slice(&paddr.to_le_bytes());
    p[32..40].copy_from_slice(&filesz.to_le_bytes());
    p[40..48].copy_from_slice(&memsz.to_le_bytes());
    p
}

/// Compresses one page as makedumpfile does: the method's output when it
/// is smaller than a page, else the page as it is.
pub fn compress(method: Compression, page: &[u8]) -> (Vec<u8>, u32) {
    let (data, flag) = match method {
        Compression::None => return (page.to_vec(), 0),
        Compression::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(page).unwrap();
            (e.finish().unwrap(), 0x1)
        }
        Compression::Lzo => (lzokay::compress::compress(page).unwrap(), 0x2),
        Compression::Snappy => (snap::raw::Encoder::new().compress_vec(page).unwrap(), 0x4),
        Compression::Zstd => (zstd::bulk::compress(page, 1).unwrap(), 0x20),
    };
    if data.len() < page.len() {
        (data, flag)
    } else {
        (page.to_vec(), 0)
    }
}

/// A kdump-compressed file (header version `version`, 64-bit layout).
#[derive(Debug, Clone)]
pub struct Kdump {
    pub block_size: u64,
    pub version: i32,
    pub max_mapnr: u64,
    /// Dumped pages by pfn.
    pub pages: BTreeMap<u64, Vec<u8>>,
    /// RAM pfns (the first bitmap); dumped pages must be among them.
    pub ram: BTreeSet<u64>,
    /// Dumped pfns whose descriptor is left zero (never written).
    pub incomplete: BTreeSet<u64>,
    pub method: Compression,
    pub notes: Vec<u8>,
    pub vmcoreinfo: Option<String>,
    pub phys_base: u64,
    pub split: Option<(u64, u64)>,
    pub status: u32,
    /// Replaces a page's stored data and flags (hostile cases).
    pub raw_pages: BTreeMap<u64, (Vec<u8>, u32)>,
}

impl Default for Kdump {
    fn default() -> Kdump {
        Kdump {
            block_size: PAGE,
            version: 6,
            max_mapnr: 0,
            pages: BTreeMap::new(),
            ram: BTreeSet::new(),
            incomplete: BTreeSet::new(),
            method: Compression::Zlib,
            notes: Vec::new(),
            vmcoreinfo: None,
            phys_base: 0x100_0000,
            split: None,
            status: 0,
            raw_pages: BTreeMap::new(),
        }
    }
}

/// Where the parts of a built kdump file are.
#[derive(Debug, Clone, Copy)]
pub struct KdumpLayout {
    pub sub_header: u64,
    pub bitmaps: u64,
    pub bitmap_len: u64,
    pub descs: u64,
    pub data: u64,
}

impl Kdump {
    pub fn build(&self) -> Vec<u8> {
        self.build_with_layout().0
    }

    pub fn build_with_layout(&self) -> (Vec<u8>, KdumpLayout) {
        let bs = self.block_size;
        let vmcoreinfo = self.vmcoreinfo.clone().unwrap_or_default();
        let sub_len = 104 + self.notes.len() as u64 + vmcoreinfo.len() as u64;
        let sub_hdr_size = sub_len.div_ceil(bs);
        let one_bitmap = self.max_mapnr.div_ceil(8).div_ceil(bs).max(1) * bs;
        let bitmap_blocks = 2 * one_bitmap / bs;
        let bitmaps = bs * (1 + sub_hdr_size);
        let descs = bs * (1 + sub_hdr_size + bitmap_blocks);
        let dumped: Vec<u64> = self.pages.keys().copied().collect();
        let data = descs + 24 * dumped.len() as u64;

        let mut out = vec![0u8; descs as usize];
        out[..8].copy_from_slice(b"KDUMP   ");
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12 + 65..12 + 65 + 4].copy_from_slice(b"host");
        out[12 + 130..12 + 130 + 12].copy_from_slice(b"6.1.0-test\0\0");
        out[12 + 260..12 + 260 + 6].copy_from_slice(b"x86_64");
        out[408..416].copy_from_slice(&1_764_085_000u64.to_le_bytes());
        let method_bit = match self.method {
            Compression::None => 0,
            Compression::Zlib => 1,
            Compression::Lzo => 2,
            Compression::Snappy => 4,
            Compression::Zstd => 0x20,
        };
        out[424..428].copy_from_slice(&(self.status | method_bit).to_le_bytes());
        out[428..432].copy_from_slice(&(bs as u32).to_le_bytes());
        out[432..436].copy_from_slice(&(sub_hdr_size as u32).to_le_bytes());
        out[436..440].copy_from_slice(&(bitmap_blocks as u32).to_le_bytes());
        out[440..444].copy_from_slice(&(self.max_mapnr.min(u32::MAX as u64) as u32).to_le_bytes());
        out[460..464].copy_from_slice(&2u32.to_le_bytes());

        let s = bs as usize;
        let put = |out: &mut Vec<u8>, at: usize, v: u64| {
            out[s + at..s + at + 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut out, 0, self.phys_base);
        out[s + 8..s + 12].copy_from_slice(&1u32.to_le_bytes());
        let offset_note = bs + 104;
        let offset_vmcoreinfo = offset_note + self.notes.len() as u64;
        if let Some((start, end)) = self.split {
            out[s + 12..s + 16].copy_from_slice(&1u32.to_le_bytes());
            put(&mut out, 16, start);
            put(&mut out, 24, end);
            put(&mut out, 80, start);
            put(&mut out, 88, end);
        }
        if self.vmcoreinfo.is_some() {
            put(&mut out, 32, offset_vmcoreinfo);
            put(&mut out, 40, vmcoreinfo.len() as u64);
        }
        if !self.notes.is_empty() {
            put(&mut out, 48, offset_note);
            put(&mut out, 56, self.notes.len() as u64);
        }
        put(&mut out, 96, self.max_mapnr);
        out[offset_note as usize..offset_note as usize + self.notes.len()]
            .copy_from_slice(&self.notes);
        out[offset_vmcoreinfo as usize..offset_vmcoreinfo as usize + vmcoreinfo.len()]
            .copy_from_slice(vmcoreinfo.as_bytes());

        for &pfn in &self.ram {
            out[(bitmaps + pfn / 8) as usize] |= 1 << (pfn % 8);
        }
        for &pfn in &dumped {
            out[(bitmaps + one_bitmap + pfn / 8) as usize] |= 1 << (pfn % 8);
        }

        let mut body = Vec::new();
        for (i, &pfn) in dumped.iter().enumerate() {
            let (stored, flags) = self
                .raw_pages
                .get(&pfn)
                .cloned()
                .unwrap_or_else(|| compress(self.method, &self.pages[&pfn]));
            let offset = if self.incomplete.contains(&pfn) {
                0
            } else {
                data + body.len() as u64
            };
            let mut desc = Vec::new();
            desc.extend_from_slice(&offset.to_le_bytes());
            desc.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            desc.extend_from_slice(&flags.to_le_bytes());
            desc.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&desc);
            debug_assert_eq!(out.len() as u64, descs + 24 * (i as u64 + 1));
            body.extend(stored);
        }
        out.extend(body);
        (
            out,
            KdumpLayout {
                sub_header: bs,
                bitmaps,
                bitmap_len: 2 * one_bitmap,
                descs,
                data,
            },
        )
    }
}

/// The flattened stream of a kdump file: its bytes in records of at most
/// `chunk` bytes, in the order `order` gives (a permutation of the record
/// indices, or `None` for file order). `rewrite_header` first writes
/// garbage over the header, then the real header after it, as a record
/// that later records must hide.
pub fn flatten(
    kdump: &[u8],
    chunk: usize,
    order: Option<&[usize]>,
    rewrite_header: bool,
) -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    out[..12].copy_from_slice(b"makedumpfile");
    out[16..24].copy_from_slice(&1i64.to_be_bytes());
    out[24..32].copy_from_slice(&1i64.to_be_bytes());
    let record = |out: &mut Vec<u8>, offset: u64, data: &[u8]| {
        out.extend_from_slice(&(offset as i64).to_be_bytes());
        out.extend_from_slice(&(data.len() as i64).to_be_bytes());
        out.extend_from_slice(data);
    };
    if rewrite_header {
        record(&mut out, 0, &vec![0xa5; 600]);
    }
    // Records skip all-zero chunks, as the sparse file need not hold them.
    let chunks: Vec<(usize, &[u8])> = kdump
        .chunks(chunk)
        .enumerate()
        .filter(|(i, c)| *i == 0 || c.iter().any(|&b| b != 0) || (i + 1) * chunk >= kdump.len())
        .collect();
    let indices: Vec<usize> = match order {
        Some(order) => order.iter().map(|&i| i % chunks.len()).collect(),
        None => (0..chunks.len()).collect(),
    };
    for i in indices {
        let (n, data) = chunks[i];
        record(&mut out, (n * chunk) as u64, data);
    }
    if rewrite_header {
        let (_, first) = chunks[0];
        record(&mut out, 0, first);
    }
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out
}

/// x86-64 page tables in synthetic memory: tables are allocated from
/// `next_table` up, page by page.
#[derive(Debug, Clone)]
pub struct PageTables {
    pub levels: u8,
    pub top: u64,
    pub next_table: u64,
    pub memory: Memory,
    /// Extra bits set in every entry's address field (an SME C-bit).
    pub address_bits: u64,
}

pub const SIZE_4K: u64 = 1 << 12;
pub const SIZE_2M: u64 = 1 << 21;
pub const SIZE_1G: u64 = 1 << 30;

impl PageTables {
    pub fn new(levels: u8, top: u64, next_table: u64) -> PageTables {
        let mut memory = Memory::default();
        memory.write(top, &[0; PAGE as usize]);
        PageTables {
            levels,
            top,
            next_table,
            memory,
            address_bits: 0,
        }
    }

    /// Maps `vaddr` to `paddr` with one page of `size`.
    pub fn map(&mut self, vaddr: u64, paddr: u64, size: u64) {
        let shifts: &[u64] = if self.levels == 5 {
            &[48, 39, 30, 21, 12]
        } else {
            &[39, 30, 21, 12]
        };
        let target_shift = size.trailing_zeros() as u64;
        let mut table = self.top;
        for &shift in shifts {
            let entry_addr = table + ((vaddr >> shift) & 511) * 8;
            if shift == target_shift {
                let ps = if shift == 12 { 0 } else { 1 << 7 };
                self.memory.write_u64(
                    entry_addr,
                    paddr | self.address_bits | ps | 0x63 | (1 << 63),
                );
                return;
            }
            let entry = self.memory.read_u64(entry_addr);
            table = if entry & 1 != 0 {
                entry & 0x000f_ffff_ffff_f000 & !self.address_bits
            } else {
                let new = self.next_table;
                self.next_table += PAGE;
                self.memory.write(new, &[0; PAGE as usize]);
                self.memory
                    .write_u64(entry_addr, new | self.address_bits | 0x63);
                new
            };
        }
    }

    /// Writes an entry that is not present but has other bits set, on
    /// the path of `vaddr` at the level whose index starts at `shift`.
    pub fn unmap(&mut self, vaddr: u64, shift: u64) {
        let shifts: &[u64] = if self.levels == 5 {
            &[48, 39, 30, 21, 12]
        } else {
            &[39, 30, 21, 12]
        };
        let mut table = self.top;
        for &s in shifts {
            let entry_addr = table + ((vaddr >> s) & 511) * 8;
            if s == shift {
                self.memory.write_u64(entry_addr, 0x8000_0000_0000_0062);
                return;
            }
            table = self.memory.read_u64(entry_addr) & 0x000f_ffff_ffff_f000 & !self.address_bits;
        }
    }
}
