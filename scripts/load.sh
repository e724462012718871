#!/usr/bin/env bash
# Load test of the HTTP server with wrk (Debian package): 100k items (D = 256) on the durable
# store, every item served; predict and feedback through the server at 1 and 16 connections
# next to the same requests in process, in one run (bench/bench_http.cc). Prints
# requests/s, p50/p99 and the ratios. Usage: bash scripts/load.sh [ITEMS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS="${1:-100000}"
SECONDS_PER_RUN="${2:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed (bash scripts/install-deps.sh)" >&2; exit 1; }
bash scripts/build.sh >/dev/null
./build/bench/bench_http --items "$ITEMS" --seconds "$SECONDS_PER_RUN"
