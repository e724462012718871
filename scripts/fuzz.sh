#!/usr/bin/env bash
# Fuzzes the HTTP API's request decoders with libFuzzer (clang, AddressSanitizer and
# UndefinedBehaviorSanitizer) for a bounded time: bash scripts/fuzz.sh [SECONDS] (default 60).
# Starts from the seed corpus in fuzz/corpus; new inputs go to build-fuzz/corpus. Exits
# non-zero on a crash, leak or timeout, leaving the input in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
CXX="${CXX_FUZZ:-clang++}"
OUT=build-fuzz
mkdir -p "$OUT/corpus"
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iinclude -Isrc)
"$CXX" "${FLAGS[@]}" fuzz/api_fuzz.cc src/server/api.cc src/common/status.cc -o "$OUT/api_fuzz"
cd "$OUT"
./api_fuzz -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 corpus ../fuzz/corpus
