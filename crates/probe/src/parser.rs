//! The parser: a recursive-descent parser over the [`Lexer`]'s tokens that
//! builds the [`Script`] AST, stopping at the first error. Statements and
//! top-level declarations are read by one function each; binary operators
//! by precedence climbing over the table in [`BinaryOp::precedence`]. In
//! expressions `.` is string concatenation; inside a probe point it
//! separates components, which the parser knows from where it is.

use crate::ast::{
    Access, AccessKind, AssignOp, BinaryOp, Block, Component, Expr, ExprKind, Foreach, Function,
    Global, Literal, Param, Probe, ProbePoint, Script, Sort, SortBy, StatOp, Stmt, StmtKind, Type,
    UnaryOp,
};
use crate::diagnostic::Diagnostic;
use crate::lexer::{Keyword, Lexer, Token, TokenKind};
use crate::source::{SourceFile, Span};

/// How deeply statements and expressions may nest, so that hostile input
/// such as ten thousand `(` is an error rather than a stack overflow. One
/// level of parentheses costs about 15 KiB of stack in a debug build (seven
/// frames), so 64 levels stay within a 2 MiB thread stack; real scripts
/// nest a handful of levels. Each operator of a chain (`a + b + c`) is a
/// level too: the parser loops over a chain, but the tree it makes is as
/// deep as the chain, and the passes after it and its drop recurse on it
/// (a chain of 256 overflowed a test thread's stack in `compile`, one of
/// 1000 the main thread's 8 MiB in `probe -p 3`, both in a debug build).
const MAX_DEPTH: usize = 64;

/// How tightly `KEY in ARRAY` binds, on [`BinaryOp::precedence`]'s
/// scale: between `&` (5) and the comparisons (6 and up), so that
/// `a + 1 in b` tests `a + 1` and `x & k in b` is `x & (k in b)`.
const IN_PRECEDENCE: u8 = 6;

/// Parses a whole script.
pub fn parse(file: &SourceFile) -> Result<Script, Diagnostic> {
    parse_with_args(file, &[])
}

/// Parses a whole script whose `$1`, `@1`... stand for `args`.
pub fn parse_with_args(file: &SourceFile, args: &[String]) -> Result<Script, Diagnostic> {
    let mut parser = Parser::new(&file.text, args)?;
    parser.script()
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    token: Token,
    /// End of the token before `token`, for spans that end there.
    prev_end: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, args: &'a [String]) -> Result<Parser<'a>, Diagnostic> {
        let mut lexer = Lexer::with_args(text, args);
        let token = lexer.next_token()?;
        Ok(Parser {
            lexer,
            token,
            prev_end: 0,
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<Token, Diagnostic> {
        let next = self.lexer.next_token()?;
        let token = std::mem::replace(&mut self.token, next);
        self.prev_end = token.span.end;
        Ok(token)
    }

    fn at(&self, punct: &str) -> bool {
        matches!(self.token.kind, TokenKind::Punct(p) if p == punct)
    }

    fn at_keyword(&self, keyword: Keyword) -> bool {
        self.token.kind == TokenKind::Keyword(keyword)
    }

    /// Consumes `punct` if it is next.
    fn eat(&mut self, punct: &str) -> Result<bool, Diagnostic> {
        if self.at(punct) {
            self.advance()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn error(&self, expected: &str) -> Diagnostic {
        Diagnostic::expected(self.token.span, expected, &self.token.kind.to_string())
    }

    /// Consumes `punct`, or fails saying `expected`.
    fn expect(&mut self, punct: &str, expected: &str) -> Result<Span, Diagnostic> {
        if self.at(punct) {
            return Ok(self.advance()?.span);
        }
        Err(self.error(expected))
    }

    fn ident(&mut self, expected: &str) -> Result<(String, Span), Diagnostic> {
        if let TokenKind::Ident(name) = &self.token.kind {
            let name = name.clone();
            return Ok((name, self.advance()?.span));
        }
        Err(self.error(expected))
    }

    fn enter(&mut self) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Diagnostic::new(
                self.token.span,
                format!(
                    "nested too deeply: expected at most {MAX_DEPTH} levels of statements and expressions"
                ),
                Some(format!("at most {MAX_DEPTH} levels")),
            ));
        }
        Ok(())
    }

    fn script(&mut self) -> Result<Script, Diagnostic> {
        let mut script = Script::default();
        loop {
            match &self.token.kind {
                TokenKind::Eof => {
                    crate::entry::rewrite(&mut script)?;
                    return Ok(script);
                }
                TokenKind::Keyword(Keyword::Probe) => script.probes.push(self.probe()?),
                TokenKind::Keyword(Keyword::Global) => self.globals(&mut script.globals)?,
                TokenKind::Keyword(Keyword::Function) => script.functions.push(self.function()?),
                TokenKind::Punct(";") => {
                    self.advance()?;
                }
                _ => return Err(self.error("'probe', 'global' or 'function'")),
            }
        }
    }

    fn probe(&mut self) -> Result<Probe, Diagnostic> {
        let start = self.advance()?.span;
        let mut points = vec![self.probe_point()?];
        while self.eat(",")? {
            points.push(self.probe_point()?);
        }
        let condition = if self.at_keyword(Keyword::If) {
            self.advance()?;
            Some(self.condition("'if'")?)
        } else {
            None
        };
        if !self.at("{") {
            return Err(self.error("'{' to start the probe body"));
        }
        let body = self.block()?;
        Ok(Probe {
            points,
            condition,
            span: start.to(body.span),
            body,
        })
    }

    fn probe_point(&mut self) -> Result<ProbePoint, Diagnostic> {
        let first = self.component("a probe point")?;
        let mut span = first.span;
        let mut components = vec![first];
        while self.eat(".")? {
            let component = self.component("a probe point component after '.'")?;
            span = span.to(component.span);
            components.push(component);
        }
        Ok(ProbePoint { components, span })
    }

    /// A name made of identifiers, keywords (`return`) and `*` written
    /// without space between them, and an optional `(LITERAL)`.
    fn component(&mut self, expected: &str) -> Result<Component, Diagnostic> {
        let mut name = String::new();
        let mut span = self.token.span;
        loop {
            let adjacent = name.is_empty() || self.token.span.start == span.end;
            let piece = match &self.token.kind {
                TokenKind::Ident(word) => word.clone(),
                TokenKind::Keyword(k) => k.text().to_string(),
                TokenKind::Punct("*") => "*".to_string(),
                _ => break,
            };
            if !adjacent {
                break;
            }
            name.push_str(&piece);
            span = span.to(self.advance()?.span);
        }
        if name.is_empty() {
            return Err(self.error(expected));
        }
        let arg = if self.eat("(")? {
            let lit = match &self.token.kind {
                TokenKind::Str(s) => Literal::Str(s.clone()),
                TokenKind::Int(v) => Literal::Int(*v),
                _ => return Err(self.error("a string or number as the probe point argument")),
            };
            self.advance()?;
            span = span.to(self.expect(")", "')' after the probe point argument")?);
            Some(lit)
        } else {
            None
        };
        Ok(Component { name, arg, span })
    }

    fn globals(&mut self, globals: &mut Vec<Global>) -> Result<(), Diagnostic> {
        self.advance()?;
        loop {
            let (name, mut span) = self.ident("a global variable name")?;
            let mut size = None;
            if self.eat("[")? {
                let TokenKind::Int(n) = self.token.kind else {
                    return Err(self.error("the array's size (a number) after '['"));
                };
                let n = u32::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                    Diagnostic::new(
                        self.token.span,
                        format!("an array's size must be between 1 and {}", u32::MAX),
                        None,
                    )
                })?;
                self.advance()?;
                span = span.to(self.expect("]", "']' after the array's size")?);
                size = Some(n);
            }
            let init = if size.is_none() && self.eat("=")? {
                let (lit, lit_span) = self.literal("a number or string as the initial value")?;
                span = span.to(lit_span);
                Some(lit)
            } else {
                None
            };
            globals.push(Global {
                name,
                init,
                size,
                span,
            });
            if !self.eat(",")? {
                return Ok(());
            }
        }
    }

    /// A literal, or a negated integer literal (`-1`).
    fn literal(&mut self, expected: &str) -> Result<(Literal, Span), Diagnostic> {
        let start = self.token.span;
        let negative = self.eat("-")?;
        let lit = match &self.token.kind {
            TokenKind::Int(v) if negative => Literal::Int(v.wrapping_neg()),
            TokenKind::Int(v) => Literal::Int(*v),
            TokenKind::Str(s) if !negative => Literal::Str(s.clone()),
            _ => return Err(self.error(expected)),
        };
        let end = self.advance()?.span;
        Ok((lit, start.to(end)))
    }

    fn function(&mut self) -> Result<Function, Diagnostic> {
        let start = self.advance()?.span;
        let (name, _) = self.ident("a function name")?;
        let return_type = self.annotation()?;
        self.expect("(", "'(' after the function name")?;
        let mut params = Vec::new();
        if !self.eat(")")? {
            loop {
                let (name, mut span) = self.ident("a parameter name")?;
                let ty = self.annotation()?;
                if ty.is_some() {
                    span = span.to(Span::new(span.start, self.prev_end));
                }
                params.push(Param { name, ty, span });
                if self.eat(")")? {
                    break;
                }
                self.expect(",", "',' or ')' in the parameter list")?;
            }
        }
        if !self.at("{") {
            return Err(self.error("'{' to start the function body"));
        }
        let body = self.block()?;
        Ok(Function {
            name,
            return_type,
            params,
            span: start.to(body.span),
            body,
        })
    }

    /// An optional `:long` or `:string`.
    fn annotation(&mut self) -> Result<Option<Type>, Diagnostic> {
        if !self.eat(":")? {
            return Ok(None);
        }
        let ty = match &self.token.kind {
            TokenKind::Ident(word) if word == "long" => Type::Long,
            TokenKind::Ident(word) if word == "string" => Type::String,
            _ => return Err(self.error("'long' or 'string' after ':'")),
        };
        self.advance()?;
        Ok(Some(ty))
    }

    /// `{ STATEMENTS }`; the current token is `{`.
    fn block(&mut self) -> Result<Block, Diagnostic> {
        let start = self.advance()?.span;
        let mut stmts = Vec::new();
        loop {
            if self.at("}") {
                let end = self.advance()?.span;
                return Ok(Block {
                    stmts,
                    span: start.to(end),
                });
            }
            if self.token.kind == TokenKind::Eof {
                return Err(self.error("'}' to close the block"));
            }
            if !self.eat(";")? {
                stmts.push(self.stmt()?);
            }
        }
    }

    /// `(EXPR)` after `keyword`.
    fn condition(&mut self, keyword: &str) -> Result<Expr, Diagnostic> {
        self.expect("(", &format!("'(' after {keyword}"))?;
        let cond = self.expr()?;
        self.expect(")", "')' after the condition")?;
        Ok(cond)
    }

    /// One statement, and the `;` after it if there is one.
    fn stmt(&mut self) -> Result<Stmt, Diagnostic> {
        self.enter()?;
        let start = self.token.span;
        let kind = self.stmt_kind()?;
        let span = start.to(Span::new(start.start, self.prev_end));
        self.eat(";")?;
        self.depth -= 1;
        Ok(Stmt { kind, span })
    }

    /// The statement itself. Each form with parts has its own function,
    /// which keeps this frame small: statements nest by recursion through it.
    fn stmt_kind(&mut self) -> Result<StmtKind, Diagnostic> {
        let keyword = match &self.token.kind {
            TokenKind::Punct("{") => return Ok(StmtKind::Block(self.block()?)),
            TokenKind::Punct(";") => return Ok(StmtKind::Empty),
            TokenKind::Keyword(k) => *k,
            _ => return Ok(StmtKind::Expr(self.expr()?)),
        };
        let simple = match keyword {
            Keyword::If => return self.if_stmt(),
            Keyword::While => return self.while_stmt(),
            Keyword::For => return self.for_stmt(),
            Keyword::Return => return self.return_stmt(),
            Keyword::Delete => {
                self.advance()?;
                let (name, start) = self.ident("a variable name after 'delete'")?;
                let what = if self.at("[") {
                    self.index(name, start)?
                } else {
                    Expr {
                        kind: ExprKind::Var(name),
                        span: start,
                    }
                };
                return Ok(StmtKind::Delete(what));
            }
            Keyword::Foreach => return self.foreach_stmt(),
            Keyword::Next => StmtKind::Next,
            Keyword::Break => StmtKind::Break,
            Keyword::Continue => StmtKind::Continue,
            Keyword::Else => return Err(self.error("a statement ('else' without 'if')")),
            Keyword::Probe | Keyword::Global | Keyword::Function | Keyword::In | Keyword::Limit => {
                return Err(self.error("a statement or '}'"));
            }
        };
        self.advance()?;
        Ok(simple)
    }

    fn if_stmt(&mut self) -> Result<StmtKind, Diagnostic> {
        self.advance()?;
        let cond = self.condition("'if'")?;
        let then = Box::new(self.stmt()?);
        let otherwise = if self.at_keyword(Keyword::Else) {
            self.advance()?;
            Some(Box::new(self.stmt()?))
        } else {
            None
        };
        Ok(StmtKind::If {
            cond,
            then,
            otherwise,
        })
    }

    fn while_stmt(&mut self) -> Result<StmtKind, Diagnostic> {
        self.advance()?;
        let cond = self.condition("'while'")?;
        Ok(StmtKind::While {
            cond,
            body: Box::new(self.stmt()?),
        })
    }

    fn for_stmt(&mut self) -> Result<StmtKind, Diagnostic> {
        self.advance()?;
        self.expect("(", "'(' after 'for'")?;
        let init = self.optional_expr(";")?;
        self.expect(";", "';' after the loop's initializer")?;
        let cond = self.optional_expr(";")?;
        self.expect(";", "';' after the loop's condition")?;
        let step = self.optional_expr(")")?;
        self.expect(")", "')' after the loop's step")?;
        Ok(StmtKind::For {
            init,
            cond,
            step,
            body: Box::new(self.stmt()?),
        })
    }

    /// `foreach ([VALUE =] KEYS in ARRAY[SORT] [limit N]) BODY`, where
    /// KEYS is `k` or `[k1, k2...]` and any one key, or the array, may be
    /// followed by `+` or `-` to sort on it.
    fn foreach_stmt(&mut self) -> Result<StmtKind, Diagnostic> {
        self.advance()?;
        self.expect("(", "'(' after 'foreach'")?;
        let mut value = None;
        let mut keys = Vec::new();
        let mut sort = None;
        let bracketed = self.eat("[")?;
        if !bracketed {
            let (name, _) = self.ident("a key variable or '[' after 'foreach ('")?;
            if self.eat("=")? {
                value = Some(name);
                self.expect("[", "'[' before the keys after 'VALUE ='")?;
            } else {
                self.sort_mark(&mut sort, SortBy::Key(0))?;
                keys.push(name);
            }
        }
        if bracketed || value.is_some() {
            loop {
                let (name, _) = self.ident("a key variable")?;
                self.sort_mark(&mut sort, SortBy::Key(keys.len()))?;
                keys.push(name);
                if !self.eat(",")? {
                    break;
                }
            }
            self.expect("]", "',' or ']' after the key variables")?;
        }
        if !self.at_keyword(Keyword::In) {
            return Err(self.error("'in' after the key variables"));
        }
        self.advance()?;
        let (array, array_span) = self.ident("the array's name after 'in'")?;
        let mut by = SortBy::Value;
        if let TokenKind::Ident(word) = &self.token.kind
            && let Some(op) = StatOp::from_name(word)
        {
            by = SortBy::Aggregate(op);
            self.advance()?;
        }
        self.sort_mark(&mut sort, by)?;
        if matches!(by, SortBy::Aggregate(_))
            && !matches!(
                sort,
                Some(Sort {
                    by: SortBy::Aggregate(_),
                    ..
                })
            )
        {
            return Err(self.error("'+' or '-' after the aggregate to sort on"));
        }
        let limit = if self.at_keyword(Keyword::Limit) {
            self.advance()?;
            Some(self.expr()?)
        } else {
            None
        };
        self.expect(")", "')' to close the foreach")?;
        let body = self.stmt()?;
        Ok(StmtKind::Foreach(Box::new(Foreach {
            value,
            keys,
            array,
            array_span,
            sort,
            limit,
            body,
        })))
    }

    /// A `+` or `-` after a foreach key or array: sort on `by`. Only one
    /// may be given.
    fn sort_mark(&mut self, sort: &mut Option<Sort>, by: SortBy) -> Result<(), Diagnostic> {
        let descending = if self.at("-") {
            true
        } else if self.at("+") {
            false
        } else {
            return Ok(());
        };
        if sort.is_some() {
            return Err(Diagnostic::new(
                self.token.span,
                "a foreach sorts on one thing: a second '+' or '-' is not allowed",
                None,
            ));
        }
        self.advance()?;
        *sort = Some(Sort { by, descending });
        Ok(())
    }

    fn return_stmt(&mut self) -> Result<StmtKind, Diagnostic> {
        self.advance()?;
        if self.at(";") || self.at("}") || self.token.kind == TokenKind::Eof {
            return Ok(StmtKind::Return(None));
        }
        Ok(StmtKind::Return(Some(self.expr()?)))
    }

    fn optional_expr(&mut self, end: &str) -> Result<Option<Expr>, Diagnostic> {
        if self.at(end) {
            return Ok(None);
        }
        Ok(Some(self.expr()?))
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        self.enter()?;
        let expr = self.assignment()?;
        self.depth -= 1;
        Ok(expr)
    }

    /// `TERNARY [ASSIGN-OP ASSIGNMENT]`: right-associative.
    fn assignment(&mut self) -> Result<Expr, Diagnostic> {
        let target = self.ternary()?;
        let op = match &self.token.kind {
            TokenKind::Punct(p) => AssignOp::from_symbol(p),
            _ => None,
        };
        let Some(op) = op else {
            return Ok(target);
        };
        require_lvalue(&target, "on the left of", op.symbol())?;
        self.advance()?;
        let value = self.expr()?;
        Ok(Expr {
            span: target.span.to(value.span),
            kind: ExprKind::Assign {
                op,
                target: Box::new(target),
                value: Box::new(value),
            },
        })
    }

    /// `BINARY [? EXPR : TERNARY]`: right-associative.
    fn ternary(&mut self) -> Result<Expr, Diagnostic> {
        let cond = self.binary(1)?;
        if !self.eat("?")? {
            return Ok(cond);
        }
        let then = self.expr()?;
        self.expect(":", "':' in the conditional expression")?;
        self.enter()?;
        let otherwise = self.ternary()?;
        self.depth -= 1;
        Ok(Expr {
            span: cond.span.to(otherwise.span),
            kind: ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
        })
    }

    /// Binary operators binding at least as tightly as `min`, left to right.
    fn binary(&mut self, min: u8) -> Result<Expr, Diagnostic> {
        let depth = self.depth;
        let mut lhs = self.unary()?;
        loop {
            // `KEY in ARRAY` binds as SystemTap's parser has it: looser
            // than the comparisons, tighter than `&`.
            if self.at_keyword(Keyword::In) && IN_PRECEDENCE >= min {
                self.advance()?;
                let (array, end) = self.ident("an array's name after 'in'")?;
                lhs = Expr {
                    span: lhs.span.to(end),
                    kind: ExprKind::In {
                        keys: vec![lhs],
                        array,
                    },
                };
                continue;
            }
            let op = match &self.token.kind {
                TokenKind::Punct(p) => BinaryOp::from_symbol(p),
                _ => None,
            };
            let Some(op) = op.filter(|op| op.precedence() >= min) else {
                self.depth = depth;
                return Ok(lhs);
            };
            self.advance()?;
            // Each operator puts the left side one level down.
            self.enter()?;
            let rhs = self.binary(op.precedence() + 1)?;
            lhs = Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            };
        }
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        let op = match &self.token.kind {
            TokenKind::Punct("+") => UnaryOp::Plus,
            TokenKind::Punct("-") => UnaryOp::Neg,
            TokenKind::Punct("!") => UnaryOp::Not,
            TokenKind::Punct("~") => UnaryOp::BitNot,
            TokenKind::Punct("++") => UnaryOp::PreInc,
            TokenKind::Punct("--") => UnaryOp::PreDec,
            _ => return self.postfix(),
        };
        let start = self.advance()?.span;
        self.enter()?;
        let operand = self.unary()?;
        self.depth -= 1;
        if matches!(op, UnaryOp::PreInc | UnaryOp::PreDec) {
            require_lvalue(&operand, "after", op.symbol())?;
        }
        Ok(Expr {
            span: start.to(operand.span),
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
        })
    }

    fn postfix(&mut self) -> Result<Expr, Diagnostic> {
        let mut expr = self.primary()?;
        loop {
            let op = if self.at("++") {
                UnaryOp::PostInc
            } else if self.at("--") {
                UnaryOp::PostDec
            } else {
                return Ok(expr);
            };
            require_lvalue(&expr, "before", op.symbol())?;
            let end = self.advance()?.span;
            expr = Expr {
                span: expr.span.to(end),
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(expr),
                },
            };
        }
    }

    fn primary(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.token.span;
        let kind = match &self.token.kind {
            TokenKind::Int(v) => ExprKind::Literal(Literal::Int(*v)),
            TokenKind::Str(s) => ExprKind::Literal(Literal::Str(s.clone())),
            TokenKind::Ident(name) => {
                let name = name.clone();
                self.advance()?;
                if self.at("(") {
                    return self.call(name, start);
                }
                if self.at("[") {
                    return self.index(name, start);
                }
                return Ok(Expr {
                    kind: ExprKind::Var(name),
                    span: start,
                });
            }
            TokenKind::Target(name) => {
                let name = name.clone();
                self.advance()?;
                return self.target(name, start);
            }
            TokenKind::Punct("[") => {
                self.advance()?;
                let keys = self.expr_list("]", "',' or ']' after the keys")?;
                if !self.at_keyword(Keyword::In) {
                    return Err(self.error("'in' after '[KEYS]'"));
                }
                self.advance()?;
                let (array, end) = self.ident("an array's name after 'in'")?;
                return Ok(Expr {
                    kind: ExprKind::In { keys, array },
                    span: start.to(end),
                });
            }
            TokenKind::Punct("(") => {
                self.advance()?;
                let inner = self.expr()?;
                let end = self.expect(")", "')' to close the parenthesis")?;
                return Ok(Expr {
                    kind: inner.kind,
                    span: start.to(end),
                });
            }
            _ => return Err(self.error("an expression")),
        };
        self.advance()?;
        Ok(Expr { kind, span: start })
    }

    /// `NAME[KEYS]`; the current token is `[`.
    fn index(&mut self, array: String, start: Span) -> Result<Expr, Diagnostic> {
        self.advance()?;
        let keys = self.expr_list("]", "',' or ']' after the array's keys")?;
        Ok(Expr {
            kind: ExprKind::Index { array, keys },
            span: start.to(Span::new(start.start, self.prev_end)),
        })
    }

    /// One or more expressions separated by `,`, then `close`.
    fn expr_list(&mut self, close: &str, expected: &str) -> Result<Vec<Expr>, Diagnostic> {
        let mut items = vec![self.expr()?];
        while self.eat(",")? {
            items.push(self.expr()?);
        }
        self.expect(close, expected)?;
        Ok(items)
    }

    /// `NAME(ARGS)`; the current token is `(`.
    fn call(&mut self, name: String, start: Span) -> Result<Expr, Diagnostic> {
        self.advance()?;
        let mut args = Vec::new();
        if !self.at(")") {
            loop {
                args.push(self.expr()?);
                if !self.eat(",")? {
                    break;
                }
            }
        }
        let end = self.expect(")", "',' or ')' in the argument list")?;
        Ok(Expr {
            kind: ExprKind::Call { name, args },
            span: start.to(end),
        })
    }

    /// The `->field` and `[index]` chain after `$name`.
    fn target(&mut self, name: String, start: Span) -> Result<Expr, Diagnostic> {
        let mut accesses = Vec::new();
        loop {
            let access_start = self.token.span;
            let kind = if self.eat("->")? {
                // Kernel fields may be spelled like keywords (`next`).
                let field = match &self.token.kind {
                    TokenKind::Ident(word) => word.clone(),
                    TokenKind::Keyword(k) => k.text().to_string(),
                    _ => return Err(self.error("a field name after '->'")),
                };
                self.advance()?;
                AccessKind::Field(field)
            } else if self.eat("[")? {
                let index = self.expr()?;
                self.expect("]", "']' after the index")?;
                AccessKind::Index(Box::new(index))
            } else {
                let span = start.to(Span::new(start.start, self.prev_end));
                return Ok(Expr {
                    kind: ExprKind::Target { name, accesses },
                    span,
                });
            };
            accesses.push(Access {
                kind,
                span: access_start.to(Span::new(access_start.start, self.prev_end)),
            });
        }
    }
}

/// Fails unless `expr` can be assigned to: a variable or a target variable.
/// The error says `expected a variable PLACE 'SYMBOL'`.
fn require_lvalue(expr: &Expr, place: &str, symbol: &str) -> Result<(), Diagnostic> {
    match expr.kind {
        ExprKind::Var(_) | ExprKind::Target { .. } | ExprKind::Index { .. } => Ok(()),
        _ => {
            let expected = format!("a variable {place} '{symbol}'");
            Err(Diagnostic::new(
                expr.span,
                format!("expected {expected}, found {expr}"),
                Some(expected),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str) -> Script {
        parse(&SourceFile::new("t.stp", text)).unwrap_or_else(|d| panic!("{text:?}: {}", d.message))
    }

    fn body(text: &str) -> Vec<Stmt> {
        let mut s = script(&format!("probe begin {{ {text} }}"));
        s.probes.remove(0).body.stmts
    }

    /// The expression `text`, printed fully parenthesized.
    fn expr(text: &str) -> String {
        let stmts = body(text);
        assert_eq!(stmts.len(), 1, "{text:?}");
        match &stmts[0].kind {
            StmtKind::Expr(e) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    fn error(text: &str) -> (String, (usize, usize)) {
        let file = SourceFile::new("t.stp", text);
        let d = parse(&file).expect_err(text);
        (d.message, file.line_col(d.span.start))
    }

    fn points(text: &str) -> Vec<String> {
        script(&format!("probe {text} {{}}")).probes[0]
            .points
            .iter()
            .map(|p| {
                p.components
                    .iter()
                    .map(|c| match &c.arg {
                        Some(arg) => format!("{}({arg})", c.name),
                        None => c.name.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }

    #[test]
    fn every_binary_operator_binds_by_its_precedence() {
        // Each pair: the looser operator on the outside, both ways round.
        let levels: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["|"],
            &["^"],
            &["&"],
            &["==", "!="],
            &["<", "<=", ">", ">="],
            &["<<", ">>"],
            &["."],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        for (i, loose_ops) in levels.iter().enumerate() {
            for tight_ops in &levels[i + 1..] {
                for loose in *loose_ops {
                    for tight in *tight_ops {
                        assert_eq!(
                            expr(&format!("a {loose} b {tight} c")),
                            format!("(a {loose} (b {tight} c))")
                        );
                        assert_eq!(
                            expr(&format!("a {tight} b {loose} c")),
                            format!("((a {tight} b) {loose} c)")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_binary_operator_is_left_associative() {
        for op in [
            "||", "&&", "|", "^", "&", "==", "!=", "<", "<=", ">", ">=", "<<", ">>", ".", "+", "-",
            "*", "/", "%",
        ] {
            assert_eq!(
                expr(&format!("a {op} b {op} c")),
                format!("((a {op} b) {op} c)")
            );
        }
        assert_eq!(expr("a - b + c"), "((a - b) + c)");
        assert_eq!(expr("a == b != c"), "((a == b) != c)");
    }

    #[test]
    fn assignments_are_right_associative_and_bind_loosest() {
        for op in [
            "=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "^=", "|=", ".=",
        ] {
            assert_eq!(
                expr(&format!("a {op} b {op} c || d")),
                format!("(a {op} (b {op} (c || d)))")
            );
        }
        assert_eq!(expr("x = c ? a : b"), "(x = (c ? a : b))");
    }

    #[test]
    fn ternary_is_right_associative_above_assignment() {
        assert_eq!(expr("a || b ? c : d"), "((a || b) ? c : d)");
        assert_eq!(expr("a ? b : c ? d : e"), "(a ? b : (c ? d : e))");
        assert_eq!(expr("a ? b = 1 : c"), "(a ? (b = 1) : c)");
    }

    #[test]
    fn unary_operators_bind_tighter_than_binary_ones() {
        assert_eq!(expr("-a * !b"), "((-a) * (!b))");
        assert_eq!(expr("~a . -1"), "((~a) . (-1))");
        assert_eq!(expr("- -a"), "(-(-a))");
        assert_eq!(expr("+a - +b"), "((+a) - (+b))");
        assert_eq!(expr("!a == ~b"), "((!a) == (~b))");
    }

    #[test]
    fn increments_come_before_and_after() {
        assert_eq!(expr("++a"), "(++a)");
        assert_eq!(expr("--a"), "(--a)");
        assert_eq!(expr("a++"), "(a++)");
        assert_eq!(expr("a--"), "(a--)");
        assert_eq!(expr("-a++"), "(-(a++))");
        assert_eq!(expr("a++ + ++b"), "((a++) + (++b))");
        assert_eq!(expr("a+++b"), "((a++) + b)");
        assert_eq!(expr("$p->count++"), "($p->count++)");
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_eq!(expr("(a + b) * c"), "((a + b) * c)");
        assert_eq!(expr("a * (b . c)"), "(a * (b . c))");
        assert_eq!(expr("((a))"), "a");
    }

    #[test]
    fn dot_concatenates_in_expressions() {
        assert_eq!(expr("a . b"), "(a . b)");
        assert_eq!(expr("a.b.c"), "((a . b) . c)");
        assert_eq!(
            expr(r#"execname() . ":" . pid()"#),
            r#"((execname() . ":") . pid())"#
        );
        assert_eq!(expr("s .= \"x\""), "(s .= \"x\")");
        assert_eq!(expr("$a->b . $c"), "($a->b . $c)");
        assert_eq!(expr("a . b + c"), "(a . (b + c))");
        assert_eq!(expr("a << b . c"), "(a << (b . c))");
    }

    #[test]
    fn target_variables_take_field_and_index_chains() {
        assert_eq!(expr("$var->field[2]"), "$var->field[2]");
        assert_eq!(
            expr("$task->mm->pgd[i + 1]->x"),
            "$task->mm->pgd[(i + 1)]->x"
        );
        assert_eq!(expr("$list->next->prev"), "$list->next->prev");
        let stmts = body("$var->field[2]");
        let StmtKind::Expr(Expr {
            kind: ExprKind::Target { name, accesses },
            span,
        }) = &stmts[0].kind
        else {
            panic!("{stmts:?}")
        };
        assert_eq!(name, "var");
        assert_eq!(accesses[0].kind, AccessKind::Field("field".into()));
        assert_eq!(accesses[0].span, Span::new(18, 25));
        assert_eq!(accesses[1].span, Span::new(25, 28));
        assert_eq!(*span, Span::new(14, 28));
    }

    #[test]
    fn calls_take_any_number_of_arguments() {
        assert_eq!(expr("exit()"), "exit()");
        assert_eq!(expr("f(a, b + 1, g(c))"), "f(a, (b + 1), g(c))");
        assert_eq!(
            expr(r#"printf("%s\n", user_string($filename))"#),
            r#"printf("%s\n", user_string($filename))"#
        );
    }

    #[test]
    fn literals_in_every_form() {
        assert_eq!(expr("0x10 + 010 + 10"), "((16 + 8) + 10)");
        assert_eq!(expr(r#""a\tb""#), r#""a\tb""#);
    }

    #[test]
    fn spans_cover_the_text_of_each_node() {
        let text = "probe begin { x = a + 1; }";
        let s = script(text);
        let stmt = &s.probes[0].body.stmts[0];
        assert_eq!(&text[stmt.span.start..stmt.span.end], "x = a + 1");
        let StmtKind::Expr(Expr {
            kind: ExprKind::Assign { value, .. },
            ..
        }) = &stmt.kind
        else {
            panic!()
        };
        assert_eq!(&text[value.span.start..value.span.end], "a + 1");
        assert_eq!(s.probes[0].span, Span::new(0, text.len()));
        assert_eq!(s.probes[0].body.span, Span::new(12, text.len()));
        let paren = "probe begin { (a) }";
        let s = script(paren);
        assert_eq!(s.probes[0].body.stmts[0].span, Span::new(14, 17));
    }

    #[test]
    fn probe_points_are_dotted_components_with_arguments() {
        assert_eq!(points("begin, end, error"), ["begin", "end", "error"]);
        assert_eq!(points("timer.ms(100)"), ["timer/ms(100)"]);
        assert_eq!(points("timer.profile"), ["timer/profile"]);
        assert_eq!(points("syscall.read.return"), ["syscall/read/return"]);
        assert_eq!(points("syscall.open*"), ["syscall/open*"]);
        assert_eq!(points("syscall.*"), ["syscall/*"]);
        assert_eq!(points("sys*.*_at"), ["sys*/*_at"]);
        assert_eq!(
            points(r#"kernel.trace("sched:sched_switch")"#),
            [r#"kernel/trace("sched:sched_switch")"#]
        );
        assert_eq!(
            points(r#"kernel.function("vfs_read").return"#),
            [r#"kernel/function("vfs_read")/return"#]
        );
        assert_eq!(
            points(r#"module("ext4").function("ext4_*")"#),
            [r#"module("ext4")/function("ext4_*")"#]
        );
        assert_eq!(
            points(r#"process("/bin/ls").function("main"), vfs.read"#),
            [r#"process("/bin/ls")/function("main")"#, "vfs/read"]
        );
        let s = script("probe timer.ms(100) {}");
        assert_eq!(s.probes[0].points[0].span, Span::new(6, 19));
        assert_eq!(s.probes[0].points[0].components[1].span, Span::new(12, 19));
        assert_eq!(
            s.probes[0].points[0].components[1].arg,
            Some(Literal::Int(100))
        );
    }

    #[test]
    fn globs_separated_by_space_are_not_one_component() {
        assert_eq!(
            error("probe syscall.open * {}").0,
            "expected '{' to start the probe body, found '*'"
        );
    }

    #[test]
    fn probes_may_have_a_condition() {
        let s = script("global on = 1\nprobe syscall.read if (on && pid() != 0) { next }");
        assert_eq!(
            s.probes[0]
                .condition
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("(on && (pid() != 0))")
        );
        assert_eq!(s.probes[0].body.stmts[0].kind, StmtKind::Next);
    }

    #[test]
    fn globals_with_and_without_initializers() {
        let s = script("global a, b = 10, c = \"x\", d = -5\nglobal e;");
        let globals: Vec<_> = s
            .globals
            .iter()
            .map(|g| (g.name.as_str(), g.init.clone()))
            .collect();
        assert_eq!(
            globals,
            [
                ("a", None),
                ("b", Some(Literal::Int(10))),
                ("c", Some(Literal::Str("x".into()))),
                ("d", Some(Literal::Int(-5))),
                ("e", None),
            ]
        );
        assert_eq!(s.globals[3].span, Span::new(27, 33));
    }

    #[test]
    fn functions_with_annotated_arguments() {
        let s = script(
            "function add:long(a:long, b, s:string) { return a + b }\nfunction f() { return; }",
        );
        let f = &s.functions[0];
        assert_eq!(f.name, "add");
        assert_eq!(f.return_type, Some(Type::Long));
        let params: Vec<_> = f.params.iter().map(|p| (p.name.as_str(), p.ty)).collect();
        assert_eq!(
            params,
            [
                ("a", Some(Type::Long)),
                ("b", None),
                ("s", Some(Type::String))
            ]
        );
        assert_eq!(f.params[0].span, Span::new(18, 24));
        match &f.body.stmts[0].kind {
            StmtKind::Return(Some(e)) => assert_eq!(e.to_string(), "(a + b)"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.functions[1].params, []);
        assert_eq!(s.functions[1].body.stmts[0].kind, StmtKind::Return(None));
    }

    #[test]
    fn every_statement_form() {
        let stmts = body(
            "{ a = 1 } if (a) b = 1; else { b = 2 } if (c) d() while (i < 3) i++ \
             for (i = 0; i < 3; i++) { continue; break } for (;;) next; next return 1 delete x ; \
             while (f()) ;",
        );
        let forms: Vec<_> = stmts
            .iter()
            .map(|s| match &s.kind {
                StmtKind::Block(b) => format!("block {}", b.stmts.len()),
                StmtKind::Expr(e) => format!("expr {e}"),
                StmtKind::If {
                    cond, otherwise, ..
                } => format!("if {cond} else {}", otherwise.is_some()),
                StmtKind::While { cond, body } => match &body.kind {
                    StmtKind::Expr(e) => format!("while {cond} {e}"),
                    other => format!("while {cond} {other:?}"),
                },
                StmtKind::For {
                    init, cond, step, ..
                } => format!(
                    "for {} {} {}",
                    init.is_some(),
                    cond.is_some(),
                    step.is_some()
                ),
                StmtKind::Next => "next".into(),
                StmtKind::Return(e) => format!("return {}", e.is_some()),
                StmtKind::Break => "break".into(),
                StmtKind::Continue => "continue".into(),
                StmtKind::Delete(what) => format!("delete {what}"),
                StmtKind::Foreach(each) => format!("foreach {:?}", each.keys),
                StmtKind::Empty => "empty".into(),
            })
            .collect();
        assert_eq!(
            forms,
            [
                "block 1",
                "if a else true",
                "if c else false",
                "while (i < 3) (i++)",
                "for true true true",
                "for false false false",
                "next",
                "return true",
                "delete x",
                "while f() Empty",
            ]
        );
    }

    #[test]
    fn arrays_statistics_and_foreach_in_every_form() {
        assert_eq!(expr("a[1]"), "a[1]");
        assert_eq!(expr("a[k, \"x\"] += 2"), "(a[k, \"x\"] += 2)");
        assert_eq!(expr("a[execname()]++"), "(a[execname()]++)");
        assert_eq!(expr("[k, 2] in a"), "([k, 2] in a)");
        assert_eq!(expr("!(k in a)"), "(!([k] in a))");
        assert_eq!(expr("1 + 1 in a"), "([(1 + 1)] in a)");
        assert_eq!(expr("!k in a"), "([(!k)] in a)");
        assert_eq!(expr("x & k in a"), "(x & ([k] in a))");
        assert_eq!(
            expr("\"a\" . \"b\" in names"),
            "([(\"a\" . \"b\")] in names)"
        );
        assert_eq!(expr("s <<< x - 1"), "(s <<< (x - 1))");
        assert_eq!(expr("t[tid()] <<< 1"), "(t[tid()] <<< 1)");
        assert_eq!(expr("@count(s[k]) + @avg(s)"), "(@count(s[k]) + @avg(s))");
        let each = |text: &str| match &body(text)[0].kind {
            StmtKind::Foreach(each) => (**each).clone(),
            other => panic!("{other:?}"),
        };
        let f = each("foreach (k in a) x = 1");
        assert_eq!(
            (f.keys, f.value, f.sort, f.limit),
            (vec!["k".into()], None, None, None)
        );
        let f = each("foreach ([p, n-] in a limit 5) {}");
        assert_eq!(f.keys, ["p", "n"]);
        assert_eq!(
            f.sort,
            Some(Sort {
                by: SortBy::Key(1),
                descending: true
            })
        );
        assert_eq!(f.limit.map(|l| l.to_string()), Some("5".into()));
        let f = each("foreach (v = [k] in a+) {}");
        assert_eq!(f.value.as_deref(), Some("v"));
        assert_eq!(
            f.sort,
            Some(Sort {
                by: SortBy::Value,
                descending: false
            })
        );
        let f = each("foreach ([k] in s @sum-) {}");
        assert_eq!(
            f.sort,
            Some(Sort {
                by: SortBy::Aggregate(StatOp::Sum),
                descending: true
            })
        );
        let s = script("global a[100], b probe begin { delete a[1, 2] delete b }");
        assert_eq!(s.globals[0].size, Some(100));
        assert_eq!(s.globals[1].size, None);
        assert_eq!(
            error("probe begin { foreach ([a+, b-] in x) {} }").0,
            "a foreach sorts on one thing: a second '+' or '-' is not allowed"
        );
        assert_eq!(
            error("probe begin { foreach (k a) {} }").0,
            "expected 'in' after the key variables, found identifier 'a'"
        );
    }

    #[test]
    fn entry_values_are_stored_per_thread_by_a_probe_on_the_entry() {
        let s = script("probe syscall.read.return, syscall.write.return { x = @entry($fd) + 1 }");
        assert_eq!(s.globals.len(), 1);
        assert_eq!(s.globals[0].name, "@entry1");
        assert_eq!(s.probes.len(), 2);
        let StmtKind::Expr(body) = &s.probes[0].body.stmts[0].kind else {
            panic!()
        };
        assert_eq!(body.to_string(), "(x = (@entry1[tid()] + 1))");
        let StmtKind::Expr(store) = &s.probes[1].body.stmts[0].kind else {
            panic!()
        };
        assert_eq!(store.to_string(), "(@entry1[tid()] = $fd)");
        let entry_points: Vec<Vec<&str>> = s.probes[1]
            .points
            .iter()
            .map(|p| p.components.iter().map(|c| c.name.as_str()).collect())
            .collect();
        assert_eq!(entry_points, [["syscall", "read"], ["syscall", "write"]]);
        assert!(
            error("probe syscall.read { x = @entry($fd) }")
                .0
                .contains("@entry(...) is for return probes")
        );
        assert!(
            error("function f() { return @entry(1) } probe begin { f() }")
                .0
                .contains("not in a function")
        );
    }

    #[test]
    fn semicolons_are_optional_between_statements() {
        let stmts = body("a = 1 b = 2; ; c() d()");
        let texts: Vec<_> = stmts.iter().map(|s| format!("{:?}", s.kind)).collect();
        assert_eq!(texts.len(), 4, "{texts:?}");
        let s = script(";probe begin {};;global a;");
        assert_eq!((s.probes.len(), s.globals.len()), (1, 1));
    }

    #[test]
    fn a_postfix_operator_takes_a_crement_from_the_next_line() {
        // Semicolons are optional, so `--` after `x++` continues the
        // expression rather than starting `--y`; the parser says so.
        assert_eq!(
            error("probe a { x++\n --y }").0,
            "expected a variable before '--', found (x++)"
        );
        assert_eq!(body("x++; --y").len(), 2);
        // Likewise a leading `-` continues the previous line's expression.
        assert_eq!(expr("x = 1\n -y"), "(x = (1 - y))");
    }

    #[test]
    fn dangling_else_goes_to_the_nearest_if() {
        let stmts = body("if (a) if (b) x() else y()");
        let StmtKind::If {
            then, otherwise, ..
        } = &stmts[0].kind
        else {
            panic!()
        };
        assert!(otherwise.is_none());
        assert!(matches!(
            &then.kind,
            StmtKind::If {
                otherwise: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn comments_may_sit_anywhere() {
        let s = script(
            "# head\n/* a */ global /* b */ n // c\n = /* d */ 1 # e\n\
             probe /* f */ syscall /* g */ . /* h */ read /* i */ ( /* j */ 1 /* k */ ) // l\n\
             { /* m */ n /* n */ += /* o */ 1 # p\n /* q */ } /* r */ \n\
             function /* s */ f /* t */ ( /* u */ a /* v */ : /* w */ long ) { } # end",
        );
        assert_eq!(s.globals[0].init, Some(Literal::Int(1)));
        assert_eq!(
            s.probes[0].points[0].components[1].arg,
            Some(Literal::Int(1))
        );
        assert_eq!(s.functions[0].params[0].ty, Some(Type::Long));
        match &s.probes[0].body.stmts[0].kind {
            StmtKind::Expr(e) => assert_eq!(e.to_string(), "(n += 1)"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keywords_may_name_fields_and_probe_components() {
        assert_eq!(expr("$p->next"), "$p->next");
        assert_eq!(
            points("kernel.function(\"f\").return"),
            ["kernel/function(\"f\")/return"]
        );
    }

    #[test]
    fn malformed_scripts_fail_at_the_first_error() {
        let cases: &[(&str, &str, (usize, usize))] = &[
            (
                "x",
                "expected 'probe', 'global' or 'function', found identifier 'x'",
                (1, 1),
            ),
            ("probe {}", "expected a probe point, found '{'", (1, 7)),
            ("probe", "expected a probe point, found end of file", (1, 6)),
            (
                "probe a. {}",
                "expected a probe point component after '.', found '{'",
                (1, 10),
            ),
            (
                "probe a(b) {}",
                "expected a string or number as the probe point argument, found identifier 'b'",
                (1, 9),
            ),
            (
                "probe a(1 {}",
                "expected ')' after the probe point argument, found '{'",
                (1, 11),
            ),
            (
                "probe a if x {}",
                "expected '(' after 'if', found identifier 'x'",
                (1, 12),
            ),
            (
                "probe a if (x {}",
                "expected ')' after the condition, found '{'",
                (1, 15),
            ),
            (
                "probe a next",
                "expected '{' to start the probe body, found 'next'",
                (1, 9),
            ),
            (
                "probe a {\n  x = 1\n",
                "expected '}' to close the block, found end of file",
                (2, 8),
            ),
            (
                "probe a { if (x) }",
                "expected an expression, found '}'",
                (1, 18),
            ),
            (
                "probe a { else }",
                "expected a statement ('else' without 'if'), found 'else'",
                (1, 11),
            ),
            (
                "probe a { probe }",
                "expected a statement or '}', found 'probe'",
                (1, 11),
            ),
            (
                "probe a { while x }",
                "expected '(' after 'while', found identifier 'x'",
                (1, 17),
            ),
            (
                "probe a { for i }",
                "expected '(' after 'for', found identifier 'i'",
                (1, 15),
            ),
            (
                "probe a { for (i = 0 i) x() }",
                "expected ';' after the loop's initializer, found identifier 'i'",
                (1, 22),
            ),
            (
                "probe a { for (; i x) }",
                "expected ';' after the loop's condition, found identifier 'x'",
                (1, 20),
            ),
            (
                "probe a { for (;; i x) }",
                "expected ')' after the loop's step, found identifier 'x'",
                (1, 21),
            ),
            (
                "probe a { delete 1 }",
                "expected a variable name after 'delete', found number 1",
                (1, 18),
            ),
            (
                "probe a { (1 }",
                "expected ')' to close the parenthesis, found '}'",
                (1, 14),
            ),
            (
                "probe a { x ? y }",
                "expected ':' in the conditional expression, found '}'",
                (1, 17),
            ),
            (
                "probe a { f(1 2) }",
                "expected ',' or ')' in the argument list, found number 2",
                (1, 15),
            ),
            (
                "probe a { $x-> }",
                "expected a field name after '->', found '}'",
                (1, 16),
            ),
            (
                "probe a { $x[1 }",
                "expected ']' after the index, found '}'",
                (1, 16),
            ),
            (
                "probe a { 1 = 2 }",
                "expected a variable on the left of '=', found 1",
                (1, 11),
            ),
            (
                "probe a { f() += 2 }",
                "expected a variable on the left of '+=', found f()",
                (1, 11),
            ),
            (
                "probe a { ++1 }",
                "expected a variable after '++', found 1",
                (1, 13),
            ),
            (
                "probe a { (a + b)-- }",
                "expected a variable before '--', found (a + b)",
                (1, 11),
            ),
            (
                "global",
                "expected a global variable name, found end of file",
                (1, 7),
            ),
            (
                "global a = b",
                "expected a number or string as the initial value, found identifier 'b'",
                (1, 12),
            ),
            (
                "global a = -\"s\"",
                "expected a number or string as the initial value, found a string",
                (1, 13),
            ),
            ("function (", "expected a function name, found '('", (1, 10)),
            (
                "function f {",
                "expected '(' after the function name, found '{'",
                (1, 12),
            ),
            (
                "function f(1)",
                "expected a parameter name, found number 1",
                (1, 12),
            ),
            (
                "function f(a b)",
                "expected ',' or ')' in the parameter list, found identifier 'b'",
                (1, 14),
            ),
            (
                "function f(a:int)",
                "expected 'long' or 'string' after ':', found identifier 'int'",
                (1, 14),
            ),
            (
                "function f() return",
                "expected '{' to start the function body, found 'return'",
                (1, 14),
            ),
            (
                "probe a { x = \"abc }",
                "unterminated string: expected '\"' before the end of the line",
                (1, 15),
            ),
        ];
        for (text, message, at) in cases {
            assert_eq!(error(text), (message.to_string(), *at), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for text in [
            format!("probe a {{ x = {}1 }}", "(".repeat(10_000)),
            format!("probe a {{ {} }}", "{".repeat(10_000)),
            format!("probe a {{ x = {}1 }}", "-".repeat(10_000)),
            format!("probe a {{ x = {}1 }}", "a ? ".repeat(10_000)),
            format!("probe a {{ {} }}", "if (1) ".repeat(10_000)),
        ] {
            let (message, _) = error(&text);
            assert_eq!(
                message,
                "nested too deeply: expected at most 64 levels of statements and expressions"
            );
        }
        // Chains count too: the tree is as deep as the chain.
        let long = format!("probe a {{ x = 1{} }}", " + 1".repeat(50));
        assert_eq!(script(&long).probes.len(), 1);
        for op in ["+", "||", "."] {
            let text = format!("probe a {{ x = 1{} }}", format!(" {op} 1").repeat(100_000));
            assert_eq!(
                error(&text).0,
                "nested too deeply: expected at most 64 levels of statements and expressions"
            );
        }
    }

    #[test]
    fn lexer_errors_stop_parsing_where_they_are() {
        assert_eq!(
            error("probe a { x = 1 }\nprobe b { y = @ }"),
            ("unexpected character '@'".to_string(), (2, 15))
        );
        // A parse error before a bad character is the one reported.
        assert_eq!(error("probe a { ( } @").1, (1, 13));
    }
}
