"""flac and jpeg through a real mount, on files the real producers wrote
(tests/fixtures/gen_flac.py with the `flac` encoder, gen_jpeg.py with Pillow), compared with
the reference tools:

- flac: `metaflac --list` (every block's type and length, in order; seek point counts; each
  PICTURE's type, MIME type, description, size, depth, data length), `metaflac --show-*`
  (STREAMINFO fields, vendor string), `metaflac --export-tags-to=-` (Vorbis comments) and
  `metaflac --export-picture-to=-` (the picture bytes at the header's data_offset, read through
  range/). A file rebuilt from "fLaC", each block's header and raw/ bytes, and raw/frames must
  list the same blocks under metaflac and decode (`flac -d`) to the same audio as the source.
- jpeg: `exiv2 -pS` (marker, address and length of every segment up to the first SOS; raw/
  bytes at those offsets), `exiftool -j -n` (EXIF tags, JFIF version, comment) and Pillow (size,
  mode, progressive, and more than one scan for a progressive image). A file rebuilt from SOI,
  each segment's marker, length and raw/ bytes, each raw/scan, and EOI must equal the source
  byte for byte.

The broken copies under each fixture directory's malformed/ show their format with `errors`,
every raw/ file reads, and the mount still serves afterwards.
"""
import io
import json
import re
import shutil
import subprocess
import tempfile
import unittest
import pathlib

from mounting import FIXTURES, MountedFixtures, requirement

FLAC_DIR = FIXTURES / "flac"
JPEG_DIR = FIXTURES / "jpeg"
FLAC_TYPES = {"STREAMINFO": 0, "PADDING": 1, "APPLICATION": 2, "SEEKTABLE": 3,
              "VORBIS_COMMENT": 4, "CUESHEET": 5, "PICTURE": 6}

try:
    from PIL import Image
except ImportError:  # pragma: no cover - the requirement below reports it
    Image = None


def tool(*args):
    return subprocess.run(args, check=True, capture_output=True).stdout


def metaflac_fields(path):
    """Each block of `metaflac --list`: its first-level `key: value` lines (the first of a key;
    PICTURE's own `type` comes after the block's and is kept as `picture type`)."""
    blocks = []
    for line in tool("metaflac", "--list", str(path)).decode().splitlines():
        if line.startswith("METADATA block #"):
            blocks.append({})
            continue
        m = re.match(r"  (\S[^:]*): ?(.*)$", line)
        if m and blocks:
            key = "picture type" if m[1] == "type" and "type" in blocks[-1] else m[1]
            blocks[-1].setdefault(key, m[2])
    return blocks


def metaflac_blocks(path):
    """(type name, length) of each block, from `metaflac --list`."""
    return [(re.match(r"\d+ \((\w+)\)", b["type"])[1], int(b["length"]))
            for b in metaflac_fields(path)]


def exiv2_segments(path):
    rows = []
    for line in tool("exiv2", "-pS", str(path)).decode().splitlines():
        m = re.match(r"\s*(\d+) \| 0x([0-9a-f]{4}) (\S+)\s*(?:\|\s*(\d+))?", line)
        if m:
            rows.append((int(m[1]), m[2], m[3], int(m[4]) if m[4] else None))
    return rows


@requirement(all(shutil.which(t) for t in ("flac", "metaflac", "exiv2", "exiftool"))
             and Image is not None,
             "flac, metaflac, exiv2, exiftool and Pillow (packages flac, exiv2, "
             "libimage-exiftool-perl, python3-pil) are needed")
class FlacJpegThroughMount(MountedFixtures):
    REQUIRED = ("flac/manifest.json", "jpeg/manifest.json")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.work = pathlib.Path(cls.stack.enter_context(tempfile.TemporaryDirectory()))

    def raw(self, rel, s):
        return (self.mnt / rel / s["path"]).read_bytes()

    # ------------------------------------------------------------------------------ flac

    def rebuild_flac(self, rel, slices):
        out = bytearray(b"fLaC")
        blocks = [s for s in slices if s["name"] != "frames"]
        for i, s in enumerate(blocks):
            data = self.raw(rel, s)
            self.assertEqual(len(data), s["length"])
            out += bytes([s["type"] | (0x80 if i == len(blocks) - 1 else 0)])
            out += len(data).to_bytes(3, "big") + data
        frames = next(s for s in slices if s["name"] == "frames")
        out += self.raw(rel, frames)
        return bytes(out)

    def decode(self, data, name):
        path = self.work / name
        path.write_bytes(data)
        return tool("flac", "-s", "-d", "-c", "--force-raw-format", "--endian=little",
                    "--sign=signed", str(path))

    def test_flac_blocks_fields_and_frames_match_metaflac_and_flac(self):
        for name in json.loads((FLAC_DIR / "manifest.json").read_text()):
            rel = f"flac/{name}"
            src = FLAC_DIR / name
            with self.subTest(file=rel):
                h = self.header(rel)
                self.assertEqual(h["format"], "flac")
                self.assertNotIn("errors", h)
                slices = self.slices(rel)
                expected = metaflac_blocks(src)
                self.assertEqual([(s["name"], s["length"]) for s in slices[:-1]], expected)
                paths = [s["path"] for s in slices]
                self.assertEqual(len(set(paths)), len(paths))
                if [n for n, _ in expected].count("PICTURE") == 2:
                    self.assertIn("raw/PICTURE~1", paths)
                frames = slices[-1]
                self.assertEqual((frames["name"], frames["offset"] + frames["length"]),
                                 ("frames", src.stat().st_size))
                show = {"min_block_size": "--show-min-blocksize",
                        "max_block_size": "--show-max-blocksize",
                        "min_frame_size": "--show-min-framesize",
                        "max_frame_size": "--show-max-framesize",
                        "sample_rate": "--show-sample-rate", "channels": "--show-channels",
                        "bits_per_sample": "--show-bps", "total_samples": "--show-total-samples"}
                for key, option in show.items():
                    self.assertEqual(h["header"][key], int(tool("metaflac", option, str(src))), key)
                self.assertEqual(h["header"]["md5"],
                                 tool("metaflac", "--show-md5sum", str(src)).decode().strip())
                self.assertEqual(h["header"]["vendor"],
                                 tool("metaflac", "--show-vendor-tag", str(src)).decode().strip())
                self.check_tags(h["header"]["comments"], src)
                self.check_pictures(rel, h["header"]["pictures"], src)
                for s, b in zip(slices, metaflac_fields(src)):
                    if s["name"] == "SEEKTABLE":
                        self.assertEqual(s["points"], int(b["seek points"]))
                rebuilt = self.rebuild_flac(rel, slices)
                self.assertEqual(self.decode(rebuilt, "rebuilt.flac"),
                                 self.decode(src.read_bytes(), "source.flac"))
                self.assertEqual(metaflac_blocks(self.work / "rebuilt.flac"), expected)

    def check_tags(self, comments, src):
        exported = {}
        for line in tool("metaflac", "--export-tags-to=-", str(src)).decode().splitlines():
            key, value = line.split("=", 1)
            exported.setdefault(key, []).append(value)
        ours = {k: v if isinstance(v, list) else [v] for k, v in comments.items()}
        self.assertEqual(ours, exported)

    def check_pictures(self, rel, pictures, src):
        listed = [b for b in metaflac_fields(src) if b["type"].endswith("(PICTURE)")]
        self.assertEqual(len(pictures), len(listed))
        for p, b in zip(pictures, listed):
            self.assertEqual((p["type"], p["mime"], p["description"], p["width"], p["height"],
                              p["depth"], p["data_length"]),
                             (int(b["picture type"].split()[0]), b["MIME type"],
                              b["description"], int(b["width"]), int(b["height"]),
                              int(b["depth"]), int(b["data length"])))
        for i, p in enumerate(pictures):
            image = tool("metaflac", f"--block-number={self.picture_block(src, i)}",
                         "--export-picture-to=-", str(src))
            served = (self.mnt / rel / "range" /
                      f"{p['data_offset']}+{p['data_length']}").read_bytes()
            self.assertEqual(served, image)
            with Image.open(io.BytesIO(image)) as im:
                self.assertEqual(im.size, (p["width"], p["height"]))

    @staticmethod
    def picture_block(src, index):
        types = [t for t, _ in metaflac_blocks(src)]
        return [i for i, t in enumerate(types) if t == "PICTURE"][index]

    # ------------------------------------------------------------------------------ jpeg

    def test_jpeg_segments_match_exiv2_and_rebuild_the_file(self):
        for name in json.loads((JPEG_DIR / "manifest.json").read_text()):
            rel = f"jpeg/{name}"
            src = (JPEG_DIR / name).read_bytes()
            with self.subTest(file=rel):
                h = self.header(rel)
                self.assertEqual(h["format"], "jpeg")
                self.assertNotIn("errors", h)
                slices = self.slices(rel)
                rows = exiv2_segments(JPEG_DIR / name)
                self.assertEqual(rows[0][2], "SOI")
                for s, (address, marker, marker_name, length) in zip(slices, rows[1:]):
                    self.assertEqual((s["name"], s["marker"], s["marker_offset"]),
                                     (marker_name, marker, address))
                    if length is not None:
                        self.assertEqual(s["segment_length"], length)
                        self.assertEqual(self.raw(rel, s), src[address + 4:address + 2 + length])
                rebuilt = bytearray(b"\xff\xd8")
                for s in slices:
                    if s["name"] != "scan":
                        rebuilt += bytes.fromhex(s["marker"])
                        rebuilt += s["segment_length"].to_bytes(2, "big")
                    rebuilt += self.raw(rel, s)
                rebuilt += b"\xff\xd9"
                self.assertEqual(bytes(rebuilt), src)
                with Image.open(io.BytesIO(src)) as im:
                    self.assertEqual((h["header"]["width"], h["header"]["height"]), im.size)
                    self.assertEqual(h["header"]["components"], len(im.getbands()))
                    self.assertEqual(h["header"]["progressive"],
                                     bool(im.info.get("progressive", 0)))
                    scans = [s for s in slices if s["name"] == "scan"]
                    self.assertEqual(len(scans), h["header"]["scan_count"])
                    self.assertGreater(len(scans), 1 if im.info.get("progressive") else 0)

    def test_jpeg_exif_and_jfif_match_exiftool(self):
        for name in json.loads((JPEG_DIR / "manifest.json").read_text()):
            rel = f"jpeg/{name}"
            with self.subTest(file=rel):
                theirs = json.loads(tool("exiftool", "-j", "-n", str(JPEG_DIR / name)))[0]
                h = self.header(rel)["header"]
                major, minor = (int(x) for x in h["jfif_version"].split("."))
                self.assertEqual(f"{major} {minor}", theirs["JFIFVersion"])
                if "Comment" in theirs:
                    self.assertEqual(h["comments"], [theirs["Comment"]])
                if "ExifByteOrder" not in theirs:
                    self.assertNotIn("exif", h)
                    continue
                self.assertEqual(h["exif_byte_order"], theirs["ExifByteOrder"])
                exif = h["exif"]
                for tag in ("Make", "Model", "Orientation", "Software", "DateTime",
                            "DateTimeOriginal", "ExposureTime", "FNumber", "XResolution",
                            "YResolution", "GPSLatitudeRef", "GPSLongitudeRef"):
                    theirs_tag = "ModifyDate" if tag == "DateTime" else tag
                    self.assertEqual(exif[tag], theirs[theirs_tag], tag)
                self.assertEqual(exif["ISOSpeedRatings"], theirs["ISO"])
                for tag in ("GPSLatitude", "GPSLongitude"):
                    d, m, s = exif[tag]
                    self.assertAlmostEqual(d + m / 60 + s / 3600, theirs[tag], places=9)

    # ------------------------------------------------------------------------------ malformed

    def test_malformed_copies_have_errors_and_the_mount_stays_alive(self):
        version = (self.mnt / ".payloadfs" / "version").read_text()
        checked = 0
        for fmt, base in (("flac", FLAC_DIR), ("jpeg", JPEG_DIR)):
            for entry in json.loads((base / "malformed" / "manifest.json").read_text()):
                rel = f"{fmt}/malformed/{entry['file']}"
                with self.subTest(file=rel, problem=entry["problem"]):
                    src = (FIXTURES / rel).read_bytes()
                    h = self.header(rel)
                    self.assertEqual(h["format"], fmt)
                    self.assertTrue(h.get("errors"), entry["problem"])
                    for s in self.slices(rel):
                        self.assertEqual(self.raw(rel, s),
                                         src[s["offset"]:s["offset"] + s["length"]])
                    checked += 1
        self.assertGreaterEqual(checked, 11)
        self.assertEqual((self.mnt / ".payloadfs" / "version").read_text(), version)


if __name__ == "__main__":
    unittest.main()
