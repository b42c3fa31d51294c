//! The abstract syntax tree that the parser builds and every later pass
//! (name resolution, type checking, code generation) walks. Every node
//! carries the [`Span`] of the text it came from. [`Expr`] and [`Literal`]
//! implement `Display`, printing expressions fully parenthesized, which is
//! how tests check precedence and how a `-p 1` dump can show the parse.

use std::fmt;

use crate::source::Span;

/// A whole script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// `probe` declarations, in the order written.
    pub probes: Vec<Probe>,
    /// `global` variables, one per name, in the order written.
    pub globals: Vec<Global>,
    /// `function` definitions, in the order written.
    pub functions: Vec<Function>,
}

/// `probe POINT[, POINT...] [if (COND)] { BODY }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The points the body runs at; never empty.
    pub points: Vec<ProbePoint>,
    /// The `if (...)` condition that gates the whole probe, if any.
    pub condition: Option<Expr>,
    /// The handler.
    pub body: Block,
    /// From `probe` to the closing `}`.
    pub span: Span,
}

/// A probe point such as `kernel.function("vfs_read").return`: its dotted
/// components in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePoint {
    /// The components; never empty.
    pub components: Vec<Component>,
    /// From the first component to the end of the last.
    pub span: Span,
}

/// One component of a probe point: a name (which may hold `*` globs, as in
/// `open*`) and an optional literal argument, as in `function("vfs_read")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The name, globs included (`syscall`, `open*`, `*`).
    pub name: String,
    /// The parenthesized argument, if any.
    pub arg: Option<Literal>,
    /// The name and its argument.
    pub span: Span,
}

/// `global NAME [= LITERAL]` or `global NAME[SIZE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// The variable's name.
    pub name: String,
    /// Its initial value, if given.
    pub init: Option<Literal>,
    /// The capacity declared with `global NAME[SIZE]`: the variable is an
    /// array of at most SIZE entries.
    pub size: Option<u32>,
    /// The name and the initializer.
    pub span: Span,
}

/// `function NAME[:TYPE](PARAMS) { BODY }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The function's name.
    pub name: String,
    /// The declared return type, if annotated (`function f:long (...)`).
    pub return_type: Option<Type>,
    /// The parameters in order.
    pub params: Vec<Param>,
    /// The body.
    pub body: Block,
    /// From `function` to the closing `}`.
    pub span: Span,
}

/// A function parameter: `NAME` or `NAME:TYPE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// Its annotated type, if any.
    pub ty: Option<Type>,
    /// The name and its annotation.
    pub span: Span,
}

/// A type annotation: the language has two value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `long`: a signed 64-bit integer.
    Long,
    /// `string`.
    String,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// An integer.
    Int(i64),
    /// A string, escapes decoded.
    Str(String),
}

/// `{ STATEMENTS }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The statements in order.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A statement and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    /// What the statement is.
    pub kind: StmtKind,
    /// Its text, without a trailing `;`.
    pub span: Span,
}

/// The statement forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    /// A nested `{ ... }`.
    Block(Block),
    /// An expression evaluated for its effect, e.g. a call or assignment.
    Expr(Expr),
    /// `if (COND) THEN [else OTHERWISE]`.
    If {
        /// The condition.
        cond: Expr,
        /// Run when the condition is non-zero.
        then: Box<Stmt>,
        /// Run otherwise, if present.
        otherwise: Option<Box<Stmt>>,
    },
    /// `while (COND) BODY`.
    While {
        /// The loop condition.
        cond: Expr,
        /// The loop body.
        body: Box<Stmt>,
    },
    /// `for (INIT; COND; STEP) BODY`; each part may be left out.
    For {
        /// Evaluated once before the loop.
        init: Option<Expr>,
        /// Checked before each iteration; absent means forever.
        cond: Option<Expr>,
        /// Evaluated after each iteration.
        step: Option<Expr>,
        /// The loop body.
        body: Box<Stmt>,
    },
    /// `next`: leave the probe handler.
    Next,
    /// `return [VALUE]`.
    Return(Option<Expr>),
    /// `break`.
    Break,
    /// `continue`.
    Continue,
    /// `delete NAME` (a whole array, or a scalar reset) or `delete
    /// NAME[KEYS]` (one entry).
    Delete(Expr),
    /// `foreach (...) BODY`.
    Foreach(Box<Foreach>),
    /// A lone `;` where a statement is required, as in `while (f()) ;`.
    Empty,
}

/// `foreach ([VALUE =] KEYS in ARRAY[SORT] [limit N]) BODY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreach {
    /// The variable that takes each entry's value (`v = [k] in a`).
    pub value: Option<String>,
    /// The variables that take each entry's keys, one per key.
    pub keys: Vec<String>,
    /// The array walked.
    pub array: String,
    /// Where the array's name is.
    pub array_span: Span,
    /// The order asked for, if any.
    pub sort: Option<Sort>,
    /// At most this many entries.
    pub limit: Option<Expr>,
    /// The loop body.
    pub body: Stmt,
}

/// The order of a `foreach`: by one key (`[k+]`, `[a, b-]`) or by the
/// value (`a+`, `a-`, or for statistics `a @sum-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// What is compared.
    pub by: SortBy,
    /// Largest first.
    pub descending: bool,
}

/// What a `foreach` sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// The key at this position.
    Key(usize),
    /// The value (for statistics, `@count`).
    Value,
    /// For statistics, this aggregate of each entry.
    Aggregate(StatOp),
}

/// What is read from a statistic: `@count(s)`, `@sum(s)`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatOp {
    /// `@count`: how many values were added.
    Count,
    /// `@sum`
    Sum,
    /// `@min`
    Min,
    /// `@max`
    Max,
    /// `@avg`: the sum divided by the count, truncated.
    Avg,
    /// `@variance`
    Variance,
}

impl StatOp {
    /// The operator written `@name`, if there is one.
    pub fn from_name(name: &str) -> Option<StatOp> {
        Some(match name {
            "@count" => StatOp::Count,
            "@sum" => StatOp::Sum,
            "@min" => StatOp::Min,
            "@max" => StatOp::Max,
            "@avg" => StatOp::Avg,
            "@variance" => StatOp::Variance,
            _ => return None,
        })
    }

    /// The operator as written, with its `@`.
    pub fn name(self) -> &'static str {
        match self {
            StatOp::Count => "@count",
            StatOp::Sum => "@sum",
            StatOp::Min => "@min",
            StatOp::Max => "@max",
            StatOp::Avg => "@avg",
            StatOp::Variance => "@variance",
        }
    }
}

/// A `while` or `for` loop seen as one shape: `while (COND) BODY` is a
/// `for` without its init and step.
#[derive(Debug, Clone, Copy)]
pub struct Loop<'a> {
    /// Evaluated once before the loop.
    pub init: Option<&'a Expr>,
    /// Checked before each iteration; absent means forever.
    pub cond: Option<&'a Expr>,
    /// Evaluated after each iteration.
    pub step: Option<&'a Expr>,
    /// The loop body.
    pub body: &'a Stmt,
}

impl StmtKind {
    /// The loop this statement is, if it is one.
    pub fn as_loop(&self) -> Option<Loop<'_>> {
        match self {
            StmtKind::While { cond, body } => Some(Loop {
                init: None,
                cond: Some(cond),
                step: None,
                body,
            }),
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => Some(Loop {
                init: init.as_ref(),
                cond: cond.as_ref(),
                step: step.as_ref(),
                body,
            }),
            _ => None,
        }
    }
}

/// An expression and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Its text.
    pub span: Span,
}

/// The expression forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    /// A literal.
    Literal(Literal),
    /// A script variable (local or global).
    Var(String),
    /// A target variable with its access chain: `$task->mm->pgd[2]`.
    Target {
        /// The variable's name, without `$`.
        name: String,
        /// The `->field` and `[index]` accesses, left to right.
        accesses: Vec<Access>,
    },
    /// An array element `NAME[KEY, ...]`.
    Index {
        /// The array.
        array: String,
        /// The keys, one or more.
        keys: Vec<Expr>,
    },
    /// `[KEY, ...] in NAME` (or `KEY in NAME`): whether the entry exists.
    In {
        /// The keys, one or more.
        keys: Vec<Expr>,
        /// The array.
        array: String,
    },
    /// A function call `NAME(ARGS)`; the statistics operators (`@count`,
    /// `@hist_log`, ...) are calls whose name starts with `@`.
    Call {
        /// The called function.
        name: String,
        /// The arguments in order.
        args: Vec<Expr>,
    },
    /// A prefix or postfix unary operation.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `COND ? THEN : OTHERWISE`.
    Ternary {
        /// The condition.
        cond: Box<Expr>,
        /// The value when the condition is non-zero.
        then: Box<Expr>,
        /// The value otherwise.
        otherwise: Box<Expr>,
    },
    /// An assignment; `target` is a variable or target-variable expression.
    Assign {
        /// `=` or a compound operator.
        op: AssignOp,
        /// What is assigned to.
        target: Box<Expr>,
        /// The value.
        value: Box<Expr>,
    },
}

/// One step of a target variable's access chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The kind of step.
    pub kind: AccessKind,
    /// Its text (`->field` or `[index]`).
    pub span: Span,
}

/// A `->field` or `[index]` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessKind {
    /// `->NAME`.
    Field(String),
    /// `[EXPR]`.
    Index(Box<Expr>),
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `+x`
    Plus,
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
    /// `++x`
    PreInc,
    /// `--x`
    PreDec,
    /// `x++`
    PostInc,
    /// `x--`
    PostDec,
}

impl UnaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Plus => "+",
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
            UnaryOp::PreInc | UnaryOp::PostInc => "++",
            UnaryOp::PreDec | UnaryOp::PostDec => "--",
        }
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `.`, string concatenation
    Concat,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `&`
    BitAnd,
    /// `^`
    BitXor,
    /// `|`
    BitOr,
    /// `&&`
    And,
    /// `||`
    Or,
}

/// Every binary operator with its symbol and binding strength (higher binds
/// tighter). All are left-associative.
const BINARY_OPS: [(BinaryOp, &str, u8); 19] = [
    (BinaryOp::Or, "||", 1),
    (BinaryOp::And, "&&", 2),
    (BinaryOp::BitOr, "|", 3),
    (BinaryOp::BitXor, "^", 4),
    (BinaryOp::BitAnd, "&", 5),
    (BinaryOp::Eq, "==", 6),
    (BinaryOp::Ne, "!=", 6),
    (BinaryOp::Lt, "<", 7),
    (BinaryOp::Le, "<=", 7),
    (BinaryOp::Gt, ">", 7),
    (BinaryOp::Ge, ">=", 7),
    (BinaryOp::Shl, "<<", 8),
    (BinaryOp::Shr, ">>", 8),
    (BinaryOp::Concat, ".", 9),
    (BinaryOp::Add, "+", 10),
    (BinaryOp::Sub, "-", 10),
    (BinaryOp::Mul, "*", 11),
    (BinaryOp::Div, "/", 11),
    (BinaryOp::Rem, "%", 11),
];

impl BinaryOp {
    /// The operator written as `symbol`, if there is one.
    pub fn from_symbol(symbol: &str) -> Option<BinaryOp> {
        BINARY_OPS
            .iter()
            .find(|(_, s, _)| *s == symbol)
            .map(|(op, _, _)| *op)
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        BINARY_OPS
            .iter()
            .find(|(op, _, _)| *op == self)
            .map_or("", |(_, s, _)| s)
    }

    /// Whether the operator compares (`== != < <= > >=`): on strings
    /// too, giving a long.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }

    /// How tightly the operator binds: 1 for `||` up to 11 for `* / %`.
    /// The order is C's; `.`, which C lacks, sits between the shifts and
    /// `+ -`, where SystemTap's parser puts it, so `a . b + 1` is
    /// `a . (b + 1)`.
    pub fn precedence(self) -> u8 {
        BINARY_OPS
            .iter()
            .find(|(op, _, _)| *op == self)
            .map_or(0, |(_, _, p)| *p)
    }
}

/// Assignment operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Assign,
    /// `OP=` for a binary operator: `+=`, `.=`, `<<=`, ...
    Compound(BinaryOp),
    /// `<<<`: add a value to a statistic.
    Aggregate,
}

impl AssignOp {
    /// The operator written as `symbol`, if it is an assignment.
    pub fn from_symbol(symbol: &str) -> Option<AssignOp> {
        match symbol {
            "=" => return Some(AssignOp::Assign),
            "<<<" => return Some(AssignOp::Aggregate),
            _ => {}
        }
        ASSIGN_SYMBOLS
            .iter()
            .find(|(_, s)| *s == symbol)
            .map(|(op, _)| AssignOp::Compound(*op))
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            AssignOp::Assign => "=",
            AssignOp::Aggregate => "<<<",
            AssignOp::Compound(op) => ASSIGN_SYMBOLS
                .iter()
                .find(|(o, _)| *o == op)
                .map_or("=", |(_, s)| s),
        }
    }
}

/// The compound assignment operators' symbols.
const ASSIGN_SYMBOLS: [(BinaryOp, &str); 11] = [
    (BinaryOp::Mul, "*="),
    (BinaryOp::Div, "/="),
    (BinaryOp::Rem, "%="),
    (BinaryOp::Add, "+="),
    (BinaryOp::Sub, "-="),
    (BinaryOp::Concat, ".="),
    (BinaryOp::Shl, "<<="),
    (BinaryOp::Shr, ">>="),
    (BinaryOp::BitAnd, "&="),
    (BinaryOp::BitXor, "^="),
    (BinaryOp::BitOr, "|="),
];

impl fmt::Display for Literal {
    /// Integers in decimal; strings quoted with C escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(value) => write!(f, "{value}"),
            Literal::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c if c.is_ascii_control() => write!(f, "\\{:03o}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
        }
    }
}

impl fmt::Display for Expr {
    /// The expression with every operation in parentheses:
    /// `a + b * c` prints as `(a + (b * c))`, `x++` as `(x++)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Literal(lit) => write!(f, "{lit}"),
            ExprKind::Var(name) => f.write_str(name),
            ExprKind::Target { name, accesses } => {
                write!(f, "${name}")?;
                for access in accesses {
                    match &access.kind {
                        AccessKind::Field(field) => write!(f, "->{field}")?,
                        AccessKind::Index(index) => write!(f, "[{index}]")?,
                    }
                }
                Ok(())
            }
            ExprKind::Index { array, keys } => {
                write!(f, "{array}[")?;
                write_list(f, keys)?;
                f.write_str("]")
            }
            ExprKind::In { keys, array } => {
                f.write_str("([")?;
                write_list(f, keys)?;
                write!(f, "] in {array})")
            }
            ExprKind::Call { name, args } => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::PostInc | UnaryOp::PostDec => write!(f, "({operand}{})", op.symbol()),
                _ => write!(f, "({}{operand})", op.symbol()),
            },
            ExprKind::Binary { op, lhs, rhs } => write!(f, "({lhs} {} {rhs})", op.symbol()),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => write!(f, "({cond} ? {then} : {otherwise})"),
            ExprKind::Assign { op, target, value } => {
                write!(f, "({target} {} {value})", op.symbol())
            }
        }
    }
}

/// `a, b, c`.
fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_tables_round_trip() {
        for (op, symbol, _) in BINARY_OPS {
            assert_eq!(BinaryOp::from_symbol(symbol), Some(op));
            assert_eq!(op.symbol(), symbol);
        }
        assert_eq!(
            AssignOp::from_symbol(".="),
            Some(AssignOp::Compound(BinaryOp::Concat))
        );
        assert_eq!(
            AssignOp::from_symbol("<<="),
            Some(AssignOp::Compound(BinaryOp::Shl))
        );
        assert_eq!(AssignOp::from_symbol("=="), None);
        assert_eq!(AssignOp::from_symbol("<="), None);
        assert_eq!(AssignOp::from_symbol("+"), None);
        for (op, symbol) in ASSIGN_SYMBOLS {
            assert_eq!(AssignOp::Compound(op).symbol(), symbol);
        }
        assert_eq!(AssignOp::Assign.symbol(), "=");
    }

    #[test]
    fn string_literals_print_with_escapes() {
        let lit = Literal::Str("a\"b\\\n\t\r\x01é".to_string());
        assert_eq!(lit.to_string(), r#""a\"b\\\n\t\r\001é""#);
    }
}
