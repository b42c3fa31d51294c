//! `kscope crash`: a kernel crash dump read with nothing but the dump.
//!
//! `kscope crash VMCORE CMD [ARGS]` runs one command; `kscope crash VMCORE`
//! opens a shell (line editing and history on a terminal; one command a
//! line from a pipe). The dump's own VMCOREINFO, kallsyms and BTF give the
//! symbols and types; a System.map given with `-s` replaces kallsyms.

use std::cell::OnceCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kscope_btf::Btf;
use kscope_kernel::log::{Log, read_log};
use kscope_kernel::modules::read_modules;
use kscope_kernel::stack::{Ending, Unwinder};
use kscope_kernel::system::read_system;
use kscope_kernel::types::{ValuePrinter, struct_layout};
use kscope_kernel::{KernelSymbol, SymbolTable, read_btf, read_kallsyms};
use kscope_kernel::{
    PerCpu, Task, TaskList, read_files, read_memory_info, read_memory_map, read_tasks,
};
use kscope_vmcore::{KernelMemory, Vmcore, VmcoreInfo};
use serde_json::{Value, json};

use crate::render;

/// Arguments of `kscope crash`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = COMMANDS_HELP)]
pub struct Args {
    /// The dump: an ELF vmcore (/proc/vmcore saved by kdump, QEMU's
    /// dump-guest-memory), a kdump-compressed file (makedumpfile), or
    /// makedumpfile's flattened stream.
    vmcore: PathBuf,

    /// A command and its arguments (see below); without one, a shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,

    /// Take the kernel's symbols from this System.map (moved by the dump's
    /// KASLR offset) instead of the kallsyms tables in the dump.
    #[arg(
        short = 's',
        long,
        value_name = "SYSTEM_MAP",
        conflicts_with = "vmlinux"
    )]
    system_map: Option<PathBuf>,

    /// Take the kernel's symbols from this vmlinux (its .symtab), after
    /// checking its build-id against the dump's.
    #[arg(long, value_name = "VMLINUX")]
    vmlinux: Option<PathBuf>,

    /// Print the command's result as one JSON document (with a command
    /// only).
    #[arg(long)]
    json: bool,
}

const COMMANDS_HELP: &str = "\
Commands:
  sys                 the crashed system: CPUs, date, uptime, release, memory, panic
  log                 the kernel's printk log, as dmesg prints it
  ps                  every task: pid, ppid, CPU, task address, state, memory, name
                      (\">\" marks each CPU's current task)
  bt [PID|TASK|-a]    the kernel stack of a task (default: the one that panicked),
                      or of every CPU's current task (-a)
  mod                 the loaded modules: address, name, base, size
  task [PID|TASK]     a task's task_struct, every member (default: the one that panicked)
  files [PID|TASK]    a task's root, working directory and open files with their paths
  vm [PID|TASK]       a task's memory map: each VMA's start, end, flags and file
  kmem -i             memory: total, free, used, shared, buffers, cache, slab, huge pages,
                      swap, commit limit
  struct TYPE [ADDR|SYMBOL]
                      a struct's layout, or the one at ADDR, from the kernel's BTF
  sym ADDR|NAME       the symbol at an address, or a symbol's address
  rd [-p] ADDR|NAME [COUNT]
                      memory as 64-bit words (-p: a physical address)
  dis ADDR|NAME [COUNT]
                      x86-64 disassembly (a whole function by name)
  help                this list
  quit                leave the shell

Examples:
  kscope crash /var/crash/vmcore sym sysrq_handle_crash
  kscope crash vmcore.kdump --json sys
  kscope crash vmcore                  # a shell";

/// The most words `rd` prints, and instructions `dis` decodes, at once.
const MAX_COUNT: u64 = 1 << 16;

/// Runs `kscope crash`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    super::input::check_file(&args.vmcore, &super::input::VMCORE)?;
    let dump = Vmcore::open(&args.vmcore)
        .with_context(|| format!("cannot read the dump {}", args.vmcore.display()))?;
    let session = Session::open(&dump, args)?;
    match args.command.split_first() {
        Some((name, rest)) => {
            let reply = session.run(name, rest)?;
            if args.json {
                render::json::print(&reply.json)?;
            } else {
                print!("{}", reply.text);
            }
            Ok(ExitCode::SUCCESS)
        }
        None if args.json => bail!("--json needs a command (`kscope crash VMCORE --json sys`)"),
        None => session.shell(),
    }
}

/// A command's result: the text a person reads and the JSON a script does.
struct Reply {
    text: String,
    json: Value,
}

/// An open dump with the kernel's symbols.
struct Session<'a> {
    dump: &'a Vmcore,
    info: &'a VmcoreInfo,
    memory: KernelMemory<'a>,
    /// The System.map given with -s, else kallsyms is decoded.
    system_map: Option<PathBuf>,
    /// The vmlinux given with --vmlinux.
    vmlinux: Option<PathBuf>,
    /// The kernel's symbols, read at the first command that needs them
    /// (`log` does not); the error says why there are none.
    symbols: OnceCell<Result<SymbolTable, String>>,
    /// Where the symbols come from, for `sys`.
    symbols_from: String,
    /// Whether replies are printed as JSON: `log` then reads the BTF for
    /// the records' levels, which the text does not show.
    json: bool,
    /// The kernel's BTF blob, read at the first command that needs types;
    /// the error says why there is none.
    btf: OnceCell<Result<Vec<u8>, String>>,
}

impl<'a> Session<'a> {
    fn open(dump: &'a Vmcore, args: &Args) -> anyhow::Result<Session<'a>> {
        let info = dump.vmcoreinfo().context(
            "the dump has no VMCOREINFO note, which kscope needs to find the kernel in it",
        )?;
        let memory =
            KernelMemory::new(dump).context("cannot translate the dump's kernel addresses")?;
        let symbols_from = match (&args.system_map, &args.vmlinux) {
            (Some(path), _) | (None, Some(path)) => path.display().to_string(),
            (None, None) => "kallsyms in the dump".to_string(),
        };
        Ok(Session {
            dump,
            info,
            memory,
            system_map: args.system_map.clone(),
            vmlinux: args.vmlinux.clone(),
            symbols: OnceCell::new(),
            symbols_from,
            json: args.json,
            btf: OnceCell::new(),
        })
    }

    /// The kernel's symbols, read once: from the System.map (moved by the
    /// KASLR offset), else decoded from kallsyms; with VMCOREINFO's
    /// `SYMBOL()`s added.
    fn symbols(&self) -> anyhow::Result<&SymbolTable> {
        self.symbols
            .get_or_init(|| {
                let offset = self.info.kernel_offset().unwrap_or(0);
                let table = match (&self.system_map, &self.vmlinux) {
                    (Some(path), _) => {
                        SymbolTable::read_system_map(path, offset).map_err(|e| e.to_string())
                    }
                    (None, Some(path)) => {
                        let build_id = self.info.build_id();
                        SymbolTable::read_vmlinux(path, offset, build_id.as_deref())
                            .map_err(|e| e.to_string())
                    }
                    (None, None) => read_kallsyms(&self.memory, self.info).map_err(|e| {
                        format!(
                            "cannot decode the kernel's symbols from the dump ({e}); give a System.map with -s"
                        )
                    }),
                };
                // A file of another build (or a wrong KASLR offset) is
                // refused, not trusted.
                let table = table.and_then(|table| {
                    table
                        .check_against(&vmcoreinfo_symbols(self.info))
                        .map_err(|e| e.to_string())?;
                    Ok(table)
                });
                table.map(|table| with_vmcoreinfo_symbols(table, Some(self.info)))
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The kernel's BTF blob, read once.
    fn btf_blob(&self) -> Result<&[u8], String> {
        self.btf
            .get_or_init(|| {
                let symbols = self.symbols().map_err(|e| e.to_string())?;
                read_btf(&self.memory, symbols).map_err(|e| e.to_string())
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Runs `f` with the kernel's parsed BTF.
    fn with_btf<T>(&self, f: impl FnOnce(&Btf<'_>) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let blob = self
            .btf_blob()
            .map_err(|e| anyhow::anyhow!("the dump's BTF cannot be read: {e}"))?;
        let btf = Btf::parse(blob).map_err(|e| anyhow::anyhow!("the dump's BTF: {e}"))?;
        f(&btf)
    }

    /// Runs one command line's command.
    fn run(&self, name: &str, args: &[String]) -> anyhow::Result<Reply> {
        match name {
            "sys" => self.sys(),
            "log" => self.log(),
            "ps" => self.ps(),
            "bt" => self.bt(args),
            "mod" => self.modules(),
            "task" => self.task(args),
            "files" => self.files(args),
            "kmem" => self.kmem(args),
            "vm" => self.vm(args),
            "struct" => self.structure(args),
            "sym" => self.sym(args),
            "rd" => self.rd(args),
            "dis" => self.dis(args),
            "help" | "?" => Ok(Reply {
                text: format!("{COMMANDS_HELP}\n"),
                json: json!({ "help": COMMANDS_HELP }),
            }),
            _ => bail!("no command {name:?}: `help` lists them"),
        }
    }

    /// The interactive shell: a prompt with line editing on a terminal,
    /// else one command a line from stdin.
    fn shell(&self) -> anyhow::Result<ExitCode> {
        let mut out = std::io::stdout();
        if !std::io::stdin().is_terminal() {
            for line in std::io::stdin().lines() {
                if !self.shell_line(&line?, &mut out)? {
                    break;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let mut editor = rustyline::DefaultEditor::new()?;
        println!(
            "kscope crash: {} ({}); `help` lists the commands.",
            self.dump_name(),
            self.symbols_from
        );
        loop {
            match editor.readline("crash> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        editor.add_history_entry(line.as_str())?;
                    }
                    if !self.shell_line(&line, &mut out)? {
                        break;
                    }
                }
                // Ctrl-C drops the line; Ctrl-D leaves.
                Err(rustyline::error::ReadlineError::Interrupted) => {}
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Runs one shell line; `false` to leave.
    fn shell_line(&self, line: &str, out: &mut impl Write) -> anyhow::Result<bool> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let Some((name, rest)) = words.split_first() else {
            return Ok(true);
        };
        if matches!(name.as_str(), "quit" | "exit" | "q") {
            return Ok(false);
        }
        match self.run(name, rest) {
            Ok(reply) => out.write_all(reply.text.as_bytes())?,
            Err(err) => writeln!(out, "{name}: {err:#}")?,
        }
        out.flush()?;
        Ok(true)
    }

    fn dump_name(&self) -> String {
        format!("{:?} dump", self.dump.format())
    }

    /// The printk log, read with the BTF when there is one (levels).
    fn read_log(&self) -> anyhow::Result<Log> {
        let log = match self.btf_blob() {
            Ok(blob) => {
                let btf = Btf::parse(blob).ok();
                read_log(&self.memory, self.info, btf.as_ref())
            }
            Err(_) => read_log(&self.memory, self.info, None),
        };
        log.context("cannot read the kernel's log")
    }

    /// `log`: the printk log as `dmesg` (and makedumpfile) prints it. The
    /// text needs nothing but VMCOREINFO; the JSON's levels need the BTF,
    /// and so the symbols.
    fn log(&self) -> anyhow::Result<Reply> {
        let log = if self.json {
            self.read_log()?
        } else {
            read_log(&self.memory, self.info, None).context("cannot read the kernel's log")?
        };
        let records: Vec<Value> = log
            .records
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq,
                    "ts_nsec": r.ts_nsec,
                    "level": r.level,
                    "text": r.text_lossy(),
                })
            })
            .collect();
        Ok(Reply {
            text: log.dmesg(),
            json: json!({ "records": records, "skipped": log.skipped }),
        })
    }

    /// `sys`: the crashed system, as crash's `sys` shows it.
    fn sys(&self) -> anyhow::Result<Reply> {
        let log = self.read_log().ok();
        let system = match self.btf_blob() {
            Ok(blob) => {
                let btf = Btf::parse(blob).ok();
                read_system(
                    &self.memory,
                    self.info,
                    self.symbols()?,
                    btf.as_ref(),
                    log.as_ref(),
                )
            }
            Err(_) => read_system(&self.memory, self.info, self.symbols()?, None, log.as_ref()),
        }
        .context("cannot read the crashed system's identity")?;
        let cpus = match (system.cpus_present, system.cpus_online) {
            (Some(present), Some(online)) if online < present => {
                format!("{present} [OFFLINE: {}]", present - online)
            }
            (Some(present), _) => present.to_string(),
            (None, _) => self.dump.cpus().len().to_string(),
        };
        let unknown = || "unknown".to_string();
        let machine = match system.cpu_khz {
            Some(khz) => format!("{}  ({} Mhz)", system.utsname.machine, khz / 1000),
            None => system.utsname.machine.clone(),
        };
        let rows = [
            ("DUMPFILE", self.dump_name()),
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
                system
                    .panic_message
                    .as_ref()
                    .map_or_else(unknown, |m| format!("\"{m}\"")),
            ),
            (
                "SYMBOLS",
                format!("{} ({})", self.symbols()?.len(), self.symbols_from),
            ),
        ];
        let mut text = String::new();
        for (key, value) in &rows {
            text.push_str(&format!("{key:>12}: {value}\n"));
        }
        Ok(Reply {
            text,
            json: json!({
                "release": system.utsname.release,
                "version": system.utsname.version,
                "machine": system.utsname.machine,
                "nodename": system.utsname.nodename,
                "cpus": system.cpus_present.map_or(self.dump.cpus().len() as u64, u64::from),
                "cpus_online": system.cpus_online,
                "panic_cpu": system.panic_cpu,
                "panic": system.panic_message,
                "date": system.date,
                "uptime_seconds": system.uptime_secs(),
                "memory_bytes": system.memory_bytes(),
                "kaslr_offset": self.info.kernel_offset().unwrap_or(0),
                "symbols": self.symbols()?.len(),
                "symbols_from": self.symbols_from,
            }),
        })
    }

    /// Every task, with the BTF.
    fn tasks(&self, btf: &Btf<'_>) -> anyhow::Result<TaskList> {
        read_tasks(&self.memory, self.symbols()?, btf).context("cannot read the task list")
    }

    /// `ps`: every task, as crash's `ps` lays it out.
    fn ps(&self) -> anyhow::Result<Reply> {
        self.with_btf(|btf| {
            let list = self.tasks(btf)?;
            let mut text = String::from(
                "      PID    PPID  CPU       TASK        ST   VSZ    RSS  COMM\n",
            );
            let mut rows = Vec::new();
            for task in &list.tasks {
                let kb = |pages: Option<u64>| pages.map_or(0, |p| p * 4);
                text.push_str(&format!(
                    "{} {:>7} {:>7} {:>4}  {:016x}  {:<3} {:>6} {:>6}  {}\n",
                    if task.current { '>' } else { ' ' },
                    task.pid,
                    task.ppid.map_or_else(|| "-".to_string(), |p| p.to_string()),
                    task.cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
                    task.address,
                    task.state.crash_name(),
                    kb(task.vsz_pages),
                    kb(task.rss_pages),
                    task.display_comm(),
                ));
                rows.push(json!({
                    "pid": task.pid,
                    "tgid": task.tgid,
                    "ppid": task.ppid,
                    "cpu": task.cpu,
                    "task": task.address,
                    "state": task.state.crash_name(),
                    "current": task.current,
                    "idle": task.idle,
                    "kernel_thread": task.is_kernel_thread(),
                    "vsz_pages": task.vsz_pages,
                    "rss_pages": task.rss_pages,
                    "comm": task.comm,
                }));
            }
            for problem in &list.problems {
                text.push_str(&format!("ps: {problem}\n"));
            }
            Ok(Reply {
                text,
                json: json!({ "tasks": rows, "panic_cpu": list.panic_cpu, "problems": list.problems }),
            })
        })
    }

    /// `bt [PID|TASK|-a]`: kernel stacks, through the kernel's ORC tables.
    fn bt(&self, args: &[String]) -> anyhow::Result<Reply> {
        self.with_btf(|btf| {
            let list = self.tasks(btf)?;
            let per_cpu = PerCpu::read(&self.memory, self.symbols()?)?;
            let mut unwinder = Unwinder::new(
                &self.memory,
                self.symbols()?,
                btf,
                &per_cpu,
                self.dump.cpus(),
            )
            .context("cannot set up the kernel stack unwinder")?;
            if let Ok(modules) = read_modules(&self.memory, self.symbols()?, btf) {
                for module in &modules.modules {
                    // A module without ORC still names its frames.
                    let _ = unwinder.add_module(module);
                }
            }
            let tasks: Vec<&Task> = match args {
                [] => vec![
                    list.panic_task()
                        .or_else(|| list.current_on(0))
                        .context("no task panicked and CPU 0 has no current task")?,
                ],
                [all] if all == "-a" => list.tasks.iter().filter(|t| t.current).collect(),
                [word] => {
                    let found: Vec<&Task> = match word.parse::<i32>() {
                        Ok(pid) if !word.starts_with("0x") => list.with_pid(pid).collect(),
                        _ => list.at(self.address(word)?).into_iter().collect(),
                    };
                    if found.is_empty() {
                        bail!("no task {word} (a pid, or a task_struct address)");
                    }
                    found
                }
                _ => bail!("usage: bt [PID|TASK|-a]"),
            };
            let mut text = String::new();
            let mut traces = Vec::new();
            for task in tasks {
                let trace = unwinder.backtrace(task);
                text.push_str(&format!(
                    "PID: {:<7} TASK: {:016x}  CPU: {}  COMMAND: \"{}\"\n",
                    task.pid,
                    task.address,
                    task.cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
                    task.comm
                ));
                let mut frames = Vec::new();
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
                    frames.push(json!({
                        "pc": frame.pc,
                        "sp": frame.sp,
                        "symbol": frame.symbol,
                        "offset": frame.offset,
                        "module": frame.module,
                        "source": format!("{:?}", frame.source).to_lowercase(),
                        "exact": frame.exact,
                        "reliable": frame.is_reliable(),
                    }));
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
                traces.push(json!({
                    "pid": task.pid,
                    "task": task.address,
                    "cpu": task.cpu,
                    "comm": task.comm,
                    "frames": frames,
                    "user_rip": trace.user_regs.as_ref().map(|r| r.rip),
                    "ending": format!("{:?}", trace.ending),
                }));
            }
            Ok(Reply {
                text,
                json: json!({ "backtraces": traces }),
            })
        })
    }

    /// The task an optional `PID|TASK` argument names: by default the one
    /// that panicked (or CPU 0's current task).
    fn pick_task<'l>(
        &self,
        list: &'l TaskList,
        args: &[String],
        usage: &str,
    ) -> anyhow::Result<&'l Task> {
        match args {
            [] => list
                .panic_task()
                .or_else(|| list.current_on(0))
                .context("no task panicked and CPU 0 has no current task"),
            [word] => match word.parse::<i32>() {
                Ok(pid) if !word.starts_with("0x") => list.with_pid(pid).next(),
                _ => list.at(self.address(word)?),
            }
            .with_context(|| format!("no task {word} (a pid, or a task_struct address)")),
            _ => bail!("usage: {usage}"),
        }
    }

    /// `files [PID|TASK]`: the task's root, working directory and open
    /// files.
    fn files(&self, args: &[String]) -> anyhow::Result<Reply> {
        self.with_btf(|btf| {
            let list = self.tasks(btf)?;
            let task = self.pick_task(&list, args, "files [PID|TASK]")?;
            let files = read_files(&self.memory, btf, task)?;
            let mut text = format!(
                "PID: {:<7} TASK: {:016x}  CPU: {}  COMMAND: \"{}\"\nROOT: {}    CWD: {}\n FD       FILE            DENTRY           INODE       TYPE PATH\n",
                task.pid,
                task.address,
                task.cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
                task.comm,
                files.root,
                files.cwd
            );
            let mut rows = Vec::new();
            for file in &files.files {
                text.push_str(&format!(
                    "{:>3} {:016x} {:016x} {:016x} {:<4} {}\n",
                    file.fd, file.file, file.dentry, file.inode, file.kind, file.path
                ));
                rows.push(json!({
                    "fd": file.fd,
                    "file": file.file,
                    "dentry": file.dentry,
                    "inode": file.inode,
                    "type": file.kind,
                    "path": file.path,
                }));
            }
            Ok(Reply {
                text,
                json: json!({
                    "pid": task.pid,
                    "task": task.address,
                    "root": files.root,
                    "cwd": files.cwd,
                    "files": rows,
                }),
            })
        })
    }

    /// `vm [PID|TASK]`: the task's memory map.
    fn vm(&self, args: &[String]) -> anyhow::Result<Reply> {
        self.with_btf(|btf| {
            let list = self.tasks(btf)?;
            let task = self.pick_task(&list, args, "vm [PID|TASK]")?;
            let map = read_memory_map(&self.memory, btf, task)?;
            let kb = |pages: Option<u64>| pages.map_or(0, |p| p * self.dump.page_size() / 1024);
            let mut text = format!(
                "PID: {:<7} TASK: {:016x}  CPU: {}  COMMAND: \"{}\"\n       MM               PGD          RSS    TOTAL_VM\n{:016x}  {:016x}  {:>5}k  {:>7}k\n      VMA           START       END     FLAGS FILE\n",
                task.pid,
                task.address,
                task.cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
                task.comm,
                map.mm,
                map.pgd,
                kb(task.rss_pages),
                kb(task.vsz_pages),
            );
            let mut rows = Vec::new();
            for vma in &map.vmas {
                text.push_str(&format!(
                    "{:016x} {:>10x} {:>10x} {:>8x} {}\n",
                    vma.address, vma.start, vma.end, vma.flags, vma.file
                ));
                rows.push(json!({
                    "vma": vma.address,
                    "start": vma.start,
                    "end": vma.end,
                    "flags": vma.flags,
                    "file": vma.file,
                }));
            }
            Ok(Reply {
                text,
                json: json!({ "pid": task.pid, "task": task.address, "mm": map.mm, "pgd": map.pgd, "vmas": rows }),
            })
        })
    }

    /// `kmem -i`: the memory summary.
    fn kmem(&self, args: &[String]) -> anyhow::Result<Reply> {
        if args.first().map(String::as_str) != Some("-i") || args.len() != 1 {
            bail!("usage: kmem -i (the other kmem views are not there yet)");
        }
        self.with_btf(|btf| {
            let info = read_memory_info(&self.memory, self.symbols()?, btf, self.dump.page_size())?;
            Ok(Reply {
                text: info.kmem_text(),
                json: json!({
                    "page_size": info.page_size,
                    "total": info.total,
                    "free": info.free,
                    "shared": info.shared,
                    "buffers": info.buffers,
                    "cached": info.cached,
                    "slab": info.slab,
                    "huge_total": info.huge_total,
                    "huge_free": info.huge_free,
                    "swap_total": info.swap_total,
                    "swap_free": info.swap_free,
                    "commit_limit": info.commit_limit,
                    "committed": info.committed,
                }),
            })
        })
    }

    /// `task [PID|TASK]`: the task's `task_struct`, printed whole.
    fn task(&self, args: &[String]) -> anyhow::Result<Reply> {
        self.with_btf(|btf| {
            let list = self.tasks(btf)?;
            let task = self.pick_task(&list, args, "task [PID|TASK]")?;
            let body = ValuePrinter::new(btf)
                .with_symbols(self.symbols()?)
                .with_memory(&self.memory)
                .print_struct("task_struct", task.address)?;
            let text = format!(
                "PID: {:<7} TASK: {:016x}  CPU: {}  COMMAND: \"{}\"\n{body}",
                task.pid,
                task.address,
                task.cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
                task.comm
            );
            Ok(Reply {
                json: json!({ "pid": task.pid, "task": task.address, "comm": task.comm, "text": body }),
                text,
            })
        })
    }

    /// `mod`: the loaded modules.
    fn modules(&self) -> anyhow::Result<Reply> {
        self.with_btf(|btf| {
            let list = read_modules(&self.memory, self.symbols()?, btf)
                .context("cannot read the module list")?;
            let mut text = String::from(
                "     MODULE        NAME                     BASE           SIZE  TAINTS\n",
            );
            let mut rows = Vec::new();
            for module in &list.modules {
                let taints = module.taint_letters.clone().unwrap_or_default();
                text.push_str(&format!(
                    "{:016x}  {:<20} {:016x} {:>8}  {taints}\n",
                    module.address, module.name, module.base, module.size
                ));
                rows.push(json!({
                    "module": module.address,
                    "name": module.name,
                    "base": module.base,
                    "size": module.size,
                    "text_size": module.text_size,
                    "state": format!("{:?}", module.state).to_lowercase(),
                    "taints": taints,
                }));
            }
            for problem in &list.problems {
                text.push_str(&format!("mod: {problem}\n"));
            }
            Ok(Reply {
                text,
                json: json!({ "modules": rows, "problems": list.problems }),
            })
        })
    }

    /// `struct TYPE [ADDR]`: a type's layout, or an instance of it in the
    /// dump's memory, through the kernel's BTF.
    fn structure(&self, args: &[String]) -> anyhow::Result<Reply> {
        let (name, address) = match args {
            [name] => (name, None),
            [name, address] => (name, Some(self.address(address)?)),
            _ => bail!("usage: struct TYPE [ADDR|SYMBOL]"),
        };
        self.with_btf(|btf| match address {
            Some(address) => {
                let text = ValuePrinter::new(btf)
                    .with_symbols(self.symbols()?)
                    .with_memory(&self.memory)
                    .print_struct(name, address)?;
                Ok(Reply {
                    json: json!({ "type": name, "address": address, "text": text }),
                    text,
                })
            }
            None => {
                let layout = struct_layout(btf, name)?;
                let mut text = format!("{} {{\n", layout.name);
                let mut fields = Vec::new();
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
                    fields.push(json!({
                        "name": field.name,
                        "type": field.type_name,
                        "offset": field.offset,
                        "bit_offset": field.bit_offset,
                        "bitfield_size": field.bitfield_size,
                        "size": field.size,
                    }));
                }
                text.push_str(&format!("}}\nSIZE: {}\n", layout.size));
                Ok(Reply {
                    text,
                    json: json!({ "type": layout.name, "size": layout.size, "fields": fields }),
                })
            }
        })
    }

    /// An address given as hex (with or without 0x) or as a symbol name.
    fn address(&self, word: &str) -> anyhow::Result<u64> {
        if let Some(address) = self.symbols()?.address(word) {
            return Ok(address);
        }
        let digits = word.strip_prefix("0x").unwrap_or(word);
        u64::from_str_radix(digits, 16)
            .with_context(|| format!("{word:?} is neither a symbol nor a hex address"))
    }

    /// `name+0xoff` for an address, or the address alone.
    fn describe(&self, address: u64) -> String {
        match self
            .symbols()
            .ok()
            .and_then(|symbols| symbols.lookup(address))
        {
            Some((symbol, 0)) => symbol.name.clone(),
            Some((symbol, offset)) => format!("{}+{offset:#x}", symbol.name),
            None => format!("{address:#x}"),
        }
    }

    /// `sym ADDR|NAME`.
    fn sym(&self, args: &[String]) -> anyhow::Result<Reply> {
        let [word] = args else {
            bail!("usage: sym ADDR|NAME");
        };
        let address = self.address(word)?;
        // A name is answered with that symbol, not another one at the same
        // address (swapper_pg_dir and init_top_pgt).
        let symbols = self.symbols()?;
        let named = symbols
            .get(word)
            .filter(|s| s.address == address)
            .map(|s| (s, 0));
        let Some((symbol, offset)) = named.or_else(|| symbols.lookup(address)) else {
            bail!("no symbol at or below {address:#x}");
        };
        let name = if offset == 0 {
            symbol.name.clone()
        } else {
            format!("{}+{offset:#x}", symbol.name)
        };
        Ok(Reply {
            text: format!("{address:016x} ({}) {name}\n", symbol.kind),
            json: json!({
                "address": address,
                "kind": symbol.kind.to_string(),
                "symbol": symbol.name,
                "symbol_address": symbol.address,
                "offset": offset,
            }),
        })
    }

    /// `rd [-p] ADDR|NAME [COUNT]`: 64-bit words, two a line, with their
    /// bytes as ASCII.
    fn rd(&self, args: &[String]) -> anyhow::Result<Reply> {
        let (physical, args) = match args.split_first() {
            Some((flag, rest)) if flag == "-p" => (true, rest),
            _ => (false, args),
        };
        let (word, count) = match args {
            [word] => (word, 1),
            [word, count] => (word, parse_count(count)?),
            _ => bail!("usage: rd [-p] ADDR|NAME [COUNT]"),
        };
        let start = if physical {
            let digits = word.strip_prefix("0x").unwrap_or(word);
            u64::from_str_radix(digits, 16)
                .with_context(|| format!("{word:?} is not a hex address"))?
        } else {
            self.address(word)?
        };
        let len = usize::try_from(count * 8)?;
        let mut bytes = vec![0; len];
        if physical {
            self.dump.read_phys(start, &mut bytes)?;
        } else {
            self.memory.read_virt(start, &mut bytes)?;
        }
        let mut text = String::new();
        let mut words = Vec::new();
        for (n, line) in bytes.chunks(16).enumerate() {
            let at = start + 16 * n as u64;
            text.push_str(&format!("{at:016x}:  "));
            for word in line.chunks(8) {
                let value = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                words.push(value);
                text.push_str(&format!("{value:016x} "));
            }
            if line.len() < 16 {
                text.push_str(&" ".repeat(17));
            }
            text.push_str("  ");
            text.extend(line.iter().map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            }));
            text.push('\n');
        }
        Ok(Reply {
            text,
            json: json!({ "address": start, "physical": physical, "words": words }),
        })
    }

    /// `dis ADDR|NAME [COUNT]`: AT&T syntax, as crash and gdb print it,
    /// with branch targets named. A name without a count is the whole
    /// function (up to the next symbol).
    fn dis(&self, args: &[String]) -> anyhow::Result<Reply> {
        use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, OpKind};
        let (word, count) = match args {
            [word] => (word, None),
            [word, count] => (word, Some(parse_count(count)?)),
            _ => bail!("usage: dis ADDR|NAME [COUNT]"),
        };
        let start = self.address(word)?;
        // A function ends where the next symbol starts; a bare address or
        // a count reads enough for the count.
        let end = match (count, self.symbols()?.lookup(start)) {
            (None, Some((symbol, 0))) => self
                .symbols()?
                .symbols()
                .iter()
                .find(|s| s.address > symbol.address)
                .map_or(start + 256, |next| next.address.min(start + (1 << 16))),
            (Some(count), _) => start + count * 15,
            (None, _) => start + 15,
        };
        let want = count.unwrap_or(u64::MAX);
        let len = usize::try_from(end - start)?;
        let mut code = vec![0; len];
        read_prefix(&self.memory, start, &mut code)?;
        let mut decoder = Decoder::with_ip(64, &code, start, DecoderOptions::NONE);
        let mut formatter = GasFormatter::new();
        // As gdb (and so crash) spell it: lower-case 0x hex, operands in a
        // column.
        formatter.options_mut().set_uppercase_hex(false);
        formatter.options_mut().set_hex_prefix("0x");
        formatter.options_mut().set_hex_suffix("");
        formatter.options_mut().set_first_operand_char_index(7);
        let mut instruction = Instruction::default();
        let mut text = String::new();
        let mut rows = Vec::new();
        let mut decoded = 0;
        while decoder.can_decode() && decoded < want {
            decoder.decode_out(&mut instruction);
            if instruction.is_invalid() && count.is_none() {
                break;
            }
            let mut assembly = String::new();
            formatter.format(&instruction, &mut assembly);
            let branch = instruction.op_count() > 0
                && matches!(
                    instruction.op0_kind(),
                    OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
                );
            if branch {
                let target = instruction.near_branch_target();
                assembly.push_str(&format!(" <{}>", self.describe(target)));
            }
            let at = instruction.ip();
            text.push_str(&format!("{at:#x} <{}>:\t{assembly}\n", self.describe(at)));
            rows.push(json!({ "address": at, "length": instruction.len(), "text": assembly }));
            decoded += 1;
        }
        Ok(Reply {
            text,
            json: json!({ "address": start, "instructions": rows }),
        })
    }
}

/// The `SYMBOL()` entries of VMCOREINFO that are symbol addresses
/// (`mem_section` is the pointer's value).
fn vmcoreinfo_symbols(info: &VmcoreInfo) -> Vec<(String, u64)> {
    info.entries()
        .filter_map(|(key, _)| key.strip_prefix("SYMBOL(")?.strip_suffix(')'))
        .filter(|name| *name != "mem_section")
        .filter_map(|name| Some((name.to_string(), info.symbol(name)?)))
        .collect()
}

/// `symbols` and the `SYMBOL()` entries of VMCOREINFO it lacks: kallsyms
/// leaves out its own tables (`kallsyms_names`...), which VMCOREINFO
/// names. `mem_section` is not an address there but the pointer's value.
/// Their kind is unknown: `?`.
fn with_vmcoreinfo_symbols(
    symbols: SymbolTable,
    info: Option<&kscope_vmcore::VmcoreInfo>,
) -> SymbolTable {
    let Some(info) = info else {
        return symbols;
    };
    let extra: Vec<KernelSymbol> = vmcoreinfo_symbols(info)
        .into_iter()
        .filter(|(name, _)| symbols.address(name).is_none())
        .map(|(name, address)| KernelSymbol {
            name,
            address,
            kind: '?',
        })
        .collect();
    if extra.is_empty() {
        return symbols;
    }
    let mut all = symbols.symbols().to_vec();
    all.extend(extra);
    SymbolTable::new(all)
}

/// A count argument: decimal, or hex with 0x; 1 to [`MAX_COUNT`].
fn parse_count(word: &str) -> anyhow::Result<u64> {
    let count = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    }
    .with_context(|| format!("{word:?} is not a count"))?;
    if count == 0 || count > MAX_COUNT {
        bail!("a count is 1 to {MAX_COUNT}");
    }
    Ok(count)
}

/// Reads as much of `buf` as the dump holds from `start` on: code near the
/// end of a mapping is still disassembled up to it.
fn read_prefix(memory: &KernelMemory<'_>, start: u64, buf: &mut [u8]) -> anyhow::Result<()> {
    let first = buf.len().min(4096 - (start % 4096) as usize);
    memory
        .read_virt(start, &mut buf[..first])
        .with_context(|| format!("cannot read kernel memory at {start:#x}"))?;
    let mut done = first;
    while done < buf.len() {
        let n = (buf.len() - done).min(4096);
        if memory
            .read_virt(start + done as u64, &mut buf[done..done + n])
            .is_err()
        {
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}
