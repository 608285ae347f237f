#!/usr/bin/env python3
"""Random-weight checkpoints with NorBERT 4 dimensions, for benchmarks (not tests).

Usage: scripts/make-random-checkpoints.py SIZE OUT_DIR   (SIZE: xsmall, base)

Writes OUT_DIR/<head>/{config.json,model.safetensors} for every head folder of the tiny fixture
(Tests/Fixtures/norbert4-tiny: sequence-classification, token-classification, question-answering,
multiple-choice, mlm, causal-lm, base): the fixture's config and tensor names with the size's
dimensions (hidden, layers, heads, intermediate, attention windows, vocabulary 51,200). The
encoder tensors are drawn from one seeded generator per tensor name, so every head has a
byte-identical encoder (the worker loads it once, as with the tiny fixture); the classifier
tensors differ per head. The answers are meaningless; the compute is NorBERT 4's.
"""
import json
import os
import re
import struct
import sys
import zlib

import numpy as np

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "norbert4-tiny")
HEADS = ["sequence-classification", "token-classification", "question-answering", "multiple-choice", "mlm", "causal-lm", "base"]
# hidden, layers, attention heads (of 64), intermediate: NorBERT 4 xsmall (17M) and base (149M),
# the sizes `norbert-worker bench` uses too.
SIZES = {"xsmall": (192, 16, 3, 512), "base": (640, 24, 10, 1664)}
VOCAB = 51200


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SIZES:
        sys.exit(__doc__)
    size, out = sys.argv[1], sys.argv[2]
    hidden, layers, heads, intermediate = SIZES[size]
    for head in HEADS:
        config = json.load(open(os.path.join(FIXTURE, head, "config.json")))
        tiny = {k: config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "query_key_head_size", "vocab_size")}
        # Fixture dimension -> this size's (the tiny model's dimensions are all distinct).
        dims = {tiny["hidden_size"]: hidden, tiny["intermediate_size"]: intermediate, tiny["num_attention_heads"]: heads,
                tiny["query_key_head_size"]: 64, tiny["vocab_size"]: VOCAB}
        config.update(hidden_size=hidden, intermediate_size=intermediate, num_attention_heads=heads, num_layers=layers,
                      query_key_head_size=64, value_head_size=64, vocab_size=VOCAB, local_window_length=256,
                      global_window_length=8192, local_global_ratio=4, max_sequence_length=16384)
        header = read_header(os.path.join(FIXTURE, head, "model.safetensors"))
        tensors = []
        for name in sorted(header, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]):
            if ".layers." in name and not name.startswith("encoder.layers.0."):
                continue
            names = [name.replace("layers.0.", f"layers.{i}.") for i in range(layers)] if name.startswith("encoder.layers.0.") else [name]
            shape = [dims.get(d, d) for d in header[name]["shape"]]
            for full in names:
                seed = zlib.crc32(full.encode()) + (0 if not full.startswith("classifier.") else zlib.crc32(head.encode()) << 32)
                rng = np.random.default_rng(seed)
                if name.endswith("scale") or name.endswith("lambdas"):
                    array = 1.0 + 0.05 * rng.standard_normal(shape)
                elif name.endswith("bias"):
                    array = 0.02 * rng.standard_normal(shape)
                else:
                    array = rng.standard_normal(shape) / np.sqrt(shape[-1])
                tensors.append((full, array.astype(np.float32)))
        os.makedirs(os.path.join(out, head), exist_ok=True)
        with open(os.path.join(out, head, "config.json"), "w") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
        write_safetensors(os.path.join(out, head, "model.safetensors"), tensors)
        print(f"{out}/{head}: {size}, {sum(t.size for _, t in tensors) / 1e6:.1f}M parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
