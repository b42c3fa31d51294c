//! The six metadata parts, read and written: header info, ftrace formats,
//! event formats, kallsyms, printk formats and saved command lines. Version
//! 6 stores them one after another after the file's start; version 7 stores
//! each in its own section (ids 16 to 21), with the same bytes.

use std::borrow::Cow;

use crate::reader::Reader;
use crate::writer::{Part, Put};
use crate::{Error, EventSystem, TraceData};

/// How a slice read from a reader becomes part of the [`TraceData`]:
/// borrowed when the reader reads the file itself, copied when it reads a
/// decompressed block that the parse does not keep.
pub(crate) trait Keep<'r, 'f> {
    /// The slice, as the `TraceData` holds it.
    fn keep(&self, bytes: &'r [u8]) -> Cow<'f, [u8]>;
}

/// Keeps slices of the file as they are.
pub(crate) struct Borrow;

impl<'a> Keep<'a, 'a> for Borrow {
    fn keep(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        Cow::Borrowed(bytes)
    }
}

/// Keeps copies of slices of a decompressed block.
pub(crate) struct Owned;

impl<'r, 'f> Keep<'r, 'f> for Owned {
    fn keep(&self, bytes: &'r [u8]) -> Cow<'f, [u8]> {
        Cow::Owned(bytes.to_vec())
    }
}

/// The metadata of a file, as read.
pub(crate) struct Metadata<'f> {
    pub(crate) header_page: Cow<'f, [u8]>,
    pub(crate) header_event: Cow<'f, [u8]>,
    pub(crate) ftrace_formats: Vec<Cow<'f, [u8]>>,
    pub(crate) event_formats: Vec<EventSystem<'f>>,
    pub(crate) kallsyms: Cow<'f, [u8]>,
    pub(crate) printk_formats: Cow<'f, [u8]>,
    pub(crate) cmdlines: Cow<'f, [u8]>,
}

impl Default for Metadata<'_> {
    fn default() -> Self {
        Metadata {
            header_page: Cow::Borrowed(&[]),
            header_event: Cow::Borrowed(&[]),
            ftrace_formats: Vec::new(),
            event_formats: Vec::new(),
            kallsyms: Cow::Borrowed(&[]),
            printk_formats: Cow::Borrowed(&[]),
            cmdlines: Cow::Borrowed(&[]),
        }
    }
}

/// The six parts, by section id minus 16, with trace-cmd's description of
/// each (version 7 writes them in its strings section).
pub(crate) const PARTS: [&str; 6] = [
    "headers",
    "ftrace events",
    "events format",
    "kallsyms",
    "printk",
    "command lines",
];

/// Reads part `index` (0 for the header info, ..., 5 for the command
/// lines) into `metadata`.
pub(crate) fn read_part<'r, 'f>(
    index: usize,
    r: &mut Reader<'r>,
    keep: &dyn Keep<'r, 'f>,
    metadata: &mut Metadata<'f>,
) -> Result<(), Error> {
    match index {
        0 => {
            r.expect(b"header_page\0", "the header_page tag")?;
            let size = r.u64("the size of header_page")?;
            metadata.header_page = keep.keep(r.bytes(size, "the header_page text")?);
            r.expect(b"header_event\0", "the header_event tag")?;
            let size = r.u64("the size of header_event")?;
            metadata.header_event = keep.keep(r.bytes(size, "the header_event text")?);
        }
        1 => metadata.ftrace_formats = read_formats(r, keep, "the number of ftrace formats")?,
        2 => {
            let count = r.u32("the number of event systems")?;
            let mut systems = Vec::new();
            for _ in 0..count {
                let name = r.text("an event system name", crate::header::MAX_NAME)?;
                let formats = read_formats(r, keep, "the number of events of a system")?;
                systems.push(EventSystem {
                    name: name.to_string(),
                    formats,
                });
            }
            metadata.event_formats = systems;
        }
        3 => {
            let size = r.u32("the size of kallsyms")?;
            metadata.kallsyms = keep.keep(r.bytes(size.into(), "the kallsyms text")?);
        }
        4 => {
            let size = r.u32("the size of the printk formats")?;
            metadata.printk_formats = keep.keep(r.bytes(size.into(), "the printk formats")?);
        }
        _ => {
            let size = r.u64("the size of the saved command lines")?;
            metadata.cmdlines = keep.keep(r.bytes(size, "the saved command lines")?);
        }
    }
    Ok(())
}

/// A count, then that many (8-byte size, text) format files. The loop
/// ends with the data: each format takes at least 8 bytes.
fn read_formats<'r, 'f>(
    r: &mut Reader<'r>,
    keep: &dyn Keep<'r, 'f>,
    what_count: &'static str,
) -> Result<Vec<Cow<'f, [u8]>>, Error> {
    let count = r.u32(what_count)?;
    let mut formats = Vec::new();
    for _ in 0..count {
        let size = r.u64("the size of a format file")?;
        formats.push(keep.keep(r.bytes(size, "a format file")?));
    }
    Ok(formats)
}

/// The six parts of `data`, in the file's byte order, by section id minus
/// 16.
pub(crate) fn parts(data: &TraceData<'_>) -> Result<[Vec<u8>; 6], Error> {
    let new = || Part::new(data.big_endian);
    let mut header = new();
    header.put(b"header_page\0")?;
    header.u64(data.header_page.len() as u64)?;
    header.put(&data.header_page)?;
    header.put(b"header_event\0")?;
    header.u64(data.header_event.len() as u64)?;
    header.put(&data.header_event)?;

    let mut ftrace = new();
    put_formats(&mut ftrace, &data.ftrace_formats, "ftrace formats")?;

    let mut events = new();
    events.u32(count(data.event_formats.len(), "event systems")?)?;
    for system in &data.event_formats {
        events.cstr(system.name.as_bytes())?;
        put_formats(&mut events, &system.formats, "formats in one event system")?;
    }

    let mut kallsyms = new();
    kallsyms.u32(count(data.kallsyms.len(), "bytes of kallsyms")?)?;
    kallsyms.put(&data.kallsyms)?;

    let mut printk = new();
    printk.u32(count(data.printk_formats.len(), "bytes of printk formats")?)?;
    printk.put(&data.printk_formats)?;

    let mut cmdlines = new();
    cmdlines.u64(data.cmdlines.len() as u64)?;
    cmdlines.put(&data.cmdlines)?;

    Ok([header, ftrace, events, kallsyms, printk, cmdlines].map(|p| p.bytes))
}

fn put_formats(part: &mut Part, formats: &[Cow<'_, [u8]>], what: &str) -> Result<(), Error> {
    part.u32(count(formats.len(), what)?)?;
    for format in formats {
        part.u64(format.len() as u64)?;
        part.put(format)?;
    }
    Ok(())
}

/// `n` as a 32-bit count, or the error that the format has no room for it.
fn count(n: usize, what: &str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| {
        Error::unrepresentable(format!("{n} {what}: the format counts them in 32 bits"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Compression;

    fn sample() -> TraceData<'static> {
        TraceData {
            version: 6,
            big_endian: true,
            long_size: 8,
            page_size: 4096,
            compression: Compression::None,
            header_page: Cow::Borrowed(b"page"),
            header_event: Cow::Borrowed(b"event"),
            ftrace_formats: vec![Cow::Borrowed(b"f1"), Cow::Borrowed(b"")],
            event_formats: vec![
                EventSystem {
                    name: "sched".into(),
                    formats: vec![Cow::Borrowed(b"s1")],
                },
                EventSystem {
                    name: "empty".into(),
                    formats: vec![],
                },
            ],
            kallsyms: Cow::Borrowed(b"ffff t f\n"),
            printk_formats: Cow::Borrowed(b""),
            cmdlines: Cow::Borrowed(b"1 init\n"),
            cpus: 1,
            options: vec![],
            buffers: vec![],
        }
    }

    #[test]
    fn parts_read_back_as_written_borrowed_or_copied() {
        let data = sample();
        let parts = parts(&data).unwrap();
        assert_eq!(&parts[0][..12], b"header_page\0");
        assert_eq!(&parts[0][12..20], &4u64.to_be_bytes());
        let mut from_file = Metadata::default();
        let mut copied = Metadata::default();
        for (index, part) in parts.iter().enumerate() {
            let mut r = Reader::file(part, true);
            read_part(index, &mut r, &Borrow, &mut from_file).unwrap();
            assert_eq!(r.remaining(), 0, "part {index}");
            let mut r = Reader::block(part, true, 0);
            read_part(index, &mut r, &Owned, &mut copied).unwrap();
        }
        for m in [&from_file, &copied] {
            assert_eq!(m.header_page, data.header_page);
            assert_eq!(m.header_event, data.header_event);
            assert_eq!(m.ftrace_formats, data.ftrace_formats);
            assert_eq!(m.event_formats, data.event_formats);
            assert_eq!(m.kallsyms, data.kallsyms);
            assert_eq!(m.printk_formats, data.printk_formats);
            assert_eq!(m.cmdlines, data.cmdlines);
        }
        assert!(matches!(from_file.kallsyms, Cow::Borrowed(_)));
        assert!(matches!(copied.kallsyms, Cow::Owned(_)));
    }

    #[test]
    fn every_cut_of_every_part_is_an_error() {
        for (index, part) in parts(&sample()).unwrap().iter().enumerate() {
            for len in 0..part.len() {
                let mut r = Reader::file(&part[..len], true);
                let result = read_part(index, &mut r, &Borrow, &mut Metadata::default());
                assert!(result.is_err(), "part {index} cut at {len}");
            }
        }
    }

    #[test]
    fn a_huge_count_ends_with_the_data() {
        let mut bytes = u32::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let err = read_part(
            1,
            &mut Reader::file(&bytes, false),
            &Borrow,
            &mut Metadata::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Truncated { offset: 12, .. }), "{err}");
    }
}
