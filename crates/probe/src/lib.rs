//! kscope's probe language, a subset of SystemTap's, compiled to eBPF:
//! the compiler behind `kscope probe`, one module per pass over one AST
//! whose every node carries its span.
//!
//! 1. [`parse`] ([`lexer`], `parser`): a [`SourceFile`] to a [`Script`],
//!    or a [`Diagnostic`] that shows where the script is wrong and what was
//!    expected;
//! 2. [`points`] resolves probe points against the kernel's tracepoints
//!    ([`catalog`]) and BTF, and [`check`] resolves names and infers types;
//! 3. [`codegen`] generates one BPF program per point;
//! 4. and 5. [`runtime`] loads them, attaches them, and formats their
//!    ring-buffer records with [`printf`]; the probes that walk arrays or
//!    print histograms have no program, and [`host`] interprets them in
//!    kscope's own process.
//!
//! [`pipeline`] runs passes 2 and 3 in their one order ([`resolve`],
//! then [`Resolved::generate`]; [`compile`] runs both), and [`Needs`]
//! says from the AST what they will ask of the kernel. Only [`sys`]
//! (which reads the kernel's facts for them, through
//! [`catalog::Catalog::load`]) and [`runtime`] touch the kernel; the
//! passes are tested without it.
//!
//! ```
//! use kscope_probe::{ast::StmtKind, parse, SourceFile};
//!
//! let file = SourceFile::new("read.stp", r#"
//!     global reads = 0
//!     probe vfs.read { reads++; printf("read performed\n") }
//!     probe end { printf("%d reads\n", reads) }
//! "#);
//! let script = parse(&file)?;
//! assert_eq!(script.globals[0].name, "reads");
//! assert_eq!(script.probes[0].points[0].components[1].name, "read");
//! let StmtKind::Expr(e) = &script.probes[0].body.stmts[0].kind else { panic!() };
//! assert_eq!(e.to_string(), "(reads++)");
//!
//! let bad = SourceFile::new("bad.stp", "probe begin { if (x > 1 { exit() } }");
//! let err = parse(&bad).unwrap_err();
//! assert_eq!(err.render(&bad), "\
//! bad.stp:1:25: error: expected ')' after the condition, found '{'
//! probe begin { if (x > 1 { exit() } }
//!                         ^
//! ");
//! # Ok::<(), kscope_probe::Diagnostic>(())
//! ```

pub mod ast;
pub mod catalog;
pub mod check;
pub mod codegen;
mod diagnostic;
mod entry;
pub mod host;
pub mod lexer;
mod parser;
pub mod pipeline;
pub mod points;
pub mod printf;
pub mod runtime;
mod source;
pub mod stacks;
pub mod stats;
pub mod sys;
pub mod syscall_table;
#[cfg(test)]
mod testing;
pub mod visit;

pub use ast::Script;
pub use diagnostic::Diagnostic;
pub use parser::{parse, parse_with_args};
pub use pipeline::{Needs, Resolved, compile, resolve};
pub use source::{SourceFile, Span};
