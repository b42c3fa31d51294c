//! Evaluating a parsed print fmt against one record: reading fields by
//! their layout, C arithmetic, casts, the kernel's print helpers, and the
//! printf of `printf.rs`. Nothing here allocates per field read; helpers
//! that build text (`__print_flags`, ...) allocate their result.

use std::borrow::Cow;
use std::fmt::Write;

use super::parse::{Expr, PrintFmt, Statement};
use super::printf::{self, Piece};
use crate::ctype::type_size;
use crate::field::{ArrayLen, Field, Location};
use crate::format::EventFormat;

mod conversion;

pub(crate) use conversion::conversion;

/// A kernel symbol an address falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol<'s> {
    /// The symbol's name.
    pub name: &'s str,
    /// The address minus the symbol's start.
    pub offset: u64,
    /// The symbol's size (distance to the next symbol).
    pub size: u64,
    /// The module it belongs to, if any.
    pub module: Option<&'s str>,
}

/// Resolves kernel addresses for `%pS` and `%ps`.
pub trait SymbolResolver {
    /// The symbol containing `address`, if known.
    fn symbol(&self, address: u64) -> Option<Symbol<'_>>;
}

/// A resolver that knows no symbol: addresses print as hex.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSymbols;

impl SymbolResolver for NoSymbols {
    fn symbol(&self, _address: u64) -> Option<Symbol<'_>> {
        None
    }
}

/// What evaluation needs besides the record.
pub struct Env<'s> {
    /// For `%pS`, `%ps`, `%pB`, `%pF`.
    pub symbols: &'s dyn SymbolResolver,
    /// CONFIG_HZ, for `jiffies_to_msecs`.
    pub hz: u64,
    /// The kernel's BTF: enum constants the kernel did not export to
    /// tracefs, and `sizeof` of kernel types.
    pub types: Option<&'s kscope_btf::Btf<'s>>,
    /// Values of kernel variables that print fmts read (`vmemmap_base`),
    /// where the caller could learn them.
    pub variables: &'s [(String, u64)],
    /// Strings the kernel keeps at fixed addresses (`printk_formats`):
    /// trace_printk formats and tracepoint_string()s, which records point
    /// at with a `char *`.
    pub strings: Option<&'s crate::PrintkFormats>,
    /// Whose printf to follow where the kernel's and libtraceevent's
    /// differ.
    pub dialect: Dialect,
}

/// Where the kernel's printf and libtraceevent's (which `trace-cmd
/// report` prints with) differ, which to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The kernel's `trace` file: `%p` as 16 hex digits, `%pS` with the
    /// symbol's size, `%#x` of 0 as `0x0`.
    #[default]
    Kernel,
    /// libtraceevent (glibc's printf): `%p` as `0x...` or `(nil)`, `%pS`
    /// without the size, `%#x` of 0 as `0`.
    Libtraceevent,
}

impl Default for Env<'_> {
    fn default() -> Self {
        Env {
            symbols: &NoSymbols,
            hz: 250,
            types: None,
            variables: &[],
            strings: None,
            dialect: Dialect::Kernel,
        }
    }
}

impl Env<'_> {
    /// An identifier's value: an enum constant from BTF or a known kernel
    /// variable.
    fn name_value(&self, name: &str) -> Option<Value<'static>> {
        if let Some(value) = self.types.and_then(|t| t.enum_value(name)) {
            return Some(Value::Int(value as u64, true));
        }
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| Value::Int(*v, false))
    }

    /// The size of a type, from the built-in C types or BTF.
    fn size_of(&self, type_name: &str) -> Option<usize> {
        type_size(type_name).or_else(|| {
            self.types
                .and_then(|t| t.type_size(type_name.trim_start_matches("const ")))
                .map(|s| s as usize)
        })
    }
}

/// Why a record could not be formatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// The start of the message for a kernel variable the record does not
/// carry (`jiffies`, `vmemmap_base`): only that argument prints as `?`.
const UNKNOWN_IDENTIFIER: &str = "unknown identifier ";

fn fail<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(message.into()))
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'d> {
    /// An integer's two's-complement bits, and whether its type is signed.
    Int(u64, bool),
    /// Text (a char array up to its NUL, a string literal, a helper's output).
    Text(Cow<'d, [u8]>),
    /// An array of `elem`-byte integers.
    Array(&'d [u8], usize, bool),
    /// A pointer and the size of what it points to, for C pointer
    /// arithmetic (`(struct page *)base + pfn`).
    Ptr(u64, usize),
}

fn read_int(bytes: &[u8], signed: bool) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    let value = u64::from_le_bytes(buf);
    if signed && n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
        value | (u64::MAX << (8 * n))
    } else {
        value
    }
}

fn cstr(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |end| &bytes[..end])
}

/// A record together with its event's format.
struct Record<'f, 'd> {
    format: &'f EventFormat<'f>,
    data: &'d [u8],
}

impl<'f, 'd> Record<'f, 'd> {
    fn field(&self, name: &str) -> Result<&'f Field<'f>, EvalError> {
        self.format
            .field(name)
            .ok_or_else(|| EvalError(format!("no field {name} in {}", self.format.name)))
    }

    fn slice(&self, offset: usize, len: usize, name: &str) -> Result<&'d [u8], EvalError> {
        self.data
            .get(offset..offset.saturating_add(len))
            .ok_or_else(|| {
                EvalError(format!(
                    "field {name} runs past the record's {} bytes",
                    self.data.len()
                ))
            })
    }

    /// The bytes a data_loc or rel_loc field points at.
    fn dynamic(&self, field: &Field<'_>) -> Result<&'d [u8], EvalError> {
        let word = read_int(self.slice(field.offset as usize, 4, field.name)?, false);
        let (offset, len) = ((word & 0xffff) as usize, (word >> 16) as usize);
        let start = match field.location {
            Location::RelLoc => field.offset as usize + 4 + offset,
            _ => offset,
        };
        self.slice(start, len, field.name)
    }

    fn value(&self, field: &Field<'_>) -> Result<Value<'d>, EvalError> {
        let elem = field.elem_size as usize;
        let signed = field.signed;
        match (field.location, field.array) {
            (Location::Inline, None) => {
                let bytes = self.slice(field.offset as usize, field.size as usize, field.name)?;
                Ok(Value::Int(read_int(bytes, signed), signed))
            }
            (Location::Inline, Some(len)) => {
                let size = match len {
                    ArrayLen::Open => self.data.len().saturating_sub(field.offset as usize),
                    _ => field.size as usize,
                };
                let bytes = self.slice(field.offset as usize, size, field.name)?;
                Ok(if field.is_string() {
                    Value::Text(Cow::Borrowed(cstr(bytes)))
                } else {
                    Value::Array(bytes, elem, field.elem_signed)
                })
            }
            (_, _) => {
                let bytes = self.dynamic(field)?;
                Ok(if field.is_string() {
                    Value::Text(Cow::Borrowed(cstr(bytes)))
                } else {
                    Value::Array(bytes, elem, field.elem_signed)
                })
            }
        }
    }
}

fn as_int(value: &Value<'_>, what: &str) -> Result<(u64, bool), EvalError> {
    match value {
        Value::Int(bits, signed) => Ok((*bits, *signed)),
        Value::Ptr(bits, _) => Ok((*bits, false)),
        _ => fail(format!("{what} needs an integer")),
    }
}

/// The evaluated `{ value, "name" }` tables of one print fmt whose values
/// are constants, by the address of their entries in the parsed print fmt
/// (which does not move): evaluated at the first record, reused after.
/// Tables such as the GFP flags of kmem events are dozens of entries of
/// nested casts, and evaluating them per record was half of the time.
type TableCache =
    std::cell::RefCell<std::collections::HashMap<usize, std::rc::Rc<[(u64, String)]>>>;

/// The evaluator for one record.
struct Eval<'f, 'd, 'e> {
    record: Record<'f, 'd>,
    env: &'e Env<'e>,
    tables: &'e TableCache,
    /// Variables of statement expressions, innermost last.
    locals: std::cell::RefCell<Vec<(&'f str, Value<'d>)>>,
}

impl<'f, 'd> Eval<'f, 'd, '_> {
    fn eval(&self, expr: &'d Expr<'f>) -> Result<Value<'d>, EvalError> {
        match expr {
            Expr::Int(v) => Ok(Value::Int(*v, true)),
            Expr::Str(s) => Ok(Value::Text(Cow::Borrowed(s.as_bytes()))),
            Expr::Field(name) => {
                let field = self.record.field(name)?;
                self.record.value(field)
            }
            Expr::Name(name) if self.local(name).is_some() => self
                .local(name)
                .ok_or_else(|| EvalError(format!("lost local {name}"))),
            Expr::Name(name) if self.env.name_value(name).is_some() => self
                .env
                .name_value(name)
                .ok_or_else(|| EvalError(format!("lost {name}"))),
            Expr::Name(name) => match *name {
                "true" => Ok(Value::Int(1, true)),
                "false" | "NULL" => Ok(Value::Int(0, true)),
                other => fail(format!("{UNKNOWN_IDENTIFIER}{other}")),
            },
            Expr::Unary(op, inner) => {
                let value = self.eval(inner)?;
                let (bits, signed) = as_int(&value, op)?;
                Ok(match *op {
                    "-" => Value::Int(bits.wrapping_neg(), signed),
                    "!" => Value::Int(u64::from(bits == 0), true),
                    "~" => Value::Int(!bits, signed),
                    "+" => Value::Int(bits, signed),
                    _ => return fail(format!("unary {op} is not supported")),
                })
            }
            Expr::Binary(op, left, right) => self.binary(op, left, right),
            Expr::Ternary(condition, then, otherwise) => {
                let (bits, _) = as_int(&self.eval(condition)?, "a condition")?;
                self.eval(if bits != 0 { then } else { otherwise })
            }
            Expr::Cast(ty, inner) => {
                let value = self.eval(inner)?;
                let bits = match value {
                    Value::Int(bits, _) | Value::Ptr(bits, _) => bits,
                    other => return Ok(other),
                };
                let size = ty.size.or_else(|| self.env.size_of(ty.base()));
                if ty.pointer {
                    return Ok(Value::Ptr(bits, size.unwrap_or(1)));
                }
                let size = size.unwrap_or(8);
                let cut = if size >= 8 {
                    bits
                } else {
                    bits & ((1u64 << (8 * size)) - 1)
                };
                Ok(Value::Int(
                    read_int(&cut.to_le_bytes()[..size.min(8)], ty.signed),
                    ty.signed,
                ))
            }
            Expr::SizeOf(type_name) => self
                .env
                .size_of(type_name)
                .map(|s| Value::Int(s as u64, false))
                .ok_or_else(|| EvalError(format!("sizeof({type_name}) is unknown"))),
            Expr::Call(name, args) => self.call(name, args),
            Expr::Index(array, index) => {
                let (i, _) = as_int(&self.eval(index)?, "an index")?;
                match self.eval(array)? {
                    Value::Array(bytes, elem, signed) => {
                        let start = (i as usize).saturating_mul(elem);
                        let slot = bytes
                            .get(start..start.saturating_add(elem))
                            .ok_or_else(|| EvalError(format!("index {i} is out of bounds")))?;
                        Ok(Value::Int(read_int(slot, signed), signed))
                    }
                    Value::Text(text) => Ok(Value::Int(
                        u64::from(text.get(i as usize).copied().unwrap_or(0)),
                        true,
                    )),
                    Value::Int(..) | Value::Ptr(..) => fail("indexing needs an array"),
                }
            }
            Expr::Block(statements) => self.block(statements),
            Expr::Braces(_) => fail("a { } table outside a print helper"),
            Expr::Member(_, member) => fail(format!("member .{member} is not supported")),
        }
    }

    fn local(&self, name: &str) -> Option<Value<'d>> {
        self.locals
            .borrow()
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    fn block(&self, statements: &'d [Statement<'f>]) -> Result<Value<'d>, EvalError> {
        let depth = self.locals.borrow().len();
        let mut last = Value::Int(0, true);
        let mut result = Ok(());
        for statement in statements {
            let step = match statement {
                Statement::Let(name, init) => init
                    .as_ref()
                    .map_or(Ok(Value::Int(0, true)), |e| self.eval(e))
                    .map(|value| self.locals.borrow_mut().push((name, value))),
                Statement::Assign(Expr::Name(name), value) => self.eval(value).map(|value| {
                    let mut locals = self.locals.borrow_mut();
                    if let Some(slot) = locals.iter_mut().rev().find(|(n, _)| n == name) {
                        slot.1 = value;
                    }
                }),
                Statement::Assign(..) => fail("assignment to a member is not supported"),
                Statement::Expr(expr) => self.eval(expr).map(|value| last = value),
            };
            if let Err(err) = step {
                result = Err(err);
                break;
            }
        }
        self.locals.borrow_mut().truncate(depth);
        result.map(|()| last)
    }

    fn binary(
        &self,
        op: &str,
        left: &'d Expr<'f>,
        right: &'d Expr<'f>,
    ) -> Result<Value<'d>, EvalError> {
        let left_value = self.eval(left)?;
        if let (Value::Ptr(base, elem), "+" | "-") = (&left_value, op) {
            let (n, _) = as_int(&self.eval(right)?, op)?;
            let offset = n.wrapping_mul(*elem as u64);
            let bits = if op == "+" {
                base.wrapping_add(offset)
            } else {
                base.wrapping_sub(offset)
            };
            return Ok(Value::Ptr(bits, *elem));
        }
        let (a, a_signed) = as_int(&left_value, op)?;
        if op == "&&" && a == 0 {
            return Ok(Value::Int(0, true));
        }
        if op == "||" && a != 0 {
            return Ok(Value::Int(1, true));
        }
        let (b, b_signed) = as_int(&self.eval(right)?, op)?;
        let signed = a_signed && b_signed;
        let cmp = |unsigned: bool, signed_result: bool| {
            Value::Int(
                u64::from(if signed { signed_result } else { unsigned }),
                true,
            )
        };
        let (sa, sb) = (a as i64, b as i64);
        Ok(match op {
            "+" => Value::Int(a.wrapping_add(b), signed),
            "-" => Value::Int(a.wrapping_sub(b), signed),
            "*" => Value::Int(a.wrapping_mul(b), signed),
            "/" | "%" if b == 0 => return fail("division by zero"),
            "/" if signed => Value::Int(sa.wrapping_div(sb) as u64, true),
            "/" => Value::Int(a / b, false),
            "%" if signed => Value::Int(sa.wrapping_rem(sb) as u64, true),
            "%" => Value::Int(a % b, false),
            "<<" => Value::Int(a.checked_shl(b as u32).unwrap_or(0), a_signed),
            ">>" if a_signed => Value::Int(
                sa.checked_shr(b as u32)
                    .unwrap_or(if sa < 0 { -1 } else { 0 }) as u64,
                true,
            ),
            ">>" => Value::Int(a.checked_shr(b as u32).unwrap_or(0), false),
            "&" => Value::Int(a & b, signed),
            "|" => Value::Int(a | b, signed),
            "^" => Value::Int(a ^ b, signed),
            "&&" | "||" => Value::Int(u64::from(b != 0), true),
            "==" => Value::Int(u64::from(a == b), true),
            "!=" => Value::Int(u64::from(a != b), true),
            "<" => cmp(a < b, sa < sb),
            "<=" => cmp(a <= b, sa <= sb),
            ">" => cmp(a > b, sa > sb),
            ">=" => cmp(a >= b, sa >= sb),
            _ => return fail(format!("operator {op} is not supported")),
        })
    }

    /// The `{ value, "name" }` entries of a flags or symbols table. An
    /// entry keyed by an enum constant that the kernel did not export a
    /// value for (no TRACE_DEFINE_ENUM) cannot match and is left out: the
    /// value then prints as hex where the kernel prints the name.
    fn table(&self, entries: &'d [Expr<'f>]) -> Result<std::rc::Rc<[(u64, String)]>, EvalError> {
        let key = entries.as_ptr() as usize;
        if let Some(table) = self.tables.borrow().get(&key) {
            return Ok(table.clone());
        }
        let mut table = Vec::with_capacity(entries.len());
        let mut constant = true;
        for entry in entries {
            let Expr::Braces(pair) = entry else {
                return fail("a table entry must be { value, \"name\" }");
            };
            let (key, name) = match pair.as_slice() {
                [key, Expr::Str(name)] => (key, name),
                // { -1, NULL } ends a table, as in the kernel's loop.
                [_, end] if matches!(self.eval(end), Ok(Value::Int(0, _) | Value::Ptr(0, _))) => {
                    break;
                }
                _ => return fail("a table entry must be { value, \"name\" }"),
            };
            if contains_unknown_name(key, &self.locals.borrow(), self.env) {
                continue;
            }
            constant &= is_constant(key, self.env);
            let (value, _) = as_int(&self.eval(key)?, "a table value")?;
            table.push((value, name.clone()));
        }
        let table: std::rc::Rc<[(u64, String)]> = table.into();
        if constant {
            self.tables.borrow_mut().insert(key, table.clone());
        }
        Ok(table)
    }

    fn field_arg(&self, args: &'d [Expr<'f>], helper: &str) -> Result<&'f Field<'f>, EvalError> {
        match args.first() {
            Some(Expr::Name(name)) | Some(Expr::Field(name)) => self.record.field(name),
            _ => fail(format!("{helper} needs a field name")),
        }
    }

    fn call(&self, name: &str, args: &'d [Expr<'f>]) -> Result<Value<'d>, EvalError> {
        let arg = |i: usize| -> Result<Value<'d>, EvalError> {
            args.get(i)
                .ok_or_else(|| EvalError(format!("{name} needs more arguments")))
                .and_then(|e| self.eval(e))
        };
        match name {
            "__print_flags" | "__print_flags_u64" => {
                let (mut flags, _) = as_int(&arg(0)?, name)?;
                let delimiter = match arg(1)? {
                    Value::Text(t) => String::from_utf8_lossy(&t).into_owned(),
                    _ => return fail("__print_flags needs a delimiter string"),
                };
                let table = self.table(&args[2..])?;
                let mut out = String::new();
                for (mask, text) in table.iter() {
                    if flags == 0 {
                        break;
                    }
                    if flags & mask != *mask {
                        continue;
                    }
                    flags &= !mask;
                    if !out.is_empty() {
                        out.push_str(&delimiter);
                    }
                    out.push_str(text);
                }
                if flags != 0 {
                    if !out.is_empty() {
                        out.push_str(&delimiter);
                    }
                    let _ = write!(out, "0x{flags:x}");
                }
                Ok(Value::Text(Cow::Owned(out.into_bytes())))
            }
            "__print_symbolic" | "__print_symbolic_u64" => {
                let (value, _) = as_int(&arg(0)?, name)?;
                let table = self.table(&args[1..])?;
                let text = table
                    .iter()
                    .find(|(v, _)| *v == value)
                    .map_or_else(|| format!("0x{value:x}"), |(_, t)| t.clone());
                Ok(Value::Text(Cow::Owned(text.into_bytes())))
            }
            "__get_str" | "__get_rel_str" => {
                let field = self.field_arg(args, name)?;
                Ok(Value::Text(Cow::Borrowed(cstr(
                    self.record.dynamic(field)?,
                ))))
            }
            "__get_dynamic_array"
            | "__get_rel_dynamic_array"
            | "__get_sockaddr"
            | "__get_rel_sockaddr" => {
                let field = self.field_arg(args, name)?;
                Ok(Value::Array(
                    self.record.dynamic(field)?,
                    field.elem_size as usize,
                    field.elem_signed,
                ))
            }
            "__get_dynamic_array_len" | "__get_rel_dynamic_array_len" => {
                let field = self.field_arg(args, name)?;
                Ok(Value::Int(self.record.dynamic(field)?.len() as u64, false))
            }
            "__get_bitmask" | "__get_rel_bitmask" | "__get_cpumask" | "__get_rel_cpumask" => {
                let field = self.field_arg(args, name)?;
                Ok(Value::Text(Cow::Owned(
                    bitmask(self.record.dynamic(field)?).into_bytes(),
                )))
            }
            "__print_hex" | "__print_hex_str" => {
                let bytes = array_bytes(&arg(0)?, name)?;
                let (len, _) = as_int(&arg(1)?, name)?;
                let bytes = &bytes[..(len as usize).min(bytes.len())];
                let separator = if name == "__print_hex" { " " } else { "" };
                let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                Ok(Value::Text(Cow::Owned(parts.join(separator).into_bytes())))
            }
            "__print_array" | "__print_dynamic_array" => {
                let Value::Array(bytes, _, _) = arg(0)? else {
                    return fail(format!("{name} needs an array"));
                };
                let (count, _) = as_int(&arg(1)?, name)?;
                let (size, _) = as_int(&arg(2)?, name)?;
                let size = size as usize;
                if !matches!(size, 1 | 2 | 4 | 8) {
                    return fail(format!("{name}: element size {size}"));
                }
                let mut out = String::from("{");
                for (i, chunk) in bytes.chunks_exact(size).take(count as usize).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "0x{:x}", read_int(chunk, false));
                }
                out.push('}');
                Ok(Value::Text(Cow::Owned(out.into_bytes())))
            }
            "jiffies_to_msecs" => {
                let (jiffies, _) = as_int(&arg(0)?, name)?;
                Ok(Value::Int(
                    jiffies.wrapping_mul(1000) / self.env.hz.max(1),
                    false,
                ))
            }
            "__builtin_expect" => arg(0),
            // include/ras/ras_event.h: the names of enum hw_event_mc_err_type.
            "mc_event_error_type" => {
                let (kind, _) = as_int(&arg(0)?, name)?;
                let text = match kind {
                    0 => "Corrected",
                    1 => "Uncorrected",
                    2 => "Deferred",
                    3 => "Fatal",
                    _ => "Info",
                };
                Ok(Value::Text(Cow::Borrowed(text.as_bytes())))
            }
            other => fail(format!("helper {other}() is not supported")),
        }
    }
}

/// True when `expr` has the same value for every record: literals,
/// operators, casts, sizeof and enum constants (not fields, locals or
/// kernel variables that change).
fn is_constant(expr: &Expr<'_>, env: &Env<'_>) -> bool {
    match expr {
        Expr::Int(_) | Expr::Str(_) | Expr::SizeOf(_) => true,
        Expr::Name(name) => env.types.and_then(|t| t.enum_value(name)).is_some(),
        Expr::Unary(_, e) | Expr::Cast(_, e) => is_constant(e, env),
        Expr::Binary(_, a, b) => is_constant(a, env) && is_constant(b, env),
        Expr::Ternary(a, b, c) => is_constant(a, env) && is_constant(b, env) && is_constant(c, env),
        _ => false,
    }
}

/// Walks `expr` for names that are neither locals, helpers nor known to
/// `env`.
fn collect_unresolved<'f>(
    expr: &Expr<'f>,
    env: &Env<'_>,
    locals: &mut Vec<&'f str>,
    out: &mut Vec<&'f str>,
) {
    match expr {
        Expr::Name(name) => {
            if !matches!(*name, "true" | "false" | "NULL")
                && !locals.contains(name)
                && env.name_value(name).is_none()
            {
                out.push(name);
            }
        }
        Expr::Unary(_, e) | Expr::Cast(_, e) | Expr::Member(e, _) => {
            collect_unresolved(e, env, locals, out)
        }
        Expr::Binary(_, a, b) | Expr::Index(a, b) => {
            collect_unresolved(a, env, locals, out);
            collect_unresolved(b, env, locals, out);
        }
        Expr::Ternary(a, b, c) => {
            for e in [a, b, c] {
                collect_unresolved(e, env, locals, out);
            }
        }
        // __get_str(name) and its kin take a field name, not a value.
        Expr::Call(helper, args) if helper.starts_with("__get_") => {
            for e in args.iter().filter(|e| !matches!(e, Expr::Name(_))) {
                collect_unresolved(e, env, locals, out);
            }
        }
        Expr::Call(_, args) | Expr::Braces(args) => {
            for e in args {
                collect_unresolved(e, env, locals, out);
            }
        }
        Expr::Block(statements) => {
            for statement in statements {
                match statement {
                    Statement::Let(name, init) => {
                        if let Some(e) = init {
                            collect_unresolved(e, env, locals, out);
                        }
                        locals.push(name);
                    }
                    Statement::Assign(a, b) => {
                        collect_unresolved(a, env, locals, out);
                        collect_unresolved(b, env, locals, out);
                    }
                    Statement::Expr(e) => collect_unresolved(e, env, locals, out),
                }
            }
        }
        Expr::Int(_) | Expr::Str(_) | Expr::Field(_) | Expr::SizeOf(_) => {}
    }
}

/// True when `expr` uses an identifier that is neither a local nor one
/// the evaluator knows (an enum constant the kernel left unresolved and
/// BTF does not have).
fn contains_unknown_name(expr: &Expr<'_>, locals: &[(&str, Value<'_>)], env: &Env<'_>) -> bool {
    match expr {
        Expr::Name(name) => {
            !matches!(*name, "true" | "false" | "NULL")
                && !locals.iter().any(|(n, _)| n == name)
                && env.name_value(name).is_none()
        }
        Expr::Unary(_, e) | Expr::Cast(_, e) => contains_unknown_name(e, locals, env),
        Expr::Binary(_, a, b) => {
            contains_unknown_name(a, locals, env) || contains_unknown_name(b, locals, env)
        }
        _ => false,
    }
}

fn array_bytes<'d>(value: &Value<'d>, what: &str) -> Result<Cow<'d, [u8]>, EvalError> {
    match value {
        Value::Array(bytes, _, _) => Ok(Cow::Borrowed(bytes)),
        Value::Text(text) => Ok(text.clone()),
        Value::Int(..) | Value::Ptr(..) => fail(format!("{what} needs an array")),
    }
}

/// A bitmask as the kernel prints `%*pb`: 32-bit words in hex, most
/// significant first, separated by commas.
fn bitmask(bytes: &[u8]) -> String {
    let words: Vec<u32> = bytes.chunks(4).map(|c| read_int(c, false) as u32).collect();
    let mut out = String::new();
    for (i, word) in words.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{word:08x}");
    }
    out
}

/// One event's print fmt, parsed once, ready to format its records.
#[derive(Debug, Clone)]
pub struct Formatter<'f> {
    format: &'f EventFormat<'f>,
    print: PrintFmt<'f>,
    pieces: Vec<Piece>,
    tables: TableCache,
}

impl<'f> Formatter<'f> {
    /// Parses the event's print fmt.
    pub fn new(format: &'f EventFormat<'f>) -> Result<Formatter<'f>, super::PrintFmtError> {
        let print = PrintFmt::parse(format.print_fmt)?;
        let pieces = printf::pieces(&print.format);
        Ok(Formatter {
            format,
            print,
            pieces,
            tables: TableCache::default(),
        })
    }

    /// The event this formats.
    pub fn format(&self) -> &'f EventFormat<'f> {
        self.format
    }

    /// Identifiers the print fmt reads that `env` cannot give a value:
    /// kernel variables (`jiffies`, `vmemmap_base`) and enum constants
    /// missing from BTF. Records of this event print `?` or hex there.
    pub fn unresolved_names(&self, env: &Env<'_>) -> Vec<&'f str> {
        let mut names = Vec::new();
        for arg in &self.print.args {
            collect_unresolved(arg, env, &mut Vec::new(), &mut names);
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Appends the record's text to `out`, as the kernel's `trace` file
    /// shows it after the event name. On error, `out` is left as it was.
    pub fn render(&self, data: &[u8], env: &Env<'_>, out: &mut String) -> Result<(), EvalError> {
        let start = out.len();
        let result = self.render_into(data, env, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn render_into<'a>(
        &'a self,
        data: &'a [u8],
        env: &Env<'_>,
        out: &mut String,
    ) -> Result<(), EvalError> {
        let eval = Eval {
            record: Record {
                format: self.format,
                data,
            },
            env,
            tables: &self.tables,
            locals: std::cell::RefCell::new(Vec::new()),
        };
        let mut args = self.print.args.iter();
        let mut next = |what: &str| {
            args.next()
                .ok_or_else(|| {
                    EvalError(format!(
                        "the format has more conversions than arguments ({what})"
                    ))
                })
                .and_then(|e| eval.eval(e))
        };
        for piece in &self.pieces {
            let spec = match piece {
                Piece::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Piece::Spec(spec) => spec,
            };
            // Only a '*' width or precision needs a copy of the spec: the
            // common case allocates nothing here.
            let starred;
            let spec = if spec.width == Some(None) || spec.precision == Some(None) {
                let mut copy = spec.clone();
                if copy.width == Some(None) {
                    let (w, _) = as_int(&next("width")?, "a '*' width")?;
                    copy.width = Some(Some(w as usize));
                }
                if copy.precision == Some(None) {
                    let (p, _) = as_int(&next("precision")?, "a '*' precision")?;
                    copy.precision = Some(Some(p as usize));
                }
                starred = copy;
                &starred
            } else {
                spec
            };
            match next("value") {
                Ok(value) => conversion(spec, &value, env, out)?,
                // A kernel variable read at print time: the kernel knew it,
                // the record does not. The rest of the record still prints.
                Err(EvalError(message)) if message.starts_with(UNKNOWN_IDENTIFIER) => out.push('?'),
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// The record's own fields as `name=value` pairs, for records whose print
/// fmt cannot be evaluated.
pub fn render_raw(format: &EventFormat<'_>, data: &[u8], out: &mut String) {
    for (i, (name, value)) in field_values(format, data).iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{name}=");
        match value {
            FieldValue::Signed(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::Unsigned(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::Text(text) => out.push_str(text),
            FieldValue::Bytes(bytes) => {
                for b in bytes {
                    let _ = write!(out, "{b:02x}");
                }
            }
            FieldValue::Numbers(numbers) => {
                let parts: Vec<String> = numbers.iter().map(|n| format!("0x{n:x}")).collect();
                let _ = write!(out, "{{{}}}", parts.join(","));
            }
            FieldValue::Unreadable => out.push('?'),
        }
    }
}

/// One field's value, for `name=value` output and JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A signed integer field.
    Signed(i64),
    /// An unsigned integer field (pointers too).
    Unsigned(u64),
    /// A char array or string.
    Text(String),
    /// A byte array.
    Bytes(Vec<u8>),
    /// An array of wider integers, as unsigned values.
    Numbers(Vec<u64>),
    /// The record is too short for it.
    Unreadable,
}

/// The event's own fields of a record, in format order.
pub fn field_values<'f>(format: &'f EventFormat<'f>, data: &[u8]) -> Vec<(&'f str, FieldValue)> {
    let record = Record { format, data };
    format
        .fields
        .iter()
        .map(|field| {
            let value = match record.value(field) {
                Ok(Value::Int(bits, true)) => FieldValue::Signed(bits as i64),
                Ok(Value::Int(bits, false)) | Ok(Value::Ptr(bits, _)) => FieldValue::Unsigned(bits),
                Ok(Value::Text(text)) => {
                    FieldValue::Text(String::from_utf8_lossy(&text).into_owned())
                }
                Ok(Value::Array(bytes, 1, _)) => FieldValue::Bytes(bytes.to_vec()),
                Ok(Value::Array(bytes, elem, _)) => FieldValue::Numbers(
                    bytes
                        .chunks_exact(elem)
                        .map(|c| read_int(c, false))
                        .collect(),
                ),
                Err(_) => FieldValue::Unreadable,
            };
            (field.name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests;
