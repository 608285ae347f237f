#!/usr/bin/env bash
# Soak test of `norbert-worker serve` against `norbert-worker broker --faults` (docs/testing.md, "Sanitizers and soak").
#
#   scripts/soak.sh [--requests N] [--kills N] [--seed S] [--rate R] [--workers N] [...]
#
# Defaults: 10,000 requests at 25/s, 20 SIGKILLs, 3 workers, 3 brokers, a random seed (printed;
# --seed S replays the same requests, faults and kill schedule). A short run:
#   scripts/soak.sh --requests 1000 --kills 3
# Builds the binary first (CONFIG=debug by default, or release; SCRATCH=.build), then runs
# scripts/soak.py, which needs Python's confluent-kafka (installed with pip if missing). Logs and
# summary.json go to OUT (default a fresh folder under /tmp, printed). Exits non-zero on any loss.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
CONFIG="${CONFIG:-debug}"
SCRATCH="${SCRATCH:-.build}"
OUT="${OUT:-$(mktemp -d /tmp/norbert-soak.XXXXXX)}"
python3 -c "import confluent_kafka" 2>/dev/null || pip install --quiet confluent-kafka >&2
swift build -c "$CONFIG" --scratch-path "$SCRATCH" --product norbert-worker >&2
BIN="$(swift build -c "$CONFIG" --scratch-path "$SCRATCH" --show-bin-path)/norbert-worker"
echo "== soak: logs in $OUT" >&2
exec python3 scripts/soak.py --bin "$BIN" --out "$OUT" "$@"
