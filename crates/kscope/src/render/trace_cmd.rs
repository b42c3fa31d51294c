//! Lines in the layout of `trace-cmd report` (trace-cmd 3.x,
//! tracecmd/trace-read.c): the task as `%16s-%-5d`, the CPU as `[%03d]`,
//! the latency flags, the time in seconds with microseconds, the event
//! name followed by enough spaces to fill 20 columns, then the event's
//! text; and `CPU:N [COUNT EVENTS DROPPED]` where the kernel dropped
//! events. The microseconds are rounded from nanoseconds as the kernel's
//! own `trace` file rounds them. Also the text of `trace-cmd report
//! --stat`.

use std::fmt::Write;

/// The latency columns the kernel prints from a record's `common_flags`
/// and `common_preempt_count`: irqs-off, need-resched, hard/soft irq,
/// preempt depth, migrate-disable depth (trace_print_lat_fmt in
/// kernel/trace/trace_output.c).
pub fn latency_flags(flags: u8, preempt_count: u8) -> String {
    const IRQS_OFF: u8 = 0x01;
    const NEED_RESCHED: u8 = 0x04;
    const HARDIRQ: u8 = 0x08;
    const SOFTIRQ: u8 = 0x10;
    const PREEMPT_RESCHED: u8 = 0x20;
    const NMI: u8 = 0x40;
    const BH_OFF: u8 = 0x80;
    let has = |bit: u8| flags & bit != 0;
    let irqs = match (has(IRQS_OFF), has(BH_OFF)) {
        (true, true) => 'D',
        (true, false) => 'd',
        (false, true) => 'b',
        _ => '.',
    };
    let resched = match (has(NEED_RESCHED), has(PREEMPT_RESCHED)) {
        (true, true) => 'N',
        (true, false) => 'n',
        (false, true) => 'p',
        _ => '.',
    };
    let context = match (has(NMI), has(HARDIRQ), has(SOFTIRQ)) {
        (true, true, _) => 'Z',
        (true, false, _) => 'z',
        (false, true, true) => 'H',
        (false, true, false) => 'h',
        (false, false, true) => 's',
        _ => '.',
    };
    let depth = |nibble: u8| {
        if nibble == 0 {
            '.'
        } else {
            char::from_digit(u32::from(nibble), 16).unwrap_or('?')
        }
    };
    [
        irqs,
        resched,
        context,
        depth(preempt_count & 0xf),
        depth(preempt_count >> 4),
    ]
    .iter()
    .collect()
}

/// Appends one record's line (without the newline), with the latency
/// columns.
#[allow(clippy::too_many_arguments)]
pub fn record_line(
    out: &mut String,
    comm: &str,
    pid: i32,
    cpu: u32,
    latency: &str,
    ts_ns: u64,
    event: &str,
    text: &str,
) {
    columns(out, comm, pid, cpu, Some(latency), ts_ns, event);
    out.push_str(text);
}

/// Appends the columns of a record's line as `trace-cmd report` prints
/// them (without latency columns, which it shows only with `-l`), up to
/// where the event's text starts.
pub fn report_columns(out: &mut String, comm: &str, pid: i32, cpu: u32, ts_ns: u64, event: &str) {
    columns(out, comm, pid, cpu, None, ts_ns, event);
}

/// The task as `%16s-%-5d`, the CPU as `[%03d]`, the latency flags if
/// any, the time in seconds and microseconds rounded half up, the event's
/// name and enough spaces to fill 20 columns. Written piece by piece, not
/// through `format!`: a report writes this for every record.
fn columns(
    out: &mut String,
    comm: &str,
    pid: i32,
    cpu: u32,
    latency: Option<&str>,
    ts_ns: u64,
    event: &str,
) {
    let usecs = ts_ns.saturating_add(500) / 1000;
    let (secs, micros) = (usecs / 1_000_000, usecs % 1_000_000);
    // Characters, not bytes, as printf counts them: every byte but
    // UTF-8's continuation bytes starts one.
    let chars = comm.bytes().filter(|b| b & 0xc0 != 0x80).count();
    spaces(out, 16usize.saturating_sub(chars));
    out.push_str(comm);
    // `-PID   [CPU] SECS.MICROS: ` is assembled on the stack and appended
    // in one piece (in two, around the latency flags, when there are any).
    let mut numbers = Digits::new();
    numbers.push(b'-');
    if pid < 0 {
        numbers.push(b'-');
    }
    let pid_len = numbers.decimal(u64::from(pid.unsigned_abs()), 0, b'0') + usize::from(pid < 0);
    numbers.fill(b' ', 5usize.saturating_sub(pid_len));
    numbers.push(b' ');
    numbers.push(b'[');
    numbers.decimal(u64::from(cpu), 3, b'0');
    numbers.push(b']');
    numbers.push(b' ');
    let secs_width = match latency {
        Some(flags) => {
            out.push_str(numbers.as_str());
            numbers = Digits::new();
            out.push_str(flags);
            out.push(' ');
            6
        }
        None => 5,
    };
    numbers.decimal(secs, secs_width, b' ');
    numbers.push(b'.');
    numbers.decimal(micros, 6, b'0');
    numbers.push(b':');
    numbers.push(b' ');
    out.push_str(numbers.as_str());
    out.push_str(event);
    out.push_str(": ");
    spaces(out, 20usize.saturating_sub(event.len()));
}

/// Appends `count` spaces, a slice of them at a time.
fn spaces(out: &mut String, count: usize) {
    const SPACES: &str = "                                ";
    let mut left = count;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
}

/// "00", "01", ... "99": the digits of every number below 100.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

/// A few numbers and ASCII bytes assembled on the stack: 64 bytes hold
/// a line's pid and CPU (at most 26 bytes with their brackets and
/// padding) and its time (at most 29).
struct Digits {
    bytes: [u8; 64],
    len: usize,
}

impl Digits {
    fn new() -> Digits {
        Digits {
            bytes: [0; 64],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn fill(&mut self, byte: u8, count: usize) {
        for _ in 0..count {
            self.push(byte);
        }
    }

    /// `value` in decimal, right-aligned in `width` columns filled with
    /// `fill`; returns how many digits it has. Two digits per division.
    fn decimal(&mut self, mut value: u64, width: usize, fill: u8) -> usize {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        while value >= 100 {
            let pair = 2 * (value % 100) as usize;
            value /= 100;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if value >= 10 {
            let pair = 2 * value as usize;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            start -= 1;
            digits[start] = b'0' + value as u8;
        }
        let len = digits.len() - start;
        self.fill(fill, width.saturating_sub(len));
        self.bytes[self.len..self.len + len].copy_from_slice(&digits[start..]);
        self.len += len;
        len
    }

    fn as_str(&self) -> &str {
        // Only ASCII bytes were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// The lines of `trace-cmd report`, for the report engine.
pub struct ReportLayout;

impl kscope_report::LineLayout for ReportLayout {
    fn columns(&self, out: &mut String, comm: &str, pid: i32, cpu: u32, ts: u64, event: &str) {
        report_columns(out, comm, pid, cpu, ts, event);
    }

    fn lost(&self, out: &mut String, cpu: u32, count: Option<u64>) {
        lost_line(out, cpu, count);
    }
}

/// `--stat`: trace-cmd's statistics (the kernel's per CPU, then where
/// each CPU's data sits in the file), then kscope's counts of events.
pub fn statistics(
    out: &mut impl std::io::Write,
    stat: &kscope_report::Statistics,
) -> std::io::Result<()> {
    writeln!(out, "cpus={}", stat.cpus)?;
    out.write_all(
        b"\nKernel buffer statistics:\n  Note: \"entries\" are the entries left in the kernel ring buffer and are not\n        recorded in the trace data. They should all be zero.\n\n",
    )?;
    if stat.cpu_stats.is_empty() {
        out.write_all(b" No stats in this file\n")?;
    } else {
        for text in &stat.cpu_stats {
            writeln!(out, "{text}")?;
        }
        writeln!(out)?;
    }
    for data in &stat.cpu_data {
        writeln!(
            out,
            "CPU{} data recorded at offset=0x{:x}\n    {} bytes in size",
            data.cpu, data.offset, data.size
        )?;
    }
    writeln!(out, "\nEvents in the file:")?;
    for (name, n) in &stat.counts {
        writeln!(out, "  {name:<32} {n:>12}")?;
    }
    writeln!(
        out,
        "  {:<32} {:>12}",
        "total",
        stat.counts.values().sum::<u64>()
    )?;
    writeln!(
        out,
        "Events the kernel dropped: {} counted, in {} more places uncounted",
        stat.lost, stat.unknown_lost
    )
}

/// Appends the line trace-cmd prints where a CPU dropped events.
pub fn lost_line(out: &mut String, cpu: u32, count: Option<u64>) {
    let _ = match count {
        Some(n) => write!(out, "CPU:{cpu} [{n} EVENTS DROPPED]"),
        None => write!(out, "CPU:{cpu} [EVENTS DROPPED]"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_columns_are_trace_cmd_reports() {
        let mut out = String::new();
        report_columns(&mut out, "sh", 17260, 0, 10_505_126_696_499, "sched_switch");
        out.push_str("text");
        assert_eq!(
            out,
            "              sh-17260 [000] 10505.126696: sched_switch:         text"
        );
        out.clear();
        // Rounded half up; a name of 20 or more gets no padding.
        report_columns(&mut out, "a", 1, 1, 5_500, "sys_exit_rt_sigprocmask");
        assert_eq!(
            out,
            "               a-1     [001]     0.000006: sys_exit_rt_sigprocmask: "
        );
    }

    #[test]
    fn columns_are_what_format_would_write() {
        let long = "x".repeat(300);
        let comms = [
            "",
            "a",
            "kworker/u8:1-events",
            "ñandú",
            "sixteen_chars_xx",
            &long,
        ];
        let pids = [0, 7, 12345, 123456, -1, i32::MIN, i32::MAX];
        let cpus = [0, 9, 100, 4096];
        let times = [0, 499, 500, 999_999_499, 12_345_678_901_234, u64::MAX];
        let events = [
            "x",
            "sched_switch",
            "a_name_of_twenty_chr",
            "sys_exit_rt_sigprocmask",
        ];
        for ((((comm, pid), cpu), ts), event) in comms
            .iter()
            .cycle()
            .zip(pids.iter().cycle())
            .zip(cpus.iter().cycle())
            .zip(times.iter().cycle())
            .zip(events.iter().cycle())
            .take(60)
        {
            let usecs = ts.saturating_add(500) / 1000;
            let (secs, micros) = (usecs / 1_000_000, usecs % 1_000_000);
            let pad = " ".repeat(20usize.saturating_sub(event.len()));
            let mut out = String::new();
            report_columns(&mut out, comm, *pid, *cpu, *ts, event);
            assert_eq!(
                out,
                format!("{comm:>16}-{pid:<5} [{cpu:03}] {secs:>5}.{micros:06}: {event}: {pad}")
            );
            out.clear();
            record_line(&mut out, comm, *pid, *cpu, "d..2.", *ts, event, "t");
            assert_eq!(
                out,
                format!(
                    "{comm:>16}-{pid:<5} [{cpu:03}] d..2. {secs:>6}.{micros:06}: {event}: {pad}t"
                )
            );
        }
    }

    #[test]
    fn a_record_line_has_trace_cmds_columns() {
        let mut out = String::new();
        record_line(
            &mut out,
            "bash",
            1234,
            1,
            "d..2.",
            5_678_123_456_789,
            "sched_switch",
            "prev_comm=bash",
        );
        assert_eq!(
            out,
            "            bash-1234  [001] d..2.   5678.123457: sched_switch:         prev_comm=bash"
        );
    }

    #[test]
    fn latency_flags_follow_the_kernel() {
        assert_eq!(latency_flags(0, 0), ".....");
        assert_eq!(latency_flags(0x01, 2), "d..2.");
        assert_eq!(latency_flags(0x01 | 0x04 | 0x20 | 0x08, 0x11), "dNh11");
        assert_eq!(latency_flags(0x10 | 0x80, 0), "b.s..");
    }

    #[test]
    fn lost_events_lines() {
        let mut out = String::new();
        lost_line(&mut out, 1, Some(1234));
        assert_eq!(out, "CPU:1 [1234 EVENTS DROPPED]");
        out.clear();
        lost_line(&mut out, 0, None);
        assert_eq!(out, "CPU:0 [EVENTS DROPPED]");
    }
}
