#!/usr/bin/env python3
"""Validates schemas/*.schema.json (JSON Schema 2020-12) and what `norbert-worker infer` writes.

1. Each schema is a valid 2020-12 schema, and its `examples` validate against it.
2. schemas/examples/requests.jsonl validates against request.schema.json, and
   schemas/examples/responses.jsonl against response.schema.json.
3. Unless --skip-infer: runs `norbert-worker infer` (the tiny fixture checkpoints as heads) on the
   example requests, the bad lines of schemas/examples/bad-requests.jsonl and one text over the
   limit, and validates every response line it writes against response.schema.json (good requests
   must get results, bad lines errors, one line per request and head, in order).

4. With --check KIND (response, error, request, dead-letter): validates each JSON line of stdin
   against that schema instead (the Swift tests pipe what the worker published through it).

Usage: python3 scripts/validate-schemas.py [--binary .build/debug/norbert-worker] [--skip-infer]
       python3 scripts/validate-schemas.py --check KIND < lines.jsonl
Needs the Python package `jsonschema` (pip, or Debian's python3-jsonschema).
"""
import argparse
import json
import os
import subprocess
import sys

from jsonschema import Draft202012Validator

try:  # jsonschema >= 4.18
    from referencing import Registry, Resource
except ImportError:  # older jsonschema (Debian 12 ships 4.10): RefResolver with a store
    Registry = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "schemas")
TINY = os.path.join(ROOT, "Tests", "Fixtures", "norbert4-tiny")
HEADS = {"sentiment": "sequence-classification", "ner": "token-classification", "qa": "question-answering",
         "mlm": "mlm", "mc": "multiple-choice", "causal": "causal-lm", "base": "base"}
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "norbert-worker"))
    ap.add_argument("--skip-infer", action="store_true")
    ap.add_argument("--check", choices=["request", "response", "error", "dead-letter"])
    args = ap.parse_args()

    schemas = {}
    for name in ("request", "response", "error", "dead-letter"):
        with open(os.path.join(SCHEMAS, name + ".schema.json"), encoding="utf-8") as f:
            schemas[name] = json.load(f)
        Draft202012Validator.check_schema(schemas[name])
    if Registry is not None:
        registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas.values()])
        validators = {n: Draft202012Validator(s, registry=registry) for n, s in schemas.items()}
    else:
        from jsonschema import RefResolver
        store = {s["$id"]: s for s in schemas.values()}
        validators = {n: Draft202012Validator(s, resolver=RefResolver(s["$id"], s, store=store)) for n, s in schemas.items()}

    def check(kind, value, where):
        errors = sorted(validators[kind].iter_errors(value), key=lambda e: list(e.path))
        for e in errors[:3]:
            fail(f"{where}: not a valid {kind}: {e.message[:300]} at {list(e.path)}")
        return not errors

    if args.check:
        lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
        for k, line in enumerate(lines):
            try:
                value = json.loads(line)
            except ValueError as e:
                fail(f"line {k + 1}: not JSON: {e}")
                continue
            check(args.check, value, f"line {k + 1} ({line[:120]})")
        print(f"validate-schemas: {len(lines)} {args.check} lines, {len(failures)} failure(s)")
        return 1 if failures or not lines else 0

    counts = {}
    for name, schema in schemas.items():
        for k, example in enumerate(schema.get("examples", [])):
            check(name, example, f"{name}.schema.json examples[{k}]")
        counts[name + " schema examples"] = len(schema.get("examples", []))
    requests = load_jsonl(os.path.join(SCHEMAS, "examples", "requests.jsonl"))
    for k, line in enumerate(requests):
        check("request", json.loads(line), f"examples/requests.jsonl line {k + 1}")
    responses = load_jsonl(os.path.join(SCHEMAS, "examples", "responses.jsonl"))
    for k, line in enumerate(responses):
        check("response", json.loads(line), f"examples/responses.jsonl line {k + 1}")
    counts["example requests"] = len(requests)
    counts["example responses"] = len(responses)

    if not args.skip_infer:
        if not os.access(args.binary, os.X_OK):
            fail(f"{args.binary} not found: build first (swift build), or pass --binary / --skip-infer")
        else:
            bad = load_jsonl(os.path.join(SCHEMAS, "examples", "bad-requests.jsonl"))
            long_text = json.dumps({"id": "too-long", "task": "text-classification", "text": "ord " * 200})
            lines = requests + bad + [long_text]
            cmd = [args.binary, "infer", "--tokenizer", os.path.join(ROOT, "Tests", "Fixtures", "tokenizer"), "--max-tokens", "128"]
            for head, folder in HEADS.items():
                cmd += ["--head", f"{head}={os.path.join(TINY, folder)}"]
            run = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=600)
            if run.returncode != 0:
                fail(f"infer exited with {run.returncode}: {run.stderr[-2000:]}")
            out = [json.loads(l) for l in run.stdout.splitlines() if l.strip()]
            expected = []
            for line in lines:
                try:
                    r = json.loads(line)
                except ValueError:
                    r = None
                n = len(r["heads"]) if isinstance(r, dict) and isinstance(r.get("heads"), list) else 1
                ident = r.get("id") if isinstance(r, dict) else None
                expected += [(ident, line in requests)] * n
            if len(out) != len(expected):
                fail(f"infer wrote {len(out)} responses for {len(expected)} expected")
            for k, (resp, (ident, good)) in enumerate(zip(out, expected)):
                check("response", resp, f"infer response {k + 1}")
                if resp.get("id") != ident:
                    fail(f"infer response {k + 1}: id {resp.get('id')!r}, expected {ident!r} (order)")
                if good and "result" not in resp:
                    fail(f"infer response {k + 1} ({ident}): expected a result, got {resp.get('error')}")
                if not good and "error" not in resp:
                    fail(f"infer response {k + 1} ({ident}): expected an error")
            counts["infer responses"] = len(out)

    print("validate-schemas: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if failures:
        print(f"validate-schemas: {len(failures)} failure(s)")
        return 1
    print("validate-schemas: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
