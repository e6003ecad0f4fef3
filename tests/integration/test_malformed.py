"""The malformed corpus (tests/fixtures/gen_malformed.py) through a real mount.

Every file is read the way consumers read it: header.json and slices.json (must be valid
JSON), magic, and every file under raw/. Files the manifest marks as broken must show
`errors`. The whole pass is bounded in time, the mount is still serving at the end, and the
daemon's anonymous memory (RssAnon) has not grown without bound.
"""
import json
import os
import pathlib
import subprocess
import threading
import time
import unittest

from mounting import FIXTURES, mounted

CORPUS = FIXTURES / "malformed"
TIME_LIMIT = 50.0  # seconds for reading the whole corpus
RSS_GROWTH_LIMIT = 64 << 20  # bytes of RssAnon the daemon may gain over the pass


def daemon_pid(mnt):
    """The payloadfs daemon serving `mnt` (its mount point path is unique)."""
    out = subprocess.run(["pgrep", "-f", "--", f" {mnt}( |$)"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    if len(pids) != 1:
        raise AssertionError(f"expected one daemon for {mnt}, found {pids}")
    return pids[0]


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

    def check_file(self, mnt, entry, problems):
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
        if expect == "valid" and (fmt != base or errors):
            problems.append(f"{rel}: the valid base reads as {fmt} with errors {errors}")
        elif expect == "errors" and (fmt != base or not errors):
            problems.append(f"{rel} ({entry['mutation']}): expected {base} with errors, got {fmt}, errors {errors}")
        elif expect == "errors_if_detected" and fmt == base and not errors:
            problems.append(f"{rel} ({entry['mutation']}): detected as {base} but no errors")

        magic = (payload / "magic").read_bytes()
        at = header.get("magic_offset", 0)
        if magic != src[at:at + len(magic)] or magic.hex() != header.get("magic"):
            problems.append(f"{rel}: magic {magic.hex()} differs from the source at {at}")

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
            problems, progress = [], {"file": None, "done": 0, "crash": None}

            def walk():
                try:
                    for entry in self.manifest:
                        progress["file"] = entry["file"]
                        self.check_file(mnt, entry, problems)
                        progress["done"] += 1
                except BaseException as e:  # noqa: BLE001: reported by the main thread
                    progress["crash"] = f"{progress['file']}: {type(e).__name__}: {e}"

            start = time.monotonic()
            worker = threading.Thread(target=walk, daemon=True)
            worker.start()
            worker.join(TIME_LIMIT)
            elapsed = time.monotonic() - start
            self.assertFalse(worker.is_alive(),
                             f"still reading after {TIME_LIMIT:.0f}s: {progress['done']} of "
                             f"{len(self.manifest)} files done, stuck on {progress['file']}")
            self.assertIsNone(progress["crash"])

            # The mount is alive and the daemon did not grow without bound.
            self.assertEqual((mnt / ".payloadfs" / "version").read_text(), version)
            self.assertTrue(os.path.exists(f"/proc/{pid}"), "the daemon is gone")
            rss_after = rss_anon(pid)
            print(f"\nmalformed corpus: {len(self.manifest)} files in {elapsed:.1f}s, daemon RssAnon "
                  f"{rss_before >> 10} KiB -> {rss_after >> 10} KiB", flush=True)
            # Under AddressSanitizer, freed memory sits in its quarantine and RSS means nothing.
            if not os.environ.get("PAYLOADFS_SANITIZED"):
                self.assertLess(rss_after - rss_before, RSS_GROWTH_LIMIT,
                                f"RssAnon grew from {rss_before} to {rss_after} bytes")
            self.assertEqual(problems, [], "\n".join(problems[:50]))


if __name__ == "__main__":
    unittest.main()
