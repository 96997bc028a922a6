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

# Sum over CPUs of the per-CPU u64 array map PID holds open (bench/probe's CALLS: the
# BPF-side count of calls offered); 0 when PID holds none.
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
total = 0
for e in json.load(sys.stdin):
    for v in e["values"]:
        total += int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little")
print(total)'
}
