//! Names a user misspells, and what to suggest instead: the nearest by
//! edit distance ([`did_you_mean`], shared by `kscope probe`'s probe
//! points and variables and `kscope trace`'s events), and, for an event
//! that matched nothing, the nearest event and a glob that lists some
//! ([`suggest_event`]).

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a likely typo: at most `max(1, len / 3)` edits, `len` being
/// `name`'s length in characters. An edit inserts, deletes or replaces one
/// character, or swaps two adjacent ones (`opne` is one edit from `open`).
/// Ties go to the first in candidate order.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let name: Vec<char> = name.chars().collect();
    let limit = (name.len() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let chars: Vec<char> = candidate.chars().collect();
        // Each edit changes the length by at most one.
        if chars.len().abs_diff(name.len()) > limit {
            continue;
        }
        let distance = edit_distance(&name, &chars);
        if distance <= limit && best.is_none_or(|(b, _)| distance < b) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: Levenshtein plus the swap of two
/// adjacent characters as one edit. Three rows of the usual table.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut two_back = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let replace = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = replace.min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut two_back, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// What to suggest for an event name or glob that matched none of
/// `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSuggestion {
    /// The nearest event as `SYSTEM:EVENT`, when the name looks like a
    /// misspelling of one.
    pub nearest: Option<String>,
    /// A glob over `SYSTEM:EVENT` names that matches at least one of the
    /// events (unless there are none): the events of the system meant,
    /// else those that contain the name, else all.
    pub glob: String,
}

/// The suggestion for `wanted` (`SYSTEM:EVENT`, a bare `EVENT`, or either
/// with globs), which matched none of `events` (system, event pairs).
pub fn suggest_event(wanted: &str, events: &[(String, String)]) -> EventSuggestion {
    let has_glob = wanted.contains(['*', '?', '[']);
    let split = wanted.split_once(':');
    let nearest = match split {
        _ if has_glob => None,
        Some(_) => {
            let names: Vec<String> = events.iter().map(|(s, e)| format!("{s}:{e}")).collect();
            did_you_mean(wanted, names.iter().map(String::as_str)).map(str::to_string)
        }
        None => did_you_mean(wanted, events.iter().map(|(_, e)| e.as_str())).and_then(|near| {
            let (system, event) = events.iter().find(|(_, e)| e == near)?;
            Some(format!("{system}:{event}"))
        }),
    };
    let system = split
        .map(|(system, _)| system)
        .filter(|system| events.iter().any(|(s, _)| s == system))
        .or_else(|| {
            nearest
                .as_deref()
                .and_then(|n| n.split_once(':'))
                .map(|(s, _)| s)
        });
    let glob = match system {
        Some(system) => format!("{system}:*"),
        None if !has_glob
            && events
                .iter()
                .any(|(s, e)| format!("{s}:{e}").contains(wanted)) =>
        {
            format!("*{wanted}*")
        }
        None => "*".to_string(),
    };
    EventSuggestion { nearest, glob }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_typos_and_nothing_far() {
        let names = [
            "sched_switch",
            "sched_wakeup",
            "sched_waking",
            "read",
            "open",
        ];
        assert_eq!(did_you_mean("sched_swtch", names), Some("sched_switch"));
        assert_eq!(did_you_mean("sched_swicth", names), Some("sched_switch"));
        assert_eq!(did_you_mean("raed", names), Some("read"));
        assert_eq!(did_you_mean("opn", names), Some("open"));
        assert_eq!(did_you_mean("sched_wakin", names), Some("sched_waking"));
        // Two edits is too many for a four-letter name.
        assert_eq!(did_you_mean("reap", ["read"]), Some("read"));
        assert_eq!(did_you_mean("rexp", ["read"]), None);
        assert_eq!(did_you_mean("xyzzy", names), None);
        assert_eq!(did_you_mean("frobnicate_everything", names), None);
        assert_eq!(did_you_mean("anything", []), None);
        // The limit is never below one edit, even for a short name.
        assert_eq!(did_you_mean("a", ["b"]), Some("b"));
        // Ties go to the first candidate.
        assert_eq!(did_you_mean("cat", ["bat", "cap", "hat"]), Some("bat"));
        assert_eq!(did_you_mean("cat", ["cap", "bat"]), Some("cap"));
        // A closer candidate later wins over a farther one earlier.
        assert_eq!(did_you_mean("sched_waki", names), Some("sched_waking"));
    }

    #[test]
    fn edit_distance_counts_each_kind_of_edit_once() {
        let d = |a: &str, b: &str| {
            let a: Vec<char> = a.chars().collect();
            let b: Vec<char> = b.chars().collect();
            edit_distance(&a, &b)
        };
        assert_eq!(d("", ""), 0);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("open", "open"), 0);
        assert_eq!(d("open", "opn"), 1);
        assert_eq!(d("open", "opens"), 1);
        assert_eq!(d("open", "opan"), 1);
        assert_eq!(d("open", "opne"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("ca", "abc"), 3);
    }

    fn events() -> Vec<(String, String)> {
        [
            ("sched", "sched_switch"),
            ("sched", "sched_wakeup"),
            ("syscalls", "sys_enter_read"),
            ("irq", "irq_handler_entry"),
        ]
        .iter()
        .map(|(s, e)| (s.to_string(), e.to_string()))
        .collect()
    }

    #[test]
    fn a_misspelt_event_gets_its_nearest_and_its_systems_glob() {
        let events = events();
        let suggestion = |wanted| suggest_event(wanted, &events);
        assert_eq!(
            suggestion("sched:sched_swtich"),
            EventSuggestion {
                nearest: Some("sched:sched_switch".into()),
                glob: "sched:*".into()
            }
        );
        // A bare event name finds its system.
        assert_eq!(
            suggestion("sched_swtich").nearest.as_deref(),
            Some("sched:sched_switch")
        );
        assert_eq!(suggestion("sched_swtich").glob, "sched:*");
        // A misspelt system too.
        assert_eq!(
            suggestion("shced:sched_switch").nearest.as_deref(),
            Some("sched:sched_switch")
        );
    }

    #[test]
    fn the_suggested_glob_is_one_that_lists_something() {
        let events = events();
        let glob = |wanted| suggest_event(wanted, &events).glob;
        // A known system: its events, even for a glob that matched none.
        assert_eq!(glob("sched:nosuch*"), "sched:*");
        assert_eq!(glob("sched:no_such_event"), "sched:*");
        // A part of some names: the names with it.
        assert_eq!(glob("handler"), "*handler*");
        // Nothing near: everything, not a glob that lists nothing.
        assert_eq!(glob("no_such_event"), "*");
        assert_eq!(glob("nosuch:event"), "*");
        assert_eq!(suggest_event("nosuch:event", &events).nearest, None);
        assert_eq!(glob("sch*:x"), "*");
    }
}
