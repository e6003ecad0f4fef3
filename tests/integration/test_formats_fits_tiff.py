"""fits and tiff through a real mount, on files astropy, tifffile and PIL wrote
(tests/fixtures/gen_fits.py, gen_tiff.py), compared with what the producers' own readers and
libtiff's `tiffinfo` read from the same files: astropy's HDUList.fileinfo() (header and data
locations), header values, and the unscaled data (do_not_scale_image_data=True) against
numpy.memmap of raw/data/<i> and against zarr reading refs.json; tifffile's pages (data
offsets, byte counts, tags, pixels, GeoTIFF keys) and tiffinfo's image size and strip/tile
counts. The malformed copies must show their format with their error, and the mount must keep
serving."""
import json
import re
import unittest
import urllib.parse
import zlib

import fsspec
import numpy as np
import tifffile
import zarr
from astropy.io import fits

from mounting import FIXTURES, MountedFixtures


def load(name):
    return json.loads((FIXTURES / name / "expected.json").read_text())


def open_refs(refs_path):
    fs = fsspec.filesystem("reference", fo=str(refs_path), skip_instance_cache=True)
    return zarr.open(fs.get_mapper(""), mode="r")


class FitsTiffThroughMount(MountedFixtures):
    REQUIRED = ("fits/expected.json", "tiff/expected.json")

    def by_name(self, rel):
        return {s["name"]: s for s in self.slices(rel)}

    def test_fits_matches_astropy(self):
        files = load("fits")["files"]
        self.assertGreaterEqual(len(files), 4)
        for want in files:
            rel = f"fits/{want['file']}"
            with self.subTest(file=want["file"]), \
                    fits.open(FIXTURES / rel, do_not_scale_image_data=True) as hdul:
                h = self.header(rel)
                self.assertEqual(h["format"], "fits")
                self.assertNotIn("errors", h)
                self.assertEqual((self.mnt / rel / "magic").read_bytes(), b"SIMPLE  =")
                self.assertEqual(len(h["header"]["hdus"]), len(hdul))
                slices = self.by_name(rel)
                for i, hdu in enumerate(hdul):
                    info, got = hdu.fileinfo(), h["header"]["hdus"][i]
                    self.assertEqual(got["extname"], hdu.header.get("EXTNAME"))
                    self.assertEqual(got["xtension"], hdu.header.get("XTENSION"))
                    for key, value in hdu.header.items():
                        if key in ("COMMENT", "HISTORY", ""):
                            continue
                        if isinstance(value, float):
                            self.assertAlmostEqual(got["cards"][key], value, msg=key)
                        elif isinstance(value, (bool, int, str)):
                            self.assertEqual(got["cards"][key], value, key)
                    for key in ("COMMENT", "HISTORY"):
                        if key in hdu.header:
                            self.assertEqual(got["cards"][key],
                                             [str(c) for c in hdu.header[key]])
                    head = slices[f"header/{i}"]
                    self.assertEqual((head["offset"], head["length"]),
                                     (info["hdrLoc"], info["datLoc"] - info["hdrLoc"]))
                    if hdu.header["NAXIS"] == 0:
                        self.assertNotIn(f"data/{i}", slices)
                        continue
                    data = slices[f"data/{i}"]
                    self.assertEqual(data["offset"], info["datLoc"])
                    self.assertLessEqual(data["length"], info["datSpan"])
                    served = self.mnt / rel / data["path"]
                    if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                        raw = np.asarray(hdu.data).view(np.ndarray)
                        self.assertEqual(served.read_bytes(), raw.tobytes())
                        continue
                    array = np.memmap(served, dtype=data["dtype"], mode="r",
                                      shape=tuple(data["shape"]))
                    np.testing.assert_array_equal(array, hdu.data)
                    self.assertEqual(np.dtype(data["dtype"]), hdu.data.dtype.newbyteorder(">"))
                    if "BSCALE" in hdu.header:
                        self.assertEqual(got["bscale"], hdu.header["BSCALE"])
                        self.assertEqual(got["bzero"], hdu.header["BZERO"])

    def test_fits_refs_json_read_by_zarr(self):
        for file in ("image_and_table.fits", "scaled_int16.fits", "empty_primary.fits"):
            rel = f"fits/{file}"
            with self.subTest(file=file), \
                    fits.open(FIXTURES / rel, do_not_scale_image_data=True) as hdul:
                group = open_refs(self.mnt / rel / "refs.json")
                images = {f"data/{i}" for i, hdu in enumerate(hdul)
                          if hdu.is_image and hdu.header["NAXIS"] > 0}
                keys = {urllib.parse.unquote(k) for k in group.array_keys()}
                self.assertTrue(images <= keys, (images, keys))
                for name in images:
                    want = hdul[int(name.split("/")[1])].data
                    np.testing.assert_array_equal(group[urllib.parse.quote(name, safe="")][...],
                                                  want)
                for i, hdu in enumerate(hdul):  # binary tables: one |V<NAXIS1> record per row
                    if isinstance(hdu, fits.BinTableHDU):
                        rows = group[f"data%2F{i}"][...]
                        self.assertEqual(rows.shape, (hdu.header["NAXIS2"],))
                        self.assertEqual(rows.tobytes(),
                                         np.asarray(hdu.data).view(np.ndarray).tobytes())

    def check_malformed(self, fmt):
        for m in load(fmt)["malformed"]:
            rel = f"{fmt}/{m['file']}"
            with self.subTest(file=m["file"]):
                h = self.header(rel)
                self.assertEqual(h["format"], fmt)
                self.assertTrue(any(m["error"] in e for e in h.get("errors", [])), h)
                self.slices(rel)
        self.assertEqual(self.header(f"{fmt}/{load(fmt)['files'][0]['file']}")["format"], fmt)

    def test_fits_malformed(self):
        self.check_malformed("fits")

    def test_tiff_malformed(self):
        self.check_malformed("tiff")

    def test_tiff_matches_tifffile_and_tiffinfo(self):
        files = load("tiff")["files"]
        self.assertGreaterEqual(len(files), 8)
        for want in files:
            rel = f"tiff/{want['file']}"
            with self.subTest(file=want["file"]), tifffile.TiffFile(FIXTURES / rel) as tf:
                h = self.header(rel)
                self.assertEqual(h["format"], "tiff")
                self.assertNotIn("errors", h)
                self.assertEqual(h["header"]["bigtiff"], tf.is_bigtiff)
                self.assertEqual(h["header"]["byte_order"],
                                 "big" if tf.byteorder == ">" else "little")
                slices = self.by_name(rel)
                for i, page in enumerate(tf.pages):
                    self.check_page(rel, h["header"]["ifds"][i], slices, i, page)
                self.check_tiffinfo(h["header"]["ifds"], want["tiffinfo"])

    def check_page(self, rel, ifd, slices, i, page):
        tags = ifd["tags"]
        for name in ("ImageWidth", "ImageLength", "BitsPerSample", "Compression",
                     "PhotometricInterpretation", "SamplesPerPixel", "PlanarConfiguration",
                     "RowsPerStrip", "TileWidth", "TileLength", "SampleFormat"):
            if name in page.tags:
                value = page.tags[name].value
                value = int(value) if hasattr(value, "value") else value
                value = list(value) if isinstance(value, tuple) else value
                self.assertEqual(tags[name], value, name)
        kind = "tile" if page.is_tiled else "strip"
        pieces = []
        for j, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            s = slices[f"ifd/{i}/{kind}/{j}"]
            self.assertEqual((s["offset"], s["length"]), (offset, count))
            self.assertEqual(s["compression"], "none" if page.compression == 1 else
                             {8: "adobe_deflate", 32773: "packbits"}[int(page.compression)])
            pieces.append((self.mnt / rel / s["path"]).read_bytes())
        pixels = page.asarray()
        if page.compression == 8:
            pieces = [zlib.decompress(p) for p in pieces]
        elif page.compression != 1:
            return
        if not page.is_tiled:
            data = b"".join(pieces)[:pixels.nbytes]
            self.assertEqual(data, pixels.astype(pixels.dtype.newbyteorder(
                page.parent.byteorder)).tobytes())

    def check_tiffinfo(self, ifds, text):
        sizes = re.findall(r"Image Width: (\d+) Image Length: (\d+)", text)
        self.assertGreaterEqual(len(sizes), 1)
        for ifd, (width, length) in zip(ifds, sizes):
            self.assertEqual((ifd["tags"]["ImageWidth"], ifd["tags"]["ImageLength"]),
                             (int(width), int(length)))

    def test_geotiff_keys_match_tifffile(self):
        with tifffile.TiffFile(FIXTURES / "tiff/geotiff.tif") as tf:
            want = tf.pages[0].geotiff_tags
            got = self.header("tiff/geotiff.tif")["header"]["ifds"][0]
            for key, value in want.items():
                if key.endswith("GeoKey"):
                    value = int(value.value) if hasattr(value, "value") else value
                    self.assertEqual(got["geokeys"]["keys"][key], value, key)
            self.assertEqual(got["tags"]["ModelPixelScaleTag"], [0.5, 0.5, 0.0])


if __name__ == "__main__":
    unittest.main()
