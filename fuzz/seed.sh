#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds made at run time (nothing binary is committed):
# the built BPF objects (target/bpf/{programs,compat}/*/*.elf), the C test objects
# (userspace/tests/bpf/*.c compiled with clang, when clang is there), records for the
# decoder and the perf parser, and kernel text samples (plus this machine's own files).
# Idempotent: seeds are named after what they are and rewritten; what libFuzzer added
# to the corpus stays.
set -euo pipefail

fuzz=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz")
corpus=$fuzz/corpus
mkdir -p "$corpus"/{elf,dwarf,check,decode,perf_record,text,cli}

objects=()
for o in "$root"/target/bpf/programs/*/*.elf "$root"/target/bpf/compat/*/*.elf; do
    [ -f "$o" ] && objects+=("$o")
done
if command -v clang >/dev/null; then
    built=$fuzz/target/seed-objects
    mkdir -p "$built"
    for src in "$root"/userspace/tests/bpf/*.c; do
        name=$(basename "$src" .c)
        [ "$name" = uprobe_target ] && continue # a host program, not a BPF object
        for cpu in v1 v3; do
            out=$built/$name-$cpu.o
            if [ ! -f "$out" ] || [ "$src" -nt "$out" ]; then
                clang -O2 -g -target bpf -mcpu=$cpu -c "$src" -o "$out" 2>/dev/null || continue
            fi
            objects+=("$out")
        done
    done
    # Types that expand: struct s_i { struct s_{i-1} a, b, c, d; }, twelve deep (a
    # 4 KiB object whose s12 once resolved to 16 million fields).
    out=$built/nested_structs.o
    if [ ! -f "$out" ]; then
        {
            echo 'struct s0 { int a; };'
            for i in $(seq 1 12); do echo "struct s$i { struct s$((i - 1)) a, b, c, d; };"; done
            echo 'struct s12 *keep __attribute__((section(".data"), used));'
        } >"$built/nested_structs.c"
        clang -O2 -g -target bpf -c "$built/nested_structs.c" -o "$out" 2>/dev/null || true
    fi
    [ -f "$out" ] && objects+=("$out")
else
    echo "fuzz/seed.sh: no clang: the C test objects are not seeds" >&2
fi
for o in "${objects[@]}"; do
    seed=seed-$(basename "$(dirname "$o")")-$(basename "$o")
    for t in elf dwarf check; do
        cp "$o" "$corpus/$t/$seed"
    done
done

# decode: [type index][cpu][record]. Every index the target may pick, each with a record
# of a counting pattern, one of zeros, and one with text and a tail.
pattern=$(for i in $(seq 0 127); do printf '\\x%02x' $((i % 256)); done)
for i in $(seq 0 63); do
    idx=$(printf '\\x%02x' "$i")
    printf "$idx\\x01$pattern" >"$corpus/decode/seed-$i-pattern"
    { printf "$idx\\x00"; head -c 64 /dev/zero; } >"$corpus/decode/seed-$i-zeros"
    printf "$idx\\x02\\x39\\x30\\x00\\x00bash\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00/bin/ls\\x00-l\\x00\\x00\\x00" \
        >"$corpus/decode/seed-$i-text"
done

# perf_record: PERF_RECORD_SAMPLE (9) with a 12-byte raw sample, PERF_RECORD_LOST (2),
# PERF_RECORD_COMM (3); native byte order (x86: little-endian).
printf '\x09\x00\x00\x00\x00\x00\x18\x00\x0c\x00\x00\x00hello world\x00' >"$corpus/perf_record/seed-sample"
printf '\x02\x00\x00\x00\x00\x00\x18\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00' \
    >"$corpus/perf_record/seed-lost"
printf '\x03\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00' >"$corpus/perf_record/seed-comm"

# cli: argument lists as people type them (NUL-separated).
c=$corpus/cli
printf -- '--json\0--programs\0exec*,tcp?\0--maps\0*/EVENTS' >"$c/seed-select"
printf -- '--duration\0inf\0--interval\0-1\0--pid\0x' >"$c/seed-bad-values"
printf -- 'execsnoop\0--comm\0sh\0--failed\0--uid\00' >"$c/seed-filters"
printf -- '--event-type\0events=event_t\0--pages\0999999999999999999999' >"$c/seed-numbers"

# text: one sample of each format the kernel parsers read.
t=$corpus/text
printf '6.18.44-fc-v595' >"$t/seed-release"
printf '4.9.337-1-amd64' >"$t/seed-release-old"
printf 'Ubuntu 4.15.0-213.224-generic 4.15.18\n' >"$t/seed-version-signature"
printf 'Linux version 4.19.0-27-amd64 (debian-kernel@lists.debian.org) (gcc version 8.3.0 (Debian 8.3.0-6)) #1 SMP Debian 4.19.316-1 (2024-06-25)\n' \
    >"$t/seed-proc-version"
printf '0-3,5,7-8\n' >"$t/seed-cpus"
printf '           bash-1234    [001] d..31   456.789012: bpf_trace_printk: hello from pid 1234\n  kworker/u8:2-77 [000] .... 1.5: bpf_trace_printk: x\n' \
    >"$t/seed-trace-pipe"
printf 'p:redbpf_loader/p4242_0___x64_sys_execve __x64_sys_execve\nr:kprobes/aya_77_do_sys_open do_sys_open\np:other/x y\n' \
    >"$t/seed-kprobe-events"
printf 'sys_execve\nffffffff81000000 T _stext\nffffffff812b4c10 T __x64_sys_execve\nffffffff812b4c40 t do_execve\n' \
    >"$t/seed-kallsyms"
printf 'kprobe/sys_execve\nkretprobe/do_sys_open\ntracepoint/syscalls/sys_enter_execve\ntp/sched:sched_switch\nraw_tracepoint/sys_enter\nuprobe//usr/bin/bash:readline\nuretprobe/libc:malloc\nxdp/pass\nsocketfilter/f\nsocket\nclassifier\n5.10.251\n4.14\n' \
    >"$t/seed-sections"
for f in /proc/version /proc/version_signature /proc/sys/kernel/osrelease \
    /sys/devices/system/cpu/possible /sys/devices/system/cpu/online; do
    [ -r "$f" ] && cat "$f" >"$t/seed-host-$(basename "$f")" 2>/dev/null || true
done
if [ -r /proc/kallsyms ]; then
    { echo sys_openat; head -n 200 /proc/kallsyms; } >"$t/seed-host-kallsyms" 2>/dev/null || true
fi
for c in "$corpus"/*/; do
    echo "fuzz/seed.sh: $(basename "$c"): $(find "$c" -type f | wc -l) inputs"
done
