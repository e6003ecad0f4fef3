"""The malformed corpus (tests/fixtures/gen_malformed.py) through a real mount.

Every file is read the way consumers read it: header.json and slices.json (must be valid
JSON), magic, and every file under raw/. Files the manifest marks "errors" must show their
base format with `errors`, files marked "undetected" must not be taken for their base format,
valid bases must read clean; "any" files prove only that nothing crashes or hangs. The mount
is still serving at the end, and the daemon's anonymous memory (RssAnon) has not grown
without bound (not checked under the sanitizers, whose quarantine is anonymous memory too).

No time limit is asserted (performance belongs to scripts/bench): HANG_LIMIT only turns a
hang into a failure that names the file being read.
"""
import json
import os
import pathlib
import threading
import time
import unittest

from mounting import FIXTURES, SANITIZED, daemon_pid, mounted

CORPUS = FIXTURES / "malformed"
HANG_LIMIT = 600.0 if SANITIZED else 300.0  # seconds: far beyond any healthy pass
RSS_GROWTH_LIMIT = 64 << 20  # bytes of RssAnon the daemon may gain over the pass
# At least this many files must be checked for `errors` (548 when written): a generator that
# quietly stops marking mutations "errors" fails here instead of proving only "no crash".
MIN_ERROR_FILES = 500


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/PID/status")


class MalformedCorpusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        manifest = CORPUS / "manifest.json"
        if not manifest.exists():
            raise RuntimeError("malformed corpus missing: run tests/fixtures/generate.py first (ctest does)")
        cls.manifest = json.loads(manifest.read_text())

    def check_file(self, mnt, entry, problems, counts):
        rel = entry["file"]
        src = (CORPUS / rel).read_bytes()
        payload = mnt / rel
        try:
            header = json.loads((payload / "header.json").read_bytes())
        except ValueError as e:
            problems.append(f"{rel}: header.json is not JSON: {e}")
            return
        fmt, errors = header.get("format"), header.get("errors")
        if header.get("path") != rel or header.get("size") != len(src):
            problems.append(f"{rel}: path/size {header.get('path')!r}/{header.get('size')}")
        if errors is not None and not (isinstance(errors, list) and errors
                                       and all(isinstance(e, str) and e for e in errors)):
            problems.append(f"{rel}: errors is not a list of messages: {errors!r}")
        expect, base = entry["expect"], entry["base"]
        counts[expect] = counts.get(expect, 0) + 1
        if expect == "valid" and (fmt != base or errors):
            problems.append(f"{rel}: the valid base reads as {fmt} with errors {errors}")
        elif expect == "errors" and (fmt != base or not errors):
            problems.append(f"{rel} ({entry['mutation']}): expected {base} with errors, got {fmt}, errors {errors}")
        elif expect == "undetected" and fmt == base:
            problems.append(f"{rel} ({entry['mutation']}): its signature is broken, yet it reads as {base}")
        elif expect not in ("valid", "errors", "undetected", "any"):
            problems.append(f"{rel}: unknown expectation {expect!r} in the manifest")

        magic = (payload / "magic").read_bytes()
        at = header.get("magic_offset", 0)
        if magic != src[at:at + len(magic)] or magic.hex() != header.get("magic"):
            problems.append(f"{rel}: magic {magic.hex()} differs from the source at {at}")
        # Every non-empty file has a magic: the signature, or up to its first 4 bytes.
        if src and not magic:
            problems.append(f"{rel}: empty magic for a file of {len(src)} bytes")

        try:
            slices = json.loads((payload / "slices.json").read_bytes())
        except ValueError as e:
            problems.append(f"{rel}: slices.json is not JSON: {e}")
            return
        if len(slices) != header.get("slice_count"):
            problems.append(f"{rel}: {len(slices)} slices, slice_count {header.get('slice_count')}")
        listed = set()
        for s in slices:
            data = (payload / s["path"]).read_bytes()
            listed.add(s["path"])
            if data != src[s["offset"]:s["offset"] + s["length"]] or len(data) != s["length"]:
                problems.append(f"{rel}: {s['path']} is not source[{s['offset']}+{s['length']}]")
        # Every file under raw/, listed or not.
        for dirpath, _, filenames in os.walk(payload / "raw"):
            for name in filenames:
                path = pathlib.Path(dirpath) / name
                rel_path = str(path.relative_to(payload))
                data = path.read_bytes()
                if rel_path not in listed:
                    problems.append(f"{rel}: {rel_path} is not in slices.json")
                if len(data) != os.stat(path).st_size:
                    problems.append(f"{rel}: {rel_path} size differs from its contents")

    def test_malformed_corpus(self):
        with mounted(CORPUS) as mnt:
            pid = daemon_pid(mnt)
            version = (mnt / ".payloadfs" / "version").read_text()
            rss_before = rss_anon(pid)
            problems, counts = [], {}
            progress = {"file": None, "done": 0, "crash": None}

            def walk():
                try:
                    for entry in self.manifest:
                        progress["file"] = entry["file"]
                        self.check_file(mnt, entry, problems, counts)
                        progress["done"] += 1
                except BaseException as e:  # noqa: BLE001: reported by the main thread
                    progress["crash"] = f"{progress['file']}: {type(e).__name__}: {e}"

            start = time.monotonic()
            worker = threading.Thread(target=walk, daemon=True)
            worker.start()
            worker.join(HANG_LIMIT)
            elapsed = time.monotonic() - start
            self.assertFalse(worker.is_alive(),
                             f"hung: still reading after {HANG_LIMIT:.0f}s: {progress['done']} of "
                             f"{len(self.manifest)} files done, stuck on {progress['file']}")
            self.assertIsNone(progress["crash"])
            self.assertEqual(progress["done"], len(self.manifest))
            self.assertGreaterEqual(counts.get("errors", 0), MIN_ERROR_FILES, counts)
            self.assertEqual(counts.get("valid", 0), len({e["base"] for e in self.manifest}),
                             counts)  # one valid base per format, as a control

            # The mount is alive and the daemon did not grow without bound.
            self.assertEqual((mnt / ".payloadfs" / "version").read_text(), version)
            self.assertTrue(os.path.exists(f"/proc/{pid}"), "the daemon is gone")
            rss_after = rss_anon(pid)
            print(f"\nmalformed corpus: {len(self.manifest)} files ({counts}) in {elapsed:.1f}s, "
                  f"daemon RssAnon {rss_before >> 10} KiB -> {rss_after >> 10} KiB", flush=True)
            # Under AddressSanitizer, freed memory sits in its quarantine and RSS means nothing.
            if not SANITIZED:
                self.assertLess(rss_after - rss_before, RSS_GROWTH_LIMIT,
                                f"RssAnon grew from {rss_before} to {rss_after} bytes")
            self.assertEqual(problems, [], "\n".join(problems[:50]))


if __name__ == "__main__":
    unittest.main()
