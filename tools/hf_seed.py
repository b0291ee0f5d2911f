#!/usr/bin/python3
"""hf_seed.py SRC_DIR OUT_FILE -- pack a Hugging Face directory (config.json + model.safetensors) into one
fuzz input for fuzz/fuzz_hf.c: two little-endian bytes giving config.json's length, its bytes, then
model.safetensors."""
import os
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
cfg = open(os.path.join(src, "config.json"), "rb").read()
model = open(os.path.join(src, "model.safetensors"), "rb").read()
assert len(cfg) < 65536
with open(out, "wb") as f:
    f.write(struct.pack("<H", len(cfg)) + cfg + model)
