#!/usr/bin/env bash
# Soak (issue 6): the loader under a steady high event rate for a long time.
#
# bench/loadgen calls getppid(2) at SOAK_RATE calls/s (default 500000) on CPU 0 for
# SOAK_SECS (default 600); bench/probe counts every call in a per-CPU array (the BPF-side
# truth) and sends a 48-byte record per call; `loader --json > /dev/null` reads on CPU 1.
# Reported: calls offered (BPF counter), delivered and lost (the loader's summary), the
# identity lost == offered - delivered, and the loader's RSS sampled every SOAK_SAMPLE
# seconds (start = first sample under load, end = last). Exit status 1 if the identity does
# not hold or RSS grew by more than SOAK_RSS_SLACK_KB (default 1024).
#
# Needs root, `make loader bench-probe`. Not part of `make test`: `make soak`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SECS=${SOAK_SECS:-600}
RATE=${SOAK_RATE:-500000}
SAMPLE=${SOAK_SAMPLE:-30}
SLACK=${SOAK_RSS_SLACK_KB:-1024}
ELF=$root/target/bpf/bench/getppid/getppid.elf
LOADER=$root/target/release/loader
BENCH_NAME=soak
. bench/lib.sh

[ "$(id -u)" = 0 ] || die "needs root"
[ -f "$ELF" ] || die "$ELF missing: make bench-probe"
[ -x "$LOADER" ] || die "$LOADER missing: make loader"
build_loadgen

work=$(mktemp -d)
loader_pid=""
cleanup() {
    [ -n "$loader_pid" ] && kill -INT "$loader_pid" 2>/dev/null && wait "$loader_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 "$LOADER" --json "$ELF" >/dev/null 2>"$work/err" &
loader_pid=$!
for _ in $(seq 100); do
    grep -q "attached" "$work/err" 2>/dev/null && break
    [ -e "/proc/$loader_pid" ] || die "loader exited: $(cat "$work/err")"
    sleep 0.1
done

echo "soak: ${SECS}s at ${RATE} calls/s, loader pid $loader_pid"
hz=$(getconf CLK_TCK)
steal0=$(steal_ticks 1)
steal_prev=$steal0
taskset -c 0 "$GEN" "$SECS" "$RATE" >"$work/gen" &
gen_pid=$!
samples=()
sleep 2
while kill -0 "$gen_pid" 2>/dev/null; do
    samples+=("$(rss_kb "$loader_pid")")
    steal_now=$(steal_ticks 1)
    printf 'soak: t=%4ds rss=%s kB steal(CPU 1)=%d ms\n' "$(((${#samples[@]} - 1) * SAMPLE + 2))" \
        "${samples[-1]}" $(((steal_now - steal_prev) * 1000 / hz))
    steal_prev=$steal_now
    for _ in $(seq "$SAMPLE"); do
        kill -0 "$gen_pid" 2>/dev/null || break
        sleep 1
    done
done
wait "$gen_pid"
sleep 1
offered=$(percpu_sum_of "$loader_pid")
[ "$offered" != 0 ] || die "the loader holds no per-CPU array (bench/probe's CALLS)"
kill -INT "$loader_pid"
wait "$loader_pid" || true
loader_pid=""
summary=$(grep 'summary:' "$work/err" | tail -1)
delivered=$(sed -n 's/.*summary: \([0-9]*\) events.*/\1/p' <<<"$summary")
lost=$(sed -n 's/.*events, \([0-9]*\) lost.*/\1/p' <<<"$summary")
[ -n "$delivered" ] && [ -n "$lost" ] || die "no summary from the loader: $(tail -3 "$work/err")"

start=${samples[0]} end=${samples[-1]} max=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
echo "soak: loadgen: $(cat "$work/gen")"
printf 'soak: offered=%d delivered=%d lost=%d offered-delivered-lost=%d\n' \
    "$offered" "$delivered" "$lost" $((offered - delivered - lost))
printf 'soak: steal on the reader CPU: %d ms in all (the hypervisor running something else)\n' \
    $((($(steal_ticks 1) - steal0) * 1000 / hz))
printf 'soak: rss start=%d kB end=%d kB max=%d kB growth=%d kB (%d samples)\n' \
    "$start" "$end" "$max" $((end - start)) "${#samples[@]}"
fail=0
[ $((offered - delivered - lost)) -eq 0 ] || { echo "soak: FAIL lost != offered - delivered"; fail=1; }
[ $((end - start)) -le "$SLACK" ] || { echo "soak: FAIL RSS grew by more than ${SLACK} kB"; fail=1; }
[ "$fail" = 0 ] && echo "soak: ok"
exit "$fail"
