#!/usr/bin/env bash
# Regenerates docs/worker.md's option table from the settings' declarations
# (Sources/Worker/ServeSettings+Options.swift): the output of `norbert-worker serve --help-markdown`
# replaces what is between the markers. ServeOptionsTests fails while the committed table differs.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${NORBERT_WORKER_BIN:-.build/debug/norbert-worker}"
[ -x "$binary" ] || { export PATH="/opt/swift/usr/bin:$PATH"; swift build --product norbert-worker; }
table="$("$binary" serve --help-markdown)"
TABLE="$table" python3 - docs/worker.md <<'PY'
import os, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
begin = "<!-- options: the output of `norbert-worker serve --help-markdown` (scripts/update-options-doc.sh); do not edit -->\n"
end = "<!-- end of options -->"
head, sep, rest = text.partition(begin)
if not sep or end not in rest:
    sys.exit(f"{path}: the option table markers are missing")
tail = rest[rest.index(end):]
open(path, "w", encoding="utf-8").write(head + begin + os.environ["TABLE"] + "\n" + tail)
PY
echo "docs/worker.md: option table updated"
