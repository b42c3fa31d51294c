//! What `kscope core info` says about a core: the process, the signal
//! (with the stack-overflow verdict), the modules whose file is another
//! build, and every thread's backtrace, unwound by [`Unwinder`] and
//! symbolized by `kscope-symbols` (inlined frames included). The
//! [`CoreReport`] is data, serialized as it is for `--json`; the binary
//! lays it out as text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kscope_symbols::{DebugFiles, DwarfCache, Frame, ObjectFile, Symbolizer};
use serde::Serialize;

use kscope_elf::hex;

use crate::{AT_ENTRY, BuildIdMismatch, Core, FrameSource, MAX_FRAMES, Unwinder, UnwoundFrame};

/// How far a fault may be from the stack pointer and still be the stack
/// running out: a function's frame (locals included) rarely spans more.
pub const STACK_OVERFLOW_REACH: u64 = 64 << 10;

/// Where the files of the crashed process are, and what to report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The executable to read instead of the path the core names.
    pub exe: Option<PathBuf>,
    /// A directory holding a copy of the crashed machine's files (and
    /// their debug files under `usr/lib/debug`), read instead of `/`.
    pub sysroot: Option<PathBuf>,
    /// Whether the cache of inflated debug sections is read and written
    /// ([`DwarfCache::user`]).
    pub dwarf_cache: bool,
    /// Whether each thread's registers are reported.
    pub registers: bool,
    /// The most frames of one backtrace.
    pub max_frames: usize,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions {
            exe: None,
            sysroot: None,
            dwarf_cache: true,
            registers: false,
            max_frames: MAX_FRAMES,
        }
    }
}

/// What `kscope core info` prints.
#[derive(Debug, Serialize)]
pub struct CoreReport {
    /// The core file, as named.
    pub core: PathBuf,
    /// From `NT_PRPSINFO`.
    pub process: Option<Process>,
    /// From `NT_SIGINFO`.
    pub signal: Option<Signal>,
    /// Modules whose file is not the build the process ran: their frames
    /// are shown without symbols.
    pub build_id_mismatches: Vec<Mismatch>,
    /// Every thread, the crashing one first.
    pub threads: Vec<ThreadReport>,
}

/// A module whose file was rebuilt (or replaced) since the crash.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    /// The module's file name.
    pub module: String,
    /// Its path as the core names it.
    pub path: PathBuf,
    /// The file read for it.
    pub file: PathBuf,
    /// The build-id in the core, in hex.
    pub core_build_id: String,
    /// The file's build-id in hex; `None` when the file has none.
    pub file_build_id: Option<String>,
}

impl Mismatch {
    fn new(mismatch: &BuildIdMismatch) -> Mismatch {
        Mismatch {
            module: module_name(&mismatch.path),
            path: mismatch.path.clone(),
            file: mismatch.file.clone(),
            core_build_id: hex(&mismatch.in_core),
            file_build_id: mismatch.in_file.as_deref().map(hex),
        }
    }
}

/// The crashed process.
#[derive(Debug, Serialize)]
pub struct Process {
    /// `pr_pid`.
    pub pid: i32,
    /// `pr_ppid`.
    pub ppid: i32,
    /// `pr_uid`.
    pub uid: u32,
    /// `pr_gid`.
    pub gid: u32,
    /// `pr_psargs`, trailing spaces trimmed.
    pub command: String,
}

/// The signal that made the dump.
#[derive(Debug, Serialize)]
pub struct Signal {
    /// `si_signo`.
    pub number: i32,
    /// "SIGSEGV"...
    pub name: String,
    /// The signal in words ([`crate::SigInfo::describe`]), and the stack
    /// overflow when there is one.
    pub description: String,
    /// `si_addr` of a fault.
    pub fault_address: Option<u64>,
    /// Set when the fault is next to the crashing thread's stack pointer:
    /// the stack ran out (runaway recursion, or a large local array).
    pub stack_overflow: bool,
}

/// One thread and its backtrace.
#[derive(Debug, Serialize)]
pub struct ThreadReport {
    /// `pr_pid` of its `NT_PRSTATUS`.
    pub tid: i32,
    /// The thread whose signal made the dump.
    pub crashed: bool,
    /// The general registers, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registers: Option<Vec<(&'static str, u64)>>,
    /// Innermost first; an unwound frame with inlined calls is several.
    pub frames: Vec<FrameReport>,
    /// Set when the backtrace was cut at `max_frames`.
    pub truncated: bool,
}

/// One frame, or one inlined function of a frame.
#[derive(Debug, Serialize)]
pub struct FrameReport {
    /// Its number in the thread's backtrace.
    pub index: usize,
    /// The pc of the unwound frame.
    pub pc: u64,
    /// The function, its symbol, file and line (`None`s where nothing
    /// is known); `offset` is that of the return address itself for a
    /// caller, as gdb shows it.
    #[serde(flatten)]
    pub symbols: Frame,
    /// This frame is the signal trampoline (`__restore_rt`): the frames
    /// below it were interrupted by a signal, whose handler is above.
    pub signal_trampoline: bool,
    /// The file name of the module the pc is in.
    pub module: Option<String>,
    /// The module's file is another build: no symbol is looked up in it.
    pub build_id_mismatch: bool,
    /// How the frame was found ([`FrameSource::name`]).
    pub source: &'static str,
}

impl CoreReport {
    /// Unwinds and symbolizes every thread of `core`, read from the file
    /// `path`.
    pub fn new(core: &Core<'_>, path: &Path, options: &ReportOptions) -> CoreReport {
        let mut unwinder = Unwinder::new(core);
        unwinder.set_max_frames(options.max_frames);
        if let Some(sysroot) = &options.sysroot {
            for module in core.modules() {
                let relative = module.path.strip_prefix("/").unwrap_or(module.path);
                unwinder.replace_path(module.path, &sysroot.join(relative));
            }
        }
        if let Some(exe) = &options.exe
            && let Some(entry) = core.aux_value(AT_ENTRY)
            && let Some(module) = unwinder.module_at(entry)
        {
            let original = module.path.to_path_buf();
            unwinder.replace_path(&original, exe);
        }
        let process = core.process().map(|p| Process {
            pid: p.pid,
            ppid: p.ppid,
            uid: p.uid,
            gid: p.gid,
            command: String::from_utf8_lossy(p.psargs).trim_end().to_string(),
        });
        let crashed_sp = core.threads().first().and_then(|t| t.registers.sp());
        let signal = core.siginfo().map(|s| {
            let overflow = stack_overflow(s.signo, s.fault_address, crashed_sp);
            let mut description = s.describe();
            if let Some(text) = &overflow {
                description.push_str(&format!(" ({text})"));
            }
            Signal {
                number: s.signo,
                name: s.signal_name(),
                description,
                fault_address: s.fault_address,
                stack_overflow: overflow.is_some(),
            }
        });
        let mut symbolizers = Symbolizers {
            sysroot: options.sysroot.clone(),
            cache: if options.dwarf_cache {
                DwarfCache::user()
            } else {
                None
            },
            by_file: HashMap::new(),
        };
        let build_id_mismatches = unwinder
            .build_id_mismatches()
            .iter()
            .map(Mismatch::new)
            .collect();
        // The kernel writes the dumping thread's NT_PRSTATUS first
        // (fs/binfmt_elf.c, fill_note_info): that is the crashing thread.
        let threads = core
            .threads()
            .iter()
            .enumerate()
            .map(|(i, thread)| {
                let frames = unwinder.backtrace(&thread.registers);
                ThreadReport {
                    tid: thread.tid,
                    crashed: i == 0,
                    registers: options.registers.then(|| thread.registers.list()),
                    truncated: frames.len() >= options.max_frames,
                    frames: symbolize(&frames, &mut unwinder, &mut symbolizers),
                }
            })
            .collect();
        CoreReport {
            core: path.to_path_buf(),
            process,
            signal,
            build_id_mismatches,
            threads,
        }
    }
}

/// The frames of one backtrace, each one or more (its inlined calls)
/// with its symbols.
fn symbolize(
    frames: &[UnwoundFrame],
    unwinder: &mut Unwinder<'_, '_>,
    symbolizers: &mut Symbolizers,
) -> Vec<FrameReport> {
    let mut reports = Vec::new();
    for (n, frame) in frames.iter().enumerate() {
        let signal_trampoline = frames
            .get(n + 1)
            .is_some_and(|next| next.source == FrameSource::Signal);
        // A signal trampoline's pc is where the handler returns to: the
        // trampoline's first instruction, not after a call.
        let caller = frame.source.is_return_address() && !signal_trampoline;
        let source = frame.source.name();
        let located = unwinder
            .relative_address(frame.pc)
            .map(|(module, address)| (module.path.to_path_buf(), address));
        let module = unwinder.module_at(frame.pc).map(|m| module_name(m.path));
        // No address in another build is looked up (relative_address gives
        // none).
        let build_id_mismatch = unwinder.build_id_mismatch(frame.pc).is_some();
        let symbols = match located {
            Some((path, address)) => {
                let file = unwinder.file_of(&path);
                // A return address is looked up one byte back, in the call
                // instruction.
                let lookup = if caller {
                    address.wrapping_sub(1)
                } else {
                    address
                };
                symbolizers
                    .get(&file)
                    .map(|s| s.lookup(lookup))
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        if symbols.is_empty() {
            reports.push(FrameReport {
                index: reports.len(),
                pc: frame.pc,
                symbols: Frame::default(),
                signal_trampoline,
                module: module.clone(),
                build_id_mismatch,
                source,
            });
        }
        for mut symbol in symbols {
            // The offset of the return address itself, as gdb shows it.
            symbol.offset = symbol.offset.map(|o| if caller { o + 1 } else { o });
            reports.push(FrameReport {
                index: reports.len(),
                pc: frame.pc,
                signal_trampoline: signal_trampoline && !symbol.inlined,
                symbols: symbol,
                module: module.clone(),
                build_id_mismatch,
                source,
            });
        }
    }
    reports
}

/// Says "stack overflow" when a SIGSEGV's fault address is within
/// [`STACK_OVERFLOW_REACH`] of the crashing thread's stack pointer.
fn stack_overflow(signo: i32, fault: Option<u64>, sp: Option<u64>) -> Option<String> {
    const SIGSEGV: i32 = 11;
    let (fault, sp) = (fault?, sp?);
    if signo != SIGSEGV || fault.abs_diff(sp) > STACK_OVERFLOW_REACH {
        return None;
    }
    Some(format!("stack overflow: the stack pointer is {sp:#x}"))
}

/// The file name of `path` (all of it when it has none).
fn module_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One symbolizer per file, `None` for a file that cannot be read; debug
/// files are looked for under the sysroot.
struct Symbolizers {
    sysroot: Option<PathBuf>,
    cache: Option<DwarfCache>,
    by_file: HashMap<PathBuf, Option<Symbolizer>>,
}

impl Symbolizers {
    fn get(&mut self, file: &Path) -> Option<&Symbolizer> {
        self.by_file
            .entry(file.to_path_buf())
            .or_insert_with(|| {
                let object = ObjectFile::open(file).ok()?;
                let debug = DebugFiles::find(&object, self.sysroot.as_deref());
                Symbolizer::with_cache(object, debug, self.cache.as_ref()).ok()
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segv_next_to_the_stack_pointer_is_a_stack_overflow() {
        let sp = 0x7ffd_0000_1000;
        assert_eq!(
            stack_overflow(11, Some(sp - 8), Some(sp)).as_deref(),
            Some("stack overflow: the stack pointer is 0x7ffd00001000")
        );
        assert!(stack_overflow(11, Some(sp + STACK_OVERFLOW_REACH), Some(sp)).is_some());
        assert!(stack_overflow(11, Some(sp - STACK_OVERFLOW_REACH - 1), Some(sp)).is_none());
        // Another signal, or no fault address or stack pointer: no verdict.
        assert!(stack_overflow(7, Some(sp), Some(sp)).is_none());
        assert!(stack_overflow(11, None, Some(sp)).is_none());
        assert!(stack_overflow(11, Some(0), None).is_none());
        assert!(stack_overflow(11, Some(0), Some(sp)).is_none());
    }

    #[test]
    fn modules_are_named_by_their_file_name() {
        assert_eq!(module_name(Path::new("/usr/lib/libc.so.6")), "libc.so.6");
        assert_eq!(module_name(Path::new("/")), "/");
    }

    #[test]
    fn mismatches_are_told_in_hex() {
        let m = Mismatch::new(&BuildIdMismatch {
            path: PathBuf::from("/bin/prog"),
            file: PathBuf::from("/sysroot/bin/prog"),
            in_core: vec![0xab, 0x01],
            in_file: None,
        });
        assert_eq!(
            (m.module.as_str(), m.core_build_id.as_str(), m.file_build_id),
            ("prog", "ab01", None)
        );
    }
}
