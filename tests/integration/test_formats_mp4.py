"""mp4 (ISO base media, QuickTime) through a real mount, on files ffmpeg wrote
(tests/fixtures/gen_mp4.py: video + audio mp4, the same with +faststart, an m4a, a .mov),
compared with `ffprobe -show_packets -show_streams -of json -ignore_editlist 1` run here on the
source: every packet's pos and size are the offset and length of the track/<id>/<i> slice of
its stream's track (ffprobe's stream id is the track id), the raw/ file has that size and the
source's bytes at pos, and each stream's codec tag, width, height, sample rate, channels and
frame count are the header's track. A file of 10^6 samples, written here from ISO/IEC 14496-12
with numpy, lists and reads raw/track/1/999999 in bounded time while the daemon's anonymous
memory stays bounded. The malformed copies report their error and the mount keeps serving."""
import json
import os
import pathlib
import struct
import subprocess
import tempfile
import time
import unittest

from mounting import FIXTURES, SANITIZED, MountedFixtures, daemon_pid, mounted, proc_status_kib

MP4_DIR = FIXTURES / "mp4"
BIG_SAMPLES = 1_000_000
BIG_CHUNK_SAMPLES = 1000


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-ignore_editlist", "1", "-show_packets",
                          "-show_streams", "-of", "json", str(path)],
                         capture_output=True, check=True).stdout
    return json.loads(out)


def box(kind, payload):
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind, version, payload):
    return box(kind, struct.pack(">I", version << 24) + payload)


def big_mp4(path):
    """One video track of 10^6 samples of 1 to 7 bytes in 1000 chunks (co64), built box by box
    from ISO/IEC 14496-12. Returns the samples' offsets and sizes (numpy arrays)."""
    import numpy as np
    sizes = (np.arange(BIG_SAMPLES, dtype=np.uint32) % 7 + 1).astype(">u4")
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = full_box(b"mvhd", 0, struct.pack(">IIII", 0, 0, 1000, BIG_SAMPLES) + bytes(80))
    tkhd = full_box(b"tkhd", 0, struct.pack(">IIIII", 0, 0, 1, 0, BIG_SAMPLES) + bytes(52) +
                    struct.pack(">II", 16 << 16, 8 << 16))
    mdhd = full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, 1000, BIG_SAMPLES, 0x55c4, 0))
    hdlr = full_box(b"hdlr", 0, b"\0" * 4 + b"vide" + bytes(12) + b"big\0")
    entry = box(b"avc1", bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", 16, 8)
                + bytes(50))
    stsd = full_box(b"stsd", 0, struct.pack(">I", 1) + entry)
    stts = full_box(b"stts", 0, struct.pack(">III", 1, BIG_SAMPLES, 1))
    stsc = full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, BIG_CHUNK_SAMPLES, 1))
    stsz = full_box(b"stsz", 0, struct.pack(">II", 0, BIG_SAMPLES) + sizes.tobytes())
    chunks = BIG_SAMPLES // BIG_CHUNK_SAMPLES
    co64_size = 8 + 4 + 4 + 8 * chunks

    def moov(co64):
        stbl = box(b"stbl", stsd + stts + stsc + stsz + co64)
        minf = box(b"minf", stbl)
        return box(b"moov", mvhd + box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf)))
    data_start = len(ftyp) + len(moov(bytes(co64_size))) + 8
    starts = np.zeros(BIG_SAMPLES, dtype=np.uint64)
    starts[1:] = np.cumsum(sizes.astype(np.uint64))[:-1]
    starts += np.uint64(data_start)
    chunk_offsets = starts[::BIG_CHUNK_SAMPLES].astype(">u8")
    co64 = full_box(b"co64", 0, struct.pack(">I", chunks) + chunk_offsets.tobytes())
    media = int(sizes.astype(np.uint64).sum())
    with open(path, "wb") as f:
        f.write(ftyp + moov(co64) + struct.pack(">I4s", 8 + media, b"mdat"))
        f.write(bytes(media))
    return starts, sizes


class Mp4ThroughMount(MountedFixtures):
    REQUIRED = ("mp4/manifest.json",)

    def test_samples_and_tracks_match_ffprobe(self):
        names = json.loads((MP4_DIR / "manifest.json").read_text())
        self.assertEqual(len(names), 4)
        for name in names:
            rel = f"mp4/{name}"
            with self.subTest(file=name):
                source = (MP4_DIR / name).read_bytes()
                probe = ffprobe(MP4_DIR / name)
                h = self.header(rel)
                self.assertEqual(h["format"], "mp4")
                self.assertNotIn("errors", h)
                tracks = {t["id"]: t for t in h["header"]["tracks"]}
                self.assertEqual(len(tracks), len(probe["streams"]))
                stream_track = {}
                for stream in probe["streams"]:
                    track = tracks[int(stream["id"], 16)]
                    stream_track[stream["index"]] = track["id"]
                    self.assertEqual(track["codec"], stream["codec_tag_string"])
                    self.assertEqual(track["sample_count"], int(stream["nb_frames"]))
                    self.assertEqual(track["handler"],
                                     {"video": "vide", "audio": "soun"}[stream["codec_type"]])
                    if stream["codec_type"] == "video":
                        self.assertEqual((track["width"], track["height"]),
                                         (stream["width"], stream["height"]))
                    else:
                        self.assertEqual(track["sample_rate"], int(stream["sample_rate"]))
                        self.assertEqual(track["channels"], stream["channels"])
                by_name = {s["name"]: s for s in self.slices(rel)}
                counters = {}
                for packet in probe["packets"]:
                    track_id = stream_track[packet["stream_index"]]
                    i = counters.get(track_id, 0)
                    counters[track_id] = i + 1
                    width = len(str(tracks[track_id]["sample_count"] - 1))
                    s = by_name[f"track/{track_id}/{i:0{width}d}"]
                    pos, size = int(packet["pos"]), int(packet["size"])
                    self.assertEqual((s["offset"], s["length"]), (pos, size), s["name"])
                    self.assertEqual(s["keyframe"], "K" in packet["flags"], s["name"])
                    served = (self.mnt / rel / s["path"]).read_bytes()
                    self.assertEqual(served, source[pos:pos + size], s["name"])
                self.assertEqual(counters, {t: tracks[t]["sample_count"] for t in tracks})

    def test_boxes_by_path(self):
        for name, first in (("faststart.mp4", "moov"), ("av.mp4", "mdat")):
            with self.subTest(file=name):
                rel = f"mp4/{name}"
                source = (MP4_DIR / name).read_bytes()
                boxes = [s for s in self.slices(rel) if not s["name"].startswith("track/")]
                names = [s["name"] for s in boxes]
                self.assertEqual(names[0], "ftyp")
                self.assertIn("moov/mvhd", names)
                self.assertIn("moov/trak/mdia/minf/stbl/stsd", names)
                self.assertIn("moov/trak~1/mdia/minf/stbl/stsd", names)
                # +faststart puts moov before mdat.
                top = [n.split("/")[0] for n in names if n.split("/")[0] in ("moov", "mdat")]
                self.assertEqual(top[0], first)
                for s in boxes:
                    at, size = s["box_offset"], s["box_size"]
                    self.assertEqual(struct.unpack(">I4s", source[at:at + 8]),
                                     (size, s["type"].encode()))
                    self.assertEqual((self.mnt / rel / s["path"]).read_bytes(),
                                     source[s["offset"]:s["offset"] + s["length"]])
                self.assertFalse((self.mnt / rel / "nested" / "mdat").exists())

    def test_malformed_copies_report_their_error(self):
        cases = json.loads((MP4_DIR / "malformed" / "manifest.json").read_text())
        self.assertGreaterEqual(len(cases), 5)
        for case in cases:
            rel = f"mp4/malformed/{case['file']}"
            with self.subTest(file=case["file"]):
                h = self.header(rel)
                self.assertEqual(h["format"], "mp4")
                self.assertTrue(any(case["error"] in e for e in h.get("errors", [])),
                                h.get("errors"))
                size = (MP4_DIR / "malformed" / case["file"]).stat().st_size
                for s in self.slices(rel):
                    self.assertLessEqual(s["offset"] + s["length"], size)
                    self.assertEqual(len((self.mnt / rel / s["path"]).read_bytes()), s["length"])
        self.assertEqual(self.header("mp4/av.mp4")["format"], "mp4")


class Mp4MillionSamples(unittest.TestCase):
    def test_million_samples_cost_bytes_per_sample(self):
        with tempfile.TemporaryDirectory(prefix="payloadfs-mp4-") as src:
            path = pathlib.Path(src) / "big.mp4"
            started = time.monotonic()
            starts, sizes = big_mp4(path)
            with mounted(pathlib.Path(src)) as mnt:
                pid = daemon_pid(mnt)
                h = json.loads((mnt / "big.mp4" / "header.json").read_text())
                self.assertNotIn("errors", h)
                self.assertEqual(h["header"]["tracks"][0]["sample_count"], BIG_SAMPLES)
                last = mnt / "big.mp4" / "raw/track/1/999999"
                self.assertEqual(last.stat().st_size, int(sizes[-1]))
                with open(path, "rb") as f:
                    f.seek(int(starts[-1]))
                    self.assertEqual(last.read_bytes(), f.read(int(sizes[-1])))
                self.assertEqual(os.getxattr(mnt / "big.mp4" / "raw/track/1/123456",
                                             "user.payloadfs.offset"), str(int(starts[123456])).encode())
                listing = os.listdir(mnt / "big.mp4" / "raw/track/1")
                self.assertEqual(len(listing), BIG_SAMPLES)
                self.assertEqual(min(listing), "000000")
                rss_kib = proc_status_kib(pid, "RssAnon")
            elapsed = time.monotonic() - started
        # 16 bytes a sample is 16 MB (a slice object and its JSON per sample would be several
        # hundred); the rest is the daemon's own. AddressSanitizer's allocator keeps more (68 MB
        # seen), so the sanitizer build gets room for it.
        limit_mib = 256 if SANITIZED else 64
        self.assertLess(rss_kib, limit_mib * 1024, f"RssAnon {rss_kib} KiB")
        self.assertLess(elapsed, 30, f"{elapsed:.1f} s")


if __name__ == "__main__":
    unittest.main()
