#!/bin/sh
# Makes the trace-cmd fixtures of kscope-tracedat's tests (see README.md).
# Run as root, from this directory:
#   flock /sys/kernel unshare --mount --propagation private \
#       env TRACE_CMD_ZLIB=/path/to/trace-cmd sh make-fixtures.sh
# TRACE_CMD_ZLIB names a trace-cmd built with zlib (Debian's has zstd only).
# Everything mounted here lives in the private mount namespace and goes away
# with it; the two tracefs instances are removed before the script ends.
set -eu
: "${TRACE_CMD_ZLIB:?names a trace-cmd built with zlib}"
out=$(pwd)
T=/sys/kernel/tracing
A=kscope-fixture-a
B=kscope-fixture-b
work=$(mktemp -d)

cleanup() {
    for i in $A $B; do
        if [ -d $T/instances/$i ]; then
            echo 0 > $T/instances/$i/events/enable
            rmdir $T/instances/$i
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

mountpoint -q $T || mount -t tracefs nodev $T
mkdir $T/instances/$A $T/instances/$B
echo 1 > $T/instances/$A/events/sched/sched_switch/enable
echo 1 > $T/instances/$B/events/timer/hrtimer_start/enable
taskset -c 0 sleep 0.02
taskset -c 1 sleep 0.02
echo kscope-fixture > $T/instances/$A/trace_marker
echo 0 > $T/instances/$A/tracing_on
echo 0 > $T/instances/$B/tracing_on

# trace-cmd stores every event format of the kernel (2 MB here) and all of
# /proc/kallsyms (5 MB): show it copies of a few systems and a slice of the
# symbols instead, so the fixtures stay small. The texts are the kernel's.
mkdir "$work/events"
cp $T/events/header_page $T/events/header_event "$work/events/"
for system in ftrace sched timer; do
    for format in $T/events/$system/*/format; do
        event=$(basename "$(dirname "$format")")
        mkdir -p "$work/events/$system/$event"
        cat "$format" > "$work/events/$system/$event/format"
    done
done
mount --bind "$work/events" $T/events
{
    head -n 1000 /proc/kallsyms
    grep -E ' [tT] .*(hrtimer|tick_sched|timerfd|_timer_fn|schedule_timeout|process_timeout|watchdog)' /proc/kallsyms
} | sort -u > "$work/kallsyms"
mount --bind "$work/kallsyms" /proc/kallsyms

# extract -B removes each instance it extracts when it finishes. trace-cmd
# 3.1.6 extract writes version 7, compressed with zstd.
trace-cmd extract -B $A -B $B -o "$out/extract.dat"
umount /proc/kallsyms
umount $T/events

trace-cmd convert --file-version 6 -i "$out/extract.dat" -o "$out/v6.dat"
for compression in none zstd; do
    trace-cmd convert --file-version 7 --compression $compression \
        -i "$out/extract.dat" -o "$out/v7-$compression.dat"
done
"$TRACE_CMD_ZLIB" convert --file-version 7 --compression zlib \
    -i "$out/extract.dat" -o "$out/v7-zlib.dat"
