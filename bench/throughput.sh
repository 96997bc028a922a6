#!/usr/bin/env bash
# Throughput of perf-record readers on one workload (issue 5), side by side in one run.
#
# Workload: bench/loadgen (getppid(2) in a loop) pinned to CPU $PRODUCER_CPU; the probe
# (bench/probe: tracepoint syscalls:sys_enter_getppid, only for comm "loadgen") counts
# every call in a per-CPU array (offered: equals loadgen's own count) and sends one
# 48-byte record per call into a perf map. Each reader runs
# pinned to CPU $READER_CPU with 64 pages per CPU ring:
#   loader --json > /dev/null     our loader (watermark wakeups, batched drain)
#   loader --json | wc -l         the same into a pipe (wc on the reader CPU too)
#   bpftrace -f json              the same one-liner (count + printf), output to a tmpfs file
#   bcc (python3-bpfcc)           the same program in bcc C; Python perf_buffer_poll callback
#   aya-reader                    aya 0.14's PerfEventArray as documented: wakeup per event
# Per reader: offered (BPF counter), delivered, lost (as the reader reports it), the
# check offered - delivered - lost, producer and delivered rates, the reader's CPU time
# per delivered event (utime+stime from /proc, 10 ms ticks), its peak RSS (VmHWM).
# Ceilings: the loadgen alone, and with the program attached but no reader (aya-reader
# --attach-only: bpf_perf_event_output finds no ring and returns at once).
#
# The last line is machine-readable:
#   bench: loader=<ev/s> bpftrace=<ev/s> bcc=<ev/s> aya=<ev/s> ceiling=<calls/s> lost=<n>
# (loader = `loader --json > /dev/null` with its default rings, at full speed; lost = its
# lost count; the `loader --json >/dev/null` row gives it the peers' BENCH_PAGES; a peer that
# could not run prints 0 and its table row says why).
#
# Environment: BENCH_SECS (5), BENCH_RATE (calls/s of the controlled-rate rows, 200000;
# 0 skips it), BENCH_PAGES (64), BENCH_PRODUCER_CPU (0), BENCH_READER_CPU (1).
# Needs root, `make loader bench-probe`, target/release/aya-reader, bpftrace, python3-bpfcc.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SECS=${BENCH_SECS:-5}
RATE=${BENCH_RATE:-200000}
PAGES=${BENCH_PAGES:-64}
PCPU=${BENCH_PRODUCER_CPU:-0}
RCPU=${BENCH_READER_CPU:-1}
ELF=$root/target/bpf/bench/getppid/getppid.elf
LOADER=$root/target/release/loader
AYA=$root/target/release/aya-reader
PY=/usr/bin/python3
BPFTRACE_PROG='tracepoint:syscalls:sys_enter_getppid /comm == "loadgen"/ { @calls = count(); printf("%llu %d %d %d %d %s\n", nsecs, pid, tid, uid, cpu, comm); }'

BENCH_NAME=throughput
. bench/lib.sh

[ "$(id -u)" = 0 ] || die "needs root"
[ -f "$ELF" ] || die "$ELF missing: make bench-probe"
[ -x "$LOADER" ] || die "$LOADER missing: make loader"
[ -x "$AYA" ] || die "$AYA missing: cargo build --release -p aya-reader"

work=$(mktemp -d /dev/shm/bench-throughput.XXXXXX)
cleanup() {
    local p
    # Only this script's own background jobs still running (never by name).
    for p in $(jobs -pr); do kill -INT "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- set-up (idempotent) -------------------------------------------------------------

build_loadgen
# bpftrace 0.17 looks for tracefs here only.
if ! mountpoint -q /sys/kernel/tracing; then
    mount -t tracefs nodev /sys/kernel/tracing
fi
# bcc compiles against /lib/modules/$(uname -r)/{build,source}; where this kernel has no
# headers, point them at Debian 6.1's (unpacked by `make kernel-headers`, never installed).
kmod=/lib/modules/$(uname -r)
if [ ! -e "$kmod/build" ] && [ -d kernel-headers/bookworm/build ]; then
    mkdir -p "$kmod"
    ln -sfn "$(readlink -f kernel-headers/bookworm/build)" "$kmod/build"
    ln -sfn "$(readlink -f kernel-headers/bookworm/source)" "$kmod/source"
    note "bcc: $kmod/{build,source} -> Debian 6.1 headers (kernel-headers/bookworm)"
fi
ulimit -l unlimited 2>/dev/null || true

# --- helpers -------------------------------------------------------------------------

# utime+stime (clock ticks) of a process, all its threads included.
ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# Whether PID has a BPF program attached to a perf event: a perf link (aya: loader,
# aya-reader) or PERF_EVENT_IOC_SET_BPF (bpftrace, bcc), as bpftool reports it.
attached() {
    local f
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:bpf_link" ] && return 0
    done
    bpftool -j perf show 2>/dev/null | grep -q "\"pid\":$1[,}]"
}

wait_attached() { # PID SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 1
        attached "$1" && return 0
        sleep 0.1
    done
    return 1
}

# loadgen SECS [RATE] -> GEN_CALLS GEN_SECS GEN_RATE
run_loadgen() {
    local out
    out=$(taskset -c "$PCPU" "$GEN" "$@")
    GEN_CALLS=$(sed -n 's/.*calls=\([0-9]*\).*/\1/p' <<<"$out")
    GEN_SECS=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")
    GEN_RATE=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$out")
}

# Results of the last run_peer.
R_OFFERED=0 R_DELIVERED=0 R_LOST=0 R_CPU=0 R_RSS=0 R_NOTE="" R_OK=0 R_STEAL=0

# run_peer NAME RATE: start the reader, wait for its attach, run the loadgen, give the
# reader 1 s to drain, read its CPU time and RSS, stop it (SIGINT), read its counts.
run_peer() {
    local name=$1 rate=$2 pid wcpid="" t0 t1 lines wcl
    R_OFFERED=0 R_DELIVERED=0 R_LOST=0 R_CPU=0 R_RSS=0 R_NOTE="" R_OK=0 R_STEAL=0
    local err=$work/$name.err
    : >"$err"
    case $name in
        loader)
            taskset -c "$RCPU" "$LOADER" --json --pages "$PAGES" "$ELF" >/dev/null 2>"$err" &
            pid=$!
            ;;
        loader-default)
            taskset -c "$RCPU" "$LOADER" --json "$ELF" >/dev/null 2>"$err" &
            pid=$!
            ;;
        loader-wc)
            rm -f "$work/fifo" && mkfifo "$work/fifo"
            taskset -c "$RCPU" wc -l <"$work/fifo" >"$work/wc.out" &
            wcpid=$!
            taskset -c "$RCPU" "$LOADER" --json --pages "$PAGES" "$ELF" >"$work/fifo" 2>"$err" &
            pid=$!
            ;;
        bpftrace)
            if ! command -v bpftrace >/dev/null; then
                R_NOTE="bpftrace not installed (make bench-deps)"
                return
            fi
            BPFTRACE_PERF_RB_PAGES=$PAGES taskset -c "$RCPU" bpftrace -f json \
                -o "$work/bt.json" -e "$BPFTRACE_PROG" >/dev/null 2>"$err" &
            pid=$!
            ;;
        bcc)
            if ! $PY -c 'import bcc' 2>/dev/null; then
                R_NOTE="python3-bpfcc not installed (make bench-deps)"
                return
            fi
            taskset -c "$RCPU" $PY bench/peers/bcc_reader.py "$PAGES" 2>"$err" &
            pid=$!
            ;;
        aya)
            taskset -c "$RCPU" "$AYA" "$ELF" syscalls:sys_enter_getppid --pages "$PAGES" \
                >/dev/null 2>"$err" &
            pid=$!
            ;;
    esac
    if ! wait_attached "$pid" 120; then
        R_NOTE="did not attach: $(grep -v '^$' "$err" | tail -1 | cut -c1-80)"
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return
    fi
    sleep 0.3
    t0=$(ticks "$pid")
    [ -n "$wcpid" ] && t0=$((t0 + $(ticks "$wcpid")))
    local s0
    s0=$(steal_ticks "$RCPU")
    if [ "$rate" = full ]; then run_loadgen "$SECS"; else run_loadgen "$SECS" "$rate"; fi
    sleep 1
    t1=$(ticks "$pid")
    [ -n "$wcpid" ] && t1=$((t1 + $(ticks "$wcpid")))
    R_CPU=$(echo "scale=3; ($t1 - $t0) / $hz" | bc)
    R_STEAL=$((($(steal_ticks "$RCPU") - s0) * 1000 / hz))
    R_RSS=$(hwm_kb "$pid")
    case $name in loader*) R_OFFERED=$(percpu_sum_of "$pid") ;; esac
    kill -INT "$pid"
    wait "$pid" || true
    [ -n "$wcpid" ] && { wait "$wcpid" || true; }
    case $name in
        loader | loader-default | loader-wc)
            lines=$(sed -n 's/^loader: summary: \([0-9]*\) events, \([0-9]*\) lost.*/\1 \2/p' "$err")
            [ -n "$lines" ] || { R_NOTE="no summary: $(tail -1 "$err" | cut -c1-80)"; return; }
            read -r R_DELIVERED R_LOST <<<"$lines"
            if [ "$name" = loader-wc ]; then
                wcl=$(tr -d ' ' <"$work/wc.out")
                # Besides events: 1 attached + 1 map dump + 1 summary line (+ lost lines).
                R_NOTE="wc -l: $wcl lines = events + $((wcl - R_DELIVERED)) others; CPU: loader+wc"
            fi
            ;;
        bpftrace)
            R_DELIVERED=$(grep -c '"type": "printf"' "$work/bt.json" || true)
            R_LOST=$(sed -n 's/.*"lost_events", "data": {"events": \([0-9]*\)}.*/\1/p' "$work/bt.json" |
                awk '{s += $1} END {print s + 0}')
            R_OFFERED=$(sed -n 's/.*"@calls": \([0-9]*\).*/\1/p' "$work/bt.json" | tail -1)
            R_OFFERED=${R_OFFERED:-0}
            R_NOTE="output to a tmpfs file"
            rm -f "$work/bt.json"
            ;;
        bcc | aya)
            lines=$(sed -n 's/.*delivered=\([0-9]*\) lost=\([0-9]*\) offered=\([0-9]*\).*/\1 \2 \3/p' "$err")
            [ -n "$lines" ] || { R_NOTE="no counts: $(tail -1 "$err" | cut -c1-80)"; return; }
            read -r R_DELIVERED R_LOST R_OFFERED <<<"$lines"
            [ "$name" = bcc ] && R_NOTE="Python callback casts + counts, prints nothing"
            ;;
    esac
    R_OK=1
}

human() { # a rate or count, 3 significant figures: 1.23M, 456k
    awk -v v="$1" 'BEGIN {
        if (v >= 1e6) printf "%.2fM", v / 1e6; else if (v >= 1e3) printf "%.0fk", v / 1e3;
        else printf "%d", v }'
}

row_fmt='%-6s %-25s %9s %9s %9s %6s %8s %11s %6s %6s %6s %5s  %s\n'
header() {
    printf "$row_fmt" load reader offered delivered lost check calls/s delivered/s "CPU s" "us/ev" "RSS MB" steal note
}

declare -A FULL_RATE FULL_LOST FULL_RSS
rows() { # RATE (full or calls/s)
    local rate=$1 peer label dps usev check load
    if [ "$rate" = full ]; then load=full; else load=$(human "$rate"); fi
    for peer in loader-default loader loader-wc bpftrace bcc aya; do
        case $peer in
            loader-default) label="loader, default rings" ;;
            loader) label="loader --json >/dev/null" ;;
            loader-wc) label="loader --json | wc -l" ;;
            bpftrace) label="bpftrace -f json" ;;
            bcc) label="bcc (python3-bpfcc)" ;;
            aya) label="aya 0.14 (wakeup/event)" ;;
        esac
        run_peer "$peer" "$rate"
        if [ "$R_OK" != 1 ]; then
            printf "$row_fmt" "$load" "$label" - - - - - 0 - - - - "$R_NOTE"
            [ "$rate" = full ] && FULL_RATE[$peer]=0 FULL_LOST[$peer]=0 FULL_RSS[$peer]=0
            continue
        fi
        dps=$(echo "$R_DELIVERED / $GEN_SECS" | bc)
        usev=$( ((R_DELIVERED > 0)) && echo "scale=3; $R_CPU * 1000000 / $R_DELIVERED" | bc || echo -)
        check=$((R_OFFERED - R_DELIVERED - R_LOST))
        if [ "$R_OFFERED" != "$GEN_CALLS" ]; then
            R_NOTE="offered != loadgen's $GEN_CALLS calls; $R_NOTE"
        fi
        printf "$row_fmt" "$load" "$label" "$(human "$R_OFFERED")" "$(human "$R_DELIVERED")" \
            "$(human "$R_LOST")" "$check" "$(human "$GEN_RATE")" "$(human "$dps")" \
            "$R_CPU" "$usev" "$(echo "scale=1; $R_RSS / 1024" | bc)" "$R_STEAL" "$R_NOTE"
        if [ "$rate" = full ]; then
            FULL_RATE[$peer]=$dps FULL_LOST[$peer]=$R_LOST FULL_RSS[$peer]=$R_RSS
        fi
    done
}

ratio() { # A B
    if [ "${2:-0}" -gt 0 ]; then echo "scale=1; $1 / $2" | bc; else echo "n/a"; fi
}

# --- the run -------------------------------------------------------------------------

echo "throughput: getppid tracepoint -> 48-byte record per call; producer on CPU $PCPU, reader on CPU $RCPU;" \
    "$PAGES pages per CPU ring; $SECS s per run; $(nproc) CPUs, kernel $(uname -r)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

run_loadgen "$SECS"
bare=$GEN_RATE
taskset -c "$RCPU" "$AYA" "$ELF" syscalls:sys_enter_getppid --attach-only 2>"$work/ceiling.err" &
cpid=$!
ceiling=0
if wait_attached "$cpid" 30; then
    run_loadgen "$SECS"
    ceiling=$GEN_RATE
fi
kill -INT "$cpid" 2>/dev/null || true
wait "$cpid" || true
echo "ceiling: no tracing $(human "$bare") calls/s; program attached, no reader $(human "$ceiling") calls/s"
echo

echo "load: loadgen calls/s asked (full: as fast as it goes); check: offered - delivered - lost;"
echo "CPU s: the reader's user+system time while the loadgen ran plus 1 s of drain; us/ev: per delivered event"
echo "steal: ms the hypervisor took the reader's vCPU away meanwhile (/proc/stat); losses follow it"
header
if [ "$RATE" != 0 ]; then
    rows "$RATE"
fi
rows full
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# The goals and the bench: line take the loader as users run it (its default ring size);
# the rows below it give every reader the same $PAGES pages.
l=${FULL_RATE[loader-default]}
echo "ratios (delivered/s, full speed): loader/bpftrace $(ratio "$l" "${FULL_RATE[bpftrace]}")x," \
    "loader/aya $(ratio "$l" "${FULL_RATE[aya]}")x, loader/bcc $(ratio "$l" "${FULL_RATE[bcc]}")x;" \
    "loader/ceiling $(echo "scale=2; $l / $ceiling" | bc 2>/dev/null || echo n/a)"
goal() { if [ "$2" = 1 ]; then echo "  met     $1"; else echo "  MISSED  $1"; fi; }
echo "goals:"
goal "zero loss at full speed (loader lost ${FULL_LOST[loader-default]})" "$((FULL_LOST[loader-default] == 0 && l > 0))"
goal ">= 10x bpftrace's delivered/s ($(ratio "$l" "${FULL_RATE[bpftrace]}")x)" \
    "$(echo "${FULL_RATE[bpftrace]} > 0 && $l >= 10 * ${FULL_RATE[bpftrace]}" | bc)"
goal ">= 10x aya's wakeup-per-event delivered/s ($(ratio "$l" "${FULL_RATE[aya]}")x)" \
    "$(echo "${FULL_RATE[aya]} > 0 && $l >= 10 * ${FULL_RATE[aya]}" | bc)"
goal ">= 1,000,000 JSON lines/s ($(human "$l")/s)" "$((l >= 1000000))"
goal "RSS < 40 MB at full load ($(echo "scale=1; ${FULL_RSS[loader-default]} / 1024" | bc) MB)" \
    "$((FULL_RSS[loader-default] > 0 && FULL_RSS[loader-default] < 40 * 1024))"
echo "bench: loader=$l bpftrace=${FULL_RATE[bpftrace]} bcc=${FULL_RATE[bcc]} aya=${FULL_RATE[aya]} ceiling=$ceiling lost=${FULL_LOST[loader-default]}"
