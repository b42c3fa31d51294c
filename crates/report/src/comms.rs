//! Task names: the file's saved cmdlines, then the names trace-cmd's
//! sched plugin learns from the events it prints.

use std::collections::HashMap;

use kscope_traceevent::Cmdlines;

/// Task names: the file's saved cmdlines, then the names learned from
/// the events printed so far (the first name a pid gets is kept).
#[derive(Debug)]
pub struct Comms<'c> {
    cmdlines: &'c Cmdlines,
    learned: HashMap<i32, String>,
}

impl<'c> Comms<'c> {
    /// Names from `cmdlines`, none learned yet.
    pub fn new(cmdlines: &'c Cmdlines) -> Comms<'c> {
        Comms {
            cmdlines,
            learned: HashMap::new(),
        }
    }

    /// The name of `pid`, `<idle>` for 0, `<...>` when unknown.
    pub fn comm(&self, pid: i32) -> &str {
        match self.saved(pid) {
            Some(known) => known,
            None => self.learned.get(&pid).map_or("<...>", String::as_str),
        }
    }

    /// The name the file saved for `pid` (`<idle>` for 0): borrowed from
    /// the cmdlines, not from what is learned, so it outlives this borrow.
    pub fn saved(&self, pid: i32) -> Option<&'c str> {
        match self.cmdlines.comm(pid) {
            "<...>" => None,
            known => Some(known),
        }
    }

    /// Learns `comm` for `pid` unless the pid has a name.
    pub fn learn(&mut self, pid: i32, comm: &str) {
        if pid != 0 && self.cmdlines.comm(pid) == "<...>" {
            self.learned.entry(pid).or_insert_with(|| comm.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_names_win_and_the_first_learned_name_is_kept() {
        let cmdlines = Cmdlines::parse("42 bash\n");
        let mut comms = Comms::new(&cmdlines);
        comms.learn(42, "other");
        comms.learn(7, "first");
        comms.learn(7, "second");
        comms.learn(0, "swapper");
        assert_eq!(comms.comm(42), "bash");
        assert_eq!(comms.comm(7), "first");
        assert_eq!(comms.comm(0), "<idle>");
        assert_eq!(comms.comm(8), "<...>");
        assert_eq!(comms.saved(42), Some("bash"));
        assert_eq!(comms.saved(7), None);
    }
}
