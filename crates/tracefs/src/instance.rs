//! A tracing directory: the top level of tracefs or one of its
//! `instances/NAME` subdirectories. Both hold the same control files
//! (`tracing_on`, `buffer_size_kb`, `events/`, `trace_clock`, ...) and each
//! has its own ring buffer.

use std::path::{Path, PathBuf};

use crate::control;
use crate::error::Result;

/// A tracing directory with its own ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    dir: PathBuf,
    name: Option<String>,
}

impl Instance {
    pub(crate) fn new(dir: PathBuf, name: Option<String>) -> Instance {
        Instance { dir, name }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance's name, or `None` for the top level.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A file of this directory, by relative path (`"tracing_on"`,
    /// `"events/sched/sched_switch/enable"`).
    pub fn file(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The tracefs root this directory is in, and the path of its file
    /// `relative` from that root (`instances/NAME/tracing_on`).
    pub(crate) fn in_root(&self, relative: &str) -> (PathBuf, PathBuf) {
        let root = match &self.name {
            Some(_) => self.dir.parent().and_then(Path::parent),
            None => None,
        };
        match root {
            Some(root) => (
                root.to_path_buf(),
                self.dir
                    .strip_prefix(root)
                    .unwrap_or(&self.dir)
                    .join(relative),
            ),
            None => (self.dir.clone(), PathBuf::from(relative)),
        }
    }

    /// Reads a file of this directory.
    pub fn read(&self, relative: &str) -> Result<String> {
        control::read(&self.file(relative))
    }

    /// The relative path of an event's directory.
    pub fn event_path(system: &str, event: &str) -> String {
        format!("events/{system}/{event}")
    }

    /// This directory's `error_log`, where the kernel explains refused
    /// writes.
    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error_log")
    }
}
