"""Logging, .payloadfs/stats.json and errors.json, and --inspect over many files."""
import errno
import gzip
import json
import os
import pathlib
import shutil
import tempfile
import unittest

from mounting import BIN, FIXTURES, is_mounted, mounted, run, wait_until


def bad_gzip(data):
    """A gzip member whose trailer's ISIZE is wrong: malformed, yet it has a deflate slice."""
    good = gzip.compress(data, mtime=0)
    return good[:-4] + (len(data) + 1).to_bytes(4, "little")


def read_many_times(payload_dir, times=5):
    for _ in range(times):
        (payload_dir / "header.json").read_bytes()
        (payload_dir / "slices.json").read_bytes()
        for entry in (payload_dir / "raw").iterdir():
            if entry.is_file():
                entry.read_bytes()
        (payload_dir / "magic").read_bytes()


def header_or_none(payload_dir):
    """header.json, or None while a replaced source is still being invalidated (ESTALE);
    any other error is raised."""
    try:
        return json.loads((payload_dir / "header.json").read_text())
    except OSError as e:
        if e.errno != errno.ESTALE:
            raise
        return None


def json_objects(text):
    """Every JSON value in `text`, one after another (pretty output has no line structure)."""
    decoder = json.JSONDecoder()
    out, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        value, at = decoder.raw_decode(text, at)
        out.append(value)


class ObservabilityTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-obs-"))
        self.src = self.tmp / "src"
        (self.src / "sub").mkdir(parents=True)
        self.good_npy = (FIXTURES / "numpy" / "f4_2d.npy").read_bytes()
        (self.src / "good.npy").write_bytes(self.good_npy)
        (self.src / "sub" / "bad.gz").write_bytes(bad_gzip(b"payload " * 100))
        self.log_path = self.tmp / "stderr.log"
        (self.src / "plain.bin").write_bytes(b"plain bytes, no format")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- logging -------------------------------------------------------------------------

    def test_bad_log_level_is_a_usage_error(self):
        mnt = self.tmp / "mnt"
        mnt.mkdir()
        for bad in ("loud", "", "INFO", "warning"):
            result = run(BIN, self.src, mnt, "-o", f"log_level={bad}", check=False, text=True)
            self.assertEqual(result.returncode, 2, bad)
            lines = result.stderr.splitlines()
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertIn("log_level", lines[0])
            self.assertFalse(is_mounted(mnt))

    def test_malformed_payload_is_logged_once_per_version(self):
        bad = "sub/bad.gz"
        with mounted(self.src, "-o", "log_level=debug", log_path=self.log_path) as mnt:
            header = json.loads((mnt / bad / "header.json").read_text())
            self.assertIn("errors", header)
            self.assertEqual(os.listdir(mnt / bad / "raw"), ["deflate"])  # malformed, with slices
            read_many_times(mnt / bad)
            read_many_times(mnt / "good.npy")
            stats = json.loads((mnt / ".payloadfs" / "stats.json").read_text())
            self.assertGreater(stats["payload_cache"]["hits"], 10)  # the reads did reach us
            # A new version of the file is news again: logged once more.
            newer = bad_gzip(b"other payload " * 100)
            (self.src / "sub" / "next.gz").write_bytes(newer)
            os.replace(self.src / "sub" / "next.gz", self.src / bad)
            wait_until(lambda: (header_or_none(mnt / bad) or {}).get("size") == len(newer),
                       timeout=10, what="the new version")
            read_many_times(mnt / bad)
        text = self.log_path.read_text()
        lines = text.splitlines()
        warnings = [l for l in lines if "warn:" in l and bad in l]
        self.assertEqual(len(warnings), 2, text)
        self.assertIn(header["errors"][0], warnings[0])
        self.assertIn("malformed gzip payload", warnings[0])
        parsed = [l for l in lines if "debug: parsed" in l]
        self.assertEqual(len([l for l in parsed if bad in l]), 2, text)
        self.assertEqual(len([l for l in parsed if "good.npy" in l]), 1, text)
        self.assertRegex([l for l in parsed if "good.npy" in l][0], r"good\.npy: npy, 1 slices, [0-9.]+ ms")
        start = [l for l in lines if "info: serving" in l]
        self.assertEqual(len(start), 1, text)
        self.assertIn(str(self.src), start[0])
        self.assertIn("npy", start[0])
        self.assertIn("log_level debug", start[0])

    def test_log_level_filters(self):
        with mounted(self.src, "-o", "log_level=error", log_path=self.log_path) as mnt:
            read_many_times(mnt / "sub" / "bad.gz", times=2)
        self.assertEqual(self.log_path.read_text(), "")
        with mounted(self.src, log_path=self.log_path) as mnt:  # info: the start line, warnings
            read_many_times(mnt / "sub" / "bad.gz", times=2)
        text = self.log_path.read_text()
        self.assertIn("info: serving", text)
        self.assertEqual(text.count("warn: malformed"), 1, text)
        self.assertNotIn("debug:", text)

    # --- stats.json ------------------------------------------------------------------------

    def test_stats_json(self):
        with mounted(self.src, "-o", "cache_entries=7,cache_memory=3") as mnt:
            control = mnt / ".payloadfs"
            self.assertIn("errors.json", os.listdir(control))

            def stats():
                return json.loads((control / "stats.json").read_text())

            before = stats()
            for key in ("lookups", "getattrs", "readdirs", "opens", "reads", "bytes_served",
                        "errors", "payloads_mapped", "payloads_built", "payloads_with_errors",
                        "payload_cache_hits", "payload_cache_evictions", "inodes", "open_files",
                        "open_dirs"):
                self.assertIsInstance(before[key], int, key)
            self.assertIsInstance(before["uptime_seconds"], float)
            cache = before["payload_cache"]
            self.assertEqual(cache["max_entries"], 7)
            self.assertEqual(cache["max_bytes"], 3 << 20)
            self.assertEqual((cache["hits"], cache["misses"], cache["entries"]), (0, 0, 0))
            self.assertEqual(cache["hit_ratio"], 0)
            self.assertEqual(before["formats"], {})

            (mnt / "good.npy" / "header.json").read_bytes()
            (mnt / "sub" / "bad.gz" / "header.json").read_bytes()
            (mnt / "plain.bin" / "header.json").read_bytes()
            first = stats()
            self.assertEqual(first["payload_cache"]["misses"], 3)
            self.assertEqual(first["payload_cache"]["entries"], 3)
            self.assertGreater(first["payload_cache"]["bytes"], 0)
            self.assertEqual(first["formats"], {"npy": {"parsed": 1, "with_errors": 0},
                                                "gzip": {"parsed": 1, "with_errors": 1},
                                                "unknown": {"parsed": 1, "with_errors": 0}})
            self.assertEqual(first["payloads_with_errors"], 1)

            for _ in range(3):
                (mnt / "good.npy" / "header.json").read_bytes()  # direct I/O: each read asks
            second = stats()
            self.assertEqual(second["payload_cache"]["misses"], 3)
            self.assertGreaterEqual(second["payload_cache"]["hits"], first["payload_cache"]["hits"] + 3)
            ratio = second["payload_cache"]["hit_ratio"]
            hits = second["payload_cache"]["hits"]
            self.assertAlmostEqual(ratio, hits / (hits + 3))
            self.assertGreater(second["uptime_seconds"], before["uptime_seconds"])
            self.assertGreater(second["reads"], before["reads"])

            with open(mnt / "good.npy" / "raw" / "data", "rb") as held:
                held.read(1)
                self.assertGreaterEqual(stats()["open_files"], 1)
            wait_until(lambda: stats()["open_files"] == 0, what="release of the held file")

    def test_cache_evictions_are_counted(self):
        for i in range(4):
            (self.src / f"x{i}.bin").write_bytes(b"x" * (i + 1))
        with mounted(self.src, "-o", "cache_entries=2") as mnt:
            for i in range(4):
                (mnt / f"x{i}.bin" / "header.json").read_bytes()
            cache = json.loads((mnt / ".payloadfs" / "stats.json").read_text())["payload_cache"]
            self.assertEqual(cache["entries"], 2)
            self.assertEqual(cache["evictions"], 2)

    # --- errors.json -----------------------------------------------------------------------

    def test_errors_json_follows_the_sources(self):
        (self.src / "gone.npy").write_bytes(self.good_npy[:-3])
        with mounted(self.src) as mnt:
            errors_json = mnt / ".payloadfs" / "errors.json"

            def listed():
                doc = json.loads(errors_json.read_text())
                self.assertEqual(doc["count"], len(doc["payloads"]))
                self.assertEqual(doc["truncated"], 0)
                return {e["path"]: e for e in doc["payloads"]}

            self.assertEqual(listed(), {})  # nothing parsed yet
            header = json.loads((mnt / "sub" / "bad.gz" / "header.json").read_text())
            (mnt / "gone.npy" / "header.json").read_bytes()
            (mnt / "good.npy" / "header.json").read_bytes()
            entries = listed()
            self.assertEqual(set(entries), {"sub/bad.gz", "gone.npy"})
            self.assertEqual(entries["gone.npy"]["format"], "npy")
            entry = entries["sub/bad.gz"]
            self.assertEqual(entry["format"], "gzip")
            self.assertEqual(entry["first_error"], header["errors"][0])
            self.assertEqual(entry["error_count"], len(header["errors"]))
            order = [e["path"] for e in json.loads(errors_json.read_text())["payloads"]]
            self.assertEqual(order, ["gone.npy", "sub/bad.gz"])  # most recent first

            (self.src / "gone.npy").unlink()
            self.assertEqual(set(listed()), {"sub/bad.gz"})

            (self.src / "sub" / "fixed.gz").write_bytes(gzip.compress(b"fixed"))
            os.replace(self.src / "sub" / "fixed.gz", self.src / "sub" / "bad.gz")
            self.assertEqual(listed(), {})  # that version is gone
            # inotify tells the kernel; the fixed file then parses clean and stays off the list.
            wait_until(lambda: "errors" not in (header_or_none(mnt / "sub" / "bad.gz") or {"errors": 1}),
                       timeout=10, what="the fix")
            self.assertEqual(listed(), {})

    def test_errors_json_is_bounded(self):
        bad = self.src / "many"
        bad.mkdir()
        for i in range(1005):
            (bad / f"{i:04}.npy").write_bytes(self.good_npy[:-5])
        with mounted(self.src) as mnt:
            for i in range(1005):
                (mnt / "many" / f"{i:04}.npy" / "header.json").read_bytes()
            doc = json.loads((mnt / ".payloadfs" / "errors.json").read_text())
        self.assertEqual(doc["count"], 1000)
        self.assertEqual(doc["truncated"], 5)
        self.assertEqual(doc["payloads"][0]["path"], "many/1004.npy")
        self.assertEqual(doc["payloads"][-1]["path"], "many/0005.npy")

    # --- --inspect -------------------------------------------------------------------------

    def test_inspect_files_and_directories_as_json_lines(self):
        (self.src / "sub" / "deeper").mkdir()
        (self.src / "sub" / "deeper" / "a.bin").write_bytes(b"abc")
        (self.src / "sub" / "link.npy").symlink_to(self.src / "good.npy")  # not followed
        os.mkfifo(self.src / "sub" / "fifo")  # not a payload: skipped, not opened
        good, sub = self.src / "good.npy", self.src / "sub"
        result = run(BIN, "--inspect", good, self.src / "plain.bin", sub, check=False, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        objects = [json.loads(line) for line in lines]
        self.assertEqual([o["path"] for o in objects],
                         [str(good), str(self.src / "plain.bin"), f"{sub}/bad.gz",
                          f"{sub}/deeper/a.bin"])
        self.assertEqual([o["format"] for o in objects], ["npy", "unknown", "gzip", "unknown"])
        self.assertIn("errors", objects[2])  # malformed: reported, not a failure
        self.assertNotIn("errors", objects[0])

        pretty = run(BIN, "--inspect", "--pretty", good, sub, text=True).stdout
        self.assertGreater(len(pretty.splitlines()), 3 * 3)
        self.assertEqual(json_objects(pretty), objects[:1] + objects[2:])
        compact = run(BIN, "--inspect", "--compact", good, text=True).stdout
        self.assertEqual(compact.count("\n"), 1)
        self.assertEqual(json.loads(compact), objects[0])

    def test_inspect_slices(self):
        good = self.src / "good.npy"
        single = json.loads(run(BIN, "--inspect", "--slices", good).stdout)
        self.assertEqual(single[0]["name"], "data")
        self.assertEqual(json_objects(run(BIN, "--inspect", "--slices", "--pretty", good,
                                          text=True).stdout), [single])
        for extra in ((), ("--pretty",)):
            out = run(BIN, "--inspect", "--slices", *extra, good, self.src / "sub", text=True).stdout
            objects = json_objects(out)
            if not extra:
                self.assertEqual([json.loads(line) for line in out.splitlines()], objects)
            self.assertEqual([o["path"] for o in objects], [str(good), str(self.src / "sub" / "bad.gz")])
            self.assertEqual(objects[0]["slices"], single)
            self.assertEqual([s["name"] for s in objects[1]["slices"]], ["deflate"])

    def test_inspect_unreadable_files_fail_but_the_rest_is_printed(self):
        good = self.src / "good.npy"
        missing = self.tmp / "missing.npy"
        result = run(BIN, "--inspect", missing, good, check=False, text=True)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn(str(missing), result.stderr)
        self.assertEqual(json.loads(result.stdout)["path"], str(good))
        usage = run(BIN, "--inspect", "--bogus", good, check=False)
        self.assertEqual(usage.returncode, 2)
        self.assertEqual(run(BIN, "--inspect", check=False).returncode, 2)


if __name__ == "__main__":
    unittest.main()
