//! What a trace file needs besides the ring-buffer pages: the kernel's
//! page and event headers, every event format, kallsyms, printk formats,
//! saved cmdlines and the per-CPU statistics, read from tracefs as they
//! are; and reading what a buffer holds now (`trace extract`).

use kscope_tracefs::{Instance, Tracefs, control};

use crate::session::{RawPage, SessionError};

/// The metadata of a trace, as tracefs and /proc give it.
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
            kallsyms: std::fs::read("/proc/kallsyms").unwrap_or_default(),
            printk_formats: read("printk_formats"),
            cmdlines: read("saved_cmdlines"),
            cpu_stats,
            trace_clock: instance
                .read("trace_clock")
                .unwrap_or_default()
                .trim()
                .to_string(),
        })
    }
}

/// Reads every sub-buffer `instance` holds now, CPU by CPU, without
/// waiting and without changing any setting. Reading consumes them, as
/// `trace-cmd extract` does.
pub fn read_buffer(instance: &Instance, subbuf_size: usize) -> Result<Vec<RawPage>, SessionError> {
    let mut pages = Vec::new();
    for mut cpu in crate::session::open_cpu_buffers(instance)? {
        cpu.read_pages(subbuf_size, usize::MAX, &mut pages)?;
    }
    Ok(pages)
}
