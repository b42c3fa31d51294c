//! The output of `kscope trace list`: one event per line as SYSTEM:EVENT
//! (as `trace-cmd list -e` prints them), tracers on one line, options one
//! per line as the kernel's `trace_options` writes them, and for `-F` a
//! table of the event's fields followed by its print format.

use std::io::{self, Write};

use kscope_traceevent::{ArrayLen, EventFormat, Field, Location};
use serde_json::{Value, json};

/// What `kscope trace list` found; each part is shown when set.
#[derive(Debug, Default)]
pub struct Listing<'a> {
    /// SYSTEM:EVENT names.
    pub events: Option<Vec<String>>,
    /// Tracer names.
    pub tracers: Option<Vec<String>>,
    /// Options and whether each is on.
    pub options: Option<Vec<(String, bool)>>,
    /// One event's system and format.
    pub format: Option<(&'a str, EventFormat<'a>)>,
}

fn field_json(field: &Field<'_>) -> Value {
    let array = match field.array {
        None => Value::Null,
        Some(ArrayLen::Fixed(n)) => json!(n),
        Some(ArrayLen::Open) => json!("open"),
        Some(ArrayLen::Symbolic(s)) => json!(s),
    };
    let location = match field.location {
        Location::Inline => "inline",
        Location::DataLoc => "data_loc",
        Location::RelLoc => "rel_loc",
    };
    json!({
        "name": field.name,
        "type": field.type_name,
        "offset": field.offset,
        "size": field.size,
        "signed": field.signed,
        "array": array,
        "location": location,
    })
}

impl Listing<'_> {
    /// The listing as one JSON document; absent parts are omitted.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        if let Some(events) = &self.events {
            out.insert("events".into(), json!(events));
        }
        if let Some(tracers) = &self.tracers {
            out.insert("tracers".into(), json!(tracers));
        }
        if let Some(options) = &self.options {
            let options: Vec<Value> = options
                .iter()
                .map(|(name, on)| json!({"name": name, "enabled": on}))
                .collect();
            out.insert("options".into(), json!(options));
        }
        if let Some((system, format)) = &self.format {
            out.insert(
                "event".into(),
                json!({
                    "system": system,
                    "name": format.name,
                    "id": format.id,
                    "common_fields": format.common_fields.iter().map(field_json).collect::<Vec<_>>(),
                    "fields": format.fields.iter().map(field_json).collect::<Vec<_>>(),
                    "print_fmt": format.print_fmt,
                }),
            );
        }
        Value::Object(out)
    }
}

fn write_fields(out: &mut impl Write, fields: &[Field<'_>]) -> io::Result<()> {
    for field in fields {
        let prefix = match field.location {
            Location::Inline => "",
            Location::DataLoc => "__data_loc ",
            Location::RelLoc => "__rel_loc ",
        };
        let array = match field.array {
            Some(ArrayLen::Fixed(n)) if field.location == Location::Inline => format!("[{n}]"),
            Some(ArrayLen::Symbolic(s)) => format!("[{s}]"),
            Some(_) if field.location == Location::Inline => "[]".to_string(),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {:>6} {:>5}  {:<6}  {prefix}{} {}{array}",
            field.offset,
            field.size,
            if field.signed { "signed" } else { "" },
            field.type_name,
            field.name
        )?;
    }
    Ok(())
}

/// Writes the listing as text.
pub fn write(out: &mut impl Write, listing: &Listing<'_>) -> io::Result<()> {
    let many = [
        listing.events.is_some(),
        listing.tracers.is_some(),
        listing.options.is_some(),
        listing.format.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count()
        > 1;
    if let Some(events) = &listing.events {
        if many {
            writeln!(out, "events:")?;
        }
        for event in events {
            writeln!(out, "{event}")?;
        }
    }
    if let Some(tracers) = &listing.tracers {
        if many {
            writeln!(out, "\ntracers:")?;
        }
        writeln!(out, "{}", tracers.join(" "))?;
    }
    if let Some(options) = &listing.options {
        if many {
            writeln!(out, "\noptions:")?;
        }
        for (name, on) in options {
            writeln!(out, "{}{name}", if *on { "" } else { "no" })?;
        }
    }
    if let Some((system, format)) = &listing.format {
        writeln!(out, "{system}:{} (id {})", format.name, format.id)?;
        writeln!(out, "  offset  size  sign    field")?;
        write_fields(out, &format.common_fields)?;
        writeln!(out)?;
        write_fields(out, &format.fields)?;
        writeln!(out, "\nprint fmt: {}", format.print_fmt)?;
    }
    Ok(())
}

/// Prints the listing on stdout.
pub fn print(listing: &Listing<'_>) -> io::Result<()> {
    write(&mut io::stdout().lock(), listing)
}
