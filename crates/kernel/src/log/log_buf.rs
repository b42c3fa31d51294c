//! `log_buf` of 3.5 to 5.9: one buffer of `struct printk_log` records
//! (`struct log` before 3.11), its layout from VMCOREINFO (and BTF for
//! the bitfields and caller id), read from `log_first_idx` to
//! `log_next_idx`.

use kscope_btf::Btf;
use kscope_vmcore::VmcoreInfo;

use super::{BitField, Fields, Log, LogFormat, LogRecord, need};
use crate::Error;
use crate::memory::KernelRead;

/// The largest `log_buf` read.
pub const MAX_LOG_BUF: u32 = 64 << 20;

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
