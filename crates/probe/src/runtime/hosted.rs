//! Host probes in the session: each run in its place among the
//! programs (what they sent printed first), its output written to the
//! session's, its `exit()` and runtime errors ending the session as the
//! programs' do; and the host timers' deadlines, which the session's loop
//! waits for.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Ending, POLL, RuntimeError, Session};
use crate::codegen::EXIT_FLAG;
use crate::host::{HostCode, HostError};
use crate::points::{AttachKind, Attachment};

impl Session {
    /// Interprets the host probe of attachment `index`, after printing
    /// what the programs sent before it. As the programs do, it does
    /// nothing once the exit flag is up, unless it is an end or error
    /// probe. Its `exit()` and its runtime errors end the session as the
    /// programs' do.
    pub(super) fn run_host(
        &mut self,
        index: usize,
        out: &mut dyn Write,
        ending: &mut Option<Ending>,
    ) -> Result<(), RuntimeError> {
        self.pump(out, Duration::ZERO, ending)?;
        let attachment = &self.attachments[index];
        let host_failed = |source| RuntimeError::Host {
            point: attachment.name.clone(),
            source,
        };
        let globals = &self.maps.globals_value;
        let at_end = matches!(attachment.kind, AttachKind::End | AttachKind::Error);
        if !at_end && globals.read_i64(EXIT_FLAG as usize).map_err(host_failed)? != 0 {
            return Ok(());
        }
        let process = crate::sys::host_process();
        let mut text = Vec::new();
        let shared = self.maps.shared(&self.generated);
        let result = self.host.run(attachment, shared, &process, &mut text);
        let written = out.write_all(&text).and_then(|()| out.flush());
        match result {
            Ok(outcome) if outcome.exited => {
                ending.get_or_insert(Ending::Exit);
            }
            Ok(_) => {}
            Err(HostError::Script(message)) => {
                globals
                    .write_bytes(EXIT_FLAG as usize, &1u64.to_ne_bytes())
                    .map_err(host_failed)?;
                ending.get_or_insert(Ending::Error(message));
            }
            Err(HostError::Map(source)) => return Err(host_failed(source)),
        }
        written.map_err(|source| RuntimeError::Run {
            what: "writing output",
            source,
        })
    }
}

/// The host timer probes' deadlines: each runs from the session's loop
/// once per period, the first a period after the probes are attached.
pub(super) struct HostTimers {
    /// Each timer's attachment, period and next deadline.
    timers: Vec<(usize, Duration, Instant)>,
}

impl HostTimers {
    pub(super) fn new(attachments: &[Attachment], host: &HostCode, start: Instant) -> HostTimers {
        let timers = attachments
            .iter()
            .enumerate()
            .filter(|(_, a)| host.is_host(a))
            .filter_map(|(i, a)| match a.kind {
                AttachKind::Timer { period_ns } => {
                    let period = Duration::from_nanos(period_ns.max(1));
                    Some((i, period, start + period))
                }
                _ => None,
            })
            .collect();
        HostTimers { timers }
    }

    /// How long to wait for records: until the next deadline, at most
    /// [`POLL`].
    pub(super) fn wait(&self, now: Instant) -> Duration {
        self.timers
            .iter()
            .map(|&(_, _, deadline)| deadline.saturating_duration_since(now))
            .fold(POLL, Duration::min)
    }

    /// The timers due at `now`, in attachment order, each with its next
    /// deadline set (a timer that fell behind skips what it missed).
    pub(super) fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (index, period, deadline) in &mut self.timers {
            if *deadline > now {
                continue;
            }
            due.push(*index);
            *deadline += *period;
            if *deadline <= now {
                *deadline = now + *period;
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timers(periods_ms: &[u64], start: Instant) -> HostTimers {
        HostTimers {
            timers: periods_ms
                .iter()
                .enumerate()
                .map(|(i, &ms)| {
                    let period = Duration::from_millis(ms);
                    (i, period, start + period)
                })
                .collect(),
        }
    }

    #[test]
    fn the_wait_ends_at_the_next_deadline_or_the_poll() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(timers(&[], start).wait(start), POLL);
        assert_eq!(timers(&[1000], start).wait(start), POLL);
        assert_eq!(timers(&[1000, 20], start).wait(start), ms(20));
        assert_eq!(timers(&[20], start).wait(start + ms(30)), Duration::ZERO);
    }

    #[test]
    fn due_timers_run_once_and_skip_what_they_missed() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut t = timers(&[100, 30], start);
        assert!(t.due(start + ms(10)).is_empty());
        assert_eq!(t.due(start + ms(30)), [1]);
        assert_eq!(t.due(start + ms(100)), [0, 1]);
        // Far behind: one run, the next deadline a period from now.
        assert_eq!(t.due(start + ms(1000)), [0, 1]);
        assert_eq!(t.wait(start + ms(1000)), ms(30));
        assert!(t.due(start + ms(1020)).is_empty());
    }
}
