#!/usr/bin/env bash
# Quick start, step 1: set up (scripts/setup.sh), build the release binary, and run `demo`:
# the embedded dev broker, the tiny bundled test heads, one request of every task.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build -c release
exec .build/release/norbert-worker demo "$@"
