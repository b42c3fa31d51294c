//! Symbol demangling: Rust (legacy and v0) and C++ (Itanium ABI).

/// Demangles a linker symbol name, or returns it unchanged when it is not a
/// Rust or C++ mangled name (C names, already demangled names).
///
/// Rust names are tried first, because a Rust legacy name (`_ZN…17h<hash>E`)
/// is also a valid C++ name; the Rust hash suffix is left out, as
/// `addr2line -C` and `c++filt` do.
///
/// ```
/// assert_eq!(kscope_symbols::demangle("_ZN2ns1fIiEEvT_"), "void ns::f<int>(int)");
/// assert_eq!(kscope_symbols::demangle("main"), "main");
/// ```
pub fn demangle(name: &str) -> String {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        return format!("{rust:#}");
    }
    if name.starts_with("_Z")
        && let Ok(symbol) = cpp_demangle::Symbol::new(name)
        && let Ok(text) = symbol.demangle()
    {
        return text;
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn rust_legacy() {
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
    }

    #[test]
    fn rust_v0() {
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
    }

    #[test]
    fn cpp_template() {
        assert_eq!(demangle("_ZN2ns1fIiEEvT_"), "void ns::f<int>(int)");
    }

    #[test]
    fn plain_and_malformed_names_are_kept() {
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Z"), "_Z");
        assert_eq!(demangle("_ZN3foo"), "_ZN3foo");
    }
}
