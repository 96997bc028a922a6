#!/usr/bin/env bash
# The situations of issue 12, one crate each under compat-probes/ (outside every workspace):
# each is built with `cargo bpf build` from its own directory, exactly as its author left
# it, and must come out byte-identical (names, modes, sizes, mtimes, contents); its objects
# are verified by the kernel here (loader --verify), and the printk and build.rs ones are
# run and their JSON checked. `make compat-situations` runs this (within `make test`).
#
#   lock-2022            Cargo.lock of early 2022: quote 1.0.15, syn 1.0.86, proc-macro2 1.0.36
#   macros-2.2           Cargo.lock pinning redbpf-probes/redbpf-macros 2.2.0
#   cargo-bpf-build-dep  [build-dependencies] cargo-bpf 2.3 with llvm13, build.rs using it
#   printk-master        printk!(...).expect(...), `?` and match (redbpf master's Result)
#   iphdr                ip.saddr/daddr against 6.1 headers: refused with the hint, then
#                        built with --flat-ip-headers (and, with BIONIC_HEADERS, compared
#                        with the same program built against 4.15 headers)
#   redbpf-1x            redbpf-probes 1.3: refused in one line naming redbpf 1.x
#
# Needs root (the verifier) and kernel headers with __struct_group (KERNEL_SOURCE, as the
# Makefile exports: Debian's 6.1). Runs no cargo lock of its own: run it under the caller's.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
CARGO_BPF=${CARGO_BPF:-$root/target/release/cargo-bpf}
LOADER=${LOADER:-$root/target/release/loader}
TARGET=${TARGET:-$root/target}
OUT=${OUT:-$TARGET/bpf/compat-situations}
LOG=$TARGET/compat-situations
mkdir -p "$LOG"
rm -rf "$OUT"

fail() { echo "situations: FAIL: $*" >&2; exit 1; }

snapshot() {
	(cd "$1" && find . -printf '%y %m %s %T@ %p\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}

# build NAME EXPECT [ARGS...]: EXPECT is ok, or the text the one error line must hold.
build() {
	local name=$1 expect=$2
	shift 2
	local dir=$here/$name before after status=0
	before=$(snapshot "$dir")
	(cd "$dir" && "$CARGO_BPF" bpf build --target-dir "$TARGET" --output-dir "$OUT" "$@") \
		>"$LOG/$name.out" 2>"$LOG/$name.err" || status=$?
	after=$(snapshot "$dir")
	if [ "$before" != "$after" ]; then
		diff <(echo "$before") <(echo "$after") >&2 || true
		fail "$name: the crate directory changed during the build"
	fi
	local errors
	errors=$(grep -c '^cargo-bpf: error:' "$LOG/$name.err" || true)
	if [ "$expect" = ok ]; then
		[ "$status" -eq 0 ] || { tail -30 "$LOG/$name.err" >&2; fail "$name: cargo bpf build exited $status"; }
	else
		[ "$status" -ne 0 ] || fail "$name: built, but should have been refused"
		[ "$errors" -eq 1 ] || fail "$name: $errors error lines (want one)"
		grep '^cargo-bpf: error:' "$LOG/$name.err" | grep -F >/dev/null -- "$expect" ||
			{ tail -5 "$LOG/$name.err" >&2; fail "$name: the error does not say '$expect'"; }
	fi
	echo "situations: ok: $name${*:+ ($*)}: ${expect}, directory unchanged"
}

build lock-2022 ok
build macros-2.2 ok
build cargo-bpf-build-dep ok
build printk-master ok
build iphdr "--flat-ip-headers"
build iphdr ok --flat-ip-headers
build redbpf-1x "redbpf 1.x"

# --flat-ip-headers changes nothing but where saddr/daddr are reached from: the program
# built against 6.1 headers with it is instruction for instruction the one built against
# Ubuntu 18.04's 4.15 headers (no __struct_group) without it, and with it.
if [ -n "${BIONIC_HEADERS:-}" ]; then
	code() { readelf -x xdp/addrs "$1" | tail -n +3; }
	for flag in "" --flat-ip-headers; do
		(cd "$here/iphdr" && KERNEL_SOURCE=$BIONIC_HEADERS "$CARGO_BPF" bpf build $flag \
			--target-dir "$TARGET/headers-bionic" --output-dir "$LOG/bionic$flag") \
			>"$LOG/iphdr-bionic$flag.out" 2>"$LOG/iphdr-bionic$flag.err" ||
			{ tail -20 "$LOG/iphdr-bionic$flag.err" >&2; fail "iphdr: build against $BIONIC_HEADERS ${flag:-without the flag}"; }
		[ "$(code "$OUT/iphdr_addrs/iphdr_addrs.elf")" = "$(code "$LOG/bionic$flag/iphdr_addrs/iphdr_addrs.elf")" ] ||
			fail "iphdr: 6.1 with --flat-ip-headers differs from 4.15 ${flag:-without the flag}"
	done
	echo "situations: ok: iphdr: 6.1 + --flat-ip-headers = 4.15 headers, with and without the flag"
else
	echo "situations: skipping the 4.15 comparison of iphdr: BIONIC_HEADERS is not set"
fi

# The lock copies kept what the crates' locks pinned.
copy() { echo "$TARGET"/bpf/lock/*"$1"/Cargo.lock; }
for pin in quote:1.0.15 syn:1.0.86 proc-macro2:1.0.36; do
	grep -A1 "^name = \"${pin%%:*}\"\$" $(copy _lock_2022) | grep >/dev/null "version = \"${pin#*:}\"" ||
		fail "lock-2022: the lock copy lost ${pin%%:*} ${pin#*:}"
done
grep -A1 '^name = "redbpf-macros"$' $(copy _macros_2_2) | grep >/dev/null 'version = "2.2.0"' ||
	fail "macros-2.2: redbpf-macros is no longer 2.2.0 in the lock copy"

# Every object passes the verifier of this kernel.
objects=("$OUT"/*/*.elf)
[ "${#objects[@]}" -eq 5 ] || fail "expected 5 objects, found ${#objects[@]}: ${objects[*]}"
"$LOADER" --verify --json "${objects[@]}" >"$LOG/verify.json" 2>"$LOG/verify.err" ||
	{ cat "$LOG/verify.json" "$LOG/verify.err" >&2; fail "loader --verify"; }
loaded=$(grep -c '"type":"loaded"' "$LOG/verify.json" || true)
[ "$loaded" -eq 5 ] || fail "loader --verify loaded $loaded programs (want 5)"
echo "situations: ok: loader --verify: $loaded programs loaded"

# Run two of them: the master-style printk lines arrive, and build.rs's value (computed
# through cargo_bpf_lib) is in the map: 1 source file * 100 + sizeof(struct ethhdr) = 114.
"$LOADER" --json --duration 3 "$OUT"/printk_master/printk_master.elf "$OUT"/builddep_execve/builddep_execve.elf \
	>"$LOG/run.json" 2>"$LOG/run.err" &
run=$!
# getppid (the printk probe) and execve (the build-dep probe) until the loader stops, so a
# slow attach does not miss them.
while kill -0 "$run" 2>/dev/null; do
	python3 -c 'import os; os.getppid()'
	sleep 0.2
done
wait "$run" || { cat "$LOG/run.err" >&2; fail "loader run exited non-zero"; }
for msg in 'printk-master pid' 'printk-master again'; do
	grep '"type":"printk"' "$LOG/run.json" | grep -F >/dev/null "\"msg\":\"$msg " ||
		{ head -20 "$LOG/run.json" >&2; fail "printk-master: no '$msg' printk line"; }
done
grep '"type":"map"' "$LOG/run.json" | grep '"map":"FAILED"' | grep -F >/dev/null '{"key":0,"value":0}' ||
	{ grep '"type":"map"' "$LOG/run.json" >&2; fail "printk-master: printk! returned Err"; }
grep '"type":"map"' "$LOG/run.json" | grep '"map":"EXECS"' | grep -F >/dev/null '{"key":1,"value":114}' ||
	{ grep '"type":"map"' "$LOG/run.json" >&2; fail "cargo-bpf-build-dep: EXECS[1] is not 114"; }
echo "situations: ok: printk-master printed, cargo-bpf-build-dep's build.rs value read back"
