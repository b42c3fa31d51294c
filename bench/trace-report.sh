#!/usr/bin/env bash
# `kscope trace report` against `trace-cmd report` on the same trace.dat,
# in one run: builds a file of at least 1M events on this machine with
# `kscope trace record` (every syscall and sched event of a dd doing
# one-byte reads and writes), then times both reports of it, output to
# /dev/null, RUNS times each, interleaved, and prints the medians, the
# ratio and the peak memory (max RSS) of each.
#
#   bench/trace-report.sh            # RUNS=5, root
#   RUNS=9 COUNT=500000 bench/trace-report.sh
#   KSCOPE=/path/to/kscope bench/trace-report.sh   # else cargo builds it
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
COUNT=${COUNT:-300000}
[ "$(id -u)" = 0 ] || { echo "bench/trace-report.sh: run as root (recording needs tracefs)" >&2; exit 1; }
command -v trace-cmd >/dev/null || { echo "bench/trace-report.sh: trace-cmd is not installed (apt-get install trace-cmd)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/trace-report.sh: GNU time is not installed (apt-get install time)" >&2; exit 1; }
if [ -z "${KSCOPE:-}" ]; then
    cargo build --release -p kscope >/dev/null 2>&1
    KSCOPE=target/release/kscope
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
file="$work/bench.dat"

# Recording holds the tests' tracefs lock, so that no test runs meanwhile.
flock /sys/kernel "$KSCOPE" trace record -e sched -e syscalls -o "$file" \
    -- dd if=/dev/zero of=/dev/null bs=1 count="$COUNT" 2>/dev/null
events=$("$KSCOPE" trace report -i "$file" | tail -n +2 | wc -l)
if [ "$events" -lt 1000000 ]; then
    echo "bench/trace-report.sh: only $events events recorded; raise COUNT" >&2
    exit 1
fi

measure() { # tool... -> "seconds maxrss_kb"
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
        echo "bench/trace-report.sh: $* failed: $(cat "$work/err")" >&2
        exit 1
    }
    cat "$work/time"
}

: >"$work/kscope" ; : >"$work/trace-cmd"
for _ in $(seq "$RUNS"); do
    measure "$KSCOPE" trace report -i "$file" >>"$work/kscope"
    measure trace-cmd report -i "$file" >>"$work/trace-cmd"
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
k_time=$(cut -d' ' -f1 "$work/kscope" | median)
t_time=$(cut -d' ' -f1 "$work/trace-cmd" | median)
k_rss=$(cut -d' ' -f2 "$work/kscope" | sort -n | tail -1)
t_rss=$(cut -d' ' -f2 "$work/trace-cmd" | sort -n | tail -1)

size=$(du -m "$file" | cut -f1)
echo "trace.dat: $events events, $size MB; $RUNS runs each, medians"
printf '%-24s %10s %14s\n' tool "time (s)" "max RSS (MB)"
printf '%-24s %10s %14s\n' "kscope trace report" "$k_time" "$((k_rss / 1024))"
printf '%-24s %10s %14s\n' "trace-cmd report" "$t_time" "$((t_rss / 1024))"
awk -v k="$k_time" -v t="$t_time" 'BEGIN { printf "kscope is %.1fx faster (time ratio trace-cmd/kscope)\n", (k > 0) ? t / k : 0 }'
awk -v k="$k_rss" -v t="$t_rss" 'BEGIN { printf "peak memory ratio kscope/trace-cmd: %.2f\n", k / t }'
