//! Built-in functions as a host probe sees them, in kscope's own process:
//! the printing ones (formatted as the ring-buffer path formats records,
//! with [`Format::render`]), `exit()`, kscope's own ids, name and CPU,
//! the clocks (`local_clock_ns` is CLOCK_MONOTONIC, the clock of
//! bpf_ktime_get_ns), `pp()` (the point's name) and `probefunc()` (as
//! the point gives it, "" for begin, end, error and timers), `target()`,
//! the string functions, and the kernel and user readers, which have
//! nothing to read here and give "", as a failed read does in BPF.

use std::time::{SystemTime, UNIX_EPOCH};

use super::StackPrinter;
use super::exec::{Interp, Result};
use super::value::{MAX_LEN, Value};
use crate::ast::{Expr, ExprKind, Literal, StatOp};
use crate::check::HistKind;
use crate::printf::{ArgKind, Format, Value as Arg, concatenation};
use crate::source::Span;

impl Interp<'_> {
    /// Calls `name` with `args`.
    pub(super) fn call(&mut self, name: &str, args: &[Expr], span: Span) -> Result<Value> {
        if let (Some(op), [operand]) = (StatOp::from_name(name), args) {
            return self.stat_op(op, operand, span);
        }
        match name {
            "printf" | "sprintf" => {
                let text = self.format(name, args, span)?;
                if name == "sprintf" {
                    return Ok(Value::string(&text));
                }
                self.out.extend_from_slice(&text);
                return Ok(Value::Long(0));
            }
            "print" | "println" => {
                self.print(args, name == "println", span)?;
                return Ok(Value::Long(0));
            }
            "exit" => {
                self.exited = true;
                self.raise_exit_flag()?;
                return Ok(Value::Long(0));
            }
            "print_stack" | "print_ustack" => {
                if let Some(stack) = args.first() {
                    let value = self.eval(stack)?.long();
                    let text = self.state.stacks.text(value, true);
                    self.out.extend_from_slice(text.as_bytes());
                }
                return Ok(Value::Long(0));
            }
            // kscope's own stacks are not taken: a host probe runs in no
            // kernel event.
            "print_backtrace" | "print_ubacktrace" => return Ok(Value::Long(0)),
            "backtrace" | "ubacktrace" => return Ok(Value::Stack(-1)),
            _ => {}
        }
        if let Some(index) = self
            .code
            .script
            .functions
            .iter()
            .position(|f| f.name == name)
        {
            let args = self.eval_all(args)?;
            return self.call_function(index, args);
        }
        let args = self.eval_all(args)?;
        self.builtin(name, &args, span)
    }

    /// A built-in that is not a printing one, on evaluated arguments.
    fn builtin(&self, name: &str, args: &[Value], span: Span) -> Result<Value> {
        let p = self.process;
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Long(0));
        let long = Value::Long;
        Ok(match name {
            "pid" => long(p.pid),
            "tid" => long(p.tid),
            "ppid" => long(p.ppid),
            "uid" => long(p.uid),
            "gid" => long(p.gid),
            "cpu" => long(p.cpu),
            "execname" => Value::string(p.comm.as_bytes()),
            "target" => long(self.code.target),
            "pp" => Value::string(self.attachment.name.as_bytes()),
            "probefunc" => {
                Value::string(self.attachment.function.as_deref().unwrap_or("").as_bytes())
            }
            "gettimeofday_ns" => long(realtime_ns()),
            "gettimeofday_us" => long(realtime_ns() / 1_000),
            "gettimeofday_ms" => long(realtime_ns() / 1_000_000),
            "gettimeofday_s" => long(realtime_ns() / 1_000_000_000),
            "local_clock_ns" => long(monotonic_ns()),
            "user_string" | "user_string_n" | "kernel_string" => Value::Str(Vec::new()),
            "strlen" => long(arg(0).bytes().len() as i64),
            "substr" => substr(arg(0).bytes(), arg(1).long(), arg(2).long()),
            "isinstr" => {
                let (hay, needle) = (arg(0), arg(1));
                let found = needle.bytes().is_empty()
                    || hay
                        .bytes()
                        .windows(needle.bytes().len())
                        .any(|w| w == needle.bytes());
                long(i64::from(found))
            }
            _ => {
                return Err(self.error(
                    &format!("internal error: '{name}()' in a probe run in kscope's process"),
                    span,
                ));
            }
        })
    }

    /// `printf`'s or `sprintf`'s text.
    fn format(&mut self, name: &str, args: &[Expr], span: Span) -> Result<Vec<u8>> {
        let Some(ExprKind::Literal(Literal::Str(text))) = args.first().map(|a| &a.kind) else {
            return Err(self.error(
                &format!("internal error: {name} without a literal format"),
                span,
            ));
        };
        let format = Format::parse(text)
            .map_err(|e| self.error(&format!("internal error: bad format: {e}"), span))?;
        let values = self.eval_all(&args[1..])?;
        Ok(render(&format, &values, self.state.stacks))
    }

    /// `print` and `println`: each argument's text one after the other, a
    /// histogram drawn as SystemTap draws it ([`crate::stats::render_hist`]).
    fn print(&mut self, args: &[Expr], newline: bool, span: Span) -> Result<()> {
        let mut values = Vec::new();
        for arg in args {
            values.push(match &arg.kind {
                ExprKind::Call { name, args: hist } if name.starts_with("@hist_") => {
                    Value::Str(self.hist(hist, span)?.into_bytes())
                }
                _ => self.eval(arg)?,
            });
        }
        let kinds: Vec<ArgKind> = values
            .iter()
            .map(|v| match v {
                Value::Str(_) | Value::Stack(_) => ArgKind::Str,
                Value::Long(_) => ArgKind::Int,
            })
            .collect();
        let text = render(&concatenation(&kinds, newline), &values, self.state.stacks);
        self.out.extend_from_slice(&text);
        Ok(())
    }

    /// The text of `@hist_log(s)` or `@hist_linear(s, ...)`: the buckets
    /// the statistic keeps, merged over CPUs.
    fn hist(&mut self, args: &[Expr], span: Span) -> Result<String> {
        let Some(operand) = args.first() else {
            return Err(self.error("internal error: a histogram of nothing", span));
        };
        let (ExprKind::Var(name) | ExprKind::Index { array: name, .. }) = &operand.kind else {
            return Err(self.error(
                "internal error: a histogram of something not a statistic",
                span,
            ));
        };
        let kind: Option<HistKind> = self
            .state
            .arrays
            .iter()
            .find(|a| &a.name == name)
            .and_then(|a| a.hist);
        let Some(kind) = kind else {
            return Err(self.error(
                &format!("internal error: '{name}' keeps no histogram"),
                span,
            ));
        };
        let (array, keys) = match &operand.kind {
            ExprKind::Index { array, keys } => (array.clone(), self.eval_all(keys)?),
            _ => (name.clone(), Vec::new()),
        };
        let stat = self.stat(&array, &keys, operand.span)?;
        let mut text = String::new();
        crate::stats::render_hist(&kind, stat.hist(), &mut text).map_err(|_| {
            self.error(
                "empty aggregate: a histogram of a statistic with no values",
                span,
            )
        })?;
        Ok(text)
    }
}

/// `format` rendered with `values`, stacks as their addresses.
fn render(format: &Format, values: &[Value], stacks: &dyn StackPrinter) -> Vec<u8> {
    let texts: Vec<Vec<u8>> = values
        .iter()
        .map(|v| match v {
            Value::Stack(n) => stacks.text(*n, false).into_bytes(),
            _ => Vec::new(),
        })
        .collect();
    let args: Vec<Arg<'_>> = values
        .iter()
        .zip(&texts)
        .map(|(v, text)| match v {
            Value::Long(n) => Arg::Int(*n),
            Value::Str(s) => Arg::Str(s),
            Value::Stack(_) => Arg::Str(text),
        })
        .collect();
    let mut out = Vec::new();
    format.render(&args, &mut out);
    out
}

/// `substr(s, start, length)` as the BPF code computes it: start counts
/// from 0; a start outside the string or a length below 1 gives "".
fn substr(s: &[u8], start: i64, length: i64) -> Value {
    let Ok(start) = usize::try_from(start) else {
        return Value::Str(Vec::new());
    };
    if start >= s.len() || length <= 0 {
        return Value::Str(Vec::new());
    }
    let length = usize::try_from(length).unwrap_or(MAX_LEN).min(MAX_LEN);
    let end = start.saturating_add(length).min(s.len());
    Value::Str(s[start..end].to_vec())
}

/// CLOCK_REALTIME in nanoseconds.
fn realtime_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// CLOCK_MONOTONIC in nanoseconds: what bpf_ktime_get_ns gives.
fn monotonic_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec.wrapping_mul(1_000_000_000).wrapping_add(t.tv_nsec)
}
