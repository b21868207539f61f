#!/usr/bin/env bash
# Where does the gateway spend its CPU per request? Profiles the release gateway with `perf` (DWARF call graphs)
# while wrk drives it at concurrency 16 against the gwbench mock upstream, then folds the samples:
#
#   bash bench/profile.sh [anthropic-1k|anthropic-100k|openai-1k] [SECONDS]
#
# Writes bench/results/raw/profile-BODY/{perf.data,stacks.folded,report.txt} (git-ignored; stacks.folded feeds
# any flamegraph tool), copies report.txt to bench/results/profile-BODY.txt (committed) and prints it: inclusive and self shares of the gateway's samples, plus the CPU
# per request of the gateway and of the bare hyper proxy measured right before, for scale.
# Needs bench/run.sh to have run once (it builds gwbench and installs wrk); installs linux-perf if missing.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
CACHE=${LLM_GATEWAY_BENCH_CACHE:-/var/tmp/llm-gateway-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/llm-gateway-target}
BODY=${1:-anthropic-1k}
SECS=${2:-8}
case $BODY in
    anthropic-1k | anthropic-100k) ROUTE=/v1/messages ;;
    openai-1k) ROUTE=/v1/chat/completions ;;
    *) echo "usage: bash bench/profile.sh [anthropic-1k|anthropic-100k|openai-1k] [SECONDS]" >&2; exit 2 ;;
esac
command -v perf >/dev/null 2>&1 || { apt-get install -y -q --no-install-recommends linux-perf >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends linux-perf >/dev/null; }; }
TOOL="$CACHE/target/release/gwbench"
[[ -x $TOOL ]] || CARGO_TARGET_DIR="$CACHE/target" cargo build --release --locked -q --manifest-path "$BENCH/tool/Cargo.toml"
(cd "$REPO" && cargo build -q --release --bin llm-gateway)
GW="$CARGO_TARGET_DIR/release/llm-gateway"

OUT="$BENCH/results/raw/profile-$BODY"
rm -rf "$OUT" && mkdir -p "$OUT/cfg"
python3 "$BENCH/gen_bodies.py" "$OUT/bodies" >/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(port); GW_PORT=$(port); BARE_PORT=$(port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$TOOL" upstream --listen "127.0.0.1:$UP_PORT" >"$OUT/upstream.log" 2>&1 & pids+=($!); UP_PID=$!
printf 'server: {listen: 127.0.0.1:%s}\nupstream: {base_url: http://127.0.0.1:%s}\nsecrets: {backend: file}\nrouting: {session_affinity: true}\n' \
    "$GW_PORT" "$UP_PORT" >"$OUT/cfg/config.yaml"
env -u LLM_GATEWAY_MASTER_KEY "$GW" --config "$OUT/cfg/config.yaml" add-api-key --key sk-ant-bench --name bench >/dev/null
env -u LLM_GATEWAY_MASTER_KEY "$GW" --config "$OUT/cfg/config.yaml" server --listen "127.0.0.1:$GW_PORT" 2>"$OUT/gateway.log" &
pids+=($!); GW_PID=$!
"$TOOL" proxy --listen "127.0.0.1:$BARE_PORT" --upstream "http://127.0.0.1:$UP_PORT" >"$OUT/bare.log" 2>&1 & pids+=($!); BARE_PID=$!
for i in $(seq 100); do
    curl -sf "http://127.0.0.1:$GW_PORT/health" >/dev/null && curl -sf "http://127.0.0.1:$BARE_PORT/health" >/dev/null && break
    sleep 0.1
done

export BENCH_BODY="$OUT/bodies/$BODY.json"
if [[ $BODY == openai-* ]]; then
    export BENCH_HEADERS="authorization: Bearer sk-ant-bench"
else
    export BENCH_HEADERS="anthropic-version: 2023-06-01|x-claude-code-session-id: 6d1f0c1e-bench|x-api-key: sk-ant-bench"
fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { wrk -t2 -c16 -d"$1"s -s "$BENCH/wrk/post.lua" "$2" | sed -n 's/^WRK_JSON //p' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
cpu_per_req() { # pid url secs -> µs of the pid's CPU per request
    local t0 n t1
    t0=$(ticks "$1"); n=$(load "$3" "$2"); t1=$(ticks "$1")
    python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $n, 1), $n)"
}
load 2 "http://127.0.0.1:$GW_PORT$ROUTE" >/dev/null
read -r bare_us bare_n < <(cpu_per_req "$BARE_PID" "http://127.0.0.1:$BARE_PORT$ROUTE" 5)
read -r gw_us gw_n < <(cpu_per_req "$GW_PID" "http://127.0.0.1:$GW_PORT$ROUTE" 5)

perf record -q -F 997 --call-graph dwarf,32768 -p "$GW_PID" -o "$OUT/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
PERF=$!
sleep 0.3
prof_n=$(load "$SECS" "http://127.0.0.1:$GW_PORT$ROUTE")
wait "$PERF" || true
{
    echo "gateway $BODY at concurrency 16 (release build, $(cd "$REPO" && git describe --always --dirty))"
    echo "CPU per request: gateway $gw_us µs ($gw_n requests in 5 s), bare hyper proxy $bare_us µs ($bare_n requests in 5 s)"
    echo "profiled: $prof_n requests in $SECS s"
    echo
    perf script -i "$OUT/perf.data" 2>/dev/null | python3 "$BENCH/fold.py" --folded "$OUT/stacks.folded" --top 70 \
        --match '^llm_gateway|^reqwest|^hyper|^axum|^tower|^tracing|^serde|^time::|malloc|free|^core::fmt|^alloc::fmt|^__GI___writev|^tokio::runtime::scheduler|sysvec|^tcp_|^futex|^__x64_sys_futex|^do_syscall'
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$BENCH/results/profile-$BODY.txt"
