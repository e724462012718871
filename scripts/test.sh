#!/usr/bin/env bash
# Builds and runs the whole test suite, then the concurrency tests again under
# ThreadSanitizer (build-tsan). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
bash scripts/build.sh
(cd build && ctest --output-on-failure --parallel "$(nproc)")

GEN=""
if command -v ninja >/dev/null; then GEN="-G Ninja"; fi
cmake -S . -B build-tsan $GEN -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDYNSPEC_SANITIZE=thread \
  -DDYNSPEC_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan --parallel "$(nproc)" --target stress_test engine_test index_test rank_test
# halt_on_error makes any data race fail the test.
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/../tests/tsan.supp" \
  ctest --output-on-failure -R "^(Stress|EngineTest|PartitionConcurrency|RankTest)")
