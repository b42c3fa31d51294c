//! From a record's bytes to its text, for every event of a set: the
//! event is found by the record's `common_type`, its print fmt evaluated,
//! and when that fails its raw fields are shown instead.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::Write;

use crate::common::common_type;
use crate::format::EventFormat;
use crate::printfmt::{Env, Formatter, render_raw};

/// Formats records of a set of events.
#[derive(Debug, Clone)]
pub struct Renderer<'c> {
    /// Each event with its print fmt, parsed the first time a record of
    /// the event is formatted: a trace file holds the formats of every
    /// event of the kernel (thousands), a trace a few of them.
    events: Vec<(&'c EventFormat<'c>, OnceCell<Option<Formatter<'c>>>)>,
    /// By id (a record's `common_type`, 16 bits): 1 + the index of its
    /// event in `events`, 0 for none. An array, not a hash: the lookup
    /// is made for every record.
    by_id: Vec<u32>,
}

impl<'c> Renderer<'c> {
    /// A renderer for `formats`; each print fmt is parsed once, when it is
    /// first needed. Of two formats with one id, the last counts.
    pub fn new(formats: &'c [EventFormat<'c>]) -> Renderer<'c> {
        let mut events: Vec<(&'c EventFormat<'c>, OnceCell<Option<Formatter<'c>>>)> = Vec::new();
        let mut by_id: Vec<u32> = Vec::new();
        let mut wide: HashMap<u32, usize> = HashMap::new();
        for format in formats {
            let slot = match u16::try_from(format.id) {
                Ok(id) => {
                    let id = usize::from(id);
                    if by_id.len() <= id {
                        by_id.resize(id + 1, 0);
                    }
                    &mut by_id[id]
                }
                // No record can name it; it is kept for `unresolved`.
                Err(_) => {
                    let index = *wide.entry(format.id).or_insert(events.len());
                    if index == events.len() {
                        events.push((format, OnceCell::new()));
                    } else {
                        events[index] = (format, OnceCell::new());
                    }
                    continue;
                }
            };
            if *slot == 0 {
                events.push((format, OnceCell::new()));
                *slot = events.len() as u32;
            } else {
                events[*slot as usize - 1] = (format, OnceCell::new());
            }
        }
        Renderer { events, by_id }
    }

    /// The entry of a record's event, by its `common_type`.
    fn entry(
        &self,
        data: &[u8],
    ) -> Option<&(&'c EventFormat<'c>, OnceCell<Option<Formatter<'c>>>)> {
        let id = common_type(data)?;
        let slot = *self.by_id.get(usize::from(id))?;
        self.events.get((slot as usize).checked_sub(1)?)
    }

    fn formatter<'r>(
        format: &'c EventFormat<'c>,
        cell: &'r OnceCell<Option<Formatter<'c>>>,
    ) -> Option<&'r Formatter<'c>> {
        cell.get_or_init(|| Formatter::new(format).ok()).as_ref()
    }

    /// Events of the set whose print fmt reads identifiers `env` cannot
    /// resolve, with those identifiers.
    pub fn unresolved(&self, env: &Env<'_>) -> Vec<(&'c str, Vec<&'c str>)> {
        let mut out: Vec<(&'c str, Vec<&'c str>)> = self
            .events
            .iter()
            .filter_map(|(format, cell)| {
                let names = Self::formatter(format, cell)?.unresolved_names(env);
                (!names.is_empty()).then_some((format.name, names))
            })
            .collect();
        out.sort();
        out
    }

    /// The event a record belongs to, by its `common_type`.
    pub fn event_of(&self, data: &[u8]) -> Option<&'c EventFormat<'c>> {
        self.entry(data).map(|(format, _)| *format)
    }

    /// Appends the record's text to `out` and returns its event, or
    /// `None` (nothing written) when no event of the set has its id. The
    /// text is the print fmt's; `name=value` fields when the print fmt
    /// cannot be evaluated for this record.
    pub fn render(
        &self,
        data: &[u8],
        env: &Env<'_>,
        out: &mut String,
    ) -> Option<&'c EventFormat<'c>> {
        let (format, cell) = self.entry(data)?;
        if format.name == "bprint" && render_bprint(format, data, env, out).is_some() {
            return Some(format);
        }
        let done = Self::formatter(format, cell).is_some_and(|f| f.render(data, env, out).is_ok());
        if !done {
            render_raw(format, data, out);
        }
        Some(format)
    }
}

impl<'c> Renderer<'c> {
    /// Appends the record as the kernel's `trace` file shows it after the
    /// timestamp: `NAME: TEXT` for tracepoints, and the kernel's own form
    /// for syscall events, which do not use their print fmt there:
    /// `sys_openat(dfd: 0xffffff9c, ..., mode: 0)` and `sys_openat -> 0x3`.
    pub fn render_kernel_style(
        &self,
        data: &[u8],
        env: &Env<'_>,
        out: &mut String,
    ) -> Option<&'c EventFormat<'c>> {
        let format = self.event_of(data)?;
        if let Some(call) = format.name.strip_prefix("sys_enter_") {
            out.push_str("sys_");
            out.push_str(call);
            out.push('(');
            for (i, field) in format.fields.iter().skip(1).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let value = read_unsigned(data, field.offset as usize, field.size as usize);
                // The kernel writes small values in decimal, the rest in hex.
                if value < 10 {
                    let _ = write!(out, "{}: {value}", field.name);
                } else {
                    let _ = write!(out, "{}: 0x{value:x}", field.name);
                }
            }
            out.push(')');
            return Some(format);
        }
        if let Some(call) = format.name.strip_prefix("sys_exit_") {
            let ret = format.field("ret").map_or(0, |f| {
                read_unsigned(data, f.offset as usize, f.size as usize)
            });
            let _ = write!(out, "sys_{call} -> 0x{ret:x}");
            return Some(format);
        }
        out.push_str(format.name);
        out.push_str(": ");
        self.render(data, env, out)
    }
}

/// A trace_printk() record: `ip` as a symbol, then its format (found in
/// printk_formats by address) applied to the packed arguments in `buf`.
/// `None`, with nothing written, when the format is not known.
fn render_bprint(
    format: &EventFormat<'_>,
    data: &[u8],
    env: &Env<'_>,
    out: &mut String,
) -> Option<()> {
    let read = |name: &str| {
        let field = format.field(name)?;
        Some(read_unsigned(
            data,
            field.offset as usize,
            field.size as usize,
        ))
    };
    let text = env.strings?.get(read("fmt")?)?;
    let buf = data.get(format.field("buf")?.offset as usize..)?;
    let mut line = String::new();
    let ip = crate::printfmt::Spec {
        conversion: 'p',
        pointer_ext: "s".into(),
        ..Default::default()
    };
    crate::printfmt::format_packed_pointer(&ip, read("ip")?, env, &mut line).ok()?;
    line.push_str(": ");
    crate::printfmt::format_packed(text, buf, env, &mut line).ok()?;
    out.push_str(&line);
    Some(())
}

/// An unsigned little-endian integer of 1 to 8 bytes; 0 past the end.
fn read_unsigned(data: &[u8], offset: usize, size: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let Some(bytes) = data.get(offset..offset + size.min(8)) {
        buf[..bytes.len()].copy_from_slice(bytes);
    }
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: &str = "name: tick\nID: 9\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:int n;\toffset:8;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"n=%d\", REC->n\n";

    #[test]
    fn records_are_rendered_by_their_id_and_unknown_ids_are_none() {
        let formats = [EventFormat::parse(FORMAT).unwrap()];
        let renderer = Renderer::new(&formats);
        let mut data = vec![0u8; 12];
        data[0] = 9;
        data[8] = 5;
        let mut out = String::new();
        assert_eq!(
            renderer
                .render(&data, &Env::default(), &mut out)
                .map(|f| f.name),
            Some("tick")
        );
        assert_eq!(out, "n=5");
        data[0] = 10;
        out.clear();
        assert!(renderer.render(&data, &Env::default(), &mut out).is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn syscall_events_print_in_the_kernels_own_form() {
        let enter = "name: sys_enter_openat\nID: 20\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:umode_t mode;\toffset:24;\tsize:8;\tsigned:0;\n\
\n\
print fmt: \"dfd: 0x%08lx, mode: 0x%08lx\", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->mode))\n";
        let exit = "name: sys_exit_openat\nID: 21\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n\
\n\
print fmt: \"0x%lx\", REC->ret\n";
        let formats = [
            EventFormat::parse(enter).unwrap(),
            EventFormat::parse(exit).unwrap(),
        ];
        let renderer = Renderer::new(&formats);
        let mut data = vec![0u8; 32];
        data[0] = 20;
        data[16..24].copy_from_slice(&0xffff_ff9cu64.to_le_bytes());
        data[24..32].copy_from_slice(&4u64.to_le_bytes());
        let mut out = String::new();
        renderer.render_kernel_style(&data, &Env::default(), &mut out);
        assert_eq!(out, "sys_openat(dfd: 0xffffff9c, mode: 4)");
        data[0] = 21;
        data[16..24].copy_from_slice(&3u64.to_le_bytes());
        out.clear();
        renderer.render_kernel_style(&data, &Env::default(), &mut out);
        assert_eq!(out, "sys_openat -> 0x3");
    }

    #[test]
    fn a_trace_printk_record_is_formatted_from_printk_formats() {
        let bprint = "name: bprint\nID: 6\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:const char * fmt;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:u32 buf[];\toffset:24;\tsize:0;\tsigned:0;\n\
\n\
print fmt: \"%ps: %s\", (void *)REC->ip, REC->fmt\n";
        let formats = [EventFormat::parse(bprint).unwrap()];
        let renderer = Renderer::new(&formats);
        let strings = crate::PrintkFormats::parse("0xffffffff82000000 : \"count=%d name=%s\\n\"\n");
        let env = Env {
            strings: Some(&strings),
            ..Env::default()
        };
        let mut data = vec![0u8; 24];
        data[0] = 6;
        data[8..16].copy_from_slice(&0x1234u64.to_le_bytes());
        data[16..24].copy_from_slice(&0xffff_ffff_8200_0000u64.to_le_bytes());
        data.extend_from_slice(&42u32.to_le_bytes());
        data.extend_from_slice(b"kscope\0");
        let mut out = String::new();
        renderer.render(&data, &env, &mut out);
        assert_eq!(out, "0x1234: count=42 name=kscope\n");
        // Without printk_formats the format's address is all there is.
        out.clear();
        renderer.render(&data, &Env::default(), &mut out);
        assert_eq!(out, "0x1234: 0xffffffff82000000");
    }

    #[test]
    fn a_print_fmt_that_fails_falls_back_to_raw_fields() {
        let text = FORMAT.replace("\"n=%d\", REC->n", "\"%s\", no_such_helper(REC->n)");
        let formats = [EventFormat::parse(&text).unwrap()];
        let renderer = Renderer::new(&formats);
        let mut data = vec![0u8; 12];
        data[0] = 9;
        data[8] = 7;
        let mut out = String::new();
        renderer.render(&data, &Env::default(), &mut out);
        assert_eq!(out, "n=7");
    }
}
