#!/usr/bin/env python3
"""Copies the NorBERT 4 tiny fixtures from ../shared into Tests/Fixtures, keeping them lean.

Checkpoint folders are copied byte for byte. Case files keep every tensor, but values the
tests must not compare are replaced by NaN (git compresses such runs to almost nothing):
positions past a row's attention mask (unspecified by the reference), and, in long_300, the
full LM logits at all but every 10th position (their max/logsumexp/argmax summaries stay whole).
Tests treat a NaN expected value as "not compared". Run: python3 scripts/make-test-fixtures.py
"""
import json, os, shutil, struct, sys
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "..", "shared", "fixtures", "norbert4-tiny")
DST = os.path.join(ROOT, "Tests", "Fixtures", "norbert4-tiny")
DTYPES = {"F32": np.float32, "I64": np.int64}

def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return out, meta

def write(path, tensors, meta):
    header, blobs, offset = {}, [], 0
    if meta: header["__metadata__"] = meta
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[t.dtype]
        data = t.tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data); offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def lean(name, tensors):
    if name == "multiple_choice.safetensors":
        mask = tensors["attention_mask"].reshape(6, 12)
        tensors["multiple-choice.last_hidden_state"][mask == 0] = np.nan
        return tensors
    if "attention_mask" not in tensors:
        return tensors
    mask = tensors["attention_mask"]
    for key, t in tensors.items():
        if t.dtype != np.float32 or key == "sequence-classification.logits":
            continue
        if key == "base.hidden_states":
            t[:, mask == 0] = np.nan
        else:
            t[mask == 0] = np.nan
        if name == "long_300.safetensors" and key in ("mlm.logits", "causal-lm.logits", "mlm-bf16.logits"):
            keep = np.zeros(t.shape[1], dtype=bool); keep[::10] = True; keep[-1] = True
            t[:, ~keep] = np.nan
    return tensors

def main():
    if not os.path.isdir(SRC):
        sys.exit(f"missing {SRC}")
    shutil.rmtree(DST, ignore_errors=True)
    os.makedirs(os.path.join(DST, "cases"))
    for entry in sorted(os.listdir(SRC)):
        src = os.path.join(SRC, entry)
        if os.path.isdir(src) and entry != "cases":
            shutil.copytree(src, os.path.join(DST, entry))
    shutil.copy(os.path.join(SRC, "cases.json"), DST)
    shutil.copy(os.path.join(SRC, "README.md"), DST)
    for name in sorted(os.listdir(os.path.join(SRC, "cases"))):
        tensors, meta = read(os.path.join(SRC, "cases", name))
        write(os.path.join(DST, "cases", name), lean(name, tensors), meta)
    for root, dirs, files in os.walk(DST):
        for f in files: os.chmod(os.path.join(root, f), 0o644)
        for d in dirs: os.chmod(os.path.join(root, d), 0o755)

main()
