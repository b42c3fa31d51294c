//! `available_events` of tracefs: one `SYSTEM:EVENT` line per trace
//! event the kernel offers. Doctor wants how many there are, in how many
//! systems, and how many of them are syscall entries and exits.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What an `available_events` listing holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    /// Lines with a `:`.
    pub events: usize,
    /// Distinct systems (the part before the first `:`).
    pub systems: usize,
    /// `syscalls:sys_enter_*` events.
    pub sys_enter: usize,
    /// `syscalls:sys_exit_*` events.
    pub sys_exit: usize,
}

impl EventList {
    /// Reads a listing; lines without a `:` are skipped.
    pub fn parse(text: &str) -> EventList {
        let mut list = EventList::default();
        let mut systems = BTreeSet::new();
        for line in text.lines() {
            let Some((system, _)) = line.split_once(':') else {
                continue;
            };
            list.events += 1;
            systems.insert(system);
            if line.starts_with("syscalls:sys_enter_") {
                list.sys_enter += 1;
            } else if line.starts_with("syscalls:sys_exit_") {
                list.sys_exit += 1;
            }
        }
        list.systems = systems.len();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_systems_and_syscalls_are_counted() {
        let text = "\
sched:sched_switch
sched:sched_wakeup
syscalls:sys_enter_read
syscalls:sys_exit_read
syscalls:sys_enter_write
not an event
";
        let list = EventList::parse(text);
        assert_eq!(
            list,
            EventList {
                events: 5,
                systems: 2,
                sys_enter: 2,
                sys_exit: 1,
            }
        );
        assert_eq!(EventList::parse(""), EventList::default());
    }
}
