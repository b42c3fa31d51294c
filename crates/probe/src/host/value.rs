//! The values a host probe computes with: longs, which wrap as BPF's
//! 64-bit arithmetic does, and strings, which hold at most
//! [`STR`]` - 1` bytes as the BPF side's slots do, cut where they would
//! grow longer.

use std::cmp::Ordering;

use crate::ast::BinaryOp;
use crate::check::Ty;
use crate::codegen::STR;

/// A value of the script: a long or a string's bytes (no NUL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A signed 64-bit integer.
    Long(i64),
    /// A string, at most `STR - 1` bytes.
    Str(Vec<u8>),
    /// A stack value ([`crate::codegen::stack_value`]) from the BPF side:
    /// kept, compared and used as a key as a long, printed as a stack.
    Stack(i64),
}

/// The most bytes a string holds, its NUL not counted.
pub(super) const MAX_LEN: usize = STR as usize - 1;

impl Value {
    /// A string of `bytes`, cut at their first NUL and at [`MAX_LEN`].
    pub fn string(bytes: &[u8]) -> Value {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Value::Str(bytes[..end.min(MAX_LEN)].to_vec())
    }

    /// The value a variable of type `ty` starts with: 0 or "".
    pub(super) fn zero(ty: Ty) -> Value {
        match ty {
            Ty::Str => Value::Str(Vec::new()),
            Ty::Stack => Value::Stack(0),
            Ty::Long | Ty::Void => Value::Long(0),
        }
    }

    /// The long, or 0 for a string (which the checker rules out).
    pub fn long(&self) -> i64 {
        match self {
            Value::Long(n) | Value::Stack(n) => *n,
            Value::Str(_) => 0,
        }
    }

    /// The string's bytes, or none for a long (which the checker rules
    /// out).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Value::Str(s) => s,
            Value::Long(_) | Value::Stack(_) => &[],
        }
    }

    /// Whether the value counts as true: a long that is not 0.
    pub(super) fn truth(&self) -> bool {
        self.long() != 0
    }

    /// `self . other`, cut to [`MAX_LEN`] bytes.
    pub(super) fn concat(&self, other: &Value) -> Value {
        let mut s = self.bytes().to_vec();
        s.extend_from_slice(other.bytes());
        s.truncate(MAX_LEN);
        Value::Str(s)
    }

    /// The order of two values of one type: longs by number, strings by
    /// their bytes (unsigned), as the BPF side's comparison does.
    pub(super) fn order(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            _ => self.long().cmp(&other.long()),
        }
    }
}

/// What a binary operation on longs did: a result, or a division by 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    /// The result.
    Value(i64),
    /// `/` or `%` by 0: the runtime error "division by 0".
    DivisionByZero,
}

/// `a op b` on longs, as the generated BPF computes it: wrapping `+ - *`,
/// shifts by the count modulo 64 (`>>` arithmetic), C's signed `/` and
/// `%` (truncating; the remainder has the dividend's sign), comparisons
/// giving 1 or 0. `&&` and `||` are not here: they short-circuit.
pub(super) fn arith(op: BinaryOp, a: i64, b: i64) -> Arith {
    let bool_long = |c: bool| i64::from(c);
    Arith::Value(match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div if b == 0 => return Arith::DivisionByZero,
        BinaryOp::Rem if b == 0 => return Arith::DivisionByZero,
        BinaryOp::Div => a.wrapping_div(b),
        BinaryOp::Rem => a.wrapping_rem(b),
        BinaryOp::Shl => a.wrapping_shl(b as u32),
        BinaryOp::Shr => a.wrapping_shr(b as u32),
        BinaryOp::BitAnd => a & b,
        BinaryOp::BitOr => a | b,
        BinaryOp::BitXor => a ^ b,
        BinaryOp::Lt => bool_long(a < b),
        BinaryOp::Le => bool_long(a <= b),
        BinaryOp::Gt => bool_long(a > b),
        BinaryOp::Ge => bool_long(a >= b),
        BinaryOp::Eq => bool_long(a == b),
        BinaryOp::Ne => bool_long(a != b),
        BinaryOp::And => bool_long(a != 0 && b != 0),
        BinaryOp::Or => bool_long(a != 0 || b != 0),
        BinaryOp::Concat => 0,
    })
}

/// A comparison of two values of one type, as 1 or 0.
pub(super) fn compare(op: BinaryOp, a: &Value, b: &Value) -> i64 {
    let o = a.order(b);
    i64::from(match op {
        BinaryOp::Lt => o.is_lt(),
        BinaryOp::Le => o.is_le(),
        BinaryOp::Gt => o.is_gt(),
        BinaryOp::Ge => o.is_ge(),
        BinaryOp::Eq => o.is_eq(),
        _ => o.is_ne(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_is_cs_and_by_zero_is_an_error() {
        assert_eq!(arith(BinaryOp::Div, -7, 2), Arith::Value(-3));
        assert_eq!(arith(BinaryOp::Rem, -7, 2), Arith::Value(-1));
        assert_eq!(arith(BinaryOp::Rem, 7, -2), Arith::Value(1));
        assert_eq!(arith(BinaryOp::Div, i64::MIN, -1), Arith::Value(i64::MIN));
        assert_eq!(arith(BinaryOp::Rem, i64::MIN, -1), Arith::Value(0));
        assert_eq!(arith(BinaryOp::Div, 1, 0), Arith::DivisionByZero);
        assert_eq!(arith(BinaryOp::Rem, 1, 0), Arith::DivisionByZero);
    }

    #[test]
    fn longs_wrap_and_shift_as_bpf_does() {
        assert_eq!(arith(BinaryOp::Add, i64::MAX, 1), Arith::Value(i64::MIN));
        assert_eq!(arith(BinaryOp::Mul, i64::MAX, 2), Arith::Value(-2));
        assert_eq!(arith(BinaryOp::Shr, -16, 2), Arith::Value(-4));
        assert_eq!(arith(BinaryOp::Shl, 1, 65), Arith::Value(2));
    }

    #[test]
    fn strings_are_cut_and_compared_by_bytes() {
        let long = Value::string(&[b'x'; 200]);
        assert_eq!(long.bytes().len(), 127);
        assert_eq!(long.concat(&Value::string(b"y")).bytes().len(), 127);
        assert_eq!(Value::string(b"ab\0cd"), Value::Str(b"ab".to_vec()));
        let (a, b) = (Value::string(b"abc"), Value::string(b"abd"));
        assert_eq!(compare(BinaryOp::Lt, &a, &b), 1);
        assert_eq!(compare(BinaryOp::Eq, &a, &a), 1);
        assert_eq!(compare(BinaryOp::Gt, &Value::string(b"\xff"), &a), 1);
    }
}
