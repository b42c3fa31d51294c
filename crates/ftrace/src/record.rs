//! Recording a session to files: one thread per CPU moves whole
//! sub-buffers from the CPU's `trace_pipe_raw` into a file of its own
//! with splice(2), through a pipe, so that no byte of trace data passes
//! through user space and nothing is decoded on the hot path. When the
//! recording stops, what the kernel still holds (partly filled
//! sub-buffers, which splice does not hand out) is read with read(2).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use kscope_outfile::PrivateDir;
use kscope_tracedat::{CpuData, TraceData, TraceFile};
use kscope_tracefs::Instance;

use crate::capture::Metadata;
use crate::session::{Session, SessionError};
use crate::sys::{self, SplicePipe};

/// How many sub-buffers one splice asks for: a default pipe holds 16
/// pages.
const PAGES_PER_SPLICE: usize = 16;

/// How long a recording thread waits in poll(2) before it looks whether
/// it was told to stop.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// How long a recording thread sleeps when poll said readable but no
/// whole sub-buffer was there to move.
const PARTIAL_PAGE_PAUSE: Duration = Duration::from_millis(50);

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A per-CPU file could not be created.
    #[error(transparent)]
    Create(#[from] kscope_outfile::Error),
    /// A per-CPU file could not be written.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Moving data out of the kernel failed.
    #[error("cannot move CPU {cpu}'s trace data with splice(2): {source}")]
    Splice {
        /// The CPU.
        cpu: u32,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The session failed while draining.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A recording thread panicked.
    #[error("the recording thread of CPU {0} failed")]
    Thread(u32),
    /// A per-CPU file could not be mapped to be written out.
    #[error("cannot map CPU {cpu}'s file {path}: {source}")]
    Map {
        /// The CPU.
        cpu: u32,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: kscope_tracedat::Error,
    },
}

/// One CPU's recording: its file and how much it holds so far.
#[derive(Debug)]
pub struct CpuRecording {
    /// The CPU.
    pub cpu: u32,
    /// The file its sub-buffers go to.
    pub path: PathBuf,
    /// Bytes written so far (whole sub-buffers).
    pub bytes: Arc<AtomicU64>,
}

/// A CPU's counters, from its `per_cpu/cpuN/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// `entries:` events in the buffer, not read yet.
    pub entries: u64,
    /// `overrun:` events the buffer overwrote before they were read.
    pub overrun: u64,
    /// `dropped events:` events the kernel could not store.
    pub dropped_events: u64,
    /// `read events:` events read out of the buffer.
    pub read_events: u64,
}

impl CpuStats {
    /// Reads CPU `cpu`'s stats of `instance`; all zeros when they cannot
    /// be read.
    pub fn read(instance: &Instance, cpu: u32) -> CpuStats {
        CpuStats::parse(
            &instance
                .read(&format!("per_cpu/cpu{cpu}/stats"))
                .unwrap_or_default(),
        )
    }

    /// The counters of a stats text; a line that is missing or not a
    /// number counts 0.
    pub fn parse(text: &str) -> CpuStats {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        CpuStats {
            entries: field("entries:"),
            overrun: field("overrun:"),
            dropped_events: field("dropped events:"),
            read_events: field("read events:"),
        }
    }

    /// Events traced so far and kept: read, or waiting to be.
    pub fn events(&self) -> u64 {
        self.read_events + self.entries
    }

    /// Events lost: overwritten or dropped.
    pub fn lost(&self) -> u64 {
        self.overrun + self.dropped_events
    }
}

/// The per-CPU recording threads of a [`Session`]. Dropped before
/// [`Recorder::finish`] (an error on the way, in [`Recorder::start`]
/// too), it stops its threads and waits for them, so that they hold no
/// file of the instance open when the guard removes it.
pub struct Recorder {
    cpus: Vec<CpuRecording>,
    /// Each CPU's file, sharing its offset with the thread's.
    files: Vec<File>,
    threads: Vec<(u32, JoinHandle<Result<(), RecordError>>)>,
    stop: Arc<AtomicBool>,
    page_size: usize,
}

impl Recorder {
    /// Starts one thread per CPU of `session`, each splicing whole
    /// sub-buffers of `page_size` bytes into a new file `cpuN` of `dir`
    /// (a directory no one else can write to, so nothing planted there
    /// redirects the data).
    pub fn start(
        session: &Session,
        dir: &PrivateDir,
        page_size: usize,
    ) -> Result<Recorder, RecordError> {
        // Built as the threads start: an error on the way drops it, which
        // stops those already started.
        let mut recorder = Recorder {
            cpus: Vec::new(),
            files: Vec::new(),
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            page_size,
        };
        for (cpu, fd) in session.cpu_fds() {
            let name = format!("cpu{cpu}");
            let path = dir.path().join(&name);
            let file = dir.create_file(&name)?;
            recorder
                .files
                .push(file.try_clone().map_err(|source| RecordError::File {
                    path: path.clone(),
                    source,
                })?);
            let source = fd
                .try_clone_to_owned()
                .map_err(|source| RecordError::Splice { cpu, source })?;
            let bytes = Arc::new(AtomicU64::new(0));
            let worker = Worker {
                cpu,
                source,
                file,
                bytes: bytes.clone(),
                stop: recorder.stop.clone(),
                page_size,
            };
            let handle = std::thread::Builder::new()
                .name(format!("kscope-cpu{cpu}"))
                .spawn(move || worker.run())
                .map_err(|source| RecordError::Splice { cpu, source })?;
            recorder.threads.push((cpu, handle));
            recorder.cpus.push(CpuRecording { cpu, path, bytes });
        }
        Ok(recorder)
    }

    /// The CPUs being recorded, with their byte counters.
    pub fn cpus(&self) -> &[CpuRecording] {
        &self.cpus
    }

    /// Stops the threads, then reads what the kernel still holds into the
    /// files, each sub-buffer padded to `page_size`. Call it after
    /// [`Session::stop`], so that nothing more arrives. Returns the files,
    /// mapped.
    pub fn finish(mut self, session: &mut Session) -> Result<Recorded, RecordError> {
        self.stop_threads()?;
        let pages = session.drain_all()?;
        let mut cpus = Vec::new();
        for (rec, mut file) in self.cpus.iter().zip(std::mem::take(&mut self.files)) {
            for page in pages.iter().filter(|p| p.cpu == rec.cpu) {
                let mut bytes = page.bytes.clone();
                bytes.resize(self.page_size.max(bytes.len()), 0);
                file.write_all(&bytes).map_err(|source| RecordError::File {
                    path: rec.path.clone(),
                    source,
                })?;
                rec.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            let map = TraceFile::from_file(&file).map_err(|source| RecordError::Map {
                cpu: rec.cpu,
                path: rec.path.clone(),
                source,
            })?;
            cpus.push((rec.cpu, map));
        }
        Ok(Recorded {
            cpus,
            page_size: self.page_size,
        })
    }

    /// Tells the threads to stop and waits for each; the first failure
    /// is returned, after every thread has ended.
    fn stop_threads(&mut self) -> Result<(), RecordError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = Ok(());
        for (cpu, handle) in self.threads.drain(..) {
            let ended = handle.join().map_err(|_| RecordError::Thread(cpu));
            if first.is_ok() {
                first = ended.and_then(|result| result);
            }
        }
        first
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // After finish, there is nothing left to stop; on an error path,
        // the error being returned already says what went wrong.
        let _ = self.stop_threads();
    }
}

/// What a [`Recorder`] recorded: each CPU's file, mapped, whole
/// sub-buffers of `page_size` bytes one after another.
pub struct Recorded {
    cpus: Vec<(u32, TraceFile)>,
    page_size: usize,
}

impl Recorded {
    /// Each CPU with its recorded bytes, in CPU order.
    pub fn cpus(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.cpus.iter().map(|(cpu, map)| (*cpu, map.bytes()))
    }

    /// The bytes recorded, all CPUs together.
    pub fn bytes(&self) -> u64 {
        self.cpus().map(|(_, bytes)| bytes.len() as u64).sum()
    }

    /// The trace.dat contents: `metadata` (captured once the recording
    /// stopped) and the recorded CPUs as the top-level buffer, borrowed
    /// from their mapped files.
    pub fn trace_data<'a>(&'a self, metadata: &'a Metadata) -> TraceData<'a> {
        let page_size = self.page_size as u32;
        let cpus = self
            .cpus()
            .map(|(cpu, data)| CpuData {
                cpu,
                data: Cow::Borrowed(data),
            })
            .collect();
        metadata.trace_data(page_size, vec![metadata.buffer("", page_size, cpus)])
    }
}

struct Worker {
    cpu: u32,
    source: OwnedFd,
    file: File,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    page_size: usize,
}

impl Worker {
    fn run(self) -> Result<(), RecordError> {
        let failed = |source: io::Error| RecordError::Splice {
            cpu: self.cpu,
            source,
        };
        let pipe = SplicePipe::new().map_err(failed)?;
        let chunk = self.page_size * PAGES_PER_SPLICE;
        while !self.stop.load(Ordering::Relaxed) {
            sys::wait_readable(&[self.source.as_fd()], POLL_TIMEOUT).map_err(failed)?;
            let mut moved_any = false;
            loop {
                let n = pipe.fill(self.source.as_fd(), chunk).map_err(failed)?;
                if n == 0 {
                    break;
                }
                moved_any = true;
                pipe.drain_into(self.file.as_fd(), n).map_err(failed)?;
                self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            if !moved_any {
                // Data but no whole sub-buffer yet: splice hands out whole
                // ones only, and poll says readable for any data.
                std::thread::sleep(PARTIAL_PAGE_PAUSE);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_s_stats_are_read_from_the_kernel_s_text() {
        // per_cpu/cpu0/stats as 6.18 writes it.
        let text = "entries: 12\noverrun: 3\ncommit overrun: 0\nbytes: 1460\n\
oldest event ts: 12345.678901\nnow ts: 12346.000000\ndropped events: 4\n\
read events: 100\n";
        let stats = CpuStats::parse(text);
        assert_eq!(
            stats,
            CpuStats {
                entries: 12,
                overrun: 3,
                dropped_events: 4,
                read_events: 100,
            }
        );
        assert_eq!(stats.events(), 112);
        assert_eq!(stats.lost(), 7);
        assert_eq!(CpuStats::parse(""), CpuStats::default());
        assert_eq!(CpuStats::parse("entries: many\n").entries, 0);
    }
}
