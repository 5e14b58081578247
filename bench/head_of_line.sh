#!/usr/bin/env bash
# Large files beside small calls: the benchmark payload at 50 req/s while 240 KiB files (each
# its own source, so never from the facts cache) arrive at 10 req/s, both for 20 s after 3 s of
# warm-up, against the release build, the fake model at 0 ms and bench/agents-server.toml
# (tracing off). It shows whether a large file's parse holds up the other calls (BENCHMARKS.md,
# eleventh session).
#
#   cargo build --release --locked -p agents-server -p agents-fake-model -p agents-bench
#   bash bench/head_of_line.sh            # OUT=dir to keep the results elsewhere
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
OUT=${OUT:-$ROOT/bench/results/head-of-line-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
# The big payload: the benchmark's file repeated to 240 KiB.
python3 - "$ROOT/bench/payloads/code-analysis.json" "$OUT/big-payload.json" <<'PY'
import json, sys
small = json.load(open(sys.argv[1]))
big = dict(small)
big["source_code"] = small["source_code"] * (240 * 1024 // len(small["source_code"]) + 1)
json.dump(big, open(sys.argv[2], "w"))
PY
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# Waits until something listens on port $1, or fails naming $2.
wait_for_port() {
    for _ in $(seq 200); do
        (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "head_of_line: $2 did not start; see $OUT" >&2
    return 1
}
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
FP=$(free_port); GP=$(free_port); MP=$(free_port)
"$BIN/agents-fake-model" --addr "127.0.0.1:$FP" --latency-ms 0 >"$OUT/fake.log" 2>&1 & PIDS+=($!)
wait_for_port "$FP" "the fake model"
sed -e "s/@GRPC_PORT@/$GP/; s/@METRICS_PORT@/$MP/; s#@AUDIT_DIR@#$OUT/audit#; s/@MAX_IN_FLIGHT@/1024/g; s/@MAX_QUEUE_DELAY_MS@/10/; s#@FAKE_URL@#http://127.0.0.1:$FP/v1#" \
  "$ROOT/bench/agents-server.toml" > "$OUT/server.toml"
RUST_LOG=warn "$BIN/agents-server" serve --config "$OUT/server.toml" >"$OUT/server.log" 2>&1 & PIDS+=($!)
wait_for_port "$GP" "the agents server"
"$BIN/agents-load" grpc --addr "http://127.0.0.1:$GP" --payload "$OUT/big-payload.json" --unique-sources --rate 10 --duration 20s --warmup 3s --json > "$OUT/big.json" 2>"$OUT/big.err" & BIG=$!; PIDS+=("$BIG")
"$BIN/agents-load" grpc --addr "http://127.0.0.1:$GP" --payload "$ROOT/bench/payloads/code-analysis.json" --rate 50 --duration 20s --warmup 3s --json > "$OUT/small.json" 2>"$OUT/small.err"
wait "$BIG"
python3 - "$OUT" <<'PY'
import json, sys
print("| calls | sent | ok | errors | of which refused (RESOURCE_EXHAUSTED) | client p50 / p99 / max (ms) | runtime p50 / p99 (ms) |")
print("|---|---|---|---|---|---|---|")
for name in ("small", "big"):
    d = json.load(open(f"{sys.argv[1]}/{name}.json"))
    c, r = d["latency"], d["server_overhead"]
    ms = lambda us: f"{us / 1000:.3f}"
    refused = d["errors"].get("RESOURCE_EXHAUSTED", 0)
    print(f"| {name} | {d['sent']} | {d['ok']} | {d['errors_total']} | {refused} | "
          f"{ms(c['p50_us'])} / {ms(c['p99_us'])} / {ms(c['max_us'])} | {ms(r['p50_us'])} / {ms(r['p99_us'])} |")
PY
