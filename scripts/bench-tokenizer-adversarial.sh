#!/usr/bin/env bash
# Adversarial tokenizer timings: seconds to encode long runs of spaces (the `Replace(" *\n")`
# worst case) and 1 MiB of mixed Norwegian text with the NorBERT-style fixture tokenizer, through
# `norbert-worker tokenize`. Each figure is the median of REPS runs minus the median load time
# (a run on "Hei").
# Usage: scripts/bench-tokenizer-adversarial.sh [BINARY] [TOKENIZER_DIR]   (REPS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/norbert-worker}"
DIR="${2:-Tests/Fixtures/tokenizer}"
REPS="${REPS:-5}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK" <<'PY'
import json, random, sys
d = sys.argv[1]
def write(name, text):
    line = {"kind": "encode", "input": {"text": text, "text_pair": None, "add_special_tokens": True, "truncation": None, "padding": None}}
    open(f"{d}/{name}.jsonl", "w").write(json.dumps(line) + "\n")
write("load", "Hei")
for n in (10_000, 20_000, 40_000, 80_000):
    write(f"spaces-{n}", " " * n)
    write(f"spaces-{n}+x-newline", " " * n + "x\n")
    write(f"spaces-{n}+newline", " " * n + "\n")
rng = random.Random(7)
words = ("Det var en gang en gutt som het Espen Askeladd . Blåbærsyltetøy på brødskiva , sa Åse ! Nå ønsker "
         "de seg en ny bolig i Tromsø eller Bodø ? Vi møtes 17. mai kl. 10:30 ved Karl Johans gate 22 . Kjære "
         "dere , takk for sist — det var hyggelig !").split()
parts, size = [], 0
while size < 1 << 20:
    p = rng.choice(words) + rng.choice([" "] * 12 + ["\n", "  ", "\n\n", "\t"])
    parts.append(p); size += len(p.encode())
write("norwegian-1MiB", "".join(parts))
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() {  # seconds of one run
  local s e
  s=$(date +%s.%N); "$BIN" tokenize --tokenizer "$DIR" < "$1" > /dev/null; e=$(date +%s.%N)
  echo "$e - $s" | bc
}
load=$(for _ in $(seq "$REPS"); do run "$WORK/load.jsonl"; done | median)
printf '%-28s %s\n' "load (subtracted)" "$load"
for f in $(ls "$WORK" | grep -v '^load' | sort -V); do
  t=$(for _ in $(seq "$REPS"); do run "$WORK/$f"; done | median)
  printf '%-28s %.3f s\n' "${f%.jsonl}" "$(echo "$t - $load" | bc)"
done
