# Shared by bench/throughput.sh and bench/soak.sh (sourced, not run). The sourcing script
# sets BENCH_NAME (the prefix of its messages) and has cd'ed to the repository root.

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
note() { echo "$BENCH_NAME: $*" >&2; }

GEN=$PWD/target/bench/loadgen

# Builds bench/loadgen when missing or older than its source.
build_loadgen() {
    mkdir -p target/bench
    if [ ! -x "$GEN" ] || [ bench/loadgen.c -nt "$GEN" ]; then
        gcc -O2 -Wall -Wextra -o "$GEN" bench/loadgen.c
    fi
}

# Steal time of CPU N so far, in clock ticks: time the hypervisor ran something else on
# this vCPU. The readers' losses in these benchmarks line up with it (a 4 MiB ring fills
# in ~150 ms at 500k records/s; steal bursts of 250-350 ms were seen).
steal_ticks() { awk -v c="cpu$1" '$1 == c {print $9}' /proc/stat; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Sum over CPUs of entry KEY (0 unless given) of the per-CPU u64 array map PID holds open
# (bench/probe's CALLS: the BPF-side count of calls offered; bench/ringbuf's CALLS[1]:
# failed ring reserves); 0 when PID holds none.
percpu_sum_of() {
    local f id=""
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:bpf-map" ] || continue
        if grep -q '^map_type:[[:space:]]*6$' "/proc/$1/fdinfo/${f##*/}"; then
            id=$(awk '/^map_id:/ {print $2}' "/proc/$1/fdinfo/${f##*/}")
        fi
    done
    [ -n "$id" ] || { echo 0; return; }
    bpftool -j map dump id "$id" | /usr/bin/python3 -c '
import json, sys
want, total = int(sys.argv[1]), 0
for e in json.load(sys.stdin):
    if int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little") != want:
        continue
    for v in e["values"]:
        total += int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little")
print(total)' "${2:-0}"
}

# Id of the first map of bpf map_type TYPE (4: perf event array) PID holds open, or "".
map_id_of() {
    local f
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:bpf-map" ] || continue
        if grep -q "^map_type:[[:space:]]*$2\$" "/proc/$1/fdinfo/${f##*/}"; then
            awk '/^map_id:/ {print $2}' "/proc/$1/fdinfo/${f##*/}"
            return
        fi
    done
}

GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- userspace bench 2>/dev/null || GIT_COMMIT="$GIT_COMMIT+dirty"
# One line about this machine for the result files.
machine() {
    echo "$(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
}

# Where this run keeps its raw logs and result file: target/bench/runs/<stamp>/ (made once
# per `make bench` when BENCH_RUN_DIR is exported), and target/bench/latest pointing at it.
bench_run_dir() {
    if [ -z "${BENCH_RUN_DIR:-}" ]; then
        BENCH_RUN_DIR=$PWD/target/bench/runs/$(date -u +%Y%m%dT%H%M%SZ)
        export BENCH_RUN_DIR
    fi
    mkdir -p "$BENCH_RUN_DIR"
    ln -sfn "$BENCH_RUN_DIR" target/bench/latest
    if [ ! -f "$BENCH_RUN_DIR/results.jsonl" ]; then
        printf '{"kind":"run","date":"%s","commit":"%s","machine":"%s"}\n' \
            "$(date -u +%Y-%m-%dT%H:%MZ)" "$GIT_COMMIT" "$(machine)" >"$BENCH_RUN_DIR/results.jsonl"
    fi
}

# result KEY=VALUE...: one JSON object into the run's results.jsonl (numbers stay numbers).
result() {
    /usr/bin/python3 -c '
import json, sys
o = {}
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    try:
        o[k] = int(v)
    except ValueError:
        try:
            o[k] = float(v)
        except ValueError:
            o[k] = v
print(json.dumps(o))' "$@" >>"$BENCH_RUN_DIR/results.jsonl"
}
