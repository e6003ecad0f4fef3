"""Concurrency under churn: 16 readers doing random operations on every kind of node while a
writer rewrites, truncates, regrows, renames and deletes the sources, with a cache so small
that evictions race with reads, and a range/ limit so small (range_nodes=32) that pruning
races with lookups. Run in every build; under the sanitizers (ASan+UBSan, and the
ThreadSanitizer daemon of scripts/test.sh) any report fails the test through the daemon's log
and exit status, which mounted() checks. PAYLOADFS_CHURN_SECONDS sets the duration of each
mode: 20 s by default (the ThreadSanitizer step), 10 s under ctest (tests/CMakeLists.txt)."""
import os
import pathlib
import tempfile
import unittest

import churn
from mounting import FIXTURES, mounted

SECONDS = float(os.environ.get("PAYLOADFS_CHURN_SECONDS", "20"))


class ChurnTest(unittest.TestCase):
    def churn(self, options):
        pool = churn.load_pool(FIXTURES)
        with tempfile.TemporaryDirectory(prefix="payloadfs-churn-") as tmp:
            src = pathlib.Path(tmp) / "src"
            src.mkdir()
            work = churn.Workload(src, None, pool, readers=16)
            with mounted(src, "-o", options, log_path=pathlib.Path(tmp) / "daemon.log") as mnt:
                work.mnt = mnt
                work.start()
                work.stop.wait(SECONDS)
                stuck = work.join(timeout=60)
                self.assertEqual(stuck, [], f"threads still running: {stuck}")
                os.statvfs(mnt)  # reaches the daemon: the mount is alive
            print(f"\nchurn {SECONDS:.0f} s ({options}): {work.summary()}")
            self.assertEqual(work.failures, [], work.summary())
            self.assertGreater(work.counts["ok"], 1000, work.summary())
            self.assertGreater(work.counts["mutations"], 100, work.summary())
            self.assertGreater(work.bytes_checked, 0, work.summary())

    def test_readers_and_a_writer_with_a_tiny_cache(self):
        self.churn("cache_entries=8,cache_memory=1,range_nodes=32")

    def test_the_same_with_sources_read_on_pool_threads(self):
        # -o pread=1 (the default on FUSE and network sources): payload bytes are read by the
        # I/O pool and payload operations run on the metadata threads, replying from there.
        self.churn("cache_entries=8,cache_memory=1,range_nodes=32,pread=1")


if __name__ == "__main__":
    unittest.main()
