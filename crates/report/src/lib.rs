//! Reports of trace.dat files, as `trace-cmd report` prints them.
//!
//! A [`Report`] is built over a parsed trace.dat (`kscope_tracedat`): it
//! parses the file's event formats, its page layout, saved cmdlines and
//! printk formats (kallsyms only when a record needs a symbol). Its
//! records come in time order through [`Events`], a k-way merge of every
//! CPU of every buffer that decodes each sub-buffer as it reaches it
//! (`kscope_traceevent::merge`, which `trace stream` uses too). On that
//! stream sit what `trace-cmd report` does: `-F` selections
//! ([`Selection`], filters from `kscope_traceevent::filter`), the texts
//! of libtraceevent's plugins, task names learned as trace-cmd's sched
//! plugin learns them ([`Comms`]), raw fields (`-R`) and `--stat`
//! ([`Statistics`]). The layout of a line is the caller's
//! ([`LineLayout`]): the `kscope` binary gives trace-cmd's.
//!
//! ```no_run
//! use kscope_report::{LineLayout, Report, TextOptions};
//! struct Plain;
//! impl LineLayout for Plain {
//!     fn columns(&self, out: &mut String, comm: &str, pid: i32, cpu: u32, ts: u64, event: &str) {
//!         out.push_str(&format!("{comm}-{pid} [{cpu}] {ts}: {event}: "));
//!     }
//!     fn lost(&self, out: &mut String, cpu: u32, _count: Option<u64>) {
//!         out.push_str(&format!("CPU:{cpu} [EVENTS DROPPED]"));
//!     }
//! }
//! let file = kscope_tracedat::TraceFile::open("trace.dat".as_ref())?;
//! let data = kscope_tracedat::parse(file.bytes())?;
//! let report = Report::new(&data, Some(&file));
//! let selection = report.selection(&[])?;
//! let damage = report.write_text(&TextOptions::default(), &selection, &Plain, &mut std::io::stdout())?;
//! assert!(damage.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod comms;
mod events;
mod plugins;
mod raw;
mod select;
mod stat;
mod text;

use kscope_tracedat::{TraceData, TraceFile};
use kscope_traceevent::printfmt::{Dialect, Env, SymbolResolver};
use kscope_traceevent::{
    Cmdlines, EventFormat, HeaderPage, Kallsyms, PageLayout, PrintkFormats, Renderer,
};

use plugins::{Plugin, Plugins};

pub use comms::Comms;
pub use events::{Damage, Event, Events};
pub use select::{SelectError, Selection};
pub use stat::{CpuData, Statistics};
pub use text::{LineLayout, RecordText, TextOptions};

/// A trace.dat ready to report: its formats, names and symbols.
pub struct Report<'a> {
    data: &'a TraceData<'a>,
    file: Option<&'a TraceFile>,
    layout: PageLayout,
    formats: Vec<EventFormat<'a>>,
    /// The system of each format, at its index.
    systems: Vec<&'a str>,
    cmdlines: Cmdlines,
    printk: PrintkFormats,
    kallsyms: LazyKallsyms<'a>,
    plugins: Plugins,
}

impl<'a> Report<'a> {
    /// A report of `data`; `file`, when `data` was parsed from it, has
    /// the pages the report has read given back to the kernel.
    pub fn new(data: &'a TraceData<'a>, file: Option<&'a TraceFile>) -> Report<'a> {
        let header_page = std::str::from_utf8(&data.header_page).unwrap_or_default();
        let layout = HeaderPage::parse(header_page)
            .map(|h| PageLayout::from_header(&h))
            .unwrap_or(PageLayout::X86_64);
        // Each format with its system: the file keeps them per system.
        let (systems, formats): (Vec<&str>, Vec<EventFormat<'_>>) = data
            .ftrace_formats
            .iter()
            .map(|f| ("ftrace", f))
            .chain(
                data.event_formats
                    .iter()
                    .flat_map(|s| s.formats.iter().map(move |f| (s.name.as_str(), f))),
            )
            .filter_map(|(system, f)| Some((system, std::str::from_utf8(f).ok()?)))
            .filter_map(|(system, t)| Some((system, EventFormat::parse(t).ok()?)))
            .unzip();
        Report {
            data,
            file,
            layout,
            plugins: Plugins::new(&formats),
            formats,
            systems,
            cmdlines: Cmdlines::parse(&String::from_utf8_lossy(&data.cmdlines)),
            printk: PrintkFormats::parse(&String::from_utf8_lossy(&data.printk_formats)),
            kallsyms: LazyKallsyms::new(&data.kallsyms),
        }
    }

    /// The trace.dat reported.
    pub fn data(&self) -> &'a TraceData<'a> {
        self.data
    }

    /// The event formats of the file that parse.
    pub fn formats(&self) -> &[EventFormat<'a>] {
        &self.formats
    }

    /// The records of the CPUs `cpus` (all when empty), in time order.
    pub fn events(&self, cpus: &[u32]) -> Events<'_> {
        Events::new(self.data, &self.layout, cpus, self.file)
    }

    /// What the `-F` options `specs` select.
    pub fn selection(&self, specs: &[String]) -> Result<Selection<'_>, SelectError> {
        Selection::parse(specs, &self.formats, &self.systems)
    }

    /// Task names as the file saved them; the report learns more.
    pub fn comms(&self) -> Comms<'_> {
        Comms::new(&self.cmdlines)
    }

    /// What a print fmt may ask while formatting: the file's kallsyms and
    /// printk formats, in libtraceevent's dialect.
    fn env(&self) -> Env<'_> {
        Env {
            symbols: &self.kallsyms,
            hz: 250,
            types: None,
            variables: &[],
            strings: Some(&self.printk),
            dialect: Dialect::Libtraceevent,
        }
    }

    /// The prefix of each buffer's lines: none when the file has only the
    /// top buffer; else each instance's name right-aligned to the longest,
    /// and blanks of that width for the top buffer (as trace-cmd prints
    /// them).
    pub fn prefixes(&self) -> Vec<String> {
        let buffers = &self.data.buffers;
        let instances = buffers.iter().any(|b| !b.name.is_empty());
        let width = buffers.iter().map(|b| b.name.len()).max().unwrap_or(0);
        buffers
            .iter()
            .map(|b| match (instances, b.name.is_empty()) {
                (false, _) => String::new(),
                (true, true) => " ".repeat(width + 2),
                (true, false) => format!("{:>width$}: ", b.name),
            })
            .collect()
    }
}

/// The event's text: its raw fields (`-R`), a plugin's text, or its print
/// fmt's; one trailing newline is dropped, as trace-cmd drops it.
fn render_text(
    raw: bool,
    plugin: Option<Plugin>,
    format: &EventFormat<'_>,
    record: &[u8],
    env: &Env<'_>,
    renderer: &Renderer<'_>,
    out: &mut String,
) {
    if raw {
        raw::raw_fields(format, record, out);
    } else if !plugins::render(plugin, format, record, env, out) {
        renderer.render(record, env, out);
    }
    if out.ends_with('\n') {
        out.pop();
    }
}

/// The file's kallsyms, parsed the first time a symbol is needed (a few
/// events print symbols; parsing megabytes of text for the others would
/// be most of a small report's time).
struct LazyKallsyms<'a> {
    text: &'a [u8],
    parsed: std::sync::OnceLock<Kallsyms>,
}

impl<'a> LazyKallsyms<'a> {
    fn new(text: &'a [u8]) -> LazyKallsyms<'a> {
        LazyKallsyms {
            text,
            parsed: std::sync::OnceLock::new(),
        }
    }
}

impl SymbolResolver for LazyKallsyms<'_> {
    fn symbol(&self, address: u64) -> Option<kscope_traceevent::printfmt::Symbol<'_>> {
        self.parsed
            .get_or_init(|| Kallsyms::parse(&String::from_utf8_lossy(self.text)))
            .symbol(address)
    }
}
