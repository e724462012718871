#!/usr/bin/env bash
# Configures and builds dynspec into ./build (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
GEN=""
if command -v ninja >/dev/null; then GEN="-G Ninja"; fi
cmake -S . -B build $GEN -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build --parallel "$(nproc)"
