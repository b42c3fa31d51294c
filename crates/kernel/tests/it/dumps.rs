//! The real dumps, as `kscope_testkit` finds them, with what these tests
//! add: opening a form, and the kernel's real System.map (the -dbg
//! package's; the image package's is a stub).

use kscope_kernel::SymbolTable;
pub use kscope_testkit::VmcoreVariant as Variant;
use kscope_testkit::{vmcore_variants, vmcores_dir};
use kscope_vmcore::Vmcore;

/// What the kernel tests do with a variant.
pub trait Dumps {
    /// Opens the dump file `name` (`vmcore.elf`...).
    fn open(&self, name: &str) -> Vmcore;
    /// The text of the kernel's real System.map.
    fn system_map_text(&self) -> String;
    /// The System.map's symbols at their addresses in this dump.
    fn system_map(&self) -> SymbolTable;
}

impl Dumps for Variant {
    fn open(&self, name: &str) -> Vmcore {
        let path = self.dir.join(name);
        Vmcore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn system_map_text(&self) -> String {
        let name = format!("System.map-{}", self.var("KERNEL_RELEASE"));
        let path = vmcores_dir().join("dbg/usr/lib/debug/boot").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn system_map(&self) -> SymbolTable {
        SymbolTable::from_system_map(&self.system_map_text(), self.kaslr_offset()).unwrap()
    }
}

/// Every variant with its oracles, or none after the live gate said why.
pub fn variants(what: &str) -> Vec<Variant> {
    vmcore_variants(what, true)
}
