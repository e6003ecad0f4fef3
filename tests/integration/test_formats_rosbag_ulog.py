"""rosbag and ulog through a real mount, compared with independent readers:

- rosbag: bags that rosbag itself wrote (tests/fixtures/gen_rosbag.py: uncompressed with many
  chunks, bz2, lz4), read here with rosbag (Debian python3-rosbag): `read_messages(raw=True)`
  gives each message's serialized bytes and time, which must equal raw/message/<topic>/<i> and
  its `time`, per topic in file order; `get_type_and_topic_info()` gives types and counts per
  topic; `get_compression_info()` the codec. Every raw/chunk/<i> of a compressed bag must
  decompress (bz2, roslz4) to exactly its `size` bytes. big.bag (10^6 messages, written from
  the specification by gen_rosbag.big_bag, into a temporary source directory) is listed and its
  last message read in bounded time and daemon memory.
- ulog: logs written from the PX4 specification by tests/fixtures/gen_ulog.py, compared with
  what the npm package @foxglove/ulog read from them (expected.json): version, timestamp,
  info, parameters, subscriptions, per subscription the payload bytes and timestamp of every
  data message, logged string and dropout counts.

The broken copies under each fixture directory's malformed/ show their format with `errors`,
their raw/ files read, and the mount keeps serving.
"""
import bz2
import json
import os
import pathlib
import shutil
import struct
import sys
import tempfile
import time
import unittest

from mounting import FIXTURES, MountedFixtures, daemon_pid, mounted, proc_status_kib

import rosbag  # Debian python3-rosbag: only /usr/bin/python3 has it
import roslz4

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fixtures"))
import gen_rosbag  # noqa: E402  (big_bag: 10^6 messages written from the specification)

BAG_DIR = FIXTURES / "rosbag"
ULOG_DIR = FIXTURES / "ulog"
BIG_COUNT = 1_000_000


def strip(topic):
    return topic[1:] if topic.startswith("/") else topic


class RosbagUlogThroughMount(MountedFixtures):
    REQUIRED = ("rosbag/chunked_none.bag", "ulog/expected.json")

    def test_uncompressed_bag_matches_rosbag(self):
        rel = "rosbag/chunked_none.bag"
        h = self.header(rel)
        self.assertEqual(h["format"], "rosbag")
        self.assertNotIn("errors", h)
        self.assertEqual((self.mnt / rel / "magic").read_bytes(), b"#ROSBAG V2.0\n")
        slices = self.slices(rel)
        by_path = {s["path"]: s for s in slices}
        with rosbag.Bag(str(BAG_DIR / "chunked_none.bag")) as bag:
            self.check_bag_header(h["header"], bag, "none")
            per_topic = {}
            for topic, raw, t in bag.read_messages(raw=True):
                per_topic.setdefault(topic, []).append((raw[1], t.to_nsec()))
        self.assertEqual(set(per_topic), {"/chatter", "/imu/data", "/counter"})
        conn_topic = {c["id"]: c["topic"] for c in h["header"]["connections"]}
        for topic, messages in per_topic.items():
            with self.subTest(topic=topic):
                directory = self.mnt / rel / "raw" / "message" / strip(topic)
                names = sorted(os.listdir(directory))
                self.assertEqual(len(names), len(messages))
                for name, (data, t) in zip(names, messages):
                    self.assertEqual((directory / name).read_bytes(), data)
                    s = by_path[f"raw/message/{strip(topic)}/{name}"]
                    self.assertEqual(s["time"], t)
                    self.assertEqual(conn_topic[s["connection"]], topic)
        chunks = [s for s in slices if s["name"].startswith("chunk/")]
        self.assertEqual(len(chunks), h["header"]["chunk_count"])
        self.assertGreater(len(chunks), 5)
        for s in chunks:
            self.assertEqual((s["compression"], s["size"]), ("none", s["length"]))

    def check_bag_header(self, header, bag, compression):
        info = bag.get_type_and_topic_info()
        self.assertEqual(header["version"], "2.0")
        self.assertEqual(header["compression"], compression)
        self.assertEqual(bag.get_compression_info().compression, compression)
        self.assertEqual(header["message_count"], bag.get_message_count())
        self.assertAlmostEqual(header["start_time"], bag.get_start_time() * 1e9, delta=1000)
        self.assertAlmostEqual(header["end_time"], bag.get_end_time() * 1e9, delta=1000)
        self.assertEqual(header["chunk_count"], len(bag._chunks))
        counts, types = {}, {}
        for c in header["connections"]:
            counts[c["topic"]] = counts.get(c["topic"], 0) + c["message_count"]
            types[c["topic"]] = c["type"]
            self.assertEqual(len(c["md5sum"]), 32)
            self.assertTrue(c["message_definition"])
        self.assertEqual(counts, {t: v.message_count for t, v in info.topics.items()})
        self.assertEqual(types, {t: v.msg_type for t, v in info.topics.items()})

    def test_compressed_bags_match_rosbag(self):
        decompress = {"bz2": bz2.decompress, "lz4": roslz4.decompress}
        for codec in ("bz2", "lz4"):
            rel = f"rosbag/{codec}.bag"
            with self.subTest(codec=codec):
                h = self.header(rel)
                self.assertNotIn("errors", h)
                with rosbag.Bag(str(BAG_DIR / f"{codec}.bag")) as bag:
                    self.check_bag_header(h["header"], bag, codec)
                slices = self.slices(rel)
                self.assertFalse([s for s in slices if s["name"].startswith("message/")])
                chunks = [s for s in slices if s["name"].startswith("chunk/")]
                self.assertEqual(len(chunks), h["header"]["chunk_count"])
                for s in chunks:
                    self.assertEqual(s["compression"], codec)
                    data = (self.mnt / rel / s["path"]).read_bytes()
                    self.assertEqual(len(data), s["length"])
                    self.assertEqual(len(decompress[codec](data)), s["size"])

    def test_big_bag_lists_and_reads_the_last_message_quickly(self):
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-bigbag-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        (tmp / "src").mkdir()
        gen_rosbag.big_bag(tmp / "src" / "big.bag")
        with mounted(tmp / "src", log_path=tmp / "payloadfs.log") as mnt:
            self.check_big_bag(mnt)

    def check_big_bag(self, mnt):
        pid = daemon_pid(mnt)
        start = time.monotonic()
        h = json.loads((mnt / "big.bag" / "header.json").read_text())
        self.assertNotIn("errors", h)
        self.assertEqual(h["header"]["message_count"], BIG_COUNT)
        directory = mnt / "big.bag" / "raw" / "message" / "big" / "topic"
        names = os.listdir(directory)
        self.assertEqual(len(names), BIG_COUNT)
        last = directory / f"{BIG_COUNT - 1:06d}"
        self.assertEqual(last.read_bytes(), struct.pack("<I", BIG_COUNT - 1))
        # Written from the specification: time 1000 s + index microseconds.
        self.assertEqual(int(os.getxattr(last, "user.payloadfs.time")),
                         1000 * 10**9 + (BIG_COUNT - 1) * 1000)
        self.assertEqual((directory / "000000").read_bytes(), b"\0\0\0\0")
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 20.0)
        rss = proc_status_kib(pid, "VmHWM")
        self.assertLess(rss, 512 * 1024, f"daemon peak RSS {rss} KiB")

    def test_ulog_matches_foxglove_reader(self):
        want = json.loads((ULOG_DIR / "expected.json").read_text())["sample.ulg"]
        rel = "ulog/sample.ulg"
        h = self.header(rel)
        self.assertEqual(h["format"], "ulog")
        self.assertNotIn("errors", h)
        got = h["header"]
        self.assertEqual(got["version"], want["version"])
        self.assertEqual(str(got["timestamp"]), want["timestamp"])
        # @foxglove/ulog keeps multi info under its full key ("char[6] perf_top").
        info = {k: v for k, v in want["information"].items() if " " not in k}
        self.assertEqual(got["info"], info)
        multi = {k.split(" ")[1]: v for k, v in want["information"].items() if " " in k}
        self.assertEqual({k: sum(v, []) for k, v in got["info_multi"].items()}, multi)
        params = {k: v["value"] for k, v in want["parameters"].items() if v["default_types"] == 0}
        self.assertEqual(got["parameters"], params)
        defaults = {k: v for k, v in want["parameters"].items() if v["default_types"] != 0}
        self.assertEqual(got["default_parameters"], defaults)
        self.assertEqual(got["logged_string_count"], want["log_count"])
        self.assertEqual(got["dropouts"], {"count": len(want["dropouts"]),
                                           "total_duration_ms": sum(want["dropouts"])})
        slices = {s["path"]: s for s in self.slices(rel)}
        self.assertEqual(len(want["subscriptions"]), 4)
        for msg_id, sub in want["subscriptions"].items():
            with self.subTest(msg_id=msg_id):
                self.assertEqual(got["subscriptions"][msg_id]["name"], sub["name"])
                self.assertEqual(got["subscriptions"][msg_id]["multi_id"], sub["multi_id"])
                self.assertEqual(got["subscriptions"][msg_id]["message_count"],
                                 want["counts"][msg_id])
                name = sub["name"] + (f"~{sub['multi_id']}" if sub["multi_id"] else "")
                directory = self.mnt / rel / "raw" / "message" / name
                names = sorted(os.listdir(directory))
                messages = want["messages"][msg_id]
                self.assertEqual(len(names), len(messages))
                for entry, m in zip(names, messages):
                    self.assertEqual((directory / entry).read_bytes().hex(), m["hex"])
                    s = slices[f"raw/message/{name}/{entry}"]
                    self.assertEqual(str(s["timestamp"]), m["timestamp"])
                    self.assertEqual(s["multi_id"], sub["multi_id"])

    def test_malformed_copies_report_their_error(self):
        cases = {
            "rosbag/malformed/cut_mid_record.bag": "runs past the end of the file",
            "rosbag/malformed/header_len_past.bag": "header_len runs past",
            "rosbag/malformed/data_len_past.bag": "data_len",
            "rosbag/malformed/chunk_size_lies.bag": "declares size",
            "rosbag/truncated.bag": "(truncated)",
            "ulog/malformed/size_past_end.ulg": "runs past the end of the file",
            "ulog/malformed/unknown_msg_id.ulg": "no subscription",
            "ulog/malformed/format_loop.ulg": "(a loop?)",
            "ulog/truncated.ulg": "(truncated)",
        }
        for rel, text in cases.items():
            with self.subTest(rel=rel):
                h = self.header(rel)
                self.assertEqual(h["format"], rel.split("/")[0])
                self.assertTrue(any(text in e for e in h["errors"]), h["errors"])
                for s in self.slices(rel):
                    self.assertEqual(len((self.mnt / rel / s["path"]).read_bytes()), s["length"])
        # The truncated bag keeps the messages before the cut, as rosbag wrote them.
        with rosbag.Bag(str(BAG_DIR / "chunked_none.bag")) as bag:
            first = next(raw[1] for topic, raw, _ in bag.read_messages(topics=["/chatter"],
                                                                      raw=True))
        kept = self.mnt / "rosbag/truncated.bag/raw/message/chatter"
        self.assertEqual((kept / sorted(os.listdir(kept))[0]).read_bytes(), first)
        self.assertEqual(self.header("ulog/sample.ulg")["format"], "ulog")  # still serving


if __name__ == "__main__":
    unittest.main()
