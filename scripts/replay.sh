#!/usr/bin/env bash
# Builds dynspec and replays the bundled Amazon Magazine Subscriptions data through every
# strategy (tuned on the earlier half, reported on the later half). Extra arguments go to
# `dynspec replay` (see `build/src/dynspec replay --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/src/dynspec replay --out out/replay "$@"
