//! The real dumps: each variant directory (`4level-kaslr`, ...) with its
//! `variant.env`, dumps and `oracle/`, opened with the kernel's symbols
//! from the -dbg package's System.map (moved by the dump's
//! KERNELOFFSET) and its BTF read from the dump. `KSCOPE_VMCORES` names
//! another directory of variants.

use std::path::PathBuf;
use std::sync::OnceLock;

use kscope_btf::Btf;
use kscope_kernel::{PerCpu, SymbolTable, TaskList, read_btf, read_tasks};
use kscope_vmcore::{KernelMemory, Vmcore};

pub use kscope_testkit::VmcoreVariant as Variant;
use kscope_testkit::{vmcore_variants, vmcores_dir};

/// Opens a variant's dump `form` (`vmcore.elf`, `vmcore-zlib.kdump`...).
pub fn open(variant: &Variant, form: &str) -> Vmcore {
    let path = variant.dir.join(form);
    Vmcore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn system_map_path(release: &str) -> PathBuf {
    vmcores_dir()
        .join("dbg/usr/lib/debug/boot")
        .join(format!("System.map-{release}"))
}

/// The variants with their oracles, or none after the live gate printed
/// why (it panics instead under KSCOPE_REQUIRE_LIVE=1).
pub fn variants(what: &str) -> Vec<Variant> {
    vmcore_variants(what, true)
}

/// A dump opened for reading the kernel: memory, symbols, BTF bytes.
pub struct Kernel<'a> {
    pub memory: KernelMemory<'a>,
    pub symbols: SymbolTable,
    pub btf: Vec<u8>,
}

impl<'a> Kernel<'a> {
    pub fn new(variant: &Variant, dump: &'a Vmcore) -> Kernel<'a> {
        let offset = dump.vmcoreinfo().unwrap().kernel_offset().unwrap_or(0);
        let symbols =
            SymbolTable::read_system_map(&system_map_path(variant.var("KERNEL_RELEASE")), offset)
                .unwrap();
        let mut memory = KernelMemory::new(dump).unwrap();
        // The direct map is where the kernel says it is.
        let base = memory
            .read_u64(symbols.required("page_offset_base").unwrap())
            .unwrap();
        memory.set_page_offset_base(base);
        let btf = read_btf(&memory, &symbols).unwrap();
        Kernel {
            memory,
            symbols,
            btf,
        }
    }
}

/// A variant's `vmcore.elf`, read once for the whole test binary: the
/// kernel (kept for the binary's life), its BTF, per-CPU areas and tasks.
pub struct Loaded {
    pub variant: Variant,
    pub dump: &'static Vmcore,
    pub kernel: &'static Kernel<'static>,
    pub btf: Btf<'static>,
    pub per_cpu: PerCpu,
    pub tasks: TaskList,
}

static LOADED: OnceLock<Vec<Loaded>> = OnceLock::new();

/// Every variant's ELF dump, loaded once; none after the live gate
/// printed why.
pub fn loaded(what: &str) -> &'static [Loaded] {
    LOADED.get_or_init(|| {
        variants(what)
            .into_iter()
            .map(|variant| {
                let dump: &'static Vmcore = Box::leak(Box::new(open(&variant, "vmcore.elf")));
                let kernel: &'static Kernel<'static> =
                    Box::leak(Box::new(Kernel::new(&variant, dump)));
                let btf = Btf::parse(&kernel.btf).unwrap();
                let per_cpu = PerCpu::read(&kernel.memory, &kernel.symbols).unwrap();
                let tasks = read_tasks(&kernel.memory, &kernel.symbols, &btf).unwrap();
                Loaded {
                    variant,
                    dump,
                    kernel,
                    btf,
                    per_cpu,
                    tasks,
                }
            })
            .collect()
    })
}

/// `drgn-ps.txt`: (current mark, pid, ppid, cpu, task address, state
/// letter, comm).
pub struct OracleTask {
    pub current: bool,
    pub pid: i32,
    pub ppid: i32,
    pub cpu: u32,
    pub address: u64,
    pub state: char,
    pub comm: String,
}

pub fn drgn_ps(variant: &Variant) -> Vec<OracleTask> {
    variant
        .oracle("drgn-ps.txt")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let current = line.starts_with('>');
            let mut f = line.trim_start_matches('>').split_whitespace();
            let mut next = || f.next().unwrap().to_string();
            let pid = next().parse().unwrap();
            let ppid = next().parse().unwrap();
            let cpu = next().parse().unwrap();
            let address = u64::from_str_radix(&next(), 16).unwrap();
            let state = next().chars().next().unwrap();
            let comm = f.collect::<Vec<_>>().join(" ");
            OracleTask {
                current,
                pid,
                ppid,
                cpu,
                address,
                state,
                comm,
            }
        })
        .collect()
}
