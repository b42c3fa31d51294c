//! The catalog of probe points that `kscope probe` resolves against: the
//! kernel's tracepoints (syscalls among them) as tracefs lists them in
//! `available_events`, each with its own fields as its `format` file
//! describes them, classified by how a script can read them
//! ([`FieldKind`]). Listing is one read; a tracepoint's format is read and
//! parsed only when a lookup returns it, then cached. [`glob_match`]
//! matches probe-point names like `sched:*` and `open*`, and
//! [`did_you_mean`] (from `kscope_tracefs::names`, shared with `kscope
//! trace`) suggests the nearest name when one is not found.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use kscope_traceevent::{ArrayLen, EventFormat, Field, FormatError, Location};
use kscope_tracefs::Tracefs;
/// The nearest-name suggestion, shared with `kscope trace`.
pub use kscope_tracefs::names::did_you_mean;

/// One tracepoint and its own fields (the `common_*` fields every event
/// shares are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracepoint {
    /// Its system, the directory under `events/` (`sched`, `syscalls`).
    pub system: String,
    /// Its name within the system (`sched_switch`, `sys_enter_openat`).
    pub event: String,
    /// Its numeric id (the `ID:` line; the `common_type` of its records).
    pub id: u32,
    /// Its own fields in the order of the format file. For
    /// `syscalls/sys_enter_*` the first is `int __syscall_nr`, then one
    /// 8-byte slot per argument; `sys_exit_*` has `long ret`.
    pub fields: Vec<TpField>,
}

impl Tracepoint {
    /// An own field by name.
    pub fn field(&self, name: &str) -> Option<&TpField> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn from_format(system: &str, event: &str, format: &EventFormat<'_>) -> Tracepoint {
        Tracepoint {
            system: system.to_string(),
            event: event.to_string(),
            id: format.id,
            fields: format.fields.iter().map(TpField::from_field).collect(),
        }
    }
}

/// One field of a tracepoint's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpField {
    /// The field's name (`prev_comm`).
    pub name: String,
    /// Its C type as the format writes it, without the name: `pid_t`,
    /// `const char *`, `char[16]`, `__data_loc char[]`.
    pub c_type: String,
    /// Byte offset in the record (for `__data_loc`/`__rel_loc`, of the u32
    /// that locates the data).
    pub offset: u32,
    /// Size in bytes at `offset`, as the format says.
    pub size: u32,
    /// Whether the format marks it signed. Syscall arguments are 8-byte
    /// slots marked unsigned whatever their C type (`int dfd` is
    /// `size:8; signed:0`).
    pub signed: bool,
    /// How a script can read it.
    pub kind: FieldKind,
}

impl TpField {
    fn from_field(field: &Field<'_>) -> TpField {
        TpField {
            name: field.name.to_string(),
            c_type: c_type(field),
            offset: field.offset,
            size: field.size,
            signed: field.signed,
            kind: field_kind(field),
        }
    }
}

/// How a script can read a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer or pointer of 1, 2, 4 or 8 bytes: read as a (sign- or
    /// zero-extended) long.
    Int,
    /// A fixed `char name[N]` array: a string of at most N (= `size`) bytes
    /// in the record.
    CharArray,
    /// `__data_loc char[]`: a string elsewhere in the record. The u32 at
    /// `offset` holds in its low 16 bits the string's offset from the
    /// record's start, in its high 16 bits its length.
    DataLocString,
    /// `__rel_loc char[]`: like [`FieldKind::DataLocString`], but the offset
    /// counts from the end of the u32.
    RelLocString,
    /// Anything else (other arrays, structs, `__data_loc` non-strings): not
    /// readable from a script; listed by -L but an error when used.
    Other,
}

/// The C type of a field as the format file writes it, without its name.
fn c_type(field: &Field<'_>) -> String {
    let prefix = match field.location {
        Location::Inline => "",
        Location::DataLoc => "__data_loc ",
        Location::RelLoc => "__rel_loc ",
    };
    // `__data_loc` types carry their brackets already ("char[]"); inline
    // arrays have them after the name, which is dropped here.
    let brackets = match (field.location, field.array) {
        (Location::Inline, Some(ArrayLen::Fixed(n))) => format!("[{n}]"),
        (Location::Inline, Some(ArrayLen::Open)) => "[]".to_string(),
        (Location::Inline, Some(ArrayLen::Symbolic(len))) => format!("[{len}]"),
        _ => String::new(),
    };
    format!("{prefix}{}{brackets}", field.type_name)
}

fn field_kind(field: &Field<'_>) -> FieldKind {
    match (field.location, field.array) {
        (Location::DataLoc, _) if field.is_string() => FieldKind::DataLocString,
        (Location::RelLoc, _) if field.is_string() => FieldKind::RelLocString,
        (Location::Inline, Some(ArrayLen::Fixed(_) | ArrayLen::Symbolic(_)))
            if field.is_string() && field.size > 0 =>
        {
            FieldKind::CharArray
        }
        // A struct or union held by value can be 1 to 8 bytes long too; a
        // pointer to one is an address.
        (Location::Inline, None)
            if matches!(field.size, 1 | 2 | 4 | 8) && !is_by_value_aggregate(field.type_name) =>
        {
            FieldKind::Int
        }
        _ => FieldKind::Other,
    }
}

fn is_by_value_aggregate(type_name: &str) -> bool {
    (type_name.starts_with("struct ") || type_name.starts_with("union "))
        && !type_name.contains('*')
}

/// Why the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A tracefs file could not be read: `available_events`, or an event's
    /// `format`. The error names the file.
    #[error(transparent)]
    Read(#[from] kscope_tracefs::Error),
    /// A tracepoint's format file does not have the kernel's shape.
    #[error("the format of tracepoint {system}:{event} does not parse: {source}")]
    Format {
        /// The tracepoint's system.
        system: String,
        /// The tracepoint's name (`?` when the text did not name it).
        event: String,
        /// Where in the format, and what was expected.
        source: FormatError,
    },
}

/// The tracepoints this kernel has. Listing is cheap (one read of
/// `available_events`); formats are read and parsed only for the events a
/// lookup returns, and cached, so a lookup needs only `&self`.
#[derive(Debug)]
pub struct Catalog {
    /// Every `(system, event)`, sorted.
    names: Vec<(String, String)>,
    /// Where formats not yet loaded are read from; `None` for a catalog
    /// made from format texts, whose formats are all loaded.
    tracefs: Option<Tracefs>,
    loaded: Mutex<HashMap<(String, String), Tracepoint>>,
}

impl Catalog {
    /// The tracepoints of the kernel whose tracefs is `fs`: reads
    /// `available_events` and nothing else.
    pub fn load(fs: &Tracefs) -> Result<Catalog, CatalogError> {
        Ok(Catalog {
            names: fs.events()?,
            tracefs: Some(fs.clone()),
            loaded: Mutex::default(),
        })
    }

    /// For tests: a catalog from `(system, format file text)` pairs, each
    /// parsed now. The event's name is the format's `name:` line; a later
    /// pair with the same system and name replaces an earlier one.
    pub fn from_formats<'a>(
        formats: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Catalog, CatalogError> {
        let mut loaded = HashMap::new();
        for (system, text) in formats {
            let format = EventFormat::parse(text).map_err(|source| CatalogError::Format {
                system: system.to_string(),
                event: declared_name(text).to_string(),
                source,
            })?;
            let tracepoint = Tracepoint::from_format(system, format.name, &format);
            loaded.insert((system.to_string(), format.name.to_string()), tracepoint);
        }
        let mut names: Vec<(String, String)> = loaded.keys().cloned().collect();
        names.sort();
        Ok(Catalog {
            names,
            tracefs: None,
            loaded: Mutex::new(loaded),
        })
    }

    /// Every `(system, event)` name pair, sorted.
    pub fn names(&self) -> &[(String, String)] {
        &self.names
    }

    /// The tracepoints whose system and event match the globs (see
    /// [`glob_match`]), sorted by `(system, event)`, formats loaded.
    /// `kernel.trace("EVENT")` without a system is `matching("*", "EVENT")`.
    /// `matching("*", "*")` reads every format the kernel has.
    pub fn matching(
        &self,
        system_glob: &str,
        event_glob: &str,
    ) -> Result<Vec<Tracepoint>, CatalogError> {
        self.names
            .iter()
            .filter(|(system, event)| {
                glob_match(system_glob, system) && glob_match(event_glob, event)
            })
            .filter_map(|key| self.tracepoint(key).transpose())
            .collect()
    }

    /// The syscalls that have both `sys_enter_NAME` and `sys_exit_NAME` in
    /// the `syscalls` system, sorted by name; names only (no format is
    /// read).
    pub fn syscall_names(&self) -> Vec<String> {
        let events = || {
            self.names
                .iter()
                .filter(|(system, _)| system == SYSCALLS)
                .map(|(_, event)| event.as_str())
        };
        let exits: HashSet<&str> = events().filter_map(|e| e.strip_prefix(SYS_EXIT)).collect();
        let mut names: Vec<String> = events()
            .filter_map(|e| e.strip_prefix(SYS_ENTER))
            .filter(|name| exits.contains(name))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    /// `sys_enter_NAME` and `sys_exit_NAME` for a syscall name, formats
    /// loaded; `None` when the kernel lacks either.
    pub fn syscall(&self, name: &str) -> Result<Option<(Tracepoint, Tracepoint)>, CatalogError> {
        let enter = (SYSCALLS.to_string(), format!("{SYS_ENTER}{name}"));
        let exit = (SYSCALLS.to_string(), format!("{SYS_EXIT}{name}"));
        if self.names.binary_search(&enter).is_err() || self.names.binary_search(&exit).is_err() {
            return Ok(None);
        }
        Ok(self.tracepoint(&enter)?.zip(self.tracepoint(&exit)?))
    }

    /// A listed tracepoint, from the cache or read and parsed now. `None`
    /// only for a name with no format to read, which a catalog never lists.
    fn tracepoint(&self, key: &(String, String)) -> Result<Option<Tracepoint>, CatalogError> {
        if let Some(tracepoint) = self.loaded().get(key) {
            return Ok(Some(tracepoint.clone()));
        }
        let Some(fs) = &self.tracefs else {
            return Ok(None);
        };
        let (system, event) = key;
        // Read and parsed without holding the lock; two threads that miss
        // at once both parse, and the results are equal.
        let text = fs.event_format(system, event)?;
        let format = EventFormat::parse(&text).map_err(|source| CatalogError::Format {
            system: system.clone(),
            event: event.clone(),
            source,
        })?;
        let tracepoint = Tracepoint::from_format(system, event, &format);
        self.loaded().insert(key.clone(), tracepoint.clone());
        Ok(Some(tracepoint))
    }

    fn loaded(&self) -> MutexGuard<'_, HashMap<(String, String), Tracepoint>> {
        // An insert either happened or not: a panic elsewhere cannot leave
        // the cache half-written.
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const SYSCALLS: &str = "syscalls";
const SYS_ENTER: &str = "sys_enter_";
const SYS_EXIT: &str = "sys_exit_";

/// The name a format text gives on its first line, for an error about a
/// text that did not parse.
fn declared_name(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("name:"))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("?")
}

/// Shell-style glob match: `*` matches any run of characters (including
/// none), `?` exactly one character, and everything else itself. Used for
/// probe-point names like `open*` and `sched:*`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern resumes, and how much of the text the
    // star has taken so far. A mismatch later lets the star take one more.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some('*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&want) if want == '?' || want == c => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((resume, taken)) => {
                    p = resume;
                    t = taken + 1;
                    star = Some((resume, t));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    // Format files copied from /sys/kernel/tracing on the development
    // machine (kernel 6.18.44), in tests/data.

    /// events/sched/sched_switch/format
    const SCHED_SWITCH: &str = include_str!("../tests/data/sched_switch.format");

    /// events/syscalls/sys_enter_openat/format
    const SYS_ENTER_OPENAT: &str = include_str!("../tests/data/sys_enter_openat.format");

    /// events/syscalls/sys_exit_openat/format
    const SYS_EXIT_OPENAT: &str = include_str!("../tests/data/sys_exit_openat.format");

    /// events/sched/sched_process_exec/format
    const SCHED_PROCESS_EXEC: &str = include_str!("../tests/data/sched_process_exec.format");

    /// events/dma/dma_sync_sg_for_cpu/format: `__data_loc` arrays that are not strings.
    const DMA_SYNC_SG_FOR_CPU: &str = include_str!("../tests/data/dma_sync_sg_for_cpu.format");

    /// events/btrfs/btrfs_sync_fs/format: a `u8` array that is bytes, not text.
    const BTRFS_SYNC_FS: &str = include_str!("../tests/data/btrfs_sync_fs.format");

    /// Kinds that no format on the development machine shows, written the
    /// way the kernel writes them: a `__rel_loc` string (`__rel_string()`,
    /// kernels 5.18+), a struct held by value, a pointer to one, a char
    /// array with a symbolic length, an open char array, a 16-byte integer.
    const OTHER_KINDS: &str = "name: other_kinds\nID: 9000\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:__rel_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:struct in_addr addr;\toffset:12;\tsize:4;\tsigned:0;\n\
\tfield:struct task_struct * task;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:char comm[TASK_COMM_LEN];\toffset:24;\tsize:16;\tsigned:0;\n\
\tfield:unsigned __int128 wide;\toffset:40;\tsize:16;\tsigned:0;\n\
\tfield:char buf[];\toffset:56;\tsize:0;\tsigned:0;\n\
\n\
print fmt: \"%s\", __get_rel_str(msg)\n";

    fn real_catalog() -> Catalog {
        Catalog::from_formats([
            ("sched", SCHED_SWITCH),
            ("syscalls", SYS_EXIT_OPENAT),
            ("sched", SCHED_PROCESS_EXEC),
            ("syscalls", SYS_ENTER_OPENAT),
            ("dma", DMA_SYNC_SG_FOR_CPU),
            ("btrfs", BTRFS_SYNC_FS),
        ])
        .unwrap()
    }

    fn one(catalog: &Catalog, system: &str, event: &str) -> Tracepoint {
        let mut found = catalog.matching(system, event).unwrap();
        assert_eq!(found.len(), 1, "{system}:{event}");
        found.remove(0)
    }

    /// (c_type, offset, size, signed, kind) of a field.
    fn shape(tracepoint: &Tracepoint, name: &str) -> (String, u32, u32, bool, FieldKind) {
        let f = tracepoint
            .field(name)
            .unwrap_or_else(|| panic!("{} has no field {name}", tracepoint.event));
        (f.c_type.clone(), f.offset, f.size, f.signed, f.kind)
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn glob_stars_and_question_marks() {
        let cases = [
            ("*", "", true),
            ("*", "sched_switch", true),
            ("open*", "open", true),
            ("open*", "openat", true),
            ("open*", "fsopen", false),
            ("*open*", "fsopen", true),
            ("*open", "openat", false),
            ("sys_*_openat", "sys_enter_openat", true),
            ("sys_*_openat", "sys_enter_open", false),
            ("?", "a", true),
            ("?", "", false),
            ("?", "ab", false),
            ("open??", "openat", true),
            ("open??", "opena", false),
            ("*a*b*c", "aXbXbYc", true),
            ("*a*b*c", "aXbXcYb", false),
            ("**", "x", true),
            ("", "", true),
            ("", "x", false),
            ("x", "", false),
            // Without wildcards a pattern is a literal name.
            ("openat", "openat", true),
            ("open", "openat", false),
            ("openat", "open", false),
            ("sched", "SCHED", false),
            // `?` takes one character, not one byte.
            ("?", "é", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern, text),
                expected,
                "{pattern:?} vs {text:?}"
            );
        }
    }

    #[test]
    fn sched_switch_fields_have_their_kinds_and_offsets() {
        let catalog = real_catalog();
        let tp = one(&catalog, "sched", "sched_switch");
        assert_eq!(
            (tp.system.as_str(), tp.event.as_str(), tp.id),
            ("sched", "sched_switch", 372)
        );
        let names: Vec<&str> = tp.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "prev_comm",
                "prev_pid",
                "prev_prio",
                "prev_state",
                "next_comm",
                "next_pid",
                "next_prio"
            ]
        );
        assert_eq!(
            shape(&tp, "prev_comm"),
            (s("char[16]"), 8, 16, false, FieldKind::CharArray)
        );
        assert_eq!(
            shape(&tp, "prev_pid"),
            (s("pid_t"), 24, 4, true, FieldKind::Int)
        );
        assert_eq!(
            shape(&tp, "prev_state"),
            (s("long"), 32, 8, true, FieldKind::Int)
        );
        assert_eq!(
            shape(&tp, "next_comm"),
            (s("char[16]"), 40, 16, false, FieldKind::CharArray)
        );
        assert_eq!(
            shape(&tp, "next_prio"),
            (s("int"), 60, 4, true, FieldKind::Int)
        );
        assert_eq!(tp.field("common_pid"), None);
        assert_eq!(tp.field("nope"), None);
    }

    #[test]
    fn syscall_fields_keep_the_syscall_number_and_the_argument_slots() {
        let catalog = real_catalog();
        let (enter, exit) = catalog.syscall("openat").unwrap().unwrap();
        assert_eq!((enter.event.as_str(), enter.id), ("sys_enter_openat", 782));
        assert_eq!((exit.event.as_str(), exit.id), ("sys_exit_openat", 781));
        let names: Vec<&str> = enter.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["__syscall_nr", "dfd", "filename", "flags", "mode"]);
        assert_eq!(
            shape(&enter, "__syscall_nr"),
            (s("int"), 8, 4, true, FieldKind::Int)
        );
        // Arguments are 8-byte slots from offset 16, marked unsigned.
        assert_eq!(
            shape(&enter, "dfd"),
            (s("int"), 16, 8, false, FieldKind::Int)
        );
        assert_eq!(
            shape(&enter, "filename"),
            (s("const char *"), 24, 8, false, FieldKind::Int)
        );
        assert_eq!(
            shape(&enter, "flags"),
            (s("int"), 32, 8, false, FieldKind::Int)
        );
        assert_eq!(
            shape(&enter, "mode"),
            (s("umode_t"), 40, 8, false, FieldKind::Int)
        );
        let names: Vec<&str> = exit.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["__syscall_nr", "ret"]);
        assert_eq!(
            shape(&exit, "ret"),
            (s("long"), 16, 8, true, FieldKind::Int)
        );
    }

    #[test]
    fn data_loc_strings_and_unreadable_fields() {
        let catalog = real_catalog();
        let exec = one(&catalog, "sched", "sched_process_exec");
        assert_eq!(
            shape(&exec, "filename"),
            (
                s("__data_loc char[]"),
                8,
                4,
                false,
                FieldKind::DataLocString
            )
        );
        assert_eq!(
            shape(&exec, "pid"),
            (s("pid_t"), 12, 4, true, FieldKind::Int)
        );
        assert_eq!(
            shape(&exec, "old_pid"),
            (s("pid_t"), 16, 4, true, FieldKind::Int)
        );

        let dma = one(&catalog, "dma", "dma_sync_sg_for_cpu");
        assert_eq!(
            shape(&dma, "device"),
            (
                s("__data_loc char[]"),
                8,
                4,
                false,
                FieldKind::DataLocString
            )
        );
        assert_eq!(
            shape(&dma, "dma_addrs"),
            (s("__data_loc u64[]"), 12, 4, false, FieldKind::Other)
        );
        assert_eq!(
            shape(&dma, "lengths"),
            (
                s("__data_loc unsigned int[]"),
                16,
                4,
                false,
                FieldKind::Other
            )
        );
        assert_eq!(
            shape(&dma, "dir"),
            (s("enum dma_data_direction"), 20, 4, false, FieldKind::Int)
        );

        let btrfs = one(&catalog, "btrfs", "btrfs_sync_fs");
        assert_eq!(
            shape(&btrfs, "fsid"),
            (s("u8[16]"), 8, 16, false, FieldKind::Other)
        );
        assert_eq!(
            shape(&btrfs, "wait"),
            (s("int"), 24, 4, true, FieldKind::Int)
        );
    }

    #[test]
    fn rel_loc_strings_structs_and_odd_arrays() {
        let catalog = Catalog::from_formats([("test", OTHER_KINDS)]).unwrap();
        let tp = one(&catalog, "test", "other_kinds");
        assert_eq!(
            shape(&tp, "msg"),
            (s("__rel_loc char[]"), 8, 4, false, FieldKind::RelLocString)
        );
        assert_eq!(
            shape(&tp, "addr"),
            (s("struct in_addr"), 12, 4, false, FieldKind::Other)
        );
        assert_eq!(
            shape(&tp, "task"),
            (s("struct task_struct *"), 16, 8, false, FieldKind::Int)
        );
        assert_eq!(
            shape(&tp, "comm"),
            (
                s("char[TASK_COMM_LEN]"),
                24,
                16,
                false,
                FieldKind::CharArray
            )
        );
        assert_eq!(
            shape(&tp, "wide"),
            (s("unsigned __int128"), 40, 16, false, FieldKind::Other)
        );
        assert_eq!(
            shape(&tp, "buf"),
            (s("char[]"), 56, 0, false, FieldKind::Other)
        );
    }

    #[test]
    fn names_are_sorted_and_matching_uses_both_globs() {
        let catalog = real_catalog();
        let pair = |system: &str, event: &str| (s(system), s(event));
        assert_eq!(
            catalog.names(),
            [
                pair("btrfs", "btrfs_sync_fs"),
                pair("dma", "dma_sync_sg_for_cpu"),
                pair("sched", "sched_process_exec"),
                pair("sched", "sched_switch"),
                pair("syscalls", "sys_enter_openat"),
                pair("syscalls", "sys_exit_openat"),
            ]
        );
        let found = |system: &str, event: &str| -> Vec<String> {
            let tracepoints = catalog.matching(system, event).unwrap();
            tracepoints
                .iter()
                .map(|tp| format!("{}:{}", tp.system, tp.event))
                .collect()
        };
        assert_eq!(
            found("sched", "*"),
            ["sched:sched_process_exec", "sched:sched_switch"]
        );
        assert_eq!(found("*", "sched_switch"), ["sched:sched_switch"]);
        assert_eq!(
            found("*", "sys_*_openat"),
            ["syscalls:sys_enter_openat", "syscalls:sys_exit_openat"]
        );
        assert_eq!(
            found("*", "*sync*"),
            ["btrfs:btrfs_sync_fs", "dma:dma_sync_sg_for_cpu"]
        );
        assert_eq!(found("*", "*").len(), 6);
        assert!(found("sched", "sys_enter_openat").is_empty());
        assert!(found("nosuch", "*").is_empty());
        assert!(found("*", "sched").is_empty());
    }

    #[test]
    fn syscalls_need_both_halves() {
        const ENTER_ONLY: &str = "name: sys_enter_lonely\nID: 5\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"\"\n";
        let catalog = Catalog::from_formats([
            ("syscalls", SYS_ENTER_OPENAT),
            ("syscalls", SYS_EXIT_OPENAT),
            ("syscalls", ENTER_ONLY),
            // Outside the syscalls system: not a syscall.
            ("sched", SCHED_SWITCH),
        ])
        .unwrap();
        assert_eq!(catalog.syscall_names(), ["openat"]);
        assert!(catalog.syscall("lonely").unwrap().is_none());
        assert!(catalog.syscall("nosuch").unwrap().is_none());
        assert!(catalog.syscall("openat").unwrap().is_some());
        assert!(real_catalog().syscall_names() == ["openat"]);
        assert!(
            Catalog::from_formats([])
                .unwrap()
                .syscall_names()
                .is_empty()
        );
    }

    #[test]
    fn a_format_that_does_not_parse_names_the_event_and_the_line() {
        let broken = SCHED_SWITCH.replace("offset:24;", "offset:x;");
        let err = Catalog::from_formats([("sched", broken.as_str())]).unwrap_err();
        let CatalogError::Format {
            system,
            event,
            source,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (system.as_str(), event.as_str(), source.line),
            ("sched", "sched_switch", 10)
        );
        let message = err.to_string();
        assert!(message.contains("sched:sched_switch"), "{message}");
        assert!(message.contains("offset:N"), "{message}");
        let err = Catalog::from_formats([("sched", "garbage")]).unwrap_err();
        assert!(err.to_string().contains("sched:?"), "{err}");
    }

    #[test]
    fn a_later_format_of_the_same_event_replaces_the_earlier() {
        let newer = SCHED_SWITCH.replace("ID: 372", "ID: 999");
        let catalog =
            Catalog::from_formats([("sched", SCHED_SWITCH), ("sched", newer.as_str())]).unwrap();
        assert_eq!(catalog.names().len(), 1);
        assert_eq!(one(&catalog, "sched", "sched_switch").id, 999);
    }

    /// A directory shaped like tracefs, removed when dropped.
    struct FakeTracefs {
        root: PathBuf,
    }

    impl FakeTracefs {
        fn new(test: &str) -> FakeTracefs {
            let root =
                std::env::temp_dir().join(format!("kscope-catalog-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            FakeTracefs { root }
        }

        fn write(&self, path: &str, text: &str) {
            let path = self.root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn format_path(&self, system: &str, event: &str) -> PathBuf {
            self.root.join(format!("events/{system}/{event}/format"))
        }
    }

    impl Drop for FakeTracefs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn a_tracefs_catalog_reads_formats_on_demand_and_caches_them() {
        let fake = FakeTracefs::new("on-demand");
        // Unsorted, as the kernel writes it.
        fake.write(
            "available_events",
            "syscalls:sys_exit_openat\nsched:sched_switch\nbroken:garbled\n\
             syscalls:sys_enter_openat\nmissing:gone\nsched:sched_process_exec\n",
        );
        fake.write("events/sched/sched_switch/format", SCHED_SWITCH);
        fake.write("events/sched/sched_process_exec/format", SCHED_PROCESS_EXEC);
        fake.write("events/syscalls/sys_enter_openat/format", SYS_ENTER_OPENAT);
        fake.write("events/syscalls/sys_exit_openat/format", SYS_EXIT_OPENAT);
        fake.write("events/broken/garbled/format", "name: garbled\nID: what\n");
        let catalog = Catalog::load(&Tracefs::at(&fake.root)).unwrap();

        // Listing reads no format: the broken ones do not matter yet.
        assert_eq!(catalog.names().len(), 6);
        assert_eq!(catalog.names()[0], (s("broken"), s("garbled")));
        assert_eq!(catalog.syscall_names(), ["openat"]);

        let sched = catalog.matching("sched", "*").unwrap();
        assert_eq!(sched, real_catalog().matching("sched", "*").unwrap());
        let (enter, _) = catalog.syscall("openat").unwrap().unwrap();
        assert_eq!(enter.field("filename").map(|f| f.offset), Some(24));

        // Loaded formats are not read again.
        std::fs::remove_file(fake.format_path("sched", "sched_switch")).unwrap();
        assert_eq!(one(&catalog, "sched", "sched_switch").id, 372);

        let err = catalog.matching("broken", "*").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CatalogError::Format { .. }), "{err:?}");
        assert!(
            message.contains("broken:garbled") && message.contains("line 2"),
            "{message}"
        );

        let err = catalog.matching("*", "gone").unwrap_err();
        assert!(matches!(err, CatalogError::Read(_)), "{err:?}");
        let path = fake.format_path("missing", "gone");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_tracefs_without_available_events_is_an_error_naming_it() {
        let fake = FakeTracefs::new("no-events");
        let err = Catalog::load(&Tracefs::at(&fake.root)).unwrap_err();
        assert!(matches!(err, CatalogError::Read(_)), "{err:?}");
        assert!(err.to_string().contains("available_events"), "{err}");
    }

    #[test]
    fn live_every_tracepoint_of_this_kernel_loads() {
        // The gate skips when not root, and fails then under
        // KSCOPE_REQUIRE_LIVE=1; tracefs is mounted for the test if absent.
        kscope_testkit::with_unchanged_tracefs("the tracepoint catalog", |fs| {
            let catalog = Catalog::load(fs).unwrap_or_else(|err| panic!("{err}"));
            let all = catalog.matching("*", "*").unwrap();
            assert_eq!(all.len(), catalog.names().len());
            for tp in &all {
                for f in &tp.fields {
                    let what = format!("{}:{} {}", tp.system, tp.event, f.name);
                    assert!(!f.name.starts_with("common_"), "{what}");
                    match f.kind {
                        FieldKind::Int => assert!(matches!(f.size, 1 | 2 | 4 | 8), "{what}"),
                        FieldKind::CharArray => assert!(f.size > 0, "{what}"),
                        FieldKind::DataLocString | FieldKind::RelLocString => {
                            assert_eq!(f.size, 4, "{what}")
                        }
                        FieldKind::Other => {}
                    }
                }
            }
            let switch = one(&catalog, "sched", "sched_switch");
            assert_eq!(
                switch.field("prev_comm").map(|f| f.kind),
                Some(FieldKind::CharArray)
            );
            let syscalls = catalog.syscall_names();
            assert!(syscalls.iter().any(|name| name == "openat"), "{syscalls:?}");
            let (enter, exit) = catalog.syscall("openat").unwrap().unwrap();
            assert_eq!(enter.fields[0].name, "__syscall_nr");
            assert_eq!(
                enter.field("filename").map(|f| f.kind),
                Some(FieldKind::Int)
            );
            assert_eq!(
                exit.field("ret").map(|f| (f.size, f.signed)),
                Some((8, true))
            );
        });
    }
}
