//! The errors of this crate.

use std::io;
use std::path::PathBuf;

/// What went wrong talking to bpf(2) or perf_event_open(2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The verifier or the syscall refused a program.
    #[error("the kernel refused to load BPF program {name:?}: {source}{}", log_suffix(.verifier_log))]
    Load {
        /// The program's name.
        name: String,
        /// The kernel's answer (EPERM: no CAP_BPF/CAP_SYS_ADMIN; EINVAL:
        /// unknown program type; EACCES: the verifier said no).
        source: io::Error,
        /// The verifier's log, when it wrote one.
        verifier_log: String,
    },
    /// perf_event_open(2) failed.
    #[error("perf_event_open of {what} failed: {source}")]
    PerfOpen {
        /// The event that was asked for.
        what: String,
        /// The kernel's answer (EACCES/EPERM: perf_event_paranoid or
        /// lockdown; ENOENT/EOPNOTSUPP: no such event here).
        source: io::Error,
    },
    /// The program is too long or badly named before it reaches the kernel.
    #[error("BPF program {name:?}: {reason}")]
    Invalid {
        /// The program's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// bpf(2) refused to create a map or to work on one of its elements.
    #[error("BPF map {name:?}: {op} failed: {source}")]
    Map {
        /// The map's name.
        name: String,
        /// What was asked: "creating it", "updating an element",
        /// "looking up an element".
        op: &'static str,
        /// The kernel's answer (EPERM: no CAP_BPF/CAP_SYS_ADMIN; EINVAL:
        /// sizes this map type does not take; ENOENT: no such key; E2BIG:
        /// the index is past max_entries).
        source: io::Error,
    },
    /// A map request refused before it reached the kernel: a bad name,
    /// a buffer of the wrong size, an element operation on a ring buffer.
    #[error("BPF map {name:?}: {reason}")]
    MapInvalid {
        /// The map's name.
        name: String,
        /// What is wrong, with the sizes involved.
        reason: String,
    },
    /// Mapping a ring buffer's pages or waiting for its records failed.
    #[error("BPF ring buffer {name:?}: {what} failed: {source}")]
    RingBuf {
        /// The ring buffer map's name.
        name: String,
        /// What was being done: "mapping its pages", "waiting for records".
        what: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A ring buffer size the kernel would refuse.
    #[error(
        "BPF ring buffer {name:?}: size {size} must be a power of two and a multiple of \
         the page size ({page_size} bytes); the nearest size that is: {suggested}"
    )]
    RingBufSize {
        /// The ring buffer map's name.
        name: String,
        /// The size asked for, in bytes.
        size: u32,
        /// This machine's page size.
        page_size: usize,
        /// The smallest valid size not below `size`.
        suggested: u64,
    },
    /// BPF_PROG_TEST_RUN refused to run a program.
    #[error("test run of BPF program {name:?} failed: {source}")]
    TestRun {
        /// The program's name.
        name: String,
        /// The kernel's answer (EINVAL: the program reads more of its
        /// context than was given, or its type takes other test input;
        /// for a type without test runs at all, whose kernel answer is
        /// ENOTSUPP (524), an error of kind Unsupported that says so).
        source: io::Error,
    },
    /// Walking the kernel's list of loaded BPF objects failed.
    #[error("listing the kernel's BPF {what} failed: {source} (listing needs CAP_SYS_ADMIN)")]
    ObjectList {
        /// "programs" or "maps".
        what: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A sysfs CPU list (online, possible) could not be read.
    #[error("cannot read the CPU list {}: {source}", .path.display())]
    CpuListRead {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// A sysfs CPU list is not in the kernel's "0-3,8-9" notation.
    #[error("bad CPU list {text:?} in {}: at byte {offset}, expected {expected}", .path.display())]
    CpuList {
        /// The file.
        path: PathBuf,
        /// Its contents, trimmed.
        text: String,
        /// Where in `text` the parse stopped.
        offset: usize,
        /// What should have been there.
        expected: &'static str,
    },
}

fn log_suffix(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!("\nverifier log:\n{}", log.trim_end())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
