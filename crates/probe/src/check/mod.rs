//! Name resolution and type checking, the second half of pass 2. Every
//! variable is a global, a local of one probe or function, a function
//! parameter, or a context variable of the probe's points; every value is
//! a `long` or a `string`, inferred as SystemTap does from assignments,
//! operators, calls and annotations, until nothing changes. Mismatches
//! are reported with both places: where the type was decided and where
//! the other one is needed.

use std::collections::{HashMap, HashSet};

use crate::ast::{
    AssignOp, BinaryOp, Block, Expr, ExprKind, Literal, Script, Stmt, StmtKind, Type, UnaryOp,
};
use crate::diagnostic::Diagnostic;
use crate::points::{AttachKind, Attachment, Context, ContextVar, field_is_string};
use crate::source::Span;
use crate::visit::{calls_in_block, visit_block, visit_expr, visit_stmts};

mod arrays;
mod builtins;
mod calls;
mod host;

pub use arrays::{ArrayType, DEFAULT_CAPACITY, HistKind};
pub use builtins::{Builtin, builtin, builtin_names};

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A signed 64-bit integer.
    Long,
    /// A string.
    Str,
    /// A stack trace, from `backtrace()` or `ubacktrace()`: printed as
    /// SystemTap's string of addresses, symbolized by `print_stack`, and
    /// usable as an array key (in BPF, a stack map id).
    Stack,
    /// No value: what `printf` and functions without `return VALUE` give.
    Void,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Long => "a long",
            Ty::Str => "a string",
            Ty::Stack => "a stack",
            Ty::Void => "no value",
        }
    }

    fn of(t: Type) -> Ty {
        match t {
            Type::Long => Ty::Long,
            Type::String => Ty::Str,
        }
    }
}

/// Where a variable's name lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The handler of probe N.
    Probe(usize),
    /// The body of function N.
    Function(usize),
}

/// What a variable name means in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A global variable.
    Global(String),
    /// A local (or parameter) of the scope.
    Local(String),
    /// A tapset variable of the probe's points.
    Context(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Global(String),
    Local(Scope, String),
    Return(usize),
    /// Key N of an array.
    Index(String, usize),
    /// The values of an array.
    ArrayValue(String),
}

/// The key count of an array declared with a size (`global a[N]`) whose
/// uses have not said yet how many keys it takes.
const UNKNOWN_KEYS: usize = usize::MAX;

/// What the checker learned of an array from its uses.
#[derive(Debug, Clone)]
struct Shape {
    /// How many keys it takes, and where that was first seen.
    keys: (usize, Span),
    /// Where a value was first added with `<<<`, for a statistic.
    stat: Option<Span>,
    /// The histogram printed from it, and where.
    hist: Option<(HistKind, Span)>,
}

/// The checked script: every variable's type.
#[derive(Debug, Clone, Default)]
pub struct Types {
    vars: HashMap<Key, Ty>,
    /// Names assigned in each scope, and parameters: its locals.
    locals: HashMap<Scope, Vec<String>>,
    globals: HashSet<String>,
    /// The context each probe's handler sees (what all its points share).
    contexts: HashMap<usize, Context>,
    /// The globals that are arrays or statistics.
    shapes: HashMap<String, Shape>,
    /// Declared sizes (`global a[N]`).
    sizes: HashMap<String, (u32, Span)>,
    /// The probes that walk arrays, delete whole ones or print
    /// histograms: kscope runs them in its own process.
    host: HashSet<usize>,
}

impl Types {
    /// What `name` means in `scope`.
    pub fn binding(&self, scope: Scope, name: &str) -> Option<Binding> {
        let local = || {
            self.locals
                .get(&scope)
                .is_some_and(|l| l.iter().any(|n| n == name))
        };
        let is_param = matches!(scope, Scope::Function(_)) && local();
        if is_param {
            return Some(Binding::Local(name.to_string()));
        }
        if self.globals.contains(name) {
            return Some(Binding::Global(name.to_string()));
        }
        if local() {
            return Some(Binding::Local(name.to_string()));
        }
        let probe = match scope {
            Scope::Probe(p) => Some(p),
            Scope::Function(_) => None,
        };
        if probe
            .and_then(|p| self.contexts.get(&p))
            .is_some_and(|c| c.var(name).is_some())
        {
            return Some(Binding::Context(name.to_string()));
        }
        None
    }

    /// The type of a global.
    pub fn global(&self, name: &str) -> Ty {
        self.vars
            .get(&Key::Global(name.to_string()))
            .copied()
            .unwrap_or(Ty::Long)
    }

    /// The type of a local or parameter of `scope`.
    pub fn local(&self, scope: Scope, name: &str) -> Ty {
        self.vars
            .get(&Key::Local(scope, name.to_string()))
            .copied()
            .unwrap_or(Ty::Long)
    }

    /// The locals (parameters first for functions) of `scope`.
    pub fn locals(&self, scope: Scope) -> &[String] {
        self.locals.get(&scope).map_or(&[], Vec::as_slice)
    }

    /// The array or statistic `name`, if it is one.
    pub fn array(&self, name: &str) -> Option<ArrayType> {
        let shape = self.shapes.get(name)?;
        let ty = |key: Key| self.vars.get(&key).copied().unwrap_or(Ty::Long);
        let (capacity, span) = self
            .sizes
            .get(name)
            .copied()
            .unwrap_or((DEFAULT_CAPACITY, shape.keys.1));
        Some(ArrayType {
            name: name.to_string(),
            // Declared with a size and never indexed: an array of no keys
            // (one entry at most), as good as empty.
            keys: (0..if shape.keys.0 == UNKNOWN_KEYS {
                0
            } else {
                shape.keys.0
            })
                .map(|i| ty(Key::Index(name.to_string(), i)))
                .collect(),
            value: ty(Key::ArrayValue(name.to_string())),
            stat: shape.stat.is_some(),
            hist: shape.hist.map(|(h, _)| h),
            capacity,
            recent: crate::entry::is_entry_array(name),
            span,
        })
    }

    /// Every array and statistic, in the order of the globals.
    pub fn arrays(&self, script: &Script) -> Vec<ArrayType> {
        script
            .globals
            .iter()
            .filter_map(|g| self.array(&g.name))
            .collect()
    }

    /// Whether probe `index` runs in kscope's own process, interpreted:
    /// it walks an array, deletes a whole one or prints a histogram.
    pub fn is_host(&self, probe: usize) -> bool {
        self.host.contains(&probe)
    }

    /// What function `index` returns.
    pub fn returns(&self, index: usize) -> Ty {
        self.vars
            .get(&Key::Return(index))
            .copied()
            .unwrap_or(Ty::Void)
    }
}

/// Checks `script` whose points resolved to `attachments`.
pub fn check(script: &Script, attachments: &[Attachment]) -> Result<Types, Diagnostic> {
    let mut checker = Checker {
        script,
        types: Types::default(),
        decided: HashMap::new(),
        changed: false,
        report: false,
        error: None,
        loops: 0,
        scope: Scope::Probe(0),
        host_uses: HashMap::new(),
        can_host: Vec::new(),
    };
    checker.prepare(attachments)?;
    // Recursion first: a recursive function's type cannot be inferred,
    // and the recursion is the error to report.
    checker.check_recursion()?;
    for _ in 0..16 {
        checker.changed = false;
        checker.walk_all();
        if !checker.changed {
            break;
        }
    }
    checker.report = true;
    checker.walk_all();
    if let Some(e) = checker.error {
        return Err(e);
    }
    checker.place_host_probes()?;
    Ok(checker.types)
}

struct Checker<'s> {
    script: &'s Script,
    types: Types,
    /// Where each variable's type was decided, for mismatch messages.
    decided: HashMap<Key, Span>,
    changed: bool,
    /// The last walk reports errors; earlier ones only infer.
    report: bool,
    error: Option<Diagnostic>,
    loops: usize,
    scope: Scope,
    /// The first use in each scope of what only kscope's own process can
    /// do (walk an array, delete a whole one, print a histogram).
    host_uses: HashMap<Scope, (Span, &'static str)>,
    /// Which probes run where such uses are allowed: their points are all
    /// begin, end, error or timers.
    can_host: Vec<bool>,
}

impl Checker<'_> {
    fn prepare(&mut self, attachments: &[Attachment]) -> Result<(), Diagnostic> {
        for g in &self.script.globals {
            self.types.globals.insert(g.name.clone());
            if let Some(size) = g.size {
                self.types.sizes.insert(g.name.clone(), (size, g.span));
                self.types.shapes.insert(
                    g.name.clone(),
                    Shape {
                        keys: (UNKNOWN_KEYS, g.span),
                        stat: None,
                        hist: None,
                    },
                );
            }
            if let Some(init) = &g.init {
                let ty = match init {
                    Literal::Int(_) => Ty::Long,
                    Literal::Str(_) => Ty::Str,
                };
                self.types.vars.insert(Key::Global(g.name.clone()), ty);
                self.decided.insert(Key::Global(g.name.clone()), g.span);
            }
        }
        for (i, f) in self.script.functions.iter().enumerate() {
            if self.script.functions[..i].iter().any(|o| o.name == f.name) {
                return Err(Diagnostic::new(
                    f.span,
                    format!("function '{}' is defined twice", f.name),
                    None,
                ));
            }
            let scope = Scope::Function(i);
            let mut names: Vec<String> = f.params.iter().map(|p| p.name.clone()).collect();
            for p in &f.params {
                if let Some(t) = p.ty {
                    self.types
                        .vars
                        .insert(Key::Local(scope, p.name.clone()), Ty::of(t));
                    self.decided
                        .insert(Key::Local(scope, p.name.clone()), p.span);
                }
            }
            assigned_in_block(&f.body, &mut names);
            self.types.locals.insert(scope, dedup(names));
            if let Some(t) = f.return_type {
                self.types.vars.insert(Key::Return(i), Ty::of(t));
                self.decided.insert(Key::Return(i), f.span);
            }
        }
        for (i, probe) in self.script.probes.iter().enumerate() {
            let mut points = attachments.iter().filter(|a| a.probe == i).peekable();
            let host = points.peek().is_some()
                && points.all(|a| {
                    matches!(
                        a.kind,
                        AttachKind::Begin
                            | AttachKind::End
                            | AttachKind::Error
                            | AttachKind::Timer { .. }
                    )
                });
            self.can_host.push(host);
            let mut names = Vec::new();
            assigned_in_block(&probe.body, &mut names);
            let names: Vec<String> = dedup(names)
                .into_iter()
                .filter(|n| !self.types.globals.contains(n))
                .collect();
            self.types.locals.insert(Scope::Probe(i), names);
            let mut shared: Option<Context> = None;
            for a in attachments.iter().filter(|a| a.probe == i) {
                shared = Some(match shared {
                    None => a.context.clone(),
                    Some(s) => intersect(&s, &a.context),
                });
            }
            self.types.contexts.insert(i, shared.unwrap_or_default());
        }
        Ok(())
    }

    fn walk_all(&mut self) {
        let script = self.script;
        for (i, probe) in script.probes.iter().enumerate() {
            self.scope = Scope::Probe(i);
            if let Some(cond) = &probe.condition {
                self.want(cond, Ty::Long);
            }
            self.block(&probe.body);
        }
        for (i, f) in script.functions.iter().enumerate() {
            self.scope = Scope::Function(i);
            self.block(&f.body);
        }
    }

    fn fail(&mut self, span: Span, message: String) {
        if self.report && self.error.is_none() {
            self.error = Some(Diagnostic::new(span, message, None));
        }
    }

    /// Fails unless `call` of `name` gives as many arguments as it takes.
    fn arity(&mut self, call: &Expr, name: &str, takes: usize, given: usize) {
        if takes != given {
            self.fail(
                call.span,
                format!("{name}() takes {takes} argument(s), and {given} are given"),
            );
        }
    }

    fn fail_with_note(&mut self, span: Span, message: String, note: Option<(Span, String)>) {
        if self.report && self.error.is_none() {
            let mut d = Diagnostic::new(span, message, None);
            if let Some((s, m)) = note {
                d = d.with_note(s, m);
            }
            self.error = Some(d);
        }
    }

    fn block(&mut self, block: &Block) {
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        if let Some(l) = stmt.kind.as_loop() {
            if let Some(e) = l.init {
                self.expr(e);
            }
            if let Some(e) = l.cond {
                self.want(e, Ty::Long);
            }
            if let Some(e) = l.step {
                self.expr(e);
            }
            self.loops += 1;
            self.stmt(l.body);
            self.loops -= 1;
            return;
        }
        match &stmt.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Expr(e) => {
                self.expr(e);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.want(cond, Ty::Long);
                self.stmt(then);
                if let Some(o) = otherwise {
                    self.stmt(o);
                }
            }
            // `while` and `for` are the loop above.
            StmtKind::While { .. } | StmtKind::For { .. } | StmtKind::Next | StmtKind::Empty => {}
            StmtKind::Return(value) => match self.scope {
                Scope::Probe(_) => self.fail(
                    stmt.span,
                    "'return' outside a function; use 'next' to leave a probe handler".into(),
                ),
                Scope::Function(f) => {
                    let key = Key::Return(f);
                    match value {
                        Some(v) => {
                            let t = self.expr(v);
                            self.unify_key(key, t, v.span);
                        }
                        None => {
                            let known = self.types.vars.get(&key).copied();
                            if known.is_some_and(|t| t != Ty::Void) {
                                let note = self
                                    .decided
                                    .get(&key)
                                    .map(|s| (*s, "the function returns a value here".to_string()));
                                self.fail_with_note(
                                    stmt.span,
                                    "'return' without a value in a function that returns one"
                                        .into(),
                                    note,
                                );
                            }
                        }
                    }
                }
            },
            StmtKind::Break | StmtKind::Continue => {
                if self.loops == 0 {
                    self.fail(
                        stmt.span,
                        "'break' and 'continue' belong inside a loop".into(),
                    );
                }
            }
            StmtKind::Delete(what) => self.delete(what),
            StmtKind::Foreach(each) => self.foreach(each),
        }
    }

    /// The key of a variable expression, if it is one.
    fn var_key(&self, name: &str) -> Option<Key> {
        match self.types.binding(self.scope, name)? {
            Binding::Global(n) => Some(Key::Global(n)),
            Binding::Local(n) => Some(Key::Local(self.scope, n)),
            Binding::Context(_) => None,
        }
    }

    /// Records that `key` has type `t` (seen at `span`), or reports the
    /// clash with what it already had.
    fn unify_key(&mut self, key: Key, t: Option<Ty>, span: Span) {
        let Some(t) = t else { return };
        match self.types.vars.get(&key) {
            None => {
                self.types.vars.insert(key.clone(), t);
                self.decided.insert(key, span);
                self.changed = true;
            }
            Some(&have) if have != t => {
                let what = match &key {
                    Key::Global(n) | Key::Local(_, n) => format!("'{n}' is {}", have.name()),
                    Key::Index(n, i) => {
                        format!("key {} of array '{n}' is {}", i + 1, have.name())
                    }
                    Key::ArrayValue(n) => format!("array '{n}' holds {}", have.name()),
                    Key::Return(f) => format!(
                        "function '{}' returns {}",
                        self.script.functions[*f].name,
                        have.name()
                    ),
                };
                let note = self
                    .decided
                    .get(&key)
                    .map(|s| (*s, format!("{what} because of this")));
                self.fail_with_note(
                    span,
                    format!("type mismatch: {what}, but this is {}", t.name()),
                    note,
                );
            }
            _ => {}
        }
    }

    /// Checks that `e` is of type `t`, deciding a variable's type if it
    /// had none.
    fn want(&mut self, e: &Expr, t: Ty) {
        let have = self.expr(e);
        match have {
            None => {
                if let Some(key) = self.place_key(e) {
                    self.unify_key(key, Some(t), e.span);
                }
            }
            Some(h) if h != t => {
                let note = self.origin(e);
                let message = match &e.kind {
                    ExprKind::Index { array, .. } => format!(
                        "type mismatch: array '{array}' holds {}, but {} is needed here",
                        h.name(),
                        t.name()
                    ),
                    ExprKind::Var(name) => format!(
                        "type mismatch: '{name}' is {}, but {} is needed here",
                        h.name(),
                        t.name()
                    ),
                    _ => format!(
                        "type mismatch: this is {}, but {} is needed here",
                        h.name(),
                        t.name()
                    ),
                };
                self.fail_with_note(e.span, message, note);
            }
            _ => {}
        }
    }

    fn origin(&self, e: &Expr) -> Option<(Span, String)> {
        let name = match &e.kind {
            ExprKind::Var(name) | ExprKind::Index { array: name, .. } => name,
            _ => return None,
        };
        let key = self.place_key(e)?;
        self.decided
            .get(&key)
            .map(|s| (*s, format!("'{name}' got its type here")))
    }

    /// The key of a variable or array element expression.
    fn place_key(&self, e: &Expr) -> Option<Key> {
        match &e.kind {
            ExprKind::Var(name) => self.var_key(name),
            ExprKind::Index { array, .. } => Some(Key::ArrayValue(array.clone())),
            _ => None,
        }
    }

    /// The type of `e`, `None` while it is unknown.
    fn expr(&mut self, e: &Expr) -> Option<Ty> {
        match &e.kind {
            ExprKind::Literal(Literal::Int(_)) => Some(Ty::Long),
            ExprKind::Literal(Literal::Str(_)) => Some(Ty::Str),
            ExprKind::Var(name) => {
                match self.types.binding(self.scope, name) {
                    Some(Binding::Context(n)) => {
                        let probe = match self.scope {
                            Scope::Probe(p) => p,
                            Scope::Function(_) => return None,
                        };
                        match self.types.contexts.get(&probe).and_then(|c| c.var(&n)) {
                            Some(ContextVar::Retval(_) | ContextVar::Field(_)) => Some(Ty::Long),
                            Some(_) => Some(Ty::Str),
                            None => None,
                        }
                    }
                    Some(Binding::Global(n)) if self.types.shapes.contains_key(&n) => {
                        self.misused_array(e.span, &n);
                        None
                    }
                    Some(_) => self
                        .var_key(name)
                        .and_then(|k| self.types.vars.get(&k).copied()),
                    None => {
                        let mut candidates: Vec<&str> =
                            self.types.globals.iter().map(String::as_str).collect();
                        candidates.extend(self.types.locals(self.scope).iter().map(String::as_str));
                        let hint = crate::catalog::did_you_mean(name, candidates)
                            .map(|c| format!("; did you mean '{c}'?"))
                            .unwrap_or_default();
                        self.fail(e.span, format!("unknown variable '{name}': it is never assigned and not a global{hint}"));
                        None
                    }
                }
            }
            ExprKind::Target { name, accesses } => {
                if let Some(a) = accesses.first() {
                    self.fail(a.span, format!("'${name}' is a tracepoint field; kscope does not follow pointers or index fields yet"));
                    return None;
                }
                let Scope::Probe(p) = self.scope else {
                    self.fail(e.span, format!("'${name}' is a probe's target variable and cannot be used inside a function; pass it as an argument"));
                    return None;
                };
                let ctx = self.types.contexts.get(&p).cloned().unwrap_or_default();
                match ctx.target(name) {
                    Some(field) => match field_is_string(field) {
                        Some(true) => Some(Ty::Str),
                        Some(false) => Some(Ty::Long),
                        None => {
                            self.fail(
                                e.span,
                                format!(
                                    "'${name}' is a {} field, which a script cannot read",
                                    field.c_type
                                ),
                            );
                            None
                        }
                    },
                    None => {
                        let hint = crate::catalog::did_you_mean(
                            name,
                            ctx.targets.iter().map(|(n, _)| n.as_str()),
                        )
                        .map(|c| format!("; did you mean '${c}'?"))
                        .unwrap_or_default();
                        let have: Vec<String> =
                            ctx.targets.iter().map(|(n, _)| format!("${n}")).collect();
                        let list = if have.is_empty() {
                            "this probe's points have none".to_string()
                        } else {
                            format!("the probe has {}", have.join(" "))
                        };
                        self.fail(
                            e.span,
                            format!("unknown target variable '${name}'{hint} ({list})"),
                        );
                        None
                    }
                }
            }
            ExprKind::Index { array, keys } => {
                self.index(e.span, array, keys);
                if self.is_stat(array) {
                    self.fail(e.span, format!("'{array}' is a statistic: read an entry with @count({array}[...]), @sum, @min, @max, @avg or @variance"));
                    return None;
                }
                self.types
                    .vars
                    .get(&Key::ArrayValue(array.clone()))
                    .copied()
            }
            ExprKind::In { keys, array } => {
                self.index(e.span, array, keys);
                Some(Ty::Long)
            }
            ExprKind::Call { name, args } => self.call(e, name, args),
            ExprKind::Unary { op, operand } => {
                match op {
                    UnaryOp::PreInc | UnaryOp::PreDec | UnaryOp::PostInc | UnaryOp::PostDec => {
                        self.lvalue(operand);
                    }
                    _ => {}
                }
                self.want(operand, Ty::Long);
                Some(Ty::Long)
            }
            ExprKind::Binary { op, lhs, rhs } => match op {
                BinaryOp::Concat => {
                    self.want(lhs, Ty::Str);
                    self.want(rhs, Ty::Str);
                    Some(Ty::Str)
                }
                op if op.is_comparison() => {
                    let l = self.expr(lhs);
                    let r = self.expr(rhs);
                    match (l, r) {
                        (Some(t), None) => self.want(rhs, t),
                        (None, Some(t)) => self.want(lhs, t),
                        (Some(a), Some(b)) if a != b || a == Ty::Void => {
                            let note = Some((lhs.span, format!("this is {}", a.name())));
                            self.fail_with_note(
                                rhs.span,
                                format!("cannot compare {} with {}", a.name(), b.name()),
                                note,
                            );
                        }
                        _ => {}
                    }
                    Some(Ty::Long)
                }
                _ => {
                    self.want(lhs, Ty::Long);
                    self.want(rhs, Ty::Long);
                    Some(Ty::Long)
                }
            },
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.want(cond, Ty::Long);
                let a = self.expr(then);
                let b = self.expr(otherwise);
                match (a, b) {
                    (Some(t), None) => {
                        self.want(otherwise, t);
                        Some(t)
                    }
                    (None, Some(t)) => {
                        self.want(then, t);
                        Some(t)
                    }
                    (Some(x), Some(y)) if x != y => {
                        let note = Some((then.span, format!("this is {}", x.name())));
                        self.fail_with_note(
                            otherwise.span,
                            format!(
                                "both branches of '?:' must have one type, and this is {}",
                                y.name()
                            ),
                            note,
                        );
                        Some(x)
                    }
                    (t, _) => t,
                }
            }
            ExprKind::Assign {
                op: AssignOp::Aggregate,
                target,
                value,
            } => {
                self.aggregate(target);
                self.want(value, Ty::Long);
                Some(Ty::Void)
            }
            ExprKind::Assign { op, target, value } => {
                self.lvalue(target);
                match op {
                    AssignOp::Assign => {
                        let v = self.expr(value);
                        match v {
                            Some(Ty::Void) => {
                                self.fail(value.span, "this gives no value to assign".into());
                                None
                            }
                            Some(t) => {
                                self.want(target, t);
                                Some(t)
                            }
                            None => {
                                let t = self.expr(target);
                                if let Some(t) = t {
                                    self.want(value, t);
                                }
                                t
                            }
                        }
                    }
                    AssignOp::Compound(BinaryOp::Concat) => {
                        self.want(target, Ty::Str);
                        self.want(value, Ty::Str);
                        Some(Ty::Str)
                    }
                    AssignOp::Compound(_) | AssignOp::Aggregate => {
                        self.want(target, Ty::Long);
                        self.want(value, Ty::Long);
                        Some(Ty::Long)
                    }
                }
            }
        }
    }

    fn lvalue(&mut self, target: &Expr) {
        match &target.kind {
            ExprKind::Var(name) => {
                if matches!(
                    self.types.binding(self.scope, name),
                    Some(Binding::Context(_))
                ) {
                    self.fail(target.span, format!("'{name}' is a context variable of the probe point and cannot be assigned"));
                }
            }
            ExprKind::Target { name, .. } => {
                self.fail(
                    target.span,
                    format!("'${name}' is read-only: kscope never writes to the kernel"),
                );
            }
            ExprKind::Index { .. } => {}
            _ => self.fail(target.span, "only a variable can be assigned to".into()),
        }
    }

    fn check_recursion(&self) -> Result<(), Diagnostic> {
        let script = self.script;
        let mut calls: Vec<Vec<(usize, Span)>> = vec![Vec::new(); script.functions.len()];
        for (i, f) in script.functions.iter().enumerate() {
            calls_in_block(&f.body, &mut |name, span| {
                if let Some(j) = script.functions.iter().position(|g| g.name == name) {
                    calls[i].push((j, span));
                }
            });
        }
        for start in 0..calls.len() {
            let mut stack = vec![start];
            let mut seen = vec![false; calls.len()];
            while let Some(f) = stack.pop() {
                for &(g, span) in &calls[f] {
                    if g == start {
                        return Err(Diagnostic::new(
                            span,
                            format!(
                                "'{}' calls itself (perhaps through others); kscope inlines functions into BPF, which has no call stack for recursion",
                                script.functions[start].name
                            ),
                            None,
                        ));
                    }
                    if !seen[g] {
                        seen[g] = true;
                        stack.push(g);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether `e` is `@hist_log(...)` or `@hist_linear(...)`, which only
/// `print` and `println` take.
pub fn is_hist(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call { name, .. } if name.starts_with("@hist_"))
}

fn dedup(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// What two points' contexts share: the same names with the same meaning.
fn intersect(a: &Context, b: &Context) -> Context {
    Context {
        targets: a
            .targets
            .iter()
            .filter(|(n, f)| {
                b.target(n)
                    .is_some_and(|g| field_is_string(g) == field_is_string(f))
            })
            .cloned()
            .collect(),
        vars: a
            .vars
            .iter()
            .filter(|(n, v)| b.var(n).is_some_and(|w| w.same_kind(v)))
            .cloned()
            .collect(),
    }
}

/// The names assigned anywhere in `block`, foreach's variables
/// included: the scope's locals.
fn assigned_in_block(block: &Block, out: &mut Vec<String>) {
    visit_stmts(block, &mut |stmt| {
        if let StmtKind::Foreach(each) = &stmt.kind {
            out.extend(each.value.iter().cloned());
            out.extend(each.keys.iter().cloned());
        }
    });
    visit_block(block, &mut |e| {
        visit_expr(e, &mut |e| assigned_target(e, out))
    });
}

fn assigned_target(e: &Expr, out: &mut Vec<String>) {
    let target = match &e.kind {
        ExprKind::Assign {
            op: AssignOp::Aggregate,
            ..
        } => return,
        ExprKind::Assign { target, .. } => target,
        ExprKind::Unary {
            op: UnaryOp::PreInc | UnaryOp::PreDec | UnaryOp::PostInc | UnaryOp::PostDec,
            operand,
        } => operand,
        _ => return,
    };
    if let ExprKind::Var(name) = &target.kind {
        out.push(name.clone());
    }
}
