//! Shared helpers: compiling test programs, running binutils and parsing
//! their output, and turning kscope frames into the same shape.

use std::path::{Path, PathBuf};

use kscope_symbols::{ObjectFile, Symbolizer};

/// A C program with an always-inlined static function called from a
/// non-inlined one, so `-O2` leaves inlined frames.
pub const C_PROGRAM: &str = r#"#include <stdio.h>

static inline __attribute__((always_inline)) int square(int x)
{
	int y = x * x;
	printf("%d\n", y);
	return y + 1;
}

__attribute__((noinline)) int compute(int a)
{
	int r = square(a);
	return r * 3;
}

int main(int argc, char **argv)
{
	(void)argv;
	return compute(argc) & 1;
}
"#;

pub use kscope_testkit::run_tool as run;

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes `source` to `dir/name` and compiles it with `compiler` and
/// `flags` into `dir/<name without extension>`.
pub fn compile(dir: &Path, compiler: &str, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = dir.join(Path::new(name).file_stem().unwrap());
    let mut args = flags.to_vec();
    args.extend(["-o", path_str(&out), path_str(&src)]);
    run(compiler, &args);
    out
}

/// Runs `tool` with `args` followed by file paths.
pub fn tool(tool: &str, args: &[&str], files: &[&Path]) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(files.iter().map(|f| path_str(f)));
    run(tool, &all);
}

/// A function symbol from `nm -S`: start and size.
pub fn nm_symbol(bin: &Path, name: &str) -> (u64, u64) {
    let out = run("nm", &["-S", path_str(bin)]);
    out.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [addr, size, _, n] if n == name => Some((
                    u64::from_str_radix(addr, 16).unwrap(),
                    u64::from_str_radix(size, 16).unwrap(),
                )),
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("no symbol {name} in {}", bin.display()))
}

/// One frame as compared between binutils and kscope: function, file, line.
pub type Simple = (Option<String>, Option<String>, Option<u32>);

/// `addr2line -f -i -C -a -e bin ADDR…`, one list of frames per address.
pub fn binutils_frames(bin: &Path, addresses: &[u64]) -> Vec<Vec<Simple>> {
    let hex: Vec<String> = addresses.iter().map(|a| format!("{a:#x}")).collect();
    let mut args = vec!["-f", "-i", "-C", "-a", "-e", path_str(bin)];
    args.extend(hex.iter().map(String::as_str));
    let out = run("addr2line", &args);
    let mut result: Vec<Vec<Simple>> = Vec::new();
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("0x") {
            result.push(Vec::new());
            continue;
        }
        let function = (line != "??").then(|| line.to_string());
        let location = lines.next().unwrap();
        let location = location.split(" (discriminator").next().unwrap();
        let (file, number) = location.rsplit_once(':').unwrap();
        let file = (file != "??").then(|| file.to_string());
        let line = number.parse().ok().filter(|&n| n != 0);
        result.last_mut().unwrap().push((function, file, line));
    }
    result
}

/// kscope's frames at `address`, in the shape [`binutils_frames`] gives.
pub fn kscope_frames(symbolizer: &Symbolizer, address: u64) -> Vec<Simple> {
    symbolizer
        .lookup(address)
        .into_iter()
        .map(|f| (f.function, f.file, f.line))
        .collect()
}

/// Opens `bin` with no separate debug file.
pub fn symbolizer(bin: &Path) -> Symbolizer {
    Symbolizer::new(ObjectFile::open(bin).unwrap(), None).unwrap()
}
