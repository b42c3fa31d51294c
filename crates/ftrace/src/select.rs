//! Which events `-e` patterns name, among those tracefs has, and which
//! `-f` filter goes with each: what `trace stream` and `trace record`
//! trace. A pattern is `SYSTEM:EVENT`, `SYSTEM` (all its events) or
//! `EVENT`, globs allowed; each `-f` filters the `-e` just before it.

use kscope_traceevent::{GlobError, name_glob};
use kscope_tracefs::names::suggest_event;

use crate::EventSelection;

/// Why patterns did not name events.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A part of a pattern is not a glob.
    #[error(transparent)]
    Glob(#[from] GlobError),
    /// No event has a name the pattern gives; `hint` says what is near.
    #[error("no event matches {pattern:?}{hint}")]
    NoEvent {
        /// The pattern.
        pattern: String,
        /// The nearest event and a listing that shows some ([`no_event_hint`]).
        hint: String,
    },
    /// A `-f` came before every `-e`.
    #[error("-f {filter:?} comes before any -e: put it after the event it filters")]
    FilterFirst {
        /// The filter.
        filter: String,
    },
}

/// The events of `available` (system, event pairs) that the `patterns`
/// name, each with the filter that followed its pattern; `positions`
/// are where each pattern and each filter stood on the command line.
pub fn select_events(
    available: &[(String, String)],
    patterns: &[String],
    filters: &[String],
    positions: (&[usize], &[usize]),
) -> Result<Vec<EventSelection>, SelectError> {
    let mut selections: Vec<EventSelection> = Vec::new();
    for (pattern, filter) in pair_filters(patterns, positions.0, filters, positions.1)? {
        for (system, event) in resolve(&pattern, available)? {
            if !selections
                .iter()
                .any(|s| s.system == system && s.event == event)
            {
                selections.push(EventSelection {
                    system,
                    event,
                    filter: filter.clone(),
                });
            }
        }
    }
    Ok(selections)
}

/// Pairs each -f with the -e just before it, by their positions on the
/// command line.
fn pair_filters(
    events: &[String],
    event_positions: &[usize],
    filters: &[String],
    filter_positions: &[usize],
) -> Result<Vec<(String, Option<String>)>, SelectError> {
    let mut paired: Vec<(String, Option<String>)> =
        events.iter().map(|e| (e.clone(), None)).collect();
    for (filter, position) in filters.iter().zip(filter_positions) {
        let Some(index) = event_positions.iter().rposition(|p| p < position) else {
            return Err(SelectError::FilterFirst {
                filter: filter.clone(),
            });
        };
        paired[index].1 = Some(filter.clone());
    }
    Ok(paired)
}

/// The events `pattern` names among `available`.
fn resolve(
    pattern: &str,
    available: &[(String, String)],
) -> Result<Vec<(String, String)>, SelectError> {
    let (system, event) = match pattern.split_once(':') {
        Some((s, e)) => (s, e),
        None => ("", pattern),
    };
    let glob = |text: &str| name_glob(text).map_err(SelectError::from);
    let matched: Vec<(String, String)> = if system.is_empty() {
        let whole_system = available.iter().any(|(s, _)| s == event);
        let pattern = glob(event)?;
        available
            .iter()
            .filter(|(s, e)| {
                if whole_system {
                    s == event
                } else {
                    pattern.matches(e)
                }
            })
            .cloned()
            .collect()
    } else {
        let (system, event) = (glob(system)?, glob(event)?);
        available
            .iter()
            .filter(|(s, e)| system.matches(s) && event.matches(e))
            .cloned()
            .collect()
    };
    if matched.is_empty() {
        return Err(SelectError::NoEvent {
            pattern: pattern.to_string(),
            hint: no_event_hint(pattern, available),
        });
    }
    Ok(matched)
}

/// What follows "no event ..." for `wanted`: the nearest event when it
/// looks misspelt, and a listing that shows some.
pub fn no_event_hint(wanted: &str, available: &[(String, String)]) -> String {
    let suggestion = suggest_event(wanted, available);
    let nearest = suggestion
        .nearest
        .map(|name| format!("; did you mean \"{name}\"?"))
        .unwrap_or_default();
    format!(
        "{nearest} (`kscope trace list -e '{}'` lists the events there are)",
        suggestion.glob
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<(String, String)> {
        [
            ("sched", "sched_switch"),
            ("sched", "sched_wakeup"),
            ("syscalls", "sys_enter_openat"),
            ("syscalls", "sys_enter_open"),
        ]
        .iter()
        .map(|(s, e)| (s.to_string(), e.to_string()))
        .collect()
    }

    #[test]
    fn event_patterns_name_systems_events_and_globs() {
        assert_eq!(resolve("sched", &events()).unwrap().len(), 2);
        assert_eq!(resolve("sched:sched_switch", &events()).unwrap().len(), 1);
        assert_eq!(
            resolve("syscalls:sys_enter_open*", &events())
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            resolve("sched_wakeup", &events()).unwrap(),
            [("sched".to_string(), "sched_wakeup".to_string())]
        );
        assert!(resolve("nothing:here", &events()).is_err());
    }

    #[test]
    fn each_filter_goes_to_the_event_before_it() {
        let events = ["a".to_string(), "b".to_string()];
        let filters = ["x == 1".to_string()];
        let paired = pair_filters(&events, &[2, 6], &filters, &[4]).unwrap();
        assert_eq!(paired[0].1.as_deref(), Some("x == 1"));
        assert_eq!(paired[1].1, None);
        assert_eq!(
            pair_filters(&events, &[2, 6], &filters, &[1])
                .expect_err("a filter first")
                .to_string(),
            "-f \"x == 1\" comes before any -e: put it after the event it filters"
        );
    }
}
