#!/usr/bin/env bash
# The benchmark's one command (see bench/README.md):
#
#   bash bench/run.sh            full run (~30 min): writes bench/results/summary.{json,md}, prints the table
#   bash bench/run.sh --smoke    a few seconds per scenario, no LiteLLM, no thresholds; exits 0 unless something
#                                crashes. Output goes to $CACHE/smoke (the committed numbers stay untouched).
#   options: --no-litellm   skip the LiteLLM peer
#            --only load,stream,memory,startup,variants,usage   run some phases (default: all)
#
# Installs what it needs on first use and caches it outside the clone ($LLM_GATEWAY_BENCH_CACHE, default
# /var/tmp/llm-gateway-bench): wrk (Debian), the gwbench helper crate (bench/tool, its own target dir), the
# LiteLLM venv (pinned in bench/litellm/requirements.txt; full mode only). The gateway is built with cargo into
# $CARGO_TARGET_DIR (default /var/tmp/llm-gateway-target): release for a full run; for --smoke the binary in
# $LLM_GATEWAY_BIN when set (scripts/test.sh sets it to the debug build), else a debug build.
# All traffic goes to 127.0.0.1.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
CACHE=${LLM_GATEWAY_BENCH_CACHE:-/var/tmp/llm-gateway-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/llm-gateway-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export DEBIAN_FRONTEND=noninteractive

MODE=full
LITELLM=yes
ONLY=load,stream,memory,startup,variants,usage
while (($#)); do
    case "$1" in
        --smoke) MODE=smoke ;;
        --no-litellm) LITELLM=no ;;
        --only) ONLY=$2; shift ;;
        *) echo "usage: bash bench/run.sh [--smoke] [--no-litellm] [--only load,stream,memory,startup,variants,usage]" >&2; exit 2 ;;
    esac
    shift
done
# LiteLLM's install (~100 packages) takes minutes on a fresh machine: too slow for the CI smoke run.
[[ $MODE == smoke ]] && LITELLM=no

START=$SECONDS
mkdir -p "$CACHE"
say() { printf '[bench.sh] %s\n' "$*"; }

# 1,000 concurrent streams need ~2,000 descriptors in a proxy (and as many in the client and the upstream).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[[ $nofile == unlimited || $nofile -ge 4096 ]] || say "warning: open-files limit $nofile is low for 1,000 streams"

# --- wrk (Debian) ---------------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo -n)
    "${sudo[@]}" apt-get install -y -q --no-install-recommends wrk >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q --no-install-recommends wrk >/dev/null; }
fi
WRK=$(command -v wrk)

# --- gwbench: mock upstream, bare proxy, SSE client, start-up timer (not a workspace member) -------------------
# A full run also builds the axum+reqwest reference proxy (feature axum-ref; separate target dir, so switching
# between smoke and full runs never rebuilds).
say "building bench/tool (gwbench)"
if [[ $MODE == smoke ]]; then
    CARGO_TARGET_DIR="$CACHE/target" cargo build --release --locked -q --manifest-path "$BENCH/tool/Cargo.toml"
    TOOL="$CACHE/target/release/gwbench"
else
    CARGO_TARGET_DIR="$CACHE/target-full" cargo build --release --locked -q --features axum-ref \
        --manifest-path "$BENCH/tool/Cargo.toml"
    TOOL="$CACHE/target-full/release/gwbench"
fi

# --- the gateway ------------------------------------------------------------------------------------------------
if [[ $MODE == smoke && -n ${LLM_GATEWAY_BIN:-} && -x ${LLM_GATEWAY_BIN:-} ]]; then
    GATEWAY=$LLM_GATEWAY_BIN
elif [[ $MODE == smoke ]]; then
    say "building the gateway (debug)"
    (cd "$REPO" && cargo build -q --bin llm-gateway)
    GATEWAY="$CARGO_TARGET_DIR/debug/llm-gateway"
else
    say "building the gateway (release)"
    (cd "$REPO" && cargo build -q --release --bin llm-gateway)
    GATEWAY="$CARGO_TARGET_DIR/release/llm-gateway"
fi

# --- LiteLLM (PyPI, pinned, own venv; full mode only) -----------------------------------------------------------
LITELLM_VENV=""
if [[ $LITELLM == yes ]]; then
    REQ="$BENCH/litellm/requirements.txt"
    VENV="$CACHE/litellm-venv"
    want="$(sha256sum "$REQ" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x $VENV/bin/litellm && -f $VENV/.stamp && "$(cat "$VENV/.stamp")" == "$want" ]]; then
        :
    else
        say "installing LiteLLM into $VENV (first time: a few minutes)"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        # Wheels only (no package build scripts run); versions pinned, see the file's header.
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-input --only-binary :all: -r "$REQ"
        echo "$want" >"$VENV/.stamp"
    fi
    LITELLM_VENV=$VENV
fi

if [[ $MODE == smoke ]]; then OUT="$CACHE/smoke"; else OUT="$BENCH/results"; fi
say "setup took $((SECONDS - START))s; running ($MODE)"
args=(--tool "$TOOL" --gateway "$GATEWAY" --wrk "$WRK" --out "$OUT" --only "$ONLY")
if [[ $MODE == smoke ]]; then args+=(--smoke); else args+=(--axum-ref); fi
[[ -n $LITELLM_VENV ]] && args+=(--litellm-venv "$LITELLM_VENV")
python3 "$BENCH/run.py" "${args[@]}"
say "done in $((SECONDS - START))s"
