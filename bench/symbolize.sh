#!/usr/bin/env bash
# Symbolization cost per stack, cold and cached: userspace/examples/symbolize_bench.rs
# (built in release), kernel stacks through /proc/kallsyms and user stacks through this
# process's mappings. One line per kind here and in the run's results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "symbolize: needs root (kernel addresses in /proc/kallsyms)" >&2; exit 1; }
BENCH_NAME=symbolize
. bench/lib.sh
bench_run_dir
cargo build --release -q -p loader --example symbolize_bench
BENCH_RESULTS=$BENCH_RUN_DIR/results.jsonl target/release/examples/symbolize_bench | tee "$BENCH_RUN_DIR/symbolize.txt"
