"""Concurrency under churn: 16 readers doing random operations on every kind of node while a
writer rewrites, truncates, regrows, renames and deletes the sources, with a cache so small
that evictions race with reads, and a range/ limit so small (range_nodes=32) that pruning
races with lookups. Run in every build; under the sanitizers (ASan+UBSan, and the
ThreadSanitizer daemon of scripts/test.sh) any report fails the test through the daemon's log
and exit status, which mounted() checks. PAYLOADFS_CHURN_SECONDS sets the duration."""
import os
import pathlib
import tempfile
import unittest

import churn
from mounting import FIXTURES, mounted

SECONDS = float(os.environ.get("PAYLOADFS_CHURN_SECONDS", "20"))


class ChurnTest(unittest.TestCase):
    def test_readers_and_a_writer_with_a_tiny_cache(self):
        pool = churn.load_pool(FIXTURES)
        with tempfile.TemporaryDirectory(prefix="payloadfs-churn-") as tmp:
            src = pathlib.Path(tmp) / "src"
            src.mkdir()
            work = churn.Workload(src, None, pool, readers=16)
            with mounted(src, "-o", "cache_entries=8,cache_memory=1,range_nodes=32",
                         log_path=pathlib.Path(tmp) / "daemon.log") as mnt:
                work.mnt = mnt
                work.start()
                work.stop.wait(SECONDS)
                stuck = work.join(timeout=60)
                self.assertEqual(stuck, [], f"threads still running: {stuck}")
                os.statvfs(mnt)  # reaches the daemon: the mount is alive
            print(f"\nchurn {SECONDS:.0f} s: {work.summary()}")
            self.assertEqual(work.failures, [], work.summary())
            self.assertGreater(work.counts["ok"], 1000, work.summary())
            self.assertGreater(work.counts["mutations"], 100, work.summary())
            self.assertGreater(work.bytes_checked, 0, work.summary())


if __name__ == "__main__":
    unittest.main()
