#!/usr/bin/env bash
# Profiles the agents server under load with perf: the fake model (0 ms), the server with the
# benchmark config, agents-load at RATE req/s, and `perf record` on the server meanwhile.
#
#   bench/profile.sh                      # 2000 req/s for 20 s
#   RATE=3000 SECONDS_=30 bench/profile.sh
#   PERF_CALLGRAPH=dwarf PERF_FREQ=199 bench/profile.sh   # call stacks through Rust code (no frame pointers)
#   UNIQUE_SOURCES=1 bench/profile.sh     # every request its own source: each call parses (no facts cache hits)
#
# Writes perf.data, the top symbols (self time) and the server's CPU per call (cpu.txt, over the
# profiled window, at the offered rate) to bench/results/profile-<UTC>/. Needs
# `perf` (Debian: linux-perf) and the release binaries (SKIP_BUILD=1 to use the built ones; BIN=dir
# to profile binaries copied elsewhere, e.g. to compare two builds).
# Every process this script starts is stopped by its exit trap.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
RATE=${RATE:-2000}
SECONDS_=${SECONDS_:-20}
UPSTREAM_LATENCY=${UPSTREAM_LATENCY:-0}
SERVER_MAX_IN_FLIGHT=${SERVER_MAX_IN_FLIGHT:-1024}
SERVER_MAX_QUEUE_DELAY_MS=${SERVER_MAX_QUEUE_DELAY_MS:-10}
OUT=${OUT:-$BENCH/results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
mkdir -p "$OUT"

command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p agents-server -p agents-fake-model -p agents-bench)
fi

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_until() { # seconds command...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "not ready: $*" >&2; return 1; }
        sleep 0.1
    done
}

fake_port=$(free_port)
"$BIN/agents-fake-model" --addr "127.0.0.1:$fake_port" --latency-ms "$UPSTREAM_LATENCY" >"$OUT/fake.log" 2>&1 &
fake=$!
PIDS+=("$fake")
wait_until 10 grep -q listening "$OUT/fake.log"

grpc=$(free_port); metrics=$(free_port)
sed -e "s|@GRPC_PORT@|$grpc|" -e "s|@METRICS_PORT@|$metrics|" -e "s|@AUDIT_DIR@|$OUT/audit|" \
    -e "s|@FAKE_URL@|http://127.0.0.1:$fake_port/v1|" -e "s|@MAX_IN_FLIGHT@|$SERVER_MAX_IN_FLIGHT|g" -e "s|@MAX_QUEUE_DELAY_MS@|$SERVER_MAX_QUEUE_DELAY_MS|g" \
    "$BENCH/agents-server.toml" >"$OUT/agents-server.toml"
RUST_LOG=${RUST_LOG:-warn} "$BIN/agents-server" serve --config "$OUT/agents-server.toml" >"$OUT/server.log" 2>&1 &
server=$!
PIDS+=("$server")
wait_until 30 python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$metrics/readyz', timeout=2)"

"$BIN/agents-load" grpc --addr "http://127.0.0.1:$grpc" --agent code-analysis \
    --payload "$BENCH/payloads/code-analysis.json" $([[ ${UNIQUE_SOURCES:-0} == 1 ]] && echo --unique-sources) --rate "$RATE" --warmup 3s \
    --duration "$((SECONDS_ + 2))s" --upstream-latency-ms "$UPSTREAM_LATENCY" >"$OUT/load.txt" &
load=$!
PIDS+=("$load")
sleep 4
# CPU time (utime + stime, clock ticks) over the profiled window, for CPU per call: the server's,
# and the load tool's and fake model's, which share the same two cores (the budget the server
# has left at a given rate).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_before=$(cpu_ticks "$server")
peers_before=$(( $(cpu_ticks "$load") + $(cpu_ticks "$fake") ))
perf record -F "${PERF_FREQ:-499}" --call-graph "${PERF_CALLGRAPH:-fp}" -p "$server" -o "$OUT/perf.data" -- sleep "$SECONDS_" 2>"$OUT/perf-record.log"
ticks_after=$(cpu_ticks "$server")
peers_after=$(( $(cpu_ticks "$load") + $(cpu_ticks "$fake") ))
wait "$load" || true
ok_rate=$(sed -n 's/.*throughput \([0-9.]*\) ok\/s.*/\1/p' "$OUT/load.txt")
python3 - "$ticks_before" "$ticks_after" "$peers_before" "$peers_after" "$(getconf CLK_TCK)" "$SECONDS_" "${ok_rate:-$RATE}" >"$OUT/cpu.txt" <<'PY'
import sys
before, after, peers_before, peers_after, hz, seconds, ok_rate = (float(x) for x in sys.argv[1:])
cpu = (after - before) / hz
peers = (peers_after - peers_before) / hz
print(f"server CPU {cpu:.2f} s over {seconds:.0f} s ({100 * cpu / seconds:.0f} % of one core); "
      f"{1e6 * cpu / (seconds * ok_rate):.0f} us per successful call at {ok_rate:.0f} ok/s "
      "(perf running; refused calls' CPU counts too)")
print(f"load tool + fake model CPU {peers:.2f} s ({100 * peers / seconds:.0f} % of one core); "
      f"{1e6 * peers / (seconds * ok_rate):.0f} us per successful call")
PY
perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | grep '%' | head -60 >"$OUT/top-self.txt" || true
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | grep '%' | head -80 >"$OUT/top-children.txt" || true
cat "$OUT/load.txt"
cat "$OUT/cpu.txt"
echo "--- top symbols by self time ($OUT/top-self.txt)"
head -40 "$OUT/top-self.txt"
