#!/usr/bin/env bash
# `kscope crash` against crash 8 and makedumpfile on the same kernel dump,
# in one run: the time from start to the whole output of `log` (kscope,
# `crash -s VMLINUX DUMP` running `log`, `makedumpfile --dump-dmesg`) and
# of `ps` (kscope, crash), output to /dev/null, RUNS times each,
# interleaved; prints each tool's median wall time and largest max RSS and
# the ratios. The dump is scripts/make-vmcore's 4level-nokaslr variant in
# kdump-compressed form (the one makedumpfile reads), made with --oracles
# (crash needs the -dbg vmlinux that brings).
#
#   bench/crash.sh                       # RUNS=7, root
#   RUNS=15 bench/crash.sh
#   KSCOPE=/path/to/kscope bench/crash.sh   # else cargo builds it
#   KSCOPE_VMCORES=DIR bench/crash.sh       # dumps elsewhere than target/vmcores
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-7}
die() { echo "bench/crash.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v crash >/dev/null || die "crash is not installed (apt-get install crash)"
command -v makedumpfile >/dev/null || die "makedumpfile is not installed (apt-get install makedumpfile)"
[ -x /usr/bin/time ] || die "GNU time is not installed (apt-get install time)"
vmcores=${KSCOPE_VMCORES:-$PWD/target/vmcores}
dump=$vmcores/4level-nokaslr/vmcore-zlib.kdump
vmlinux=$(find "$vmcores/dbg/usr/lib/debug/boot" -name 'vmlinux-*' 2>/dev/null | head -n1)
[ -f "$dump" ] && [ -n "$vmlinux" ] || die "no dump or vmlinux under $vmcores: run scripts/make-vmcore --oracles"
if [ -z "${KSCOPE:-}" ]; then
    cargo build --release -p kscope >/dev/null 2>&1 || die "cargo build --release -p kscope failed"
    KSCOPE=$PWD/target/release/kscope
fi
[ -x "$KSCOPE" ] || die "$KSCOPE is not executable"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
printf 'log\nquit\n' >"$work/log.cmd"
printf 'ps\nquit\n' >"$work/ps.cmd"

measure() { # out-file command... : appends "microseconds maxrss_kb"
    local out=$1; shift
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null 2>"$work/err" ||
        die "$* failed: $(head -c 500 "$work/err")"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$work/rss")" >>"$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

row() { # label file
    local t r
    t=$(cut -d' ' -f1 "$2" | median); r=$(cut -d' ' -f2 "$2" | sort -n | tail -1)
    awk -v l="$1" -v t="$t" -v r="$r" 'BEGIN { printf "%-44s %10.1f %14.1f\n", l, t/1000, r/1024 }'
}

ratio() { # a-file b-file
    local a b
    a=$(cut -d' ' -f1 "$1" | median); b=$(cut -d' ' -f1 "$2" | median)
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a/b }'
}

for _ in $(seq "$RUNS"); do
    measure "$work/k.log" "$KSCOPE" crash "$dump" log
    measure "$work/c.log" crash -s "$vmlinux" "$dump" -i "$work/log.cmd"
    measure "$work/m.log" makedumpfile --dump-dmesg "$dump" "$work/dmesg.txt"
    rm -f "$work/dmesg.txt"
    measure "$work/k.ps" "$KSCOPE" crash "$dump" ps
    measure "$work/c.ps" crash -s "$vmlinux" "$dump" -i "$work/ps.cmd"
done

echo "== $(basename "$dump") ($(( $(stat -c %s "$dump") >> 20 )) MiB, 4level-nokaslr), $RUNS runs each, medians"
printf '%-44s %10s %14s\n' tool "time (ms)" "max RSS (MB)"
row "kscope crash DUMP log" "$work/k.log"
row "crash -s VMLINUX DUMP: log" "$work/c.log"
row "makedumpfile --dump-dmesg" "$work/m.log"
row "kscope crash DUMP ps" "$work/k.ps"
row "crash -s VMLINUX DUMP: ps" "$work/c.ps"
echo "log: kscope/crash $(ratio "$work/k.log" "$work/c.log"), kscope/makedumpfile $(ratio "$work/k.log" "$work/m.log")"
echo "ps:  kscope/crash $(ratio "$work/k.ps" "$work/c.ps")"
