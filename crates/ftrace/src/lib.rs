//! Live ftrace sessions.
//!
//! A [`Session`] sets tracing up in a private tracefs instance through a
//! `StateGuard` (events, filters, pid filter, clock, buffer size), then
//! hands out the raw sub-buffers of every CPU as they fill: it waits with
//! poll(2) on the per-CPU `trace_pipe_raw` files and reads each with
//! non-blocking reads of one sub-buffer. [`merge`] decodes a batch of
//! sub-buffers and puts their records and lost-event marks in time order
//! across CPUs. [`select_events`] finds the events that `-e` patterns
//! name. Rendering is left to the caller.
//!
//! A recording goes to a trace.dat instead: a [`Recorder`] moves every
//! CPU's whole sub-buffers to files with splice(2), and what it
//! [`Recorded`], with the [`Metadata`] captured when tracing stopped, is
//! the `kscope_tracedat::TraceData` to write ([`Recorded::trace_data`]);
//! a [`Snapshot`] is the same for what a buffer holds now (`trace
//! extract`). [`GatedCommand`] holds a command before its exec until
//! tracing is on. The crate's syscalls and its reads of /proc are in its
//! `sys` module.
//!
//! ```no_run
//! use kscope_ftrace::{EventSelection, Session, SessionConfig, merge};
//! use kscope_tracefs::StateGuard;
//! let guard = StateGuard::new();
//! let fs = guard.tracefs()?;
//! let config = SessionConfig {
//!     events: vec![EventSelection::new("sched", "sched_switch")],
//!     ..SessionConfig::default()
//! };
//! let mut session = Session::start(&guard, &fs, &config)?;
//! session.wait(std::time::Duration::from_millis(100))?;
//! let pages = session.drain()?;
//! let merged = merge(&pages, session.layout());
//! println!("{} records", merged.items.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod capture;
mod gate;
mod kernel;
mod merge;
mod record;
mod select;
mod session;
mod sys;

pub use capture::{Metadata, Snapshot};
pub use gate::{Child, CommandEnd, CommandError, GatedCommand, command_words};
pub use kernel::{KernelContext, read_btf};
pub use merge::{Item, Merged, merge};
pub use record::{CpuRecording, CpuStats, RecordError, Recorded, Recorder};
pub use select::{SelectError, no_event_hint, select_events};
pub use session::{EventSelection, PAGES_PER_CPU, RawPage, Session, SessionConfig, SessionError};
