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
//!
//! This module holds the records, their formatting and [`read_log`];
//! each format's layout and reader is a submodule (`ringbuffer`,
//! `log_buf`), re-exported here.

use kscope_btf::Btf;
use kscope_vmcore::VmcoreInfo;

use crate::Error;
use crate::memory::KernelRead;

mod log_buf;
mod ringbuffer;
#[cfg(test)]
mod tests;

pub use log_buf::{LogBufLayout, MAX_LOG_BUF, read_log_buf};
pub use ringbuffer::{MAX_COUNT_BITS, MAX_SIZE_BITS, RingbufferLayout, read_ringbuffer};

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

fn need(value: Option<u64>, key: &str) -> Result<u64, Error> {
    value.ok_or_else(|| {
        Error::Corrupt(format!(
            "VMCOREINFO has no {key}, which reading the printk log needs"
        ))
    })
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
