//! What kscope sessions killed before they could clean up left behind:
//! every run that touches tracefs undoes it first, from their journals
//! under /run/kscope (see `kscope_tracefs::undo_leftovers`), and says so on
//! stderr, one line per dead session.

use kscope_tracefs::{Leftover, LeftoverOutcome};

/// Undoes what dead sessions left, and says what was done or what could
/// not be done, with the commands that do it by hand.
pub fn clean() {
    match kscope_tracefs::undo_leftovers() {
        Ok(outcomes) => {
            for outcome in outcomes {
                eprintln!("kscope: {}", describe(&outcome));
            }
        }
        // A user who may not read root's journals cannot undo what they
        // say either: nothing to tell on every run.
        Err(kscope_tracefs::Error::Journal { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied => {}
        Err(err) => eprintln!(
            "kscope: warning: cannot look for what killed kscope sessions left behind: {err}"
        ),
    }
}

fn owner(leftover: &Leftover) -> String {
    match leftover.pid {
        Some(pid) => format!("a kscope that died (pid {pid})"),
        None => "a kscope that died".to_string(),
    }
}

/// One line on one dead session's journal.
pub fn describe(outcome: &LeftoverOutcome) -> String {
    match outcome {
        LeftoverOutcome::Undone(leftover) => format!(
            "undid what {} left: {}",
            owner(leftover),
            leftover.changes.join(", ")
        ),
        LeftoverOutcome::Failed(leftover, err) => format!(
            "cannot undo what {} left ({err}); its journal {} stays; to undo it by hand: {}",
            owner(leftover),
            leftover.journal.display(),
            leftover.commands.join("; ")
        ),
    }
}
