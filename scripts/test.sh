#!/usr/bin/env bash
# Quick start, step 2 (and what CI runs): set up, build everything, check the schemas and deploy/,
# run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift --version
swift build --build-tests
python3 scripts/validate-schemas.py --binary .build/debug/norbert-worker
scripts/validate-deploy.sh .build/debug/norbert-worker   # deploy/ and examples/, offline (~30 s)
swift test "$@"
