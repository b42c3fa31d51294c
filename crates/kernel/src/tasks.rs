//! The kernel's tasks (`ps`): every thread of every process, found from
//! `init_task` through the `tasks` list (one entry per thread-group
//! leader) and each leader's threads (`signal->thread_head` linked by
//! `thread_node`, or the `thread_group` ring on kernels without them),
//! plus each CPU's idle task (`swapper/N`, `runqueues.idle`), which no
//! list holds. For each: pid, tgid, parent, comm, state as `ps` and crash
//! name it, CPU, whether the CPU was running it, kernel thread or not,
//! memory (VSZ, RSS) and where its stack is.
//!
//! Every offset comes from BTF ([`TaskLayout::from_btf`]), chosen by which
//! members exist (`__state` or `state`, `thread_info.cpu` or `cpu`,
//! `pcpu_hot.current_task` or `current_task`); per-CPU variables are at
//! `__per_cpu_offset[cpu]` plus the symbol's (small) address
//! ([`PerCpu`]). The lists are read from a dump that may be damaged:
//! a list that loops, a pointer into nothing or a page the dump lacks
//! ends that list with a note in [`TaskList::problems`], never a hang.

use std::collections::{HashMap, HashSet};

use kscope_btf::Btf;

use crate::{Error, KernelRead, SymbolTable};

/// The most tasks read (`PID_MAX_LIMIT` on 64-bit kernels).
pub const MAX_TASKS: usize = 1 << 22;

/// The most CPUs read (`NR_CPUS` of the largest x86-64 configuration).
pub const MAX_CPUS: usize = 8192;

/// The size of `task_struct.comm`.
pub const TASK_COMM_LEN: usize = 16;

/// The most bytes of one `task_struct` read (6.1's is 9,792).
const MAX_TASK_STRUCT: u64 = 64 << 10;

/// `PF_KTHREAD` in `task_struct.flags` (the same since Linux 2.6.27).
const PF_KTHREAD: u32 = 0x0020_0000;

/// The per-CPU areas: `__per_cpu_offset[cpu]` for each possible CPU
/// (`nr_cpu_ids` of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerCpu {
    offsets: Vec<u64>,
}

impl PerCpu {
    /// Per-CPU areas at these offsets, CPU 0 first.
    pub fn new(offsets: Vec<u64>) -> PerCpu {
        PerCpu { offsets }
    }

    /// Reads `nr_cpu_ids` and `__per_cpu_offset[]`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSymbol`] without either symbol, [`Error::Memory`]
    /// when the dump lacks them, [`Error::Corrupt`] when `nr_cpu_ids` is
    /// 0 or more than [`MAX_CPUS`].
    pub fn read(memory: &dyn KernelRead, symbols: &SymbolTable) -> Result<PerCpu, Error> {
        let nr = memory
            .read_u32(symbols.required("nr_cpu_ids")?)
            .map_err(|source| Error::Memory {
                what: "nr_cpu_ids".into(),
                source,
            })? as usize;
        if nr == 0 || nr > MAX_CPUS {
            return Err(Error::Corrupt(format!(
                "nr_cpu_ids is {nr}, expected 1 to {MAX_CPUS}"
            )));
        }
        let bytes = memory
            .read_vec(symbols.required("__per_cpu_offset")?, nr * 8)
            .map_err(|source| Error::Memory {
                what: "__per_cpu_offset[]".into(),
                source,
            })?;
        Ok(PerCpu::new(
            bytes
                .chunks_exact(8)
                .map(|b| le_u64(b, 0).unwrap_or(0))
                .collect(),
        ))
    }

    /// How many CPUs there are.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// `__per_cpu_offset[cpu]`.
    pub fn offset(&self, cpu: usize) -> Option<u64> {
        self.offsets.get(cpu).copied()
    }

    /// The address of CPU `cpu`'s copy of the per-CPU variable whose
    /// symbol is at `symbol_address`.
    pub fn address(&self, cpu: usize, symbol_address: u64) -> Option<u64> {
        Some(self.offset(cpu)?.wrapping_add(symbol_address))
    }
}

/// How a process's threads are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadLinks {
    /// `signal->thread_head`, each thread's `thread_node` (Linux 3.14+).
    SignalList {
        /// `task_struct.signal`.
        signal: u64,
        /// `signal_struct.thread_head`.
        thread_head: u64,
        /// `task_struct.thread_node`.
        thread_node: u64,
    },
    /// A ring through each thread's `thread_group`, the leader included.
    GroupRing {
        /// `task_struct.thread_group`.
        thread_group: u64,
    },
}

/// Where the memory counters of `mm_struct` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssCounters {
    /// `struct mm_rss_stat { atomic_long_t count[]; }` (up to Linux 6.1).
    Atomic {
        /// `mm_struct.rss_stat`.
        rss_stat: u64,
    },
    /// `struct percpu_counter rss_stat[]` (Linux 6.2+): `count` plus each
    /// CPU's `s32` at `counters`.
    PerCpu {
        /// `mm_struct.rss_stat`.
        rss_stat: u64,
        /// `sizeof(struct percpu_counter)`.
        size: u64,
        /// `percpu_counter.count`.
        count: u64,
        /// `percpu_counter.counters`.
        counters: u64,
    },
}

/// What memory use is read from, when BTF has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLayout {
    /// `mm_struct.total_vm` (pages).
    pub total_vm: u64,
    /// The RSS counters.
    pub rss: RssCounters,
    /// The counters that make up RSS (`MM_FILEPAGES`, `MM_ANONPAGES`,
    /// `MM_SHMEMPAGES`).
    pub rss_indexes: Vec<u64>,
    /// `task_struct.rss_stat.count`: a thread's changes not yet added to
    /// its mm (SPLIT_RSS_COUNTING, up to Linux 6.1), `int` each.
    pub task_deltas: Option<u64>,
}

/// Where the fields `ps` needs are, in bytes from the start of their
/// struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLayout {
    /// `sizeof(struct task_struct)`.
    pub task_size: u64,
    /// `task_struct.tasks`.
    pub tasks: u64,
    /// `task_struct.pid`.
    pub pid: u64,
    /// `task_struct.tgid`.
    pub tgid: u64,
    /// `task_struct.real_parent`.
    pub real_parent: u64,
    /// `task_struct.comm`.
    pub comm: u64,
    /// `task_struct.__state` (or `state` before Linux 5.14).
    pub state: u64,
    /// `task_struct.exit_state`.
    pub exit_state: u64,
    /// `task_struct.flags`.
    pub flags: u64,
    /// `thread_info.cpu` inside the task (or `task_struct.cpu`); `None`
    /// when neither exists.
    pub cpu: Option<u64>,
    /// `task_struct.mm`.
    pub mm: u64,
    /// `task_struct.stack`.
    pub stack: u64,
    /// `task_struct.thread.sp`: the stack pointer saved when the task
    /// was switched out.
    pub thread_sp: u64,
    /// How threads are linked.
    pub threads: ThreadLinks,
    /// `rq.curr` in `struct rq`.
    pub rq_curr: u64,
    /// `rq.idle`.
    pub rq_idle: u64,
    /// `pcpu_hot.current_task` when the kernel keeps the current task in
    /// `pcpu_hot` (Linux 6.2+); `None`: the per-CPU `current_task`.
    pub pcpu_hot_current: Option<u64>,
    /// Memory counters, when BTF has them.
    pub memory: Option<MemoryLayout>,
}

fn member(btf: &Btf<'_>, ty: &str, name: &str) -> Result<u64, Error> {
    btf.member_offset(ty, name).ok_or_else(|| {
        Error::Corrupt(format!(
            "the kernel's BTF has no member {name} in {ty} (or it is a bitfield)"
        ))
    })
}

impl TaskLayout {
    /// Finds the offsets in the kernel's BTF.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the first member BTF lacks.
    pub fn from_btf(btf: &Btf<'_>) -> Result<TaskLayout, Error> {
        const TASK: &str = "struct task_struct";
        let task_size = btf
            .type_size(TASK)
            .ok_or_else(|| Error::Corrupt("the kernel's BTF has no struct task_struct".into()))?;
        let state = btf
            .member_offset(TASK, "__state")
            .or_else(|| btf.member_offset(TASK, "state"))
            .ok_or_else(|| {
                Error::Corrupt("the kernel's BTF has neither task_struct.__state nor .state".into())
            })?;
        let cpu = btf
            .member_offset(TASK, "thread_info")
            .and_then(|ti| Some(ti + btf.member_offset("struct thread_info", "cpu")?))
            .or_else(|| btf.member_offset(TASK, "cpu"));
        let threads = match (
            btf.member_offset(TASK, "signal"),
            btf.member_offset("struct signal_struct", "thread_head"),
            btf.member_offset(TASK, "thread_node"),
        ) {
            (Some(signal), Some(thread_head), Some(thread_node)) => ThreadLinks::SignalList {
                signal,
                thread_head,
                thread_node,
            },
            _ => ThreadLinks::GroupRing {
                thread_group: member(btf, TASK, "thread_group")?,
            },
        };
        Ok(TaskLayout {
            task_size,
            tasks: member(btf, TASK, "tasks")?,
            pid: member(btf, TASK, "pid")?,
            tgid: member(btf, TASK, "tgid")?,
            real_parent: member(btf, TASK, "real_parent")?,
            comm: member(btf, TASK, "comm")?,
            state,
            exit_state: member(btf, TASK, "exit_state")?,
            flags: member(btf, TASK, "flags")?,
            cpu,
            mm: member(btf, TASK, "mm")?,
            stack: member(btf, TASK, "stack")?,
            thread_sp: member(btf, TASK, "thread")? + member(btf, "struct thread_struct", "sp")?,
            threads,
            rq_curr: member(btf, "struct rq", "curr")?,
            rq_idle: member(btf, "struct rq", "idle")?,
            pcpu_hot_current: btf.member_offset("struct pcpu_hot", "current_task"),
            memory: MemoryLayout::from_btf(btf),
        })
    }
}

impl MemoryLayout {
    fn from_btf(btf: &Btf<'_>) -> Option<MemoryLayout> {
        const MM: &str = "struct mm_struct";
        let rss_stat = btf.member_offset(MM, "rss_stat")?;
        let rss = if btf.type_size("struct mm_rss_stat").is_some() {
            RssCounters::Atomic { rss_stat }
        } else {
            RssCounters::PerCpu {
                rss_stat,
                size: btf.type_size("struct percpu_counter")?,
                count: btf.member_offset("struct percpu_counter", "count")?,
                counters: btf.member_offset("struct percpu_counter", "counters")?,
            }
        };
        let rss_indexes = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"]
            .iter()
            .filter_map(|name| u64::try_from(btf.enum_value(name)?).ok())
            .collect();
        let task_deltas = btf
            .member_offset("struct task_struct", "rss_stat")
            .zip(btf.member_offset("struct task_rss_stat", "count"))
            .map(|(a, b)| a + b);
        Some(MemoryLayout {
            total_vm: btf.member_offset(MM, "total_vm")?,
            rss,
            rss_indexes,
            task_deltas,
        })
    }
}

/// A task's state, as `ps` reports it (the kernel's
/// `task_state_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// R: running or runnable.
    Running,
    /// S: interruptible sleep.
    Sleeping,
    /// D: uninterruptible sleep.
    DiskSleep,
    /// T: stopped.
    Stopped,
    /// t: stopped by a tracer.
    TracingStop,
    /// X: dead.
    Dead,
    /// Z: zombie.
    Zombie,
    /// P: parked kernel thread.
    Parked,
    /// I: idle kernel thread (uninterruptible without load).
    Idle,
}

impl TaskState {
    /// The state of a task with these `__state` and `exit_state` values,
    /// by the kernel's rules (include/linux/sched.h, the bits the same
    /// since Linux 4.14): the reportable bits, TASK_IDLE reported as
    /// idle, TASK_RTLOCK_WAIT and TASK_FROZEN as uninterruptible, then
    /// the highest bit set.
    pub fn from_raw(state: u32, exit_state: u32) -> TaskState {
        const TASK_REPORT: u32 = 0x7f;
        const TASK_IDLE: u32 = 0x402;
        const TASK_RTLOCK_WAIT: u32 = 0x1000;
        const TASK_FROZEN: u32 = 0x8000;
        let mut report = (state | exit_state) & TASK_REPORT;
        if state & TASK_IDLE == TASK_IDLE {
            report = 0x80;
        }
        if state & (TASK_RTLOCK_WAIT | TASK_FROZEN) != 0 {
            report = 2;
        }
        match u32::BITS - report.leading_zeros() {
            0 => TaskState::Running,
            1 => TaskState::Sleeping,
            2 => TaskState::DiskSleep,
            3 => TaskState::Stopped,
            4 => TaskState::TracingStop,
            5 => TaskState::Dead,
            6 => TaskState::Zombie,
            7 => TaskState::Parked,
            _ => TaskState::Idle,
        }
    }

    /// The letter `ps` and drgn show: R, S, D, T, t, X, Z, P, I.
    pub fn letter(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Sleeping => 'S',
            TaskState::DiskSleep => 'D',
            TaskState::Stopped => 'T',
            TaskState::TracingStop => 't',
            TaskState::Dead => 'X',
            TaskState::Zombie => 'Z',
            TaskState::Parked => 'P',
            TaskState::Idle => 'I',
        }
    }

    /// The two letters crash's `ps` shows: RU, IN, UN, ST, TR, DE, ZO,
    /// PA, ID.
    pub fn crash_name(self) -> &'static str {
        match self {
            TaskState::Running => "RU",
            TaskState::Sleeping => "IN",
            TaskState::DiskSleep => "UN",
            TaskState::Stopped => "ST",
            TaskState::TracingStop => "TR",
            TaskState::Dead => "DE",
            TaskState::Zombie => "ZO",
            TaskState::Parked => "PA",
            TaskState::Idle => "ID",
        }
    }
}

/// One task (a thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The `task_struct`'s address.
    pub address: u64,
    /// `pid` (the thread id).
    pub pid: i32,
    /// `tgid` (the process id).
    pub tgid: i32,
    /// `real_parent->pid`; `None` when the parent cannot be read.
    pub ppid: Option<i32>,
    /// `comm`, up to its NUL.
    pub comm: String,
    /// The state `ps` reports.
    pub state: TaskState,
    /// The raw `__state` and `exit_state`.
    pub raw_state: (u32, u32),
    /// `flags` (`PF_*`).
    pub flags: u32,
    /// The CPU it is on or last ran on.
    pub cpu: Option<u32>,
    /// Whether it is the task its CPU was running (the CPU's
    /// `current_task`).
    pub current: bool,
    /// Whether it is a CPU's idle task (`swapper/N`).
    pub idle: bool,
    /// `mm`; 0 for kernel threads.
    pub mm: u64,
    /// `stack`: the lowest address of its kernel stack.
    pub stack: u64,
    /// `thread.sp`: where its registers were saved when it was switched
    /// out.
    pub saved_sp: u64,
    /// Its process's virtual size in pages (`mm->total_vm`).
    pub vsz_pages: Option<u64>,
    /// Its process's resident pages: file, anonymous and shared memory,
    /// with the changes threads have not yet added to their mm.
    pub rss_pages: Option<u64>,
}

impl Task {
    /// Whether it is a kernel thread (`PF_KTHREAD`).
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// `comm` as `ps` shows it: in brackets for a kernel thread.
    pub fn display_comm(&self) -> String {
        if self.is_kernel_thread() {
            format!("[{}]", self.comm)
        } else {
            self.comm.clone()
        }
    }
}

/// What each CPU was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTasks {
    /// The CPU.
    pub cpu: u32,
    /// Its current task's address (per-CPU `current_task`, or
    /// `runqueues.curr` without it).
    pub current: Option<u64>,
    /// Its idle task's address (`runqueues.idle`).
    pub idle: Option<u64>,
}

/// Every task, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskList {
    /// The idle tasks (by CPU), then each process's threads in the
    /// order of the `tasks` list.
    pub tasks: Vec<Task>,
    /// What each CPU was running.
    pub cpus: Vec<CpuTasks>,
    /// The CPU that panicked (`panic_cpu`), when one did.
    pub panic_cpu: Option<u32>,
    /// What could not be read: each entry says which list or task and
    /// why. Empty for a sound dump.
    pub problems: Vec<String>,
}

/// Reads every task, with offsets from `btf`.
///
/// # Errors
///
/// As [`TaskLayout::from_btf`] and [`TaskList::read`].
pub fn read_tasks(
    memory: &dyn KernelRead,
    symbols: &SymbolTable,
    btf: &Btf<'_>,
) -> Result<TaskList, Error> {
    let layout = TaskLayout::from_btf(btf)?;
    let per_cpu = PerCpu::read(memory, symbols)?;
    TaskList::read(memory, symbols, &per_cpu, &layout)
}

/// Follows the ring of `list_head`s from `head` (whose `next` is its
/// first word) until it comes back to `head`, giving the entries'
/// addresses (the head excluded), and why it stopped early if it did: a
/// NULL or unreadable pointer, an entry seen twice (a loop that misses
/// the head), or more than `limit` entries.
pub(crate) fn walk_list(
    memory: &dyn KernelRead,
    head: u64,
    limit: usize,
    what: &str,
) -> (Vec<u64>, Option<String>) {
    let mut nodes = Vec::new();
    let mut seen = HashSet::new();
    let mut next = match memory.read_u64(head) {
        Ok(next) => next,
        Err(e) => {
            return (
                nodes,
                Some(format!("{what}: cannot read its head at {head:#x}: {e}")),
            );
        }
    };
    loop {
        if next == head {
            return (nodes, None);
        }
        let problem = if next == 0 {
            format!("{what}: an entry points to NULL")
        } else if !seen.insert(next) {
            format!("{what}: loops back to {next:#x} without returning to its head")
        } else if nodes.len() >= limit {
            format!("{what}: more than {limit} entries")
        } else {
            // An entry counts once its own link reads.
            match memory.read_u64(next) {
                Ok(after) => {
                    nodes.push(next);
                    next = after;
                    continue;
                }
                Err(e) => format!("{what}: cannot read the entry at {next:#x}: {e}"),
            }
        };
        return (nodes, Some(problem));
    }
}

pub(crate) fn le_u64(buf: &[u8], offset: u64) -> Option<u64> {
    let at = usize::try_from(offset).ok()?;
    let b = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes([
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
    ]))
}

pub(crate) fn le_u32(buf: &[u8], offset: u64) -> Option<u32> {
    let at = usize::try_from(offset).ok()?;
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A NUL-terminated string inside `bytes`, lossily decoded.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

struct Reader<'m> {
    memory: &'m dyn KernelRead,
    layout: &'m TaskLayout,
    size: usize,
    problems: Vec<String>,
    /// Each mm's counters, read once.
    mm_pages: HashMap<u64, (Option<u64>, Option<i64>)>,
    per_cpu: &'m PerCpu,
}

impl Reader<'_> {
    fn task(&mut self, address: u64) -> Option<(Task, i64)> {
        let l = self.layout;
        let buf = match self.memory.read_vec(address, self.size) {
            Ok(buf) => buf,
            Err(e) => {
                self.problems
                    .push(format!("task_struct at {address:#x}: cannot read it: {e}"));
                return None;
            }
        };
        let field = |off: u64| le_u32(&buf, off).unwrap_or(0);
        let pointer = |off: u64| le_u64(&buf, off).unwrap_or(0);
        let comm = usize::try_from(l.comm)
            .ok()
            .and_then(|at| buf.get(at..at.checked_add(TASK_COMM_LEN)?))
            .map(c_string)
            .unwrap_or_default();
        let parent = pointer(l.real_parent);
        let ppid = if parent == address {
            Some(field(l.pid) as i32)
        } else {
            self.memory
                .read_u32(parent.wrapping_add(l.pid))
                .ok()
                .map(|p| p as i32)
        };
        let (state, exit_state) = (field(l.state), field(l.exit_state));
        let mm = pointer(l.mm);
        let deltas = match (&l.memory, mm) {
            (Some(m), mm) if mm != 0 => m.task_deltas.map_or(0, |at| {
                m.rss_indexes
                    .iter()
                    .map(|&i| i64::from(field(at.wrapping_add(i.wrapping_mul(4))) as i32))
                    .sum()
            }),
            _ => 0,
        };
        let task = Task {
            address,
            pid: field(l.pid) as i32,
            tgid: field(l.tgid) as i32,
            ppid,
            comm,
            state: TaskState::from_raw(state, exit_state),
            raw_state: (state, exit_state),
            flags: field(l.flags),
            cpu: l.cpu.map(field),
            current: false,
            idle: false,
            mm,
            stack: pointer(l.stack),
            saved_sp: pointer(l.thread_sp),
            vsz_pages: None,
            rss_pages: None,
        };
        Some((task, deltas))
    }

    /// The total_vm and counted RSS of an mm, read once.
    fn mm(&mut self, mm: u64) -> (Option<u64>, Option<i64>) {
        if let Some(&known) = self.mm_pages.get(&mm) {
            return known;
        }
        let Some(m) = &self.layout.memory else {
            return (None, None);
        };
        let total_vm = self.memory.read_u64(mm.wrapping_add(m.total_vm)).ok();
        let rss = m
            .rss_indexes
            .iter()
            .map(|&i| match m.rss {
                RssCounters::Atomic { rss_stat } => self
                    .memory
                    .read_u64(mm.wrapping_add(rss_stat).wrapping_add(i.wrapping_mul(8)))
                    .ok()
                    .map(|v| v as i64),
                RssCounters::PerCpu {
                    rss_stat,
                    size,
                    count,
                    counters,
                } => {
                    let counter = mm.wrapping_add(rss_stat).wrapping_add(size.wrapping_mul(i));
                    let mut sum = self.memory.read_u64(counter.wrapping_add(count)).ok()? as i64;
                    let per_cpu = self.memory.read_u64(counter.wrapping_add(counters)).ok()?;
                    for cpu in 0..self.per_cpu.len() {
                        let at = self.per_cpu.address(cpu, per_cpu)?;
                        sum += i64::from(self.memory.read_u32(at).ok()? as i32);
                    }
                    Some(sum)
                }
            })
            .sum::<Option<i64>>();
        let known = (total_vm, rss);
        self.mm_pages.insert(mm, known);
        known
    }

    /// The threads of the process whose leader is at `leader`, the
    /// leader first.
    fn threads(&mut self, leader: u64) -> Vec<u64> {
        let mut out = vec![leader];
        let (nodes, problem, node_offset) = match self.layout.threads {
            ThreadLinks::SignalList {
                signal,
                thread_head,
                thread_node,
            } => {
                let Ok(signal) = self.memory.read_u64(leader.wrapping_add(signal)) else {
                    self.problems.push(format!(
                        "task {leader:#x}: cannot read its signal_struct pointer"
                    ));
                    return out;
                };
                let what = format!("the threads of task {leader:#x}");
                let (nodes, problem) = walk_list(
                    self.memory,
                    signal.wrapping_add(thread_head),
                    MAX_TASKS,
                    &what,
                );
                (nodes, problem, thread_node)
            }
            ThreadLinks::GroupRing { thread_group } => {
                let what = format!("the thread group of task {leader:#x}");
                let (nodes, problem) = walk_list(
                    self.memory,
                    leader.wrapping_add(thread_group),
                    MAX_TASKS,
                    &what,
                );
                (nodes, problem, thread_group)
            }
        };
        self.problems.extend(problem);
        out.extend(
            nodes
                .into_iter()
                .map(|node| node.wrapping_sub(node_offset))
                .filter(|&t| t != leader),
        );
        out
    }
}

impl TaskList {
    /// Reads every task, the idle tasks first.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSymbol`] without `init_task` or `runqueues`;
    /// [`Error::Corrupt`] when `struct task_struct` is implausibly large.
    /// Damage past the start (a broken list, an unreadable task) is in
    /// [`TaskList::problems`] instead.
    pub fn read(
        memory: &dyn KernelRead,
        symbols: &SymbolTable,
        per_cpu: &PerCpu,
        layout: &TaskLayout,
    ) -> Result<TaskList, Error> {
        let init_task = symbols.required("init_task")?;
        let runqueues = symbols.required("runqueues")?;
        if layout.task_size == 0 || layout.task_size > MAX_TASK_STRUCT {
            return Err(Error::Corrupt(format!(
                "struct task_struct is {} bytes, expected 1 to {MAX_TASK_STRUCT}",
                layout.task_size
            )));
        }
        let mut reader = Reader {
            memory,
            layout,
            size: layout.task_size as usize,
            problems: Vec::new(),
            mm_pages: HashMap::new(),
            per_cpu,
        };
        let current_var = match layout.pcpu_hot_current {
            Some(member) => symbols.address("pcpu_hot").map(|a| a.wrapping_add(member)),
            None => symbols.address("current_task"),
        };
        let mut cpus = Vec::with_capacity(per_cpu.len());
        for cpu in 0..per_cpu.len() {
            let read = |var: Option<u64>, what: &str, problems: &mut Vec<String>| {
                let at = per_cpu.address(cpu, var?)?;
                match memory.read_u64(at) {
                    Ok(0) => None,
                    Ok(task) => Some(task),
                    Err(e) => {
                        problems.push(format!("CPU {cpu}: cannot read its {what}: {e}"));
                        None
                    }
                }
            };
            // The per-CPU current task, else the runqueue's (the same but
            // while the scheduler switches).
            let current = read(current_var, "current task", &mut reader.problems).or_else(|| {
                read(
                    Some(runqueues.wrapping_add(layout.rq_curr)),
                    "runqueues.curr",
                    &mut reader.problems,
                )
            });
            let idle = read(
                Some(runqueues.wrapping_add(layout.rq_idle)),
                "idle task (runqueues.idle)",
                &mut reader.problems,
            );
            cpus.push(CpuTasks {
                cpu: cpu as u32,
                current,
                idle,
            });
        }

        let mut addresses: Vec<(u64, bool)> = Vec::new();
        for c in &cpus {
            if let Some(idle) = c.idle {
                addresses.push((idle, true));
            }
        }
        if cpus.first().and_then(|c| c.idle).is_none() {
            addresses.insert(0, (init_task, true));
        }
        let (leaders, problem) = walk_list(
            memory,
            init_task.wrapping_add(layout.tasks),
            MAX_TASKS,
            "the task list (init_task.tasks)",
        );
        reader.problems.extend(problem);
        'leaders: for node in leaders {
            let leader = node.wrapping_sub(layout.tasks);
            for thread in reader.threads(leader) {
                if addresses.len() >= MAX_TASKS {
                    reader.problems.push(format!(
                        "more than {MAX_TASKS} tasks: the rest are not read"
                    ));
                    break 'leaders;
                }
                addresses.push((thread, false));
            }
        }

        let mut seen = HashSet::new();
        let mut tasks = Vec::with_capacity(addresses.len());
        let mut deltas: HashMap<u64, i64> = HashMap::new();
        for (address, idle) in addresses {
            if !seen.insert(address) {
                continue;
            }
            let Some((mut task, delta)) = reader.task(address) else {
                continue;
            };
            task.idle = idle;
            task.current = cpus.iter().any(|c| c.current == Some(address));
            if task.mm != 0 {
                *deltas.entry(task.mm).or_default() += delta;
            }
            tasks.push(task);
        }
        for task in &mut tasks {
            if task.mm == 0 {
                continue;
            }
            let (total_vm, rss) = reader.mm(task.mm);
            task.vsz_pages = total_vm;
            task.rss_pages =
                rss.map(|r| (r + deltas.get(&task.mm).copied().unwrap_or(0)).max(0) as u64);
        }

        let panic_cpu = symbols
            .address("panic_cpu")
            .and_then(|at| memory.read_u32(at).ok())
            .and_then(|cpu| u32::try_from(cpu as i32).ok());
        Ok(TaskList {
            tasks,
            cpus,
            panic_cpu,
            problems: reader.problems,
        })
    }

    /// The tasks with this pid (several for pid 0: one idle task per
    /// CPU).
    pub fn with_pid(&self, pid: i32) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(move |t| t.pid == pid)
    }

    /// The task at this `task_struct` address.
    pub fn at(&self, address: u64) -> Option<&Task> {
        self.tasks.iter().find(|t| t.address == address)
    }

    /// The task CPU `cpu` was running.
    pub fn current_on(&self, cpu: u32) -> Option<&Task> {
        let current = self.cpus.iter().find(|c| c.cpu == cpu)?.current?;
        self.at(current)
    }

    /// The task that was running on the CPU that panicked.
    pub fn panic_task(&self) -> Option<&Task> {
        self.current_on(self.panic_cpu?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_kernels_task_state_index() {
        let cases = [
            (0, 0, 'R', "RU"),
            (1, 0, 'S', "IN"),
            (2, 0, 'D', "UN"),
            (0x102, 0, 'D', "UN"), // TASK_KILLABLE
            (0x402, 0, 'I', "ID"), // TASK_IDLE
            (0x104, 0, 'T', "ST"), // TASK_STOPPED
            (8, 0, 't', "TR"),
            (0x80, 0x10, 'X', "DE"),
            (0x80, 0x20, 'Z', "ZO"),
            (0x40, 0, 'P', "PA"),
            (0x1000, 0, 'D', "UN"), // TASK_RTLOCK_WAIT
            (0x8001, 0, 'D', "UN"), // frozen
            (0x2001, 0, 'S', "IN"), // TASK_FREEZABLE is not reported
        ];
        for (state, exit, letter, crash) in cases {
            let s = TaskState::from_raw(state, exit);
            assert_eq!(
                (s.letter(), s.crash_name()),
                (letter, crash),
                "{state:#x}/{exit:#x}"
            );
        }
    }

    #[test]
    fn per_cpu_addresses_add_the_cpus_offset() {
        let per_cpu = PerCpu::new(vec![0xffff_8880_0780_0000, 0xffff_8880_0790_0000]);
        assert_eq!(per_cpu.len(), 2);
        assert!(!per_cpu.is_empty());
        assert_eq!(per_cpu.address(1, 0x1fb80), Some(0xffff_8880_0791_fb80));
        assert_eq!(per_cpu.address(2, 0x1fb80), None);
    }

    #[test]
    fn kernel_threads_show_in_brackets() {
        let mut task = Task {
            address: 1,
            pid: 2,
            tgid: 2,
            ppid: Some(0),
            comm: "kthreadd".into(),
            state: TaskState::Sleeping,
            raw_state: (1, 0),
            flags: PF_KTHREAD,
            cpu: Some(0),
            current: false,
            idle: false,
            mm: 0,
            stack: 0,
            saved_sp: 0,
            vsz_pages: None,
            rss_pages: None,
        };
        assert_eq!(task.display_comm(), "[kthreadd]");
        task.flags = 0;
        assert_eq!(task.display_comm(), "kthreadd");
    }

    #[test]
    fn strings_and_fields_stay_inside_their_buffer() {
        assert_eq!(c_string(b"sh\0junk"), "sh");
        assert_eq!(c_string(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(le_u32(&[1, 0, 0, 0], 0), Some(1));
        assert_eq!(le_u32(&[1, 0, 0], 0), None);
        assert_eq!(le_u64(&[0; 8], u64::MAX), None);
    }
}
