//! A loaded BPF program: the kernel's fd for it. Dropping it closes the
//! fd, and the kernel unloads the program once nothing else holds it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::insn::Insn;
use crate::objects::kernel_name;
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
    /// BPF_PROG_TYPE_RAW_TRACEPOINT: raw tracepoints, whose context is
    /// the array of the tracepoint's u64 arguments; also what
    /// [`Program::test_run`] runs `begin` and `end` probes as.
    RawTracepoint,
}

impl ProgramType {
    fn raw(self) -> u32 {
        match self {
            ProgramType::SocketFilter => 1,
            ProgramType::Kprobe => 2,
            ProgramType::Tracepoint => 5,
            ProgramType::PerfEvent => 7,
            ProgramType::RawTracepoint => 17,
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
        let raw_name = kernel_name(name).map_err(invalid)?;
        if insns.is_empty() {
            return Err(invalid("it has no instructions"));
        }
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

    /// Runs the program once on this CPU through BPF_PROG_TEST_RUN (bpf
    /// cmd 10), for a [`ProgramType::RawTracepoint`] program: `ctx` is the
    /// u64 argument array the program sees through r1 (may be empty, at
    /// most 12 — the kernel's MAX_BPF_FUNC_ARGS — and at least as long as
    /// the program reads); returns the program's return value (r0's low
    /// 32 bits). This is how `begin`/`end` probes run in the kernel: the
    /// program's helpers (maps, ring buffers) act for real.
    pub fn test_run(&self, ctx: &[u64]) -> Result<u32> {
        if ctx.len() > MAX_TEST_RUN_ARGS {
            return Err(Error::Invalid {
                name: self.name.clone(),
                reason: "a test run takes at most 12 u64 context arguments",
            });
        }
        sys::prog_test_run(self.fd.as_fd(), ctx).map_err(|source| Error::TestRun {
            name: self.name.clone(),
            source: if source.raw_os_error() == Some(ENOTSUPP) {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the kernel cannot test-run a program of this type \
                     (ENOTSUPP); load it as a raw_tracepoint program",
                )
            } else {
                source
            },
        })
    }
}

/// MAX_BPF_FUNC_ARGS: the most context a raw_tracepoint test run takes.
const MAX_TEST_RUN_ARGS: usize = 12;

/// The kernel-internal ENOTSUPP (include/linux/errno.h), which bpf(2)
/// returns for a program type without a test run; libc has no name for it.
const ENOTSUPP: i32 = 524;

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::sys::fake::{self, Call};
    use crate::{Alu, Size};

    fn return_0() -> [Insn; 2] {
        [Insn::mov64_imm(0, 0), Insn::exit()]
    }

    /// BPF_PROG_LOAD, as bpf(2) numbers it.
    const PROG_LOAD: Call = Call::Bpf(5);

    #[test]
    fn a_refused_load_is_tried_again_with_a_log_and_keeps_the_errno() {
        let calls = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&calls);
        let err = fake::with_kernel(
            move |call| {
                seen.borrow_mut().push(call);
                Err(libc::EPERM)
            },
            || Program::load(ProgramType::Tracepoint, "kscope_t_eperm", &return_0()),
        )
        .unwrap_err();
        assert_eq!(*calls.borrow(), [PROG_LOAD, PROG_LOAD]);
        match &err {
            Error::Load {
                name,
                source,
                verifier_log,
            } => {
                assert_eq!(name, "kscope_t_eperm");
                assert_eq!(source.raw_os_error(), Some(libc::EPERM));
                assert_eq!(verifier_log, "");
            }
            other => panic!("not a load error: {other}"),
        }
        assert!(err.to_string().contains("Operation not permitted"), "{err}");
    }

    #[test]
    fn a_load_refused_without_a_log_but_accepted_with_one_succeeds() {
        let mut answers = vec![Err(libc::ENOSPC), Ok(())].into_iter();
        let program = fake::with_kernel(
            move |call| {
                assert_eq!(call, PROG_LOAD);
                answers
                    .next()
                    .expect("two loads at most")
                    .map(|()| fake::new_fd())
            },
            || Program::load(ProgramType::Kprobe, "kscope_t_retry", &return_0()),
        )
        .expect("the second load succeeds");
        assert_eq!(program.name(), "kscope_t_retry");
    }

    #[test]
    fn a_test_run_answered_enotsupp_says_which_type_can_be_test_run() {
        let err = fake::with_kernel(
            |call| match call {
                PROG_LOAD => Ok(fake::new_fd()),
                _ => Err(ENOTSUPP),
            },
            || {
                Program::load(ProgramType::Tracepoint, "kscope_t_nosupp", &return_0())
                    .expect("load")
                    .test_run(&[])
            },
        )
        .unwrap_err();
        match &err {
            Error::TestRun { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::Unsupported);
            }
            other => panic!("not a test-run error: {other}"),
        }
        assert!(
            err.to_string()
                .contains("load it as a raw_tracepoint program"),
            "{err}"
        );
        // Any other answer is passed on as the kernel gave it.
        let err = fake::with_kernel(
            |call| match call {
                PROG_LOAD => Ok(fake::new_fd()),
                _ => Err(libc::EINVAL),
            },
            || {
                Program::load(ProgramType::RawTracepoint, "kscope_t_einval", &return_0())
                    .expect("load")
                    .test_run(&[1])
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::TestRun { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
            "{err}"
        );
    }

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

    #[test]
    fn a_test_run_returns_what_the_program_returns() {
        if !crate::testing::bpf_works("BPF_PROG_TEST_RUN") {
            return;
        }
        // return ctx[0] + ctx[1], or 7 with no context at all.
        let sum = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_sum",
            &[
                Insn::ldx(Size::DW, 0, 1, 0),
                Insn::ldx(Size::DW, 2, 1, 8),
                Insn::alu64_reg(Alu::Add, 0, 2),
                Insn::exit(),
            ],
        )
        .expect("load");
        assert_eq!(sum.test_run(&[40, 2]).expect("run"), 42);
        assert_eq!(sum.test_run(&[u64::MAX, 8]).expect("run"), 7);
        // The program reads two arguments: one is not enough.
        let err = sum.test_run(&[1]).unwrap_err();
        assert!(
            matches!(&err, Error::TestRun { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
            "{err}"
        );
        assert!(err.to_string().contains("kscope_t_sum"), "{err}");
        assert!(matches!(sum.test_run(&[0; 13]), Err(Error::Invalid { .. })));
        let seven = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_seven",
            &[Insn::mov64_imm(0, 7), Insn::exit()],
        )
        .expect("load");
        assert_eq!(seven.test_run(&[]).expect("run"), 7);
        assert_eq!(seven.test_run(&[0; 12]).expect("run"), 7);
    }

    #[test]
    fn a_type_without_test_runs_says_which_type_has_them() {
        if !crate::testing::bpf_works("BPF_PROG_TEST_RUN") {
            return;
        }
        let program = Program::load(
            ProgramType::Tracepoint,
            "kscope_t_notest",
            &[Insn::mov64_imm(0, 0), Insn::exit()],
        )
        .expect("load");
        let err = program.test_run(&[]).unwrap_err().to_string();
        assert!(
            err.contains("raw_tracepoint") && err.contains("kscope_t_notest"),
            "{err}"
        );
    }
}
