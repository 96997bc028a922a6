#!/usr/bin/env bash
# Loader start-up: from exec to every built-in program attached (`loader --json`, as
# `make run` starts it), over BENCH_STARTUP_RUNS runs (10). The loader writes all its
# `attached`/`error` lines in one flush once every object is loaded and attached, so the
# time is taken when the last of those lines arrives on its stdout (a pipe), measured by
# the parent that forked it. A run whose attach lines come after the reading window (0.5 s
# after the first output, 10 s at most) or never is a failure, counted with the time it
# was given up at (its start-up took at least that long) in the median and the worst.
# Goal: median under 150 ms and no failed run. Each run is a line in the run's
# results.jsonl (bench/lib.sh), the summary too.
set -euo pipefail
cd "$(dirname "$0")/.."
LOADER=${LOADER:-target/release/loader}
RUNS=${BENCH_STARTUP_RUNS:-10}
[ "$(id -u)" = 0 ] || { echo "startup: needs root" >&2; exit 1; }
[ -x "$LOADER" ] || { echo "startup: $LOADER missing: make loader" >&2; exit 1; }
BENCH_NAME=startup
. bench/lib.sh
bench_run_dir

/usr/bin/python3 - "$LOADER" "$RUNS" "$BENCH_RUN_DIR/results.jsonl" <<'EOF' | tee "$BENCH_RUN_DIR/startup.txt"
import json, os, select, signal, statistics, subprocess, sys, time

loader, runs, results = sys.argv[1], int(sys.argv[2]), sys.argv[3]


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
    gave_up = (time.perf_counter() - t0) * 1000
    if late or last is None:
        return gave_up, False, attached, errors
    return (last - t0) * 1000, True, attached, errors


runs_done = [one() for _ in range(runs)]
ms = [r[0] for r in runs_done]
failed = [r[0] for r in runs_done if not r[1]]
_, _, attached, errors = runs_done[-1]
with open(results, "a") as f:
    for i, (t, ok, a, e) in enumerate(runs_done):
        f.write(json.dumps({"kind": "startup_run", "run": i, "ms": round(t, 1), "ok": ok,
                            "attached": a, "errors": e}) + "\n")
    f.write(json.dumps({"kind": "startup", "runs": runs, "failed": len(failed),
                        "min_ms": round(min(ms), 1), "median_ms": round(statistics.median(ms), 1),
                        "max_ms": round(max(ms), 1), "attached": attached, "errors": errors}) + "\n")
met = statistics.median(ms) < 150 and not failed
late = f" ({', '.join(f'{t:.0f} ms' for t in failed)})" if failed else ""
print(
    f"startup: exec -> {attached} programs attached ({errors} could not attach here), "
    f"{runs} runs, {len(failed)} failed (attach lines late or missing){late}: "
    f"min {min(ms):.1f} ms, median {statistics.median(ms):.1f} ms, worst {max(ms):.1f} ms "
    f"(goal: median < 150 ms, no failed run: {'met' if met else 'MISSED'})"
)
EOF
