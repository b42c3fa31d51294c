//! Walks over the AST that the passes share: every expression of a block
//! or a statement, every expression inside an expression, every call.
//! The checker finds a scope's locals and a function's callees with them,
//! and the pipeline finds what a script needs from the kernel.

use crate::ast::{AccessKind, Block, Expr, ExprKind, Script, Stmt, StmtKind};
use crate::source::Span;

/// Calls `f` on every top-level expression of every statement in
/// `block`, nested statements included.
pub fn visit_block(block: &Block, f: &mut impl FnMut(&Expr)) {
    for stmt in &block.stmts {
        visit_stmt(stmt, f);
    }
}

/// Calls `f` on every top-level expression of `stmt` and of the
/// statements inside it.
pub fn visit_stmt(stmt: &Stmt, f: &mut impl FnMut(&Expr)) {
    if let Some(l) = stmt.kind.as_loop() {
        for e in [l.init, l.cond, l.step].into_iter().flatten() {
            f(e);
        }
        return visit_stmt(l.body, f);
    }
    match &stmt.kind {
        StmtKind::Block(b) => visit_block(b, f),
        StmtKind::Expr(e) | StmtKind::Return(Some(e)) | StmtKind::Delete(e) => f(e),
        StmtKind::Foreach(each) => {
            if let Some(limit) = &each.limit {
                f(limit);
            }
            visit_stmt(&each.body, f);
        }
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            f(cond);
            visit_stmt(then, f);
            if let Some(o) = otherwise {
                visit_stmt(o, f);
            }
        }
        _ => {}
    }
}

/// Calls `f` on `e` and every expression inside it.
pub fn visit_expr(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Literal(_) | ExprKind::Var(_) => {}
        ExprKind::Target { accesses, .. } => {
            for a in accesses {
                if let AccessKind::Index(i) = &a.kind {
                    visit_expr(i, f);
                }
            }
        }
        ExprKind::Call { args, .. }
        | ExprKind::Index { keys: args, .. }
        | ExprKind::In { keys: args, .. } => args.iter().for_each(|a| visit_expr(a, f)),
        ExprKind::Unary { operand, .. } => visit_expr(operand, f),
        ExprKind::Binary { lhs, rhs, .. } => {
            visit_expr(lhs, f);
            visit_expr(rhs, f);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            visit_expr(cond, f);
            visit_expr(then, f);
            visit_expr(otherwise, f);
        }
        ExprKind::Assign { target, value, .. } => {
            visit_expr(target, f);
            visit_expr(value, f);
        }
    }
}

/// Calls `f` on every statement of `block`, outermost first, nested
/// ones included.
pub fn visit_stmts(block: &Block, f: &mut impl FnMut(&Stmt)) {
    for stmt in &block.stmts {
        walk_stmt(stmt, f);
    }
}

fn walk_stmt(stmt: &Stmt, f: &mut impl FnMut(&Stmt)) {
    f(stmt);
    match &stmt.kind {
        StmtKind::Block(b) => visit_stmts(b, f),
        StmtKind::If {
            then, otherwise, ..
        } => {
            walk_stmt(then, f);
            if let Some(o) = otherwise {
                walk_stmt(o, f);
            }
        }
        StmtKind::While { body, .. } | StmtKind::For { body, .. } => walk_stmt(body, f),
        StmtKind::Foreach(each) => walk_stmt(&each.body, f),
        _ => {}
    }
}

/// Calls `f` with the name and place of every call in `block`.
pub fn calls_in_block(block: &Block, f: &mut impl FnMut(&str, Span)) {
    visit_block(block, &mut |e| {
        visit_expr(e, &mut |e| {
            if let ExprKind::Call { name, .. } = &e.kind {
                f(name, e.span);
            }
        })
    });
}

/// Whether `script` calls `function` anywhere: in a probe's condition or
/// body, or in a function's body.
pub fn calls(script: &Script, function: &str) -> bool {
    let mut found = false;
    let mut note = |name: &str, _: Span| found |= name == function;
    for probe in &script.probes {
        if let Some(cond) = &probe.condition {
            visit_expr(cond, &mut |e| {
                if let ExprKind::Call { name, .. } = &e.kind {
                    note(name, e.span);
                }
            });
        }
        calls_in_block(&probe.body, &mut note);
    }
    for f in &script.functions {
        calls_in_block(&f.body, &mut note);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceFile, parse};

    fn script(text: &str) -> Script {
        parse(&SourceFile::new("t.stp", text)).expect("the script parses")
    }

    #[test]
    fn calls_are_found_in_conditions_loops_and_functions_only() {
        assert!(calls(&script("probe begin if (ppid() > 1) { }"), "ppid"));
        assert!(calls(
            &script("probe begin { for (i = 0; i < ppid(); i++) { } }"),
            "ppid"
        ));
        assert!(calls(
            &script("function f() { while (1) { return ppid() } } probe begin { }"),
            "ppid"
        ));
        // A word in a string or a comment is not a call.
        assert!(!calls(
            &script("probe begin { printf(\"ppid\\n\") } # ppid()"),
            "ppid"
        ));
        assert!(!calls(&script("probe begin { x = pid() + tid() }"), "ppid"));
    }

    #[test]
    fn a_loop_is_walked_init_cond_step_then_body() {
        let s = script("probe begin { for (a = 1; b < 2; c++) d = 3; while (e) f() }");
        let mut seen = Vec::new();
        visit_block(&s.probes[0].body, &mut |e| seen.push(e.to_string()));
        assert_eq!(seen, ["(a = 1)", "(b < 2)", "(c++)", "(d = 3)", "e", "f()"]);
    }
}
