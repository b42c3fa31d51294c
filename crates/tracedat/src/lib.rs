//! trace.dat files, the format of trace-cmd and KernelShark, versions 6
//! and 7 (uncompressed, zlib or zstd), read and written.
//!
//! A trace.dat holds what is needed to decode an ftrace recording away from
//! the machine that made it: the kernel's `header_page` and `header_event`,
//! the format of every event, kallsyms, printk formats, saved command
//! lines, options (uname, CPU stats, trace clock, ...) and the raw
//! ring-buffer pages of each CPU of each buffer (the top instance and named
//! instances). [`TraceData`] is all of that. In kscope's data flow, `kscope
//! trace record` and `kscope trace extract` fill a [`TraceData`] from a
//! tracefs instance and [`write()`] it; `kscope trace report` maps a file
//! ([`TraceFile`]), [`parse()`]s it and hands the pages and formats to
//! `kscope-traceevent`. Files written here are read by `trace-cmd report`
//! 3.1, and files trace-cmd writes are read here (the tests check both
//! directions against trace-cmd itself).
//!
//! ```
//! use std::borrow::Cow;
//! use kscope_tracedat::{Buffer, Compression, CpuData, TraceData, WriteOptions};
//!
//! let page = vec![0u8; 4096];
//! let data = TraceData {
//!     version: 7,
//!     big_endian: false,
//!     long_size: 8,
//!     page_size: 4096,
//!     compression: Compression::Zstd,
//!     header_page: Cow::Borrowed(b"\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"),
//!     header_event: Cow::Borrowed(b""),
//!     ftrace_formats: Vec::new(),
//!     event_formats: Vec::new(),
//!     kallsyms: Cow::Borrowed(b""),
//!     printk_formats: Cow::Borrowed(b""),
//!     cmdlines: Cow::Borrowed(b"1 systemd\n"),
//!     cpus: 1,
//!     options: Vec::new(),
//!     buffers: vec![Buffer {
//!         name: String::new(),
//!         clock: Some("local".into()),
//!         page_size: 4096,
//!         cpus: vec![CpuData { cpu: 0, data: Cow::Borrowed(&page) }],
//!     }],
//! };
//! let mut file = std::io::Cursor::new(Vec::new());
//! let options = WriteOptions { version: 7, compression: Compression::Zstd };
//! kscope_tracedat::write(&data, &options, &mut file)?;
//!
//! let bytes = file.into_inner();
//! let read = kscope_tracedat::parse(&bytes)?;
//! assert_eq!(read.buffers[0].cpus[0].data.len(), 4096);
//! assert_eq!(read.cmdlines, data.cmdlines);
//! # Ok::<(), kscope_tracedat::Error>(())
//! ```
//!
//! A file on disk is mapped, not read:
//!
//! ```no_run
//! let file = kscope_tracedat::TraceFile::open("trace.dat".as_ref())?;
//! let data = kscope_tracedat::parse(file.bytes())?;
//! for buffer in &data.buffers {
//!     for cpu in &buffer.cpus {
//!         println!("{:?} cpu{}: {} pages", buffer.name, cpu.cpu, cpu.data.len() / buffer.page_size as usize);
//!     }
//! }
//! # Ok::<(), kscope_tracedat::Error>(())
//! ```
//!
//! # Performance
//!
//! Parsing copies nothing that the file stores as is: every text and the
//! CPU data of an uncompressed file are [`Cow::Borrowed`] slices of the
//! input, so a mapped multi-gigabyte file parses in the time it takes to
//! read its headers. Compressed CPU data is decompressed on several
//! threads (one per CPU buffer at most, no more than the machine's CPUs),
//! each with one decompression context for all its chunks. [`write()`]
//! compresses the same way, and writes uncompressed CPU data from the
//! caller's slices straight to the output.
//!
//! # Limits on hostile input
//!
//! Every size is checked against the bytes that are left before it is
//! used, so a corrupt file gives an [`Error`] that says where, never a
//! panic, a hang or a huge allocation. In numbers: one compressed block or
//! chunk may declare at most 64 MiB uncompressed, and must decompress to
//! exactly what it declares; one parse decompresses at most 64 MiB plus
//! 1024 times the file's size (real traces compress 5 to 50 times);
//! compressed CPU data may not overlap other compressed CPU data; page sizes
//! are powers of two from 64 bytes to 1 MiB; CPU numbers are below 65536;
//! names are at most 4096 bytes; version 7's chain of options sections may
//! not loop or overlap, and its sections must follow each other to the end
//! of the file and include a strings section, as trace-cmd writes them (so
//! a file cut anywhere is an error).
//!
//! # The format, as trace-cmd 3.1.6 writes it
//!
//! The man pages `trace-cmd.dat.v6(5)` and `trace-cmd.dat.v7(5)` describe
//! the layout. What they leave out, seen in files trace-cmd writes and in
//! its source:
//!
//! - Version 6 keeps instances through BUFFER options (id 3): 8 bytes, the
//!   file offset of the instance's own `"flyrecord\0"` block, then the name.
//!   Each `"flyrecord\0"` block (the top instance's after the options, and
//!   each instance's) is a table of (offset, size) per CPU followed by the
//!   trace clock, as an 8-byte length and `[local]`; trace-cmd reads that
//!   clock only when the file has a TRACECLOCK option. The list of options
//!   ends with a bare id 0, without a size.
//! - Version 7 names its compression `none` (empty version), `zlib`
//!   (zlib's version, e.g. `1.2.13`; trace-cmd checks the major number) or
//!   `zstd` (e.g. `1.5.4`; any version). CPU data is compressed in chunks
//!   of ten pages; the BUFFER option's size of a compressed CPU counts the
//!   chunks and their headers but not the 4-byte chunk count. Metadata
//!   sections are compressed as one block each; options sections are not.
//! - trace-cmd writes, in order: the header info (16), ftrace formats (17),
//!   event formats (18), kallsyms (19), printk formats (20) and command
//!   lines (21) sections; an options section with the other options and the
//!   pointers to those six; then for each buffer its flyrecord section (3)
//!   followed by an options section holding its BUFFER option; last, the
//!   strings section (15) with the sections' descriptions. It finds the
//!   strings by walking the sections one after another from the header, so
//!   the sections must tile the file.
//! - kscope's version 6 of trace-cmd's own files is byte for byte what
//!   `trace-cmd convert --file-version 6` writes (a test checks it).
//! - trace-cmd ≥ 3.2 adds options 23 (BTF_FILE), 24 (LAST_BOOT_INFO) and 25
//!   (MODULES_FILE). Sections 23 and 25 are not kept here, so neither are
//!   their pointers; option 24 is kept like any other.

mod compress;
mod content;
mod error;
mod header;
mod reader;
mod sys;
mod v6;
mod v7;
mod writer;

use std::borrow::Cow;

pub use error::Error;
pub use header::MAGIC;
pub use sys::TraceFile;

/// Everything a trace.dat holds. Borrowed from the file where the bytes are
/// stored as they are; owned where they had to be decompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceData<'a> {
    /// The file version: 6 or 7. ([`write()`] writes the version of its
    /// [`WriteOptions`], whatever this says.)
    pub version: u32,
    /// Whether the numbers in the file (and the traced machine) are
    /// big-endian.
    pub big_endian: bool,
    /// The size of a `long` in the traced machine's user space: 4 or 8.
    pub long_size: u8,
    /// The traced machine's page size.
    pub page_size: u32,
    /// Version 7: the compression of the file's sections; version 6:
    /// always [`Compression::None`]. (Written files have the compression
    /// of their [`WriteOptions`].)
    pub compression: Compression,
    /// The text of `events/header_page`.
    pub header_page: Cow<'a, [u8]>,
    /// The text of `events/header_event`.
    pub header_event: Cow<'a, [u8]>,
    /// The texts of `events/ftrace/*/format`.
    pub ftrace_formats: Vec<Cow<'a, [u8]>>,
    /// The event formats of every other system.
    pub event_formats: Vec<EventSystem<'a>>,
    /// The text of `/proc/kallsyms`; may be empty.
    pub kallsyms: Cow<'a, [u8]>,
    /// The text of `printk_formats`; may be empty.
    pub printk_formats: Cow<'a, [u8]>,
    /// The text of `saved_cmdlines`; may be empty.
    pub cmdlines: Cow<'a, [u8]>,
    /// Version 6: the CPU count of the header. Version 7: the CPUCOUNT
    /// option (the last one), or one more than the highest CPU with data
    /// when there is none. When writing version 7, a CPUCOUNT option with
    /// this count is added unless `options` already holds one.
    pub cpus: u32,
    /// Every option except those the layout itself is made of (DONE,
    /// BUFFER, BUFFER_TEXT and the section pointers 16-21, 23 and 25), in
    /// file order, unknown ids included. [`write()`] writes them as they are.
    pub options: Vec<RawOption<'a>>,
    /// The recorded buffers: the top instance first (named `""`, present
    /// when it has CPU data), then the named instances in file order.
    pub buffers: Vec<Buffer<'a>>,
}

/// The event formats of one event system (`events/SYSTEM/*/format`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSystem<'a> {
    /// The system's name, as the directory under `events/` is named.
    pub name: String,
    /// The format texts of its events.
    pub formats: Vec<Cow<'a, [u8]>>,
}

/// One option, as the file stores it: an id and its bytes (for the text
/// options, the text and its NUL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The option's id (see [`option_id`]).
    pub id: u16,
    /// Its bytes.
    pub data: Cow<'a, [u8]>,
}

/// The flyrecord data of one ftrace buffer: the top instance or a named
/// instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer<'a> {
    /// The instance's name; `""` for the top instance.
    pub name: String,
    /// The trace clock (`local`, `global`, ...). Version 6 stores it only
    /// when the file has a TRACECLOCK option; version 7 always (written as
    /// `local` when `None`).
    pub clock: Option<String>,
    /// The size of one ring-buffer page (sub-buffer) of this buffer. In
    /// version 6 it is the file's page size.
    pub page_size: u32,
    /// The CPUs that have data, each once; [`parse()`] gives them in CPU
    /// order.
    pub cpus: Vec<CpuData<'a>>,
}

/// The ring-buffer pages of one CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuData<'a> {
    /// The CPU's number.
    pub cpu: u32,
    /// Its raw ring-buffer pages, uncompressed; the length is a non-zero
    /// multiple of the buffer's page size. Written CPU data that is empty is
    /// left out of the file.
    pub data: Cow<'a, [u8]>,
}

/// The compression of a version 7 file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed (`none`).
    None,
    /// zlib streams (`zlib`).
    Zlib,
    /// zstd frames (`zstd`).
    Zstd,
}

/// The ids of trace.dat options, and of version 7 sections, which share
/// them: those of `trace-cmd.dat.v7(5)`, plus the strings section (15) and
/// the options trace-cmd 3.2 added (23-25).
pub mod option_id {
    /// Ends a list of options; in version 7 its data is the offset of the
    /// next options section. Also the id of an options section.
    pub const DONE: u16 = 0;
    /// Text: the difference between event time stamps and the time of day.
    pub const DATE: u16 = 1;
    /// Text: a CPU's `per_cpu/cpuN/stats`; one option per CPU.
    pub const CPUSTAT: u16 = 2;
    /// An instance's flyrecord data. Also the id of a flyrecord section.
    pub const BUFFER: u16 = 3;
    /// Text: the `trace_clock` file.
    pub const TRACECLOCK: u16 = 4;
    /// Text: the traced system's uname.
    pub const UNAME: u16 = 5;
    /// Text: event hooks, which connect two events.
    pub const HOOK: u16 = 6;
    /// Text: a fixed time added to every time stamp.
    pub const OFFSET: u16 = 7;
    /// 4 bytes: the number of CPUs.
    pub const CPUCOUNT: u16 = 8;
    /// Text: the version of the program that wrote the file.
    pub const VERSION: u16 = 9;
    /// Text: the memory maps of the traced processes.
    pub const PROCMAPS: u16 = 10;
    /// 8 bytes: the id of the tracing session.
    pub const TRACEID: u16 = 11;
    /// Time synchronization between a host and a guest.
    pub const TIME_SHIFT: u16 = 12;
    /// A traced guest: name, trace id, CPUs.
    pub const GUEST: u16 = 13;
    /// 16 bytes: TSC to nanoseconds conversion (multiplier, shift, offset).
    pub const TSC2NSEC: u16 = 14;
    /// The id of a strings section (version 7; not an option).
    pub const STRINGS: u16 = 15;
    /// 8 bytes: offset of the header info section (also its id).
    pub const HEADER_INFO: u16 = 16;
    /// 8 bytes: offset of the ftrace formats section (also its id).
    pub const FTRACE_EVENTS: u16 = 17;
    /// 8 bytes: offset of the event formats section (also its id).
    pub const EVENT_FORMATS: u16 = 18;
    /// 8 bytes: offset of the kallsyms section (also its id).
    pub const KALLSYMS: u16 = 19;
    /// 8 bytes: offset of the printk formats section (also its id).
    pub const PRINTK: u16 = 20;
    /// 8 bytes: offset of the saved command lines section (also its id).
    pub const CMDLINES: u16 = 21;
    /// A latency tracer's text output (also the id of its section).
    pub const BUFFER_TEXT: u16 = 22;
    /// 8 bytes: offset of a BTF section (trace-cmd 3.2 and later).
    pub const BTF_FILE: u16 = 23;
    /// Text: an instance's `last_boot_info` (trace-cmd 3.2 and later).
    pub const LAST_BOOT_INFO: u16 = 24;
    /// 8 bytes: offset of a `/proc/modules` section (trace-cmd 3.2 and
    /// later).
    pub const MODULES_FILE: u16 = 25;
}

/// Whether option `id` is part of the layout, which [`parse()`] reads and
/// [`write()`] writes by itself, and so is never in [`TraceData::options`].
fn is_layout_option(id: u16) -> bool {
    use option_id::*;
    matches!(
        id,
        DONE | BUFFER | STRINGS | HEADER_INFO..=BUFFER_TEXT | BTF_FILE | MODULES_FILE
    )
}

impl<'a> TraceData<'a> {
    /// The text of the first option `id` (UNAME, VERSION, TRACECLOCK, DATE,
    /// OFFSET, ...), without its trailing NULs; `None` when there is no
    /// such option or it is not UTF-8.
    pub fn option_text(&self, id: u16) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.id == id)
            .and_then(|o| text_of(&o.data))
    }

    /// The texts of the CPUSTAT options, in file order (trace-cmd writes
    /// one per CPU of each buffer, and a `Buffer: NAME` line between
    /// buffers); those that are not UTF-8 are left out.
    pub fn cpu_stats(&self) -> Vec<&str> {
        self.options
            .iter()
            .filter(|o| o.id == option_id::CPUSTAT)
            .filter_map(|o| text_of(&o.data))
            .collect()
    }
}

/// An option's bytes as text, trailing NULs removed.
fn text_of(data: &[u8]) -> Option<&str> {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&data[..end]).ok()
}

/// How [`write()`] writes a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// 6 or 7.
    pub version: u32,
    /// The compression of a version 7 file; version 6 takes only
    /// [`Compression::None`].
    pub compression: Compression,
}

impl Default for WriteOptions {
    /// Version 6, uncompressed: the version that every trace-cmd and
    /// KernelShark reads. (trace-cmd 3.x itself writes version 7 with the
    /// best compression it has unless given `--file-version 6`: trace-cmd
    /// 3.1.6's `extract` wrote zstd here.)
    fn default() -> WriteOptions {
        WriteOptions {
            version: 6,
            compression: Compression::None,
        }
    }
}

/// Parses a whole trace.dat held in memory (see [`TraceFile`] to map one).
/// Uncompressed data is borrowed, not copied; compressed version 7 CPU data
/// is decompressed in parallel, one thread per CPU buffer at most.
pub fn parse(bytes: &[u8]) -> Result<TraceData<'_>, Error> {
    let (head, reader) = header::read(bytes)?;
    match head.version {
        6 => v6::parse(reader, head),
        _ => v7::parse(reader, head),
    }
}

/// Writes `data` as a trace.dat, version and compression as `options` say.
///
/// Version 6 has the classic layout, instances through BUFFER options.
/// Version 7 has sections, as trace-cmd lays them out: header info, ftrace
/// and event formats, kallsyms, printk formats and command lines, an
/// options section, one flyrecord section (CPU data page-aligned, in chunks
/// of ten pages when compressed) and one options section per buffer, and
/// a strings section. The options of `data.options` are written as they
/// are, so CPUSTAT, UNAME and the others survive a read and write. Nothing
/// is written before `data` is checked, so an [`Error::Unrepresentable`]
/// leaves `out` untouched.
pub fn write(
    data: &TraceData<'_>,
    options: &WriteOptions,
    out: &mut (impl std::io::Write + std::io::Seek),
) -> Result<(), Error> {
    header::check(data, options)?;
    match options.version {
        6 => v6::write(data, out),
        _ => v7::write(data, options.compression, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_text_trims_the_nul_and_skips_what_is_not_text() {
        let data = TraceData {
            options: vec![
                RawOption {
                    id: option_id::UNAME,
                    data: Cow::Borrowed(b"Linux vm 6.18\0"),
                },
                RawOption {
                    id: option_id::CPUSTAT,
                    data: Cow::Borrowed(b"CPU: 0\n\0"),
                },
                RawOption {
                    id: option_id::CPUSTAT,
                    data: Cow::Borrowed(b"\xff\0"),
                },
                RawOption {
                    id: option_id::CPUSTAT,
                    data: Cow::Borrowed(b"CPU: 1\n"),
                },
            ],
            ..empty()
        };
        assert_eq!(data.option_text(option_id::UNAME), Some("Linux vm 6.18"));
        assert_eq!(data.option_text(option_id::VERSION), None);
        assert_eq!(data.cpu_stats(), ["CPU: 0\n", "CPU: 1\n"]);
    }

    #[test]
    fn the_default_is_what_trace_cmd_writes_by_default() {
        assert_eq!(
            WriteOptions::default(),
            WriteOptions {
                version: 6,
                compression: Compression::None
            }
        );
    }

    #[test]
    fn layout_options_are_those_the_format_is_made_of() {
        let layout: Vec<u16> = (0..30).filter(|&id| is_layout_option(id)).collect();
        assert_eq!(layout, [0, 3, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25]);
    }

    fn empty() -> TraceData<'static> {
        TraceData {
            version: 6,
            big_endian: false,
            long_size: 8,
            page_size: 4096,
            compression: Compression::None,
            header_page: Cow::Borrowed(b""),
            header_event: Cow::Borrowed(b""),
            ftrace_formats: Vec::new(),
            event_formats: Vec::new(),
            kallsyms: Cow::Borrowed(b""),
            printk_formats: Cow::Borrowed(b""),
            cmdlines: Cow::Borrowed(b""),
            cpus: 0,
            options: Vec::new(),
            buffers: Vec::new(),
        }
    }
}
