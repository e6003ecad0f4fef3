"""MNT/<file>/refs.json read by fsspec's ReferenceFileSystem, zarr and xarray (Debian's
python3-fsspec, python3-zarr, python3-xarray), compared with numpy's own reading of the sources."""
import errno
import json
import os
import pathlib
import shutil
import struct
import tempfile
import unittest

import numpy as np

from mounting import FIXTURES, mounted, wait_until

try:
    import fsspec
    import xarray
    import zarr
except ImportError as e:  # the suite needs them: scripts/install-deps.sh installs them
    raise RuntimeError(f"{e}: install python3-zarr python3-fsspec python3-xarray") from e

# safetensors dtype -> numpy dtype; the others (BF16, F8_*) have none and get no array.
ST_NUMPY = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
    "I32": "<i4", "U32": "<u4", "F32": "<f4", "C64": "<c8", "F64": "<f8", "I64": "<i8",
    "U64": "<u8",
}
GGUF_NUMPY = {"F32": "f4", "F16": "f2", "F64": "f8", "I8": "i1", "I16": "i2", "I32": "i4",
              "I64": "i8"}


def zarr_name(name):
    """The escaping documented in docs/layout.md (refs.json), for names that are valid UTF-8."""
    out = []
    for i, ch in enumerate(name):
        if ch in "%/\\" or ord(ch) < 0x20 or ord(ch) == 0x7F or (i == 0 and ch == "."):
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
        else:
            out.append(ch)
    return "".join(out)


def read_safetensors(path):
    """{name: numpy array} for the tensors numpy has a dtype for, parsed by hand."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        if t["dtype"] not in ST_NUMPY:
            continue
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=ST_NUMPY[t["dtype"]]) \
            .reshape(t["shape"])
    return out, header


def write_safetensors(path, tensors):
    """tensors: {name: (safetensors dtype, numpy array)}, laid out in the given order."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, array) in tensors.items():
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def open_refs(refs_path):
    """The zarr group a refs.json describes, through fsspec's reference filesystem."""
    # fsspec caches filesystems by their arguments: a refs.json read again must be read anew.
    fs = fsspec.filesystem("reference", fo=str(refs_path), skip_instance_cache=True)
    return zarr.open(fs.get_mapper(""), mode="r")


def same_values(testcase, got, want, what):
    testcase.assertEqual(got.shape, want.shape, what)
    if want.dtype.names:  # structured: zarr names padding fields its own way; compare bytes
        testcase.assertEqual(got.dtype.itemsize, want.dtype.itemsize, what)
        testcase.assertEqual(np.ascontiguousarray(got).tobytes(),
                             np.ascontiguousarray(want).tobytes(), what)
        return
    testcase.assertEqual(got.dtype, want.dtype, what)
    testcase.assertTrue(np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), what)


class RefsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (FIXTURES / "numpy" / "expected.json").exists():
            raise RuntimeError("fixtures missing: run tests/fixtures/generate.py first (ctest does)")
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-refs-"))
        cls.src = cls.tmp / "src"
        (cls.src / "arrays").mkdir(parents=True)
        (cls.src / "models").mkdir()
        (cls.src / "gguf").mkdir()
        cls.npys = sorted(p.name for p in (FIXTURES / "numpy").glob("*.npy"))
        for name in cls.npys:
            shutil.copy(FIXTURES / "numpy" / name, cls.src / "arrays" / name)
        for st in (FIXTURES / "safetensors").glob("*.safetensors"):
            shutil.copy(st, cls.src / "models" / st.name)
        for g in ("v3_le.gguf", "v3_be.gguf", "v2_align64.gguf"):
            shutil.copy(FIXTURES / "gguf" / g, cls.src / "gguf" / g)
        # Names zarr would otherwise read as paths, metadata keys or nothing at all.
        rng = np.random.default_rng(7)
        cls.odd = {
            "model/layers.0/weight": ("F32", rng.standard_normal((3, 4)).astype("<f4")),
            "a\\b": ("I16", np.arange(6, dtype="<i2").reshape(2, 3)),
            ".zattrs": ("U8", np.arange(5, dtype="|u1")),
            "..": ("I32", np.array([1, -2], dtype="<i4")),
            "50%": ("F64", np.array([0.5], dtype="<f8")),
            "café": ("U16", np.array([1, 2, 3], dtype="<u2")),
            "zero_len": ("F32", np.zeros((0, 5), dtype="<f4")),
            "scalar": ("I64", np.array(-42, dtype="<i8")),
            "halves": ("BF16", np.arange(4, dtype="<u2")),
        }
        write_safetensors(cls.src / "models" / "odd names.safetensors", cls.odd)
        np.save(cls.src / "arrays" / "big_fortran.npy",
                np.asfortranarray(rng.integers(0, 1000, (64, 33)).astype(">i4")))
        (cls.src / "random.bin").write_bytes(bytes(range(256)) * 8)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_listed_only_for_array_payloads(self):
        with mounted(self.src) as mnt:
            for rel in ("arrays/f4_2d.npy", "models/all_dtypes.safetensors", "gguf/v3_le.gguf"):
                entries = os.listdir(mnt / rel)
                self.assertIn("refs.json", entries, rel)
                refs = mnt / rel / "refs.json"
                text = refs.read_bytes()
                self.assertEqual(os.stat(refs).st_size, len(text), rel)
                self.assertEqual(json.loads(text)["version"], 1)
            # No arrays (random bytes; safetensors without tensors): no refs.json at all.
            for rel in ("random.bin", "models/empty_file.safetensors"):
                self.assertNotIn("refs.json", os.listdir(mnt / rel), rel)
                with self.assertRaises(FileNotFoundError):
                    os.stat(mnt / rel / "refs.json")
            with self.assertRaises(OSError) as e:
                open(mnt / "arrays/f4_2d.npy/refs.json", "wb")
            self.assertEqual(e.exception.errno, errno.EROFS)  # docs/layout.md: read-only

    def test_references_point_at_the_source_by_default(self):
        with mounted(self.src) as mnt:
            refs = json.loads((mnt / "arrays/f4_2d.npy/refs.json").read_text())["refs"]
            url, offset, length = refs["data/0.0"]
            self.assertEqual(url, os.path.realpath(self.src / "arrays/f4_2d.npy"))
            want = json.loads((mnt / "arrays/f4_2d.npy/slices.json").read_text())[0]
            self.assertEqual((offset, length), (want["offset"], want["length"]))

    def test_zarr_reads_every_npy_fixture_as_numpy_does(self):
        with mounted(self.src) as mnt:
            checked = 0
            for name in self.npys + ["big_fortran.npy"]:
                with self.subTest(npy=name):
                    group = open_refs(mnt / "arrays" / name / "refs.json")
                    self.assertEqual(list(group.array_keys()), ["data"])
                    want = np.load(self.src / "arrays" / name)
                    same_values(self, group["data"][...], want, name)
                    checked += 1
            self.assertGreaterEqual(checked, 15)
            fortran = json.loads(open_refs(mnt / "arrays/big_fortran.npy/refs.json").store[
                "data/.zarray"])
            self.assertEqual(fortran["order"], "F")

    def test_zarr_reads_safetensors_as_numpy_does(self):
        with mounted(self.src) as mnt:
            for file in ("all_dtypes.safetensors", "no_metadata.safetensors",
                         "odd names.safetensors"):
                with self.subTest(file=file):
                    want, header = read_safetensors(self.src / "models" / file)
                    group = open_refs(mnt / "models" / file / "refs.json")
                    self.assertEqual(sorted(group.array_keys()),
                                     sorted(zarr_name(n) for n in want))
                    if file == "all_dtypes.safetensors":  # BF16 and F8 tensors have no array
                        self.assertLess(len(want), len(header))
                    for name, array in want.items():
                        same_values(self, group[zarr_name(name)][...], array, name)
            group = open_refs(mnt / "models" / "odd names.safetensors" / "refs.json")
            self.assertEqual(sorted(group.array_keys()),
                             sorted(["model%2Flayers.0%2Fweight", "a%5Cb", "%2Ezattrs", "%2E.",
                                     "50%25", "café", "zero_len", "scalar"]))
            self.assertEqual(group["scalar"].shape, ())
            self.assertEqual(int(group["scalar"][...]), -42)
            self.assertEqual(group["zero_len"].shape, (0, 5))

    def test_xarray_opens_refs(self):
        with mounted(self.src) as mnt:
            for rel, want in (
                    ("models/all_dtypes.safetensors",
                     read_safetensors(self.src / "models/all_dtypes.safetensors")[0]),
                    ("models/odd names.safetensors",
                     read_safetensors(self.src / "models/odd names.safetensors")[0]),
                    ("arrays/f8_big_endian.npy",
                     {"data": np.load(self.src / "arrays/f8_big_endian.npy")}),
                    ("arrays/big_fortran.npy",
                     {"data": np.load(self.src / "arrays/big_fortran.npy")})):
                with self.subTest(payload=rel):
                    ds = xarray.open_dataset(
                        "reference://", engine="zarr",
                        backend_kwargs={"consolidated": False,
                                        "storage_options": {"fo": str(mnt / rel / "refs.json")}})
                    try:
                        self.assertEqual(sorted(ds.data_vars), sorted(zarr_name(n) for n in want))
                        for name, array in want.items():
                            var = ds[zarr_name(name)]
                            self.assertEqual(var.dims, tuple(f"{zarr_name(name)}_dim_{i}"
                                                             for i in range(array.ndim)))
                            self.assertEqual(var.shape, array.shape)
                            self.assertTrue(np.array_equal(var.values, array,
                                                           equal_nan=array.dtype.kind in "fc"),
                                            name)
                    finally:
                        ds.close()

    def test_gguf_plain_tensors_in_either_byte_order(self):
        expected = json.loads((FIXTURES / "gguf" / "expected.json").read_text())["files"]
        with mounted(self.src) as mnt:
            checked = set()
            for file in ("v3_le.gguf", "v3_be.gguf", "v2_align64.gguf"):
                want = expected[file]
                order = ">" if want["byte_order"] == "big" else "<"
                group = open_refs(mnt / "gguf" / file / "refs.json")
                plain = [t for t in want["tensors"] if t["type"] in GGUF_NUMPY]
                self.assertEqual(sorted(group.array_keys()), sorted(t["name"] for t in plain))
                for t in plain:
                    with self.subTest(file=file, tensor=t["name"]):
                        dtype = np.dtype(order + GGUF_NUMPY[t["type"]])
                        raw = (FIXTURES / "gguf" / t["bytes"]).read_bytes()
                        array = np.frombuffer(raw, dtype=dtype).reshape(t["dims"][::-1])
                        got = group[t["name"]][...]
                        self.assertEqual(got.dtype, dtype)
                        self.assertEqual(got.tobytes(), array.tobytes())
                        checked.add((want["byte_order"], t["type"]))
            self.assertIn(("big", "F32"), checked)
            self.assertGreaterEqual(len(checked), 8)

    def test_refs_prefix_points_elsewhere(self):
        # A second copy of the tree with other values at the same offsets: reading through the
        # references must show the copy's values, not the mounted source's.
        copy = self.tmp / "copy"
        shutil.rmtree(copy, ignore_errors=True)
        (copy / "arrays").mkdir(parents=True)
        (copy / "models").mkdir()
        original = np.load(self.src / "arrays/f4_2d.npy")
        np.save(copy / "arrays/f4_2d.npy", original * 2 + 1)
        tensors, header = read_safetensors(self.src / "models/no_metadata.safetensors")
        raw = bytearray((self.src / "models/no_metadata.safetensors").read_bytes())
        start = 8 + struct.unpack("<Q", raw[:8])[0]
        for name, array in tensors.items():
            begin, end = header[name]["data_offsets"]
            raw[start + begin:start + end] = (array * -3).astype(array.dtype).tobytes()
        (copy / "models/no_metadata.safetensors").write_bytes(raw)
        self.assertEqual((copy / "arrays/f4_2d.npy").stat().st_size,
                         (self.src / "arrays/f4_2d.npy").stat().st_size)
        for prefix in (f"file://{copy}/", f"file://{copy}"):
            with self.subTest(prefix=prefix), mounted(self.src, "-o", f"refs_prefix={prefix}") \
                    as mnt:
                refs = json.loads((mnt / "arrays/f4_2d.npy/refs.json").read_text())["refs"]
                self.assertEqual(refs["data/0.0"][0], f"file://{copy}/arrays/f4_2d.npy")
                got = open_refs(mnt / "arrays/f4_2d.npy/refs.json")["data"][...]
                self.assertTrue(np.array_equal(got, original * 2 + 1))
                self.assertFalse(np.array_equal(got, original))
                group = open_refs(mnt / "models/no_metadata.safetensors/refs.json")
                for name, array in tensors.items():
                    self.assertTrue(np.array_equal(group[name][...], array * -3), name)

    def test_a_rewritten_source_gets_new_refs(self):
        for options in ((), ("-o", "inotify=0")):  # told by inotify, or found when listing
            with self.subTest(options=options):
                self.rewrite_source(options)

    def rewrite_source(self, options):
        work = self.tmp / "changing"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        np.save(work / "a.npy", np.arange(4, dtype="<i2"))
        with mounted(work, *options) as mnt:
            refs = mnt / "a.npy" / "refs.json"
            self.assertEqual(open_refs(refs)["data"].shape, (4,))
            np.save(work / "next.npy", np.arange(30, dtype="<f8").reshape(5, 6))
            os.replace(work / "next.npy", work / "a.npy")
            wait_until(lambda: "0.0" in refs.read_text(), what="new refs.json")
            got = open_refs(refs)["data"][...]
            self.assertTrue(np.array_equal(got, np.arange(30, dtype="<f8").reshape(5, 6)))
            # No longer an array: refs.json leaves the listing and lookups find nothing.
            self.assertIn("refs.json", os.listdir(mnt / "a.npy"))
            (work / "next.bin").write_bytes(b"not an array" * 10)
            os.replace(work / "next.bin", work / "a.npy")

            def gone():
                try:  # the replaced file's old directory is stale until the kernel forgets it
                    return "refs.json" not in os.listdir(mnt / "a.npy") and not refs.exists()
                except OSError as e:
                    if e.errno != errno.ESTALE:
                        raise
                    return False

            # Told at once by inotify; without it, when the kernel's 1 s caches expire.
            wait_until(gone, what="refs.json to go")
            with self.assertRaises(FileNotFoundError):
                os.stat(refs)
            self.assertEqual(json.loads((mnt / "a.npy/header.json").read_text())["format"],
                             "unknown")


if __name__ == "__main__":
    unittest.main()
