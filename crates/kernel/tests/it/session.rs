//! [`Kernel`] on the real dumps: its symbols and BTF read once for the
//! whole session, from each [`SymbolSource`], and an unreadable source
//! refused the same way at every use.

use kscope_kernel::commands::BacktraceOf;
use kscope_kernel::{Kernel, SymbolSource};
use kscope_vmcore::{KernelMemory, Vmcore};
use tempfile::TempDir;

use crate::dumps::{Dumps, Variant, variants};

/// The first variant and its ELF dump, with a directory for files given
/// as the symbols' source; none after the live gate said why.
fn first_dump(what: &str) -> Option<(Variant, Vmcore, TempDir)> {
    let variant = variants(what).into_iter().next()?;
    let dump = variant.open("vmcore.elf");
    Some((variant, dump, tempfile::tempdir().unwrap()))
}

#[test]
fn a_session_reads_its_symbols_and_parses_its_btf_once() {
    for variant in variants("a Kernel session on real dumps") {
        let dump = variant.open("vmcore-zlib.kdump");
        let kernel = Kernel::open(&dump, SymbolSource::Kallsyms).unwrap();
        // The log's text needs neither symbols nor BTF.
        assert!(!kernel.log(false).unwrap().records.is_empty());
        let btf = kernel.btf().unwrap();
        let symbols = kernel.symbols().unwrap();
        // Commands in between use the same table and the same parse.
        let ps = kernel.ps().unwrap();
        kernel.backtraces(BacktraceOf::Panicked).unwrap();
        assert!(std::ptr::eq(btf, kernel.btf().unwrap()), "{}", variant.name);
        assert!(std::ptr::eq(symbols, kernel.symbols().unwrap()));
        assert!(ps.0.tasks.len() > 40, "{}", variant.name);
        // VMCOREINFO's SYMBOL()s that kallsyms leaves out are added.
        let memory = KernelMemory::new(&dump).unwrap();
        let decoded = kscope_kernel::read_kallsyms(&memory, dump.vmcoreinfo().unwrap()).unwrap();
        assert_eq!(decoded.address("kallsyms_names"), None);
        assert!(symbols.address("kallsyms_names").is_some());
    }
}

#[test]
fn a_system_map_source_gives_the_kallsyms_addresses() {
    let Some((variant, dump, dir)) = first_dump("a Kernel session from a System.map") else {
        return;
    };
    let map = dir.path().join("System.map");
    std::fs::write(&map, variant.system_map_text()).unwrap();
    let from_map = Kernel::open(&dump, SymbolSource::SystemMap(map.clone())).unwrap();
    let from_kallsyms = Kernel::open(&dump, SymbolSource::Kallsyms).unwrap();
    let at = |kernel: &Kernel<'_>| kernel.symbol("sysrq_handle_crash").unwrap().address;
    assert_eq!(at(&from_map), at(&from_kallsyms));
    assert_eq!(
        from_map.system().unwrap().symbols_from,
        map.display().to_string()
    );
}

#[test]
fn a_source_that_cannot_be_read_fails_every_command_that_needs_it_alike() {
    let Some((_, dump, dir)) = first_dump("a Kernel session without symbols") else {
        return;
    };
    let missing = dir.path().join("System.map");
    let kernel = Kernel::open(&dump, SymbolSource::SystemMap(missing)).unwrap();
    let first = kernel.symbols().unwrap_err().to_string();
    assert!(first.contains("System.map"), "{first}");
    assert_eq!(kernel.symbols().unwrap_err().to_string(), first);
    let btf = kernel.btf().unwrap_err().to_string();
    assert_eq!(btf, format!("the dump's BTF cannot be read: {first}"));
    assert_eq!(kernel.ps().unwrap_err().to_string(), btf);
    // The log's text still reads: it needs VMCOREINFO alone.
    assert!(!kernel.log(false).unwrap().records.is_empty());
}
