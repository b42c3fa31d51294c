//! The start both versions share — magic, `"tracing"`, the version, byte
//! order, long size and page size — and the checks that [`crate::write`]
//! makes on a [`TraceData`] before it writes a byte, with the limits that
//! reading and writing share.

use std::collections::HashSet;

use crate::reader::Reader;
use crate::writer::Put;
use crate::{Compression, Error, TraceData, WriteOptions, option_id};

/// The first ten bytes of every trace.dat.
pub const MAGIC: &[u8] = b"\x17\x08\x44tracing";

/// CPU numbers and counts are below this.
pub(crate) const MAX_CPUS: u32 = 1 << 16;

/// The longest name (of an instance, an event system, a clock).
pub(crate) const MAX_NAME: usize = 4096;

/// Page sizes are powers of two in this range.
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 64..=(1 << 20);

/// What the start of a file says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub(crate) version: u32,
    pub(crate) big_endian: bool,
    pub(crate) long_size: u8,
    pub(crate) page_size: u32,
}

/// Reads the start of `bytes`; returns it and a reader just after it.
pub(crate) fn read(bytes: &[u8]) -> Result<(Head, Reader<'_>), Error> {
    let mut r = Reader::file(bytes, false);
    r.expect(&MAGIC[..3], "the trace.dat magic bytes 17 08 44")?;
    r.expect(&MAGIC[3..], "the word after the magic bytes")?;
    let at = r.position() as usize;
    let version = match r.cstr("the file version", 16)? {
        b"6" => 6,
        b"7" => 7,
        other => {
            return Err(r.unsupported(
                at,
                format!(
                    "file version {:?}: kscope reads versions 6 and 7 (trace-cmd convert --file-version 6 converts others)",
                    String::from_utf8_lossy(other)
                ),
            ));
        }
    };
    let big_endian = match r.u8("the byte order flag")? {
        0 => false,
        1 => true,
        _ => return Err(r.error_at(r.position() as usize - 1, "a byte order flag of 0 or 1")),
    };
    let long_size = r.u8("the long size")?;
    if long_size != 4 && long_size != 8 {
        return Err(r.error_at(r.position() as usize - 1, "a long size of 4 or 8"));
    }
    let mut r = r.with_big_endian(big_endian);
    let page_size = r.u32("the page size")?;
    check_page_size(&r, page_size)?;
    Ok((
        Head {
            version,
            big_endian,
            long_size,
            page_size,
        },
        r,
    ))
}

/// Checks a page size just read (the 4 bytes before `r`'s position).
pub(crate) fn check_page_size(r: &Reader<'_>, page_size: u32) -> Result<(), Error> {
    if page_size_ok(page_size) {
        Ok(())
    } else {
        Err(r.error_at(
            r.position() as usize - 4,
            format!("a page size that is a power of two from 64 bytes to 1 MiB, not {page_size}"),
        ))
    }
}

fn page_size_ok(page_size: u32) -> bool {
    page_size.is_power_of_two() && PAGE_SIZES.contains(&page_size)
}

/// Writes the start of a file of `version`.
pub(crate) fn write(out: &mut impl Put, data: &TraceData<'_>, version: u32) -> Result<(), Error> {
    out.put(MAGIC)?;
    out.cstr(version.to_string().as_bytes())?;
    out.put(&[u8::from(data.big_endian), data.long_size])?;
    out.u32(data.page_size)
}

/// The value of a CPUCOUNT option, when its data holds one; an error when
/// it is not below [`MAX_CPUS`] (`error` builds it from the count).
pub(crate) fn cpucount(
    data: &[u8],
    big_endian: bool,
    error: impl FnOnce(u32) -> Error,
) -> Result<Option<u32>, Error> {
    let Some(bytes) = data.first_chunk::<4>() else {
        return Ok(None);
    };
    let count = if big_endian {
        u32::from_be_bytes(*bytes)
    } else {
        u32::from_le_bytes(*bytes)
    };
    if count >= MAX_CPUS {
        return Err(error(count));
    }
    Ok(Some(count))
}

/// How many (offset, size) entries version 6 writes for each buffer: the
/// last CPUCOUNT option, or the header's count (trace-cmd reads the tables
/// with the CPUCOUNT of the options when there is one).
pub(crate) fn v6_table_len(data: &TraceData<'_>) -> Result<u32, Error> {
    let mut count = data.cpus;
    for option in data.options.iter().filter(|o| o.id == option_id::CPUCOUNT) {
        if let Some(n) = cpucount(&option.data, data.big_endian, cpucount_refused)? {
            count = n;
        }
    }
    Ok(count)
}

fn cpucount_refused(count: u32) -> Error {
    Error::unrepresentable(format!(
        "a CPUCOUNT option of {count} CPUs; the limit is {MAX_CPUS}"
    ))
}

/// Checks that `data` can be written as `options` say, so that [`parse`]
/// reads back what was written.
///
/// [`parse`]: crate::parse
pub(crate) fn check(data: &TraceData<'_>, options: &WriteOptions) -> Result<(), Error> {
    let refuse = |what: String| Err(Error::unrepresentable(what));
    match (options.version, options.compression) {
        (6, Compression::None) | (7, _) => {}
        (6, c) => {
            return refuse(format!(
                "version 6 files are not compressed ({c:?} asked); write version 7 for zlib or zstd"
            ));
        }
        (v, _) => return refuse(format!("version {v}: kscope writes versions 6 and 7")),
    }
    if data.long_size != 4 && data.long_size != 8 {
        return refuse(format!("a long size of {}; it is 4 or 8", data.long_size));
    }
    if !page_size_ok(data.page_size) {
        return refuse(format!(
            "a page size of {}; it is a power of two from 64 bytes to 1 MiB",
            data.page_size
        ));
    }
    if data.cpus >= MAX_CPUS {
        return refuse(format!("{} CPUs; the limit is {MAX_CPUS}", data.cpus));
    }
    for option in &data.options {
        if option.data.len() > u32::MAX as usize {
            return refuse(format!(
                "option {} of {} bytes",
                option.id,
                option.data.len()
            ));
        }
    }
    let table_len = v6_table_len(data)?;
    for system in &data.event_formats {
        check_name("event system", &system.name)?;
    }
    let mut names = HashSet::new();
    for buffer in &data.buffers {
        check_name("instance", &buffer.name)?;
        if let Some(clock) = &buffer.clock {
            check_name("trace clock", clock)?;
        }
        if !names.insert(buffer.name.as_str()) {
            return refuse(format!("two buffers named {:?}", buffer.name));
        }
        if !page_size_ok(buffer.page_size) {
            return refuse(format!(
                "buffer {:?} has a page size of {}; it is a power of two from 64 bytes to 1 MiB",
                buffer.name, buffer.page_size
            ));
        }
        if options.version == 6 && buffer.page_size != data.page_size {
            return refuse(format!(
                "buffer {:?} has {}-byte pages and the file {}-byte pages: version 6 has one page size; write version 7",
                buffer.name, buffer.page_size, data.page_size
            ));
        }
        let mut cpus = HashSet::new();
        for cpu in &buffer.cpus {
            if !cpus.insert(cpu.cpu) {
                return refuse(format!(
                    "buffer {:?} has CPU {} twice",
                    buffer.name, cpu.cpu
                ));
            }
            if cpu.cpu >= MAX_CPUS {
                return refuse(format!(
                    "buffer {:?} has CPU {}; the limit is {MAX_CPUS}",
                    buffer.name, cpu.cpu
                ));
            }
            if options.version == 6 && cpu.cpu >= table_len && !cpu.data.is_empty() {
                return refuse(format!(
                    "buffer {:?} has data for CPU {} but the file counts {table_len} CPUs (version 6 keeps CPUs below its count)",
                    buffer.name, cpu.cpu
                ));
            }
            if !cpu.data.len().is_multiple_of(buffer.page_size as usize) {
                return refuse(format!(
                    "CPU {} of buffer {:?} holds {} bytes, not a multiple of its {}-byte pages",
                    cpu.cpu,
                    buffer.name,
                    cpu.data.len(),
                    buffer.page_size
                ));
            }
        }
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.len() > MAX_NAME || name.contains('\0') {
        return Err(Error::unrepresentable(format!(
            "the {what} name {:?}: names have no NUL and at most {MAX_NAME} bytes",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_of_a_file() {
        let mut bytes = b"\x17\x08\x44tracing6\0\x01\x04".to_vec();
        bytes.extend_from_slice(&8192u32.to_be_bytes());
        let (head, r) = read(&bytes).unwrap();
        assert_eq!(
            (
                head.version,
                head.big_endian,
                head.long_size,
                head.page_size
            ),
            (6, true, 4, 8192)
        );
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn other_versions_are_unsupported_not_malformed() {
        let err = read(b"\x17\x08\x44tracing5\0\0\x08\0\x10\0\0").unwrap_err();
        assert!(
            matches!(err, Error::Unsupported { offset: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_fields_are_errors_at_their_offset() {
        let cases: [(&[u8], u64); 5] = [
            (b"\x17\x08\x45tracing", 0),
            (b"\x17\x08\x44tracinG", 3),
            (b"\x17\x08\x44tracing7\0\x02", 12),
            (b"\x17\x08\x44tracing7\0\0\x02", 13),
            (b"\x17\x08\x44tracing7\0\0\x08\x00\x30\0\0", 14),
        ];
        for (bytes, offset) in cases {
            let err = read(bytes).unwrap_err();
            assert_eq!(err.offset(), Some(offset), "{err}");
        }
    }
}
