#!/usr/bin/env bash
# Instruction counts: our Rust probes (cargo bpf build) vs the same logic in C compiled with
# Debian's clang -O2 -target bpf. Prints one line per probe and the ratio (goal: <= 1.2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
count() { llvm-objdump-14 -h "$1" | awk '$2 ~ /^(tracepoint|kprobe)\// {print $3}' |
          while read -r h; do echo $((16#$h / 8)); done | paste -sd+ | bc; }
printf '%-10s %8s %8s %6s\n' probe rust c ratio
for p in execsnoop exectrack; do
    clang -O2 -g -target bpf -c "bench/c/$p.c" -o "$out/$p.o"
    r=$(count "target/bpf/programs/$p/$p.elf"); c=$(count "$out/$p.o")
    printf '%-10s %8d %8d %6.2f\n' "$p" "$r" "$c" "$(echo "$r / $c" | bc -l)"
done
