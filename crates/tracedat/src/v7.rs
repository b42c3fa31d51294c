//! Version 7, made of sections: after the start, the compression's name
//! and version and the offset of the first options section; each section a
//! 16-byte header (id, flags, description, size) and its contents, which
//! may be compressed. Options sections chain to each other through their
//! DONE option and point at the other sections: the six metadata parts,
//! and through BUFFER options the flyrecord section of each buffer.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{Seek, Write};

use crate::compress::{self, Budget, Compressor, Decompressor, MAX_BLOCK, PAGES_PER_CHUNK};
use crate::content::{self, Borrow, Keep, Metadata, Owned};
use crate::header::{self, Head, MAX_CPUS, MAX_NAME};
use crate::reader::{Ranges, Reader};
use crate::writer::{Out, Part, Put};
use crate::{
    Buffer, Compression, CpuData, Error, RawOption, TraceData, is_layout_option, option_id,
};

/// The section flag of compressed contents.
const COMPRESSED: u16 = 1;

/// A section's contents: the file's own bytes, or the decompressed bytes
/// of the block at a file offset.
enum Contents<'f> {
    File(Reader<'f>),
    Block(Vec<u8>, u64),
}

/// A BUFFER option, before its data is read.
struct BufferOption {
    section: u64,
    name: String,
    clock: String,
    page_size: u32,
    /// (cpu, offset, size) of each CPU.
    cpus: Vec<(u32, u64, u64)>,
}

/// One compressed chunk of CPU data: its bytes, its uncompressed size and
/// its offset in the file.
struct Chunk<'f> {
    input: &'f [u8],
    size: usize,
    offset: u64,
}

/// The CPU data of one CPU still to decompress, and where it goes.
struct Job<'f> {
    buffer: usize,
    cpu: usize,
    total: usize,
    chunks: Vec<Chunk<'f>>,
}

/// What the options sections hold.
#[derive(Default)]
struct Found<'f> {
    options: Vec<RawOption<'f>>,
    pointers: [Option<u64>; 6],
    cpucount: Option<u32>,
    buffers: Vec<BufferOption>,
}

/// The state of one parse.
struct Parse<'f> {
    file: Reader<'f>,
    compression: Compression,
    budget: Budget,
    /// The decompressor of the metadata sections, made at the first one.
    decompressor: Option<Decompressor>,
}

/// Parses the rest of a version 7 file; `r` is just after the page size.
pub(crate) fn parse<'f>(mut r: Reader<'f>, head: Head) -> Result<TraceData<'f>, Error> {
    let at = r.position() as usize;
    let compression = match r.text("the compression name", 64)? {
        "none" => Compression::None,
        "zlib" => Compression::Zlib,
        "zstd" => Compression::Zstd,
        other => {
            return Err(r.unsupported(
                at,
                format!("compression {other:?}: kscope reads none, zlib and zstd (trace-cmd convert --compression changes it)"),
            ));
        }
    };
    r.text("the compression version", 64)?;
    let first = r.u64("the offset of the first options section")?;
    if first == 0 {
        return Err(r.error_at(
            r.position() as usize - 8,
            "the offset of the first options section, which every version 7 file has",
        ));
    }
    check_tiling(r.clone())?;
    let budget = Budget::for_file(r.seek(0, "the start")?.remaining() as usize);
    let mut p = Parse {
        file: r,
        compression,
        budget,
        decompressor: None,
    };

    let mut found = Found::default();
    let mut visited = Ranges::default();
    let mut next = first;
    while next != 0 {
        let (flags, contents, end) = p.section(next, option_id::DONE, "an options section")?;
        if !visited.claim(next, end) {
            return Err(p.file.error_at(
                next as usize,
                "an options section apart from the others (the chain of options sections loops or overlaps)",
            ));
        }
        let contents = p.contents(contents, flags)?;
        next = with_contents(contents, head.big_endian, |r, keep| {
            read_options(r, keep, head.big_endian, &mut found)
        })?;
    }

    let mut metadata = Metadata::default();
    for (index, pointer) in found.pointers.iter().enumerate() {
        let Some(offset) = *pointer else { continue };
        let (flags, contents, _) = p.section(
            offset,
            option_id::HEADER_INFO + index as u16,
            content::PARTS[index],
        )?;
        let contents = p.contents(contents, flags)?;
        with_contents(contents, head.big_endian, |r, keep| {
            content::read_part(index, r, keep, &mut metadata)
        })?;
    }

    let mut buffers = p.buffers(found.buffers)?;
    let cpus = found.cpucount.unwrap_or_else(|| {
        buffers
            .iter()
            .flat_map(|b| b.cpus.iter().map(|c| c.cpu + 1))
            .max()
            .unwrap_or(0)
    });
    if let Some(top) = buffers.iter().position(|b| b.name.is_empty()) {
        let top = buffers.remove(top);
        if !top.cpus.is_empty() {
            buffers.insert(0, top);
        }
    }
    Ok(TraceData {
        version: 7,
        big_endian: head.big_endian,
        long_size: head.long_size,
        page_size: head.page_size,
        compression,
        header_page: metadata.header_page,
        header_event: metadata.header_event,
        ftrace_formats: metadata.ftrace_formats,
        event_formats: metadata.event_formats,
        kallsyms: metadata.kallsyms,
        printk_formats: metadata.printk_formats,
        cmdlines: metadata.cmdlines,
        cpus,
        options: found.options,
        buffers,
    })
}

/// Checks that the sections, walked one after another from `r` (just after
/// the file's start), end exactly at the end of the file, and that one of
/// them holds strings: trace-cmd walks them so to find the strings
/// sections, and writes one last, so a file cut short fails here.
fn check_tiling(mut r: Reader<'_>) -> Result<(), Error> {
    let mut strings = false;
    while r.remaining() > 0 {
        strings |= r.u16("a section id")? == option_id::STRINGS;
        r.bytes(6, "a section header")?;
        let size = r.u64("the section size")?;
        r.bytes(
            size,
            "a section's contents (sections follow each other to the end of the file)",
        )?;
    }
    if !strings {
        return Err(r.format_error(
            "a strings section (id 15), which trace-cmd writes last: the file is cut short",
        ));
    }
    Ok(())
}

/// Reads `contents` borrowed from the file or copied from a block.
fn with_contents<'f, T>(
    contents: Contents<'f>,
    big_endian: bool,
    f: impl for<'r> FnOnce(&mut Reader<'r>, &dyn Keep<'r, 'f>) -> Result<T, Error>,
) -> Result<T, Error> {
    match contents {
        Contents::File(mut r) => f(&mut r, &Borrow),
        Contents::Block(bytes, offset) => {
            let mut r = Reader::block(&bytes, big_endian, offset);
            f(&mut r, &Owned)
        }
    }
}

/// Reads the options of one options section, up to its DONE; returns the
/// offset of the next options section (0 for none).
fn read_options<'r, 'f>(
    r: &mut Reader<'r>,
    keep: &dyn Keep<'r, 'f>,
    big_endian: bool,
    found: &mut Found<'f>,
) -> Result<u64, Error> {
    loop {
        if r.remaining() == 0 {
            return Err(r.format_error("a DONE option (id 0) to end the options section"));
        }
        let id = r.u16("an option id")?;
        let size = r.u32("the size of an option")?;
        let at = r.position() as usize;
        let mut o = r.split(size.into(), "an option's data")?;
        match id {
            option_id::DONE => return o.u64("the offset of the next options section"),
            option_id::BUFFER => found.buffers.push(read_buffer_option(&mut o)?),
            option_id::BUFFER_TEXT => {
                return Err(r.unsupported(
                    at,
                    "a latency tracer's text output (BUFFER_TEXT): kscope reads flyrecord data only; trace-cmd report shows it",
                ));
            }
            option_id::HEADER_INFO..=option_id::CMDLINES => {
                let offset = o.u64("the offset of a section")?;
                found.pointers[usize::from(id - option_id::HEADER_INFO)] = Some(offset);
            }
            id if is_layout_option(id) => {}
            id => {
                let data = o.bytes(size.into(), "an option's data")?;
                if id == option_id::CPUCOUNT {
                    let count = header::cpucount(data, big_endian, |n| {
                        o.too_large(
                            size as usize,
                            "the CPUCOUNT option",
                            n.into(),
                            MAX_CPUS.into(),
                        )
                    })?;
                    found.cpucount = count.or(found.cpucount);
                }
                found.options.push(RawOption {
                    id,
                    data: keep.keep(data),
                });
            }
        }
    }
}

fn read_buffer_option(o: &mut Reader<'_>) -> Result<BufferOption, Error> {
    let section = o.u64("the offset of a flyrecord section")?;
    let name = o.text("an instance name", MAX_NAME)?.to_string();
    let clock = o.text("a trace clock", MAX_NAME)?.to_string();
    let page_size = o.u32("a buffer's page size")?;
    header::check_page_size(o, page_size)?;
    let count = o.u32("the number of CPUs of a buffer")?;
    if count >= MAX_CPUS {
        return Err(o.too_large(
            4,
            "the number of CPUs of a buffer",
            count.into(),
            MAX_CPUS.into(),
        ));
    }
    let mut cpus = Vec::new();
    for _ in 0..count {
        let cpu = o.u32("a CPU number")?;
        if cpu >= MAX_CPUS {
            return Err(o.too_large(4, "a CPU number", cpu.into(), MAX_CPUS.into()));
        }
        let offset = o.u64("the offset of a CPU's data")?;
        let size = o.u64("the size of a CPU's data")?;
        cpus.push((cpu, offset, size));
    }
    Ok(BufferOption {
        section,
        name,
        clock,
        page_size,
        cpus,
    })
}

impl<'f> Parse<'f> {
    /// Reads the header of the section at `offset`, which must have id `id`;
    /// returns its flags, a reader over its contents and its end.
    fn section(
        &self,
        offset: u64,
        id: u16,
        what: &'static str,
    ) -> Result<(u16, Reader<'f>, u64), Error> {
        let mut s = self.file.seek(offset, what)?;
        let found = s.u16("a section id")?;
        if found != id {
            return Err(s.error_at(
                offset as usize,
                format!("{what} (section id {id}), not a section of id {found}"),
            ));
        }
        let flags = s.u16("the section flags")?;
        s.u32("the section's description")?;
        let size = s.u64("the section size")?;
        let contents = s.split(size, "the section's contents")?;
        Ok((flags, contents, s.position()))
    }

    /// The contents of a section, decompressed when its flags say so.
    fn contents(&mut self, mut r: Reader<'f>, flags: u16) -> Result<Contents<'f>, Error> {
        if flags & COMPRESSED == 0 {
            return Ok(Contents::File(r));
        }
        self.check_compressed(&r)?;
        let at = r.position();
        let compressed = r.u32("the compressed size of a section")?;
        let size = r.u32("the uncompressed size of a section")?;
        self.check_block(&r, "a section's uncompressed size", size)?;
        let input = r.bytes(compressed.into(), "a compressed section")?;
        let mut bytes = vec![0; size as usize];
        let decompressor = match &mut self.decompressor {
            Some(d) => d,
            None => self
                .decompressor
                .insert(Decompressor::new(self.compression, at + 8)?),
        };
        decompressor.decompress_into(input, &mut bytes, at + 8)?;
        Ok(Contents::Block(bytes, at + 8))
    }

    /// An error unless the file is compressed (`r` is at the compressed
    /// data).
    fn check_compressed(&self, r: &Reader<'_>) -> Result<(), Error> {
        if self.compression == Compression::None {
            return Err(r.format_error(
                "uncompressed data: the section is flagged compressed in a file whose compression is none",
            ));
        }
        Ok(())
    }

    /// Takes `size` uncompressed bytes (declared just before `r`) from the
    /// budget, after checking the limit of one block.
    fn check_block(&mut self, r: &Reader<'_>, what: &'static str, size: u32) -> Result<(), Error> {
        if u64::from(size) > MAX_BLOCK {
            return Err(r.too_large(4, what, size.into(), MAX_BLOCK));
        }
        self.budget.take(size.into(), |total, limit| {
            r.too_large(4, "the uncompressed data of the file", total, limit)
        })
    }

    /// The buffers of the BUFFER options, their CPU data borrowed, or
    /// decompressed in parallel.
    fn buffers(&mut self, options: Vec<BufferOption>) -> Result<Vec<Buffer<'f>>, Error> {
        let file = self.file.clone();
        let mut buffers: Vec<Buffer<'f>> = Vec::new();
        let mut jobs = Vec::new();
        let mut compressed_data = Ranges::default();
        for option in options {
            let (flags, _, _) =
                self.section(option.section, option_id::BUFFER, "a flyrecord section")?;
            let here = file.seek(option.section, "a flyrecord section")?;
            if buffers.iter().any(|b| b.name == option.name) {
                return Err(
                    here.format_error(format!("one BUFFER option for instance {:?}", option.name))
                );
            }
            let page = u64::from(option.page_size);
            let mut cpus = Vec::new();
            let mut seen = HashSet::new();
            for (cpu, offset, size) in option.cpus {
                if size == 0 {
                    continue;
                }
                if !seen.insert(cpu) {
                    return Err(here.format_error(format!(
                        "CPU {cpu} once in the BUFFER option of this section"
                    )));
                }
                let mut data = file.seek(offset, "a CPU's data")?;
                let not_pages = |total: u64| {
                    file.error_at(
                        offset as usize,
                        format!("CPU data whose size is a multiple of the {page}-byte page, not {total} bytes"),
                    )
                };
                if flags & COMPRESSED == 0 {
                    if !size.is_multiple_of(page) {
                        return Err(not_pages(size));
                    }
                    cpus.push(CpuData {
                        cpu,
                        data: Cow::Borrowed(data.bytes(size, "a CPU's data")?),
                    });
                    continue;
                }
                self.check_compressed(&data)?;
                // The size counts the chunks but not their 4-byte count.
                let len = size.saturating_add(4).min(data.remaining());
                let end = offset + len;
                if !compressed_data.claim(offset, end) {
                    return Err(data
                        .format_error("compressed CPU data apart from other compressed CPU data"));
                }
                let mut data = data.split(len, "a CPU's compressed data")?;
                let count = data.u32("the number of compressed chunks")?;
                let mut chunks = Vec::new();
                let mut total = 0u64;
                for _ in 0..count {
                    let compressed = data.u32("the compressed size of a chunk")?;
                    let size = data.u32("the uncompressed size of a chunk")?;
                    self.check_block(&data, "a chunk's uncompressed size", size)?;
                    let offset = data.position();
                    chunks.push(Chunk {
                        input: data.bytes(compressed.into(), "a compressed chunk")?,
                        size: size as usize,
                        offset,
                    });
                    total += u64::from(size);
                }
                if !total.is_multiple_of(page) {
                    return Err(not_pages(total));
                }
                if total == 0 {
                    continue;
                }
                jobs.push(Job {
                    buffer: buffers.len(),
                    cpu: cpus.len(),
                    total: total as usize,
                    chunks,
                });
                cpus.push(CpuData {
                    cpu,
                    data: Cow::Borrowed(&[]),
                });
            }
            buffers.push(Buffer {
                name: option.name,
                clock: Some(option.clock),
                page_size: option.page_size,
                cpus,
            });
        }
        let compression = self.compression;
        let places: Vec<(usize, usize)> = jobs.iter().map(|j| (j.buffer, j.cpu)).collect();
        let results = compress::parallel_map(jobs, |job| {
            let mut out = vec![0; job.total];
            let mut at = 0;
            let mut decompressor = None;
            for chunk in job.chunks {
                let d = match &mut decompressor {
                    Some(d) => d,
                    None => decompressor.insert(Decompressor::new(compression, chunk.offset)?),
                };
                d.decompress_into(chunk.input, &mut out[at..at + chunk.size], chunk.offset)?;
                at += chunk.size;
            }
            Ok::<_, Error>(out)
        });
        for ((buffer, cpu), result) in places.into_iter().zip(results) {
            buffers[buffer].cpus[cpu].data = Cow::Owned(result?);
        }
        for buffer in &mut buffers {
            buffer.cpus.sort_by_key(|c| c.cpu);
        }
        Ok(buffers)
    }
}

/// The strings section being built: descriptions, by offset.
#[derive(Default)]
struct Strings(Vec<u8>);

impl Strings {
    /// Adds `s`; returns its id (its offset).
    fn add(&mut self, s: &str) -> u32 {
        let id = self.0.len() as u32;
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        id
    }
}

/// Writes `data` as version 7 with `compression` (checked by
/// `header::check`).
pub(crate) fn write<W: Write + Seek>(
    data: &TraceData<'_>,
    compression: Compression,
    w: &mut W,
) -> Result<(), Error> {
    let be = data.big_endian;
    let mut parts = Vec::new();
    for (index, part) in content::parts(data)?.into_iter().enumerate() {
        parts.push(block(compression, be, part, content::PARTS[index])?);
    }
    let flags = if compression == Compression::None {
        0
    } else {
        COMPRESSED
    };

    let mut out = Out::new(w, be)?;
    let mut strings = Strings::default();
    header::write(&mut out, data, 7)?;
    let name = match compression {
        Compression::None => "none",
        Compression::Zlib => "zlib",
        Compression::Zstd => "zstd",
    };
    out.cstr(name.as_bytes())?;
    out.cstr(compress::library_version(compression).as_bytes())?;
    let first_options_at = out.pos();
    out.u64(0)?;

    let mut pointers = [0u64; 6];
    for (index, part) in parts.iter().enumerate() {
        pointers[index] = out.pos();
        let description = strings.add(content::PARTS[index]);
        section_header(
            &mut out,
            option_id::HEADER_INFO + index as u16,
            flags,
            description,
            part.len() as u64,
        )?;
        out.put(part)?;
    }

    let here = out.pos();
    out.patch_u64(first_options_at, here)?;
    let mut options = Part::new(be);
    for option in data.options.iter().filter(|o| !is_layout_option(o.id)) {
        options.u16(option.id)?;
        options.u32(option.data.len() as u32)?;
        options.put(&option.data)?;
    }
    for (index, offset) in pointers.into_iter().enumerate() {
        options.u16(option_id::HEADER_INFO + index as u16)?;
        options.u32(8)?;
        options.u64(offset)?;
    }
    if !data.options.iter().any(|o| o.id == option_id::CPUCOUNT) {
        options.u16(option_id::CPUCOUNT)?;
        options.u32(4)?;
        options.u32(data.cpus)?;
    }
    let mut next_at = options_section(&mut out, &mut strings, options)?;

    for buffer in &data.buffers {
        let mut cpus: Vec<&CpuData<'_>> =
            buffer.cpus.iter().filter(|c| !c.data.is_empty()).collect();
        if buffer.name.is_empty() && cpus.is_empty() {
            continue;
        }
        cpus.sort_by_key(|c| c.cpu);
        let section_at = out.pos();
        let description = strings.add(&format!("buffer flyrecord {}", buffer.name));
        section_header(&mut out, option_id::BUFFER, flags, description, 0)?;
        let page = u64::from(buffer.page_size);
        let mut entries = Vec::new();
        if compression == Compression::None {
            for cpu in cpus {
                out.pad_to(page)?;
                entries.push((cpu.cpu, out.pos(), cpu.data.len() as u64));
                out.put(&cpu.data)?;
            }
        } else {
            let chunk = PAGES_PER_CHUNK * buffer.page_size as usize;
            let blobs = compress::parallel_map(cpus.clone(), |cpu| {
                chunks(compression, be, &cpu.data, chunk)
            });
            for (cpu, blob) in cpus.into_iter().zip(blobs) {
                let blob = blob?;
                out.pad_to(page)?;
                // Like trace-cmd, the size leaves out the 4-byte chunk count.
                entries.push((cpu.cpu, out.pos(), blob.len() as u64 - 4));
                out.put(&blob)?;
            }
        }
        let end = out.pos();
        out.patch_u64(section_at + 8, end - (section_at + 16))?;

        let mut option = Part::new(be);
        option.u64(section_at)?;
        option.cstr(buffer.name.as_bytes())?;
        option.cstr(buffer.clock.as_deref().unwrap_or("local").as_bytes())?;
        option.u32(buffer.page_size)?;
        option.u32(entries.len() as u32)?;
        for (cpu, offset, size) in entries {
            option.u32(cpu)?;
            option.u64(offset)?;
            option.u64(size)?;
        }
        let mut options = Part::new(be);
        options.u16(option_id::BUFFER)?;
        options.u32(option.bytes.len() as u32)?;
        options.put(&option.bytes)?;
        let here = out.pos();
        out.patch_u64(next_at, here)?;
        next_at = options_section(&mut out, &mut strings, options)?;
    }

    let description = strings.add("strings");
    let contents = block(compression, be, std::mem::take(&mut strings.0), "strings")?;
    section_header(
        &mut out,
        option_id::STRINGS,
        flags,
        description,
        contents.len() as u64,
    )?;
    out.put(&contents)
}

/// Writes a section header.
fn section_header(
    out: &mut impl Put,
    id: u16,
    flags: u16,
    description: u32,
    size: u64,
) -> Result<(), Error> {
    out.u16(id)?;
    out.u16(flags)?;
    out.u32(description)?;
    out.u64(size)
}

/// Writes an options section holding `options` and a DONE option whose
/// next-section offset is 0; returns where that offset is, to be patched
/// when another options section follows.
fn options_section<W: Write + Seek>(
    out: &mut Out<'_, W>,
    strings: &mut Strings,
    mut options: Part,
) -> Result<u64, Error> {
    options.u16(option_id::DONE)?;
    options.u32(8)?;
    let done_at = options.bytes.len() as u64;
    options.u64(0)?;
    let start = out.pos();
    let description = strings.add("options");
    section_header(
        out,
        option_id::DONE,
        0,
        description,
        options.bytes.len() as u64,
    )?;
    out.put(&options.bytes)?;
    Ok(start + 16 + done_at)
}

/// A section's contents as written: as they are, or as one compressed
/// block (compressed size, uncompressed size, data).
fn block(
    compression: Compression,
    big_endian: bool,
    contents: Vec<u8>,
    what: &str,
) -> Result<Vec<u8>, Error> {
    if compression == Compression::None {
        return Ok(contents);
    }
    if contents.len() as u64 > MAX_BLOCK {
        return Err(Error::unrepresentable(format!(
            "{} bytes of {what}: a compressed section holds at most {MAX_BLOCK}",
            contents.len()
        )));
    }
    let compressed = Compressor::new(compression)?.compress(&contents)?;
    let mut out = Part::new(big_endian);
    out.u32(compressed.len() as u32)?;
    out.u32(contents.len() as u32)?;
    out.put(&compressed)?;
    Ok(out.bytes)
}

/// CPU data compressed in chunks of `chunk` bytes: the chunk count, then
/// each chunk's compressed size, uncompressed size and data.
fn chunks(
    compression: Compression,
    big_endian: bool,
    data: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = Part::new(big_endian);
    out.u32(data.len().div_ceil(chunk) as u32)?;
    let mut compressor = Compressor::new(compression)?;
    for piece in data.chunks(chunk) {
        let compressed = compressor.compress(piece)?;
        out.u32(compressed.len() as u32)?;
        out.u32(piece.len() as u32)?;
        out.put(&compressed)?;
    }
    Ok(out.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_ten_pages() {
        let data = vec![5u8; 25 * 4096];
        let blob = chunks(Compression::Zstd, false, &data, PAGES_PER_CHUNK * 4096).unwrap();
        let mut r = Reader::file(&blob, false);
        assert_eq!(r.u32("count").unwrap(), 3);
        let mut sizes = Vec::new();
        for _ in 0..3 {
            let compressed = r.u32("c").unwrap();
            sizes.push(r.u32("u").unwrap());
            r.bytes(compressed.into(), "data").unwrap();
        }
        assert_eq!(sizes, [40960, 40960, 20480]);
        assert_eq!(r.remaining(), 0);
    }
}
