//! Passes 4 and 5: loading the generated programs into the kernel and
//! running the session. [`Session::load`] creates the maps (globals,
//! per-CPU scratch, the ring buffer), puts their fds into the programs and
//! hands each to the verifier, mapping a rejection back to the source
//! line. [`Session::run`] runs the `begin` probes, attaches the others
//! through perf events, formats ring-buffer records as they arrive, and
//! on `exit()`, a runtime error or the caller's stop runs the `end`
//! probes. Host probes (those that walk arrays or print histograms) have
//! no program: [`crate::host`] interprets them here, in attachment order
//! with the others, and host timers from the session's own loop. Everything is held by fds: dropping the session (or the
//! process dying) removes every program, map and perf event.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use kscope_bpf::{Map, MapType, MappedValue, PerfEvent, Program, ProgramType, RingBuf};

use crate::codegen::{ArgSlot, BpfProgram, Generated, MapRef, Output, STR, is_user_string};
use crate::diagnostic::Diagnostic;
use crate::host::{HostCode, SharedState};
use crate::points::{AttachKind, Attachment};
use crate::printf::Value;

/// The ring buffer's size: room for about 6,000 records of one string.
const RING_BYTES: u32 = 1 << 20;

/// The output buffer: a batch larger than this is written in pieces of
/// this size.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// The longest the session waits for records before it looks again at
/// the caller's stop and at the host timers.
const POLL: Duration = Duration::from_millis(50);

/// Why a session could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A map could not be created or written.
    #[error("creating the BPF maps")]
    Maps(#[source] kscope_bpf::Error),
    /// An array's map could not be created.
    #[error(
        "creating the map of array '{array}' ({capacity} entries; a smaller 'global {array}[N]' needs less memory)"
    )]
    Array {
        /// The array.
        array: String,
        /// Its capacity.
        capacity: u32,
        /// What bpf(2) said.
        #[source]
        source: kscope_bpf::Error,
    },
    /// The stack map of `backtrace()` or `ubacktrace()` could not be
    /// created.
    #[error(
        "creating the stack map of {of} ({stacks} stacks; the kernel needs perf events and memory for it)"
    )]
    StackMap {
        /// `backtrace()` or `ubacktrace()`.
        of: &'static str,
        /// Its capacity.
        stacks: u32,
        /// What bpf(2) said.
        #[source]
        source: kscope_bpf::Error,
    },
    /// The verifier rejected a program: where and why.
    #[error("the kernel's verifier rejected the program for {point}: {reason}")]
    Rejected {
        /// The probe point.
        point: String,
        /// The verifier's decisive lines.
        reason: String,
        /// The source the failing instruction came from.
        diagnostic: Box<Diagnostic>,
    },
    /// Loading failed for a reason other than the verifier.
    #[error("loading the program for {point}: {source}")]
    Load {
        /// The probe point.
        point: String,
        /// What bpf(2) said.
        #[source]
        source: kscope_bpf::Error,
    },
    /// Attaching failed.
    #[error("attaching to {point}: {source}")]
    Attach {
        /// The probe point.
        point: String,
        /// What perf_event_open(2) or the ioctl said.
        #[source]
        source: kscope_bpf::Error,
    },
    /// Running a begin/end probe, reading the ring buffer, or writing
    /// output failed.
    #[error("{what}: {source}")]
    Run {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A host probe's access to the maps failed.
    #[error("running {point} in kscope's process: {source}")]
    Host {
        /// The probe point.
        point: String,
        /// What failed.
        #[source]
        source: kscope_bpf::Error,
    },
    /// A BPF call during the run failed.
    #[error("{what}: {source}")]
    Bpf {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: kscope_bpf::Error,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A probe called `exit()`.
    Exit,
    /// The caller asked to stop (Ctrl-C, the `-c` command ended).
    Stopped,
    /// A runtime error, with its message.
    Error(String),
}

/// A loaded script.
pub struct Session {
    generated: Generated,
    attachments: Vec<Attachment>,
    /// The host probes' code.
    host: HostCode,
    programs: Vec<Program>,
    /// Raises the exit flag: what user space runs to stop every probe.
    stop: Program,
    maps: Maps,
    perf: Vec<PerfEvent>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("programs", &self.programs.len())
            .field("perf_events", &self.perf.len())
            .finish_non_exhaustive()
    }
}

fn program_type(kind: &AttachKind) -> ProgramType {
    match kind {
        AttachKind::Begin | AttachKind::End | AttachKind::Error => ProgramType::RawTracepoint,
        AttachKind::Timer { .. } | AttachKind::Profile { .. } => ProgramType::PerfEvent,
        AttachKind::Tracepoint(_) | AttachKind::SyscallFanIn(_) => ProgramType::Tracepoint,
        AttachKind::Kprobe { .. } => ProgramType::Kprobe,
    }
}

/// The maps a script's programs share: the globals, the per-CPU scratch
/// value, the ring buffer, and the read-only constants when there are any.
pub(crate) struct Maps {
    globals: Map,
    /// The globals' value, mapped: host probes read and change it in
    /// place while the programs do.
    globals_value: MappedValue,
    scratch: Map,
    events: RingBuf,
    rodata: Option<Map>,
    /// One per array or statistic, in the order of [`Generated::arrays`].
    arrays: Vec<Map>,
    /// The stack maps and the symbols to print their stacks.
    stacks: StackText,
}

impl Maps {
    /// Creates the maps `generated` needs, the globals initialized.
    pub(crate) fn create(generated: &Generated) -> Result<Maps, RuntimeError> {
        let globals = Map::create_mmapable("ks_globals", generated.globals.size, 1)
            .map_err(RuntimeError::Maps)?;
        globals
            .update(&0u32.to_ne_bytes(), &generated.globals.initial_value())
            .map_err(RuntimeError::Maps)?;
        let globals_value = globals.map_values().map_err(RuntimeError::Maps)?;
        let scratch = Map::create(
            MapType::PerCpuArray,
            "ks_scratch",
            4,
            generated.scratch_size,
            1,
        )
        .map_err(RuntimeError::Maps)?;
        let events = RingBuf::create("ks_events", RING_BYTES).map_err(RuntimeError::Maps)?;
        let rodata = match generated.rodata.is_empty() {
            true => None,
            false => {
                Some(Map::read_only("ks_rodata", &generated.rodata).map_err(RuntimeError::Maps)?)
            }
        };
        let arrays = generated
            .arrays
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let kind = match (a.stat, a.recent) {
                    (true, _) => MapType::PerCpuHash,
                    (false, true) => MapType::LruHash,
                    (false, false) => MapType::Hash,
                };
                Map::create(
                    kind,
                    &format!("ks_a{i}"),
                    a.key_size(),
                    a.value_size(),
                    a.capacity,
                )
                .map_err(|source| RuntimeError::Array {
                    array: a.name.clone(),
                    capacity: a.capacity,
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Maps {
            globals,
            globals_value,
            scratch,
            events,
            rodata,
            arrays,
            stacks: StackText::create(&generated.programs)?,
        })
    }

    /// Hands every program of `generated` to the verifier, as the type
    /// `program_type` gives for its attachment, with these maps' fds put in.
    fn load(
        &self,
        generated: &Generated,
        attachments: &[Attachment],
        program_type: impl Fn(&AttachKind) -> ProgramType,
    ) -> Result<Vec<Program>, RuntimeError> {
        let mut programs = Vec::new();
        for (index, program) in generated.programs.iter().enumerate() {
            let attachment = &attachments[program.attachment];
            let insns = self.relocate(program);
            let name = format!("ks_{index}");
            let loaded = Program::load(program_type(&attachment.kind), &name, &insns)
                .map_err(|e| rejected(e, program, &attachment.name, &generated.arrays))?;
            programs.push(loaded);
        }
        Ok(programs)
    }

    /// The state host probes share with the programs of `generated`.
    pub(crate) fn shared<'m>(&'m self, generated: &'m Generated) -> SharedState<'m> {
        SharedState {
            globals: &self.globals_value,
            layout: &generated.globals,
            arrays: &generated.arrays,
            maps: &self.arrays,
            stacks: &self.stacks,
        }
    }

    /// Puts the maps' fds into the program's map loads.
    fn relocate(&self, program: &BpfProgram) -> Vec<kscope_bpf::Insn> {
        let mut insns = program.insns.clone();
        for &(at, map) in &program.relocations {
            let fd = match map {
                MapRef::Globals => self.globals.raw_fd(),
                MapRef::Scratch => self.scratch.raw_fd(),
                MapRef::Events => self.events.map().raw_fd(),
                MapRef::Rodata => self.rodata.as_ref().map_or(-1, Map::raw_fd),
                MapRef::Array(i) => self.arrays.get(i).map_or(-1, Map::raw_fd),
                MapRef::KernelStacks | MapRef::UserStacks | MapRef::Processes => {
                    self.stacks.fd(map).unwrap_or(-1)
                }
            };
            insns[at].imm = fd;
        }
        insns
    }

    /// The globals' value, as the lookup syscall gives it.
    #[cfg(test)]
    pub(crate) fn globals_at(&self, size: u32) -> Result<Vec<u8>, RuntimeError> {
        self.globals(size)
    }

    /// The globals' value.
    fn globals(&self, size: u32) -> Result<Vec<u8>, RuntimeError> {
        let mut value = vec![0u8; size as usize];
        self.globals
            .lookup(&0u32.to_ne_bytes(), &mut value)
            .map_err(|source| RuntimeError::Bpf {
                what: "reading the globals",
                source,
            })?;
        Ok(value)
    }
}

impl Session {
    /// Creates the maps and loads every program (pass 4); `host` runs the
    /// probes that have none.
    pub fn load(
        generated: Generated,
        attachments: Vec<Attachment>,
        host: HostCode,
    ) -> Result<Session, RuntimeError> {
        let maps = Maps::create(&generated)?;
        let programs = maps.load(&generated, &attachments, program_type)?;
        let stop = Program::load(
            ProgramType::RawTracepoint,
            "ks_stop",
            &stop_program(&maps.globals),
        )
        .map_err(|source| RuntimeError::Load {
            point: "the stop program".into(),
            source,
        })?;
        Ok(Session {
            generated,
            attachments,
            host,
            programs,
            stop,
            maps,
            perf: Vec::new(),
        })
    }

    /// The stacks of every stack-keyed array, folded (`a;b;c count`, the
    /// format flame-graph tools read), as the arrays hold them now: call
    /// it after [`run`](Session::run).
    pub fn folded_stacks(&mut self) -> Result<crate::stacks::Folded, RuntimeError> {
        stack_text::fold_arrays(
            &mut self.maps.stacks,
            &self.generated.arrays,
            &self.maps.arrays,
        )
    }

    /// How many programs are loaded.
    pub fn program_count(&self) -> usize {
        self.programs.len()
    }

    /// Runs `begin`, attaches the other probes, and writes every record to
    /// `out` until a probe calls `exit()`, a runtime error happens, or
    /// `stop()` says so; then runs `end` (and `error` after an error).
    /// `attached` is called once every probe is attached, before the first
    /// record of a non-begin probe can arrive.
    ///
    /// Output is buffered and written once per batch of records (all
    /// those there when the ring buffer is read), at the end of the batch:
    /// a terminal still sees each line within a poll, and a busy script
    /// costs one write(2) per batch instead of one per printf. Every ending
    /// (exit(), an error, the caller's stop on Ctrl-C or SIGTERM) writes
    /// what is left.
    pub fn run(
        &mut self,
        out: &mut dyn Write,
        stop: &mut dyn FnMut() -> bool,
        attached: &mut dyn FnMut(),
    ) -> Result<Ending, RuntimeError> {
        let mut buffered = io::BufWriter::with_capacity(OUTPUT_BUFFER, out);
        let out: &mut dyn Write = &mut buffered;
        let mut ending = None;
        self.run_kind(out, &mut ending, |k| matches!(k, AttachKind::Begin))?;
        self.pump(out, Duration::ZERO, &mut ending)?;
        if ending.is_none() {
            self.attach()?;
            attached();
            let mut timers = hosted::HostTimers::new(&self.attachments, &self.host, Instant::now());
            while ending.is_none() {
                if stop() {
                    ending = Some(Ending::Stopped);
                    break;
                }
                self.pump(out, timers.wait(Instant::now()), &mut ending)?;
                for index in timers.due(Instant::now()) {
                    if ending.is_none() {
                        self.run_host(index, out, &mut ending)?;
                    }
                }
            }
        }
        // Stop the probes at once by raising the exit flag every handler
        // checks first, print what they sent, then run the end probes.
        // Closing the perf events waits for the kernel to detach each
        // program, which takes seconds for hundreds: it comes last.
        self.stop
            .test_run(&[])
            .map_err(|source| RuntimeError::Bpf {
                what: "stopping the probes",
                source,
            })?;
        self.pump(out, Duration::ZERO, &mut None)?;
        let mut ending = ending.unwrap_or(Ending::Stopped);
        // A runtime error in an error or end probe makes the session's
        // ending an error too.
        let mut late = None;
        if matches!(ending, Ending::Error(_)) {
            self.run_kind(out, &mut late, |k| matches!(k, AttachKind::Error))?;
        }
        self.run_kind(out, &mut late, |k| matches!(k, AttachKind::End))?;
        self.pump(out, Duration::ZERO, &mut late)?;
        if let Some(Ending::Error(message)) = late
            && !matches!(ending, Ending::Error(_))
        {
            ending = Ending::Error(message);
        }
        self.warn_dropped(out)?;
        let lost = self.lost()?;
        if lost > 0 {
            writeln!(
                out,
                "WARNING: {lost} output records were lost because the ring buffer was full"
            )
            .map_err(|source| RuntimeError::Run {
                what: "writing output",
                source,
            })?;
        }
        out.flush().map_err(|source| RuntimeError::Run {
            what: "writing output",
            source,
        })?;
        close_all(std::mem::take(&mut self.perf));
        Ok(ending)
    }

    /// `warning: array a: N updates dropped (...)` for each array whose
    /// full map refused updates.
    fn warn_dropped(&self, out: &mut dyn Write) -> Result<(), RuntimeError> {
        let value = self.maps.globals(self.generated.globals.size)?;
        for (name, at) in &self.generated.globals.drops {
            let dropped = crate::codegen::word_at(&value, *at as usize) as u64;
            if dropped == 0 {
                continue;
            }
            let capacity = self
                .generated
                .arrays
                .iter()
                .find(|a| &a.name == name)
                .map_or(0, |a| a.capacity);
            writeln!(
                out,
                "warning: array {name}: {dropped} updates dropped ({capacity} entries; declare global {name}[N])"
            )
            .map_err(|source| RuntimeError::Run {
                what: "writing output",
                source,
            })?;
        }
        Ok(())
    }

    fn lost(&self) -> Result<u64, RuntimeError> {
        let value = self.maps.globals(self.generated.globals.size)?;
        Ok(crate::codegen::word_at(&value, crate::codegen::LOST_COUNTER as usize) as u64)
    }

    /// Runs the probes whose kind `which` takes, in attachment order: a
    /// program by a test run, then what it sent; a host probe by
    /// [`Session::run_host`].
    fn run_kind(
        &mut self,
        out: &mut dyn Write,
        ending: &mut Option<Ending>,
        which: impl Fn(&AttachKind) -> bool,
    ) -> Result<(), RuntimeError> {
        for index in 0..self.attachments.len() {
            if !which(&self.attachments[index].kind) {
                continue;
            }
            if self.host.is_host(&self.attachments[index]) {
                self.run_host(index, out, ending)?;
                continue;
            }
            let Some(program) = self
                .generated
                .programs
                .iter()
                .position(|p| p.attachment == index)
            else {
                continue;
            };
            self.programs[program]
                .test_run(&[])
                .map_err(|source| RuntimeError::Bpf {
                    what: "running a begin/end probe",
                    source,
                })?;
            self.pump(out, Duration::ZERO, ending)?;
        }
        Ok(())
    }

    fn attach(&mut self) -> Result<(), RuntimeError> {
        let cpus = kscope_bpf::online_cpus().map_err(|source| RuntimeError::Bpf {
            what: "listing the online CPUs",
            source,
        })?;
        for (program, generated) in self.programs.iter().zip(&self.generated.programs) {
            let attachment = &self.attachments[generated.attachment];
            let failed = |source| RuntimeError::Attach {
                point: attachment.name.clone(),
                source,
            };
            let events: Vec<PerfEvent> = match &attachment.kind {
                AttachKind::Begin | AttachKind::End | AttachKind::Error => continue,
                AttachKind::Timer { period_ns } => {
                    let cpu = cpus.first().copied().unwrap_or(0);
                    vec![PerfEvent::cpu_clock_on_cpu(cpu, *period_ns).map_err(failed)?]
                }
                AttachKind::Profile { period_ns } => cpus
                    .iter()
                    .map(|&cpu| PerfEvent::cpu_clock_on_cpu(cpu, *period_ns))
                    .collect::<Result<_, _>>()
                    .map_err(failed)?,
                // A program attached to a tracepoint runs on every CPU
                // once one perf event of it is open: the kernel keeps the
                // programs per tracepoint (and refuses the same one twice).
                // Like a tracepoint's, a kprobe's programs run on every CPU.
                AttachKind::Kprobe { function, retprobe } => {
                    let cpu = cpus.first().copied().unwrap_or(0);
                    vec![PerfEvent::kprobe(function, *retprobe, cpu).map_err(failed)?]
                }
                AttachKind::Tracepoint(tp)
                | AttachKind::SyscallFanIn(crate::points::FanIn { tracepoint: tp, .. }) => {
                    let cpu = cpus.first().copied().unwrap_or(0);
                    vec![PerfEvent::tracepoint_on_cpu(u64::from(tp.id), cpu).map_err(failed)?]
                }
            };
            for event in &events {
                event.attach(program).map_err(failed)?;
            }
            self.perf.extend(events);
        }
        for event in &self.perf {
            event.enable(true).map_err(|source| RuntimeError::Bpf {
                what: "enabling the probes",
                source,
            })?;
        }
        Ok(())
    }

    /// Formats every record that is there (waiting up to `wait` for the
    /// first), noting an exit or error record in `ending`.
    fn pump(
        &mut self,
        out: &mut dyn Write,
        wait: Duration,
        ending: &mut Option<Ending>,
    ) -> Result<(), RuntimeError> {
        let outputs = &self.generated.outputs;
        let stacks = &mut self.maps.stacks;
        let mut write_error = None;
        let mut line = Vec::new();
        let each = |record: &[u8]| {
            line.clear();
            match decode(outputs, record, &mut line, stacks) {
                Some(Output::Exit) => {
                    ending.get_or_insert(Ending::Exit);
                }
                Some(Output::Error { message }) => {
                    ending.get_or_insert(Ending::Error(message.clone()));
                }
                _ => {}
            }
            if !line.is_empty()
                && write_error.is_none()
                && let Err(e) = out.write_all(&line)
            {
                write_error = Some(e);
            }
        };
        let result = if wait.is_zero() {
            self.maps.events.drain(each)
        } else {
            self.maps.events.poll(wait, each)
        };
        result.map_err(|source| RuntimeError::Bpf {
            what: "reading the ring buffer",
            source,
        })?;
        if let Some(source) = write_error {
            return Err(RuntimeError::Run {
                what: "writing output",
                source,
            });
        }
        out.flush().map_err(|source| RuntimeError::Run {
            what: "writing output",
            source,
        })
    }
}

/// A program that sets the globals' exit flag, which every handler but
/// `end` and `error` checks before anything else.
fn stop_program(globals: &Map) -> Vec<kscope_bpf::Insn> {
    use kscope_bpf::{Alu, Insn, Jmp, Size};
    let mut insns = vec![Insn::st(Size::W, 10, -8, 0)];
    insns.extend(Insn::ld_map_fd(1, globals.raw_fd()));
    insns.extend([
        Insn::mov64_reg(2, 10),
        Insn::alu64_imm(Alu::Add, 2, -8),
        Insn::call(1), // bpf_map_lookup_elem
        Insn::jmp_imm(Jmp::Eq, 0, 0, 2),
        Insn::mov64_imm(1, 1),
        Insn::stx(Size::DW, 0, crate::codegen::EXIT_FLAG as i16, 1),
        Insn::mov64_imm(0, 0),
        Insn::exit(),
    ]);
    insns
}

/// Closes perf events on several threads at once: closing one that
/// carries a BPF program waits for the kernel to detach it (tens of
/// milliseconds each, seen on 6.18), and those waits overlap.
fn close_all(events: Vec<PerfEvent>) {
    const THREADS: usize = 16;
    if events.len() <= 1 {
        drop(events);
        return;
    }
    let per_thread = events.len().div_ceil(THREADS);
    let mut events = events;
    std::thread::scope(|scope| {
        while !events.is_empty() {
            let rest = events.split_off(events.len().saturating_sub(per_thread));
            scope.spawn(move || drop(rest));
        }
    });
}

/// A load failure, with the verifier's reason mapped to the source.
fn rejected(
    e: kscope_bpf::Error,
    program: &BpfProgram,
    point: &str,
    arrays: &[crate::check::ArrayType],
) -> RuntimeError {
    let kscope_bpf::Error::Load {
        verifier_log,
        source,
        ..
    } = &e
    else {
        return RuntimeError::Load {
            point: point.to_string(),
            source: e,
        };
    };
    // The verifier says no with EINVAL, EACCES or E2BIG, or ENOSPC when
    // its log outgrew the buffer; anything else (EMFILE, ENOMEM, EPERM) is
    // about resources or privilege.
    use rustix::io::Errno;
    let verifier = matches!(
        Errno::from_io_error(source),
        Some(Errno::INVAL | Errno::ACCESS | Errno::TOOBIG | Errno::NOSPC)
    );
    if verifier_log.trim().is_empty() || !verifier {
        return RuntimeError::Load {
            point: point.to_string(),
            source: e,
        };
    }
    let (at, reason) = verifier_reason(verifier_log);
    let span = at
        .and_then(|i| program.spans.get(i))
        .or_else(|| program.spans.last())
        .copied()
        .unwrap_or_default();
    let endless = ["infinite loop", "back-edge"]
        .iter()
        .any(|words| verifier_log.contains(words));
    let too_large = ["too large", "processed 1000001"]
        .iter()
        .any(|words| verifier_log.contains(words));
    let in_loop = program
        .loops
        .iter()
        .any(|l| l.start <= span.start && span.end <= l.end);
    let message = if endless || (too_large && in_loop) {
        "the kernel's verifier could not prove that this loop ends within its limit of 1,000,000 instructions followed; loops must count a local variable up to a small constant bound".to_string()
    } else if too_large {
        format!(
            "the program made for {point} is too large for the kernel's verifier, which gave up after following 1,000,000 instructions; split the work over several probes on the same point, each of which is checked on its own"
        )
    } else {
        // The array whose map the failing code of this source uses, if any.
        let array = program
            .relocations
            .iter()
            .filter(|&&(i, _)| at.is_some_and(|at| i <= at))
            .filter(|&&(i, _)| program.spans.get(i) == Some(&span))
            .filter_map(|&(_, map)| match map {
                MapRef::Array(n) => arrays.get(n),
                _ => None,
            })
            .next_back()
            .map(|a| format!(", which uses array '{}',", a.name))
            .unwrap_or_default();
        format!(
            "the kernel's verifier rejected the code made from this{array} ({reason}); this is a bug in kscope, please report it with the script"
        )
    };
    RuntimeError::Rejected {
        point: point.to_string(),
        reason,
        diagnostic: Box::new(Diagnostic::new(span, message, None)),
    }
}

/// The instruction the verifier stopped at and its decisive lines.
pub fn verifier_reason(log: &str) -> (Option<usize>, String) {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    // "infinite loop detected at insn N" is followed by state dumps.
    if let Some(line) = lines
        .iter()
        .find(|l| l.starts_with("infinite loop detected"))
    {
        let at = line.rsplit(' ').next().and_then(|n| n.trim().parse().ok());
        return (at, line.to_string());
    }
    let at = lines.iter().rev().find_map(|l| {
        let (n, rest) = l.split_once(':')?;
        if rest.starts_with(" (") {
            n.trim().parse().ok()
        } else {
            None
        }
    });
    let reason = lines
        .iter()
        .rev()
        .filter(|l| !l.starts_with("processed ") && !l.starts_with("verification time"))
        .take(1)
        .chain(
            lines
                .iter()
                .rev()
                .filter(|l| l.starts_with("processed "))
                .take(1),
        )
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    (at, reason)
}

/// Formats one record into `line`; returns what it was.
fn decode<'o>(
    outputs: &'o [Output],
    record: &[u8],
    line: &mut Vec<u8>,
    stacks: &mut StackText,
) -> Option<&'o Output> {
    let id = u64::from_ne_bytes(record.get(..8)?.try_into().ok()?);
    let output = outputs.get(usize::try_from(id).ok()?)?;
    if let Output::Process = output {
        let tgid = u64::from_ne_bytes(record.get(8..16)?.try_into().ok()?);
        stacks.remember(tgid as u32);
    }
    if let Output::Printf { format, args } = output {
        let mut at = 8;
        let mut texts: Vec<Vec<u8>> = Vec::new();
        let mut values: Vec<ValueSlot> = Vec::new();
        for slot in args {
            let bytes = record.get(at..at + slot.size() as usize)?;
            at += slot.size() as usize;
            match slot {
                ArgSlot::Int => {
                    values.push(ValueSlot::Int(i64::from_ne_bytes(bytes.try_into().ok()?)))
                }
                ArgSlot::Str => values.push(ValueSlot::Str(bytes)),
                ArgSlot::Argstr(fields) => {
                    texts.push(argstr(fields, bytes));
                    values.push(ValueSlot::Text(texts.len() - 1));
                }
                ArgSlot::Stack { lines } => {
                    let value = i64::from_ne_bytes(bytes.try_into().ok()?);
                    texts.push(
                        crate::host::StackPrinter::text(&*stacks, value, *lines).into_bytes(),
                    );
                    values.push(ValueSlot::Text(texts.len() - 1));
                }
                ArgSlot::SyscallArgstr(args) => {
                    let text = args
                        .fixed_layout(bytes)
                        .map(|(fields, bytes)| argstr(fields, &bytes))
                        .unwrap_or_default();
                    texts.push(text);
                    values.push(ValueSlot::Text(texts.len() - 1));
                }
            }
        }
        let values: Vec<Value<'_>> = values
            .iter()
            .map(|v| match v {
                ValueSlot::Int(n) => Value::Int(*n),
                ValueSlot::Str(b) => Value::Str(b),
                ValueSlot::Text(i) => Value::Str(&texts[*i]),
            })
            .collect();
        format.render(&values, line);
    }
    Some(output)
}

enum ValueSlot<'a> {
    Int(i64),
    Str(&'a [u8]),
    Text(usize),
}

/// A syscall's arguments as SystemTap's `argstr` shows them: user
/// strings quoted, numbers in decimal, pointers in hex, separated by ", ".
fn argstr(fields: &[crate::catalog::TpField], mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let Some((raw, rest)) = bytes.split_first_chunk::<8>() else {
            break;
        };
        bytes = rest;
        let value = u64::from_ne_bytes(*raw);
        if is_user_string(field) {
            let Some((text, rest)) = bytes.split_at_checked(STR as usize) else {
                break;
            };
            bytes = rest;
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            if value == 0 {
                out.extend_from_slice(b"NULL");
            } else {
                out.push(b'"');
                for &b in &text[..end] {
                    match b {
                        b'"' => out.extend_from_slice(b"\\\""),
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        0x20..=0x7e => out.push(b),
                        _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                    }
                }
                out.push(b'"');
            }
        } else if field.c_type.contains('*') {
            if value == 0 {
                out.extend_from_slice(b"0x0");
            } else {
                out.extend_from_slice(format!("{value:#x}").as_bytes());
            }
        } else {
            let c = field.c_type.trim();
            let signed_int = matches!(
                c,
                "int"
                    | "pid_t"
                    | "clockid_t"
                    | "key_serial_t"
                    | "mqd_t"
                    | "timer_t"
                    | "rwf_t"
                    | "key_t"
            );
            let signed_long = matches!(
                c,
                "long" | "off_t" | "loff_t" | "ssize_t" | "time_t" | "long long"
            );
            let text = if signed_int {
                (value as u32 as i32).to_string()
            } else if signed_long {
                (value as i64).to_string()
            } else {
                value.to_string()
            };
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

mod hosted;
mod stack_text;
#[cfg(test)]
mod test_run;

use stack_text::StackText;

#[cfg(test)]
mod tests;
