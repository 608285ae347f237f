#!/usr/bin/env bash
# Regenerates the generated option tables: docs/worker.md's from the settings' declarations
# (Sources/Worker/ServeSettings+Options.swift, `norbert-worker serve --help-markdown`) and
# docs/wire-protocol.md's from the request options' (Sources/Wire/OptionDeclaration.swift,
# `norbert-worker infer --options-markdown`); each replaces what is between its file's markers.
# ServeOptionsTests and SchemaTests fail while a committed table differs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built every time (incremental): a binary older than the declarations would write old tables.
if [ -n "${NORBERT_WORKER_BIN:-}" ]; then
    binary="$NORBERT_WORKER_BIN"
else
    export PATH="/opt/swift/usr/bin:$PATH"
    swift build --product norbert-worker >&2
    binary=.build/debug/norbert-worker
fi
# replace FILE COMMAND...: the output of `norbert-worker COMMAND` between FILE's markers.
replace() {
    local path="$1"; shift
    local table
    table="$("$binary" "$@")"
    TABLE="$table" COMMAND="$*" python3 - "$path" <<'PY'
import os, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
begin = f"<!-- options: the output of `norbert-worker {os.environ['COMMAND']}` (scripts/update-options-doc.sh); do not edit -->\n"
end = "<!-- end of options -->"
head, sep, rest = text.partition(begin)
if not sep or end not in rest:
    sys.exit(f"{path}: the option table markers are missing")
tail = rest[rest.index(end):]
open(path, "w", encoding="utf-8").write(head + begin + os.environ["TABLE"] + "\n" + tail)
PY
    echo "$path: option table updated"
}
replace docs/worker.md serve --help-markdown
replace docs/wire-protocol.md infer --options-markdown
