//! ftrace event formats, as the kernel describes them in tracefs.
//!
//! Every trace event has a `format` file (`events/SYSTEM/EVENT/format`)
//! that gives its numeric id, the layout of its record (each field's C
//! declaration, offset, size and signedness) and its `print fmt`, the
//! printf-like recipe the kernel uses to show a record as text.
//! `events/header_page` and `events/header_event` describe the ring
//! buffer's page header and event header the same way.
//!
//! This crate parses those files into borrowed views ([`EventFormat`],
//! [`Field`], [`HeaderPage`], [`HeaderEvent`]), and decodes the ring
//! buffer's raw sub-buffers, as `per_cpu/cpuN/trace_pipe_raw` and
//! trace.dat hold them, into records ([`SubBuffer`], [`Record`]): an
//! absolute time stamp and the payload whose layout the event's format
//! gives. Nothing is copied, and malformed input is an error that says
//! where (a line, or a sub-buffer offset) and what was expected, never a
//! panic. It sits at the start of kscope's trace data flow: `kscope trace
//! list` shows what it parsed; reading records and evaluating `print fmt`
//! build on it. [`merge`] puts the records of several CPUs in one time
//! order, and [`filter`] is the `-F` language of reports.
//!
//! ```
//! use kscope_traceevent::EventFormat;
//! let text = "name: sched_wakeup\nID: 318\nformat:\n\
//! \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
//! \tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
//! \tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\
//! \nprint fmt: \"comm=%s pid=%d\", REC->comm, REC->pid\n";
//! let format = EventFormat::parse(text)?;
//! assert_eq!(format.id, 318);
//! assert_eq!(format.field("pid").map(|f| f.offset), Some(24));
//! # Ok::<(), kscope_traceevent::FormatError>(())
//! ```
//!
//! Records of a sub-buffer (one `trace_pipe_raw` read):
//!
//! ```no_run
//! use kscope_traceevent::{PageLayout, SubBuffer};
//! # fn read_one_subbuffer() -> Vec<u8> { Vec::new() }
//! let bytes = read_one_subbuffer();
//! let sub = SubBuffer::parse(&bytes, &PageLayout::X86_64)?;
//! for record in sub.records() {
//!     let record = record?;
//!     let common_type = u16::from_le_bytes([record.data[0], record.data[1]]);
//!     println!("{} {common_type}", record.timestamp);
//! }
//! # Ok::<(), kscope_traceevent::PageError>(())
//! ```

mod common;
mod ctype;
mod error;
mod field;
pub mod filter;
mod format;
mod header;
pub mod merge;
mod page;
mod pattern;
pub mod printfmt;
mod render;
mod resolve;

pub use common::{common_flags, common_pid, common_preempt_count, common_type};
pub use error::FormatError;
pub use field::{ArrayLen, Field, Location};
pub use format::EventFormat;
pub use header::{HeaderEvent, HeaderPage};
pub use page::{Missed, PageError, PageLayout, Record, Records, SubBuffer};
pub use pattern::{GlobError, name_glob};
pub use render::Renderer;
pub use resolve::{Cmdlines, Kallsyms, PrintkFormats};
