#!/usr/bin/env bash
# End-to-end benchmark of `norbert-worker serve` through the dev broker (separate process),
# next to `infer` on the same requests. Usage: scripts/bench-worker.sh [COUNT] (default 5000).
# SIZE=tiny (default) uses the tiny fixture heads: it measures the worker's machinery (Kafka,
# batching, lanes, commits) with a model of ~0.1 ms per request. SIZE=xsmall|base uses
# random-weight heads with NorBERT 4's dimensions (scripts/make-random-checkpoints.py, vocabulary
# 51,200), so inference costs what it costs with the real checkpoints (answers meaningless).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
COUNT="${1:-5000}"
SCRATCH="${SCRATCH:-.build}"
SIZE="${SIZE:-tiny}"
swift build -c release --scratch-path "$SCRATCH" --product norbert-worker >&2
BIN="$SCRATCH/release/norbert-worker"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
F=Tests/Fixtures/norbert4-tiny
if [ "$SIZE" != tiny ]; then
  F="$WORK/checkpoints"
  python3 scripts/make-random-checkpoints.py "$SIZE" "$F"
fi
HEADS=(--head "sentiment=$F/sequence-classification" --head "ner=$F/token-classification" --head "qa=$F/question-answering"
       --head "mlm=$F/mlm" --head "mc=$F/multiple-choice" --head "causal=$F/causal-lm" --head "base=$F/base"
       --tokenizer Tests/Fixtures/tokenizer)
echo "== heads: $SIZE" >&2

# The same COUNT requests for both sides: schemas/examples/requests.jsonl cycled, ids made
# unique, and every text and context made unique too (" (sak N)" appended), so no two requests
# share an encoder sequence (the engine runs identical sequences of a batch once).
python3 - "$COUNT" > "$WORK/requests.jsonl" <<'PY'
import json, sys
lines = [l for l in open("schemas/examples/requests.jsonl") if l.strip()]
for i in range(int(sys.argv[1])):
    r = json.loads(lines[i % len(lines)]); r["id"] = f"b{i}"
    for field in ("text", "context"):
        if field in r: r[field] += f" (sak {i})"
    print(json.dumps(r, ensure_ascii=False))
PY

for THREADS in 1 2; do
  start=$(date +%s.%N)
  "$BIN" infer "${HEADS[@]}" --threads "$THREADS" --input "$WORK/requests.jsonl" --output "$WORK/infer.jsonl" 2>/dev/null
  end=$(date +%s.%N)
  python3 - "$start" "$end" "$COUNT" "$WORK/infer.jsonl" "$THREADS" <<'PY'
import json, sys
s, e, n, path, t = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tokens = sum((json.loads(l).get("usage") or {}).get("input_tokens", 0) for l in open(path) if l.strip())
print(f"infer x{t}     requests {n}  seconds {e-s:.2f}  requests/s {n/(e-s):.1f}  tokens/s {tokens/(e-s):.0f}")
PY
done

"$BIN" broker --brokers 1 --topic req-1:4 --topic req-2:4 --topic res-1:1 --topic res-2:1 --topic dlq:1 > "$WORK/broker.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/broker.out" ] && break; sleep 0.1; done
SERVERS="$(head -1 "$WORK/broker.out")"

for LANES in 1 2; do
  "$BIN" serve "${HEADS[@]}" --bootstrap-servers "$SERVERS" --group "bench-$LANES" --requests "req-$LANES" \
    --results "res-$LANES" --dead-letter dlq --metrics-port 0 --lanes "$LANES" 2> "$WORK/serve-$LANES.err" &
  SERVE=$!
  PIDS+=($SERVE)
  for _ in $(seq 300); do grep -q "partitions assigned" "$WORK/serve-$LANES.err" && break; sleep 0.1; done
  printf "serve x%s    " "$LANES"
  "$BIN" serve bench --broker "$SERVERS" --file "$WORK/requests.jsonl" --count "$COUNT" \
    --to "req-$LANES" --from "res-$LANES"
  kill -TERM "$SERVE"; wait "$SERVE" || true
done
