"""tfrecord and netcdf through a real mount.

TFRecord: Debian has no TensorFlow, so tests/fixtures/gen_tfrecord.py writes the records from
the specification with a CRC-32C checked against the standard check value and python3-crcmod;
the mount is compared with the records it wrote (data bytes and CRC verdicts).
netCDF: files written by netCDF4-python (libnetcdf); every slice, read as numpy.memmap with
its dtype and shape, equals netCDF4's values; refs.json opened by zarr (fsspec reference
filesystem) equals netCDF4's values."""
import json
import pathlib
import struct
import sys
import tempfile
import time
import unittest

import numpy as np

from mounting import FIXTURES, MountedFixtures, mounted

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fixtures"))
import gen_tfrecord  # noqa: E402  (the spec-written record encoder and its checked CRC-32C)

try:
    import fsspec
    import netCDF4
    import zarr
except ImportError as e:  # the suite needs them: scripts/install-deps.sh installs them
    raise RuntimeError(f"{e}: install python3-netcdf4 python3-zarr python3-fsspec") from e

NC_FILES = ("classic.nc", "offset64.nc", "cdf5.nc", "single_record.nc")
NC_VERSIONS = {"classic.nc": 1, "offset64.nc": 2, "cdf5.nc": 5, "single_record.nc": 1}


def open_refs(refs_path):
    fs = fsspec.filesystem("reference", fo=str(refs_path), skip_instance_cache=True)
    return zarr.open(fs.get_mapper(""), mode="r")


def raw_values(var):
    """The variable's stored values as netCDF4 reads them, without masking or scaling."""
    var.set_auto_maskandscale(False)
    var.set_auto_chartostring(False)
    return np.asarray(var[...])


class TfRecordAndNetCdfThroughMount(MountedFixtures):
    REQUIRED = ("tfrecord/expected.json", "netcdf/classic.nc")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tf = json.loads((FIXTURES / "tfrecord" / "expected.json").read_text())

    def test_tfrecord_records_match_the_written_ones(self):
        files = self.tf["files"]
        self.assertGreaterEqual(len(files), 5)
        for rel, want in files.items():
            path = f"tfrecord/{rel}"
            with self.subTest(file=rel):
                h = self.header(path)
                self.assertEqual(h["format"], "tfrecord")
                self.assertEqual("errors" in h, want["errors"], h.get("errors"))
                self.assertEqual(h["header"]["record_count"], len(want["records"]))
                slices = self.slices(path)
                self.assertEqual(len(slices), len(want["records"]))
                width = len(str(len(want["records"]) - 1))
                for i, (s, w) in enumerate(zip(slices, want["records"])):
                    name = f"record/{i:0{width}d}"
                    self.assertEqual(s["name"], name)
                    data = bytes.fromhex(w["data_hex"])
                    self.assertEqual((self.mnt / path / "raw" / name).read_bytes(), data)
                    self.assertEqual(s["length"], len(data))
                    self.assertEqual(s["length_crc_ok"], w["length_crc_ok"], name)
                    self.assertEqual(s["data_crc_ok"], w["data_crc_ok"], name)

    def test_tfrecord_million_records(self):
        # Identical records have identical CRCs: one record encoded, repeated 10^6 times.
        rec = gen_tfrecord.record(b"payload!")
        n = 1_000_000
        with tempfile.TemporaryDirectory() as src:
            (pathlib.Path(src) / "big.tfrecord").write_bytes(rec * n)
            start = time.monotonic()
            with mounted(src) as mnt:
                h = json.loads((mnt / "big.tfrecord" / "header.json").read_text())
                self.assertEqual(h["format"], "tfrecord")
                self.assertEqual(h["header"]["record_count"], n)
                self.assertTrue(h["header"]["data_crc_checked"])
                last = mnt / "big.tfrecord" / "raw" / "record" / f"{n - 1:06d}"
                self.assertEqual(last.read_bytes(), b"payload!")
            self.assertLess(time.monotonic() - start, 30)

    def check_netcdf_file(self, rel):
        path = f"netcdf/{rel}"
        h = self.header(path)
        self.assertEqual(h["format"], "netcdf")
        self.assertNotIn("errors", h)
        slices = {s["name"]: s for s in self.slices(path)}
        with netCDF4.Dataset(FIXTURES / path) as ds:
            hh = h["header"]
            self.assertEqual(hh["version"], NC_VERSIONS[rel])
            numrecs = len(ds.dimensions["time"])
            self.assertEqual(hh["numrecs"], numrecs)
            self.assertEqual(hh["dimensions"], {n: len(d) for n, d in ds.dimensions.items()})
            for name in ds.ncattrs():
                got, want = hh["attributes"][name], ds.getncattr(name)
                self.assertEqual(np.asarray(got).tolist(), np.asarray(want).tolist(), name)
            self.assertEqual(list(hh["variables"]), list(ds.variables))
            for name, var in ds.variables.items():
                info = hh["variables"][name]
                self.assertEqual(info["dimensions"], list(var.dimensions), name)
                self.assertEqual(np.dtype(info["dtype"]).newbyteorder("=") if info["dtype"][0] == ">"
                                 else np.dtype(info["dtype"]), np.dtype(var.dtype), name)
                self.assertEqual(sorted(info["attributes"]), sorted(var.ncattrs()), name)
                values = raw_values(var)
                if not var.dimensions or var.dimensions[0] != "time":
                    self.check_slice(path, slices[name], name, values)
                    continue
                for r in range(numrecs):
                    self.check_slice(path, slices[f"{name}/{r}"], f"{name}/{r}", values[r])

    def check_slice(self, path, s, name, values):
        self.assertEqual(s["shape"], list(values.shape), name)
        got = np.memmap(self.mnt / path / "raw" / name, dtype=s["dtype"], mode="r",
                        shape=tuple(s["shape"])) if s["shape"] else \
            np.fromfile(self.mnt / path / "raw" / name, dtype=s["dtype"])[0]
        np.testing.assert_array_equal(np.asarray(got), values, err_msg=name)

    def test_netcdf_slices_match_netcdf4(self):
        for rel in NC_FILES:
            with self.subTest(file=rel):
                self.check_netcdf_file(rel)

    def test_netcdf_refs_json_opens_in_zarr(self):
        for rel in NC_FILES:
            path = f"netcdf/{rel}"
            with self.subTest(file=rel), netCDF4.Dataset(FIXTURES / path) as ds:
                group = open_refs(self.mnt / path / "refs.json")
                checked = 0
                for name, var in ds.variables.items():
                    values = raw_values(var)
                    if var.dimensions and var.dimensions[0] == "time":
                        for r in range(len(ds.dimensions["time"])):
                            # refs.json escapes the '/' of a slice name (zarr_array_name).
                            np.testing.assert_array_equal(group[f"{name}%2F{r}"][...], values[r])
                    else:
                        np.testing.assert_array_equal(group[name][...], values, err_msg=name)
                    checked += 1
                self.assertGreaterEqual(checked, 6)

    def test_single_record_variable_is_not_padded(self):
        s = {x["name"]: x for x in self.slices("netcdf/single_record.nc")}
        # temp's records (5 shorts, 10 bytes) are 10 bytes apart: not padded to 12.
        offsets = [s[f"temp/{r}"]["offset"] for r in range(4)]
        self.assertEqual([b - a for a, b in zip(offsets, offsets[1:])], [10, 10, 10])

    def test_netcdf_malformed_give_errors_and_keep_serving(self):
        for rel in ("cut_header.nc", "cut_data.nc", "huge_dim_count.nc", "begin_past_end.nc",
                    "vsize_overflow.nc"):
            with self.subTest(file=rel):
                h = self.header(f"netcdf/malformed/{rel}")
                self.assertEqual(h["format"], "netcdf")
                self.assertTrue(h.get("errors"), rel)
        self.assertEqual(self.header("netcdf/classic.nc")["format"], "netcdf")


if __name__ == "__main__":
    unittest.main()
