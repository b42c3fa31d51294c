//! Byte builders for synthetic trace.dat files, so that each malformed case
//! is a few readable lines: a version 7 file assembled section by section,
//! options and chunks in the layout of `trace-cmd.dat.v7(5)`, and a small
//! `TraceData` with every kind of part to write and then cut or corrupt.

use std::borrow::Cow;

use kscope_tracedat::{Buffer, Compression, CpuData, EventSystem, RawOption, TraceData, option_id};

/// A little-endian version 7 file, built section by section.
pub struct V7 {
    pub bytes: Vec<u8>,
    first_options_at: usize,
}

impl V7 {
    /// The start of a file with `compression` (`"none"`, `"zstd"`, ...)
    /// and 4 KiB pages; the first options offset is 0 until set.
    pub fn new(compression: &str) -> V7 {
        let mut bytes = b"\x17\x08\x44tracing7\0\0\x08".to_vec();
        bytes.extend_from_slice(&4096u32.to_le_bytes());
        bytes.extend_from_slice(compression.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(if compression == "none" { b"" } else { b"1.5.4" });
        bytes.push(0);
        let first_options_at = bytes.len();
        bytes.extend_from_slice(&0u64.to_le_bytes());
        V7 {
            bytes,
            first_options_at,
        }
    }

    /// Points the header at the first options section.
    pub fn first_options(&mut self, offset: u64) {
        let at = self.first_options_at;
        self.bytes[at..at + 8].copy_from_slice(&offset.to_le_bytes());
    }

    /// Where the next section goes.
    pub fn pos(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Appends a section; returns its offset.
    pub fn section(&mut self, id: u16, flags: u16, contents: &[u8]) -> u64 {
        let at = self.pos();
        self.bytes.extend_from_slice(&id.to_le_bytes());
        self.bytes.extend_from_slice(&flags.to_le_bytes());
        self.bytes.extend_from_slice(&0u32.to_le_bytes());
        self.bytes
            .extend_from_slice(&(contents.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(contents);
        at
    }

    /// Appends an empty strings section, which complete files end with.
    pub fn strings(mut self) -> Vec<u8> {
        self.section(option_id::STRINGS, 0, b"");
        self.bytes
    }

    /// Appends an options section that is the first one; returns its
    /// offset.
    pub fn first_options_section(&mut self, options: &[Vec<u8>]) -> u64 {
        let at = self.section(option_id::DONE, 0, &options.concat());
        self.first_options(at);
        at
    }

    /// Overwrites 8 bytes at `at` with `value`.
    pub fn patch_u64(&mut self, at: u64, value: u64) {
        let at = at as usize;
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
}

/// An option: id, size, data.
pub fn opt(id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A DONE option pointing at the next options section.
pub fn done(next: u64) -> Vec<u8> {
    opt(option_id::DONE, &next.to_le_bytes())
}

/// A BUFFER option: section offset, name, clock `local`, page size, and
/// (cpu, offset, size) per CPU.
pub fn buffer(section: u64, name: &str, page_size: u32, cpus: &[(u32, u64, u64)]) -> Vec<u8> {
    let mut data = section.to_le_bytes().to_vec();
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(b"\0local\0");
    data.extend_from_slice(&page_size.to_le_bytes());
    data.extend_from_slice(&(cpus.len() as u32).to_le_bytes());
    for (cpu, offset, size) in cpus {
        data.extend_from_slice(&cpu.to_le_bytes());
        data.extend_from_slice(&offset.to_le_bytes());
        data.extend_from_slice(&size.to_le_bytes());
    }
    opt(option_id::BUFFER, &data)
}

/// Compressed CPU data: the chunk count, then (compressed size, declared
/// uncompressed size, data) per chunk.
pub fn chunks(list: &[(&[u8], u32)]) -> Vec<u8> {
    let mut out = (list.len() as u32).to_le_bytes().to_vec();
    for (data, size) in list {
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// zstd-compressed `data`.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).expect("zstd compresses")
}

/// [`small`] in either byte order.
pub fn small_in(big_endian: bool) -> TraceData<'static> {
    let mut data = TraceData {
        big_endian,
        ..small()
    };
    for option in data
        .options
        .iter_mut()
        .filter(|o| o.id == option_id::CPUCOUNT)
    {
        let count = if big_endian {
            2u32.to_be_bytes()
        } else {
            2u32.to_le_bytes()
        };
        option.data = Cow::Owned(count.to_vec());
    }
    data
}

/// A small little-endian trace with every part: formats, kallsyms, options
/// (text, CPUSTAT, CPUCOUNT, an unknown id), a top buffer with two CPUs and
/// an instance with one, on 256-byte pages so that files stay a few KiB.
pub fn small() -> TraceData<'static> {
    let page = |seed: u8, pages: usize| -> Cow<'static, [u8]> {
        Cow::Owned(
            (0..pages * 256)
                .map(|i| (i as u8).wrapping_mul(seed) ^ (i / 7) as u8)
                .collect(),
        )
    };
    let text = |id: u16, s: &str| RawOption {
        id,
        data: Cow::Owned(format!("{s}\0").into_bytes()),
    };
    TraceData {
        version: 6,
        big_endian: false,
        long_size: 8,
        page_size: 256,
        compression: Compression::None,
        header_page: Cow::Borrowed(b"\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"),
        header_event: Cow::Borrowed(b"# compressed entry header\n\ttype_len    :    5 bits\n"),
        ftrace_formats: vec![Cow::Borrowed(b"name: function\nID: 1\n")],
        event_formats: vec![EventSystem {
            name: "sched".into(),
            formats: vec![
                Cow::Borrowed(b"name: sched_switch\nID: 300\n"),
                Cow::Borrowed(b"name: sched_waking\nID: 301\n"),
            ],
        }],
        kallsyms: Cow::Borrowed(b"ffffffff81000000 T _stext\n"),
        printk_formats: Cow::Borrowed(b"0xffffffff82000000 : \"hello\"\n"),
        cmdlines: Cow::Borrowed(b"1 systemd\n42 bash\n"),
        cpus: 2,
        options: vec![
            text(option_id::TRACECLOCK, "[local] global counter"),
            text(option_id::UNAME, "Linux test 6.18 x86_64"),
            text(option_id::CPUSTAT, "CPU: 0\nentries: 3\n"),
            text(option_id::CPUSTAT, "CPU: 1\nentries: 4\n"),
            RawOption {
                id: option_id::CPUCOUNT,
                data: Cow::Owned(2u32.to_le_bytes().to_vec()),
            },
            RawOption {
                id: 999,
                data: Cow::Borrowed(b"\x01\x02\x03"),
            },
        ],
        buffers: vec![
            Buffer {
                name: String::new(),
                clock: Some("local".into()),
                page_size: 256,
                cpus: vec![
                    CpuData {
                        cpu: 0,
                        data: page(3, 1),
                    },
                    CpuData {
                        cpu: 1,
                        data: page(5, 2),
                    },
                ],
            },
            Buffer {
                name: "inst".into(),
                clock: Some("local".into()),
                page_size: 256,
                cpus: vec![CpuData {
                    cpu: 1,
                    data: page(7, 1),
                }],
            },
        ],
    }
}
