#!/usr/bin/python3
"""Reads a payload through a payloadfs mount with nothing but json and numpy.

usage: python_client.py MNT/<file> [SLICE]

Prints one JSON object: the payload's format and slice count (from header.json), and for SLICE
(default: the first slice with a NumPy dtype) its dtype, shape, first values and the SHA-256 of
its bytes, read through numpy.memmap of MNT/<file>/raw/<slice> (no copy, no parser).
"""
import hashlib
import json
import pathlib
import sys

import numpy as np


def numpy_view(payload: pathlib.Path, entry: dict):
    """numpy.memmap of a slice under raw/, shaped as its attributes say."""
    # npy gives `dtype` in NumPy's form; safetensors and GGUF add `numpy_dtype` (and GGUF
    # `numpy_shape`, its dims reversed) where NumPy has the type.
    dtype = entry.get("numpy_dtype", entry.get("dtype"))
    shape = entry.get("numpy_shape", entry.get("shape"))
    if isinstance(dtype, list):  # a structured dtype: [[name, dtype(, shape)], ...]
        dtype = [tuple(field) for field in dtype]
    order = "F" if entry.get("fortran_order") else "C"
    if entry["length"] == 0:  # mmap cannot map an empty file
        return np.empty(shape, dtype=dtype, order=order)
    return np.memmap(payload / entry["path"], dtype=dtype, mode="r", shape=tuple(shape),
                     order=order)


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    payload = pathlib.Path(sys.argv[1])
    header = json.loads((payload / "header.json").read_text())
    slices = json.loads((payload / "slices.json").read_text())
    if len(sys.argv) == 3:
        entry = next((s for s in slices if s["name"] == sys.argv[2]), None)
    else:
        entry = next((s for s in slices if "numpy_dtype" in s or "dtype" in s), None)
    if entry is None:
        print(f"no such slice in {payload}", file=sys.stderr)
        return 1
    array = numpy_view(payload, entry)
    # The first elements in C order, as JSON numbers where they are numbers.
    first = [v if isinstance(v, (bool, int, float)) else str(v) for v in array.flat[:8].tolist()]
    print(json.dumps({
        "format": header["format"],
        "slice_count": header["slice_count"],
        "slice": entry["name"],
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "first": first,
        "sha256": hashlib.sha256((payload / entry["path"]).read_bytes()).hexdigest(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
