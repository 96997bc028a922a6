#!/usr/bin/env bash
# Loader start-up: from exec to every built-in program attached (`loader --json`, as
# `make run` starts it), over BENCH_STARTUP_RUNS runs (10). The loader writes all its
# `attached`/`error` lines in one flush once every object is loaded and attached, so the
# time is taken when the last of those lines arrives on its stdout (a pipe), measured by
# the parent that forked it. Goal: median under 150 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
LOADER=${LOADER:-target/release/loader}
RUNS=${BENCH_STARTUP_RUNS:-10}
[ "$(id -u)" = 0 ] || { echo "startup: needs root" >&2; exit 1; }
[ -x "$LOADER" ] || { echo "startup: $LOADER missing: make loader" >&2; exit 1; }

/usr/bin/python3 - "$LOADER" "$RUNS" <<'EOF'
import os, select, signal, statistics, subprocess, sys, time

loader, runs = sys.argv[1], int(sys.argv[2])


def one():
    t0 = time.perf_counter()
    p = subprocess.Popen([loader, "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fd = p.stdout.fileno()
    buf, last = b"", None
    deadline = t0 + 10
    # Read until 0.5 s after the first output (the attach lines come in one flush).
    while time.perf_counter() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            now = time.perf_counter()
            buf += chunk
            if b'"type":"attached"' in chunk or b'"type":"error"' in chunk:
                last = now
            deadline = min(deadline, now + 0.5)
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=10)
    buf += rest
    lines = buf.splitlines()
    attached = sum(b'"type":"attached"' in l for l in lines)
    errors = sum(b'"type":"error"' in l for l in lines)
    late = b'"type":"attached"' in rest or b'"type":"error"' in rest
    return (None if late or last is None else (last - t0) * 1000), attached, errors


results = [one() for _ in range(runs)]
ms = [r[0] for r in results if r[0] is not None]
_, attached, errors = results[-1]
if not ms:
    print("startup: no run attached anything")
    sys.exit(1)
print(
    f"startup: exec -> {attached} programs attached ({errors} could not attach here), "
    f"{len(ms)} runs: min {min(ms):.1f} ms, median {statistics.median(ms):.1f} ms, "
    f"max {max(ms):.1f} ms (goal < 150 ms: {'met' if statistics.median(ms) < 150 else 'MISSED'})"
)
EOF
