//! Reading and writing tracefs control files. A write the kernel refuses
//! becomes an error naming the file, the value and, when the kernel
//! explained itself in `error_log`, that explanation.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// How a value reaches a control file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Open with O_TRUNC: the value replaces what the file held (for list
    /// files such as `set_event`, this clears the list first).
    Replace,
    /// Open with O_APPEND: the value is added (probe definitions, triggers,
    /// list entries). Never truncates: `O_TRUNC` on `uprobe_events` would
    /// delete every uprobe on the system.
    Append,
}

/// The first read(2) of a tracefs file asks for this much. Some tracefs
/// files (events/header_page, seen on 6.18) return their text only to a
/// first read that takes it whole, and end-of-file to the next: std's
/// `fs::read` starts with a 32-byte probe on files that report size 0,
/// as all of tracefs does, and would get 32 bytes of them.
const FIRST_READ_BYTES: usize = 64 * 1024;

/// Reads a whole tracefs file as text, starting with one large read.
pub fn read(path: &Path) -> Result<String> {
    read_bytes(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads a whole tracefs file, starting with one large read.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(error)?;
    let mut bytes = Vec::with_capacity(FIRST_READ_BYTES);
    file.read_to_end(&mut bytes).map_err(error)?;
    Ok(bytes)
}

/// Writes `value`, newline-terminated, to a control file in one write(2).
/// `error_log` is the
/// `error_log` file of the tracing directory the file belongs to; when the
/// write fails and the kernel added an entry there, the entry is returned
/// in the error.
pub fn write(path: &Path, value: &str, mode: WriteMode, error_log: Option<&Path>) -> Result<()> {
    let before = error_log.and_then(|log| std::fs::read_to_string(log).ok());
    let mut options = OpenOptions::new();
    match mode {
        WriteMode::Replace => options.write(true).truncate(true),
        WriteMode::Append => options.append(true),
    };
    // As echo(1) does: list files (set_ftrace_pid, set_event_pid) keep a
    // last entry that no whitespace ends in the parser, unapplied.
    let line = if value.is_empty() || value.ends_with('\n') {
        value.to_string()
    } else {
        format!("{value}\n")
    };
    let outcome = options
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    outcome.map_err(|source| {
        let after = error_log.and_then(|log| std::fs::read_to_string(log).ok());
        Error::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
            error_log: new_error_log_entry(before.as_deref(), after.as_deref()),
        }
    })
}

/// The last entry of `error_log` when the log changed between two reads.
/// The kernel's entries start with a `[timestamp]` line followed by
/// indented `Command:` and caret lines.
pub fn new_error_log_entry(before: Option<&str>, after: Option<&str>) -> Option<String> {
    let after = after?;
    if before == Some(after) {
        return None;
    }
    let lines: Vec<&str> = after.lines().collect();
    let start = lines.iter().rposition(|l| l.starts_with('['))?;
    Some(lines[start..].join("\n"))
}

/// How to put a control file back the way it was, derived from what it
/// read before the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// Write this value back (with O_TRUNC).
    Value(String),
    /// Truncate the file, then write each entry back one by one.
    List(Vec<String>),
    /// For the top-level `buffer_size_kb` that read `N (expanded: M)`:
    /// when it no longer reads "expanded", write M. Kernels before 6.2
    /// keep one global "expanded" flag, which a tracer or event in any
    /// instance sets, leaving the top buffer either allocated at M or
    /// stuck at N for its next user; M is what that user would have got.
    /// The flag itself cannot be cleared from user space.
    ExpandedSize(String),
}

/// The size `M` of a top-level buffer that reads `N (expanded: M)`, i.e.
/// that has not been allocated at its full size yet.
pub fn unexpanded_size(buffer_size_kb: &str) -> Option<String> {
    buffer_size_kb
        .split_once("(expanded: ")
        .map(|(_, rest)| rest.trim().trim_end_matches(')').trim().to_string())
}

/// Files whose content is a list that a truncating open clears.
const LIST_FILES: &[&str] = &[
    "set_event",
    "set_event_pid",
    "set_event_notrace_pid",
    "set_ftrace_filter",
    "set_ftrace_notrace",
    "set_ftrace_pid",
    "set_ftrace_notrace_pid",
    "set_graph_function",
    "set_graph_notrace",
];

/// Files that the generic setter must not touch, and what to use instead.
pub(crate) fn dedicated_call(file_name: &str) -> Option<&'static str> {
    match file_name {
        "trigger" => Some("StateGuard::add_trigger"),
        "uprobe_events" | "kprobe_events" | "dynamic_events" => Some("StateGuard::add_probe"),
        "free_buffer" | "trace_marker" | "trace_marker_raw" | "trace" | "snapshot" => {
            Some("nothing: this file is not a setting")
        }
        _ => None,
    }
}

/// Works out how to restore `file_name` from the text it held.
pub fn restore_for(file_name: &str, current: &str) -> Restore {
    let trimmed = current.trim_end_matches('\n');
    if LIST_FILES.contains(&file_name) {
        let entries = current
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && *l != "no pid")
            .map(str::to_string)
            .collect();
        return Restore::List(entries);
    }
    match file_name {
        // An event filter reads "none" when unset and is cleared with "0".
        "filter" if trimmed.trim() == "none" => Restore::Value("0".into()),
        // Before the top-level buffer is first used it reads
        // "7 (expanded: 1408)": 1408 is what it will really hold, and writing
        // 7 would shrink it. Once expanded, it cannot be unexpanded from user
        // space, so the expanded size is the faithful value to write back.
        "buffer_size_kb" => {
            Restore::Value(unexpanded_size(trimmed).unwrap_or_else(|| trimmed.trim().to_string()))
        }
        // Selection files list every choice and bracket the current one.
        "trace_clock" | "current_tracer" | "timestamp_mode" => {
            let selected = trimmed
                .split_once('[')
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(inside, _)| inside)
                .unwrap_or(trimmed);
            Restore::Value(selected.trim().to_string())
        }
        _ => Restore::Value(trimmed.to_string()),
    }
}

/// Applies a `Restore` to `path`.
pub(crate) fn apply_restore(
    path: &Path,
    restore: &Restore,
    error_log: Option<&Path>,
) -> Result<()> {
    match restore {
        Restore::Value(value) => write(path, value, WriteMode::Replace, error_log),
        Restore::List(entries) => {
            write(path, "", WriteMode::Replace, error_log)?;
            entries
                .iter()
                .try_for_each(|entry| write(path, entry, WriteMode::Append, error_log))
        }
        Restore::ExpandedSize(size) => {
            if unexpanded_size(&read(path)?).is_some() {
                return Ok(());
            }
            write(path, size, WriteMode::Replace, error_log)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_written_back_as_read() {
        assert_eq!(restore_for("tracing_on", "1\n"), Restore::Value("1".into()));
        assert_eq!(restore_for("enable", "0\n"), Restore::Value("0".into()));
        assert_eq!(
            restore_for("tracing_cpumask", "3\n"),
            Restore::Value("3".into())
        );
    }

    #[test]
    fn an_unset_filter_is_cleared_with_zero() {
        assert_eq!(restore_for("filter", "none\n"), Restore::Value("0".into()));
        assert_eq!(
            restore_for("filter", "pid == 1\n"),
            Restore::Value("pid == 1".into())
        );
    }

    #[test]
    fn buffer_size_restores_the_expanded_size() {
        assert_eq!(
            restore_for("buffer_size_kb", "7 (expanded: 1408)\n"),
            Restore::Value("1408".into())
        );
        assert_eq!(
            restore_for("buffer_size_kb", "1408\n"),
            Restore::Value("1408".into())
        );
    }

    #[test]
    fn an_expanded_size_is_written_only_once_the_flag_flipped() {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-expand-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let file = dir.join("buffer_size_kb");
        let restore = Restore::ExpandedSize("1408".into());
        std::fs::write(&file, "7 (expanded: 1408)\n").unwrap();
        apply_restore(&file, &restore, None).unwrap();
        assert_eq!(read(&file).unwrap(), "7 (expanded: 1408)\n");
        std::fs::write(&file, "7\n").unwrap();
        apply_restore(&file, &restore, None).unwrap();
        assert_eq!(read(&file).unwrap(), "1408\n");
        assert_eq!(unexpanded_size("1410\n"), None);
    }

    #[test]
    fn selection_files_restore_the_bracketed_choice() {
        assert_eq!(
            restore_for("trace_clock", "[local] global counter uptime perf\n"),
            Restore::Value("local".into())
        );
        assert_eq!(
            restore_for("current_tracer", "nop\n"),
            Restore::Value("nop".into())
        );
    }

    #[test]
    fn list_files_drop_comments_and_placeholders() {
        assert_eq!(
            restore_for("set_ftrace_filter", "#### all functions enabled ####\n"),
            Restore::List(vec![])
        );
        assert_eq!(
            restore_for("set_ftrace_pid", "no pid\n"),
            Restore::List(vec![])
        );
        assert_eq!(
            restore_for("set_event", "sched:sched_switch\nirq:irq_handler_entry\n"),
            Restore::List(vec![
                "sched:sched_switch".into(),
                "irq:irq_handler_entry".into()
            ])
        );
    }

    #[test]
    fn the_newest_error_log_entry_is_extracted_only_when_the_log_changed() {
        let before = "[  10.000000] trace_uprobe: error: Invalid argument\n  Command: x\n";
        let after = format!(
            "{before}[  20.500000] trace_uprobe: error: File not found\n  Command: p:a /nope:0x1\n                   ^\n"
        );
        let entry = new_error_log_entry(Some(before), Some(&after)).unwrap();
        assert!(entry.starts_with("[  20.500000] trace_uprobe: error: File not found"));
        assert!(entry.ends_with('^'));
        assert_eq!(new_error_log_entry(Some(before), Some(before)), None);
        assert_eq!(new_error_log_entry(None, None), None);
        assert_eq!(new_error_log_entry(None, Some("")), None);
    }

    #[test]
    fn writes_to_plain_files_replace_or_append() {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-control-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let file = dir.join("set_event");
        std::fs::write(&file, "old\n").unwrap();
        write(&file, "a\n", WriteMode::Replace, None).unwrap();
        write(&file, "b\n", WriteMode::Append, None).unwrap();
        assert_eq!(read(&file).unwrap(), "a\nb\n");
        apply_restore(
            &file,
            &Restore::List(vec!["x\n".into(), "y\n".into()]),
            None,
        )
        .unwrap();
        assert_eq!(read(&file).unwrap(), "x\ny\n");
    }

    #[test]
    fn a_refused_write_names_the_file_and_value() {
        let err = write(
            Path::new("/nonexistent-kscope/tracing_on"),
            "1",
            WriteMode::Replace,
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent-kscope/tracing_on"), "{text}");
        assert!(text.contains("\"1\""), "{text}");
    }
}
