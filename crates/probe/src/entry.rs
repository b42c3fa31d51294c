//! `@entry(EXPR)` in a return probe: the value EXPR had when the function
//! (or syscall) was entered. The parser's script is rewritten so that
//! nothing after it knows of `@entry`: each use becomes an array read
//! keyed by the thread, `@entryN[tid()]`, and a probe on the matching
//! entry points stores `@entryN[tid()] = EXPR` there, where EXPR's target
//! variables are the entry's. A thread that returns without the entry
//! having been seen (the probes were attached in between) reads 0 or "".

use crate::ast::{
    AssignOp, Block, Expr, ExprKind, Global, Probe, ProbePoint, Script, Stmt, StmtKind,
};
use crate::diagnostic::Diagnostic;
use crate::source::Span;

/// How many threads' entry values each `@entry` keeps at once; past that
/// the least recently used go (the array is an LRU map).
const ENTRY_CAPACITY: u32 = 16 * 1024;

/// The start of the names of the arrays that keep `@entry` values: no
/// script can name one, as `@` starts only SystemTap's operators.
const ENTRY_ARRAY: &str = "@entry";

/// Whether array `name` keeps `@entry` values.
pub fn is_entry_array(name: &str) -> bool {
    name.starts_with(ENTRY_ARRAY)
}

/// Rewrites every `@entry(EXPR)` of `script` as described above.
pub fn rewrite(script: &mut Script) -> Result<(), Diagnostic> {
    for f in &script.functions {
        if let Some(span) = first_entry_in_block(&f.body) {
            return Err(Diagnostic::new(
                span,
                "@entry(...) belongs in a return probe's handler, not in a function: pass the value to the function",
                None,
            ));
        }
    }
    let mut added = Vec::new();
    for probe in &mut script.probes {
        let mut saved: Vec<(String, Expr)> = Vec::new();
        let mut error = None;
        let mut next = script.globals.len() + added.len();
        let mut each = |e: &mut Expr| {
            let ExprKind::Call { name, args } = &mut e.kind else {
                return;
            };
            if name != "@entry" {
                return;
            }
            if args.len() != 1 {
                error.get_or_insert(Diagnostic::new(
                    e.span,
                    "@entry takes one expression: @entry(EXPR)",
                    None,
                ));
                return;
            }
            next += 1;
            let array = format!("{ENTRY_ARRAY}{next}");
            let value = args.remove(0);
            saved.push((array.clone(), value));
            e.kind = ExprKind::Index {
                array,
                keys: vec![tid(e.span)],
            };
        };
        if let Some(cond) = &mut probe.condition {
            rewrite_expr(cond, &mut each);
        }
        rewrite_block(&mut probe.body, &mut each);
        if let Some(e) = error {
            return Err(e);
        }
        if saved.is_empty() {
            continue;
        }
        let points = entry_points(probe, saved[0].1.span)?;
        for (array, value) in saved {
            let span = value.span;
            let store = Expr {
                span,
                kind: ExprKind::Assign {
                    op: AssignOp::Assign,
                    target: Box::new(Expr {
                        span,
                        kind: ExprKind::Index {
                            array: array.clone(),
                            keys: vec![tid(span)],
                        },
                    }),
                    value: Box::new(value),
                },
            };
            added.push((
                Global {
                    name: array,
                    init: None,
                    size: Some(ENTRY_CAPACITY),
                    span,
                },
                Probe {
                    points: points.clone(),
                    condition: None,
                    body: Block {
                        stmts: vec![Stmt {
                            kind: StmtKind::Expr(store),
                            span,
                        }],
                        span,
                    },
                    span: probe.span,
                },
            ));
        }
    }
    for (global, probe) in added {
        script.globals.push(global);
        script.probes.push(probe);
    }
    Ok(())
}

/// `tid()` at `span`.
fn tid(span: Span) -> Expr {
    Expr {
        span,
        kind: ExprKind::Call {
            name: "tid".into(),
            args: Vec::new(),
        },
    }
}

/// The entry points of a return probe's points: each without its
/// `.return`.
fn entry_points(probe: &Probe, at: Span) -> Result<Vec<ProbePoint>, Diagnostic> {
    probe
        .points
        .iter()
        .map(|point| {
            let (_, rest) = point
                .components
                .split_last()
                .filter(|(last, _)| last.name == "return" && last.arg.is_none())
                .ok_or_else(|| {
                    Diagnostic::new(
                        at,
                        format!(
                            "@entry(...) is for return probes (syscall.NAME.return, kernel.function(\"F\").return), and {} is not one",
                            crate::points::text(point)
                        ),
                        None,
                    )
                })?;
            Ok(ProbePoint {
                components: rest.to_vec(),
                span: point.span,
            })
        })
        .collect()
}

fn first_entry_in_block(block: &Block) -> Option<Span> {
    let mut found = None;
    crate::visit::visit_block(block, &mut |e| {
        crate::visit::visit_expr(e, &mut |e| {
            if matches!(&e.kind, ExprKind::Call { name, .. } if name == "@entry") {
                found.get_or_insert(e.span);
            }
        })
    });
    found
}

fn rewrite_block(block: &mut Block, f: &mut impl FnMut(&mut Expr)) {
    for stmt in &mut block.stmts {
        rewrite_stmt(stmt, f);
    }
}

fn rewrite_stmt(stmt: &mut Stmt, f: &mut impl FnMut(&mut Expr)) {
    match &mut stmt.kind {
        StmtKind::Block(b) => rewrite_block(b, f),
        StmtKind::Expr(e) | StmtKind::Return(Some(e)) | StmtKind::Delete(e) => rewrite_expr(e, f),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            rewrite_expr(cond, f);
            rewrite_stmt(then, f);
            if let Some(o) = otherwise {
                rewrite_stmt(o, f);
            }
        }
        StmtKind::While { cond, body } => {
            rewrite_expr(cond, f);
            rewrite_stmt(body, f);
        }
        StmtKind::For {
            init,
            cond,
            step,
            body,
        } => {
            for e in [init, cond, step].into_iter().flatten() {
                rewrite_expr(e, f);
            }
            rewrite_stmt(body, f);
        }
        StmtKind::Foreach(each) => {
            if let Some(limit) = &mut each.limit {
                rewrite_expr(limit, f);
            }
            rewrite_stmt(&mut each.body, f);
        }
        StmtKind::Next
        | StmtKind::Return(None)
        | StmtKind::Break
        | StmtKind::Continue
        | StmtKind::Empty => {}
    }
}

/// Calls `f` on every expression inside `e`, innermost first, then on `e`.
fn rewrite_expr(e: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    match &mut e.kind {
        ExprKind::Literal(_) | ExprKind::Var(_) | ExprKind::Target { .. } => {}
        ExprKind::Call { args, .. }
        | ExprKind::Index { keys: args, .. }
        | ExprKind::In { keys: args, .. } => args.iter_mut().for_each(|a| rewrite_expr(a, f)),
        ExprKind::Unary { operand, .. } => rewrite_expr(operand, f),
        ExprKind::Binary { lhs, rhs, .. } => {
            rewrite_expr(lhs, f);
            rewrite_expr(rhs, f);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            rewrite_expr(cond, f);
            rewrite_expr(then, f);
            rewrite_expr(otherwise, f);
        }
        ExprKind::Assign { target, value, .. } => {
            rewrite_expr(target, f);
            rewrite_expr(value, f);
        }
    }
    f(e);
}
