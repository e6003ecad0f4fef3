"""A daemon told to stop always stops: SIGTERM (or SIGINT) while readers and a writer churn
the mount ends the daemon with status 0 and takes the mount away, every time. (A watcher
thread inside a kernel notification that waited on a LOOKUP no worker would answer used to
keep the daemon, and every reader, stuck for good.)"""
import os
import pathlib
import shutil
import signal
import tempfile
import unittest

import churn
from mounting import FIXTURES, ForegroundDaemon, is_mounted, unmount, wait_until

ROUNDS = int(os.environ.get("PAYLOADFS_SHUTDOWN_ROUNDS", "6"))
BUSY_SECONDS = 1.5


class ShutdownTest(unittest.TestCase):
    def test_stop_signal_under_load_ends_daemon_and_mount(self):
        pool = churn.load_pool(FIXTURES)
        for round_number in range(ROUNDS):
            sig = signal.SIGINT if round_number % 3 == 2 else signal.SIGTERM
            with self.subTest(round=round_number, signal=sig.name), \
                    tempfile.TemporaryDirectory(prefix="payloadfs-stop-") as tmp:
                self.stop_under_load(pathlib.Path(tmp), pool, sig, round_number)

    def stop_under_load(self, tmp, pool, sig, seed):
        src, mnt = tmp / "src", tmp / "mnt"
        src.mkdir()
        mnt.mkdir()
        work = churn.Workload(src, mnt, pool, readers=12, seed=seed)
        daemon = ForegroundDaemon(src, mnt, "-o", "cache_entries=8,range_nodes=32",
                                  log_path=tmp / "daemon.log")
        try:
            daemon.wait_serving()
            work.start(writer_interval=0.001, stop_on_gone=True)
            work.stop.wait(BUSY_SECONDS)
            daemon.proc.send_signal(sig)
            # Exits by itself with status 0 and no sanitizer report, or DaemonFailure (a
            # wedged daemon has its connection aborted so that nothing stays stuck).
            daemon.check_exit(timeout=30, context=f"after {sig.name}; {work.summary()}")
            wait_until(lambda: not is_mounted(mnt), timeout=15, what="the mount to go away")
            stuck = work.join(timeout=30)
            self.assertEqual(stuck, [], f"readers stuck after the daemon ended: {stuck}")
            self.assertEqual(work.failures, [], work.summary())
        finally:
            work.stop.set()
            daemon.kill()
            unmount(mnt)
            shutil.rmtree(mnt, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
