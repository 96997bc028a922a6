#!/usr/bin/env bash
# Prometheus scrape cost with 10k series: `loader --metrics` on bench/metrics/series.bpf.c,
# whose hash map is filled with BENCH_SERIES (10000) distinct keys (getpgid calls with
# those arguments), scraped BENCH_SCRAPES (50) times in a row over HTTP. Figures: scrape
# latency (median, p90, worst, as the client measures a GET of /metrics), the loader's CPU
# per scrape (its threads' CPU time over the scrapes, minus what it used over as long a
# stretch without scrapes), the body's size and series count. One line in the run's
# results.jsonl (bench/lib.sh). Figures only: nothing is asserted but the series count.
set -euo pipefail
cd "$(dirname "$0")/.."
LOADER=${LOADER:-target/release/loader}
SERIES=${BENCH_SERIES:-10000}
SCRAPES=${BENCH_SCRAPES:-50}
PORT=${BENCH_METRICS_PORT:-19435}
[ "$(id -u)" = 0 ] || { echo "metrics: needs root" >&2; exit 1; }
[ -x "$LOADER" ] || { echo "metrics: $LOADER missing: make loader" >&2; exit 1; }
BENCH_NAME=metrics
. bench/lib.sh
bench_run_dir
OBJ=target/bench/series.bpf.o
mkdir -p target/bench
clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c bench/metrics/series.bpf.c -o "$OBJ"

"$LOADER" --json --metrics "127.0.0.1:$PORT" --metrics-max-series $((SERIES * 2)) "$OBJ" \
    >"$BENCH_RUN_DIR/metrics-loader.jsonl" 2>"$BENCH_RUN_DIR/metrics-loader.err" &
LPID=$!
trap 'kill -INT $LPID 2>/dev/null || true; wait $LPID 2>/dev/null || true' EXIT

/usr/bin/python3 - "$LPID" "$PORT" "$SERIES" "$SCRAPES" "$BENCH_RUN_DIR/results.jsonl" "$LOADER" <<'PY' | tee "$BENCH_RUN_DIR/metrics.txt"
import glob, json, os, statistics, sys, time, urllib.request

pid, port, series, scrapes, results, loader = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
url = f"http://127.0.0.1:{port}/metrics"
BASE = 2000000000


def get():
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def cpu_ns():
    # Every thread of the loader: first field of schedstat is its time on a CPU, in ns.
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(f).read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


deadline = time.time() + 20
while True:
    try:
        get()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("metrics: the loader never served /metrics")
        time.sleep(0.1)

for i in range(series):
    try:
        os.getpgid(BASE + i)
    except (ProcessLookupError, OverflowError, PermissionError):
        pass

body = get()
lines = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
# The map's series: bpf_<object>_<map>{n="..."} (README: metric names).
mine = [l for l in lines if l.startswith("bpf_series_bpf_series{n=")]
if len(mine) < series:
    sys.exit(f"metrics: {len(mine)} series of the map served, {series} wanted")

get()  # warm
lat, c0, t0 = [], cpu_ns(), time.perf_counter()
for _ in range(scrapes):
    t = time.perf_counter()
    get()
    lat.append((time.perf_counter() - t) * 1000)
busy_wall, busy_cpu = time.perf_counter() - t0, cpu_ns() - c0
c1 = cpu_ns()
time.sleep(busy_wall)
idle_cpu = cpu_ns() - c1
per_scrape = max(busy_cpu - idle_cpu, 0) / scrapes / 1e6
lat.sort()
row = {
    "kind": "metrics",
    "series": len(mine),
    "series_total": len(lines),
    "scrapes": scrapes,
    "body_bytes": len(body),
    "latency_ms_median": round(statistics.median(lat), 2),
    "latency_ms_p90": round(lat[int(len(lat) * 0.9) - 1], 2),
    "latency_ms_max": round(lat[-1], 2),
    "cpu_ms_per_scrape": round(per_scrape, 2),
    "idle_cpu_ms_per_s": round(idle_cpu / busy_wall / 1e6, 2),
    "loader": loader,
}
print(
    f"metrics: {row['series']} map series ({row['series_total']} in all, {row['body_bytes']} bytes): "
    f"scrape latency median {row['latency_ms_median']} ms, p90 {row['latency_ms_p90']} ms, worst {row['latency_ms_max']} ms "
    f"over {scrapes} scrapes; loader CPU {row['cpu_ms_per_scrape']} ms per scrape "
    f"(idle: {row['idle_cpu_ms_per_s']} ms/s subtracted)"
)
with open(results, "a") as f:
    f.write(json.dumps(row) + "\n")
PY
