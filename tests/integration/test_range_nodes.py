"""range/ names are bounded: a reader can look up any number of distinct range/ names, each a
node the kernel keeps and the daemon mirrors, so past -o range_nodes=N (default 16384) the
oldest are dropped from the kernel's cache (a FUSE delete notification, which makes the kernel
forget them). stats.json's range_nodes counts what the daemon holds; every byte read through
range/ is checked against the source, including files held open while their names are pruned.
"""
import concurrent.futures
import json
import os
import pathlib
import shutil
import tempfile
import unittest

from mounting import mounted, wait_until

DISTINCT_NAMES = 20_000
SIZE = 1 << 20


def stats(mnt):
    return json.loads((mnt / ".payloadfs" / "stats.json").read_text())


class RangeNodesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-range-nodes-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.src = self.tmp / "src"
        self.src.mkdir()
        self.data = os.urandom(SIZE)
        (self.src / "a.bin").write_bytes(self.data)
        (self.src / "b.bin").write_bytes(self.data[::-1])

    def look_up_distinct(self, mnt, count, threads=4):
        """Stats `count` distinct range/ names of a.bin from `threads` readers, checking the
        size each reports; returns the names."""
        names = [f"{i % (SIZE - 64)}+{1 + i // (SIZE - 64) + i % 61}" for i in range(count)]
        base = mnt / "a.bin" / "range"

        def stat_all(part):
            for name in part:
                length = int(name.split("+")[1])
                self.assertEqual(os.stat(base / name).st_size, length, name)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(stat_all, [names[i::threads] for i in range(threads)]))
        return names

    def check_bytes(self, mnt, name):
        start, length = map(int, name.split("+"))
        self.assertEqual((mnt / "a.bin" / "range" / name).read_bytes(),
                         self.data[start:start + length], name)

    def test_the_oldest_names_are_dropped_past_the_limit(self):
        limit = 256
        with mounted(self.src, "-o", f"range_nodes={limit}") as mnt:
            held_name = "12345+4096"
            held = open(mnt / "a.bin" / "range" / held_name, "rb")
            try:
                self.assertEqual(held.read(100), self.data[12345:12445])
                names = self.look_up_distinct(mnt, DISTINCT_NAMES)
                # The kernel forgets what was pruned once nobody holds it: the daemon's count
                # comes down to the limit (the held file's node counts until it is closed).
                wait_until(lambda: stats(mnt)["range_nodes"] <= limit, timeout=60,
                           what="range_nodes within the limit")
                after = stats(mnt)
                # (Nodes the kernel forgot by itself, under memory pressure, are not counted.)
                self.assertGreater(after["range_nodes_pruned"], 0)
                self.assertLess(after["inodes"], limit + 64)
                # A file held open across its name's pruning reads on, from the right place.
                self.assertEqual(held.read(), self.data[12445:12345 + 4096])
            finally:
                held.close()
            # Pruned names look up again (as new nodes) with the right bytes; the newest
            # still work too, and another payload was never disturbed.
            for name in names[:50] + names[-50:] + [held_name]:
                self.check_bytes(mnt, name)
            self.assertEqual((mnt / "b.bin" / "range" / f"0+{SIZE}").read_bytes(),
                             self.data[::-1])
            header = json.loads((mnt / "b.bin" / "header.json").read_text())
            self.assertEqual(header["size"], SIZE)

    def test_the_default_limit_bounds_the_nodes(self):
        with mounted(self.src) as mnt:
            self.look_up_distinct(mnt, DISTINCT_NAMES)
            wait_until(lambda: stats(mnt)["range_nodes"] <= 16384, timeout=60,
                       what="range_nodes within the default limit")
            self.assertGreater(stats(mnt)["range_nodes_pruned"], 0)

    def test_no_limit_prunes_nothing(self):
        # Past what a limit of 256 would keep: with none, every node stays (the kernel has no
        # reason to forget 2,000 small nodes in a few seconds).
        with mounted(self.src, "-o", "range_nodes=0") as mnt:
            names = self.look_up_distinct(mnt, 2_000, threads=2)
            now = stats(mnt)
            self.assertEqual(now["range_nodes_pruned"], 0)
            self.assertEqual(now["range_nodes"], 2_000)
            for name in names[:20]:
                self.check_bytes(mnt, name)

    def test_names_of_one_range_count_each(self):
        # 0+100, 0-100, 0x0+0x64, 00+100, ... are one node under many names; each name is a
        # dentry of its own that holds the node, so each counts against the limit and goes.
        limit = 64
        spellings = [f"{'0' * i}{sep}{'0' * j}100"  # numbers have at most 20 digits
                     for i in range(1, 21) for j in range(18) for sep in "+-"]
        with mounted(self.src, "-o", f"range_nodes={limit}") as mnt:
            base = mnt / "a.bin" / "range"
            for name in spellings:
                self.assertEqual(os.stat(base / name).st_size, 100, name)
            wait_until(lambda: stats(mnt)["range_nodes_pruned"] >= len(spellings) - limit,
                       timeout=60, what="the older spellings to be pruned")
            self.assertLessEqual(stats(mnt)["range_nodes"], 1)
            self.assertEqual((base / spellings[0]).read_bytes(), self.data[:100])


if __name__ == "__main__":
    unittest.main()
