//! A `%` conversion of a print fmt applied to one evaluated value: the
//! integer and string conversions, and the kernel's `%p` extensions
//! (symbols, IPv4/IPv6 and socket addresses, MAC, UUID, bitmaps, hex
//! dumps).

use std::fmt::Write;

use super::{Dialect, Env, EvalError, Value, array_bytes, as_int, bitmask, cstr, fail, read_int};
use crate::printfmt::printf::{self, Spec};

pub(crate) fn conversion(
    spec: &Spec,
    value: &Value<'_>,
    env: &Env<'_>,
    out: &mut String,
) -> Result<(), EvalError> {
    match spec.conversion {
        'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c' => {
            let (bits, _) = as_int(value, "an integer conversion")?;
            if env.dialect == Dialect::Libtraceevent
                && spec.alternate
                && spec.cut(bits, false).0 == 0
            {
                // glibc prints `%#x` of 0 as "0".
                let plain = Spec {
                    alternate: false,
                    ..spec.clone()
                };
                plain.integer(out, bits);
            } else {
                spec.integer(out, bits);
            }
        }
        's' => match value {
            Value::Text(text) => spec.string(out, &String::from_utf8_lossy(text)),
            Value::Array(bytes, _, _) => spec.string(out, &String::from_utf8_lossy(cstr(bytes))),
            // A pointer: a string the kernel published in printk_formats,
            // else its address.
            Value::Int(bits, _) | Value::Ptr(bits, _) => {
                match env.strings.and_then(|s| s.get(*bits)) {
                    Some(text) => spec.string(out, text),
                    None => spec.string(out, &format!("0x{bits:x}")),
                }
            }
        },
        'p' => pointer(spec, value, env, out)?,
        other => return fail(format!("conversion %{other} is not supported")),
    }
    Ok(())
}

fn pointer(
    spec: &Spec,
    value: &Value<'_>,
    env: &Env<'_>,
    out: &mut String,
) -> Result<(), EvalError> {
    let ext = spec.pointer_ext.as_str();
    let first = ext.chars().next();
    match (first, value) {
        (Some('S' | 's' | 'B' | 'F' | 'f'), Value::Int(address, _) | Value::Ptr(address, _)) => {
            let text = match env.symbols.symbol(*address) {
                Some(sym) if first == Some('s') || first == Some('f') => sym.name.to_string(),
                Some(sym) if env.dialect == Dialect::Libtraceevent => {
                    format!("{}+0x{:x}", sym.name, sym.offset)
                }
                Some(sym) => {
                    let mut t = format!("{}+0x{:x}/0x{:x}", sym.name, sym.offset, sym.size);
                    if let Some(module) = sym.module {
                        let _ = write!(t, " [{module}]");
                    }
                    t
                }
                None => format!("0x{address:x}"),
            };
            spec.string(out, &text);
        }
        (Some('I' | 'i'), _) => {
            let bytes = array_bytes(value, "%pI")?;
            match ext.get(1..2) {
                Some("4") => printf::ipv4(out, &bytes, first == Some('i')),
                Some("6") => printf::ipv6(out, &bytes, ext),
                Some("S") => sockaddr(out, &bytes, ext),
                _ => return fail(format!("%p{ext} is not supported")),
            }
        }
        (Some('M' | 'm'), _) => printf::mac(out, &array_bytes(value, "%pM")?, ext),
        (Some('U'), _) => printf::uuid(out, &array_bytes(value, "%pU")?, ext),
        (Some('b'), _) => {
            let bytes = array_bytes(value, "%pb")?;
            let bits = spec
                .width
                .flatten()
                .unwrap_or(bytes.len() * 8)
                .min(bytes.len() * 8);
            if ext.starts_with("bl") {
                bitmap_list(out, &bytes, bits);
            } else {
                out.push_str(&bitmask(&bytes[..bits.div_ceil(8).min(bytes.len())]));
            }
        }
        (Some('h'), _) => {
            let bytes = array_bytes(value, "%ph")?;
            let len = spec.width.flatten().unwrap_or(bytes.len()).min(bytes.len());
            printf::hex_bytes(out, &bytes[..len], ext);
        }
        (_, Value::Int(address, _) | Value::Ptr(address, _))
            if env.dialect == Dialect::Libtraceevent =>
        {
            let text = match address {
                0 => "(nil)".to_string(),
                a => format!("0x{a:x}"),
            };
            spec.string(out, &text);
        }
        (_, Value::Int(address, _) | Value::Ptr(address, _)) => {
            let _ = write!(out, "{address:016x}");
        }
        (_, Value::Text(text)) => out.push_str(&String::from_utf8_lossy(text)),
        _ => return fail(format!("%p{ext} of an array is not supported")),
    }
    Ok(())
}

/// `%*pbl`: the set bits as ranges, `0-3,8,10-11`.
pub(super) fn bitmap_list(out: &mut String, bytes: &[u8], bits: usize) {
    let set = |i: usize| bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
    let mut first = true;
    let mut i = 0;
    while i < bits {
        if !set(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < bits && set(i + 1) {
            i += 1;
        }
        if !first {
            out.push(',');
        }
        first = false;
        if start == i {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}-{i}");
        }
        i += 1;
    }
}

/// `%pIS`: a struct sockaddr (family in host order, then port and address
/// in network order); `p` adds the port, `c` compresses IPv6.
fn sockaddr(out: &mut String, bytes: &[u8], ext: &str) {
    let family = read_int(bytes.get(..2).unwrap_or(&[]), false);
    let port = bytes
        .get(2..4)
        .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
    let with_port = ext.contains('p');
    match family {
        2 => {
            printf::ipv4(out, bytes.get(4..8).unwrap_or(&[]), false);
            if with_port {
                let _ = write!(out, ":{port}");
            }
        }
        10 => {
            let addr = bytes.get(8..24).unwrap_or(&[]);
            let style = if ext.contains('c') { "I6c" } else { "I6" };
            if with_port {
                out.push('[');
            }
            printf::ipv6(out, addr, style);
            if with_port {
                let _ = write!(out, "]:{port}");
            }
        }
        _ => out.push_str("(invalid address)"),
    }
}
