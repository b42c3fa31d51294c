//! Demangled names: a C++ template instantiation in a namespace, through
//! DWARF and through `.symtab`, and Rust symbols (legacy and v0, the
//! latter in a program built with rustc).

use crate::util::{binutils_frames, compile, nm_symbol, symbolizer, tool};

const CPP_PROGRAM: &str = r#"namespace ns {
template <class T> __attribute__((noinline)) void f(T t)
{
	volatile T copy = t;
	(void)copy;
}
}

int main()
{
	ns::f<int>(42);
	return 0;
}
"#;

const MANGLED: &str = "_ZN2ns1fIiEEvT_";

#[test]
fn cpp_template_through_dwarf_matches_binutils() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "g++", "prog.cc", CPP_PROGRAM, &["-O0", "-g"]);
    let (start, size) = nm_symbol(&bin, MANGLED);
    let symbolizer = symbolizer(&bin);
    let addresses: Vec<u64> = (start..start + size).collect();
    let expected = binutils_frames(&bin, &addresses);
    for (address, expected) in addresses.iter().zip(&expected) {
        let frames = symbolizer.lookup(*address);
        let outer = frames.last().unwrap();
        // The symbol as binutils demangles it; the function as gdb
        // names it.
        assert_eq!(outer.symbol, expected.last().unwrap().0, "at {address:#x}");
        assert_eq!(
            outer.symbol.as_deref(),
            Some("void ns::f<int>(int)"),
            "{outer}"
        );
        assert_eq!(outer.function.as_deref(), Some("ns::f<int>"), "{outer}");
        assert_eq!(outer.line, expected.last().unwrap().2, "at {address:#x}");
    }
}

#[test]
fn cpp_template_through_symtab() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "g++", "prog.cc", CPP_PROGRAM, &["-O0", "-g"]);
    let (start, _) = nm_symbol(&bin, MANGLED);
    tool("strip", &["-g"], &[&bin]);
    let symbolizer = symbolizer(&bin);
    assert!(!symbolizer.has_dwarf());
    let frames = symbolizer.lookup(start + 1);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].function.as_deref(), Some("void ns::f<int>(int)"));
    assert_eq!(frames[0].offset, Some(1));
}

#[test]
fn rust_symbols() {
    assert_eq!(
        kscope_symbols::demangle("_ZN3std2rt10lang_start17h5a1b2c3d4e5f6a7bE"),
        "std::rt::lang_start"
    );
    assert_eq!(
        kscope_symbols::demangle("_RNvNtCs1234_7mycrate6module4func"),
        "mycrate::module::func"
    );
}

const RUST_PROGRAM: &str = r#"#[inline(never)]
fn compute_thing(x: u32) -> u32 {
    x.wrapping_mul(3)
}

fn main() {
    std::process::exit(compute_thing(std::env::args().count() as u32) as i32 & 1);
}
"#;

/// The mangled name and address of `compute_thing` in a Rust program.
fn rust_symbol(bin: &std::path::Path) -> (String, u64) {
    let out = crate::util::run("nm", &[bin.to_str().unwrap()]);
    out.lines()
        .find_map(|line| {
            let (address, rest) = line.split_once(' ')?;
            let name = rest.rsplit(' ').next()?;
            name.contains("compute_thing")
                .then(|| (name.to_string(), u64::from_str_radix(address, 16).unwrap()))
        })
        .unwrap()
}

#[test]
fn rust_program_v0_through_dwarf_and_symtab() {
    let dir = tempfile::tempdir().unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let flags = ["-g", "-C", "symbol-mangling-version=v0"];
    let bin = compile(dir.path(), &rustc, "rprog.rs", RUST_PROGRAM, &flags);
    let (mangled, address) = rust_symbol(&bin);
    assert!(mangled.starts_with("_R"), "{mangled}");
    let frames = symbolizer(&bin).lookup(address);
    assert_eq!(
        frames.last().unwrap().function.as_deref(),
        Some("rprog::compute_thing")
    );
    assert!(
        frames
            .last()
            .unwrap()
            .file
            .as_deref()
            .unwrap()
            .ends_with("rprog.rs")
    );
    tool("strip", &["-g"], &[&bin]);
    let frames = symbolizer(&bin).lookup(address);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].function.as_deref(), Some("rprog::compute_thing"));
    assert_eq!(frames[0].offset, Some(0));
}
