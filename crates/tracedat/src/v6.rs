//! Version 6, the classic layout: the metadata parts one after another, the
//! CPU count, `"options  \0"` and a list of options ended by a bare 0, then
//! `"flyrecord\0"` and the top instance's table of (offset, size) per CPU
//! and its trace clock; each named instance has a block of its own, found
//! through a BUFFER option. CPU data is page-aligned and never compressed.

use std::borrow::Cow;
use std::io::{Seek, Write};

use crate::content::{self, Borrow, Metadata};
use crate::header::{self, Head, MAX_CPUS, MAX_NAME};
use crate::reader::{Ranges, Reader};
use crate::writer::{Out, Put};
use crate::{
    Buffer, Compression, CpuData, Error, RawOption, TraceData, is_layout_option, option_id,
};

const OPTIONS: &[u8] = b"options  \0";
const FLYRECORD: &[u8] = b"flyrecord\0";
const LATENCY: &[u8] = b"latency  \0";

/// Parses the rest of a version 6 file; `r` is just after the page size.
pub(crate) fn parse<'f>(mut r: Reader<'f>, head: Head) -> Result<TraceData<'f>, Error> {
    let mut metadata = Metadata::default();
    for index in 0..content::PARTS.len() {
        content::read_part(index, &mut r, &Borrow, &mut metadata)?;
    }
    let cpus = r.u32("the CPU count")?;
    if cpus >= MAX_CPUS {
        return Err(r.too_large(4, "the CPU count", cpus.into(), MAX_CPUS.into()));
    }

    let mut options = Vec::new();
    let mut instances: Vec<(u64, &str, usize)> = Vec::new();
    let mut has_clock = false;
    let mut table_len = cpus;
    let mut tag_at = r.position() as usize;
    let mut tag = r.bytes(10, "the word after the CPU count")?;
    if tag == OPTIONS {
        loop {
            let id = r.u16("an option id, or 0 to end the options")?;
            if id == option_id::DONE {
                break;
            }
            let size = r.u32("the size of an option")?;
            let at = r.position() as usize;
            let mut o = r.split(size.into(), "an option's data")?;
            match id {
                option_id::BUFFER => {
                    let offset = o.u64("the offset of an instance's flyrecord block")?;
                    let name = o.text("an instance name", MAX_NAME)?;
                    if name.is_empty() {
                        return Err(r.error_at(
                            at,
                            "a BUFFER option that names an instance (the top instance's data follows the options)",
                        ));
                    }
                    instances.push((offset, name, at));
                    continue;
                }
                option_id::BUFFER_TEXT => return Err(latency(&r, at)),
                option_id::TRACECLOCK => has_clock = true,
                option_id::CPUCOUNT => {
                    let data = o.clone().bytes(size.into(), "the CPU count")?;
                    if let Some(n) = header::cpucount(data, head.big_endian, |n| {
                        o.too_large(0, "the CPUCOUNT option", n.into(), MAX_CPUS.into())
                    })? {
                        table_len = n;
                    }
                }
                id if is_layout_option(id) => continue,
                _ => {}
            }
            options.push(RawOption {
                id,
                data: Cow::Borrowed(o.bytes(size.into(), "an option's data")?),
            });
        }
        tag_at = r.position() as usize;
        tag = r.bytes(10, "the word after the options")?;
    }
    if tag == LATENCY {
        return Err(latency(&r, tag_at));
    }
    if tag != FLYRECORD {
        return Err(r.error_at(
            tag_at,
            "\"flyrecord\\0\" (or \"options  \\0\") after the CPU count",
        ));
    }

    let mut buffers = Vec::new();
    // The blocks may not overlap: many instances reading one long table
    // would take time quadratic in the file's size.
    let mut blocks = Ranges::default();
    let top_at = r.position();
    let (top, clock) = read_flyrecord(&mut r, table_len, has_clock, head.page_size)?;
    blocks.claim(top_at - 10, r.position());
    if !top.is_empty() {
        buffers.push(Buffer {
            name: String::new(),
            clock,
            page_size: head.page_size,
            cpus: top,
        });
    }
    for (offset, name, at) in instances {
        if buffers.iter().any(|b: &Buffer<'_>| b.name == name) {
            return Err(r.error_at(at, format!("one BUFFER option for instance {name:?}")));
        }
        let mut block = r.seek(offset, "an instance's flyrecord block")?;
        block.expect(FLYRECORD, "an instance's \"flyrecord\\0\" block")?;
        let (cpus, clock) = read_flyrecord(&mut block, table_len, has_clock, head.page_size)?;
        if !blocks.claim(offset, block.position()) {
            return Err(r.error_at(at, "an instance's flyrecord block apart from the others"));
        }
        buffers.push(Buffer {
            name: name.to_string(),
            clock,
            page_size: head.page_size,
            cpus,
        });
    }

    Ok(TraceData {
        version: 6,
        big_endian: head.big_endian,
        long_size: head.long_size,
        page_size: head.page_size,
        compression: Compression::None,
        header_page: metadata.header_page,
        header_event: metadata.header_event,
        ftrace_formats: metadata.ftrace_formats,
        event_formats: metadata.event_formats,
        kallsyms: metadata.kallsyms,
        printk_formats: metadata.printk_formats,
        cmdlines: metadata.cmdlines,
        cpus,
        options,
        buffers,
    })
}

fn latency(r: &Reader<'_>, at: usize) -> Error {
    r.unsupported(
        at,
        "the text output of a latency tracer (trace-cmd extract -p): kscope reads flyrecord data only; trace-cmd report shows it",
    )
}

/// Reads a table of `table_len` (offset, size) entries after
/// `"flyrecord\0"`, and the trace clock after it when the file has a
/// TRACECLOCK option; returns the CPUs with data, borrowed from the file.
fn read_flyrecord<'f>(
    r: &mut Reader<'f>,
    table_len: u32,
    has_clock: bool,
    page_size: u32,
) -> Result<(Vec<CpuData<'f>>, Option<String>), Error> {
    let mut entries = Vec::new();
    for cpu in 0..table_len {
        let at = r.position() as usize;
        let offset = r.u64("the offset of a CPU's data")?;
        let size = r.u64("the size of a CPU's data")?;
        if size > 0 {
            entries.push((cpu, offset, size, at));
        }
    }
    let clock = if has_clock {
        let size = r.u64("the size of the trace clock")?;
        if size > MAX_NAME as u64 {
            return Err(r.too_large(8, "the trace clock", size, MAX_NAME as u64));
        }
        clock_name(r.bytes(size, "the trace clock")?)
    } else {
        None
    };
    let mut cpus = Vec::new();
    for (cpu, offset, size, at) in entries {
        if !size.is_multiple_of(u64::from(page_size)) {
            return Err(r.error_at(
                at,
                format!("CPU data whose size is a multiple of the {page_size}-byte page, not {size} bytes"),
            ));
        }
        let data = r
            .seek(offset, "a CPU's data")?
            .bytes(size, "a CPU's data")?;
        cpus.push(CpuData {
            cpu,
            data: Cow::Borrowed(data),
        });
    }
    Ok((cpus, clock))
}

/// The clock of a `[local]` text, as trace-cmd finds it: the first word in
/// brackets.
fn clock_name(text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let start = text.find('[')? + 1;
    let len = text[start..].find(']')?;
    Some(text[start..start + len].to_string())
}

/// Writes `data` as version 6 (checked by `header::check`).
pub(crate) fn write<W: Write + Seek>(data: &TraceData<'_>, w: &mut W) -> Result<(), Error> {
    let table_len = header::v6_table_len(data)?;
    let parts = content::parts(data)?;
    let mut out = Out::new(w, data.big_endian)?;
    header::write(&mut out, data, 6)?;
    for part in &parts {
        out.put(part)?;
    }
    out.u32(data.cpus)?;

    out.put(OPTIONS)?;
    for option in data.options.iter().filter(|o| !is_layout_option(o.id)) {
        out.u16(option.id)?;
        out.u32(option.data.len() as u32)?;
        out.put(&option.data)?;
    }
    let instances: Vec<&Buffer<'_>> = data.buffers.iter().filter(|b| !b.name.is_empty()).collect();
    let mut offsets_at = Vec::new();
    for buffer in &instances {
        out.u16(option_id::BUFFER)?;
        out.u32((8 + buffer.name.len() + 1) as u32)?;
        offsets_at.push(out.pos());
        out.u64(0)?;
        out.cstr(buffer.name.as_bytes())?;
    }
    out.u16(option_id::DONE)?;

    // trace-cmd takes the file's clock from the top block even when the
    // top instance has no data: give it the clock of the first buffer.
    let top = data.buffers.iter().find(|b| b.name.is_empty());
    let clock = top
        .or(data.buffers.first())
        .and_then(|b| b.clock.as_deref());
    out.put(FLYRECORD)?;
    write_flyrecord(
        &mut out,
        top.map_or(&[], |b| &b.cpus),
        table_len,
        clock,
        data.page_size,
    )?;
    for (buffer, at) in instances.into_iter().zip(offsets_at) {
        let here = out.pos();
        out.patch_u64(at, here)?;
        out.put(FLYRECORD)?;
        write_flyrecord(
            &mut out,
            &buffer.cpus,
            table_len,
            buffer.clock.as_deref(),
            data.page_size,
        )?;
    }
    Ok(())
}

/// Writes a flyrecord table, the clock and the page-aligned data of the
/// CPUs that have data, in CPU order.
fn write_flyrecord<W: Write + Seek>(
    out: &mut Out<'_, W>,
    cpus: &[CpuData<'_>],
    table_len: u32,
    clock: Option<&str>,
    page_size: u32,
) -> Result<(), Error> {
    let clock = clock.map(|c| format!("[{c}]")).unwrap_or_default();
    let mut with_data: Vec<&CpuData<'_>> = cpus.iter().filter(|c| !c.data.is_empty()).collect();
    with_data.sort_by_key(|c| c.cpu);
    let page = u64::from(page_size);
    let mut table = vec![(0u64, 0u64); table_len as usize];
    let mut pos = out.pos() + 16 * u64::from(table_len) + 8 + clock.len() as u64;
    for cpu in &with_data {
        pos = pos.next_multiple_of(page);
        table[cpu.cpu as usize] = (pos, cpu.data.len() as u64);
        pos += cpu.data.len() as u64;
    }
    for (offset, size) in table {
        out.u64(offset)?;
        out.u64(size)?;
    }
    out.u64(clock.len() as u64)?;
    out.put(clock.as_bytes())?;
    for cpu in with_data {
        out.pad_to(page)?;
        out.put(&cpu.data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_the_word_in_brackets() {
        assert_eq!(clock_name(b"[local]").as_deref(), Some("local"));
        assert_eq!(
            clock_name(b"global [x86-tsc] boot").as_deref(),
            Some("x86-tsc")
        );
        assert_eq!(clock_name(b"local"), None);
        assert_eq!(clock_name(b"[local"), None);
        assert_eq!(clock_name(b"\xff[a]"), None);
    }
}
