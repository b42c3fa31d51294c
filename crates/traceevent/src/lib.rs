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
//! [`Field`], [`HeaderPage`], [`HeaderEvent`]): no text is copied, and
//! malformed input is an error that says on which line and what was
//! expected, never a panic. It sits at the start of kscope's trace data
//! flow: `kscope trace list` shows what it parsed; decoding records and
//! evaluating `print fmt` build on it.
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

mod field;
mod format;
mod header;
pub mod printfmt;

pub use field::{ArrayLen, Field, Location};
pub use format::{EventFormat, FormatError};
pub use header::{HeaderEvent, HeaderPage};
