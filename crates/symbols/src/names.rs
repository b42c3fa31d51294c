//! Function names as the source spells them: a function's DWARF name
//! qualified by the namespaces and types it is declared in
//! (`std::panicking::panic_handler::{closure#0}`, `ns::Class::method`), as
//! debuggers print them. Demangled linkage names say something else for
//! Rust (the crate a symbol was emitted in, `__rustc::rust_begin_unwind`
//! for `std::panicking::panic_handler`) and add C++ parameter lists.
//!
//! DWARF has no parent links, so each unit is walked once, when a lookup
//! first lands in it, to list its scopes: a scope's children follow it in
//! the section, so a scope covers the offsets up to its next sibling.

use std::collections::HashMap;
use std::ops::Range;

use gimli::{AttributeValue, Reader as _, UnitOffset, UnitRef};

use crate::Reader;

/// How many `DW_AT_abstract_origin`/`DW_AT_specification` links a name
/// lookup follows (a concrete instance, its abstract instance, the
/// declaration).
const MAX_LINKS: usize = 8;

/// One named scope of a unit.
struct Scope {
    /// The offsets (in the unit) of the scope's DIE and its children.
    range: Range<usize>,
    name: String,
}

/// The scopes of every unit walked so far, by the unit's offset in
/// `.debug_info`.
#[derive(Default)]
pub(crate) struct Scopes {
    by_unit: HashMap<usize, Vec<Scope>>,
}

impl Scopes {
    /// The qualified name of the function whose DIE (a subprogram or an
    /// inlined subroutine) is at `die` of `unit`; `None` when its name or
    /// declaration is not in this unit.
    pub(crate) fn qualified_name(
        &mut self,
        unit: UnitRef<'_, Reader>,
        die: UnitOffset<usize>,
    ) -> Option<String> {
        let (declaration, name) = declaration(unit, die)?;
        let key = unit.header.offset().to_debug_info_offset(&unit.header)?.0;
        let scopes = self.by_unit.entry(key).or_insert_with(|| walk(unit));
        let mut qualified = String::new();
        // Scopes are pushed outermost first, so the enclosing ones of a DIE
        // come in nesting order.
        for scope in scopes.iter().filter(|s| s.range.contains(&declaration.0)) {
            if scope.range.start != declaration.0 {
                qualified.push_str(&scope.name);
                qualified.push_str("::");
            }
        }
        qualified.push_str(&name);
        Some(qualified)
    }
}

/// Follows the links from `die` to the declaration; returns its offset and
/// the first name met on the way.
fn declaration(
    unit: UnitRef<'_, Reader>,
    die: UnitOffset<usize>,
) -> Option<(UnitOffset<usize>, String)> {
    let mut offset = die;
    let mut name = None;
    for _ in 0..MAX_LINKS {
        let entry = unit.entry(offset).ok()?;
        if name.is_none()
            && let Some(value) = entry.attr_value(gimli::DW_AT_name)
        {
            name = Some(string(unit, value)?);
        }
        let link = entry
            .attr_value(gimli::DW_AT_abstract_origin)
            .or_else(|| entry.attr_value(gimli::DW_AT_specification));
        match link {
            Some(AttributeValue::UnitRef(next)) => offset = next,
            // A link into another unit: its scopes are not walked.
            Some(_) => return None,
            None => return Some((offset, name?)),
        }
    }
    None
}

/// The named scopes of `unit`, outermost first.
fn walk(unit: UnitRef<'_, Reader>) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = Vec::new();
    // Open scopes: (depth, index in `scopes`).
    let mut open: Vec<(isize, usize)> = Vec::new();
    let mut cursor = unit.entries();
    while let Ok(Some(entry)) = cursor.next_dfs() {
        let offset = entry.offset().0;
        let depth = entry.depth();
        while open.last().is_some_and(|(d, _)| *d >= depth) {
            if let Some((_, index)) = open.pop() {
                scopes[index].range.end = offset;
            }
        }
        let name = match entry.tag() {
            gimli::DW_TAG_namespace
            | gimli::DW_TAG_class_type
            | gimli::DW_TAG_structure_type
            | gimli::DW_TAG_union_type
            | gimli::DW_TAG_enumeration_type => match entry.attr_value(gimli::DW_AT_name) {
                Some(value) => unit
                    .attr_string(value)
                    .ok()
                    .and_then(|text| text.to_slice().ok().map(|t| t.into_owned()))
                    .map(|text| String::from_utf8_lossy(&text).into_owned()),
                None if entry.tag() == gimli::DW_TAG_namespace => {
                    Some("(anonymous namespace)".to_string())
                }
                None => None,
            },
            _ => None,
        };
        if let Some(name) = name {
            open.push((depth, scopes.len()));
            scopes.push(Scope {
                range: offset..usize::MAX,
                name,
            });
        }
    }
    scopes
}

/// A string attribute's text (lossy UTF-8).
fn string(unit: UnitRef<'_, Reader>, value: AttributeValue<Reader>) -> Option<String> {
    let text = unit.attr_string(value).ok()?;
    let bytes = text.to_slice().ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
