"""examples/clients/: the Python, Node.js and shell examples run against a mount, their output
checked against the source files' own bytes and numpy's reading of them."""
import hashlib
import json
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from mounting import FIXTURES, PYTHON, mounted

CLIENTS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "clients"


def client(*cmd):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}: {result.stderr}")
    return result.stdout


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def first_values(array):
    """What python_client.py prints as "first", computed from numpy's own reading."""
    return [v if isinstance(v, (bool, int, float)) else str(v) for v in array.flat[:8].tolist()]


class ClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (FIXTURES / "numpy" / "expected.json").exists():
            raise RuntimeError("fixtures missing: run tests/fixtures/generate.py first (ctest does)")
        for tool in ("node", "jq", "dd", "sha256sum"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is missing: run scripts/install-deps.sh")
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-clients-"))
        cls.src = cls.tmp / "src"
        cls.src.mkdir()
        for name in ("f4_2d.npy", "f8_big_endian.npy", "i8_3d.npy", "fortran.npy", "bool.npy",
                     "structured.npy", "u1.npy"):
            shutil.copy(FIXTURES / "numpy" / name, cls.src / name)
        shutil.copy(FIXTURES / "safetensors" / "all_dtypes.safetensors", cls.src / "model st")
        shutil.copy(FIXTURES / "gguf" / "v3_be.gguf", cls.src / "be.gguf")
        cls.st = json.loads((FIXTURES / "safetensors" / "expected.json").read_text())[
            "tensors"]["all_dtypes"]
        cls.gguf = {t["name"]: t for t in json.loads(
            (FIXTURES / "gguf" / "expected.json").read_text())["files"]["v3_be.gguf"]["tensors"]}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def source_bytes(self, name, offset, length):
        return (self.src / name).read_bytes()[offset:offset + length]

    def test_python_client(self):
        with mounted(self.src) as mnt:
            for name in ("f4_2d.npy", "f8_big_endian.npy", "i8_3d.npy", "fortran.npy", "bool.npy",
                         "structured.npy"):
                with self.subTest(npy=name):
                    out = json.loads(client(PYTHON, CLIENTS / "python_client.py", mnt / name))
                    want = np.load(self.src / name)
                    self.assertEqual(out["format"], "npy")
                    self.assertEqual(out["slice_count"], 1)
                    self.assertEqual(out["slice"], "data")
                    self.assertEqual(out["dtype"], str(want.dtype))
                    self.assertEqual(out["shape"], list(want.shape))
                    self.assertEqual(out["first"], json.loads(json.dumps(first_values(want))))
                    data = (self.src / name).read_bytes()
                    self.assertEqual(out["sha256"], sha256(data[len(data) - want.nbytes:]))
            # A safetensors tensor by name (numpy_dtype), and a big-endian GGUF one
            # (numpy_dtype and numpy_shape).
            t = self.st["model/layers.0/weight"]
            out = json.loads(client(PYTHON, CLIENTS / "python_client.py", mnt / "model st",
                                    "model/layers.0/weight"))
            raw = self.source_bytes("model st", t["offset"], t["length"])
            want = np.frombuffer(raw, "<f4").reshape(t["shape"])
            self.assertEqual((out["format"], out["dtype"], out["shape"]),
                             ("safetensors", "float32", t["shape"]))
            self.assertEqual(out["first"], first_values(want))
            self.assertEqual(out["sha256"], sha256(raw))
            t = self.gguf["output_norm.weight"]
            out = json.loads(client(PYTHON, CLIENTS / "python_client.py", mnt / "be.gguf",
                                    t["name"]))
            raw = (FIXTURES / "gguf" / t["bytes"]).read_bytes()
            want = np.frombuffer(raw, ">f4").reshape(t["dims"][::-1])
            self.assertEqual((out["dtype"], out["shape"]), (">f4", t["dims"][::-1]))
            self.assertEqual(out["first"], first_values(want))
            self.assertEqual(out["sha256"], sha256(raw))

    def test_node_client(self):
        with mounted(self.src) as mnt:
            for name in ("f4_2d.npy", "f8_big_endian.npy", "i8_3d.npy", "bool.npy", "u1.npy"):
                with self.subTest(npy=name):
                    out = json.loads(client("node", CLIENTS / "node_client.js", mnt / name))
                    want = np.load(self.src / name)
                    self.assertEqual(out["format"], "npy")
                    self.assertEqual(out["slice"], "data")
                    self.assertEqual(out["dtype"], want.dtype.str)
                    self.assertEqual(out["elements"], want.size)
                    # Node prints 64-bit integers as strings, every other number as a number.
                    memory = np.ravel(want, order="K")[:8].tolist()  # file order
                    if want.dtype.kind in "iu" and want.dtype.itemsize == 8:
                        memory = [str(v) for v in memory]
                    self.assertEqual(out["first"], memory)
                    data = (self.src / name).read_bytes()
                    self.assertEqual(out["sha256"], sha256(data[len(data) - want.nbytes:]))
            t = self.st["t.i16"]
            out = json.loads(client("node", CLIENTS / "node_client.js", mnt / "model st", "t.i16"))
            raw = self.source_bytes("model st", t["offset"], t["length"])
            self.assertEqual(out["dtype"], "<i2")
            self.assertEqual(out["first"], np.frombuffer(raw, "<i2")[:8].tolist())
            self.assertEqual(out["sha256"], sha256(raw))
            t = self.gguf["output_norm.weight"]
            out = json.loads(client("node", CLIENTS / "node_client.js", mnt / "be.gguf", t["name"]))
            raw = (FIXTURES / "gguf" / t["bytes"]).read_bytes()
            self.assertEqual(out["dtype"], ">f4")
            self.assertEqual(out["first"], np.frombuffer(raw, ">f4")[:8].astype(float).tolist())
            self.assertEqual(out["sha256"], sha256(raw))

    def test_shell_client(self):
        with mounted(self.src) as mnt:
            for name in ("f4_2d.npy", "model st"):
                with self.subTest(payload=name):
                    header = json.loads((mnt / name / "header.json").read_text())
                    slices = json.loads((mnt / name / "slices.json").read_text())
                    lines = client("bash", CLIENTS / "shell_client.sh", mnt / name).splitlines()
                    self.assertEqual(lines[:3], [f"format {header['format']}",
                                                 f"size {(self.src / name).stat().st_size}",
                                                 f"slices {len(slices)}"])
                    self.assertEqual(lines[3:3 + len(slices)],
                                     [f"slice {s['name']} {s['offset']} {s['length']}"
                                      for s in slices])
                    first = slices[0]
                    self.assertEqual(lines[-1], "range {}+{} sha256 {}".format(
                        first["offset"], first["length"],
                        sha256(self.source_bytes(name, first["offset"], first["length"]))))
            size = (self.src / "be.gguf").stat().st_size
            for start, length in ((0, size), (5, 100_000), (size - 3, 3), (17, 0)):
                length = min(length, size - start)
                with self.subTest(start=start, length=length):
                    last = client("bash", CLIENTS / "shell_client.sh", mnt / "be.gguf", start,
                                  length).splitlines()[-1]
                    self.assertEqual(last, f"range {start}+{length} sha256 "
                                           f"{sha256(self.source_bytes('be.gguf', start, length))}")


if __name__ == "__main__":
    unittest.main()
