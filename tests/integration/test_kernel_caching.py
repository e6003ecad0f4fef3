"""The metadata path through the kernel's caches (issue #15): directory listings and generated
files (header.json, slices.json, refs.json) are cached by the kernel, so a second walk and a
second read reach the daemon not at all; and a changed source is never served stale through
those caches: rewritten, truncated, renamed or deleted, in a watched directory (the watcher
invalidates) and in an unwatched one (inotify=0: the caches expire after 1 s).

stats.json counts the requests that reached the daemon; reading it costs a few requests of its
own, which `requests()` subtracts."""
import json
import os
import pathlib
import shutil
import tempfile
import unittest

import numpy as np

from mounting import SANITIZED, mounted, wait_until

PROMPT = 30.0 if SANITIZED else 10.0
COUNTERS = ("lookups", "getattrs", "readdirs", "opendirs", "opens", "reads")


def requests(mnt):
    """Requests the daemon has answered so far (lookups, getattrs, listings, opens, reads)."""
    stats = json.loads((mnt / ".payloadfs" / "stats.json").read_bytes())
    return sum(stats[k] for k in COUNTERS)


def walk(root):
    """Every entry below root, recursively (scandir + lstat), as sorted relative paths."""
    out = []
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                os.lstat(e.path)
                out.append(os.path.relpath(e.path, root))
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return sorted(out)


def refs_shape(path):
    """The array's shape refs.json gives (zarr's .zarray, itself JSON text)."""
    refs = json.loads(path.read_bytes())["refs"]
    return json.loads(refs["data/.zarray"])["shape"]


def header_of(path):
    """header.json read whole, checked to be one version: its size is its text's."""
    text = path.read_bytes()
    assert os.stat(path).st_size == len(text), (path, os.stat(path).st_size, len(text))
    return json.loads(text)


def save_npy(path, array):
    """np.save in place (the same inode: O_TRUNC, then the new bytes)."""
    with open(path, "wb") as f:
        np.save(f, array)


class KernelCachingTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-kcache-"))
        self.src = self.tmp / "src"
        (self.src / "d").mkdir(parents=True)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        for i in range(20):
            np.save(self.src / "d" / f"p{i:02d}.npy", np.arange(8 + i, dtype="<f4"))

    def test_a_second_walk_and_second_reads_reach_the_daemon_not_at_all(self):
        with mounted(self.src) as mnt:
            first = walk(mnt / "d")
            self.assertIn("p00.npy/header.json", first)
            self.assertIn("p00.npy/raw/data", first)
            headers = [(mnt / "d" / f"p{i:02d}.npy" / "header.json").read_bytes()
                       for i in range(20)]
            overhead = -requests(mnt)
            before = requests(mnt)  # what reading stats.json costs by itself
            overhead += before
            self.assertEqual(walk(mnt / "d"), first)
            again = [(mnt / "d" / f"p{i:02d}.npy" / "header.json").read_bytes()
                     for i in range(20)]
            after = requests(mnt)
            self.assertEqual(again, headers)
            # Each header.json read is still an OPEN (the kernel opens files through the
            # daemon); its bytes come from the page cache, and the walk costs nothing.
            self.assertEqual(after - before - overhead, 20,
                             "the second walk or the cached reads reached the daemon")

    def check_changes_show(self, mnt, timeout):
        payload = mnt / "d" / "p01.npy"
        # Warm every cache: the listings, header.json (twice: page cache), refs.json.
        walk(mnt / "d")
        self.assertEqual(header_of(payload / "header.json")["header"]["shape"], [9])
        self.assertEqual(header_of(payload / "header.json")["header"]["shape"], [9])
        self.assertIn("refs.json", os.listdir(payload))
        self.assertEqual(refs_shape(payload / "refs.json"), [9])

        # Rewritten in place with another shape: header.json, slices.json, refs.json follow.
        save_npy(self.src / "d" / "p01.npy", np.zeros((3, 5), dtype="<i8"))
        wait_until(lambda: header_of(payload / "header.json")["header"]["shape"] == [3, 5],
                   timeout, "the rewritten header.json")
        slices = json.loads((payload / "slices.json").read_bytes())
        self.assertEqual(slices[0]["length"], 3 * 5 * 8)
        self.assertEqual(refs_shape(payload / "refs.json"), [3, 5])
        # raw/ files are not numbered per version: where unwatched, their cached size lasts
        # until the attributes expire.
        wait_until(lambda: (payload / "raw" / "data").read_bytes() == bytes(120), timeout,
                   "the rewritten raw/data")

        # Truncated to text that is no npy: no more refs.json, in the listing or by name.
        (self.src / "d" / "p01.npy").write_bytes(b"not an array any more\n")
        wait_until(lambda: header_of(payload / "header.json")["format"] != "npy", timeout,
                   "the truncated source's header.json")
        wait_until(lambda: "refs.json" not in os.listdir(payload), timeout,
                   "refs.json gone from the listing")
        # By name: where unwatched, the old version's name lasts until its entry expires.
        wait_until(lambda: not (payload / "refs.json").exists(), timeout, "refs.json gone")

        # Renamed: the old name goes from the source directory's listing, the new one comes.
        os.rename(self.src / "d" / "p02.npy", self.src / "d" / "q02.npy")
        wait_until(lambda: "q02.npy" in os.listdir(mnt / "d")
                   and "p02.npy" not in os.listdir(mnt / "d"), timeout, "the rename")
        self.assertEqual(header_of(mnt / "d" / "q02.npy" / "header.json")["path"], "d/q02.npy")

        # Deleted; and a new file appears.
        os.unlink(self.src / "d" / "p03.npy")
        np.save(self.src / "d" / "new.npy", np.ones(4, dtype="<u2"))
        wait_until(lambda: "p03.npy" not in os.listdir(mnt / "d")
                   and "new.npy" in os.listdir(mnt / "d"), timeout, "the delete and the add")
        wait_until(lambda: not (mnt / "d" / "p03.npy" / "header.json").exists(), timeout,
                   "the deleted payload's header.json")
        self.assertEqual(header_of(mnt / "d" / "new.npy" / "header.json")["header"]["shape"],
                         [4])
        # And the whole tree, walked again, is the sources' tree now.
        names = {p.split("/")[0] for p in walk(mnt / "d")}
        self.assertEqual(names, set(os.listdir(self.src / "d")))

    def test_changes_show_through_the_caches_where_sources_are_watched(self):
        with mounted(self.src, "-o", "entry_timeout=86400,attr_timeout=86400") as mnt:
            self.check_changes_show(mnt, PROMPT)

    def test_changes_show_through_the_caches_where_sources_are_not_watched(self):
        with mounted(self.src, "-o", "inotify=0") as mnt:
            self.check_changes_show(mnt, 1.0 + PROMPT)


if __name__ == "__main__":
    unittest.main()
