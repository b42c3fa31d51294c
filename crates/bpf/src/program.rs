//! A loaded BPF program: the kernel's fd for it. Dropping it closes the
//! fd, and the kernel unloads the program once nothing else holds it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::insn::Insn;
use crate::sys;

/// The program types kscope loads (values of `enum bpf_prog_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramType {
    /// BPF_PROG_TYPE_SOCKET_FILTER: loads even where tracing is off.
    SocketFilter,
    /// BPF_PROG_TYPE_KPROBE: kprobes and uprobes.
    Kprobe,
    /// BPF_PROG_TYPE_TRACEPOINT.
    Tracepoint,
    /// BPF_PROG_TYPE_PERF_EVENT: sampling (timer.profile).
    PerfEvent,
}

impl ProgramType {
    fn raw(self) -> u32 {
        match self {
            ProgramType::SocketFilter => 1,
            ProgramType::Kprobe => 2,
            ProgramType::Tracepoint => 5,
            ProgramType::PerfEvent => 7,
        }
    }
}

/// A program the kernel has accepted.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    name: String,
}

/// Enough for the verifier's explanation of a small program.
const VERIFIER_LOG_BYTES: usize = 64 * 1024;

impl Program {
    /// Hands `insns` to the verifier. `name` (at most 15 bytes, letters,
    /// digits, `_` and `.`) is what `bpftool prog` shows.
    pub fn load(kind: ProgramType, name: &str, insns: &[Insn]) -> Result<Program> {
        let invalid = |reason| Error::Invalid {
            name: name.to_string(),
            reason,
        };
        if name.len() > 15 {
            return Err(invalid("the name is longer than 15 bytes"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(invalid(
                "the name may hold only letters, digits, '_' and '.'",
            ));
        }
        if insns.is_empty() {
            return Err(invalid("it has no instructions"));
        }
        let mut raw_name = [0u8; 16];
        raw_name[..name.len()].copy_from_slice(name.as_bytes());
        let bytes: Vec<u8> = insns.iter().flat_map(Insn::encode).collect();
        // First without a log: the kernel refuses a log buffer that is too
        // small for a large program, and most loads succeed.
        match sys::prog_load(kind.raw(), &bytes, &raw_name, &mut []) {
            Ok(fd) => Ok(Program {
                fd,
                name: name.to_string(),
            }),
            Err(_) => {
                // Again with a log, for the verifier's explanation.
                let mut log = vec![0u8; VERIFIER_LOG_BYTES];
                match sys::prog_load(kind.raw(), &bytes, &raw_name, &mut log) {
                    Ok(fd) => Ok(Program {
                        fd,
                        name: name.to_string(),
                    }),
                    Err(source) => {
                        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                        Err(Error::Load {
                            name: name.to_string(),
                            source,
                            verifier_log: String::from_utf8_lossy(&log[..end]).into_owned(),
                        })
                    }
                }
            }
        }
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_and_empty_programs_are_refused_before_the_kernel() {
        let ok = [Insn::mov64_imm(0, 0), Insn::exit()];
        for name in ["this-has-dashes", "a_name_that_is_too_long"] {
            assert!(matches!(
                Program::load(ProgramType::Tracepoint, name, &ok),
                Err(Error::Invalid { .. })
            ));
        }
        assert!(matches!(
            Program::load(ProgramType::Tracepoint, "empty", &[]),
            Err(Error::Invalid { .. })
        ));
    }
}
