//! Recording a session to files: one thread per CPU moves whole
//! sub-buffers from the CPU's `trace_pipe_raw` into a file of its own
//! with splice(2), through a pipe, so that no byte of trace data passes
//! through user space and nothing is decoded on the hot path. When the
//! recording stops, what the kernel still holds (partly filled
//! sub-buffers, which splice does not hand out) is read with read(2).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::pipe::{SpliceFlags, pipe, splice};

use kscope_outfile::PrivateDir;

use crate::session::{Session, SessionError};

/// How many sub-buffers one splice asks for: a default pipe holds 16
/// pages.
const PAGES_PER_SPLICE: usize = 16;

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

/// The per-CPU recording threads of a [`Session`].
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
        let stop = Arc::new(AtomicBool::new(false));
        let mut cpus = Vec::new();
        let mut files = Vec::new();
        let mut threads = Vec::new();
        for (cpu, fd) in session.cpu_fds() {
            let name = format!("cpu{cpu}");
            let path = dir.path().join(&name);
            let file = dir.create_file(&name)?;
            files.push(file.try_clone().map_err(|source| RecordError::File {
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
                stop: stop.clone(),
                page_size,
            };
            let handle = std::thread::Builder::new()
                .name(format!("kscope-cpu{cpu}"))
                .spawn(move || worker.run())
                .map_err(|source| RecordError::Splice { cpu, source })?;
            threads.push((cpu, handle));
            cpus.push(CpuRecording { cpu, path, bytes });
        }
        Ok(Recorder {
            cpus,
            files,
            threads,
            stop,
            page_size,
        })
    }

    /// The CPUs being recorded, with their byte counters.
    pub fn cpus(&self) -> &[CpuRecording] {
        &self.cpus
    }

    /// Stops the threads, then reads what the kernel still holds into the
    /// files, each sub-buffer padded to `page_size`. Call it after
    /// [`Session::stop`], so that nothing more arrives. Returns the files.
    pub fn finish(self, session: &mut Session) -> Result<Vec<(u32, File)>, RecordError> {
        self.stop.store(true, Ordering::Relaxed);
        for (cpu, handle) in self.threads {
            handle.join().map_err(|_| RecordError::Thread(cpu))??;
        }
        let pages = session.drain_all()?;
        let mut files = Vec::new();
        for (rec, mut file) in self.cpus.iter().zip(self.files) {
            for page in pages.iter().filter(|p| p.cpu == rec.cpu) {
                let mut bytes = page.bytes.clone();
                bytes.resize(self.page_size.max(bytes.len()), 0);
                file.write_all(&bytes).map_err(|source| RecordError::File {
                    path: rec.path.clone(),
                    source,
                })?;
                rec.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            files.push((rec.cpu, file));
        }
        Ok(files)
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
        let failed = |source: rustix::io::Errno| RecordError::Splice {
            cpu: self.cpu,
            source: source.into(),
        };
        let (pipe_read, pipe_write) = pipe().map_err(failed)?;
        let chunk = self.page_size * PAGES_PER_SPLICE;
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        while !self.stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(&self.source, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(failed(e)),
            }
            let mut moved_any = false;
            loop {
                let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
                let n = match splice(&self.source, None, &pipe_write, None, chunk, flags) {
                    Ok(0) | Err(rustix::io::Errno::AGAIN) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Ok(n) => n,
                    Err(e) => return Err(failed(e)),
                };
                moved_any = true;
                let mut left = n;
                while left > 0 {
                    match splice(
                        &pipe_read,
                        None,
                        self.file.as_fd(),
                        None,
                        left,
                        SpliceFlags::MOVE,
                    ) {
                        Ok(0) => break,
                        Ok(m) => left -= m,
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(failed(e)),
                    }
                }
                self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            if !moved_any {
                // Data but no whole sub-buffer yet: splice hands out whole
                // ones only, and poll says readable for any data.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}
