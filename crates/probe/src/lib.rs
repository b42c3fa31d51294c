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
//!    ring-buffer records with [`printf`].
//!
//! [`compile`] runs passes 2 and 3. Only [`runtime`] and
//! [`catalog::Catalog::load`] touch the kernel.
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
pub mod lexer;
mod parser;
pub mod points;
pub mod printf;
pub mod runtime;
mod source;

pub use ast::Script;
pub use diagnostic::Diagnostic;
pub use parser::parse;
pub use source::{SourceFile, Span};

/// Passes 2 and 3 for a parsed script: resolves its probe points against
/// `kernel`, checks names and types, and generates the BPF programs.
pub fn compile(
    file: &SourceFile,
    script: &Script,
    kernel: &points::Kernel<'_>,
    options: &codegen::Options,
) -> Result<(codegen::Generated, Vec<points::Attachment>), Diagnostic> {
    let attachments = points::resolve(script, kernel)?;
    let types = check::check(script, &attachments)?;
    let generated = codegen::generate(file, script, &types, &attachments, options)?;
    Ok((generated, attachments))
}
