#!/usr/bin/env bash
# Side-by-side load benchmark: the agents server and the LiteLLM proxy in front of the same fake
# OpenAI-compatible upstream, on this machine, at the same constant arrival rates.
#
#   bench/compare.sh                 # the full run (defaults below), results in bench/results/<UTC>/
#   DURATION=10s WARMUP=2s RATES="100 1000" bench/compare.sh   # a short smoke run
#
# Knobs (environment):
#   RATES               our server's rates, req/s         (10 50 100 500 1000 2000 3000 4000 5000 6000)
#   UPSTREAM_LATENCIES  the fake model's fixed latency, ms (0 50)
#   DURATION, WARMUP    measured window and warm-up per rate (30s, 5s)
#   CONNECTIONS         gRPC channels / HTTP pools in the load tool (4)
#   LOAD_THREADS        tokio workers in the load tool (2)
#   LOAD_MAX_IN_FLIGHT  the tool's own in-flight cap (4096)
#   SERVER_MAX_IN_FLIGHT the server's limits.max_in_flight (1024)
#   SERVER_MAX_QUEUE_DELAY_MS the server's limits.max_queue_delay_ms (10; 0 turns it off)
#   TIMEOUT             per-request timeout / gRPC deadline (10s)
#   LITELLM             1 to run the LiteLLM proxy too, 0 to skip it (1)
#   LITELLM_WORKERS     LiteLLM worker counts to run (1 2)
#   LITELLM_RATES_1     rates for one LiteLLM worker (10 50 100): it cannot hold 100 req/s
#   LITELLM_RATES_2     rates for two workers (10 50 100 200)
#   LITELLM_DURATION    measured window for LiteLLM, capped to DURATION (20s)
#   SATURATION          1 to run at twice the knee afterwards (1); SATURATION_RATE to force one
#   SATURATION_DURATION the saturation run's window (60s)
#   UNIQUE_SOURCES      1: every request to our server carries its own source (the load tool's
#                       --unique-sources), so each call parses and the server's facts cache never
#                       answers; 0: the payload file as is, parsed once then cached (0)
#   SKIP_BUILD          1 to use the release binaries already built
#   OUT                 the results directory
#
# Every process this script starts is stopped by its exit trap.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
RATES=${RATES:-"10 50 100 500 1000 2000 3000 4000 5000 6000"}
UPSTREAM_LATENCIES=${UPSTREAM_LATENCIES:-"0 50"}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=${CONNECTIONS:-4}
LOAD_THREADS=${LOAD_THREADS:-2}
LOAD_MAX_IN_FLIGHT=${LOAD_MAX_IN_FLIGHT:-4096}
SERVER_MAX_IN_FLIGHT=${SERVER_MAX_IN_FLIGHT:-1024}
SERVER_MAX_QUEUE_DELAY_MS=${SERVER_MAX_QUEUE_DELAY_MS:-10}
TIMEOUT=${TIMEOUT:-10s}
LITELLM=${LITELLM:-1}
LITELLM_WORKERS=${LITELLM_WORKERS:-"1 2"}
LITELLM_RATES_1=${LITELLM_RATES_1:-"10 50 100"}
LITELLM_RATES_2=${LITELLM_RATES_2:-"10 50 100 200"}
LITELLM_DURATION=${LITELLM_DURATION:-20s}
LITELLM_VERSION=1.106.12
SATURATION=${SATURATION:-1}
SATURATION_RATE=${SATURATION_RATE:-}
SATURATION_DURATION=${SATURATION_DURATION:-60s}
SKIP_BUILD=${SKIP_BUILD:-0}
UNIQUE_SOURCES=${UNIQUE_SOURCES:-0}
AGENTS_SOURCES=()
[[ $UNIQUE_SOURCES == 1 ]] && AGENTS_SOURCES=(--unique-sources)
OUT=${OUT:-$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)}
VENV=$BENCH/.venv-litellm
MASTER_KEY=sk-bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release

mkdir -p "$OUT"
log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- process bookkeeping: everything started is stopped on exit ------------------------------
PIDS=()
GROUPS_STARTED=()
stop_pid() { # pid [group]: TERM, up to 5 s, then KILL
    local pid=$1 group=${2:-}
    if kill -0 "$pid" 2>/dev/null; then
        if [[ -n $group ]]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            if [[ -n $group ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
        fi
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${GROUPS_STARTED[@]}"; do stop_pid "$pid" group; done
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # description seconds command...: polls until the command succeeds
    local what=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then log "$what not ready after ${secs}s"; return 1; fi
        sleep 0.1
    done
}
http_ok() { python3 - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}
# Resident memory in KiB of a process and all its descendants: "VmRSS VmHWM" (HWM summed too).
rss_tree() {
    local root=$1 pids p rss=0 hwm=0 r h
    pids=$(ps -e -o pid=,ppid= | awk -v root="$root" '
        { parent[$1] = $2 } END {
            print root
            changed = 1; keep[root] = 1
            while (changed) { changed = 0
                for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; changed = 1 } } }')
    for p in $pids; do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        h=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        rss=$((rss + ${r:-0})); hwm=$((hwm + ${h:-0}))
    done
    echo "$rss $hwm"
}
# Samples rss_tree every second into a file until stopped: "unix_seconds rss_kib hwm_kib".
start_sampler() { # pid file
    local pid=$1 file=$2
    (while kill -0 "$pid" 2>/dev/null; do echo "$(date +%s) $(rss_tree "$pid")"; sleep 1; done) >"$file" &
    PIDS+=($!)
    SAMPLER=$!
}

# --- build and record the machine ------------------------------------------------------------
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release --locked -p agents-server -p agents-fake-model -p agents-bench)
fi
for b in agents-server agents-fake-model agents-load; do
    [[ -x $BIN/$b ]] || { log "missing $BIN/$b (build first or unset SKIP_BUILD)"; exit 1; }
done

{
    echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
    echo "python: $(python3 --version 2>&1)"
    echo "settings: RATES='$RATES' UPSTREAM_LATENCIES='$UPSTREAM_LATENCIES' DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS LOAD_THREADS=$LOAD_THREADS SERVER_MAX_IN_FLIGHT=$SERVER_MAX_IN_FLIGHT SERVER_MAX_QUEUE_DELAY_MS=$SERVER_MAX_QUEUE_DELAY_MS LITELLM_WORKERS='$LITELLM_WORKERS' LITELLM_DURATION=$LITELLM_DURATION UNIQUE_SOURCES=$UNIQUE_SOURCES"
} >"$OUT/machine.txt"

# --- LiteLLM: its own virtualenv, pinned -----------------------------------------------------
if [[ $LITELLM == 1 ]]; then
    if ! "$VENV/bin/python" -c "import litellm, sys; from importlib.metadata import version; sys.exit(version('litellm') != '$LITELLM_VERSION')" 2>/dev/null; then
        log "installing litellm[proxy]==$LITELLM_VERSION into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
    fi
    echo "litellm: $("$VENV/bin/python" -c "from importlib.metadata import version; print(version('litellm'))")" >>"$OUT/machine.txt"
fi

# --- the pieces ------------------------------------------------------------------------------
FAKE_PID=; FAKE_URL=
start_fake() { # latency_ms
    local port; port=$(free_port)
    "$BIN/agents-fake-model" --addr "127.0.0.1:$port" --latency-ms "$1" >"$OUT/fake-$1.log" 2>&1 &
    FAKE_PID=$!; PIDS+=("$FAKE_PID")
    FAKE_URL="http://127.0.0.1:$port/v1"
    wait_for "fake model" 10 grep -q listening "$OUT/fake-$1.log"
}

SERVER_PID=; SERVER_ADDR=; SERVER_METRICS=; TELEMETRY=none
start_server() { # tag
    local tag=$1 grpc metrics cfg
    grpc=$(free_port); metrics=$(free_port)
    cfg=$OUT/agents-server-$tag.toml
    rm -rf "$OUT/audit-$tag"
    sed -e "s|@GRPC_PORT@|$grpc|" -e "s|@METRICS_PORT@|$metrics|" -e "s|@AUDIT_DIR@|$OUT/audit-$tag|" \
        -e "s|@FAKE_URL@|$FAKE_URL|" -e "s|@MAX_IN_FLIGHT@|$SERVER_MAX_IN_FLIGHT|g" -e "s|@MAX_QUEUE_DELAY_MS@|$SERVER_MAX_QUEUE_DELAY_MS|g" \
        "$BENCH/agents-server.toml" >"$cfg"
    # Tracing with 1 % sampling, when this build has the [telemetry] section.
    cp "$cfg" "$cfg.try"
    printf '\n[telemetry]\nsampling_ratio = 0.01\n' >>"$cfg.try"
    if "$BIN/agents-server" check-config "$cfg.try" >/dev/null 2>&1; then
        mv "$cfg.try" "$cfg"; TELEMETRY="sampling_ratio=0.01"
    else
        rm -f "$cfg.try"; TELEMETRY="none (this build has no [telemetry] section)"
    fi
    RUST_LOG=${RUST_LOG:-warn} "$BIN/agents-server" serve --config "$cfg" >"$OUT/agents-server-$tag.log" 2>&1 &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    SERVER_ADDR="http://127.0.0.1:$grpc"
    SERVER_METRICS="http://127.0.0.1:$metrics/metrics"
    wait_for "agents-server" 30 http_ok "http://127.0.0.1:$metrics/readyz"
}

# The server's facts-cache counters after a run (cumulative since the server started), one line
# per run in facts-cache.txt: shows whether the measured calls parsed or hit the cache.
record_facts_cache() { # name
    python3 - "$SERVER_METRICS" "$1" >>"$OUT/facts-cache.txt" <<'PY' || true
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
values = {l.split()[0]: l.split()[1] for l in text.splitlines() if l.startswith("agents_facts_cache")}
print(sys.argv[2], " ".join(f"{k}={v}" for k, v in sorted(values.items())) or "no facts cache")
PY
}

LITELLM_PID=; LITELLM_URL=
start_litellm() { # workers tag
    local workers=$1 tag=$2 port cfg
    port=$(free_port); cfg=$OUT/litellm-$tag.yaml
    sed -e "s|@FAKE_URL@|$FAKE_URL|" "$BENCH/litellm.yaml" >"$cfg"
    # setsid: its own process group, so the workers it forks stop with it.
    LITELLM_MASTER_KEY=$MASTER_KEY LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
        setsid "$VENV/bin/litellm" --config "$cfg" --host 127.0.0.1 --port "$port" --num_workers "$workers" \
        >"$OUT/litellm-$tag.log" 2>&1 &
    LITELLM_PID=$!; GROUPS_STARTED+=("$LITELLM_PID")
    LITELLM_URL="http://127.0.0.1:$port/v1/chat/completions"
    wait_for "litellm" 120 http_ok "http://127.0.0.1:$port/health/liveliness"
}

# One rate against one target; writes <name>.json (the tool's report plus RSS figures).
drive() { # name pid duration -- agents-load args...
    local name=$1 pid=$2 duration=$3; shift 4
    local samples=$OUT/$name.rss
    start_sampler "$pid" "$samples"
    local sampler=$SAMPLER
    log "$name"
    if ! "$BIN/agents-load" "$@" --duration "$duration" --warmup "$WARMUP" --connections "$CONNECTIONS" \
        --threads "$LOAD_THREADS" --max-in-flight "$LOAD_MAX_IN_FLIGHT" --timeout "$TIMEOUT" \
        --json >"$OUT/$name.load.json" 2>"$OUT/$name.load.err"; then
        log "$name: the load tool failed: $(tail -1 "$OUT/$name.load.err")"
    fi
    local now; now=$(rss_tree "$pid")
    stop_pid "$sampler"
    python3 - "$OUT/$name.load.json" "$samples" "$now" "$OUT/$name.json" <<'PY'
import json, sys
load, samples, now, out = sys.argv[1:5]
try:
    report = json.load(open(load))
except (OSError, ValueError):
    report = {"failed": True}
rows = [l.split() for l in open(samples) if len(l.split()) == 3]
rss = [int(r[1]) for r in rows]
now_rss, now_hwm = (int(x) for x in now.split())
report["rss"] = {
    "end_kib": now_rss, "hwm_kib": now_hwm,
    "max_sampled_kib": max(rss + [now_rss]),
    "first_sampled_kib": rss[0] if rss else now_rss,
    "samples": [[int(r[0]), int(r[1])] for r in rows],
}
json.dump(report, open(out, "w"))
PY
}

# --- the runs --------------------------------------------------------------------------------
for latency in $UPSTREAM_LATENCIES; do
    start_fake "$latency"
    start_server "u$latency"
    for rate in $RATES; do
        drive "agents-u$latency-r$rate" "$SERVER_PID" "$DURATION" -- grpc --addr "$SERVER_ADDR" \
            --agent code-analysis --payload "$BENCH/payloads/code-analysis.json" "${AGENTS_SOURCES[@]}" \
            --rate "$rate" --upstream-latency-ms "$latency" --label agents
        record_facts_cache "agents-u$latency-r$rate"
    done
    stop_pid "$SERVER_PID"
    if [[ $LITELLM == 1 ]]; then
        for workers in $LITELLM_WORKERS; do
            rates_var=LITELLM_RATES_$workers
            rates=${!rates_var:-$LITELLM_RATES_2}
            start_litellm "$workers" "w$workers-u$latency"
            for rate in $rates; do
                drive "litellm$workers-u$latency-r$rate" "$LITELLM_PID" "$LITELLM_DURATION" -- openai \
                    --url "$LITELLM_URL" --payload "$BENCH/payloads/chat.json" \
                    -H "Authorization: Bearer $MASTER_KEY" \
                    --overhead-header x-litellm-overhead-duration-ms \
                    --rate "$rate" --upstream-latency-ms "$latency" --label "litellm-${workers}w"
            done
            stop_pid "$LITELLM_PID" group
        done
    fi
    stop_pid "$FAKE_PID"
done
echo "telemetry: $TELEMETRY" >>"$OUT/machine.txt"

# --- saturation: twice the knee (0 ms upstream) ----------------------------------------------
if [[ $SATURATION == 1 ]]; then
    first_latency=${UPSTREAM_LATENCIES%% *}
    if [[ -z $SATURATION_RATE ]]; then
        knee=$(python3 "$BENCH/summarize.py" --knee "$OUT" "$first_latency" || echo 0)
        SATURATION_RATE=$((${knee%.*} * 2))
    fi
    if [[ -n $SATURATION_RATE && $SATURATION_RATE != 0 ]]; then
        start_fake "$first_latency"
        start_server "saturation"
        drive "saturation-u$first_latency-r$SATURATION_RATE" "$SERVER_PID" "$SATURATION_DURATION" -- grpc \
            --addr "$SERVER_ADDR" --agent code-analysis --payload "$BENCH/payloads/code-analysis.json" "${AGENTS_SOURCES[@]}" \
            --rate "$SATURATION_RATE" --upstream-latency-ms "$first_latency" --label agents-saturation
        stop_pid "$SERVER_PID"
        stop_pid "$FAKE_PID"
    else
        log "no knee found: skipping the saturation run"
    fi
fi

python3 "$BENCH/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "results in $OUT"
