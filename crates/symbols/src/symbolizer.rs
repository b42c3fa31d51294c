//! Address lookup: DWARF frames (inlined functions, then the real one)
//! through `addr2line`, with the ELF symbol tables as the fallback.

use std::fmt;
use std::sync::Mutex;

use object::{Object, ObjectSection, SectionKind};

use crate::Reader;
use crate::dwarf::LazyDwarf;
use crate::names::Scopes;
use crate::symtab::SymbolTable;
use crate::{DwarfCache, Error, ObjectFile, demangle};

/// One frame at an address: an inlined function or the real function.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Frame {
    /// The function's name as its source spells it: qualified by its
    /// namespaces and types, without parameters, for C++ and Rust (as gdb
    /// prints it); the symbol name for C and where DWARF has no name.
    pub function: Option<String>,
    /// The demangled symbol (linkage) name, as `addr2line -C` and `nm -C`
    /// print it: with C++ parameter lists, Rust's emitting crate.
    pub symbol: Option<String>,
    /// The address minus the start of the function's symbol; only for the
    /// outermost (not inlined) frame, and only when a symbol covers it.
    pub offset: Option<u64>,
    /// The source file, as DWARF names it (joined to the compilation
    /// directory when relative).
    pub file: Option<String>,
    /// The source line; for an inlined frame's caller, the call site.
    pub line: Option<u32>,
    /// Whether this frame was inlined into the next one.
    pub inlined: bool,
}

impl fmt::Display for Frame {
    /// Formats as `function+0xoffset at file:line`, with `??` for unknowns
    /// and ` (inlined)` on inlined frames.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function.as_deref().unwrap_or("??"))?;
        if let Some(offset) = self.offset {
            write!(f, "+{offset:#x}")?;
        }
        write!(
            f,
            " at {}:{}",
            self.file.as_deref().unwrap_or("??"),
            self.line.unwrap_or(0)
        )?;
        if self.inlined {
            f.write_str(" (inlined)")?;
        }
        Ok(())
    }
}

/// The ELF function symbol covering an address, as its symbol table
/// spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSymbol<'a> {
    /// The raw (linkage, not demangled) name: what tools that print
    /// symbol tables as they are, such as SystemTap's backtraces, show.
    pub name: &'a str,
    /// The symbol's value: its first byte, as the ELF's vaddrs spell it.
    pub address: u64,
    /// Its size: `st_size`, or up to the end of its section for a symbol
    /// without one (assembly entry points such as `_start`).
    pub size: u64,
}

/// Resolves addresses of one ELF file, using its separate debug file when
/// given.
pub struct Symbolizer {
    object: ObjectFile,
    debug: Option<ObjectFile>,
    /// The DWARF, and whether it came from `debug` (else from `object`).
    dwarf: Option<(Mutex<LazyDwarf>, bool)>,
    symbols: SymbolTable,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer")
            .field("object", &self.object)
            .field("debug", &self.debug)
            .field("has_dwarf", &self.dwarf.is_some())
            .finish_non_exhaustive()
    }
}

impl Symbolizer {
    /// Reads the DWARF (from `debug` if it has any, else from `object`) and
    /// the symbol tables of both files and of `object`'s MiniDebugInfo.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] when a section cannot be read or decompressed,
    /// [`Error::Dwarf`] when the DWARF units cannot be indexed, and
    /// [`Error::MiniDebugInfo`] when `.gnu_debugdata` is not an xz-compressed
    /// ELF file. A damaged debug file is better refused than trusted: the
    /// caller can retry with `debug` set to `None`.
    pub fn new(object: ObjectFile, debug: Option<ObjectFile>) -> Result<Symbolizer, Error> {
        Symbolizer::with_cache(object, debug, None)
    }

    /// [`Symbolizer::new`], keeping inflated debug sections in `cache`:
    /// read from it when it has this build's, else stored in it at the
    /// first lookup.
    ///
    /// # Errors
    ///
    /// As [`Symbolizer::new`].
    pub fn with_cache(
        object: ObjectFile,
        debug: Option<ObjectFile>,
        cache: Option<&DwarfCache>,
    ) -> Result<Symbolizer, Error> {
        let mut symbols = SymbolTable::default();
        let mut dwarf = None;
        for file in debug.iter().chain(std::iter::once(&object)) {
            let parsed = file.parse()?;
            symbols.add_from(&parsed);
            if dwarf.is_none() && has_dwarf(&parsed) {
                let from_debug = debug
                    .as_ref()
                    .is_some_and(|debug| std::ptr::eq(debug, file));
                dwarf = Some((
                    Mutex::new(LazyDwarf::load(file, &parsed, cache)?),
                    from_debug,
                ));
            }
        }
        if let Some(mini) = object.mini_debug_info()? {
            symbols.add_from(&mini.parse()?);
        }
        symbols.finish();
        Ok(Symbolizer {
            object,
            debug,
            dwarf,
            symbols,
        })
    }

    /// The object file whose addresses are resolved.
    pub fn object(&self) -> &ObjectFile {
        &self.object
    }

    /// The separate debug file, if one was given.
    pub fn debug(&self) -> Option<&ObjectFile> {
        self.debug.as_ref()
    }

    /// Whether DWARF line and function information was found.
    pub fn has_dwarf(&self) -> bool {
        self.dwarf.is_some()
    }

    /// The function symbol of the ELF symbol tables (`.symtab`, `.dynsym`,
    /// MiniDebugInfo, the debug file's) covering `address` (relative to
    /// the load bias), without DWARF: the name, start and size a
    /// backtrace line prints.
    pub fn function_symbol(&self, address: u64) -> Option<FunctionSymbol<'_>> {
        self.symbols.find(address).map(|symbol| FunctionSymbol {
            name: &symbol.name,
            address: symbol.address,
            size: symbol.end - symbol.address,
        })
    }

    /// The frames at `address` (relative to the load bias: an address as
    /// the ELF's own vaddrs spell it), innermost first: inlined functions,
    /// then the real function. Empty when nothing is known about the
    /// address; malformed DWARF at this address falls back to the symbol
    /// tables.
    pub fn lookup(&self, address: u64) -> Vec<Frame> {
        let mut dwarf = self.dwarf.as_ref().map(|(dwarf, from_debug)| {
            let file = match (&self.debug, from_debug) {
                (Some(debug), true) => debug.bytes(),
                _ => self.object.bytes(),
            };
            (dwarf.lock().unwrap_or_else(|e| e.into_inner()), file)
        });
        let mut context = dwarf
            .as_mut()
            .and_then(|(dwarf, file)| dwarf.context_for(file, address));
        let mut frames = context
            .as_mut()
            .and_then(|(context, scopes)| dwarf_frames(context, scopes, address))
            .unwrap_or_default();
        let symbol = self.symbols.find(address);
        if frames.is_empty() {
            let location =
                context.and_then(|(context, _)| context.find_location(address).ok().flatten());
            let (file, line) = match location {
                Some(location) => (location.file.map(str::to_string), location.line),
                None => (None, None),
            };
            if symbol.is_none() && file.is_none() {
                return frames;
            }
            frames.push(Frame {
                file,
                line,
                ..Frame::default()
            });
        }
        if let (Some(outer), Some(symbol)) = (frames.last_mut(), symbol) {
            outer.offset = Some(address - symbol.address);
            let name = demangle(&symbol.name);
            if outer.function.is_none() {
                outer.function = Some(name.clone());
            }
            if outer.symbol.is_none() {
                outer.symbol = Some(name);
            }
        }
        frames
    }
}

/// The DWARF frames at `address`, innermost first; `None` when the DWARF
/// at the address is malformed.
fn dwarf_frames(
    context: &addr2line::Context<Reader>,
    scopes: &mut Scopes,
    address: u64,
) -> Option<Vec<Frame>> {
    let unit = context.find_dwarf_and_unit(address).skip_all_loads();
    let mut iter = context.find_frames(address).skip_all_loads().ok()?;
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = iter.next() {
        let symbol = frame
            .function
            .as_ref()
            .and_then(|name| name.raw_name().ok())
            .map(|name| demangle(name.as_ref()));
        // C++ and Rust functions by their qualified source names, as
        // debuggers print them; C ones by their linkage names, which are
        // what glibc's aliases (`__GI_raise`) say.
        let qualify = frame
            .function
            .as_ref()
            .and_then(|name| name.language)
            .is_some_and(|language| {
                matches!(
                    language,
                    gimli::DW_LANG_C_plus_plus
                        | gimli::DW_LANG_C_plus_plus_03
                        | gimli::DW_LANG_C_plus_plus_11
                        | gimli::DW_LANG_C_plus_plus_14
                        | gimli::DW_LANG_Rust
                )
            });
        let qualified = frame
            .dw_die_offset
            .zip(unit)
            .filter(|_| qualify)
            .and_then(|(die, unit)| scopes.qualified_name(unit, die));
        let function = qualified.or_else(|| symbol.clone());
        let (file, line) = match frame.location {
            Some(location) => (location.file.map(str::to_string), location.line),
            None => (None, None),
        };
        frames.push(Frame {
            function,
            symbol,
            offset: None,
            file,
            line,
            inlined: true,
        });
    }
    if let Some(outer) = frames.last_mut() {
        outer.inlined = false;
    }
    Some(frames)
}

/// Whether `file` holds DWARF info (a separate debug file keeps it; a
/// stripped object has no `.debug_info`).
fn has_dwarf(file: &object::File<'_>) -> bool {
    file.section_by_name(".debug_info")
        .is_some_and(|s| s.kind() != SectionKind::UninitializedData && s.size() > 0)
}

#[cfg(test)]
mod tests {
    use super::Frame;

    #[test]
    fn frame_display() {
        let frame = Frame {
            function: Some("main".into()),
            symbol: Some("main".into()),
            offset: Some(0x10),
            file: Some("/src/a.c".into()),
            line: Some(7),
            inlined: false,
        };
        assert_eq!(frame.to_string(), "main+0x10 at /src/a.c:7");
        let inlined = Frame {
            inlined: true,
            ..Frame::default()
        };
        assert_eq!(inlined.to_string(), "?? at ??:0 (inlined)");
    }
}
