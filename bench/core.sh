#!/usr/bin/env bash
# `kscope core info` against `gdb -batch -ex 'thread apply all bt'` and
# `eu-stack --core`, in one run: builds (gcc -O0 -g) a single-thread
# program that writes through NULL two calls below main and a 4-thread
# program whose one worker does, makes a core of each in a temp dir
# (core_pattern must be `core`), then times the three tools on each core,
# output to /dev/null, RUNS times each, interleaved, and prints each
# tool's median wall time and largest max RSS and the time ratios
# kscope/eu-stack and kscope/gdb. kscope runs twice each time: with an
# empty DWARF cache (cold: the first look at a program) and then with the
# cache that run left (warm); the cache lives in the temp dir.
#
#   bench/core.sh                    # RUNS=7, root
#   RUNS=15 bench/core.sh
#   KSCOPE=/path/to/kscope bench/core.sh   # else cargo builds it
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-7}
die() { echo "bench/core.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v gcc >/dev/null || die "gcc is not installed (apt-get install gcc)"
command -v gdb >/dev/null || die "gdb is not installed (apt-get install gdb)"
command -v eu-stack >/dev/null || die "eu-stack is not installed (apt-get install elfutils)"
[ -x /usr/bin/time ] || die "GNU time is not installed (apt-get install time)"
[ "$(cat /proc/sys/kernel/core_pattern)" = core ] ||
    die "/proc/sys/kernel/core_pattern is '$(cat /proc/sys/kernel/core_pattern)', not 'core'"
if [ -z "${KSCOPE:-}" ]; then
    cargo build --release -p kscope >/dev/null 2>&1 || die "cargo build --release -p kscope failed"
    KSCOPE=$PWD/target/release/kscope
fi
[ -x "$KSCOPE" ] || die "$KSCOPE is not executable"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

cat >"$work/single.c" <<'C'
#include <stddef.h>
__attribute__((noinline)) void leaf(int *p) { *p = 42; }
__attribute__((noinline)) void middle(int *p) { leaf(p); }
int main(void) { middle(NULL); return 0; }
C
cat >"$work/threads.c" <<'C'
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>
static pthread_barrier_t ready;
__attribute__((noinline)) void crash(int *p) { *p = 42; }
static void *worker(void *arg) {
    long n = (long)arg;
    pthread_barrier_wait(&ready);
    if (n == 2) { usleep(100000); crash(NULL); }
    for (;;) pause();
    return NULL;
}
int main(void) {
    pthread_t t[4];
    pthread_barrier_init(&ready, NULL, 4);
    for (long i = 0; i < 4; i++)
        if (i) pthread_create(&t[i], NULL, worker, (void *)i);
    worker((void *)0);
    return 0;
}
C
gcc -O0 -g -o "$work/single" "$work/single.c"
gcc -O0 -g -pthread -o "$work/threads" "$work/threads.c"

make_core() { # prog -> core path (prog/core in its own dir)
    local dir="$work/$1.d"
    mkdir "$dir" && cp "$work/$1" "$dir/"
    { (cd "$dir" && sh -c 'ulimit -c unlimited; exec ./'"$1" >/dev/null 2>&1) || true; } 2>/dev/null
    [ -s "$dir/core" ] || die "$1 left no core in $dir (core_pattern, ulimit?)"
    echo "$dir/core"
}

measure() { # out-file tool... : appends "seconds maxrss_kb"; wall time from the clock, RSS from GNU time
    local out=$1; shift
    local t0 t1 rc=0
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null 2>"$work/err" || rc=$?
    t1=$(date +%s%N)
    # eu-stack exits 1 when some frame had a non-fatal error but all threads were shown
    if [ "$rc" -ne 0 ] && ! { [ "$1" = eu-stack ] && [ "$rc" = 1 ]; }; then
        die "$* failed ($rc): $(head -c 500 "$work/err")"
    fi
    echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$work/rss")" >>"$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

bench() { # name
    local name=$1 prog="$work/$1.d/$1" core
    core=$(make_core "$1")
    KSCOPE_CACHE_DIR="$work/cache" "$KSCOPE" core info "$core" >"$work/$name.kscope.txt" 2>&1 ||
        die "kscope core info $core failed: $(head -c 500 "$work/$name.kscope.txt")"
    : >"$work/$name.c"; : >"$work/$name.k"; : >"$work/$name.e"; : >"$work/$name.g"
    for _ in $(seq "$RUNS"); do
        # Cold: an empty DWARF cache, as on the first look at a program.
        rm -rf "$work/cache"
        KSCOPE_CACHE_DIR="$work/cache" measure "$work/$name.c" "$KSCOPE" core info "$core"
        # Warm: the cache as that first look (or the previous run) left it.
        KSCOPE_CACHE_DIR="$work/cache" measure "$work/$name.k" "$KSCOPE" core info "$core"
        measure "$work/$name.e" eu-stack --core "$core" --executable "$prog"
        measure "$work/$name.g" gdb -batch -ex 'thread apply all bt' "$prog" "$core"
    done
    local c cr k e g kr er gr
    c=$(cut -d' ' -f1 "$work/$name.c" | median); cr=$(cut -d' ' -f2 "$work/$name.c" | sort -n | tail -1)
    k=$(cut -d' ' -f1 "$work/$name.k" | median); kr=$(cut -d' ' -f2 "$work/$name.k" | sort -n | tail -1)
    e=$(cut -d' ' -f1 "$work/$name.e" | median); er=$(cut -d' ' -f2 "$work/$name.e" | sort -n | tail -1)
    g=$(cut -d' ' -f1 "$work/$name.g" | median); gr=$(cut -d' ' -f2 "$work/$name.g" | sort -n | tail -1)
    echo "== $name: core $(( $(stat -c %s "$core") / 1024 )) KiB, $RUNS runs each, medians"
    printf '%-36s %10s %14s\n' tool "time (ms)" "max RSS (MB)"
    awk -v t="$c" -v r="$cr" 'BEGIN { printf "%-36s %10.1f %14.1f\n", "kscope core info (cold cache)", t/1000, r/1024 }'
    awk -v t="$k" -v r="$kr" 'BEGIN { printf "%-36s %10.1f %14.1f\n", "kscope core info (warm cache)", t/1000, r/1024 }'
    awk -v t="$e" -v r="$er" 'BEGIN { printf "%-36s %10.1f %14.1f\n", "eu-stack --core", t/1000, r/1024 }'
    awk -v t="$g" -v r="$gr" 'BEGIN { printf "%-36s %10.1f %14.1f\n", "gdb -batch thread apply all bt", t/1000, r/1024 }'
    awk -v c="$c" -v k="$k" -v e="$e" -v g="$g" 'BEGIN { printf "time ratio kscope/eu-stack: cold %.2f, warm %.2f   kscope/gdb: cold %.2f, warm %.2f\n", c/e, k/e, c/g, k/g }'
}

bench single
bench threads
