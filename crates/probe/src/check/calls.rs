//! The checker's rules for calls: `printf`'s and `sprintf`'s formats
//! against their arguments, what `print` takes (histograms included),
//! the statistics' `@` operators, the built-ins' signatures, and the
//! script's own functions, whose parameters and results get their types
//! from the calls.

use crate::ast::{Expr, ExprKind, Literal, StatOp};
use crate::printf::{ArgKind, Format};
use crate::source::Span;

use super::{Checker, Key, Scope, Ty, builtin, builtin_names, is_hist};

impl Checker<'_> {
    pub(super) fn call(&mut self, e: &Expr, name: &str, args: &[Expr]) -> Option<Ty> {
        match name {
            "printf" | "sprintf" => {
                let Some(first) = args.first() else {
                    self.fail(e.span, format!("{name} needs a format string"));
                    return None;
                };
                let ExprKind::Literal(Literal::Str(text)) = &first.kind else {
                    self.fail(
                        first.span,
                        format!("{name}'s format must be a string literal"),
                    );
                    return None;
                };
                match Format::parse(text) {
                    Err(err) => {
                        let at = first.span.start + 1 + err.offset;
                        self.fail(
                            Span::new(at, at + 1),
                            format!("bad format: {}", err.message),
                        );
                    }
                    Ok(format) => {
                        let kinds = format.arg_kinds();
                        if kinds.len() != args.len() - 1 {
                            self.fail(
                                e.span,
                                format!(
                                    "the format takes {} argument(s), and {} are given",
                                    kinds.len(),
                                    args.len() - 1
                                ),
                            );
                        }
                        for (kind, arg) in kinds.iter().zip(&args[1..]) {
                            let t = match kind {
                                ArgKind::Int => Ty::Long,
                                ArgKind::Str => Ty::Str,
                            };
                            // %s prints a stack as its addresses, as
                            // SystemTap's string of them would.
                            if t == Ty::Str && self.expr(arg) == Some(Ty::Stack) {
                                continue;
                            }
                            self.want(arg, t);
                        }
                    }
                }
                Some(if name == "printf" { Ty::Void } else { Ty::Str })
            }
            "print" | "println" => {
                for arg in args {
                    if is_hist(arg) {
                        self.expr(arg);
                        continue;
                    }
                    if self.expr(arg) == Some(Ty::Void) {
                        self.fail(arg.span, "this gives no value to print".into());
                    }
                }
                if name == "print" && args.is_empty() {
                    self.fail(e.span, "print needs something to print".into());
                }
                Some(Ty::Void)
            }
            "@hist_log" | "@hist_linear" => {
                self.hist(e, name, args);
                Some(Ty::Void)
            }
            _ if StatOp::from_name(name).is_some() => {
                match (name, args) {
                    (_, [stat]) => {
                        self.stat_operand(stat, name);
                    }
                    // SystemTap's bit shift, accepted and checked; the
                    // variance is computed without it (stats.rs).
                    ("@variance", [stat, shift]) => {
                        self.stat_operand(stat, name);
                        self.variance_shift(shift);
                    }
                    _ => self.fail(e.span, format!("{name}() takes one statistic")),
                }
                Some(Ty::Long)
            }
            _ => {
                if let Some(b) = builtin(name) {
                    self.arity(e, name, b.params.len(), args.len());
                    for (arg, t) in args.iter().zip(b.params) {
                        self.want(arg, *t);
                    }
                    return Some(b.result);
                }
                let script = self.script;
                let Some(index) = script.functions.iter().position(|f| f.name == name) else {
                    let mut names: Vec<&str> = builtin_names().collect();
                    names.extend(script.functions.iter().map(|f| f.name.as_str()));
                    let hint = crate::catalog::did_you_mean(name, names)
                        .map(|c| format!("; did you mean '{c}'?"))
                        .unwrap_or_default();
                    self.fail(e.span, format!("unknown function '{name}'{hint}"));
                    return None;
                };
                let f = &script.functions[index];
                self.arity(e, name, f.params.len(), args.len());
                for (arg, param) in args.iter().zip(&f.params) {
                    let key = Key::Local(Scope::Function(index), param.name.clone());
                    match self.types.vars.get(&key).copied() {
                        Some(t) => self.want(arg, t),
                        None => {
                            let t = self.expr(arg);
                            self.unify_key(key, t, arg.span);
                        }
                    }
                }
                match self.types.vars.get(&Key::Return(index)).copied() {
                    Some(t) => Some(t),
                    None if self.report => Some(Ty::Void),
                    None => None,
                }
            }
        }
    }
}
