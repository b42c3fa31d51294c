//! The checker's rules for arrays, statistics and what only kscope's own
//! process can do with them. Indexing, `in`, `<<<` and the `@` operators
//! shape an array (how many keys, statistic or not); `foreach`, `delete`
//! of a whole array and printing a histogram are host uses, which need
//! the whole array at once: user space has it, a BPF program does not. A
//! probe whose points all run at kscope's pace (begin, end, error,
//! timers) may make host uses, and then runs interpreted in kscope's own
//! process; an event probe that makes one is an error that says why.

use std::collections::HashMap;

use crate::ast::{Expr, ExprKind, Foreach, Literal};
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::visit::calls_in_block;

use super::{Binding, Checker, HistKind, Key, Scope, Shape, Ty, UNKNOWN_KEYS};

impl Checker<'_> {
    /// Checks `array[keys]` (or `[keys] in array`): a global, indexed by
    /// as many keys everywhere, each key of one type.
    pub(super) fn index(&mut self, span: Span, array: &str, keys: &[Expr]) {
        if !self.shape(span, array, keys.len()) {
            return;
        }
        for (i, key) in keys.iter().enumerate() {
            let t = self.expr(key);
            match t {
                Some(Ty::Void) => self.fail(key.span, "this gives no value to use as a key".into()),
                Some(t) => self.unify_key(Key::Index(array.to_string(), i), Some(t), key.span),
                None => {
                    if let Some(&t) = self.types.vars.get(&Key::Index(array.to_string(), i)) {
                        self.want(key, t);
                    }
                }
            }
        }
    }

    /// Notes that `array` takes `keys` keys (seen at `span`); false, with
    /// the error, when it cannot.
    fn shape(&mut self, span: Span, array: &str, keys: usize) -> bool {
        if !self.types.globals.contains(array) {
            let local = matches!(
                self.types.binding(self.scope, array),
                Some(Binding::Local(_))
            );
            let why = if local {
                "a local variable"
            } else {
                "not declared"
            };
            self.fail(
                span,
                format!("'{array}' is used as an array but is {why}; arrays and statistics are globals: declare 'global {array}'"),
            );
            return false;
        }
        if self
            .types
            .vars
            .contains_key(&Key::Global(array.to_string()))
        {
            let note = self
                .decided
                .get(&Key::Global(array.to_string()))
                .map(|s| (*s, format!("'{array}' is a scalar because of this")));
            self.fail_with_note(
                span,
                format!("'{array}' is used as an array here, but it is a scalar"),
                note,
            );
            return false;
        }
        match self.types.shapes.get_mut(array) {
            None => {
                self.types.shapes.insert(
                    array.to_string(),
                    Shape {
                        keys: (keys, span),
                        stat: None,
                        hist: None,
                    },
                );
                self.changed = true;
                true
            }
            // Declared with a size: the first use says how many keys.
            Some(shape) if shape.keys.0 == UNKNOWN_KEYS => {
                shape.keys.0 = keys;
                self.changed = true;
                true
            }
            Some(shape) if shape.keys.0 != keys => {
                let (had, at) = shape.keys;
                self.fail_with_note(
                    span,
                    format!("'{array}' is used with {keys} key(s) here, but with {had} elsewhere"),
                    Some((at, format!("'{array}' takes {had} key(s) because of this"))),
                );
                false
            }
            Some(_) => true,
        }
    }

    /// Whether `array` is a statistic.
    pub(super) fn is_stat(&self, array: &str) -> bool {
        self.types
            .shapes
            .get(array)
            .is_some_and(|s| s.stat.is_some())
    }

    /// A use of array or statistic `name` as a plain value.
    pub(super) fn misused_array(&mut self, span: Span, name: &str) {
        let message = if self.is_stat(name) {
            format!(
                "'{name}' is a statistic: read it with @count({name}), @sum, @min, @max, @avg or @variance, or print(@hist_log({name}))"
            )
        } else {
            format!("'{name}' is an array: use an entry, {name}[KEY]")
        };
        self.fail(span, message);
    }

    /// The target of `<<<`: a global statistic, or an entry of one.
    pub(super) fn aggregate(&mut self, target: &Expr) {
        let (array, span) = match &target.kind {
            ExprKind::Var(name) => {
                if !self.shape(target.span, name, 0) {
                    return;
                }
                (name, target.span)
            }
            ExprKind::Index { array, keys } => {
                self.index(target.span, array, keys);
                (array, target.span)
            }
            _ => {
                self.fail(
                    target.span,
                    "'<<<' adds to a statistic: a global, or an entry of a global array".into(),
                );
                return;
            }
        };
        if self
            .types
            .vars
            .contains_key(&Key::ArrayValue(array.clone()))
            && !self.is_stat(array)
        {
            let note = self
                .decided
                .get(&Key::ArrayValue(array.clone()))
                .map(|s| (*s, format!("'{array}' holds values because of this")));
            self.fail_with_note(
                span,
                format!("'{array}' holds values, so '<<<' cannot add to it as a statistic"),
                note,
            );
            return;
        }
        if let Some(shape) = self.types.shapes.get_mut(array.as_str())
            && shape.stat.is_none()
        {
            shape.stat = Some(span);
            self.types
                .vars
                .insert(Key::ArrayValue(array.clone()), Ty::Long);
            self.changed = true;
        }
    }

    /// The operand of an `@` operator: a statistic or an entry of one.
    pub(super) fn stat_operand(&mut self, operand: &Expr, op: &str) -> Option<String> {
        let array = match &operand.kind {
            ExprKind::Var(name) => {
                self.shape(operand.span, name, 0);
                name
            }
            ExprKind::Index { array, keys } => {
                self.index(operand.span, array, keys);
                array
            }
            _ => {
                self.fail(
                    operand.span,
                    format!(
                        "{op}() reads a statistic: a global that '<<<' adds to, or an entry of one"
                    ),
                );
                return None;
            }
        };
        if self.report && !self.is_stat(array) {
            self.fail(
                operand.span,
                format!("{op}() reads a statistic, and nothing is added to '{array}' with '<<<'"),
            );
        }
        Some(array.clone())
    }

    /// `@hist_log(s)` or `@hist_linear(s, lo, hi, step)`.
    pub(super) fn hist(&mut self, call: &Expr, name: &str, args: &[Expr]) {
        self.note_host(call.span, "printing a histogram");
        let want = if name == "@hist_log" { 1 } else { 4 };
        if args.len() != want {
            let shape = if want == 1 {
                "@hist_log(STAT)"
            } else {
                "@hist_linear(STAT, LOW, HIGH, STEP)"
            };
            self.fail(
                call.span,
                format!("{name} takes {want} argument(s): {shape}"),
            );
            return;
        }
        let Some(array) = self.stat_operand(&args[0], name) else {
            return;
        };
        let kind = if want == 1 {
            HistKind::Log
        } else {
            let mut values = [0i64; 3];
            for (v, arg) in values.iter_mut().zip(&args[1..]) {
                match literal_int(arg) {
                    Some(n) => *v = n,
                    None => {
                        self.fail(
                            arg.span,
                            format!(
                                "{name}'s bounds and step must be numbers written in the script"
                            ),
                        );
                        return;
                    }
                }
            }
            let [lo, hi, step] = values;
            match HistKind::linear(lo, hi, step) {
                Ok(kind) => kind,
                Err(e) => {
                    self.fail(call.span, format!("{name}: {e}"));
                    return;
                }
            }
        };
        let Some(shape) = self.types.shapes.get_mut(&array) else {
            return;
        };
        match shape.hist {
            None => {
                shape.hist = Some((kind, call.span));
                self.changed = true;
            }
            Some((had, at)) if had != kind => {
                self.fail_with_note(
                    call.span,
                    format!("multiple histogram types declared on '{array}': a statistic keeps one histogram"),
                    Some((at, "this is the other histogram".into())),
                );
            }
            Some(_) => {}
        }
    }

    /// The bit shift of `@variance(s, N)`: a number from 0 to 62.
    pub(super) fn variance_shift(&mut self, shift: &Expr) {
        match literal_int(shift).map(crate::stats::check_variance_shift) {
            Some(Ok(())) => {}
            Some(Err(e)) => self.fail(shift.span, e.to_string()),
            None => self.fail(
                shift.span,
                "@variance's bit shift must be a number written in the script".into(),
            ),
        }
    }

    /// `delete NAME` or `delete NAME[KEYS]`.
    pub(super) fn delete(&mut self, what: &Expr) {
        match &what.kind {
            ExprKind::Index { array, keys } => self.index(what.span, array, keys),
            // A statistic without keys is one map entry, which BPF deletes.
            ExprKind::Var(name) if self.types.shapes.get(name).is_some_and(|s| s.keys.0 == 0) => {}
            ExprKind::Var(name) if self.types.shapes.contains_key(name) => {
                self.note_host(what.span, "deleting a whole array");
            }
            ExprKind::Var(name) if self.types.globals.contains(name) => {}
            ExprKind::Var(name) => self.fail(
                what.span,
                format!(
                    "'delete' takes a global variable or an array entry, and '{name}' is neither"
                ),
            ),
            _ => self.fail(
                what.span,
                "'delete' takes a global variable or an array entry".into(),
            ),
        }
    }

    /// `foreach`: the array's keys and value go to the loop's variables.
    pub(super) fn foreach(&mut self, each: &Foreach) {
        let span = each.array_span;
        self.note_host(span, "foreach");
        if self.shape(span, &each.array, each.keys.len()) {
            for (i, key) in each.keys.iter().enumerate() {
                self.link(
                    Key::Local(self.scope, key.clone()),
                    Key::Index(each.array.clone(), i),
                    span,
                );
            }
            if let Some(value) = &each.value {
                if self.is_stat(&each.array) {
                    self.fail(span, format!("'{}' is a statistic, which has no single value to give '{value}'; read @count({}[...]) and the others in the loop", each.array, each.array));
                } else {
                    self.link(
                        Key::Local(self.scope, value.clone()),
                        Key::ArrayValue(each.array.clone()),
                        span,
                    );
                }
            }
        }
        if let Some(limit) = &each.limit {
            self.want(limit, Ty::Long);
        }
        self.loops += 1;
        self.stmt(&each.body);
        self.loops -= 1;
    }

    /// Gives `a` and `b` one type, whichever is known.
    fn link(&mut self, a: Key, b: Key, span: Span) {
        let ta = self.types.vars.get(&a).copied();
        let tb = self.types.vars.get(&b).copied();
        match (ta, tb) {
            (Some(t), _) => self.unify_key(b, Some(t), span),
            (None, Some(t)) => self.unify_key(a, Some(t), span),
            (None, None) => {}
        }
    }

    /// Notes a host use in the current scope.
    fn note_host(&mut self, span: Span, what: &'static str) {
        self.host_uses.entry(self.scope).or_insert((span, what));
    }

    /// Marks the probes that make host uses, directly or through the
    /// functions they call, as interpreted in kscope's own process; fails
    /// for an event probe that makes one.
    pub(super) fn place_host_probes(&mut self) -> Result<(), Diagnostic> {
        let script = self.script;
        // Each function's host use, through its callees too.
        let mut function_use: HashMap<usize, (Span, &'static str)> = HashMap::new();
        for _ in 0..=script.functions.len() {
            for (i, f) in script.functions.iter().enumerate() {
                if function_use.contains_key(&i) {
                    continue;
                }
                let mut found = self.host_uses.get(&Scope::Function(i)).copied();
                calls_in_block(&f.body, &mut |name, _| {
                    if let Some(j) = script.functions.iter().position(|g| g.name == name) {
                        found = found.or(function_use.get(&j).copied());
                    }
                });
                if let Some(u) = found {
                    function_use.insert(i, u);
                }
            }
        }
        for (i, probe) in script.probes.iter().enumerate() {
            let mut found = self
                .host_uses
                .get(&Scope::Probe(i))
                .map(|&(span, what)| (span, what, None));
            let mut calls = Vec::new();
            if let Some(cond) = &probe.condition {
                crate::visit::visit_expr(cond, &mut |e| {
                    if let ExprKind::Call { name, .. } = &e.kind {
                        calls.push((name.clone(), e.span));
                    }
                });
            }
            calls_in_block(&probe.body, &mut |name, span| {
                calls.push((name.to_string(), span))
            });
            for (name, call) in calls {
                if found.is_some() {
                    break;
                }
                if let Some(j) = script.functions.iter().position(|g| g.name == name)
                    && let Some(&(span, what)) = function_use.get(&j)
                {
                    found = Some((call, what, Some(span)));
                }
            }
            let Some((span, what, inner)) = found else {
                continue;
            };
            if self.can_host[i] {
                self.types.host.insert(i);
                continue;
            }
            let mut d = Diagnostic::new(
                span,
                format!(
                    "{what} needs the whole array, which kscope has in its own process: it runs in begin, end, error and timer probes, not in one that runs where kernel events happen; collect here and walk or print in 'probe end' or a 'probe timer.s(N)'"
                ),
                None,
            );
            if let Some(inner) = inner {
                d = d.with_note(inner, format!("{what} is here, in the called function"));
            }
            return Err(d);
        }
        Ok(())
    }
}

/// An integer literal, negated ones included.
fn literal_int(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Literal(Literal::Int(n)) => Some(*n),
        ExprKind::Unary {
            op: crate::ast::UnaryOp::Neg,
            operand,
        } => literal_int(operand).map(i64::wrapping_neg),
        _ => None,
    }
}
