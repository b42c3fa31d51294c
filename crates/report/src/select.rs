//! What `trace report -F` selects: events of the file named as trace-cmd
//! names them (`SYSTEM/EVENT`, or a name that is a system or an event,
//! comma-separated, globs allowed), each with an optional filter on its
//! fields (`kscope_traceevent::filter`).

use kscope_traceevent::filter::{Filter, FilterError};
use kscope_traceevent::{EventFormat, GlobError, name_glob};

/// Why a `-F` did not select.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A name is not a glob.
    #[error(transparent)]
    Glob(#[from] GlobError),
    /// No event of the file has a name the `-F` gives.
    #[error("-F {spec:?}: no event of the file matches {events:?}")]
    NoEvent {
        /// The whole `-F`.
        spec: String,
        /// Its names.
        events: String,
    },
    /// The filter after the colon does not parse for an event it names.
    #[error("-F {spec:?}")]
    Filter {
        /// The whole `-F`.
        spec: String,
        /// Why.
        #[source]
        source: FilterError,
    },
}

/// What the `-F` options select.
#[derive(Debug)]
pub struct Selection<'f> {
    /// (event, filter) pairs; empty selects everything.
    rules: Vec<(&'f EventFormat<'f>, Option<Filter>)>,
}

impl<'f> Selection<'f> {
    /// The events of `formats` (each of the system at the same index of
    /// `systems`) that `specs` name, with their filters.
    pub fn parse(
        specs: &[String],
        formats: &'f [EventFormat<'f>],
        systems: &[&str],
    ) -> Result<Selection<'f>, SelectError> {
        let mut rules = Vec::new();
        for spec in specs {
            // trace-cmd's form: `SYSTEM/EVENT[,EVENT...][: FILTER]`; each
            // name is a glob on the system or the event.
            let (events, filter) = match spec.split_once(':') {
                Some((e, f)) => (e.trim(), Some(f.trim()).filter(|f| !f.is_empty())),
                None => (spec.trim(), None),
            };
            let glob = |text: &str| name_glob(text).map_err(SelectError::from);
            let mut matched: Vec<&EventFormat<'_>> = Vec::new();
            for item in events.split(',').map(str::trim) {
                let (system, event) = match item.split_once('/') {
                    Some((s, e)) => (Some(glob(s)?), glob(e)?),
                    None => (None, glob(item)?),
                };
                for (format, sys) in formats.iter().zip(systems) {
                    let hit = match &system {
                        Some(sg) => sg.matches(sys) && event.matches(format.name),
                        None => event.matches(format.name) || event.matches(sys),
                    };
                    if hit && !matched.iter().any(|m| m.id == format.id) {
                        matched.push(format);
                    }
                }
            }
            if matched.is_empty() {
                return Err(SelectError::NoEvent {
                    spec: spec.clone(),
                    events: events.to_string(),
                });
            }
            for format in matched {
                let parsed =
                    match filter {
                        Some(text) => Some(Filter::parse(text, format).map_err(|source| {
                            SelectError::Filter {
                                spec: spec.clone(),
                                source,
                            }
                        })?),
                        None => None,
                    };
                rules.push((format, parsed));
            }
        }
        Ok(Selection { rules })
    }

    /// Whether every record is selected (no `-F`).
    pub fn is_all(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `record`, of event `format`, written by a task named
    /// `comm`, is selected.
    pub fn accepts(&self, format: &EventFormat<'_>, record: &[u8], comm: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules.iter().any(|(f, filter)| {
            f.id == format.id
                && filter
                    .as_ref()
                    .is_none_or(|filter| filter.matches(format, record, comm))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(name: &str, id: u32) -> String {
        format!(
            "name: {name}\nID: {id}\nformat:\n\
             \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
             \tfield:int prio;\toffset:8;\tsize:4;\tsigned:1;\n\
             \nprint fmt: \"prio=%d\", REC->prio\n"
        )
    }

    #[test]
    fn names_globs_systems_and_filters_select() {
        let texts = [
            format("sched_switch", 1),
            format("sched_wakeup", 2),
            format("sys_enter_read", 3),
        ];
        let formats: Vec<EventFormat<'_>> = texts
            .iter()
            .map(|t| EventFormat::parse(t).unwrap())
            .collect();
        let systems = ["sched", "sched", "syscalls"];
        let record = |id: u8, prio: i32| {
            let mut r = vec![id, 0, 0, 0, 9, 0, 0, 0];
            r.extend_from_slice(&prio.to_le_bytes());
            r
        };
        let select = |specs: &[&str]| {
            let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
            Selection::parse(&specs, &formats, &systems)
        };
        let all = select(&[]).unwrap();
        assert!(all.is_all() && all.accepts(&formats[2], &record(3, 0), "x"));
        let sched = select(&["sched"]).unwrap();
        assert!(sched.accepts(&formats[1], &record(2, 0), "x"));
        assert!(!sched.accepts(&formats[2], &record(3, 0), "x"));
        let filtered = select(&["sched/sched_s*,sys_enter_read: prio > 5"]).unwrap();
        assert!(filtered.accepts(&formats[0], &record(1, 6), "x"));
        assert!(!filtered.accepts(&formats[0], &record(1, 5), "x"));
        assert!(!filtered.accepts(&formats[1], &record(2, 6), "x"));
        assert!(filtered.accepts(&formats[2], &record(3, 6), "x"));
        let message = |specs: &[&str]| select(specs).expect_err("an error").to_string();
        assert_eq!(
            message(&["nothing"]),
            "-F \"nothing\": no event of the file matches \"nothing\""
        );
        assert_eq!(message(&["sched: prio =="]), "-F \"sched: prio ==\"");
        assert_eq!(message(&["[x"]), "bad glob \"[x\"");
    }
}
