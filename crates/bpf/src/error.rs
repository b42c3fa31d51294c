//! The errors of this crate.

use std::io;

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
