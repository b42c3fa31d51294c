//! User stack addresses to symbols: what `print_ubacktrace()` and
//! `print_ustack()` print for an address of a process.
//!
//! A stack comes out of the kernel's stack map after the fact, when the
//! process may be gone, so a process is remembered while it lives
//! ([`UserStacks::remember`]): its `/proc/PID/maps` read, and each file it
//! maps executable opened (mapped) once and kept. Files are shared across
//! processes: by path and inode before opening, by build-id after, so a
//! libc mapped by a thousand processes is read once.
//!
//! A runtime address becomes the file's own virtual address through the
//! mapping holding it (`address - start + file offset`) and the ELF
//! program headers (`ObjectFile::vaddr_of_offset`): the same for a PIE, a
//! shared library and a fixed-address executable. The symbol and its size
//! are the ELF symbol table's (`st_size`); SystemTap's own tables give a
//! symbol the distance to the next one instead (runtime/sym.c), so its
//! size can be larger by the alignment padding after a function.
//!
//! An address inside a mapped file that no symbol covers prints as
//! SystemTap prints it, the module and the offset from the file's first
//! mapped address over the file's mapped span; an address in no file
//! (anonymous memory, the vDSO) prints bare.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kscope_symbols::{DebugFiles, ObjectFile, Symbolizer};

use super::line::{Location, Symbols, frame_line};
use super::sys;

/// Why a process could not be remembered.
#[derive(Debug, thiserror::Error)]
pub enum UserStacksError {
    /// `/proc/PID/maps` could not be read: the process is gone, or not
    /// ours to read.
    #[error("cannot read /proc/{pid}/maps to symbolize the user stacks of process {pid}")]
    Maps {
        /// The process.
        pid: u32,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MapsLine<'a> {
    start: u64,
    end: u64,
    executable: bool,
    /// The file offset of `start`.
    offset: u64,
    inode: u64,
    /// The file's path (with ` (deleted)` when it was removed since), a
    /// `[name]` of the kernel's (`[stack]`, `[vdso]`), or empty.
    path: &'a str,
}

/// Parses `/proc/PID/maps`: `START-END PERMS OFFSET DEV INODE [PATH]`;
/// lines of another shape are skipped.
fn parse_maps(text: &str) -> Vec<MapsLine<'_>> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<MapsLine<'_>> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (field, after) = trimmed.split_at(end);
        rest = after;
        field
    };
    let (start, end) = field().split_once('-')?;
    let perms = field();
    let offset = field();
    let _dev = field();
    let inode = field();
    Some(MapsLine {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path: rest.trim_start(),
    })
}

/// Whether a maps path names a file (not `[stack]`, `[vdso]`, anonymous).
fn is_file(path: &str) -> bool {
    path.starts_with('/')
}

/// One file as a remembered process maps it.
#[derive(Debug)]
struct MappedFile {
    /// The file's path, as the maps name it.
    path: String,
    /// The lowest and highest address of the file's mappings in the
    /// process: SystemTap's module span for an address without a symbol.
    span: (u64, u64),
    /// The file's symbols; `None` when it is not mapped executable, or
    /// could not be opened or read as ELF.
    symbols: Option<Arc<Symbolizer>>,
}

/// One mapping of a file in a remembered process.
#[derive(Debug, Clone)]
struct Mapping {
    start: u64,
    end: u64,
    /// The file offset of `start`.
    offset: u64,
    file: Arc<MappedFile>,
}

impl Mapping {
    fn locate(&self, address: u64) -> Location<'_> {
        let file = &*self.file;
        let symbol = file.symbols.as_deref().and_then(|symbolizer| {
            let vaddr = symbolizer
                .object()
                .vaddr_of_offset(address - self.start + self.offset)?;
            Some((vaddr, symbolizer.function_symbol(vaddr)?))
        });
        match symbol {
            Some((vaddr, symbol)) => Location::Symbol {
                name: symbol.name,
                offset: vaddr - symbol.address,
                size: symbol.size,
                module: &file.path,
            },
            None => Location::Module {
                module: &file.path,
                offset: address - file.span.0,
                size: file.span.1 - file.span.0,
            },
        }
    }
}

/// The file mappings of `lines`, sorted by address, each with its file's
/// span and the symbols `open` gives for a file mapped executable (asked
/// once per path and inode).
fn mappings(
    lines: &[MapsLine<'_>],
    mut open: impl FnMut(&MapsLine<'_>) -> Option<Arc<Symbolizer>>,
) -> Vec<Mapping> {
    let lines: Vec<&MapsLine<'_>> = lines.iter().filter(|line| is_file(line.path)).collect();
    let mut files: HashMap<(&str, u64), MappedFile> = HashMap::new();
    let mut opened = std::collections::HashSet::new();
    for line in &lines {
        let key = (line.path, line.inode);
        let file = files.entry(key).or_insert_with(|| MappedFile {
            path: line.path.to_string(),
            span: (line.start, line.end),
            symbols: None,
        });
        file.span = (file.span.0.min(line.start), file.span.1.max(line.end));
        if line.executable && opened.insert(key) {
            file.symbols = open(line);
        }
    }
    let files: HashMap<(&str, u64), Arc<MappedFile>> = files
        .into_iter()
        .map(|(key, file)| (key, Arc::new(file)))
        .collect();
    let mut mappings: Vec<Mapping> = lines
        .iter()
        .map(|line| Mapping {
            start: line.start,
            end: line.end,
            offset: line.offset,
            file: files[&(line.path, line.inode)].clone(),
        })
        .collect();
    mappings.sort_by_key(|mapping| mapping.start);
    mappings
}

/// The user-space symbols of the processes remembered so far, kept after
/// they exit.
#[derive(Debug, Default)]
pub struct UserStacks {
    /// Each remembered process's file mappings, sorted by address.
    processes: HashMap<u32, Vec<Mapping>>,
    /// Files opened so far, by path and inode (`None`: not ELF, or not
    /// readable), so that no file is opened twice.
    by_file: HashMap<(String, u64), Option<Arc<Symbolizer>>>,
    /// The same symbolizers by build-id: one per build, whatever its path.
    by_build_id: HashMap<Vec<u8>, Arc<Symbolizer>>,
}

impl UserStacks {
    /// No process remembered yet.
    pub fn new() -> UserStacks {
        UserStacks::default()
    }

    /// Reads the mappings of process `pid` and opens the files it maps
    /// executable that no process remembered before mapped: its addresses
    /// can be symbolized from now on, after it exits too. Remembering a
    /// process again (after a `dlopen`, say) replaces what was read of it.
    /// A file that cannot be opened or is not ELF still names its
    /// addresses' module.
    ///
    /// # Errors
    ///
    /// [`UserStacksError::Maps`] when its maps cannot be read.
    pub fn remember(&mut self, pid: u32) -> Result<(), UserStacksError> {
        let text = sys::maps(pid).map_err(|source| UserStacksError::Maps { pid, source })?;
        let lines = parse_maps(&text);
        let mappings = mappings(&lines, |line| self.open(pid, line));
        self.processes.insert(pid, mappings);
        Ok(())
    }

    /// Whether `pid` has been remembered.
    pub fn knows(&self, pid: u32) -> bool {
        self.processes.contains_key(&pid)
    }

    /// The symbols of the file `line` maps, opened once: through the
    /// kernel's link to the very file mapped, else by its path (a reader
    /// without the right to the link).
    fn open(&mut self, pid: u32, line: &MapsLine<'_>) -> Option<Arc<Symbolizer>> {
        let key = (line.path.to_string(), line.inode);
        if let Some(known) = self.by_file.get(&key) {
            return known.clone();
        }
        let object = ObjectFile::open(sys::map_file(pid, line.start, line.end))
            .or_else(|_| ObjectFile::open(line.path))
            .ok();
        let symbols = object.and_then(|object| self.symbolizer(object));
        self.by_file.insert(key, symbols.clone());
        symbols
    }

    /// The symbolizer of `object`: the one already made for its build-id,
    /// or a new one (with its separate debug file, when installed).
    fn symbolizer(&mut self, object: ObjectFile) -> Option<Arc<Symbolizer>> {
        let build_id = object.build_id().map(<[u8]>::to_vec);
        if let Some(known) = build_id.as_ref().and_then(|id| self.by_build_id.get(id)) {
            return Some(known.clone());
        }
        let path = object.path().map(Path::to_path_buf);
        let debug = DebugFiles::find(&object, None);
        let had_debug = debug.is_some();
        let symbolizer = match Symbolizer::new(object, debug) {
            Ok(symbolizer) => symbolizer,
            // A damaged debug file is refused: the file's own tables then.
            Err(_) if had_debug => Symbolizer::new(ObjectFile::open(path?).ok()?, None).ok()?,
            Err(_) => return None,
        };
        let symbolizer = Arc::new(symbolizer);
        if let Some(id) = build_id {
            self.by_build_id.insert(id, symbolizer.clone());
        }
        Some(symbolizer)
    }

    /// What is known about `address` in process `pid`.
    pub fn locate(&self, pid: u32, address: u64) -> Location<'_> {
        self.process(pid).find(address)
    }

    /// `print_ubacktrace()`'s line for `address` of process `pid`:
    /// ` 0x4005d6 : main+0x16/0x30 [/usr/bin/foo]`; the module's span
    /// (` 0x7f3a0 [/usr/lib/libfoo.so+0x1a0/0x5000]`) when no symbol
    /// covers it; the bare ` 0xADDR` outside any file, or for a process
    /// never remembered.
    pub fn user_frame(&self, pid: u32, address: u64) -> String {
        frame_line(&self.locate(pid, address), address)
    }

    /// Process `pid`'s symbols, for the stack printers of
    /// [`crate::stacks`].
    pub fn process(&self, pid: u32) -> ProcessSymbols<'_> {
        ProcessSymbols {
            mappings: self.processes.get(&pid).map_or(&[], Vec::as_slice),
        }
    }
}

/// One remembered process's symbols (none for a process never
/// remembered).
#[derive(Debug, Clone, Copy)]
pub struct ProcessSymbols<'a> {
    mappings: &'a [Mapping],
}

impl<'a> ProcessSymbols<'a> {
    /// What the process's mappings say about `address`, borrowed from
    /// the [`UserStacks`] rather than from `self`.
    fn find(&self, address: u64) -> Location<'a> {
        let mappings = self.mappings;
        let index = mappings.partition_point(|m| m.start <= address);
        match index.checked_sub(1).map(|i| &mappings[i]) {
            Some(mapping) if address != 0 && address < mapping.end => mapping.locate(address),
            _ => Location::Unknown,
        }
    }
}

impl Symbols for ProcessSymbols<'_> {
    fn locate(&self, address: u64) -> Location<'_> {
        self.find(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234                       /usr/bin/my prog
55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234                       /usr/bin/my prog
55d0c0a03000-55d0c0a04000 rw-p 00002000 08:01 1234                       /usr/bin/my prog
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000028000 r--p 00000000 08:01 99                         /usr/lib/libc.so.6
7f0000028000-7f000019d000 r-xp 00028000 08:01 99                         /usr/lib/libc.so.6
7ffd8a5fe000-7ffd8a600000 r-xp 00000000 00:00 0                          [vdso]
garbage
";

    #[test]
    fn maps_lines_parse_with_spaces_in_paths() {
        let lines = parse_maps(MAPS);
        assert_eq!(lines.len(), 7);
        assert_eq!(
            lines[1],
            MapsLine {
                start: 0x55d0c0a01000,
                end: 0x55d0c0a02000,
                executable: true,
                offset: 0x1000,
                inode: 1234,
                path: "/usr/bin/my prog",
            }
        );
        assert_eq!(lines[3].path, "[heap]");
        assert!(!lines[3].executable);
        assert_eq!(
            parse_maps_line("7f00-7f10 r-xp 0 00:00 0").map(|l| l.path),
            Some("")
        );
        assert_eq!(parse_maps_line("7f00-7f10 r-xp zz 08:01 1"), None);
        assert_eq!(parse_maps_line("7f00 r-xp 0 08:01 1 /a"), None);
        assert_eq!(parse_maps_line(""), None);
    }

    #[test]
    fn files_are_opened_once_and_only_when_mapped_executable() {
        let lines = parse_maps(MAPS);
        let mut asked = Vec::new();
        let mappings = mappings(&lines, |line| {
            asked.push((line.path.to_string(), line.start));
            None
        });
        assert_eq!(
            asked,
            [
                ("/usr/bin/my prog".to_string(), 0x55d0c0a01000),
                ("/usr/lib/libc.so.6".to_string(), 0x7f0000028000)
            ]
        );
        // [heap] and [vdso] are no files.
        assert_eq!(mappings.len(), 5);
    }

    #[test]
    fn an_address_without_symbols_names_its_file_and_the_files_span() {
        let lines = parse_maps(MAPS);
        let mappings = mappings(&lines, |_| None);
        let process = ProcessSymbols {
            mappings: &mappings,
        };
        assert_eq!(
            frame_line(&process.locate(0x55d0c0a01234), 0x55d0c0a01234),
            " 0x55d0c0a01234 [/usr/bin/my prog+0x1234/0x4000]"
        );
        assert_eq!(
            frame_line(&process.locate(0x7f0000030000), 0x7f0000030000),
            " 0x7f0000030000 [/usr/lib/libc.so.6+0x30000/0x19d000]"
        );
        // The hole between mappings, the heap, the vDSO, and 0.
        for address in [0x55d0c0a02800, 0x55d0c1000010, 0x7ffd8a5fe010, 0] {
            assert_eq!(process.locate(address), Location::Unknown, "{address:#x}");
        }
    }

    #[test]
    fn a_process_never_remembered_has_only_bare_addresses() {
        let stacks = UserStacks::new();
        assert!(!stacks.knows(1));
        assert_eq!(stacks.user_frame(1, 0x401000), " 0x401000");
    }

    /// The symbols of the first file whose path ends with `suffix` in
    /// the remembered process `pid`.
    fn symbols_of(stacks: &UserStacks, pid: u32, suffix: &str) -> Arc<Symbolizer> {
        stacks.processes[&pid]
            .iter()
            .find(|m| m.file.path.ends_with(suffix))
            .and_then(|m| m.file.symbols.clone())
            .unwrap_or_else(|| panic!("no symbols of {suffix} in {pid}"))
    }

    /// Starts `program` (a `cat`) and waits until it has echoed a line:
    /// then its libraries are mapped.
    fn started_cat(program: &Path) -> std::process::Child {
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.as_mut().unwrap().write_all(b"ready\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        child
    }

    #[test]
    fn files_are_shared_across_processes_by_path_and_by_build_id() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("cat-copy");
        std::fs::copy("/usr/bin/cat", &copy).unwrap();
        let mut children = [started_cat(Path::new("/usr/bin/cat")), started_cat(&copy)];
        let pids = children.each_ref().map(std::process::Child::id);
        let mut stacks = UserStacks::new();
        let remembered: Result<Vec<()>, _> = pids.iter().map(|&pid| stacks.remember(pid)).collect();
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        remembered.unwrap();
        // The same libc file in both: one symbolizer.
        assert!(Arc::ptr_eq(
            &symbols_of(&stacks, pids[0], "/libc.so.6"),
            &symbols_of(&stacks, pids[1], "/libc.so.6")
        ));
        // Another file of the same build: the same one, found by build-id.
        assert!(Arc::ptr_eq(
            &symbols_of(&stacks, pids[0], "/cat"),
            &symbols_of(&stacks, pids[1], "/cat-copy")
        ));
    }

    #[test]
    fn remembering_a_process_that_is_not_there_names_it() {
        let mut stacks = UserStacks::new();
        let err = stacks.remember(u32::MAX).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("/proc/{}/maps", u32::MAX)),
            "{err}"
        );
    }
}
