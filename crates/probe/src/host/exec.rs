//! Statements of a host probe: the handler and its condition, blocks,
//! `if`, loops with `break` and `continue`, `next`, `return` from a
//! script function (each call with its own locals, parameters by
//! value), `delete`, and `foreach` over a snapshot of an array taken
//! when the loop starts.

use std::collections::HashMap;

use super::value::Value;
use super::{HostCode, HostError, MAX_STEPS, Process, SharedState};
use crate::ast::{Block, Expr, ExprKind, Foreach, Stmt, StmtKind};
use crate::check::{Binding, Scope};
use crate::points::Attachment;
use crate::source::Span;

pub(super) type Result<T> = std::result::Result<T, HostError>;

/// How a statement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Flow {
    /// On to the next statement.
    Normal,
    /// `break`.
    Break,
    /// `continue`.
    Continue,
    /// `next`: leave the handler.
    Next,
    /// `return`, with the value if any.
    Return(Option<Value>),
}

/// One call's variables.
struct Frame {
    scope: Scope,
    locals: HashMap<String, Value>,
}

/// The state of one run of a host probe's handler.
pub(super) struct Interp<'a> {
    pub(super) code: &'a HostCode,
    pub(super) attachment: &'a Attachment,
    pub(super) state: SharedState<'a>,
    pub(super) process: &'a Process,
    pub(super) out: &'a mut Vec<u8>,
    frames: Vec<Frame>,
    steps: u64,
    /// `exit()` was called.
    pub(super) exited: bool,
}

impl<'a> Interp<'a> {
    pub(super) fn new(
        code: &'a HostCode,
        attachment: &'a Attachment,
        state: SharedState<'a>,
        process: &'a Process,
        out: &'a mut Vec<u8>,
    ) -> Interp<'a> {
        Interp {
            code,
            attachment,
            state,
            process,
            out,
            frames: Vec::new(),
            steps: 0,
            exited: false,
        }
    }

    /// Runs the handler: its condition, then its body.
    pub(super) fn probe(&mut self) -> Result<()> {
        let probe = &self.code.script.probes[self.attachment.probe];
        self.push_frame(Scope::Probe(self.attachment.probe));
        if let Some(cond) = &probe.condition
            && !self.eval(cond)?.truth()
        {
            return Ok(());
        }
        self.block(&probe.body)?;
        Ok(())
    }

    /// The runtime error `what` at `span`.
    pub(super) fn error(&self, what: &str, span: Span) -> HostError {
        self.code.error(what, span, self.attachment)
    }

    /// Counts one step; fails once a run has taken [`MAX_STEPS`].
    pub(super) fn step(&mut self, span: Span) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.error(
                &format!("the handler ran more than {MAX_STEPS} steps (an endless loop?)"),
                span,
            ));
        }
        Ok(())
    }

    fn push_frame(&mut self, scope: Scope) {
        let types = &self.code.types;
        let locals = types
            .locals(scope)
            .iter()
            .map(|n| (n.clone(), Value::zero(types.local(scope, n))))
            .collect();
        self.frames.push(Frame { scope, locals });
    }

    fn frame(&self) -> &Frame {
        self.frames
            .last()
            .expect("a frame is pushed for every handler")
    }

    /// The scope the running code is in.
    pub(super) fn scope(&self) -> Scope {
        self.frame().scope
    }

    /// What `name` means where the code runs.
    pub(super) fn binding(&self, name: &str) -> Option<Binding> {
        self.code.types.binding(self.scope(), name)
    }

    /// The local `name` of the running call.
    pub(super) fn local(&self, name: &str) -> Value {
        self.frame()
            .locals
            .get(name)
            .cloned()
            .unwrap_or(Value::Long(0))
    }

    /// Sets the local `name` of the running call.
    pub(super) fn set_local(&mut self, name: &str, value: Value) {
        if let Some(frame) = self.frames.last_mut() {
            frame.locals.insert(name.to_string(), value);
        }
    }

    /// Sets variable `name`, a local or a global.
    pub(super) fn set_var(&mut self, name: &str, value: Value, span: Span) -> Result<()> {
        match self.binding(name) {
            Some(Binding::Global(g)) => self.write_global(&g, &value, span),
            _ => {
                self.set_local(name, value);
                Ok(())
            }
        }
    }

    /// Calls script function `index` with `args`: a new frame whose
    /// parameters are the arguments; the value returned, or the zero of
    /// the function's type.
    pub(super) fn call_function(&mut self, index: usize, args: Vec<Value>) -> Result<Value> {
        let code = self.code;
        let function = &code.script.functions[index];
        let scope = Scope::Function(index);
        self.push_frame(scope);
        for (param, value) in function.params.iter().zip(args) {
            self.set_local(&param.name, value);
        }
        let flow = self.block(&function.body);
        self.frames.pop();
        match flow? {
            Flow::Return(Some(v)) => Ok(v),
            _ => Ok(Value::zero(code.types.returns(index))),
        }
    }

    pub(super) fn block(&mut self, block: &Block) -> Result<Flow> {
        for stmt in &block.stmts {
            let flow = self.stmt(stmt)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<Flow> {
        self.step(stmt.span)?;
        if let Some(l) = stmt.kind.as_loop() {
            if let Some(init) = l.init {
                self.eval(init)?;
            }
            loop {
                if let Some(cond) = l.cond
                    && !self.eval(cond)?.truth()
                {
                    break;
                }
                match self.stmt(l.body)? {
                    Flow::Break => break,
                    Flow::Normal | Flow::Continue => {}
                    other => return Ok(other),
                }
                if let Some(step) = l.step {
                    self.eval(step)?;
                }
                self.step(stmt.span)?;
            }
            return Ok(Flow::Normal);
        }
        Ok(match &stmt.kind {
            StmtKind::Block(b) => self.block(b)?,
            StmtKind::Expr(e) => {
                self.eval(e)?;
                Flow::Normal
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                if self.eval(cond)?.truth() {
                    self.stmt(then)?
                } else if let Some(o) = otherwise {
                    self.stmt(o)?
                } else {
                    Flow::Normal
                }
            }
            StmtKind::Next => Flow::Next,
            StmtKind::Break => Flow::Break,
            StmtKind::Continue => Flow::Continue,
            StmtKind::Return(value) => {
                let v = match value {
                    Some(e) => Some(self.eval(e)?),
                    None => None,
                };
                Flow::Return(v)
            }
            StmtKind::Delete(what) => {
                self.delete(what)?;
                Flow::Normal
            }
            StmtKind::Foreach(each) => self.foreach(each)?,
            StmtKind::Empty | StmtKind::While { .. } | StmtKind::For { .. } => Flow::Normal,
        })
    }

    /// `delete a[k]`, `delete a` (every entry), or `delete g` of a
    /// scalar global (back to 0 or "").
    fn delete(&mut self, what: &Expr) -> Result<()> {
        match &what.kind {
            ExprKind::Index { array, keys } => {
                let keys = self.eval_all(keys)?;
                self.delete_element(array, &keys)
            }
            ExprKind::Var(name) if self.array_index(name).is_some() => self.clear_array(name),
            ExprKind::Var(name) => {
                let zero = Value::zero(self.code.types.global(name));
                self.write_global(name, &zero, what.span)
            }
            _ => Err(self.error(
                "internal error: 'delete' of something not a variable",
                what.span,
            )),
        }
    }

    /// `foreach`: the entries as they are when it starts, in the order
    /// asked for, at most `limit` of them, each given to the loop's
    /// variables in turn.
    fn foreach(&mut self, each: &Foreach) -> Result<Flow> {
        let mut entries = self.snapshot(each)?;
        if let Some(limit) = &each.limit {
            let n = self.eval(limit)?.long().max(0);
            entries.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        }
        for entry in entries {
            self.step(each.array_span)?;
            for (name, key) in each.keys.iter().zip(&entry.keys) {
                self.set_var(name, key.clone(), each.array_span)?;
            }
            if let (Some(name), Some(value)) = (&each.value, &entry.value) {
                self.set_var(name, value.clone(), each.array_span)?;
            }
            match self.stmt(&each.body)? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }
}
