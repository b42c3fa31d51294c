//! What a trace file needs besides the ring-buffer pages: the kernel's
//! page and event headers, every event format, kallsyms, printk formats,
//! saved cmdlines, the per-CPU statistics and the machine's uname, read as
//! they are ([`Metadata::capture`]); the trace.dat contents they make with
//! the pages ([`Metadata::trace_data`]), with the options trace-cmd writes;
//! and what a buffer holds now, read whole ([`Snapshot`], `trace
//! extract`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use kscope_tracedat::{Buffer, Compression, CpuData, EventSystem, RawOption, TraceData, option_id};
use kscope_tracefs::{Instance, Tracefs, control};

use crate::session::{RawPage, SessionError, open_cpu_buffers, subbuf_size};
use crate::sys;

/// The clock a trace_clock text without a bracketed choice means: the
/// kernel's default.
const DEFAULT_CLOCK: &str = "local";

/// The metadata of a trace, as tracefs, /proc and uname(2) give it.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// events/header_page.
    pub header_page: Vec<u8>,
    /// events/header_event.
    pub header_event: Vec<u8>,
    /// events/ftrace/*/format, in name order.
    pub ftrace_formats: Vec<Vec<u8>>,
    /// Every other system with its events' formats, in name order.
    pub event_formats: Vec<(String, Vec<Vec<u8>>)>,
    /// /proc/kallsyms.
    pub kallsyms: Vec<u8>,
    /// printk_formats.
    pub printk_formats: Vec<u8>,
    /// saved_cmdlines.
    pub cmdlines: Vec<u8>,
    /// The instance's per_cpu/cpuN/stats texts, by CPU.
    pub cpu_stats: Vec<(u32, String)>,
    /// The instance's trace_clock text.
    pub trace_clock: String,
    /// The machine, as `uname -snrv` prints it.
    pub uname: String,
}

impl Metadata {
    /// Reads everything from `fs` for `instance`. Formats that cannot be
    /// read (a few need privileges the caller may lack) are left out.
    pub fn capture(fs: &Tracefs, instance: &Instance) -> Result<Metadata, SessionError> {
        let root = fs.root();
        let read = |name: &str| control::read_bytes(&root.join(name)).unwrap_or_default();
        let mut systems: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (system, event) in fs.events()? {
            systems.entry(system).or_default().push(event);
        }
        let mut ftrace_formats = Vec::new();
        if let Ok(entries) = std::fs::read_dir(root.join("events/ftrace")) {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("format").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                if let Ok(text) =
                    control::read_bytes(&root.join("events/ftrace").join(&name).join("format"))
                {
                    ftrace_formats.push(text);
                }
            }
        }
        let mut event_formats = Vec::new();
        for (system, events) in systems {
            if system == "ftrace" {
                continue;
            }
            let formats: Vec<Vec<u8>> = events
                .iter()
                .filter_map(|event| fs.event_format(&system, event).ok())
                .map(String::into_bytes)
                .collect();
            if !formats.is_empty() {
                event_formats.push((system, formats));
            }
        }
        let mut cpu_stats = Vec::new();
        if let Ok(entries) = std::fs::read_dir(instance.file("per_cpu")) {
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(cpu) = name.strip_prefix("cpu").and_then(|n| n.parse().ok()) {
                    let text = control::read(&entry.path().join("stats")).unwrap_or_default();
                    cpu_stats.push((cpu, text));
                }
            }
        }
        cpu_stats.sort_by_key(|(cpu, _)| *cpu);
        Ok(Metadata {
            header_page: read("events/header_page"),
            header_event: read("events/header_event"),
            ftrace_formats,
            event_formats,
            kallsyms: sys::kallsyms().unwrap_or_default(),
            printk_formats: read("printk_formats"),
            cmdlines: read("saved_cmdlines"),
            cpu_stats,
            trace_clock: instance
                .read("trace_clock")
                .unwrap_or_default()
                .trim()
                .to_string(),
            uname: sys::uname(),
        })
    }

    /// The clock the instance traced with: the bracketed one of
    /// `trace_clock` (`[local] global ...`).
    pub fn clock(&self) -> &str {
        self.trace_clock
            .split_whitespace()
            .find_map(|c| c.strip_prefix('[').and_then(|c| c.strip_suffix(']')))
            .unwrap_or(DEFAULT_CLOCK)
    }

    /// The trace.dat contents: this metadata, the options trace-cmd writes
    /// (CPUSTAT per CPU, TRACECLOCK, UNAME, VERSION, CPUCOUNT, in that
    /// order), and `buffers`, whose sub-buffers are `page_size` bytes.
    pub fn trace_data<'a>(&'a self, page_size: u32, buffers: Vec<Buffer<'a>>) -> TraceData<'a> {
        let text = |id: u16, s: String| {
            let mut data = s.into_bytes();
            data.push(0);
            RawOption {
                id,
                data: Cow::Owned(data),
            }
        };
        let cpus = self.cpu_stats.len() as u32;
        let mut options = Vec::new();
        for (cpu, stats) in &self.cpu_stats {
            // As trace-cmd writes them: the CPU, then the stats file.
            options.push(text(option_id::CPUSTAT, format!("CPU: {cpu}\n{stats}")));
        }
        options.push(text(option_id::TRACECLOCK, self.trace_clock.clone() + "\n"));
        options.push(text(option_id::UNAME, self.uname.clone()));
        // Every crate of the workspace has the binary's version.
        options.push(text(
            option_id::VERSION,
            format!("kscope {}", env!("CARGO_PKG_VERSION")),
        ));
        options.push(RawOption {
            id: option_id::CPUCOUNT,
            data: Cow::Owned(cpus.to_le_bytes().to_vec()),
        });
        TraceData {
            version: 6,
            big_endian: cfg!(target_endian = "big"),
            long_size: std::mem::size_of::<usize>() as u8,
            page_size,
            compression: Compression::None,
            header_page: Cow::Borrowed(&self.header_page),
            header_event: Cow::Borrowed(&self.header_event),
            ftrace_formats: self
                .ftrace_formats
                .iter()
                .map(|f| Cow::Borrowed(f.as_slice()))
                .collect(),
            event_formats: self
                .event_formats
                .iter()
                .map(|(name, formats)| EventSystem {
                    name: name.clone(),
                    formats: formats
                        .iter()
                        .map(|f| Cow::Borrowed(f.as_slice()))
                        .collect(),
                })
                .collect(),
            kallsyms: Cow::Borrowed(&self.kallsyms),
            printk_formats: Cow::Borrowed(&self.printk_formats),
            cmdlines: Cow::Borrowed(&self.cmdlines),
            cpus,
            options,
            buffers,
        }
    }

    /// A buffer named `name` (`""` for the top instance) of `cpus`' data,
    /// traced with this metadata's clock.
    pub fn buffer<'a>(&self, name: &str, page_size: u32, cpus: Vec<CpuData<'a>>) -> Buffer<'a> {
        Buffer {
            name: name.to_string(),
            clock: Some(self.clock().to_string()),
            page_size,
            cpus,
        }
    }
}

/// What a ring buffer held when it was read whole, with the metadata
/// captured right after: what `trace extract` writes.
#[derive(Debug)]
pub struct Snapshot {
    metadata: Metadata,
    /// The instance's name, `""` for the top level.
    name: String,
    page_size: usize,
    /// Each CPU's sub-buffers, each padded to `page_size`.
    cpus: Vec<(u32, Vec<u8>)>,
    pages: usize,
}

impl Snapshot {
    /// Reads every sub-buffer `instance` (named `name`; None for the top
    /// level) holds now, CPU by CPU, without waiting and without changing
    /// any setting, then its metadata. Reading consumes the sub-buffers,
    /// as `trace-cmd extract` does.
    pub fn take(
        fs: &Tracefs,
        instance: &Instance,
        name: Option<&str>,
    ) -> Result<Snapshot, SessionError> {
        let page_size = subbuf_size(instance);
        let pages = read_buffer(instance, page_size)?;
        let metadata = Metadata::capture(fs, instance)?;
        let cpus = pad_by_cpu(
            &pages,
            page_size,
            metadata.cpu_stats.iter().map(|(c, _)| *c),
        );
        Ok(Snapshot {
            metadata,
            name: name.unwrap_or_default().to_string(),
            page_size,
            cpus,
            pages: pages.len(),
        })
    }

    /// How many sub-buffers were read.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The trace.dat contents.
    pub fn trace_data(&self) -> TraceData<'_> {
        let page_size = self.page_size as u32;
        let cpus = self
            .cpus
            .iter()
            .map(|(cpu, data)| CpuData {
                cpu: *cpu,
                data: Cow::Borrowed(data.as_slice()),
            })
            .collect();
        let buffer = self.metadata.buffer(&self.name, page_size, cpus);
        self.metadata.trace_data(page_size, vec![buffer])
    }
}

/// The sub-buffers of `pages` (read with read(2), so a partly filled one
/// is short) by CPU, each padded with zeros to `page_size`; every CPU of
/// `cpus` is there, with no data when it had none.
fn pad_by_cpu(
    pages: &[RawPage],
    page_size: usize,
    cpus: impl Iterator<Item = u32>,
) -> Vec<(u32, Vec<u8>)> {
    let mut by_cpu: BTreeMap<u32, Vec<u8>> = cpus.map(|cpu| (cpu, Vec::new())).collect();
    for page in pages {
        let data = by_cpu.entry(page.cpu).or_default();
        data.extend_from_slice(&page.bytes);
        data.resize(data.len().next_multiple_of(page_size), 0);
    }
    by_cpu.into_iter().collect()
}

/// Reads every sub-buffer `instance` holds now, CPU by CPU.
fn read_buffer(instance: &Instance, subbuf_size: usize) -> Result<Vec<RawPage>, SessionError> {
    let mut pages = Vec::new();
    for mut cpu in open_cpu_buffers(instance)? {
        cpu.read_pages(subbuf_size, usize::MAX, &mut pages)?;
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(cpu: u32, bytes: &[u8]) -> RawPage {
        RawPage {
            cpu,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn pages_are_padded_and_grouped_by_cpu_and_every_cpu_is_kept() {
        let pages = [page(1, &[1; 3]), page(0, &[2; 8]), page(1, &[3; 5])];
        let cpus = pad_by_cpu(&pages, 8, [0, 1, 2].into_iter());
        let mut one = vec![1, 1, 1, 0, 0, 0, 0, 0];
        one.extend([3, 3, 3, 3, 3, 0, 0, 0]);
        assert_eq!(cpus, [(0, vec![2; 8]), (1, one), (2, Vec::new())]);
    }

    #[test]
    fn the_clock_is_the_bracketed_one() {
        let clock = |text: &str| {
            Metadata {
                trace_clock: text.to_string(),
                ..Metadata::default()
            }
            .clock()
            .to_string()
        };
        assert_eq!(clock("local [global] counter uptime"), "global");
        assert_eq!(clock("[mono] boot"), "mono");
        assert_eq!(clock(""), "local");
    }

    #[test]
    fn a_recording_s_trace_data_holds_its_metadata_and_the_options_trace_cmd_writes() {
        let metadata = Metadata {
            header_page: b"header page".to_vec(),
            header_event: b"header event".to_vec(),
            ftrace_formats: vec![b"name: function".to_vec()],
            event_formats: vec![("sched".into(), vec![b"name: sched_switch".to_vec()])],
            kallsyms: b"ffffffff81000000 T _stext\n".to_vec(),
            printk_formats: b"0xffffffff82000000 : \"hello\"\n".to_vec(),
            cmdlines: b"1 systemd\n".to_vec(),
            cpu_stats: vec![(0, "entries: 1\n".into()), (1, "entries: 2\n".into())],
            trace_clock: "local [mono] boot".into(),
            uname: "Linux host 6.18.0 #1 SMP".into(),
        };
        let pages = [page(1, &[7; 100])];
        let cpus = pad_by_cpu(&pages, 4096, [0, 1].into_iter());
        let cpus = cpus
            .iter()
            .map(|(cpu, data)| CpuData {
                cpu: *cpu,
                data: Cow::Borrowed(data.as_slice()),
            })
            .collect();
        let data = metadata.trace_data(4096, vec![metadata.buffer("", 4096, cpus)]);
        let mut file = Vec::new();
        kscope_tracedat::write(
            &data,
            &kscope_tracedat::WriteOptions {
                version: 6,
                compression: Compression::None,
            },
            &mut std::io::Cursor::new(&mut file),
        )
        .unwrap();
        let read = kscope_tracedat::parse(&file).unwrap();
        assert_eq!(read.cpus, 2);
        assert_eq!(read.header_page.as_ref(), b"header page");
        assert_eq!(read.event_formats[0].name, "sched");
        assert_eq!(read.cmdlines.as_ref(), b"1 systemd\n");
        assert_eq!(
            read.cpu_stats(),
            ["CPU: 0\nentries: 1\n", "CPU: 1\nentries: 2\n"]
        );
        assert_eq!(
            read.option_text(option_id::TRACECLOCK),
            Some("local [mono] boot\n")
        );
        assert_eq!(
            read.option_text(option_id::UNAME),
            Some("Linux host 6.18.0 #1 SMP")
        );
        assert_eq!(
            read.option_text(option_id::VERSION),
            Some(concat!("kscope ", env!("CARGO_PKG_VERSION")))
        );
        let ids: Vec<u16> = read.options.iter().map(|o| o.id).collect();
        assert_eq!(
            ids,
            [
                option_id::CPUSTAT,
                option_id::CPUSTAT,
                option_id::TRACECLOCK,
                option_id::UNAME,
                option_id::VERSION,
                option_id::CPUCOUNT
            ]
        );
        let buffer = &read.buffers[0];
        assert_eq!(buffer.clock.as_deref(), Some("mono"));
        let with_data: Vec<(u32, usize)> = buffer
            .cpus
            .iter()
            .filter(|c| !c.data.is_empty())
            .map(|c| (c.cpu, c.data.len()))
            .collect();
        assert_eq!(with_data, [(1, 4096)]);
        let one = buffer.cpus.iter().find(|c| c.cpu == 1).unwrap();
        assert_eq!(&one.data[..100], &[7; 100]);
    }
}
