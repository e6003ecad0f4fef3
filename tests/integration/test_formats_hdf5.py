"""hdf5 through a real mount, against h5py (libhdf5) reading the same files: every dataset's
bytes, every chunk's place, refs.json read by zarr, xarray and a dask.distributed cluster
whose workers read the source files without payloadfs, malformed files, and a dataset of
100,000 chunks."""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import time
import unittest
from collections.abc import Mapping

import fsspec
import h5py
import numpy as np
import zarr

from mounting import FIXTURES, MountedFixtures, mounted

FILES = ("earliest.h5", "latest.h5", "userblock.h5", "netcdf4.nc", "netcdf4_classic.nc")


class ReferenceStore(Mapping):
    """refs.json as a zarr store, one key at a time. fsspec 2022.11 (Debian 12's) raises
    KeyError out of FSMap.getitems for a chunk with no reference instead of leaving it out, so
    zarr cannot fill unallocated chunks through fs.get_mapper(); per key, a KeyError is what
    zarr expects of a missing chunk."""

    def __init__(self, refs_path):
        self.fs = fsspec.filesystem("reference", fo=str(refs_path), skip_instance_cache=True)
        self.keys_ = set(self.fs.references)

    def __getitem__(self, key):
        if key not in self.keys_:
            raise KeyError(key)
        return self.fs.cat_file(key)

    def __iter__(self):
        return iter(self.keys_)

    def __len__(self):
        return len(self.keys_)


def open_refs(refs_path):
    """The zarr group a refs.json describes."""
    return zarr.open(zarr.storage.KVStore(ReferenceStore(refs_path)), mode="r")


def zarr_name(path):
    """A dataset's zarr array name in refs.json: its path without '/', '/' percent-encoded."""
    return path.lstrip("/").replace("%", "%25").replace("/", "%2F")


def grid_key(chunk_offset, chunks):
    return ".".join(str(o // c) for o, c in zip(chunk_offset, chunks))


class Hdf5ThroughMount(MountedFixtures):
    SOURCE = FIXTURES / "hdf5"
    REQUIRED = tuple(f"hdf5/{name}.expected.json" for name in FILES)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.expected = {name: json.loads((cls.SOURCE / f"{name}.expected.json").read_text())
                        for name in FILES}

    def by_name(self, rel):
        return {s["name"]: s for s in self.slices(rel)}

    def test_objects_and_datasets_match_h5py(self):
        for name in FILES:
            want = self.expected[name]
            with self.subTest(file=name):
                h = self.header(name)
                self.assertEqual(h["format"], "hdf5")
                self.assertNotIn("errors", h)
                hh = h["header"]
                self.assertEqual(hh["superblock_version"], want["superblock_version"])
                self.assertEqual(hh["userblock_size"], want["userblock"])
                self.assertEqual(set(hh["datasets"]), set(want["datasets"]))
                groups = {o["path"] for o in want["objects"] if o["kind"] == "group"}
                self.assertEqual(set(hh["groups"]), groups)
                for path, d in want["datasets"].items():
                    got = hh["datasets"][path]
                    self.assertEqual(got["shape"], d["shape"], path)
                    self.assertEqual(got["maxshape"], d["maxshape"], path)
                    self.assertEqual(got["layout"], d["layout"], path)
                    if d["layout"] == "chunked":
                        self.assertEqual(got["chunks"], d["chunks"], path)
                    if isinstance(d["dtype"], str) and got["dtype"] is not None:
                        self.assertEqual(np.dtype(got["dtype"]), np.dtype(d["dtype"]), path)
                for link in want["links"]:
                    self.assertEqual(hh["links"][link["path"]],
                                     {"kind": link["kind"], "target": link["target"]})

    def test_contiguous_bytes_are_what_h5py_reads(self):
        for name in FILES:
            slices = self.by_name(name)
            with h5py.File(self.SOURCE / name, "r") as f:
                for path, d in self.expected[name]["datasets"].items():
                    if d["layout"] != "contiguous" or d["offset"] is None:
                        continue
                    with self.subTest(file=name, dataset=path):
                        s = slices[path.lstrip("/")]
                        self.assertEqual(s["offset"], d["offset"])
                        self.assertEqual(s["length"], d["storage_size"])
                        raw = (self.mnt / name / s["path"]).read_bytes()
                        values = f[path][()]
                        if s.get("dtype") is None:
                            continue
                        got = np.frombuffer(raw, dtype=np.dtype(
                            [tuple(x) for x in s["dtype"]] if isinstance(s["dtype"], list)
                            else s["dtype"])).reshape(s["shape"])
                        self.assertEqual(got.tobytes(), np.asarray(values).astype(
                            got.dtype).tobytes())

    def test_chunks_are_where_h5py_says(self):
        # h5py's byte_offset is an HDF5 address: the user block (the base address) comes first.
        for name in FILES:
            base = self.expected[name]["userblock"]
            with self.subTest(file=name), h5py.File(self.SOURCE / name, "r") as f:
                for path, d in self.expected[name]["datasets"].items():
                    if d["layout"] != "chunked":
                        continue
                    directory = self.mnt / name / "raw" / path.lstrip("/")
                    want = {grid_key(c["chunk_offset"], d["chunks"]): c for c in d["chunk_list"]}
                    listed = set(os.listdir(directory)) if want else set()
                    self.assertEqual(listed, set(want), path)
                    for key, c in want.items():
                        chunk = directory / key
                        self.assertEqual(int(os.getxattr(chunk, "user.payloadfs.offset")),
                                         base + c["byte_offset"], f"{path} {key}")
                        mask, stored = f[path].id.read_direct_chunk(tuple(c["chunk_offset"]))
                        self.assertEqual(chunk.read_bytes(), stored, f"{path} {key}")
                    # A chunk h5py does not list resolves to nothing.
                    grid = [-(-n // c) for n, c in zip(d["shape"], d["chunks"])]
                    missing = [".".join(map(str, cell)) for cell in np.ndindex(*grid)
                               if ".".join(map(str, cell)) not in want]
                    for key in missing[:3]:
                        self.assertFalse((directory / key).exists(), f"{path} {key}")

    def test_refs_json_reads_like_h5py(self):
        readable = 0
        for name in FILES:
            with self.subTest(file=name), h5py.File(self.SOURCE / name, "r") as f:
                group = open_refs(self.mnt / name / "refs.json")
                arrays = dict(group.arrays())
                for path, d in self.expected[name]["datasets"].items():
                    key = zarr_name(path)
                    if key not in arrays:
                        continue
                    readable += 1
                    np.testing.assert_array_equal(arrays[key][...], f[path][()], err_msg=path)
                if name == "latest.h5":
                    for path in ("/gzip_shuffle", "/partial", "/idx_single", "/idx_implicit",
                                 "/idx_fixed", "/idx_extensible", "/idx_btree2", "/group1/i16"):
                        self.assertIn(zarr_name(path), arrays)
        self.assertGreater(readable, 40)

    def test_netcdf4_variables_through_xarray(self):
        import netCDF4
        import xarray
        for name in ("netcdf4.nc", "netcdf4_classic.nc"):
            with self.subTest(file=name):
                store = zarr.storage.KVStore(ReferenceStore(self.mnt / name / "refs.json"))
                ds = xarray.open_dataset(store,
                                         engine="zarr", consolidated=False,
                                         mask_and_scale=False, decode_times=False)
                with netCDF4.Dataset(self.SOURCE / name) as nc:
                    nc.set_auto_maskandscale(False)
                    compared = 0
                    for var in nc.variables:
                        if zarr_name(var) not in ds.variables:
                            continue
                        np.testing.assert_array_equal(ds[zarr_name(var)].values,
                                                      nc.variables[var][...], err_msg=var)
                        # Dimension scales name the axes, so variables share netCDF's dims.
                        self.assertEqual(ds[zarr_name(var)].dims, nc.variables[var].dimensions)
                        compared += 1
                    self.assertGreaterEqual(compared, len(nc.variables) - 1)

    def test_dask_cluster_reads_refs_without_payloadfs(self):
        import dask.array as da
        from dask.distributed import Client, LocalCluster
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-refs-"))
        self.addCleanup(shutil.rmtree, tmp)
        refs = tmp / "latest.refs.json"
        shutil.copyfile(self.mnt / "latest.h5" / "refs.json", refs)
        text = refs.read_text()
        self.assertNotIn(str(self.mnt), text)  # the workers read the source file itself
        with h5py.File(self.SOURCE / "latest.h5", "r") as f:
            # Every chunk allocated: the workers read through fsspec's own mapper (see
            # ReferenceStore).
            want = {p: f[p][()] for p in ("/gzip_shuffle", "/idx_btree2", "/idx_fixed")}
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            for path, values in want.items():
                x = da.from_zarr("reference://", component=zarr_name(path),
                                 storage_options={"fo": str(refs)})
                self.assertGreater(x.numblocks[0] * (x.numblocks[1] if x.ndim > 1 else 1), 1)
                self.assertAlmostEqual(float(x.astype("f8").sum().compute()),
                                       float(values.astype("f8").sum()), places=3, msg=path)

    def test_malformed_files_give_errors_and_the_mount_lives(self):
        malformed = sorted((self.SOURCE / "malformed").iterdir())
        self.assertGreaterEqual(len(malformed), 5)
        for path in malformed:
            with self.subTest(file=path.name):
                started = time.monotonic()
                h = self.header(f"malformed/{path.name}")
                self.assertEqual(h["format"], "hdf5")
                self.assertTrue(h.get("errors"), path.name)
                self.slices(f"malformed/{path.name}")
                self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(self.header("latest.h5")["format"], "hdf5")


class Hdf5HundredThousandChunks(unittest.TestCase):
    """A dataset of 100,000 chunks: listed, looked up and read in bounded time and memory."""

    def test_list_lookup_and_read(self):
        with contextlib.ExitStack() as stack:
            src = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
            with h5py.File(src / "big.h5", "w") as f:
                d = f.create_dataset("big", shape=(100_000,), chunks=(1,), dtype="<i4")
                d[:] = np.arange(100_000, dtype="<i4")
                info = d.id.get_chunk_info_by_coord((54_321,))
            mnt = stack.enter_context(mounted(src))
            h = json.loads((mnt / "big.h5" / "header.json").read_text())
            self.assertNotIn("errors", h)
            self.assertEqual(h["slice_count"], 100_000)
            chunk = mnt / "big.h5" / "raw" / "big" / "54321"
            self.assertEqual(int(os.getxattr(chunk, "user.payloadfs.offset")), info.byte_offset)
            self.assertEqual(np.frombuffer(chunk.read_bytes(), "<i4").tolist(), [54_321])
            names = os.listdir(mnt / "big.h5" / "raw" / "big")
            self.assertEqual(len(names), 100_000)
            self.assertEqual(set(names), {str(i) for i in range(100_000)})
            refs = json.loads((mnt / "big.h5" / "refs.json").read_text())["refs"]
            self.assertEqual(refs["big/54321"][1:], [info.byte_offset, info.size])


if __name__ == "__main__":
    unittest.main()
