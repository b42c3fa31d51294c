//! `kscope crash`'s replies as text, laid out as crash 8 lays out its
//! `sys`, `ps`, `bt`, `mod`, `files`, `vm` and `kmem -i` (and `log` as
//! `dmesg` and makedumpfile print it, `dis` as gdb does), or as JSON:
//! each reply serializes to its command's JSON document.

use kscope_kernel::MemoryInfo;
use kscope_kernel::commands::{
    BacktracesReport, Disassembly, FilesReport, LogReport, ModulesReport, StructReport,
    SymbolReport, SystemReport, TaskReport, TasksReport, VmReport, Words,
};
use kscope_kernel::stack::Ending;
use kscope_kernel::tasks::Task;
use serde::Serialize;

/// A command's result.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `sys`.
    System(Box<SystemReport>),
    /// `log`.
    Log(LogReport),
    /// `ps`.
    Tasks(TasksReport),
    /// `bt`.
    Backtraces(BacktracesReport),
    /// `mod`.
    Modules(ModulesReport),
    /// `task`.
    Task(TaskReport),
    /// `files`.
    Files(FilesReport),
    /// `vm`.
    Vm {
        /// The memory map.
        #[serde(flatten)]
        report: VmReport,
        /// The dump's page size, for the task's memory in KiB.
        #[serde(skip)]
        page_size: u64,
    },
    /// `kmem -i`.
    MemoryInfo(MemoryInfo),
    /// `struct`.
    Struct(StructReport),
    /// `sym`.
    Symbol(SymbolReport),
    /// `rd`.
    Words(Words),
    /// `dis`.
    Disassembly(Disassembly),
    /// `help`, or a command's `--help`.
    Help {
        /// The text.
        help: String,
    },
}

/// The reply as JSON, its keys in order as they have always printed.
pub fn json(reply: &Reply) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(reply)?)
}

/// The reply as a person reads it.
pub fn text(reply: &Reply) -> String {
    match reply {
        Reply::System(report) => system(report),
        Reply::Log(report) => report.0.dmesg(),
        Reply::Tasks(report) => tasks(report),
        Reply::Backtraces(report) => backtraces(report),
        Reply::Modules(report) => modules(report),
        Reply::Task(report) => format!(
            "{}\n{}",
            task_header(report.pid, report.address, report.cpu, &report.comm),
            report.text
        ),
        Reply::Files(report) => files(report),
        Reply::Vm { report, page_size } => vm(report, *page_size),
        Reply::MemoryInfo(info) => info.kmem_text(),
        Reply::Struct(report) => structure(report),
        Reply::Symbol(report) => symbol(report),
        Reply::Words(words) => words_text(words),
        Reply::Disassembly(code) => disassembly(code),
        Reply::Help { help } => format!("{help}\n"),
    }
}

/// `PID: ... TASK: ...  CPU: ...  COMMAND: "..."`, as crash heads a
/// task's output.
fn task_header(pid: i32, address: u64, cpu: Option<u32>, comm: &str) -> String {
    format!(
        "PID: {pid:<7} TASK: {address:016x}  CPU: {}  COMMAND: \"{comm}\"",
        cpu_text(cpu)
    )
}

/// A task's header line.
fn header_of(task: &Task) -> String {
    task_header(task.pid, task.address, task.cpu, &task.comm)
}

fn cpu_text(cpu: Option<u32>) -> String {
    cpu.map_or_else(|| "-".to_string(), |c| c.to_string())
}

fn system(report: &SystemReport) -> String {
    let system = &report.system;
    let cpus = match (system.cpus_present, system.cpus_online) {
        (Some(present), Some(online)) if online < present => {
            format!("{present} [OFFLINE: {}]", present - online)
        }
        _ => report.cpus().to_string(),
    };
    let unknown = || "unknown".to_string();
    let machine = match system.cpu_khz {
        Some(khz) => format!("{}  ({} Mhz)", system.utsname.machine, khz / 1000),
        None => system.utsname.machine.clone(),
    };
    let rows = [
        ("DUMPFILE", format!("{:?} dump", report.format)),
        ("CPUS", cpus),
        ("DATE", system.date_text().unwrap_or_else(unknown)),
        ("UPTIME", system.uptime_text().unwrap_or_else(unknown)),
        (
            "LOAD AVERAGE",
            system.load_average_text().unwrap_or_else(unknown),
        ),
        ("NODENAME", system.utsname.nodename.clone()),
        ("RELEASE", system.utsname.release.clone()),
        ("VERSION", system.utsname.version.clone()),
        ("MACHINE", machine),
        ("MEMORY", system.memory_text().unwrap_or_else(unknown)),
        (
            "PANIC",
            (system.panic_message.as_ref()).map_or_else(unknown, |m| format!("\"{m}\"")),
        ),
        (
            "SYMBOLS",
            format!("{} ({})", report.symbols, report.symbols_from),
        ),
    ];
    rows.iter()
        .map(|(key, value)| format!("{key:>12}: {value}\n"))
        .collect()
}

fn tasks(report: &TasksReport) -> String {
    let mut text = String::from("      PID    PPID  CPU       TASK        ST   VSZ    RSS  COMM\n");
    for task in &report.0.tasks {
        let kb = |pages: Option<u64>| pages.map_or(0, |p| p * 4);
        text.push_str(&format!(
            "{} {:>7} {:>7} {:>4}  {:016x}  {:<3} {:>6} {:>6}  {}\n",
            if task.current { '>' } else { ' ' },
            task.pid,
            task.ppid.map_or_else(|| "-".to_string(), |p| p.to_string()),
            cpu_text(task.cpu),
            task.address,
            task.state.crash_name(),
            kb(task.vsz_pages),
            kb(task.rss_pages),
            task.display_comm(),
        ));
    }
    for problem in &report.0.problems {
        text.push_str(&format!("ps: {problem}\n"));
    }
    text
}

fn backtraces(report: &BacktracesReport) -> String {
    let mut text = String::new();
    for one in &report.backtraces {
        let trace = &one.trace;
        text.push_str(&header_of(&one.task));
        text.push('\n');
        for (n, frame) in trace.frames.iter().enumerate() {
            let name = match (&frame.symbol, &frame.module) {
                (Some(symbol), _) => format!("{symbol}+{:#x}", frame.offset),
                (None, Some(module)) => format!("[{module}]+{:#x}", frame.offset),
                (None, None) => "??".to_string(),
            };
            let mark = if frame.is_reliable() { "" } else { " (guess)" };
            text.push_str(&format!(
                " #{n:<2} [{:016x}] {name} at {:016x}{mark}\n",
                frame.sp.wrapping_sub(8),
                frame.pc
            ));
        }
        if let Some(regs) = &trace.user_regs {
            text.push_str(&format!(
                "    from user space: RIP {:016x}  RSP {:016x}\n",
                regs.rip, regs.rsp
            ));
        }
        if let Ending::Error(why) = &trace.ending {
            text.push_str(&format!("    the unwinding stopped: {why}\n"));
        }
        text.push('\n');
    }
    text
}

fn modules(report: &ModulesReport) -> String {
    let mut text =
        String::from("     MODULE        NAME                     BASE           SIZE  TAINTS\n");
    for module in &report.modules {
        text.push_str(&format!(
            "{:016x}  {:<20} {:016x} {:>8}  {}\n",
            module.address,
            module.name,
            module.base,
            module.size,
            module.taint_letters.as_deref().unwrap_or_default()
        ));
    }
    for problem in &report.problems {
        text.push_str(&format!("mod: {problem}\n"));
    }
    text
}

fn files(report: &FilesReport) -> String {
    let files = &report.view;
    let mut text = format!(
        "{}\nROOT: {}    CWD: {}\n FD       FILE            DENTRY           INODE       TYPE PATH\n",
        header_of(&report.task),
        files.root,
        files.cwd
    );
    for file in &files.files {
        text.push_str(&format!(
            "{:>3} {:016x} {:016x} {:016x} {:<4} {}\n",
            file.fd, file.file, file.dentry, file.inode, file.kind, file.path
        ));
    }
    text
}

fn vm(report: &VmReport, page_size: u64) -> String {
    let (task, map) = (&report.task, &report.view);
    let kb = |pages: Option<u64>| pages.map_or(0, |p| p * page_size / 1024);
    let mut text = format!(
        "{}\n       MM               PGD          RSS    TOTAL_VM\n{:016x}  {:016x}  {:>5}k  {:>7}k\n      VMA           START       END     FLAGS FILE\n",
        header_of(task),
        map.mm,
        map.pgd,
        kb(task.rss_pages),
        kb(task.vsz_pages),
    );
    for vma in &map.vmas {
        text.push_str(&format!(
            "{:016x} {:>10x} {:>10x} {:>8x} {}\n",
            vma.address, vma.start, vma.end, vma.flags, vma.file
        ));
    }
    text
}

fn structure(report: &StructReport) -> String {
    let layout = match report {
        StructReport::Value { text, .. } => return text.clone(),
        StructReport::Layout(layout) => layout,
    };
    let mut text = format!("{} {{\n", layout.name);
    for field in &layout.fields {
        let bits = if field.bitfield_size > 0 {
            format!(" : {}", field.bitfield_size)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  [{:#x}] {} {}{bits};\n",
            field.offset, field.type_name, field.name
        ));
    }
    text.push_str(&format!("}}\nSIZE: {}\n", layout.size));
    text
}

fn symbol(report: &SymbolReport) -> String {
    let name = if report.offset == 0 {
        report.symbol.clone()
    } else {
        format!("{}+{:#x}", report.symbol, report.offset)
    };
    format!("{:016x} ({}) {name}\n", report.address, report.kind)
}

/// `rd`: two words a line, with their bytes as ASCII.
fn words_text(memory: &Words) -> String {
    let mut text = String::new();
    for (n, line) in memory.words.chunks(2).enumerate() {
        let at = memory.address + 16 * n as u64;
        text.push_str(&format!("{at:016x}:  "));
        for word in line {
            text.push_str(&format!("{word:016x} "));
        }
        if line.len() < 2 {
            text.push_str(&" ".repeat(17));
        }
        text.push_str("  ");
        text.extend(line.iter().flat_map(|w| w.to_le_bytes()).map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        }));
        text.push('\n');
    }
    text
}

fn disassembly(code: &Disassembly) -> String {
    code.instructions
        .iter()
        .map(|i| format!("{:#x} <{}>:\t{}\n", i.address, i.location, i.text))
        .collect()
}
