"""npz and pytorch archives through a real mount, compared with the readers that wrote them:
numpy.load and zipfile for .npz (tests/fixtures/gen_npz.py), torch.load (weights_only=True
where torch 1.13 can), zipfile and pickletools for torch.save files
(tests/fixtures/gen_pytorch.py). refs.json is read back by zarr through fsspec's reference
filesystem and compared with the same readers."""
import json
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from mounting import FIXTURES, MountedFixtures, mounted

try:
    import fsspec
    import zarr
except ImportError as e:  # the suite needs them: scripts/install-deps.sh installs them
    raise RuntimeError(f"{e}: install python3-zarr python3-fsspec") from e


def open_refs(refs_path):
    """The zarr group a refs.json describes, through fsspec's reference filesystem."""
    fs = fsspec.filesystem("reference", fo=str(refs_path), skip_instance_cache=True)
    return zarr.open(fs.get_mapper(""), mode="r")


def expected_array(want):
    """The tensor torch.load gave, from the generator's bytes (C order: contiguous)."""
    data = bytes.fromhex(want["data_hex"])
    return np.frombuffer(data, dtype=want["dtype"]).reshape(want["shape"])


class NpzAndPytorchThroughMount(MountedFixtures):
    REQUIRED = ("npz/expected.json", "pytorch/expected.json")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.npz = json.loads((FIXTURES / "npz" / "expected.json").read_text())["files"]
        cls.pt = json.loads((FIXTURES / "pytorch" / "expected.json").read_text())["files"]

    def slices(self, rel):  # by name
        return {s["name"]: s for s in json.loads((self.mnt / rel / "slices.json").read_text())}

    def test_npz_arrays_match_numpy_load(self):
        self.assertGreaterEqual(len(self.npz), 3)
        for file, want_file in self.npz.items():
            rel = f"npz/{file}"
            with self.subTest(file=file), np.load(FIXTURES / rel, allow_pickle=False) as npz:
                h = self.header(rel)
                self.assertEqual(h["format"], "npz")
                self.assertNotIn("errors", h)
                arrays = h["header"]["arrays"]
                self.assertEqual(sorted(arrays), sorted(npz.files))
                self.assertEqual(h["header"]["array_count"], len(npz.files))
                slices = self.slices(rel)
                stored = [n for n, w in want_file["arrays"].items() if not w["compressed"]]
                self.assertEqual(sorted(slices), sorted(stored))
                for name, want in want_file["arrays"].items():
                    got = arrays[name]
                    for key in ("member", "compressed", "shape", "fortran_order"):
                        self.assertEqual(got[key], want[key], f"{name}: {key}")
                    self.assertEqual(got["dtype"], want["descr"], name)
                    if want["compressed"]:
                        continue
                    array = npz[name]
                    order = "F" if want["fortran_order"] and array.ndim > 1 else "C"
                    data = (self.mnt / rel / "raw" / name).read_bytes()
                    self.assertEqual(data, array.tobytes(order=order), name)
                    s = slices[name]
                    self.assertEqual((s["dtype"], s["shape"], s["fortran_order"], s["member"]),
                                     (want["descr"], want["shape"], want["fortran_order"],
                                      want["member"]), name)

    def test_npz_names_with_dots_and_0d_and_fortran(self):
        arrays = self.header("npz/stored.npz")["header"]["arrays"]
        self.assertEqual(arrays["layer.0.weight"]["shape"], [2, 4])
        self.assertEqual(arrays["scalar"]["shape"], [])
        self.assertTrue(arrays["fortran"]["fortran_order"])
        compressed = self.header("npz/compressed.npz")["header"]["arrays"]
        self.assertTrue(all(a["compressed"] for a in compressed.values()))
        self.assertEqual(self.slices("npz/compressed.npz"), {})

    def test_pytorch_header_matches_torch_load_and_pickletools(self):
        self.assertGreaterEqual(len(self.pt), 8)
        for file, want in self.pt.items():
            rel = f"pytorch/{file}"
            with self.subTest(file=file):
                h = self.header(rel)
                self.assertEqual(h["format"], "pytorch")
                self.assertNotIn("errors", h)
                got = h["header"]
                self.assertEqual(got["prefix"], want["prefix"])
                self.assertEqual(got["version"], want["version"])
                self.assertEqual(got["byteorder"], want["byteorder"])
                self.assertEqual(got["globals"], want["globals"])
                self.assertEqual(got["values"], want["values"])
                self.assertEqual(got["tensor_count"], len(want["tensors"]))
                self.assertEqual(list(got["tensors"]), list(want["tensors"]))
                for key, t in want["tensors"].items():
                    for field in ("dtype", "torch_dtype", "shape", "stride", "storage_offset",
                                  "contiguous"):
                        self.assertEqual(got["tensors"][key][field], t[field], f"{key}: {field}")

    def test_pytorch_raw_tensors_are_torch_load_tensors(self):
        checked = 0
        for file, want in self.pt.items():
            rel = f"pytorch/{file}"
            slices = self.slices(rel)
            contiguous = [k for k, t in want["tensors"].items() if t["contiguous"]]
            with self.subTest(file=file):
                self.assertEqual(sorted(slices), sorted(contiguous))
                for key in contiguous:
                    t, s = want["tensors"][key], slices[key]
                    for field in ("dtype", "shape", "stride", "storage_offset"):
                        self.assertEqual(s[field], t[field], f"{key}: {field}")
                    path = self.mnt / rel / "raw" / key
                    expected = expected_array(t)
                    if expected.size == 0:
                        self.assertEqual(path.read_bytes(), b"", key)
                        continue
                    served = np.memmap(path, dtype=s["dtype"], mode="r", shape=tuple(s["shape"]))
                    if t["torch_dtype"] == "bfloat16":  # no NumPy type: the same 2-byte items
                        self.assertEqual(served.tobytes(), expected.tobytes(), key)
                    else:
                        self.assertTrue(np.array_equal(served, expected), key)
                    checked += 1
        self.assertGreaterEqual(checked, 30)

    def test_pytorch_shared_storage_views(self):
        h = self.header("pytorch/views.pt")["header"]["tensors"]
        self.assertEqual({h[k]["storage"] for k in h}, {h["base"]["storage"]})
        slices = self.slices("pytorch/views.pt")
        base = slices["base"]["offset"]
        self.assertEqual(slices["row"]["offset"], base + 5 * 4)
        self.assertEqual(slices["matrix"]["offset"], base + 4 * 4)
        self.assertEqual(slices["matrix"]["length"], 12 * 4)

    def test_refs_json_read_by_zarr(self):
        with np.load(FIXTURES / "npz/stored.npz", allow_pickle=False) as npz:
            group = open_refs(self.mnt / "npz/stored.npz/refs.json")
            self.assertEqual(sorted(group.array_keys()), sorted(npz.files))
            for name in npz.files:
                got, want = group[name][...], npz[name]
                self.assertEqual(got.shape, want.shape, name)
                self.assertEqual(np.ascontiguousarray(got).tobytes(),
                                 np.ascontiguousarray(want).tobytes(), name)
        for file in ("state_dict.pt", "halves.pt", "views.pt"):
            want = self.pt[file]["tensors"]
            group = open_refs(self.mnt / "pytorch" / file / "refs.json")
            self.assertEqual(sorted(group.array_keys()), sorted(want))
            for key, t in want.items():
                got = group[key][...]
                self.assertEqual(got.shape, tuple(t["shape"]), key)
                self.assertEqual(got.tobytes(), expected_array(t).tobytes(), key)

class PytorchThroughNested(unittest.TestCase):
    """A checkpoint kept in a shard (GNU tar, as WebDataset does): its tensors through
    nested/, read with numpy.memmap, are torch.load's tensors, and slices.json's offsets are
    offsets in the tar."""

    def test_tensors_of_a_checkpoint_inside_a_tar(self):
        want = json.loads((FIXTURES / "pytorch" / "expected.json").read_text())["files"]
        name = "state_dict.pt"
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-pt-tar-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        (tmp / "src" / "ckpt").mkdir(parents=True)
        shutil.copy(FIXTURES / "pytorch" / name, tmp / "src" / "ckpt" / name)
        subprocess.run(["tar", "-cf", str(tmp / "shard.tar"), "-C", str(tmp / "src"),
                        f"ckpt/{name}"], check=True)
        (tmp / "mnt-src").mkdir()
        shutil.move(str(tmp / "shard.tar"), tmp / "mnt-src" / "shard.tar")
        tar_bytes = (tmp / "mnt-src" / "shard.tar").read_bytes()
        with mounted(tmp / "mnt-src") as mnt:
            nested = mnt / "shard.tar" / "nested" / "ckpt" / name
            header = json.loads((nested / "header.json").read_text())
            self.assertEqual(header["format"], "pytorch")
            self.assertEqual(header["container"], "shard.tar")
            slices = {s["name"]: s for s in json.loads((nested / "slices.json").read_text())}
            checked = 0
            for key, t in want[name]["tensors"].items():
                if not t["contiguous"] or t["torch_dtype"] == "bfloat16":
                    continue
                s = slices[key]
                expected = expected_array(t)
                if expected.size == 0:
                    continue
                served = np.memmap(nested / "raw" / key, dtype=s["dtype"], mode="r",
                                   shape=tuple(s["shape"]))
                self.assertTrue(np.array_equal(served, expected), key)
                del served  # a live mapping would keep the mount busy at its unmount
                at = tar_bytes[s["offset"]:s["offset"] + s["length"]]
                self.assertEqual(at, expected.tobytes(), f"{key}: offset in the tar")
                checked += 1
            self.assertGreaterEqual(checked, 3)


if __name__ == "__main__":
    unittest.main()
