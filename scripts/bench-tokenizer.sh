#!/usr/bin/env bash
# Tokenizer benchmark: this package's Swift tokenizer vs the Python `tokenizers` package (Rust),
# both single-threaded, on the same deterministic ≥ 10 MB Norwegian-like corpus.
# Usage: scripts/bench-tokenizer.sh [TOKENIZER_DIR] [extra tokenize-bench options]
# The Python package goes into a throwaway venv outside the repository ($VENV, default /tmp/venv-tok).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
DIR="${1:-Tests/Fixtures/tokenizer}"
shift || true
VENV="${VENV:-/tmp/venv-tok}"
SCRATCH="${SCRATCH:-.build-tok}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import tokenizers' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "tokenizers==0.23.3"
fi
swift build -c release --scratch-path "$SCRATCH" --product norbert-worker
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
"$SCRATCH/release/norbert-worker" tokenize-bench --tokenizer "$DIR" --python "$VENV/bin/python" --size-mb 10 "$@"
