#!/usr/bin/env bash
# `kscope probe` against bpftrace, in one run, on the same machine:
#
#  1. start-up: time from launch to the first line of output and to the
#     exit, for three scripts and their bpftrace equivalents:
#       read   probe syscall.read { printf("read performed\n"); exit() }
#       begin  probe begin { printf("hello\n"); exit() }
#       multi  sched_switch and openat counters, and a timer.ms(100) that
#              prints "done" and exits (an end probe prints the counts)
#       fanin  a counter on every syscall (syscall.*, one program on
#              raw_syscalls for kscope; bpftrace attaches to each of the
#              syscalls:sys_enter_* tracepoints) and a timer.ms(200) that
#              prints "done" and exits: start and exit together
#     and kscope's own "start to attached": the sum of the Pass 1-5 times
#     that `kscope probe -v` prints;
#  2. peak memory (maximum RSS, from /usr/bin/time) of every run;
#  3. per-event overhead: the time of READS read(2) calls of one byte from
#     /dev/zero (bench/probe_readloop.c, timed by itself), with no probe,
#     under a kscope probe counting them, and under bpftrace's equivalent;
#     both tools run the workload with -c, once their probes are attached;
#  4. map-heavy overhead: the same READS reads, of 1..KEYS bytes in turn,
#     counted per (process name, size) in an array, c[execname(), $count]++,
#     against bpftrace's @[comm, args->count] = count(); each prints its
#     readloop counts at the end, whose total must be READS;
#
# Every measurement is made RUNS times, interleaved, and the table gives
# medians and the ratios kscope/bpftrace. bench/probe_run.py runs each
# tool and prints the table.
#
#   bench/probe.sh                 # RUNS=5 READS=1000000, root
#   RUNS=9 bench/probe.sh
#   KEYS=1000 bench/probe.sh       # keys of the map-heavy case (100)
#   KSCOPE=/path/to/kscope bench/probe.sh    # else cargo builds it
#
# tracefs: bpftrace needs it mounted; kscope mounts it itself when it is
# not (and unmounts it again). So kscope runs twice per start-up script:
# "kscope" with tracefs mounted, as bpftrace gets it (the ratios compare
# these), and "kscope, no tracefs" in the machine's usual state, tracefs
# unmounted, which bpftrace cannot run in. The script mounts tracefs
# around each run that needs it (outside the timing) and unmounts it
# after, holding the lock kscope's tests take when they touch tracefs.
# If tracefs is mounted for good on the machine, the "no tracefs" rows
# are left out.
#
# Needs: root, bpftrace, python3, a C compiler, GNU time (/usr/bin/time),
# and BPF. SystemTap is not run: its passes took about 15 s on the seed
# machine (docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
READS=${READS:-1000000}
TIMEOUT=${TIMEOUT:-60}
# The tests' tracefs lock (kscope_testkit::TRACEFS_LOCK): an flock on a
# directory, so that nothing is left behind.
LOCK=/sys/kernel

die() {
    echo "probe.sh: $*" >&2
    exit 1
}

case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive number, not '$RUNS'" ;; esac
case $READS in '' | *[!0-9]* | 0) die "READS must be a positive number, not '$READS'" ;; esac
[ "$(id -u)" -eq 0 ] || die "needs root (BPF, perf events and mounting tracefs)"

missing=
command -v bpftrace >/dev/null || missing="$missing bpftrace(apt-get install -y bpftrace)"
for tool in python3 cc mount umount; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
[ -x /usr/bin/time ] || missing="$missing /usr/bin/time(apt-get install time)"
if [ -z "${KSCOPE:-}" ]; then
    if command -v cargo >/dev/null; then
        cargo build --quiet --release -p kscope || die "cargo build --release -p kscope failed"
        KSCOPE=target/release/kscope
    else
        missing="$missing cargo(or KSCOPE=/path/to/kscope)"
    fi
fi
if [ -n "${KSCOPE:-}" ] && [ ! -x "$KSCOPE" ]; then
    missing="$missing $KSCOPE"
fi
[ -z "$missing" ] || die "missing:$missing"

# The interpreter itself, not a shim (pyenv's cost 0.1 s a start).
PYTHON=$(python3 -c 'import sys; print(sys.executable)') || die "python3 does not run"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/probe-bench.XXXXXX")
current=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "$current" ]; then
        # probe_run.py stops its tool (and the tool's -c command) and
        # unmounts what it mounted on SIGTERM.
        kill -TERM "$current" 2>/dev/null || true
        wait "$current" 2>/dev/null || true
        current=
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "probe.sh: interrupted" >&2; exit 130' INT TERM HUP

cc -O2 -o "$tmp/readloop" bench/probe_readloop.c || die "cannot compile bench/probe_readloop.c"
results=$tmp/results.jsonl

# One run of probe_run.py, in the background so that a signal reaches the
# trap at once (bash runs traps only between commands, or during wait).
run() {
    "$PYTHON" bench/probe_run.py run --run "$i" --timeout "$TIMEOUT" --lock "$LOCK" "$@" >>"$results" &
    current=$!
    wait "$current"
    current=
}

no_tracefs=yes
if grep -q ' - tracefs ' /proc/self/mountinfo; then
    no_tracefs=
    echo "note: tracefs is mounted on this machine; the 'kscope, no tracefs' runs are left out" >&2
fi

# The scripts, kscope's and bpftrace's.
K_READ='probe syscall.read { printf("read performed\n"); exit() }'
B_READ='tracepoint:syscalls:sys_enter_read { printf("read performed\n"); exit(); }'
K_BEGIN='probe begin { printf("hello\n"); exit() }'
B_BEGIN='BEGIN { printf("hello\n"); exit(); }'
K_MULTI='global switches, opens
probe kernel.trace("sched:sched_switch") { switches++ }
probe syscall.openat { opens++ }
probe timer.ms(100) { printf("done\n"); exit() }
probe end { printf("switches %d opens %d\n", switches, opens) }'
B_MULTI='tracepoint:sched:sched_switch { @switches = count(); }
tracepoint:syscalls:sys_enter_openat { @opens = count(); }
interval:ms:100 { printf("done\n"); exit(); }'
K_FANIN='global n
probe syscall.* { n++ }
probe timer.ms(200) { printf("done\n"); exit() }'
B_FANIN='tracepoint:syscalls:sys_enter_* { @n = count(); }
interval:ms:200 { printf("done\n"); exit(); }'
K_COUNT='global n probe syscall.read { n++ } probe end { printf("%d\n", n) }'
B_COUNT='tracepoint:syscalls:sys_enter_read { @n = count(); }'
# Map-heavy: every read counted per (process name, size), KEYS sizes.
K_MAP='global c
probe syscall.read { c[execname(), $count]++ }
probe end { foreach ([e, n] in c) if (e == "readloop") printf("%d %d\n", n, c[e, n]) }'
B_MAP='tracepoint:syscalls:sys_enter_read { @[comm, args->count] = count(); }'
KEYS=${KEYS:-100}
WORKLOAD="$tmp/readloop $READS"

# One start-up case: kscope (twice) and bpftrace.
startup() {
    local case=$1 expect=$2 kscript=$3 bscript=$4
    shift 4
    if [ -n "$no_tracefs" ]; then
        run --case "$case" --tool "kscope, no tracefs" --tracefs unmounted --expect "$expect" "$@" \
            -- "$KSCOPE" probe -v -e "$kscript"
    fi
    run --case "$case" --tool kscope --tracefs mounted --expect "$expect" "$@" \
        -- "$KSCOPE" probe -v -e "$kscript"
    run --case "$case" --tool bpftrace --tracefs mounted --expect "$expect" "$@" \
        -- bpftrace -e "$bscript"
}

echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:  $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); kernel $(uname -r)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
echo "tools:    $("$KSCOPE" --version); $(bpftrace --version)"
echo "runs:     $RUNS each; workload $READS reads"

for i in $(seq "$RUNS"); do
    echo "run $i/$RUNS" >&2
    # --reads: a thread of probe_run.py reads /dev/zero every 0.5 ms, or a
    # quiet machine may make no read() for seconds.
    startup read '^read performed$' "$K_READ" "$B_READ" --reads
    startup begin '^hello$' "$K_BEGIN" "$B_BEGIN"
    startup multi '^done$' "$K_MULTI" "$B_MULTI"
    startup fanin '^done$' "$K_FANIN" "$B_FANIN"
    run --case overhead --tool none --workload -- "$tmp/readloop" "$READS"
    run --case overhead --tool kscope --workload --count '^([0-9]+)$' \
        -- "$KSCOPE" probe -e "$K_COUNT" -c "$WORKLOAD"
    run --case overhead --tool bpftrace --tracefs mounted --workload --count '^@n: ([0-9]+)$' \
        -- bpftrace -e "$B_COUNT" -c "$WORKLOAD"
    run --case maps --tool none --workload -- "$tmp/readloop" "$READS" "$KEYS"
    run --case maps --tool kscope --workload --sum '^[0-9]+ ([0-9]+)$' \
        -- "$KSCOPE" probe -e "$K_MAP" -c "$WORKLOAD $KEYS"
    run --case maps --tool bpftrace --tracefs mounted --workload --sum '^@\[readloop, [0-9]+\]: ([0-9]+)$' \
        -- bpftrace -e "$B_MAP" -c "$WORKLOAD $KEYS"
done

echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
status=0
"$PYTHON" bench/probe_run.py report "$results" || status=$?
if grep -q ' - tracefs ' /proc/self/mountinfo && [ -n "$no_tracefs" ]; then
    # Not a failure: kscope's tests, run meanwhile, may have it mounted.
    echo "probe.sh: warning: tracefs is mounted now; it was not at the start" >&2
fi
exit "$status"
