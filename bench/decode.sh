#!/bin/sh
# Decoding and formatting speed of kscope over a recorded corpus of raw
# ftrace sub-buffers (crates/ftrace/examples/decode_bench.rs): builds the
# benchmark, records a corpus of at least EVENTS events under target/bench/
# when there is none yet (that needs root), and prints events per second,
# decode only and decode+merge+format, as medians over ROUNDS rounds.
#
#   bench/decode.sh              # EVENTS=1000000 ROUNDS=5
#   EVENTS=2000000 ROUNDS=9 bench/decode.sh
#   CORPUS=/tmp/other.corpus bench/decode.sh
#
# Delete the corpus to record a new one. There is no peer tool in this
# benchmark yet: `trace-cmd report` reads trace.dat, which kscope does not
# write yet (docs/PERFORMANCE.md).
set -eu
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
ROUNDS=${ROUNDS:-5}
CORPUS=${CORPUS:-target/bench/decode.corpus}
BENCH=target/release/examples/decode_bench

cargo build --quiet --release -p kscope-ftrace --example decode_bench

if [ ! -f "$CORPUS" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "decode.sh: no corpus at $CORPUS, and recording one needs root" >&2
        exit 1
    fi
    echo "recording $EVENTS events into $CORPUS"
    # kscope's tests snapshot tracefs and take this lock while they do;
    # the private instance of the recording must not appear in their
    # snapshots.
    if command -v flock >/dev/null; then
        flock /sys/kernel \
            "$BENCH" record "$CORPUS" --events "$EVENTS"
    else
        "$BENCH" record "$CORPUS" --events "$EVENTS"
    fi
fi

"$BENCH" run "$CORPUS" --rounds "$ROUNDS"
