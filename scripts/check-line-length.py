#!/usr/bin/env python3
"""Fails when a Swift file under Sources/, Tests/ or fuzz/ (or Package.swift) has a line longer than
140 characters. `swift format lint` checks the same limit but lets string literals it cannot break
pass; write those as multi-line literals with `\\` continuations."""
import pathlib
import sys

LIMIT = 140
root = pathlib.Path(__file__).resolve().parent.parent
files = [root / "Package.swift"] + [p for d in ("Sources", "Tests", "fuzz") for p in sorted((root / d).rglob("*.swift"))]
long = [
    f"{path.relative_to(root)}:{number}: {len(line)} characters"
    for path in files
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    if len(line) > LIMIT
]
print("\n".join(long) or f"no line over {LIMIT} characters in {len(files)} Swift files", file=sys.stderr if long else sys.stdout)
sys.exit(1 if long else 0)
