//! The kernel's printk log, read from memory as `dmesg` would have shown
//! it, in both of the kernel's formats:
//!
//! - **the lockless ring buffer** (5.10 and later): `prb` points at a
//!   `struct printk_ringbuffer`, whose descriptor ring holds one
//!   `struct prb_desc` (a state word and the logical positions of the
//!   record's text block) and one `struct printk_info` (sequence number,
//!   timestamp, text length, level, caller, device) per record, and whose
//!   text data ring holds the text blocks, each an `unsigned long` id
//!   followed by the text. The state word's top two bits are the state
//!   and the rest the id the descriptor holds now; records are read from
//!   `tail_id` to `head_id` and only those committed or finalized, as
//!   makedumpfile does. A block whose begin is one wrap behind its end
//!   wrapped: its text starts at the ring's beginning.
//! - **`log_buf`** (3.5 to 5.9): one buffer of `struct printk_log`
//!   records (`struct log` before 3.11), each a header with the record's
//!   length, then the text and a dictionary, from `log_first_idx` to
//!   `log_next_idx`; a record of length 0 sends the reader back to the
//!   buffer's start.
//!
//! Offsets and sizes come from the VMCOREINFO `OFFSET()`/`SIZE()` entries
//! the kernel writes for dump tools, and from BTF for what VMCOREINFO
//! lacks (the level and facility bitfields, `log_buf`'s caller id).
//! [`Log::dmesg`] formats the records as `makedumpfile --dump-dmesg`
//! does. Everything read is bounded by the ring's sizes, so a damaged
//! dump gives an error or fewer records, never a hang.

use kscope_btf::Btf;
use kscope_vmcore::VmcoreInfo;

use crate::Error;
use crate::memory::KernelRead;

/// The most descriptors a ring may have, as a power of two: the kernel
/// makes one per 32 bytes of text, and its log is at most 2 GiB.
pub const MAX_COUNT_BITS: u32 = 26;

/// The largest text data ring accepted, as a power of two (its text is
/// read a record at a time, never whole).
pub const MAX_SIZE_BITS: u32 = 31;

/// The largest `log_buf` read.
pub const MAX_LOG_BUF: u32 = 64 << 20;

const DESC_STATE_SHIFT: u32 = 62;
const DESC_ID_MASK: u64 = (1 << DESC_STATE_SHIFT) - 1;
const DESC_COMMITTED: u64 = 1;
const DESC_FINALIZED: u64 = 2;

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its sequence number (for `log_buf`, its position from the first
    /// record read).
    pub seq: u64,
    /// When it was written, in nanoseconds since boot (local clock).
    pub ts_nsec: u64,
    /// Its syslog level (0 emergency to 7 debug), when BTF says where
    /// it is.
    pub level: Option<u8>,
    /// Its syslog facility, when BTF says where it is.
    pub facility: Option<u8>,
    /// The task (`T` and a pid) or CPU (`C` and a number, bit 31 set)
    /// that wrote it.
    pub caller_id: Option<u32>,
    /// Its text, as written (one record may hold several lines).
    pub text: Vec<u8>,
    /// The device the record is about (`dev_printk`): its subsystem
    /// (`pci`) and device (`+pci:0000:00:01.0`); empty when none.
    pub subsystem: Vec<u8>,
    /// See [`LogRecord::subsystem`].
    pub device: Vec<u8>,
}

/// Which format the log was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The lockless ring buffer (5.10 and later).
    Ringbuffer,
    /// `log_buf` of `struct printk_log` records (3.5 to 5.9).
    LogBuf,
}

/// The log: its records, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Which format held it.
    pub format: LogFormat,
    /// The records that could be read.
    pub records: Vec<LogRecord>,
    /// Descriptors between tail and head that were not readable records:
    /// reserved by a writer that never finished, reused, data-less, or
    /// pointing outside the text ring.
    pub skipped: u64,
}

impl Log {
    /// The records as `makedumpfile --dump-dmesg` (1.7.2) writes them:
    /// `[%5lu.%06lu] ` and the text for each, a newline in the text
    /// followed by spaces as wide as that prefix, printable characters
    /// and white space as they are and other bytes as `\xNN` (as
    /// makedumpfile does for bytes below 0x80; it writes a byte above as
    /// a sign-extended `\xffffffNN`). `log_buf` records whose caller id
    /// BTF locates get makedumpfile's `[   T123] ` after the time.
    pub fn dmesg(&self) -> String {
        let mut out = String::new();
        let callers = self.format == LogFormat::LogBuf;
        for record in &self.records {
            record.write_dmesg(&mut out, callers);
        }
        out
    }
}

impl LogRecord {
    /// Appends the record as [`Log::dmesg`] writes it; `caller` adds the
    /// caller id, when there is one.
    pub fn write_dmesg(&self, out: &mut String, caller: bool) {
        let start = out.len();
        out.push_str(&format!(
            "[{:5}.{:06}] ",
            self.ts_nsec / 1_000_000_000,
            self.ts_nsec % 1_000_000_000 / 1000
        ));
        if let Some(id) = self.caller_id.filter(|_| caller) {
            let kind = if id & 0x8000_0000 != 0 { 'C' } else { 'T' };
            out.push_str(&format!("[{:>8}] ", format!("{kind}{}", id & 0x7fff_ffff)));
        }
        let indent = out.len() - start;
        for &b in &self.text {
            match b {
                b'\n' => {
                    out.push('\n');
                    out.extend(std::iter::repeat_n(' ', indent));
                }
                0x20..=0x7e | b'\t' | 0x0b | 0x0c | b'\r' => out.push(char::from(b)),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        out.push('\n');
    }

    /// The text as a string, bytes that are not UTF-8 replaced.
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }
}

/// A member's place in a record: a byte offset, or a bitfield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitField {
    /// Offset of the first bit from the record's start.
    pub bit_offset: u64,
    /// Width in bits.
    pub bits: u32,
}

impl BitField {
    fn from_btf(btf: Option<&Btf<'_>>, type_name: &str, member: &str) -> Option<BitField> {
        let btf = btf?;
        let m = btf.member_path(btf.find(type_name)?, member)?;
        let bits = if m.is_bitfield() {
            m.bitfield_size
        } else {
            u32::try_from(btf.size(m.type_id)? * 8).ok()?
        };
        (1..=32).contains(&bits).then_some(BitField {
            bit_offset: m.bit_offset,
            bits,
        })
    }

    fn read(&self, bytes: &[u8]) -> Option<u32> {
        let first = usize::try_from(self.bit_offset / 8).ok()?;
        let shift = (self.bit_offset % 8) as u32;
        let window = bytes.get(first..first + (shift + self.bits).div_ceil(8) as usize)?;
        let raw = window
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        Some(((raw >> shift) & ((1u64 << self.bits) - 1)) as u32)
    }
}

/// Where the lockless ring buffer's fields are: VMCOREINFO's `OFFSET()`
/// and `SIZE()` entries, and BTF for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingbufferLayout {
    /// `SIZE(printk_ringbuffer)`.
    pub ringbuffer_size: u64,
    /// `OFFSET(printk_ringbuffer.desc_ring)`.
    pub desc_ring: u64,
    /// `OFFSET(printk_ringbuffer.text_data_ring)`.
    pub text_data_ring: u64,
    /// `OFFSET(prb_desc_ring.count_bits)`.
    pub count_bits: u64,
    /// `OFFSET(prb_desc_ring.descs)`.
    pub descs: u64,
    /// `OFFSET(prb_desc_ring.infos)`.
    pub infos: u64,
    /// `OFFSET(prb_desc_ring.head_id)`.
    pub head_id: u64,
    /// `OFFSET(prb_desc_ring.tail_id)`.
    pub tail_id: u64,
    /// `SIZE(prb_desc)`.
    pub desc_size: u64,
    /// `OFFSET(prb_desc.state_var)`.
    pub state_var: u64,
    /// `OFFSET(prb_desc.text_blk_lpos)`.
    pub text_blk_lpos: u64,
    /// `OFFSET(prb_data_blk_lpos.begin)`.
    pub lpos_begin: u64,
    /// `OFFSET(prb_data_blk_lpos.next)`.
    pub lpos_next: u64,
    /// `SIZE(printk_info)`.
    pub info_size: u64,
    /// `OFFSET(printk_info.seq)`.
    pub seq: u64,
    /// `OFFSET(printk_info.ts_nsec)`.
    pub ts_nsec: u64,
    /// `OFFSET(printk_info.text_len)`.
    pub text_len: u64,
    /// `OFFSET(printk_info.caller_id)`.
    pub caller_id: u64,
    /// `OFFSET(printk_info.dev_info)` + `OFFSET(dev_printk_info.subsystem)`,
    /// and `LENGTH(printk_info_subsystem)`.
    pub subsystem: Option<(u64, u64)>,
    /// The same for `device`.
    pub device: Option<(u64, u64)>,
    /// `OFFSET(prb_data_ring.size_bits)`.
    pub size_bits: u64,
    /// `OFFSET(prb_data_ring.data)`.
    pub data: u64,
    /// `OFFSET(atomic_long_t.counter)`.
    pub counter: u64,
    /// `printk_info.level`, from BTF.
    pub level: Option<BitField>,
    /// `printk_info.facility`, from BTF.
    pub facility: Option<BitField>,
}

fn need(value: Option<u64>, key: &str) -> Result<u64, Error> {
    value.ok_or_else(|| {
        Error::Corrupt(format!(
            "VMCOREINFO has no {key}, which reading the printk log needs"
        ))
    })
}

impl RingbufferLayout {
    /// The layout VMCOREINFO gives (5.10 and later write every entry
    /// read here), with the level and facility from `btf` when given.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the first entry VMCOREINFO lacks.
    pub fn from_vmcoreinfo(
        info: &VmcoreInfo,
        btf: Option<&Btf<'_>>,
    ) -> Result<RingbufferLayout, Error> {
        let offset = |t: &str, m: &str| need(info.offset(t, m), &format!("OFFSET({t}.{m})"));
        let size = |t: &str| need(info.size(t), &format!("SIZE({t})"));
        let dev_info = info.offset("printk_info", "dev_info");
        let dev = |member: &str, length: &str| {
            Some((
                dev_info? + info.offset("dev_printk_info", member)?,
                info.length(length)?,
            ))
        };
        Ok(RingbufferLayout {
            ringbuffer_size: size("printk_ringbuffer")?,
            desc_ring: offset("printk_ringbuffer", "desc_ring")?,
            text_data_ring: offset("printk_ringbuffer", "text_data_ring")?,
            count_bits: offset("prb_desc_ring", "count_bits")?,
            descs: offset("prb_desc_ring", "descs")?,
            infos: offset("prb_desc_ring", "infos")?,
            head_id: offset("prb_desc_ring", "head_id")?,
            tail_id: offset("prb_desc_ring", "tail_id")?,
            desc_size: size("prb_desc")?,
            state_var: offset("prb_desc", "state_var")?,
            text_blk_lpos: offset("prb_desc", "text_blk_lpos")?,
            lpos_begin: offset("prb_data_blk_lpos", "begin")?,
            lpos_next: offset("prb_data_blk_lpos", "next")?,
            info_size: size("printk_info")?,
            seq: offset("printk_info", "seq")?,
            ts_nsec: offset("printk_info", "ts_nsec")?,
            text_len: offset("printk_info", "text_len")?,
            caller_id: offset("printk_info", "caller_id")?,
            subsystem: dev("subsystem", "printk_info_subsystem"),
            device: dev("device", "printk_info_device"),
            size_bits: offset("prb_data_ring", "size_bits")?,
            data: offset("prb_data_ring", "data")?,
            counter: info.offset("atomic_long_t", "counter").unwrap_or(0),
            level: BitField::from_btf(btf, "struct printk_info", "level"),
            facility: BitField::from_btf(btf, "struct printk_info", "facility"),
        })
    }
}

/// Little-endian reads from a struct read whole; a field outside it reads
/// as an error naming it.
struct Fields<'b> {
    bytes: &'b [u8],
    what: &'static str,
}

impl Fields<'_> {
    fn get<const N: usize>(&self, offset: u64) -> Result<[u8; N], Error> {
        usize::try_from(offset)
            .ok()
            .and_then(|o| self.bytes.get(o..o.checked_add(N)?))
            .map(|b| {
                let mut out = [0; N];
                out.copy_from_slice(b);
                out
            })
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "an offset of {offset} is outside {} ({} bytes)",
                    self.what,
                    self.bytes.len()
                ))
            })
    }

    fn u16(&self, offset: u64) -> Result<u16, Error> {
        self.get(offset).map(u16::from_le_bytes)
    }

    fn u32(&self, offset: u64) -> Result<u32, Error> {
        self.get(offset).map(u32::from_le_bytes)
    }

    fn u64(&self, offset: u64) -> Result<u64, Error> {
        self.get(offset).map(u64::from_le_bytes)
    }

    /// A NUL-padded char array.
    fn chars(&self, (offset, len): (u64, u64)) -> Vec<u8> {
        let Some(bytes) = usize::try_from(offset).ok().and_then(|o| {
            let end = o.checked_add(usize::try_from(len).ok()?)?;
            self.bytes.get(o..end)
        }) else {
            return Vec::new();
        };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        bytes[..end].to_vec()
    }
}

fn read_struct(
    memory: &(impl KernelRead + ?Sized),
    address: u64,
    size: u64,
    what: &str,
) -> Result<Vec<u8>, Error> {
    if size > 1 << 16 {
        return Err(Error::Corrupt(format!(
            "the size of {what} is {size} bytes"
        )));
    }
    memory
        .read_vec(address, size as usize)
        .map_err(|source| Error::Memory {
            what: format!("{what} at {address:#x}"),
            source,
        })
}

/// Reads the lockless ring buffer whose `struct printk_ringbuffer` is at
/// `ringbuffer` (the value of the kernel's `prb` pointer).
///
/// # Errors
///
/// [`Error::Memory`] when the ring buffer or a descriptor cannot be read,
/// [`Error::Corrupt`] when its sizes are beyond [`MAX_COUNT_BITS`] or
/// [`MAX_SIZE_BITS`], or its tail and head are further apart than its
/// descriptors. A record whose text cannot be read is skipped.
pub fn read_ringbuffer(
    memory: &(impl KernelRead + ?Sized),
    ringbuffer: u64,
    layout: &RingbufferLayout,
) -> Result<Log, Error> {
    let bytes = read_struct(
        memory,
        ringbuffer,
        layout.ringbuffer_size,
        "struct printk_ringbuffer",
    )?;
    let rb = Fields {
        bytes: &bytes,
        what: "struct printk_ringbuffer",
    };
    let desc_ring = layout.desc_ring;
    let count_bits = rb.u32(desc_ring + layout.count_bits)?;
    let descs = rb.u64(desc_ring + layout.descs)?;
    let infos = rb.u64(desc_ring + layout.infos)?;
    let head_id = rb.u64(desc_ring + layout.head_id + layout.counter)? & DESC_ID_MASK;
    let tail_id = rb.u64(desc_ring + layout.tail_id + layout.counter)? & DESC_ID_MASK;
    let size_bits = rb.u32(layout.text_data_ring + layout.size_bits)?;
    let data = rb.u64(layout.text_data_ring + layout.data)?;
    if count_bits > MAX_COUNT_BITS || !(3..=MAX_SIZE_BITS).contains(&size_bits) {
        return Err(Error::Corrupt(format!(
            "the printk ring buffer has 2^{count_bits} descriptors and 2^{size_bits} bytes of text"
        )));
    }
    let count = 1u64 << count_bits;
    let span = head_id.wrapping_sub(tail_id) & DESC_ID_MASK;
    if span >= count {
        return Err(Error::Corrupt(format!(
            "the printk ring buffer's tail id {tail_id} and head id {head_id} are further apart than its {count} descriptors"
        )));
    }
    let ring = TextRing { data, size_bits };
    let mut log = Log {
        format: LogFormat::Ringbuffer,
        records: Vec::new(),
        skipped: 0,
    };
    for step in 0..=span {
        let id = tail_id.wrapping_add(step) & DESC_ID_MASK;
        let index = id % count;
        let desc_bytes = read_struct(
            memory,
            descs.wrapping_add(index * layout.desc_size),
            layout.desc_size,
            "struct prb_desc",
        )?;
        let desc = Fields {
            bytes: &desc_bytes,
            what: "struct prb_desc",
        };
        let state_var = desc.u64(layout.state_var + layout.counter)?;
        let state = state_var >> DESC_STATE_SHIFT;
        if state_var & DESC_ID_MASK != id || !(state == DESC_COMMITTED || state == DESC_FINALIZED) {
            log.skipped += 1;
            continue;
        }
        let begin = desc.u64(layout.text_blk_lpos + layout.lpos_begin)?;
        let next = desc.u64(layout.text_blk_lpos + layout.lpos_next)?;
        let info_bytes = read_struct(
            memory,
            infos.wrapping_add(index * layout.info_size),
            layout.info_size,
            "struct printk_info",
        )?;
        let info = Fields {
            bytes: &info_bytes,
            what: "struct printk_info",
        };
        let text_len = info.u16(layout.text_len)?;
        let Some(text) = ring.text(memory, begin, next, text_len) else {
            log.skipped += 1;
            continue;
        };
        log.records.push(LogRecord {
            seq: info.u64(layout.seq)?,
            ts_nsec: info.u64(layout.ts_nsec)?,
            level: layout
                .level
                .and_then(|f| f.read(&info_bytes))
                .map(|v| v as u8),
            facility: layout
                .facility
                .and_then(|f| f.read(&info_bytes))
                .map(|v| v as u8),
            caller_id: Some(info.u32(layout.caller_id)?),
            text,
            subsystem: layout.subsystem.map(|f| info.chars(f)).unwrap_or_default(),
            device: layout.device.map(|f| info.chars(f)).unwrap_or_default(),
        });
    }
    Ok(log)
}

/// The text data ring.
struct TextRing {
    data: u64,
    size_bits: u32,
}

impl TextRing {
    /// The text of the block from logical position `begin` to `next`, at
    /// most `text_len` bytes; None for a data-less block, an invalid one,
    /// or one the dump cannot give.
    fn text(
        &self,
        memory: &(impl KernelRead + ?Sized),
        begin: u64,
        next: u64,
        text_len: u16,
    ) -> Option<Vec<u8>> {
        // Bit 0 set: no data (NO_LPOS, FAILED_LPOS); a block is aligned
        // to its id.
        if !begin.is_multiple_of(8) || !next.is_multiple_of(8) {
            return None;
        }
        let size = 1u64 << self.size_bits;
        let wraps = |lpos: u64| lpos >> self.size_bits;
        let (start, data_size) = if wraps(begin) == wraps(next) && begin < next {
            (begin & (size - 1), next - begin)
        } else if wraps(begin.wrapping_add(size)) == wraps(next) {
            // The block wrapped: its text is at the ring's start.
            (0, next & (size - 1))
        } else {
            return None;
        };
        // The block starts with the descriptor's id.
        let len = data_size.checked_sub(8)?.min(u64::from(text_len));
        if start + 8 + len > size {
            return None;
        }
        memory
            .read_vec(self.data.wrapping_add(start + 8), len as usize)
            .ok()
    }
}

/// Where `log_buf`'s records and variables are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBufLayout {
    /// `SYMBOL(log_buf)`: the address of the `char *log_buf` variable.
    pub log_buf: u64,
    /// `SYMBOL(log_buf_len)`: the address of the `u32` length.
    pub log_buf_len: u64,
    /// `SYMBOL(log_first_idx)`.
    pub log_first_idx: u64,
    /// `SYMBOL(log_next_idx)`.
    pub log_next_idx: u64,
    /// `SIZE(printk_log)` (or `SIZE(log)`): a record's header.
    pub header_size: u64,
    /// `OFFSET(printk_log.ts_nsec)`.
    pub ts_nsec: u64,
    /// `OFFSET(printk_log.len)`.
    pub len: u64,
    /// `OFFSET(printk_log.text_len)`.
    pub text_len: u64,
    /// `printk_log.caller_id` (5.1 and later, CONFIG_PRINTK_CALLER), from
    /// BTF: VMCOREINFO does not give it.
    pub caller_id: Option<u64>,
    /// `printk_log.level`, from BTF.
    pub level: Option<BitField>,
    /// `printk_log.facility`, from BTF.
    pub facility: Option<BitField>,
}

impl LogBufLayout {
    /// The layout VMCOREINFO gives (3.5 to 5.9), the record's struct
    /// named `printk_log` or, before 3.11, `log`.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the first entry VMCOREINFO lacks.
    pub fn from_vmcoreinfo(
        info: &VmcoreInfo,
        btf: Option<&Btf<'_>>,
    ) -> Result<LogBufLayout, Error> {
        let name = if info.size("printk_log").is_some() {
            "printk_log"
        } else {
            "log"
        };
        let symbol = |s: &str| need(info.symbol(s), &format!("SYMBOL({s})"));
        let offset = |m: &str| need(info.offset(name, m), &format!("OFFSET({name}.{m})"));
        let struct_name = format!("struct {name}");
        let caller_id = btf.and_then(|btf| {
            let m = btf.member_path(btf.find(&struct_name)?, "caller_id")?;
            (m.bit_offset % 8 == 0).then_some(m.bit_offset / 8)
        });
        Ok(LogBufLayout {
            log_buf: symbol("log_buf")?,
            log_buf_len: symbol("log_buf_len")?,
            log_first_idx: symbol("log_first_idx")?,
            log_next_idx: symbol("log_next_idx")?,
            header_size: need(info.size(name), &format!("SIZE({name})"))?,
            ts_nsec: offset("ts_nsec")?,
            len: offset("len")?,
            text_len: offset("text_len")?,
            caller_id,
            level: BitField::from_btf(btf, &struct_name, "level"),
            facility: BitField::from_btf(btf, &struct_name, "facility"),
        })
    }
}

/// Reads the records of `log_buf` from `log_first_idx` to
/// `log_next_idx`.
///
/// # Errors
///
/// [`Error::Memory`] when the variables or the buffer cannot be read,
/// [`Error::Corrupt`] when the buffer is larger than [`MAX_LOG_BUF`], an
/// index or a record's length does not fit it, or the records loop.
pub fn read_log_buf(
    memory: &(impl KernelRead + ?Sized),
    layout: &LogBufLayout,
) -> Result<Log, Error> {
    let var = |address: u64, what: &str| {
        memory.read_u32(address).map_err(|source| Error::Memory {
            what: what.to_string(),
            source,
        })
    };
    let buf = memory
        .read_u64(layout.log_buf)
        .map_err(|source| Error::Memory {
            what: "log_buf".into(),
            source,
        })?;
    let len = var(layout.log_buf_len, "log_buf_len")?;
    let first = var(layout.log_first_idx, "log_first_idx")?;
    let next = var(layout.log_next_idx, "log_next_idx")?;
    if len > MAX_LOG_BUF {
        return Err(Error::Corrupt(format!(
            "log_buf_len is {len}, more than the {MAX_LOG_BUF} read"
        )));
    }
    if first >= len.max(1) || next >= len.max(1) {
        return Err(Error::Corrupt(format!(
            "log_first_idx {first} or log_next_idx {next} is outside log_buf ({len} bytes)"
        )));
    }
    let bytes = memory
        .read_vec(buf, len as usize)
        .map_err(|source| Error::Memory {
            what: format!("log_buf ({len} bytes at {buf:#x})"),
            source,
        })?;
    let header = layout.header_size;
    let record_at = |idx: u64| -> Result<(u16, Fields<'_>), Error> {
        let fields = Fields {
            bytes: usize::try_from(idx)
                .ok()
                .and_then(|i| bytes.get(i..))
                .unwrap_or(&[]),
            what: "a log_buf record",
        };
        Ok((fields.u16(layout.len)?, fields))
    };
    let mut log = Log {
        format: LogFormat::LogBuf,
        records: Vec::new(),
        skipped: 0,
    };
    // Every record is at least a header long: more steps than that means
    // the records loop.
    let most = u64::from(len) / header.max(1) + 1;
    let mut idx = u64::from(first);
    while idx != u64::from(next) {
        if log.records.len() as u64 >= most {
            return Err(Error::Corrupt(format!(
                "the records of log_buf do not lead from log_first_idx {first} to log_next_idx {next}"
            )));
        }
        let (mut record_len, mut record) = record_at(idx)?;
        let mut at = idx;
        if record_len == 0 {
            // The end of the buffer's records: go on at its start.
            at = 0;
            (record_len, record) = record_at(0)?;
        }
        let record_len = u64::from(record_len);
        let text_len = u64::from(record.u16(layout.text_len)?);
        if record_len < header || header + text_len > record_len || at + record_len > u64::from(len)
        {
            return Err(Error::Corrupt(format!(
                "the log_buf record at {at} has length {record_len} and text length {text_len}"
            )));
        }
        let text = record.bytes[header as usize..(header + text_len) as usize].to_vec();
        log.records.push(LogRecord {
            seq: log.records.len() as u64,
            ts_nsec: record.u64(layout.ts_nsec)?,
            level: layout
                .level
                .and_then(|f| f.read(record.bytes))
                .map(|v| v as u8),
            facility: layout
                .facility
                .and_then(|f| f.read(record.bytes))
                .map(|v| v as u8),
            caller_id: layout.caller_id.map(|o| record.u32(o)).transpose()?,
            text,
            subsystem: Vec::new(),
            device: Vec::new(),
        });
        idx = at + record_len;
    }
    Ok(log)
}

/// The printk log of the dumped kernel: the lockless ring buffer when
/// VMCOREINFO has `SYMBOL(prb)`, else `log_buf`. `btf`, when given,
/// supplies what VMCOREINFO does not (levels, facilities, callers).
///
/// # Errors
///
/// [`Error::Corrupt`] when VMCOREINFO describes neither format (kernels
/// before 3.5 kept a plain character buffer, which is not read), else as
/// [`read_ringbuffer`] and [`read_log_buf`].
pub fn read_log(
    memory: &(impl KernelRead + ?Sized),
    info: &VmcoreInfo,
    btf: Option<&Btf<'_>>,
) -> Result<Log, Error> {
    if let Some(prb) = info.symbol("prb") {
        let layout = RingbufferLayout::from_vmcoreinfo(info, btf)?;
        let ringbuffer = memory.read_u64(prb).map_err(|source| Error::Memory {
            what: "prb".into(),
            source,
        })?;
        return read_ringbuffer(memory, ringbuffer, &layout);
    }
    if info.symbol("log_buf").is_some() && info.symbol("log_first_idx").is_some() {
        return read_log_buf(memory, &LogBufLayout::from_vmcoreinfo(info, btf)?);
    }
    Err(Error::Corrupt(
        "VMCOREINFO has neither SYMBOL(prb) (5.10 and later) nor SYMBOL(log_buf) with SYMBOL(log_first_idx) (3.5 to 5.9): no printk log to read".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryImage;

    /// The printk entries of the VMCOREINFO of Debian's 6.1 kernel.
    const VMCOREINFO: &str = "SYMBOL(prb)=ffffffff83000f00\nSIZE(printk_ringbuffer)=88\n\
        OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=48\n\
        OFFSET(printk_ringbuffer.fail)=80\nSIZE(prb_desc_ring)=48\n\
        OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\n\
        OFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
        OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\nOFFSET(prb_desc.state_var)=0\n\
        OFFSET(prb_desc.text_blk_lpos)=8\nSIZE(prb_data_blk_lpos)=16\n\
        OFFSET(prb_data_blk_lpos.begin)=0\nOFFSET(prb_data_blk_lpos.next)=8\n\
        SIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\n\
        OFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\n\
        OFFSET(printk_info.dev_info)=24\nSIZE(dev_printk_info)=64\n\
        OFFSET(dev_printk_info.subsystem)=0\nLENGTH(printk_info_subsystem)=16\n\
        OFFSET(dev_printk_info.device)=16\nLENGTH(printk_info_device)=48\n\
        SIZE(prb_data_ring)=32\nOFFSET(prb_data_ring.size_bits)=0\n\
        OFFSET(prb_data_ring.data)=8\nOFFSET(prb_data_ring.head_lpos)=16\n\
        OFFSET(prb_data_ring.tail_lpos)=24\nSIZE(atomic_long_t)=8\n\
        OFFSET(atomic_long_t.counter)=0\n";

    const PRB_VAR: u64 = 0xffff_ffff_8300_0f00;
    const PRB: u64 = 0xffff_ffff_8300_0000;
    const DESCS: u64 = 0xffff_ffff_8300_1000;
    const INFOS: u64 = 0xffff_ffff_8300_2000;
    const TEXT: u64 = 0xffff_ffff_8300_4000;

    /// A ring of 8 descriptors and 256 bytes of text, laid out as 6.1
    /// lays it out.
    struct Ring {
        prb: Vec<u8>,
        descs: Vec<u8>,
        infos: Vec<u8>,
        text: Vec<u8>,
    }

    impl Ring {
        fn new(tail: u64, head: u64) -> Ring {
            let mut prb = vec![0; 88];
            prb[0..4].copy_from_slice(&3u32.to_le_bytes());
            prb[8..16].copy_from_slice(&DESCS.to_le_bytes());
            prb[16..24].copy_from_slice(&INFOS.to_le_bytes());
            prb[24..32].copy_from_slice(&head.to_le_bytes());
            prb[32..40].copy_from_slice(&tail.to_le_bytes());
            prb[48..52].copy_from_slice(&8u32.to_le_bytes());
            prb[56..64].copy_from_slice(&TEXT.to_le_bytes());
            Ring {
                prb,
                descs: vec![0; 8 * 24],
                infos: vec![0; 8 * 88],
                text: vec![0; 256],
            }
        }

        /// A record: its descriptor in `state`, its info, and its text
        /// written into its block (where the block wraps, at the ring's
        /// start).
        #[allow(clippy::too_many_arguments)]
        fn record(&mut self, id: u64, state: u64, begin: u64, next: u64, ts: u64, text: &[u8]) {
            let d = (id % 8) as usize * 24;
            self.descs[d..d + 8].copy_from_slice(&((state << 62) | id).to_le_bytes());
            self.descs[d + 8..d + 16].copy_from_slice(&begin.to_le_bytes());
            self.descs[d + 16..d + 24].copy_from_slice(&next.to_le_bytes());
            let i = (id % 8) as usize * 88;
            self.infos[i..i + 8].copy_from_slice(&(id + 100).to_le_bytes());
            self.infos[i + 8..i + 16].copy_from_slice(&ts.to_le_bytes());
            self.infos[i + 16..i + 18].copy_from_slice(&(text.len() as u16).to_le_bytes());
            // facility 1 (user), level 6 (info), flags 0.
            self.infos[i + 18] = 1;
            self.infos[i + 19] = 6 << 5;
            self.infos[i + 20..i + 24].copy_from_slice(&(0x8000_0001u32).to_le_bytes());
            if begin & 1 == 0 {
                let at = if begin >> 8 == next >> 8 {
                    begin % 256
                } else {
                    0
                } as usize;
                self.text[at..at + 8].copy_from_slice(&id.to_le_bytes());
                let end = (at + 8 + text.len()).min(256);
                self.text[at + 8..end].copy_from_slice(&text[..end - at - 8]);
            }
        }

        fn dev_info(&mut self, id: u64, subsystem: &[u8], device: &[u8]) {
            let i = (id % 8) as usize * 88 + 24;
            self.infos[i..i + subsystem.len()].copy_from_slice(subsystem);
            self.infos[i + 16..i + 16 + device.len()].copy_from_slice(device);
        }

        fn image(&self) -> MemoryImage {
            let mut image = MemoryImage::default();
            image.insert(PRB_VAR, PRB.to_le_bytes().to_vec());
            image.insert(PRB, self.prb.clone());
            image.insert(DESCS, self.descs.clone());
            image.insert(INFOS, self.infos.clone());
            image.insert(TEXT, self.text.clone());
            image
        }
    }

    fn layout() -> RingbufferLayout {
        RingbufferLayout::from_vmcoreinfo(&VmcoreInfo::parse(VMCOREINFO), None).expect("layout")
    }

    /// Ids 5 to 10: a finalized record, one reserved, a multi-line one
    /// with a device, one committed whose block wraps, one without data
    /// and one whose descriptor was reused for a later id.
    fn ring() -> Ring {
        let mut ring = Ring::new(5, 10);
        ring.record(5, 2, 320, 336, 1_000_001_000, b"hello");
        ring.record(6, 0, 336, 352, 1_000_002_000, b"unfinished");
        ring.record(7, 2, 352, 368, 2_500_000_123, b"a\nb\x01c");
        ring.dev_info(7, b"pci", b"+pci:0000:00:01.0");
        ring.record(8, 1, 496, 544, 12_000_042_999, b"a block that wraps!!");
        ring.record(9, 2, 3, 3, 13_000_000_000, b"");
        ring.record(10, 2, 544, 560, 14_000_000_000, b"gone");
        // The descriptor of id 10 now holds id 18.
        ring.descs[2 * 24..2 * 24 + 8].copy_from_slice(&((2u64 << 62) | 18).to_le_bytes());
        ring
    }

    #[test]
    fn the_lockless_ring_reads_in_id_order_as_makedumpfile_prints_it() {
        let memory = ring().image();
        let log = read_log(&memory, &VmcoreInfo::parse(VMCOREINFO), None).expect("reads");
        assert_eq!(log.format, LogFormat::Ringbuffer);
        assert_eq!(log.records.len(), 3);
        assert_eq!(log.skipped, 3);
        assert_eq!(
            log.dmesg(),
            "[    1.000001] hello\n\
             [    2.500000] a\n               b\\x01c\n\
             [   12.000042] a block that wraps!!\n"
        );
        let multi = &log.records[1];
        assert_eq!((multi.seq, multi.caller_id), (107, Some(0x8000_0001)));
        assert_eq!(multi.subsystem, b"pci");
        assert_eq!(multi.device, b"+pci:0000:00:01.0");
        assert_eq!(multi.level, None);
        assert!(log.records[0].subsystem.is_empty());
    }

    #[test]
    fn levels_and_facilities_come_from_their_bitfields() {
        let layout = RingbufferLayout {
            facility: Some(BitField {
                bit_offset: 18 * 8,
                bits: 8,
            }),
            level: Some(BitField {
                bit_offset: 19 * 8 + 5,
                bits: 3,
            }),
            ..layout()
        };
        let log = read_ringbuffer(&ring().image(), PRB, &layout).expect("reads");
        assert!(
            log.records
                .iter()
                .all(|r| r.level == Some(6) && r.facility == Some(1))
        );
    }

    #[test]
    fn a_text_longer_than_its_block_is_cut_to_the_block() {
        let mut ring = Ring::new(5, 5);
        ring.record(5, 2, 0, 16, 0, b"12345678");
        // The info claims 30 bytes; the block holds 8.
        ring.infos[5 * 88 + 16..5 * 88 + 18].copy_from_slice(&30u16.to_le_bytes());
        let log = read_ringbuffer(&ring.image(), PRB, &layout()).expect("reads");
        assert_eq!(log.records[0].text, b"12345678");
        assert_eq!(log.records[0].text_lossy(), "12345678");
    }

    #[test]
    fn damaged_rings_are_errors_or_skipped_records() {
        let layout = layout();
        let bad = ring_with(|r| r.prb[0..4].copy_from_slice(&27u32.to_le_bytes()));
        let err = read_ringbuffer(&bad.image(), PRB, &layout).expect_err("too many");
        assert!(err.to_string().contains("2^27 descriptors"), "{err}");

        let bad = ring_with(|r| r.prb[48..52].copy_from_slice(&2u32.to_le_bytes()));
        assert!(read_ringbuffer(&bad.image(), PRB, &layout).is_err());

        // Head and tail further apart than the ring.
        let bad = ring_with(|r| r.prb[24..32].copy_from_slice(&100u64.to_le_bytes()));
        let err = read_ringbuffer(&bad.image(), PRB, &layout).expect_err("apart");
        assert!(err.to_string().contains("further apart"), "{err}");

        // Descriptors the dump lacks.
        let mut image = ring().image();
        image.insert(DESCS, vec![0; 24]);
        let err = read_ringbuffer(&image, PRB, &layout).expect_err("no descs");
        assert!(err.to_string().contains("struct prb_desc"), "{err}");

        // Text the dump lacks: the records are skipped.
        let mut image = ring().image();
        image.insert(TEXT, vec![0; 64]);
        let log = read_ringbuffer(&image, PRB, &layout).expect("reads");
        // The wrapped block's text is at the ring's start, which is there.
        assert_eq!(log.records.len(), 1);
        assert_eq!(log.skipped, 5);

        // Blocks that are not aligned, or span more than one wrap.
        let bad = ring_with(|r| {
            r.descs[5 * 24 + 8..5 * 24 + 16].copy_from_slice(&321u64.to_le_bytes());
            r.descs[7 * 24 + 16..7 * 24 + 24].copy_from_slice(&880u64.to_le_bytes());
        });
        let log = read_ringbuffer(&bad.image(), PRB, &layout).expect("reads");
        assert_eq!(log.records.len(), 1);

        let info = VmcoreInfo::parse("SYMBOL(prb)=ffffffff83000f00\n");
        let err = read_log(&bad.image(), &info, None).expect_err("no layout");
        assert!(err.to_string().contains("SIZE(printk_ringbuffer)"), "{err}");
        let err = read_log(&bad.image(), &VmcoreInfo::parse(""), None).expect_err("neither");
        assert!(err.to_string().contains("SYMBOL(prb)"), "{err}");
    }

    fn ring_with(change: impl FnOnce(&mut Ring)) -> Ring {
        let mut ring = ring();
        change(&mut ring);
        ring
    }

    // log_buf of 3.5 to 5.9, as the kernel's VMCOREINFO describes it: a
    // 16-byte packed header (ts_nsec, len, text_len, dict_len, facility,
    // flags:5 and level:3), records aligned to 4 bytes.
    const LOG_BUF_VAR: u64 = 0xffff_ffff_8210_0000;
    const LOG_BUF_LEN: u64 = 0xffff_ffff_8210_0010;
    const FIRST_IDX: u64 = 0xffff_ffff_8210_0020;
    const NEXT_IDX: u64 = 0xffff_ffff_8210_0030;
    const LOG_BUF: u64 = 0xffff_8880_0100_0000;
    const LEGACY: &str = "SYMBOL(log_buf)=ffffffff82100000\nSYMBOL(log_buf_len)=ffffffff82100010\n\
        SYMBOL(log_first_idx)=ffffffff82100020\nSYMBOL(clear_idx)=ffffffff82100028\n\
        SYMBOL(log_next_idx)=ffffffff82100030\nSIZE(printk_log)=16\n\
        OFFSET(printk_log.ts_nsec)=0\nOFFSET(printk_log.len)=8\n\
        OFFSET(printk_log.text_len)=10\nOFFSET(printk_log.dict_len)=12\n";

    /// Puts a record at `at`; returns where the next one goes.
    fn put(buf: &mut [u8], at: usize, ts: u64, text: &[u8], dict: &[u8]) -> usize {
        let len = (16 + text.len() + dict.len()).next_multiple_of(4);
        buf[at..at + 8].copy_from_slice(&ts.to_le_bytes());
        buf[at + 8..at + 10].copy_from_slice(&(len as u16).to_le_bytes());
        buf[at + 10..at + 12].copy_from_slice(&(text.len() as u16).to_le_bytes());
        buf[at + 12..at + 14].copy_from_slice(&(dict.len() as u16).to_le_bytes());
        buf[at + 15] = 4 << 5;
        buf[at + 16..at + 16 + text.len()].copy_from_slice(text);
        buf[at + 16 + text.len()..at + 16 + text.len() + dict.len()].copy_from_slice(dict);
        at + len
    }

    fn legacy_image(buf: Vec<u8>, first: u32, next: u32) -> MemoryImage {
        let mut image = MemoryImage::default();
        image.insert(LOG_BUF_VAR, LOG_BUF.to_le_bytes().to_vec());
        image.insert(LOG_BUF_LEN, (buf.len() as u32).to_le_bytes().to_vec());
        image.insert(FIRST_IDX, first.to_le_bytes().to_vec());
        image.insert(NEXT_IDX, next.to_le_bytes().to_vec());
        image.insert(LOG_BUF, buf);
        image
    }

    /// Four records from index 64: two at the end of a 160-byte buffer,
    /// the end marker (the kernel keeps room for one after each record),
    /// two at its start.
    fn legacy_buf() -> (Vec<u8>, u32) {
        let mut buf = vec![0xaa; 160];
        let at = put(&mut buf, 64, 5_000_000, b"older", b"");
        let at = put(&mut buf, at, 6_000_000, b"two\nlines", b"SUB=pci");
        let wrapped = b"wrapped record!!";
        assert!(at + 16 + wrapped.len() + 16 > buf.len());
        // The zero header that sends readers back to the start.
        buf[at..at + 16].fill(0);
        let at = put(&mut buf, 0, 7_000_000_000, wrapped, b"");
        let next = put(&mut buf, at, 3_601_000_000_000, b"last\x7f", b"");
        (buf, next as u32)
    }

    #[test]
    fn log_buf_records_wrap_at_the_end_marker() {
        let (buf, next) = legacy_buf();
        let memory = legacy_image(buf, 64, next);
        let log = read_log(&memory, &VmcoreInfo::parse(LEGACY), None).expect("reads");
        assert_eq!(log.format, LogFormat::LogBuf);
        assert_eq!(log.records.len(), 4);
        assert_eq!(
            log.dmesg(),
            "[    0.005000] older\n\
             [    0.006000] two\n               lines\n\
             [    7.000000] wrapped record!!\n\
             [ 3601.000000] last\\x7f\n"
        );
        // The old name of the struct.
        let old = LEGACY.replace("printk_log", "log");
        let log = read_log(&memory, &VmcoreInfo::parse(&old), None).expect("reads");
        assert_eq!(log.records.len(), 4);
    }

    #[test]
    fn log_buf_callers_print_as_makedumpfile_prints_them() {
        let record = LogRecord {
            seq: 0,
            ts_nsec: 1_500_000,
            level: None,
            facility: None,
            caller_id: Some(42),
            text: b"x\ny".to_vec(),
            subsystem: Vec::new(),
            device: Vec::new(),
        };
        let mut out = String::new();
        record.write_dmesg(&mut out, true);
        assert_eq!(
            out,
            "[    0.001500] [     T42] x\n                          y\n"
        );
        let cpu = LogRecord {
            caller_id: Some(0x8000_0003),
            ..record
        };
        let mut out = String::new();
        cpu.write_dmesg(&mut out, true);
        assert!(out.starts_with("[    0.001500] [      C3] x\n"), "{out}");
        let mut out = String::new();
        cpu.write_dmesg(&mut out, false);
        assert!(out.starts_with("[    0.001500] x\n"), "{out}");
    }

    #[test]
    fn damaged_log_bufs_are_errors() {
        let info = VmcoreInfo::parse(LEGACY);
        let (buf, next) = legacy_buf();
        // Indexes outside the buffer.
        let err =
            read_log(&legacy_image(buf.clone(), 200, next), &info, None).expect_err("outside");
        assert!(err.to_string().contains("outside log_buf"), "{err}");
        // A record longer than the buffer.
        let mut long = buf.clone();
        long[64 + 8..64 + 10].copy_from_slice(&200u16.to_le_bytes());
        let err = read_log(&legacy_image(long, 64, next), &info, None).expect_err("long");
        assert!(err.to_string().contains("record at 64"), "{err}");
        // A text longer than its record.
        let mut text = buf.clone();
        text[64 + 10..64 + 12].copy_from_slice(&100u16.to_le_bytes());
        assert!(read_log(&legacy_image(text, 64, next), &info, None).is_err());
        // next_idx that no record leads to: the walk ends at the buffer's
        // end instead of looping.
        let err =
            read_log(&legacy_image(buf.clone(), 64, next + 2), &info, None).expect_err("loop");
        assert!(err.to_string().contains("log_buf"), "{err}");
        // A buffer too large to read.
        let mut image = legacy_image(buf.clone(), 64, next);
        image.insert(LOG_BUF_LEN, (MAX_LOG_BUF + 1).to_le_bytes().to_vec());
        assert!(read_log(&image, &info, None).is_err());
        // A missing variable.
        let mut image = legacy_image(buf, 64, next);
        image.insert(NEXT_IDX, Vec::new());
        let err = read_log(&image, &info, None).expect_err("no next");
        assert!(err.to_string().contains("log_next_idx"), "{err}");
        let info = VmcoreInfo::parse("SYMBOL(log_buf)=1\nSYMBOL(log_first_idx)=2\n");
        let err = read_log(&MemoryImage::default(), &info, None).expect_err("no layout");
        assert!(err.to_string().contains("SYMBOL(log_buf_len)"), "{err}");
    }

    /// The seeds of the `kernel_log` fuzz target (fuzz/README.md): the
    /// ring and the `log_buf` of the tests above in the target's input
    /// layout (a mode byte; then `struct printk_ringbuffer`, the counts of
    /// descriptors and of infos, the descriptors, infos and text; or the
    /// three `u32` variables and the buffer).
    fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
        let ring = ring();
        let mut seeds = Vec::new();
        for mode in [0u8, 4] {
            let mut seed = vec![mode];
            seed.extend_from_slice(&ring.prb);
            seed.push((ring.descs.len() / 24) as u8);
            seed.push((ring.infos.len() / 88) as u8);
            seed.extend_from_slice(&ring.descs);
            seed.extend_from_slice(&ring.infos);
            seed.extend_from_slice(&ring.text);
            seeds.push((format!("ring-{mode}"), seed));
        }
        let (buf, next) = legacy_buf();
        let mut seed = vec![1u8];
        for word in [0, 64, next] {
            seed.extend_from_slice(&word.to_le_bytes());
        }
        seed.extend_from_slice(&buf);
        seeds.push(("log_buf".to_string(), seed));
        seeds
    }

    /// The seeds, cut up as the fuzz target cuts its input, read as the
    /// tests' own memory does; with `KSCOPE_FUZZ_SEEDS` set, they are
    /// written into that directory.
    #[test]
    fn the_fuzz_seeds_read_as_the_tests_log() {
        let info = VmcoreInfo::parse(VMCOREINFO);
        let ring_log = read_log(&ring().image(), &info, None).expect("ring");
        let (buf, next) = legacy_buf();
        let legacy = VmcoreInfo::parse(LEGACY);
        let legacy_log = read_log(&legacy_image(buf, 64, next), &legacy, None).expect("log_buf");
        let seeds = fuzz_seeds();
        assert_eq!(seeds.len(), 3);
        for (name, seed) in &seeds {
            let (mode, rest) = seed.split_first().expect("a mode byte");
            if mode & 1 == 0 {
                let (prb, rest) = rest.split_at(88);
                let (descs, rest) = rest[2..].split_at(usize::from(rest[0]) * 24);
                let (infos, text) = rest.split_at(usize::from(seed[90]) * 88);
                let cut = Ring {
                    prb: prb.to_vec(),
                    descs: descs.to_vec(),
                    infos: infos.to_vec(),
                    text: text.to_vec(),
                };
                let log = read_log(&cut.image(), &info, None).expect(name);
                assert_eq!(log.dmesg(), ring_log.dmesg(), "{name}");
            } else {
                let word = |i: usize| {
                    u32::from_le_bytes(rest[4 * i..4 * i + 4].try_into().expect("4 bytes"))
                };
                let image = legacy_image(rest[12..].to_vec(), word(1), word(2));
                let log = read_log(&image, &legacy, None).expect(name);
                assert_eq!(log.dmesg(), legacy_log.dmesg(), "{name}");
            }
        }
        if let Some(dir) = std::env::var_os("KSCOPE_FUZZ_SEEDS") {
            let dir = std::path::PathBuf::from(dir);
            for (name, seed) in seeds {
                std::fs::write(dir.join(name), seed).expect("writes");
            }
        }
    }
}
