//! makedumpfile's kdump-compressed format (`diskdump_mod.h`), as
//! makedumpfile and QEMU write it, plain or flattened.
//!
//! Block 0 is `struct disk_dump_header` ("KDUMP   ", the header version,
//! the utsname, `block_size` = the page size, `sub_hdr_size` and
//! `bitmap_blocks` in blocks). Block 1 starts `struct kdump_sub_header`
//! (`phys_base`, the dump level, split ranges, and from version 3 on the
//! offsets of the VMCOREINFO text, from 4 the ELF notes, from 5 the erase
//! info, from 6 the 64-bit pfn fields). After the sub header come the two
//! bitmaps, each half of `bitmap_blocks`: bit `pfn` of the first says the
//! page is RAM, of the second that it is in the dump. Then one 24-byte
//! `page_desc` (offset, size, flags, page flags) per set bit of the second
//! bitmap, in pfn order, so the descriptor of a page is at the rank of its
//! bit. The rank comes from a table of cumulative counts per 512 bits,
//! built once when the dump is opened.

use std::borrow::Cow;

use crate::compress::{Compression, decompress_page};
use crate::flattened::FlatIndex;
use crate::notes::{MAX_VMCOREINFO, NoteContents, read_notes};
use crate::{Absence, Error, MemoryRange};
use kscope_elf::{Reader, le_u64, until_nul};

/// The signature of a kdump-compressed file.
pub const SIGNATURE: &[u8] = b"KDUMP   ";
/// The signature of the older diskdump format, which is not read.
pub const DISKDUMP_SIGNATURE: &[u8] = b"DISKDUMP";
/// The size of `struct disk_dump_header` on 64-bit machines.
const HEADER_SIZE: u64 = 464;
/// The size of `struct kdump_sub_header` (version 6) on 64-bit machines.
const SUB_HEADER_SIZE: u64 = 104;
/// The size of `struct page_desc`.
const PAGE_DESC_SIZE: u64 = 24;
/// `DUMP_DH_COMPRESSED_INCOMPLETE` in the header's status.
const STATUS_INCOMPLETE: u32 = 0x8;
/// `DUMP_DH_EXCLUDED_VMEMMAP` in the header's status.
const STATUS_EXCLUDED_VMEMMAP: u32 = 0x10;
/// Page sizes (`block_size`) accepted: those of Linux's architectures.
const MIN_BLOCK_SIZE: u64 = 1 << 10;
const MAX_BLOCK_SIZE: u64 = 1 << 18;
/// The most note bytes accepted (a `NT_PRSTATUS` and a QEMU note per CPU
/// take less than 1 KiB).
const MAX_NOTES: u64 = 64 << 20;
/// How much larger than its stream a read of a flattened dump may be:
/// makedumpfile and QEMU write every byte, holes are rare and small.
const MAX_HOLE_READ: u64 = 1 << 20;
/// The most RAM ranges listed (real machines have tens).
const MAX_RANGES: usize = 1 << 16;
/// Bits per entry of the rank table.
const RANK_BLOCK_BITS: u64 = 512;

/// The facts of a kdump-compressed dump's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdumpHeader {
    /// `header_version` (QEMU writes 6, makedumpfile 6).
    pub header_version: i32,
    /// `utsname.release` of the dumped kernel (QEMU leaves it empty).
    pub release: String,
    /// `utsname.machine` ("x86_64").
    pub machine: String,
    /// `utsname.nodename`: the host name (QEMU leaves it empty).
    pub nodename: String,
    /// `timestamp.tv_sec`: when the dump was taken (0 from QEMU).
    pub timestamp: i64,
    /// `status`: the compression bits and `DUMP_DH_COMPRESSED_INCOMPLETE`.
    pub status: u32,
    /// `block_size`: the page size.
    pub block_size: u64,
    /// `nr_cpus`.
    pub nr_cpus: i32,
    /// The sub header's `phys_base`.
    pub phys_base: u64,
    /// The sub header's `dump_level` (which pages makedumpfile excluded).
    pub dump_level: i32,
    /// For one file of a split dump, the pfns it holds: `[start, end)`.
    pub split: Option<(u64, u64)>,
    /// The number of page frames the bitmaps describe.
    pub max_mapnr: u64,
    /// Whether the dump has erase info (makedumpfile `--config` filtering).
    pub has_eraseinfo: bool,
    /// Whether makedumpfile marked the dump incomplete (disk full).
    pub incomplete: bool,
    /// Whether unused vmemmap pages were excluded (`DUMP_DH_EXCLUDED_VMEMMAP`).
    pub excluded_vmemmap: bool,
    /// For a flattened dump, the number of records in the stream.
    pub flattened_records: Option<u64>,
}

/// Where the kdump file's bytes are: the file itself, or a flattened
/// stream and its index.
#[derive(Debug, Clone)]
pub(crate) enum Container {
    Plain,
    Flattened(FlatIndex),
}

impl Container {
    fn size(&self, file: &[u8]) -> u64 {
        match self {
            Container::Plain => file.len() as u64,
            Container::Flattened(index) => index.size(),
        }
    }

    /// `len` bytes at `offset` of the kdump file: borrowed from a plain
    /// file, copied out of a flattened stream. The caller bounds `len`.
    fn bytes<'a>(
        &self,
        file: &'a [u8],
        offset: u64,
        len: u64,
        what: &'static str,
    ) -> Result<Cow<'a, [u8]>, Error> {
        match self {
            Container::Plain => Reader::new(file, 0)
                .slice(offset, len, what)
                .map(Cow::Borrowed)
                .map_err(Error::from),
            Container::Flattened(index) => {
                // A copy is at most the stream's size plus what holes
                // (bytes no record wrote, read as zeros) may add: a header
                // claiming more is refused before anything is allocated.
                let limit = file.len() as u64 + MAX_HOLE_READ;
                if len > limit {
                    return Err(Error::TooLarge {
                        offset,
                        what,
                        size: len,
                        limit,
                    });
                }
                let mut buf = vec![0; len as usize];
                index.read(file, offset, &mut buf, what)?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

/// A bitmap: a range of a plain file, or bytes copied out of a stream.
#[derive(Debug, Clone)]
enum Bitmap {
    InFile { offset: usize, len: usize },
    Owned(Vec<u8>),
}

impl Bitmap {
    fn new(bytes: Cow<'_, [u8]>, offset: u64) -> Bitmap {
        match bytes {
            Cow::Borrowed(b) => Bitmap::InFile {
                offset: offset as usize,
                len: b.len(),
            },
            Cow::Owned(v) => Bitmap::Owned(v),
        }
    }

    fn bytes<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match self {
            Bitmap::InFile { offset, len } => &file[*offset..*offset + *len],
            Bitmap::Owned(v) => v,
        }
    }
}

fn bit(bitmap: &[u8], pfn: u64) -> bool {
    bitmap
        .get((pfn / 8) as usize)
        .is_some_and(|b| b & (1 << (pfn % 8)) != 0)
}

/// A page descriptor.
#[derive(Debug, Clone, Copy)]
struct PageDesc {
    offset: u64,
    size: u64,
    flags: u32,
}

/// A kdump-compressed dump, opened.
#[derive(Debug, Clone)]
pub(crate) struct KdumpDump {
    pub(crate) header: KdumpHeader,
    container: Container,
    ram: Bitmap,
    dumped: Bitmap,
    /// Number of bits of the bitmaps that describe pages.
    bits: u64,
    /// `rank[i]`: set bits of the second bitmap before bit `512 * i`.
    rank: Vec<u64>,
    /// The rank of the split part's first pfn.
    rank_base: u64,
    /// Offset of the `page_desc` array.
    desc_offset: u64,
}

impl KdumpDump {
    /// Reads the headers, notes and bitmaps of the kdump file that `file`
    /// is (`Container::Plain`) or holds as a stream.
    pub(crate) fn parse(
        file: &[u8],
        container: Container,
    ) -> Result<(KdumpDump, NoteContents), Error> {
        let size = container.size(file);
        let head = container.bytes(file, 0, HEADER_SIZE, "struct disk_dump_header")?;
        let h = Reader::new(&head, 0);
        let signature = h.slice(0, 8, "the signature")?;
        if signature == DISKDUMP_SIGNATURE {
            return Err(Error::Unsupported {
                what: "the old diskdump format (\"DISKDUMP\"); only kdump-compressed dumps (\"KDUMP   \") are read".into(),
            });
        }
        if signature != SIGNATURE {
            return Err(Error::at(0, "the signature \"KDUMP   \""));
        }
        let version = h.u32(8, "header_version")? as i32;
        let text = |pos: u64| -> Result<String, Error> {
            Ok(String::from_utf8_lossy(until_nul(h.slice(pos, 65, "utsname")?)).into_owned())
        };
        let block_size = u64::from(h.u32(428, "block_size")?);
        if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(Error::at(
                428,
                format!(
                    "a block_size (the page size) that is a power of two from 1 KiB to 256 KiB, found {block_size}"
                ),
            ));
        }
        let sub_hdr_size = u64::from(h.u32(432, "sub_hdr_size")?);
        let bitmap_blocks = u64::from(h.u32(436, "bitmap_blocks")?);
        let status = h.u32(424, "status")?;
        let mut header = KdumpHeader {
            header_version: version,
            release: text(12 + 2 * 65)?,
            machine: text(12 + 4 * 65)?,
            nodename: text(12 + 65)?,
            timestamp: h.u64(408, "timestamp")? as i64,
            status,
            block_size,
            nr_cpus: h.u32(460, "nr_cpus")? as i32,
            phys_base: 0,
            dump_level: 0,
            split: None,
            max_mapnr: u64::from(h.u32(440, "max_mapnr")?),
            has_eraseinfo: false,
            incomplete: status & STATUS_INCOMPLETE != 0,
            excluded_vmemmap: status & STATUS_EXCLUDED_VMEMMAP != 0,
            flattened_records: match &container {
                Container::Plain => None,
                Container::Flattened(index) => Some(index.records()),
            },
        };

        // The sub header: as many of its fields as the version has.
        let sub_len = match version {
            ..=0 => 8,
            1 => 16,
            2 => 32,
            3 => 48,
            4 => 64,
            5 => 80,
            _ => SUB_HEADER_SIZE,
        };
        let sub = container.bytes(file, block_size, sub_len, "struct kdump_sub_header")?;
        let s = Reader::new(&sub, block_size);
        header.phys_base = s.u64(0, "phys_base")?;
        let mut notes = NoteContents::default();
        if version >= 1 {
            header.dump_level = s.u32(8, "dump_level")? as i32;
        }
        let machine = match header.machine.as_str() {
            "x86_64" => 62,
            "aarch64" | "arm64" => 183,
            _ => 0,
        };
        if version >= 2 && s.u32(12, "split")? != 0 {
            header.split = Some(if version >= 6 {
                (s.u64(80, "start_pfn_64")?, s.u64(88, "end_pfn_64")?)
            } else {
                (s.u64(16, "start_pfn")?, s.u64(24, "end_pfn")?)
            });
        }
        // A region the sub-header points at: (offset, size), None when
        // absent, refused above `limit`.
        let region = |at: u64, offset_name: &'static str, size_name: &'static str, limit: u64| {
            let offset = s.u64(at, offset_name)?;
            let len = s.u64(at + 8, size_name)?;
            if offset == 0 || len == 0 {
                return Ok(None);
            }
            if len > limit {
                return Err(Error::TooLarge {
                    offset: block_size + at + 8,
                    what: size_name,
                    size: len,
                    limit,
                });
            }
            Ok(Some((offset, len)))
        };
        if version >= 3
            && let Some((offset, len)) =
                region(32, "offset_vmcoreinfo", "size_vmcoreinfo", MAX_VMCOREINFO)?
        {
            let text = container.bytes(file, offset, len, "the VMCOREINFO text")?;
            notes.vmcoreinfo = Some(String::from_utf8_lossy(until_nul(&text)).into_owned());
        }
        if version >= 4
            && let Some((offset, len)) = region(48, "offset_note", "size_note", MAX_NOTES)?
        {
            let bytes = container.bytes(file, offset, len, "the ELF notes")?;
            read_notes(&bytes, offset, machine, &mut notes)?;
        }
        if version >= 5 {
            header.has_eraseinfo =
                s.u64(64, "offset_eraseinfo")? != 0 && s.u64(72, "size_eraseinfo")? != 0;
        }
        if version >= 6 {
            header.max_mapnr = s.u64(96, "max_mapnr_64")?;
        }

        // The bitmaps.
        let bitmap_offset = block_size
            .checked_mul(1 + sub_hdr_size)
            .ok_or_else(|| Error::at(432, "a sub_hdr_size that fits the file"))?;
        let bitmap_len = block_size
            .checked_mul(bitmap_blocks)
            .filter(|&len| len <= size)
            .ok_or_else(|| {
                Error::at(
                    436,
                    format!("bitmap_blocks ({bitmap_blocks} blocks of {block_size} bytes) that fit in the file of {size} bytes"),
                )
            })?;
        let bitmaps = container.bytes(file, bitmap_offset, bitmap_len, "the bitmaps")?;
        // makedumpfile and QEMU write two bitmaps; an old dump whose
        // bitmap blocks cannot hold two has one, serving as both.
        let one_bitmap = header
            .max_mapnr
            .div_ceil(8)
            .div_ceil(block_size)
            .saturating_mul(block_size);
        let two = bitmap_len >= one_bitmap.saturating_mul(2) && bitmap_len >= 2;
        let half = if two { bitmap_len / 2 } else { bitmap_len };
        let (ram, dumped) = match bitmaps {
            Cow::Borrowed(b) => (
                Bitmap::new(Cow::Borrowed(&b[..half as usize]), bitmap_offset),
                Bitmap::new(
                    Cow::Borrowed(&b[(bitmap_len - half) as usize..]),
                    bitmap_offset + (bitmap_len - half),
                ),
            ),
            Cow::Owned(v) => {
                let second = v[(bitmap_len - half) as usize..].to_vec();
                let mut first = v;
                first.truncate(half as usize);
                (Bitmap::Owned(first), Bitmap::Owned(second))
            }
        };
        let bits = header.max_mapnr.min(half.saturating_mul(8));
        let desc_offset = block_size
            .checked_mul(1 + sub_hdr_size + bitmap_blocks)
            .ok_or_else(|| Error::at(436, "bitmap_blocks that fit the file"))?;
        let mut dump = KdumpDump {
            header,
            container,
            ram,
            dumped,
            bits,
            rank: Vec::new(),
            rank_base: 0,
            desc_offset,
        };
        dump.build_rank(file);
        if let Some((start, _)) = dump.header.split {
            dump.rank_base = dump.rank_of(file, start.min(bits));
        }
        Ok((dump, notes))
    }

    /// Fills the rank table: one count per 512 bits, so that finding a
    /// page's descriptor counts at most 512 bits. No allocation per page.
    fn build_rank(&mut self, file: &[u8]) {
        let bitmap = self.dumped.bytes(file);
        let blocks = self.bits.div_ceil(RANK_BLOCK_BITS) as usize;
        let mut rank = Vec::with_capacity(blocks + 1);
        let mut total = 0u64;
        for block in bitmap.chunks(64).take(blocks) {
            rank.push(total);
            total += block.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
        }
        rank.push(total);
        self.rank = rank;
    }

    /// The number of set bits of the second bitmap before `pfn`
    /// (`pfn <= bits`).
    fn rank_of(&self, file: &[u8], pfn: u64) -> u64 {
        let bitmap = self.dumped.bytes(file);
        let block = pfn / RANK_BLOCK_BITS;
        let mut count = self.rank.get(block as usize).copied().unwrap_or(0);
        let block_start = (block * RANK_BLOCK_BITS / 8) as usize;
        let within = pfn % RANK_BLOCK_BITS;
        for word in 0..within / 64 {
            let at = block_start + word as usize * 8;
            count += u64::from(le_u64(bitmap.get(at..).unwrap_or_default()).count_ones());
        }
        let partial = within % 64;
        if partial != 0 {
            let at = block_start + (within / 64) as usize * 8;
            let word = le_u64(bitmap.get(at..).unwrap_or_default());
            count += u64::from((word & ((1u64 << partial) - 1)).count_ones());
        }
        count
    }

    /// The physical ranges that the first bitmap says are RAM; an error
    /// past [`MAX_RANGES`] of them (a hostile bitmap of alternating bits).
    pub(crate) fn ranges(&self, file: &[u8]) -> Result<Vec<MemoryRange>, Error> {
        let bitmap = self.ram.bytes(file);
        let page = self.header.block_size;
        let mut out: Vec<MemoryRange> = Vec::new();
        let mut start: Option<u64> = None;
        let mut pfn = 0u64;
        while pfn < self.bits {
            // Whole bytes of zeros or ones at once.
            let byte = bitmap.get((pfn / 8) as usize).copied().unwrap_or(0);
            if pfn.is_multiple_of(8) && pfn + 8 <= self.bits && (byte == 0 || byte == 0xff) {
                match (byte, start) {
                    (0, Some(s)) => {
                        out.push(MemoryRange {
                            start: s.saturating_mul(page),
                            end: pfn.saturating_mul(page),
                        });
                        start = None;
                        if out.len() > MAX_RANGES {
                            break;
                        }
                    }
                    (0xff, None) => start = Some(pfn),
                    _ => {}
                }
                pfn += 8;
                continue;
            }
            match (byte & (1 << (pfn % 8)) != 0, start) {
                (false, Some(s)) => {
                    out.push(MemoryRange {
                        start: s.saturating_mul(page),
                        end: pfn.saturating_mul(page),
                    });
                    start = None;
                    if out.len() > MAX_RANGES {
                        break;
                    }
                }
                (true, None) => start = Some(pfn),
                _ => {}
            }
            pfn += 1;
        }
        if let Some(s) = start {
            out.push(MemoryRange {
                start: s.saturating_mul(page),
                end: self.bits.saturating_mul(page),
            });
        }
        if out.len() > MAX_RANGES {
            return Err(Error::TooLarge {
                offset: self.desc_offset,
                what: "the number of RAM ranges in the first bitmap",
                size: out.len() as u64,
                limit: MAX_RANGES as u64,
            });
        }
        Ok(out)
    }

    fn page_desc(&self, file: &[u8], pfn: u64) -> Result<PageDesc, Error> {
        let missing = |why| Error::PageMissing {
            paddr: pfn * self.header.block_size,
            why,
        };
        if pfn >= self.bits || !bit(self.ram.bytes(file), pfn) {
            return Err(missing(Absence::NotRam));
        }
        if !bit(self.dumped.bytes(file), pfn) {
            return Err(missing(Absence::Excluded));
        }
        if let Some((start, end)) = self.header.split
            && !(start..end).contains(&pfn)
        {
            return Err(missing(Absence::OtherSplitPart));
        }
        let index = self.rank_of(file, pfn).saturating_sub(self.rank_base);
        let at = self
            .desc_offset
            .saturating_add(index.saturating_mul(PAGE_DESC_SIZE));
        let raw =
            self.container
                .bytes(file, at, PAGE_DESC_SIZE, "the page_desc of a dumped page")?;
        let d = Reader::new(&raw, at);
        let offset = d.u64(0, "page_desc.offset")?;
        let size = u64::from(d.u32(8, "page_desc.size")?);
        let flags = d.u32(12, "page_desc.flags")?;
        if offset == 0 {
            return Err(missing(Absence::Incomplete));
        }
        if offset as i64 <= 0 {
            return Err(Error::at(
                at,
                format!(
                    "a page_desc offset inside the file, found {}",
                    offset as i64
                ),
            ));
        }
        if size == 0 || size > self.header.block_size {
            return Err(Error::at(
                at + 8,
                format!(
                    "a page_desc size from 1 to the page size {}, found {size}",
                    self.header.block_size
                ),
            ));
        }
        Ok(PageDesc {
            offset,
            size,
            flags,
        })
    }

    /// Fills `page` (one page) with page frame `pfn`.
    pub(crate) fn read_page(&self, file: &[u8], pfn: u64, page: &mut [u8]) -> Result<(), Error> {
        let desc = self.page_desc(file, pfn)?;
        let data =
            self.container
                .bytes(file, desc.offset, desc.size, "the data of a dumped page")?;
        let method = Compression::from_page_flags(desc.flags).ok_or_else(|| {
            Error::at(
                desc.offset,
                format!(
                    "page_desc flags naming one compression, found {:#x}",
                    desc.flags
                ),
            )
        })?;
        decompress_page(method, &data, page).map_err(|detail| Error::Decompress {
            pfn,
            offset: desc.offset,
            method,
            detail,
        })
    }
}
