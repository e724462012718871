#!/usr/bin/env bash
# Installs every Debian 12 package dynspec needs to build, test and benchmark.
# Used by README and .ci/run; safe to run again.
# libtorch-dev (PyTorch 1.13, CPU) is for the optional CLIP embedder (src/clip/); it is the
# largest dependency: about 110 packages, 420 MB installed (it pulls python3-dev, protobuf,
# oneDNN and others). The build skips the CLIP embedder when it is missing
# (DYNSPEC_WITH_TORCH=AUTO), so it can be dropped from this list on small machines.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  cmake g++ make ninja-build pkg-config ca-certificates \
  libhnswlib-dev libeigen3-dev nlohmann-json3-dev libcli11-dev \
  libspdlog-dev libfmt-dev zlib1g-dev libxxhash-dev librocksdb-dev libcpp-httplib-dev wrk \
  libgtest-dev libgmock-dev googletest libbenchmark-dev \
  libjpeg-dev libpng-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg \
  clang-format libtorch-dev >/dev/null
