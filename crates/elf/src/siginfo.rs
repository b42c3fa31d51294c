//! `NT_SIGINFO`: the `siginfo_t` of the signal that killed the process, and
//! its description in words. Signal names and `si_code` texts follow the
//! Linux man pages signal(7) and sigaction(2) (numbers of x86-64 and the
//! generic ABI, which aarch64 shares).

/// The signal that made the dump, from `NT_SIGINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    /// `si_signo`.
    pub signo: i32,
    /// `si_errno`.
    pub errno: i32,
    /// `si_code`: why the signal was sent.
    pub code: i32,
    /// `si_addr` for a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE raised by
    /// the kernel with a signal-specific code); `None` otherwise.
    pub fault_address: Option<u64>,
    /// `si_pid` and `si_uid` of the sender when a process sent the signal
    /// (`si_code` <= 0, SI_USER, SI_TKILL, SI_QUEUE...).
    pub sender: Option<(i32, u32)>,
}

/// `si_code` of a signal sent by the kernel without a specific reason.
pub const SI_KERNEL: i32 = 0x80;

impl SigInfo {
    /// Decodes the 128-byte `siginfo_t`: si_signo, si_errno, si_code at 0,
    /// 4, 8; the union at 16 (si_addr, or si_pid and si_uid). `None` when
    /// `desc` is shorter than 24 bytes.
    pub fn from_bytes(desc: &[u8]) -> Option<SigInfo> {
        let i32_at = |p: usize| -> Option<i32> {
            let b = desc.get(p..p + 4)?;
            Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let signo = i32_at(0)?;
        let errno = i32_at(4)?;
        let code = i32_at(8)?;
        let lo = i32_at(16)? as u32 as u64;
        let hi = i32_at(20)? as u32 as u64;
        let is_fault = matches!(signo, 4 | 7 | 8 | 11);
        let fault_address = (is_fault && code > 0 && code != SI_KERNEL).then_some(lo | hi << 32);
        let sender = (code <= 0).then_some((lo as i32, hi as u32));
        Some(SigInfo {
            signo,
            errno,
            code,
            fault_address,
            sender,
        })
    }

    /// The signal's name, like "SIGSEGV" (or "SIGRTMIN+3", "signal 99").
    pub fn signal_name(&self) -> String {
        signal_name(self.signo)
    }

    /// What `si_code` says, like "address not mapped"; `None` for a code
    /// the man pages do not list for this signal.
    pub fn code_text(&self) -> Option<&'static str> {
        code_text(self.signo, self.code)
    }

    /// The signal in words: "SIGSEGV: address not mapped, at 0x0", or
    /// "SIGABRT: sent by tkill or tgkill, from pid 42 (uid 0)".
    pub fn describe(&self) -> String {
        let mut out = self.signal_name();
        match self.code_text() {
            Some(text) => {
                out.push_str(": ");
                out.push_str(text);
            }
            None => out.push_str(&format!(": si_code {}", self.code)),
        }
        if let Some(addr) = self.fault_address {
            out.push_str(&format!(", at {addr:#x}"));
        }
        if let Some((pid, uid)) = self.sender {
            out.push_str(&format!(", from pid {pid} (uid {uid})"));
        }
        out
    }
}

const SIGNAL_NAMES: [&str; 32] = [
    "signal 0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of signal `signo` on Linux x86-64 and aarch64.
pub fn signal_name(signo: i32) -> String {
    match signo {
        0..=31 => SIGNAL_NAMES[signo as usize].to_string(),
        34 => "SIGRTMIN".to_string(),
        35..=63 => format!("SIGRTMIN+{}", signo - 34),
        64 => "SIGRTMAX".to_string(),
        _ => format!("signal {signo}"),
    }
}

/// The man pages' text for `si_code` `code` of signal `signo`.
pub fn code_text(signo: i32, code: i32) -> Option<&'static str> {
    let general = match code {
        0 => Some("sent by kill"),
        SI_KERNEL => Some("sent by the kernel"),
        -1 => Some("sent by sigqueue"),
        -2 => Some("POSIX timer expired"),
        -3 => Some("POSIX message queue state changed"),
        -4 => Some("AIO completed"),
        -5 => Some("queued SIGIO"),
        -6 => Some("sent by tkill or tgkill"),
        _ => None,
    };
    if general.is_some() {
        return general;
    }
    let texts: &[&str] = match signo {
        4 => &[
            "illegal opcode",
            "illegal operand",
            "illegal addressing mode",
            "illegal trap",
            "privileged opcode",
            "privileged register",
            "coprocessor error",
            "internal stack error",
            "unimplemented instruction address",
        ],
        5 => &[
            "process breakpoint",
            "process trace trap",
            "process taken branch trap",
            "hardware breakpoint or watchpoint",
        ],
        7 => &[
            "invalid address alignment",
            "nonexistent physical address",
            "object-specific hardware error",
            "hardware memory error consumed on a machine check; action required",
            "hardware memory error detected in process but not consumed; action optional",
        ],
        8 => &[
            "integer divide by zero",
            "integer overflow",
            "floating-point divide by zero",
            "floating-point overflow",
            "floating-point underflow",
            "floating-point inexact result",
            "floating-point invalid operation",
            "subscript out of range",
            "undiagnosed floating-point exception",
            "trap on condition",
        ],
        11 => &[
            "address not mapped",
            "invalid permissions for mapped object",
            "failed address bound checks",
            "access denied by memory protection keys",
            "ADI not enabled for mapped object",
            "disrupting MCD error",
            "precise MCD exception",
            "asynchronous ARM MTE error",
            "synchronous ARM MTE exception",
            "control protection fault",
        ],
        17 => &[
            "child has exited",
            "child was killed",
            "child terminated abnormally",
            "traced child has trapped",
            "child has stopped",
            "stopped child has continued",
        ],
        _ => &[],
    };
    usize::try_from(code)
        .ok()
        .and_then(|c| c.checked_sub(1))
        .and_then(|i| texts.get(i))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siginfo(signo: i32, code: i32, word0: u32, word1: u32) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&signo.to_le_bytes());
        b[8..12].copy_from_slice(&code.to_le_bytes());
        b[16..20].copy_from_slice(&word0.to_le_bytes());
        b[20..24].copy_from_slice(&word1.to_le_bytes());
        b
    }

    #[test]
    fn describes_faults_and_senders() {
        let d = |b: &[u8]| SigInfo::from_bytes(b).unwrap().describe();
        assert_eq!(
            d(&siginfo(11, 1, 0, 0)),
            "SIGSEGV: address not mapped, at 0x0"
        );
        assert_eq!(
            d(&siginfo(11, 2, 0x1000, 0x7fff)),
            "SIGSEGV: invalid permissions for mapped object, at 0x7fff00001000"
        );
        assert_eq!(
            d(&siginfo(11, SI_KERNEL, 0, 0)),
            "SIGSEGV: sent by the kernel"
        );
        assert_eq!(
            d(&siginfo(7, 1, 3, 0)),
            "SIGBUS: invalid address alignment, at 0x3"
        );
        assert_eq!(
            d(&siginfo(8, 1, 16, 0)),
            "SIGFPE: integer divide by zero, at 0x10"
        );
        assert_eq!(d(&siginfo(4, 2, 16, 0)), "SIGILL: illegal operand, at 0x10");
        assert_eq!(
            d(&siginfo(6, -6, 42, 1000)),
            "SIGABRT: sent by tkill or tgkill, from pid 42 (uid 1000)"
        );
        assert_eq!(
            d(&siginfo(11, 0, 7, 0)),
            "SIGSEGV: sent by kill, from pid 7 (uid 0)"
        );
        assert_eq!(d(&siginfo(11, 99, 0, 0)), "SIGSEGV: si_code 99, at 0x0");
        assert_eq!(d(&siginfo(40, 99, 0, 0)), "SIGRTMIN+6: si_code 99");
        assert_eq!(
            d(&siginfo(-3, i32::MIN, 0, 0)),
            "signal -3: si_code -2147483648, from pid 0 (uid 0)"
        );
        assert_eq!(SigInfo::from_bytes(&[0; 23]), None);
    }
}
