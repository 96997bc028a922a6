#!/usr/bin/env bash
# Reader cost as a repeatable counter: instructions per delivered event of the loader's
# read path (perf-record parse, decode, JSON rendering, write), counted by valgrind's
# callgrind inside loader::stream::State::{drain,drain_ring_buffers,flush} and all they
# call, at a steady BENCH_CG_RATE calls/s (20000: the loader under valgrind keeps up) for
# BENCH_CG_SECS (3), for the perf probe and the ring-buffer probe. Wall-clock speed lives
# in bench/throughput.sh; this figure moves only when the code does, so regressions show.
# Prints `callgrind: perf=<Ir/event> ring=<Ir/event>` and adds a result line to the run's
# results.jsonl; the callgrind.out files stay in the run directory (callgrind_annotate).
# BENCH_CG_OPTS adds valgrind options (`--dump-instr=yes` for callgrind_annotate per
# instruction); BENCH_CG_ONLY=perf or ring measures one probe.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BENCH_NAME=callgrind
. bench/lib.sh
RATE=${BENCH_CG_RATE:-20000}
SECS=${BENCH_CG_SECS:-3}
PCPU=${BENCH_PRODUCER_CPU:-0}
RCPU=${BENCH_READER_CPU:-1}
LOADER=$root/target/release/loader
ELF=$root/target/bpf/bench/getppid/getppid.elf
RING_ELF=$root/target/bench/ringbuf/getppid.elf
COUNT=$root/target/bench/count
[ "$(id -u)" = 0 ] || die "needs root"
command -v valgrind >/dev/null || die "valgrind missing: make bench-deps"
for f in "$LOADER" "$ELF" "$RING_ELF" "$COUNT"; do
    [ -e "$f" ] || die "$f missing: make loader bench-probe, then bench/throughput.sh builds the rest"
done
build_loadgen
bench_run_dir
out=$BENCH_RUN_DIR/callgrind
mkdir -p "$out"
work=$(mktemp -d /dev/shm/bench-callgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT

attached() {
    local f
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:bpf_link" ] && return 0
    done
    return 1
}

one() { # NAME OBJECT -> IR_PER_EVENT
    local name=$1 obj=$2 pid cpid i ir events
    mkfifo "$work/fifo"
    taskset -c "$RCPU" "$COUNT" "$out/$name.count" <"$work/fifo" &
    cpid=$!
    # shellcheck disable=SC2086 # BENCH_CG_OPTS is a list of options
    taskset -c "$RCPU" valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.$name" \
        ${BENCH_CG_OPTS:-} \
        --collect-atstart=no --toggle-collect='loader::stream::State::drain' \
        --toggle-collect='loader::stream::State::drain_ring_buffers' \
        --toggle-collect='loader::stream::State::flush' \
        "$LOADER" --json "$obj" >"$work/fifo" 2>"$out/$name.err" &
    pid=$!
    rm -f "$work/fifo"
    for ((i = 0; i < 600; i++)); do
        attached "$pid" && break
        sleep 0.1
    done
    attached "$pid" || die "$name: the loader under valgrind did not attach in 60 s"
    sleep 0.5
    taskset -c "$PCPU" "$GEN" "$SECS" "$RATE" >"$out/$name.loadgen"
    sleep 2
    kill -INT "$pid"
    wait "$pid" || true
    wait "$cpid" || true
    ir=$(awk '/^summary:/ {print $2}' "$out/callgrind.out.$name")
    events=$(sed -n 's/.*\bevents=\([0-9]*\).*/\1/p' "$out/$name.count")
    ((events > 0)) || die "$name: no events delivered under valgrind"
    echo "$name: $events events delivered, $ir instructions in the read path:" \
        "$((ir / events)) per event ($(cat "$out/$name.loadgen"))" >&2
    echo $((ir / events))
}

case ${BENCH_CG_ONLY:-} in
    perf) one perf "$ELF"; exit ;; # a look at one probe: no result line, no goal
    ring) one ring "$RING_ELF"; exit ;;
    '') ;;
    *) die "BENCH_CG_ONLY is perf or ring" ;;
esac
perf=$(one perf "$ELF")
ring=$(one ring "$RING_ELF")
result kind=callgrind perf_ir_per_event="$perf" ring_ir_per_event="$ring" rate="$RATE" secs="$SECS"
# Issue 15's goal: half the reader's work per event. The baseline is this script's first
# figure (2026-12-01 17:01, the release loader then in target/): 1548 per perf event.
BASELINE=1548
{
    echo "callgrind: perf=$perf ring=$ring (instructions per delivered event in drain+flush, $RATE calls/s)"
    if ((perf * 2 <= BASELINE)); then m=met; else m=MISSED; fi
    echo "  $m  reader work per event <= half of $BASELINE (perf: $perf)"
} | tee "$out/callgrind.txt"
