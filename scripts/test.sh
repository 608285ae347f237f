#!/usr/bin/env bash
# Quick start, step 2 (and what CI runs): set up, check the formatting, build everything, check the
# schemas and deploy/, run the tests. Arguments go to `swift test` (e.g. --filter WorkerTests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift --version
# Formatting: .swift-format (4 spaces, 140 columns); `swift format -i -r Sources Tests Package.swift fuzz` fixes it.
swift format lint --strict --parallel -r Sources Tests Package.swift fuzz
python3 scripts/check-line-length.py   # the literals swift format cannot break
# -Xcc -O2: the C kernels optimised as in release builds (SwiftPM compiles C at -O0 in debug, and
# Package.swift carries no unsafeFlags); the Swift code stays a debug build.
swift build --build-tests -Xcc -O2
python3 scripts/validate-schemas.py --binary .build/debug/norbert-worker
scripts/validate-deploy.sh .build/debug/norbert-worker   # deploy/ and examples/, offline (~30 s)
swift test -Xcc -O2 "$@"
