//! Host probes: the probes that `foreach`, `delete` a whole array or
//! print a histogram need the whole of an array at once, which a BPF
//! program cannot have, so the checker marks them ([`Types::is_host`])
//! and code generation makes no program for them. They are begin, end,
//! error and timer probes, which run at kscope's pace anyway: this module
//! runs them in kscope's own process by interpreting their handlers over
//! the checked AST. They share the BPF programs' state: scalar globals
//! are read and written in place in the globals map's mmapped value
//! (longs added to atomically, as the programs do), and arrays and
//! statistics through the map syscalls. Values behave as in BPF: longs
//! wrap, `/` and `%` are C's, strings are cut at 127 bytes, and a
//! runtime error has the message the BPF code gives.
//!
//! [`HostCode`] is what the session keeps of the script to run them;
//! [`HostCode::run`] runs one handler and writes its output to a buffer.

use kscope_bpf::{Map, MappedValue};

use crate::ast::Script;
use crate::check::{ArrayType, Types};
use crate::codegen::Globals;
use crate::points::Attachment;
use crate::source::{SourceFile, Span};

mod arrays;
mod builtins;
mod eval;
mod exec;
#[cfg(test)]
mod tests;
mod value;

/// How many statements and expressions one run of a handler may evaluate
/// before it is stopped as endless: BPF's verifier bounds every loop, and
/// an interpreted one must not hang kscope.
pub const MAX_STEPS: u64 = 10_000_000;

/// What the session keeps of a checked script to interpret its host
/// probes: the source (for the places in runtime errors), the AST, the
/// types, and what `target()` gives.
#[derive(Debug, Clone)]
pub struct HostCode {
    file: SourceFile,
    script: Script,
    types: Types,
    target: i64,
}

/// The process a host probe runs in, as its built-ins see it: kscope's
/// own ids and name, and the CPU it was on when the facts were gathered
/// ([`crate::sys::host_process`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    /// `pid()`.
    pub pid: i64,
    /// `tid()`.
    pub tid: i64,
    /// `ppid()`.
    pub ppid: i64,
    /// `uid()`.
    pub uid: i64,
    /// `gid()`.
    pub gid: i64,
    /// `cpu()`.
    pub cpu: i64,
    /// `execname()`: the process's comm.
    pub comm: String,
}

/// What prints stack values ([`crate::codegen::stack_value`]): the
/// session's stack maps and symbols.
pub trait StackPrinter: std::fmt::Debug {
    /// Stack `value` as SystemTap's string of addresses, or with `lines`
    /// one symbolized frame a line.
    fn text(&self, value: i64, lines: bool) -> String;
}

/// The BPF side's state that a host probe reads and changes.
#[derive(Debug, Clone, Copy)]
pub struct SharedState<'m> {
    /// The globals map's value, mapped.
    pub globals: &'m MappedValue,
    /// Where each global lives in it.
    pub layout: &'m Globals,
    /// The arrays and statistics, in the order of `maps`.
    pub arrays: &'m [ArrayType],
    /// Their maps.
    pub maps: &'m [Map],
    /// What prints the stacks the programs took.
    pub stacks: &'m dyn StackPrinter,
}

/// How a run of a host probe ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The handler called `exit()`.
    pub exited: bool,
}

/// Why a run of a host probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A runtime error of the script, which ends the session as the BPF
    /// side's do: the message names the place and the probe point.
    #[error("{0}")]
    Script(String),
    /// A map syscall failed.
    #[error("a host probe's map access failed: {0}")]
    Map(#[from] kscope_bpf::Error),
}

impl HostCode {
    /// What the session needs to interpret the host probes of `script`,
    /// checked into `types`; `target()` gives `target`.
    pub fn new(file: SourceFile, script: Script, types: Types, target: i64) -> HostCode {
        HostCode {
            file,
            script,
            types,
            target,
        }
    }

    /// Whether the probe of `attachment` is interpreted here.
    pub fn is_host(&self, attachment: &Attachment) -> bool {
        self.types.is_host(attachment.probe)
    }

    /// Runs the handler of the host probe at `attachment` once, against
    /// `state`, appending what it prints to `out`. `process` is what
    /// `pid()`, `execname()` and the like give.
    pub fn run(
        &self,
        attachment: &Attachment,
        state: SharedState<'_>,
        process: &Process,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, HostError> {
        let mut interp = exec::Interp::new(self, attachment, state, process, out);
        interp.probe()?;
        Ok(Outcome {
            exited: interp.exited,
        })
    }

    /// The runtime error `what` at `span` in the probe at `attachment`,
    /// worded as the BPF side's: "WHAT at FILE:LINE:COL in POINT".
    fn error(&self, what: &str, span: Span, attachment: &Attachment) -> HostError {
        let (line, col) = self.file.line_col(span.start);
        HostError::Script(format!(
            "{what} at {}:{line}:{col} in {}",
            self.file.name, attachment.name
        ))
    }
}
