//! crash's commands as helpers over a [`Kernel`], as drgn's helpers sit
//! over its `Program`: each reads what it needs through the session
//! (symbols and BTF read once) and returns a value that serializes to the
//! command's JSON; `kscope crash` prints it as text or JSON.
//!
//! This module holds the commands about the system and its tasks (`sys`,
//! `log`, `ps`, `bt`, `mod`, `task`, `files`, `vm`, `kmem -i`);
//! [`memory`] those that read memory or types at an address (`struct`,
//! `sym`, `rd`, `dis`).

pub mod memory;

use kscope_btf::Btf;
use serde::{Serialize, Serializer};

use crate::kmem::{MemoryInfo, read_memory_info};
use crate::log::Log;
use crate::modules::{Module, read_modules};
use crate::stack::{Backtrace, Unwinder};
use crate::system::{SystemInfo, read_system};
use crate::tasks::{PerCpu, Task, TaskList};
use crate::types::ValuePrinter;
use crate::{Error, Kernel, MemoryMap, TaskFiles, read_files, read_memory_map};
use kscope_vmcore::DumpFormat;

pub use memory::{Disassembly, Instruction, MAX_COUNT, StructReport, SymbolReport, Words};

/// `sys`: the crashed system, with where its dump and symbols come from.
#[derive(Debug, Clone)]
pub struct SystemReport {
    /// What the kernel's variables say.
    pub system: SystemInfo,
    /// The dump's format.
    pub format: DumpFormat,
    /// How many CPUs the dump has registers for (the count when the
    /// kernel's masks cannot be read).
    pub dump_cpus: usize,
    /// The KASLR offset (0 without KASLR).
    pub kaslr_offset: u64,
    /// How many symbols the table has.
    pub symbols: usize,
    /// Where they come from.
    pub symbols_from: String,
}

impl SystemReport {
    /// How many CPUs there were: present, else as many as the dump has.
    pub fn cpus(&self) -> u64 {
        self.system
            .cpus_present
            .map_or(self.dump_cpus as u64, u64::from)
    }
}

impl Serialize for SystemReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'r> {
            release: &'r str,
            version: &'r str,
            machine: &'r str,
            nodename: &'r str,
            cpus: u64,
            cpus_online: Option<u32>,
            panic_cpu: Option<u32>,
            panic: &'r Option<String>,
            date: Option<i64>,
            uptime_seconds: Option<u64>,
            memory_bytes: Option<u64>,
            kaslr_offset: u64,
            symbols: usize,
            symbols_from: &'r str,
        }
        let system = &self.system;
        Json {
            release: &system.utsname.release,
            version: &system.utsname.version,
            machine: &system.utsname.machine,
            nodename: &system.utsname.nodename,
            cpus: self.cpus(),
            cpus_online: system.cpus_online,
            panic_cpu: system.panic_cpu,
            panic: &system.panic_message,
            date: system.date,
            uptime_seconds: system.uptime_secs(),
            memory_bytes: system.memory_bytes(),
            kaslr_offset: self.kaslr_offset,
            symbols: self.symbols,
            symbols_from: &self.symbols_from,
        }
        .serialize(serializer)
    }
}

/// `log`: the printk log; its JSON has each record's sequence number,
/// timestamp, level and text.
#[derive(Debug, Clone)]
pub struct LogReport(pub Log);

impl Serialize for LogReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Record {
            seq: u64,
            ts_nsec: u64,
            level: Option<u8>,
            text: String,
        }
        #[derive(Serialize)]
        struct Json {
            records: Vec<Record>,
            skipped: u64,
        }
        Json {
            records: (self.0.records.iter())
                .map(|r| Record {
                    seq: r.seq,
                    ts_nsec: r.ts_nsec,
                    level: r.level,
                    text: r.text_lossy(),
                })
                .collect(),
            skipped: self.0.skipped,
        }
        .serialize(serializer)
    }
}

/// A task as the JSON of `ps` lists it.
#[derive(Serialize)]
struct TaskRow<'t> {
    pid: i32,
    tgid: i32,
    ppid: Option<i32>,
    cpu: Option<u32>,
    task: u64,
    state: &'static str,
    current: bool,
    idle: bool,
    kernel_thread: bool,
    vsz_pages: Option<u64>,
    rss_pages: Option<u64>,
    comm: &'t str,
}

/// `ps`: every task, and what could not be read.
#[derive(Debug, Clone)]
pub struct TasksReport(pub TaskList);

impl Serialize for TasksReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'r> {
            tasks: Vec<TaskRow<'r>>,
            panic_cpu: Option<u32>,
            problems: &'r [String],
        }
        let list = &self.0;
        Json {
            tasks: (list.tasks.iter())
                .map(|task| TaskRow {
                    pid: task.pid,
                    tgid: task.tgid,
                    ppid: task.ppid,
                    cpu: task.cpu,
                    task: task.address,
                    state: task.state.crash_name(),
                    current: task.current,
                    idle: task.idle,
                    kernel_thread: task.is_kernel_thread(),
                    vsz_pages: task.vsz_pages,
                    rss_pages: task.rss_pages,
                    comm: &task.comm,
                })
                .collect(),
            panic_cpu: list.panic_cpu,
            problems: &list.problems,
        }
        .serialize(serializer)
    }
}

/// Which tasks `bt` unwinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacktraceOf<'w> {
    /// The task that panicked (else CPU 0's current task).
    Panicked,
    /// Every CPU's current task.
    EveryCpu,
    /// The tasks of a pid, or the task at an address (`PID|TASK`).
    Named(&'w str),
}

/// `bt`: tasks and their kernel stacks.
#[derive(Debug, Clone, Serialize)]
pub struct BacktracesReport {
    /// Each task with its stack.
    pub backtraces: Vec<TaskBacktrace>,
}

/// A task and its kernel stack.
#[derive(Debug, Clone)]
pub struct TaskBacktrace {
    /// The task.
    pub task: Task,
    /// Its stack.
    pub trace: Backtrace,
}

impl Serialize for TaskBacktrace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Frame<'r> {
            pc: u64,
            sp: u64,
            symbol: &'r Option<String>,
            offset: u64,
            module: &'r Option<String>,
            source: crate::FrameSource,
            exact: bool,
            reliable: bool,
        }
        #[derive(Serialize)]
        struct Json<'r> {
            pid: i32,
            task: u64,
            cpu: Option<u32>,
            comm: &'r str,
            frames: Vec<Frame<'r>>,
            user_rip: Option<u64>,
            ending: &'r crate::stack::Ending,
        }
        let (task, trace) = (&self.task, &self.trace);
        Json {
            pid: task.pid,
            task: task.address,
            cpu: task.cpu,
            comm: &task.comm,
            frames: (trace.frames.iter())
                .map(|frame| Frame {
                    pc: frame.pc,
                    sp: frame.sp,
                    symbol: &frame.symbol,
                    offset: frame.offset,
                    module: &frame.module,
                    source: frame.source,
                    exact: frame.exact,
                    reliable: frame.is_reliable(),
                })
                .collect(),
            user_rip: trace.user_regs.as_ref().map(|r| r.rip),
            ending: &trace.ending,
        }
        .serialize(serializer)
    }
}

/// `mod`: the loaded modules, and what could not be read.
#[derive(Debug, Clone)]
pub struct ModulesReport {
    /// The modules.
    pub modules: Vec<Module>,
    /// What could not be read.
    pub problems: Vec<String>,
}

impl Serialize for ModulesReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Row<'r> {
            module: u64,
            name: &'r str,
            base: u64,
            size: u64,
            text_size: u64,
            state: crate::modules::ModuleState,
            taints: &'r str,
        }
        #[derive(Serialize)]
        struct Json<'r> {
            modules: Vec<Row<'r>>,
            problems: &'r [String],
        }
        Json {
            modules: (self.modules.iter())
                .map(|module| Row {
                    module: module.address,
                    name: &module.name,
                    base: module.base,
                    size: module.size,
                    text_size: module.text_size,
                    state: module.state,
                    taints: module.taint_letters.as_deref().unwrap_or_default(),
                })
                .collect(),
            problems: &self.problems,
        }
        .serialize(serializer)
    }
}

/// `task`: a task's `task_struct`, printed whole as crash prints it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// The task's pid.
    pub pid: i32,
    /// Its `task_struct`'s address.
    #[serde(rename = "task")]
    pub address: u64,
    /// The CPU it last ran on.
    #[serde(skip)]
    pub cpu: Option<u32>,
    /// Its name.
    pub comm: String,
    /// The `task_struct`, printed.
    pub text: String,
}

/// What a command shows of one task (its files, its memory map): JSON
/// with the task's `pid` and `task` (its address) and the view's own
/// members.
#[derive(Debug, Clone)]
pub struct OfTask<T> {
    /// The task.
    pub task: Task,
    /// What is shown of it.
    pub view: T,
}

impl<T: Serialize> Serialize for OfTask<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'r, T> {
            pid: i32,
            task: u64,
            #[serde(flatten)]
            view: &'r T,
        }
        Json {
            pid: self.task.pid,
            task: self.task.address,
            view: &self.view,
        }
        .serialize(serializer)
    }
}

/// `files`: a task's root, working directory and open files.
pub type FilesReport = OfTask<TaskFiles>;

/// `vm`: a task's memory map.
pub type VmReport = OfTask<MemoryMap>;

impl Kernel<'_> {
    /// `sys`: the crashed system, its panic read from the log when there
    /// is one.
    ///
    /// # Errors
    ///
    /// As [`Kernel::symbols`] and [`read_system`], in the context `cannot
    /// read the crashed system's identity`.
    pub fn system(&self) -> Result<SystemReport, Error> {
        let log = self.log(true).ok();
        let btf = self.btf().ok();
        let symbols = self.symbols()?;
        let system = read_system(self.memory(), self.info(), symbols, btf, log.as_ref())
            .map_err(|e| e.context("cannot read the crashed system's identity"))?;
        Ok(SystemReport {
            system,
            format: self.dump().format(),
            dump_cpus: self.dump().cpus().len(),
            kaslr_offset: self.info().kernel_offset().unwrap_or(0),
            symbols: symbols.len(),
            symbols_from: self.source().describe(),
        })
    }

    /// `ps`: every task.
    ///
    /// # Errors
    ///
    /// As [`Kernel::tasks`].
    pub fn ps(&self) -> Result<TasksReport, Error> {
        self.tasks().map(TasksReport)
    }

    /// `bt`: the kernel stacks of `which` tasks, unwound through the
    /// kernel's ORC tables and those of its modules.
    ///
    /// # Errors
    ///
    /// As [`Kernel::tasks`]; when the unwinder cannot be set up; and
    /// [`Error::Argument`] when no task is so named.
    pub fn backtraces(&self, which: BacktraceOf<'_>) -> Result<BacktracesReport, Error> {
        let btf = self.btf()?;
        let list = self.tasks()?;
        let symbols = self.symbols()?;
        let per_cpu = PerCpu::read(self.memory(), symbols)?;
        let mut unwinder = Unwinder::new(self.memory(), symbols, btf, &per_cpu, self.dump().cpus())
            .map_err(|e| e.context("cannot set up the kernel stack unwinder"))?;
        if let Ok(modules) = read_modules(self.memory(), symbols, btf) {
            for module in &modules.modules {
                // A module without ORC still names its frames.
                let _ = unwinder.add_module(module);
            }
        }
        let tasks: Vec<&Task> = match which {
            BacktraceOf::Panicked => vec![self.task(&list, None)?],
            BacktraceOf::EveryCpu => list.tasks.iter().filter(|t| t.current).collect(),
            BacktraceOf::Named(word) => {
                let found = self.tasks_named(&list, word)?;
                if found.is_empty() {
                    return Err(Error::Argument(format!(
                        "no task {word} (a pid, or a task_struct address)"
                    )));
                }
                found
            }
        };
        let backtraces = (tasks.into_iter())
            .map(|task| TaskBacktrace {
                trace: unwinder.backtrace(task),
                task: task.clone(),
            })
            .collect();
        Ok(BacktracesReport { backtraces })
    }

    /// `mod`: the loaded modules.
    ///
    /// # Errors
    ///
    /// As [`Kernel::btf`] and [`read_modules`], in the context `cannot
    /// read the module list`.
    pub fn modules(&self) -> Result<ModulesReport, Error> {
        let btf = self.btf()?;
        let list = read_modules(self.memory(), self.symbols()?, btf)
            .map_err(|e| e.context("cannot read the module list"))?;
        Ok(ModulesReport {
            modules: list.modules,
            problems: list.problems,
        })
    }

    /// The BTF, and the task an optional `PID|TASK` word names (see
    /// [`Kernel::task`]): what the commands about one task start from.
    fn one_task(&self, word: Option<&str>) -> Result<(&Btf<'_>, Task), Error> {
        let btf = self.btf()?;
        let list = self.tasks()?;
        let task = self.task(&list, word)?.clone();
        Ok((btf, task))
    }

    /// `task [PID|TASK]`: the task's `task_struct`, printed whole.
    ///
    /// # Errors
    ///
    /// As [`Kernel::tasks`] and [`Kernel::task`], and when the struct
    /// cannot be printed.
    pub fn task_struct(&self, word: Option<&str>) -> Result<TaskReport, Error> {
        let (btf, task) = self.one_task(word)?;
        let text = ValuePrinter::new(btf)
            .with_symbols(self.symbols()?)
            .with_memory(self.memory())
            .print_struct("task_struct", task.address)?;
        Ok(TaskReport {
            pid: task.pid,
            address: task.address,
            cpu: task.cpu,
            comm: task.comm,
            text,
        })
    }

    /// `files [PID|TASK]`: the task's root, working directory and open
    /// files.
    ///
    /// # Errors
    ///
    /// As [`Kernel::tasks`], [`Kernel::task`] and [`read_files`].
    pub fn files(&self, word: Option<&str>) -> Result<FilesReport, Error> {
        let (btf, task) = self.one_task(word)?;
        let view = read_files(self.memory(), btf, &task)?;
        Ok(OfTask { task, view })
    }

    /// `vm [PID|TASK]`: the task's memory map.
    ///
    /// # Errors
    ///
    /// As [`Kernel::tasks`], [`Kernel::task`] and [`read_memory_map`].
    pub fn vm(&self, word: Option<&str>) -> Result<VmReport, Error> {
        let (btf, task) = self.one_task(word)?;
        let view = read_memory_map(self.memory(), btf, &task)?;
        Ok(OfTask { task, view })
    }

    /// `kmem -i`: the memory summary.
    ///
    /// # Errors
    ///
    /// As [`Kernel::btf`] and [`read_memory_info`].
    pub fn memory_info(&self) -> Result<MemoryInfo, Error> {
        let btf = self.btf()?;
        read_memory_info(self.memory(), self.symbols()?, btf, self.dump().page_size())
    }
}
