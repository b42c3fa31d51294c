//! The arguments of a trace_printk() as `bprint` records hold them: the
//! kernel's vbin_printf() packs each argument of the format in turn into
//! the record's u32 buffer, and bstr_printf() reads them back the same
//! way at print time (lib/vsprintf.c). The packing:
//!
//! - `*` widths and precisions, `%d`, `%u`, `%x` without a length: 4 bytes,
//!   aligned to 4;
//! - `%hd` and kin: 2 bytes aligned to 2; `%hhd` and `%c`: 1 byte;
//! - `%ld`, `%lld`, `%zu`, `%td` (8 bytes on 64-bit): two u32 halves,
//!   aligned to 4 only;
//! - `%s`: the string itself, NUL-terminated, not aligned;
//! - `%pS`, `%ps`, `%pF`, `%pf`, `%px`, `%pK`, `%pe` and a bare `%p`: the
//!   pointer, 8 bytes aligned to 4; any other `%p` extension is formatted
//!   when the record is written and stored as a string.

use std::borrow::Cow;

use super::eval::{Env, EvalError, Value, conversion};
use super::printf::{Piece, pieces};

/// Reads the packed arguments of `buf` in the order of `format`.
struct Packed<'b> {
    buf: &'b [u8],
    at: usize,
}

impl<'b> Packed<'b> {
    fn take(&mut self, size: usize, align: usize) -> Result<&'b [u8], EvalError> {
        let start = self.at.next_multiple_of(align);
        let bytes = self.buf.get(start..start + size).ok_or_else(|| {
            EvalError(format!(
                "the trace_printk arguments end at byte {}",
                self.buf.len()
            ))
        })?;
        self.at = start + size;
        Ok(bytes)
    }

    fn int(&mut self, size: usize, align: usize) -> Result<u64, EvalError> {
        let bytes = self.take(size, align)?;
        let mut word = [0u8; 8];
        word[..size].copy_from_slice(bytes);
        Ok(u64::from_le_bytes(word))
    }

    fn string(&mut self) -> Result<&'b [u8], EvalError> {
        let rest = self.buf.get(self.at..).unwrap_or(&[]);
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| EvalError("a trace_printk string without its NUL".into()))?;
        self.at += end + 1;
        Ok(&rest[..end])
    }
}

/// Formats a `bprint` record's `format` with the arguments packed in `buf`.
pub fn format_packed(
    format: &str,
    buf: &[u8],
    env: &Env<'_>,
    out: &mut String,
) -> Result<(), EvalError> {
    let mut packed = Packed { buf, at: 0 };
    for piece in pieces(format) {
        let mut spec = match piece {
            Piece::Text(text) => {
                out.push_str(&text);
                continue;
            }
            Piece::Spec(spec) => spec,
        };
        if spec.width == Some(None) {
            spec.width = Some(Some(packed.int(4, 4)? as u32 as i32 as usize));
        }
        if spec.precision == Some(None) {
            spec.precision = Some(Some(packed.int(4, 4)? as usize));
        }
        let value = match spec.conversion {
            's' => Value::Text(Cow::Borrowed(packed.string()?)),
            'c' => Value::Int(packed.int(1, 1)?, false),
            'p' => {
                let dereferenced = !matches!(
                    spec.pointer_ext.chars().next(),
                    None | Some('S' | 's' | 'F' | 'f' | 'x' | 'K' | 'e')
                );
                if dereferenced {
                    // Formatted when written: print the text as it is.
                    out.push_str(&String::from_utf8_lossy(packed.string()?));
                    continue;
                }
                Value::Ptr(packed.int(8, 4)?, 1)
            }
            _ => {
                let (size, align) = match spec.length {
                    "hh" => (1, 1),
                    "h" => (2, 2),
                    "" => (4, 4),
                    _ => (8, 4),
                };
                Value::Int(
                    packed.int(size, align)?,
                    matches!(spec.conversion, 'd' | 'i'),
                )
            }
        };
        conversion(&spec, &value, env, out)?;
    }
    Ok(())
}

/// Prints `address` with a `%p` conversion (`%ps` for a symbol).
pub fn format_packed_pointer(
    spec: &super::printf::Spec,
    address: u64,
    env: &Env<'_>,
    out: &mut String,
) -> Result<(), EvalError> {
    conversion(spec, &Value::Ptr(address, 1), env, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_with_the_kernels_packing() {
        // "%s=%d %hhu %lld %s|" with "ab", -2, 7, 1 << 40, "z"
        let mut buf = Vec::new();
        buf.extend_from_slice(b"ab\0");
        buf.extend_from_slice(&[0]); // align the int to 4
        buf.extend_from_slice(&(-2i32).to_le_bytes());
        buf.push(7);
        buf.extend_from_slice(&[0, 0, 0]); // the long long aligns to 4, not 8
        buf.extend_from_slice(&(1u64 << 40).to_le_bytes());
        buf.extend_from_slice(b"z\0");
        let mut out = String::new();
        format_packed("%s=%d %hhu %lld %s|", &buf, &Env::default(), &mut out).unwrap();
        assert_eq!(out, "ab=-2 7 1099511627776 z|");
    }

    #[test]
    fn pointers_to_code_are_values_and_other_pointers_are_text() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
        buf.extend_from_slice(b"10.0.0.1\0");
        let mut out = String::new();
        format_packed("%ps %pI4", &buf, &Env::default(), &mut out).unwrap();
        assert_eq!(out, "0xffffffff81000000 10.0.0.1");
    }

    #[test]
    fn short_buffers_are_errors() {
        let mut out = String::new();
        assert!(format_packed("%d", &[1, 2], &Env::default(), &mut out).is_err());
        assert!(format_packed("%s", b"no nul", &Env::default(), &mut out).is_err());
    }
}
