#!/usr/bin/python3
"""Writes a small directory of sample payloads for the demo: npy arrays (numpy), a
safetensors model (written per the published format), and an unrecognised binary."""
import json
import pathlib
import struct
import sys

import numpy as np


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, array, dtype in tensors:
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "samples")
    (out / "arrays").mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    np.save(out / "arrays" / "temperatures.npy", rng.normal(20, 5, size=(24, 60)).astype("<f4"))
    np.save(out / "arrays" / "events.npy",
            np.array([(1, 0.5, b"start"), (2, 1.25, b"stop")], dtype=[("id", "<u4"), ("t", "<f8"), ("tag", "S8")]))
    write_safetensors(out / "models" / "tiny.safetensors", [
        ("encoder/weight", rng.standard_normal((8, 4)).astype("<f4"), "F32"),
        ("encoder/bias", np.zeros(8, dtype="<f4"), "F32"),
        ("decoder/weight", rng.standard_normal((4, 8)).astype("<f2"), "F16"),
    ], {"format": "pt", "source": "payloadfs demo"})
    (out / "blob.bin").write_bytes(bytes(range(256)) * 16)
    print(f"samples written to {out}")


if __name__ == "__main__":
    main()
