#!/usr/bin/env bash
# Cold build of all probes (the probe profile's artifacts removed) and incremental rebuild
# after touching one probe, with the release cargo-bpf.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/bpf-probe target/bpf/programs target/bpf/bitcode
s=$(date +%s.%N); (cd probes && ../target/release/cargo-bpf bpf build --target-dir ../target >/dev/null 2>&1)
e=$(date +%s.%N); echo "cold build of all probes: $(echo "$e - $s" | bc) s"
touch probes/src/hello/main.rs
s=$(date +%s.%N); (cd probes && ../target/release/cargo-bpf bpf build --target-dir ../target >/dev/null 2>&1)
e=$(date +%s.%N); echo "incremental (one probe touched): $(echo "$e - $s" | bc) s"
