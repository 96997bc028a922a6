#!/usr/bin/env bash
# fuzz/run.sh SECONDS [TARGET...]: builds the fuzz targets, seeds their corpora
# (fuzz/seed.sh) and runs each target (default: all) for SECONDS, one after the other,
# each a single libFuzzer process (one core). Prints one summary line per target and
# exits 1 if any crashed, hung (-timeout) or ran out of memory; the input that did it is
# in fuzz/artifacts/<target>/ and the full log in fuzz/target/logs/<target>.log.
#
# Stable Rust only: `--sanitizer none` leaves cargo-fuzz passing nothing but stable
# `-C` flags (sancov passes, debug assertions, overflow checks), so no nightly and no
# RUSTC_BOOTSTRAP are needed. Overflow checks and bounds checks turn the bugs a fuzzer
# finds in safe Rust into panics, which libFuzzer reports as crashes.
set -uo pipefail

secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
cargo=${CARGO:-cargo}
fuzz=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz"

if ! command -v cargo-fuzz >/dev/null; then
    "$cargo" install cargo-fuzz --locked || exit 1
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
"$cargo" fuzz build --sanitizer none --target "$triple" || exit 1
./seed.sh >/dev/null || exit 1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("$cargo" fuzz list)
fi
mkdir -p target/logs
failed=()
start=$SECONDS
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t" "corpus/$t"
    log=target/logs/$t.log
    dict=()
    [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
    "target/$triple/release/$t" "corpus/$t" "${dict[@]}" \
        -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=131072 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+\s.*cov: ' "$log" | tail -n 1)
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
    corpus=$(find "corpus/$t" -type f | wc -l)
    summary="$(stat number_of_executed_units) runs, $(stat average_exec_per_sec)/s, $(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+'), corpus $corpus inputs, peak rss $(stat peak_rss_mb) MB"
    if [ $rc -eq 0 ]; then
        echo "fuzz: $t: ok: $summary"
    else
        failed+=("$t")
        echo "fuzz: $t: FAILED (libFuzzer exit $rc): $summary"
        grep -v -E '^(stat::|#[0-9]+ )' "$log" | tail -n 40 | sed 's/^/    /'
        echo "    reproduce: fuzz/target/$triple/release/$t fuzz/artifacts/$t/<file>"
    fi
done
echo "fuzz: ${#targets[@]} targets, $((SECONDS - start)) s, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
