//! Raw fields (`trace report -R`): each field of a record as
//! `name=value`, by libtraceevent's rules, as `trace-cmd report -R`
//! prints them.

use kscope_traceevent::EventFormat;

/// The fields of a record as trace-cmd's `-R` prints them (libtraceevent's
/// rules): ` name=value` each; a field the print fmt prints alone (perhaps
/// cast) with that conversion, `0x` first when the format's text before
/// it ends so; else char arrays as text, other arrays as `ARRAY[..]` of
/// hex bytes, pointers as `0x%llx`, signed fields as `%d`/`%2d`/`%1d`/
/// `%lld` by size (a 4-byte `long` as `0x%x`), unsigned ones as `%llu`
/// (a `long` as `0x%llx`).
pub(crate) fn raw_fields(format: &EventFormat<'_>, record: &[u8], out: &mut String) {
    use kscope_traceevent::printfmt::FieldValue;
    use std::fmt::Write as _;
    let specs = raw_specs(format);
    for (name, value) in kscope_traceevent::printfmt::field_values(format, record) {
        let Some(field) = format.field(name) else {
            continue;
        };
        let _ = write!(out, " {name}=");
        let bits = match &value {
            FieldValue::Signed(n) => Some(*n as u64),
            FieldValue::Unsigned(n) => Some(*n),
            _ => None,
        };
        if field.array.is_none()
            && let Some(bits) = bits
            && let Some((_, spec, has_0x)) = specs.iter().find(|(n, _, _)| n == name)
            && "diuxXoc".contains(spec.conversion)
        {
            if *has_0x {
                out.push_str("0x");
            }
            spec.integer(out, bits);
            continue;
        }
        let long = matches!(
            field.type_name.trim(),
            "long" | "unsigned long" | "long int" | "unsigned long int"
        );
        let _ = match value {
            FieldValue::Text(t) => write!(out, "{t}"),
            FieldValue::Bytes(b) => {
                // A char or u8 array whose bytes up to the first NUL are
                // printable is text, as libtraceevent decides.
                let stringy = field.type_name.contains("char") || field.type_name.contains("u8");
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                if stringy && b[..end].iter().all(|c| (0x20..0x7f).contains(c)) {
                    write!(out, "{}", String::from_utf8_lossy(&b[..end]))
                } else {
                    let items: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                    write!(out, "ARRAY[{}]", items.join(", "))
                }
            }
            FieldValue::Numbers(n) => {
                // Every byte of the array, as libtraceevent dumps it.
                let raw = record
                    .get(field.offset as usize..(field.offset + field.size) as usize)
                    .filter(|_| field.location == kscope_traceevent::Location::Inline);
                let items: Vec<String> = match raw {
                    Some(bytes) => bytes.iter().map(|x| format!("{x:02x}")).collect(),
                    None => n.iter().map(|x| format!("{x:x}")).collect(),
                };
                write!(out, "ARRAY[{}]", items.join(", "))
            }
            _ if field.type_name.contains('*') => write!(out, "0x{:x}", bits.unwrap_or(0)),
            FieldValue::Signed(n) => match field.size {
                4 if long => write!(out, "0x{:x}", n as i32),
                4 => write!(out, "{}", n as i32),
                2 => write!(out, "{:2}", n as i16),
                1 => write!(out, "{}", n as i8),
                _ => write!(out, "{n}"),
            },
            FieldValue::Unsigned(n) if long => write!(out, "0x{n:x}"),
            FieldValue::Unsigned(n) => write!(out, "{n}"),
            FieldValue::Unreadable => write!(out, "?"),
        };
    }
}

/// The fields the print fmt of `format` prints alone (`REC->f`, perhaps
/// cast): each with its conversion and whether the text before it ends in
/// `0x`. Cached per thread and event.
fn raw_specs(format: &EventFormat<'_>) -> std::rc::Rc<RawSpecs> {
    use kscope_traceevent::printfmt::{Expr, Piece, PrintFmt, pieces};
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<u32, std::rc::Rc<RawSpecs>>> =
            Default::default();
    }
    CACHE.with(|cache| {
        cache
            .borrow_mut()
            .entry(format.id)
            .or_insert_with(|| {
                let mut specs = Vec::new();
                if let Ok(fmt) = PrintFmt::parse(format.print_fmt) {
                    let mut args = fmt.args.iter();
                    let mut has_0x = false;
                    for piece in pieces(&fmt.format) {
                        match piece {
                            Piece::Text(text) => has_0x = text.len() > 1 && text.ends_with("0x"),
                            Piece::Spec(spec) => {
                                let Some(mut arg) = args.next() else { break };
                                while let Expr::Cast(_, inner) = arg {
                                    arg = inner;
                                }
                                if let Expr::Field(name) = arg {
                                    specs.push((name.to_string(), spec, has_0x));
                                }
                                has_0x = false;
                            }
                        }
                    }
                }
                std::rc::Rc::new(specs)
            })
            .clone()
    })
}

/// Per field printed alone by a print fmt: its name, conversion, and
/// whether `0x` precedes it.
type RawSpecs = Vec<(String, kscope_traceevent::printfmt::Spec, bool)>;
