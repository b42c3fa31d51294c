//! The lockless ring buffer of 5.10 and later: its layout from
//! VMCOREINFO (and BTF for the level and facility bitfields), and the
//! records read from `tail_id` to `head_id`.

use kscope_btf::Btf;
use kscope_vmcore::VmcoreInfo;

use super::{BitField, Fields, Log, LogFormat, LogRecord, need};
use crate::Error;
use crate::memory::KernelRead;

/// The most descriptors a ring may have, as a power of two: the kernel
/// makes one per 32 bytes of text, and its log is at most 2 GiB.
pub const MAX_COUNT_BITS: u32 = 26;

/// The largest text data ring accepted, as a power of two (its text is
/// read a record at a time, never whole).
pub const MAX_SIZE_BITS: u32 = 31;

const DESC_STATE_SHIFT: u32 = 62;
const DESC_ID_MASK: u64 = (1 << DESC_STATE_SHIFT) - 1;
const DESC_COMMITTED: u64 = 1;
const DESC_FINALIZED: u64 = 2;

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

/// `size` bytes of a struct at `address`; a size over 64 KiB is taken
/// for damage, not read.
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
