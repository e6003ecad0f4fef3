"""A daemon told to stop always stops: SIGTERM (or SIGINT) while readers and a writer churn
the mount ends the daemon with status 0 and takes the mount away, every time. (A watcher
thread inside a kernel notification that waits on a LOOKUP no worker will answer used to
keep the daemon, and every reader, stuck forever.)"""
import os
import pathlib
import signal
import tempfile
import unittest

import churn
from foreground import daemon_log_problems, serving
from mounting import FIXTURES, is_mounted, wait_until

ROUNDS = int(os.environ.get("PAYLOADFS_SHUTDOWN_ROUNDS", "6"))
BUSY_SECONDS = 1.5


class ShutdownTest(unittest.TestCase):
    def test_stop_signal_under_load_ends_daemon_and_mount(self):
        pool = churn.load_pool(FIXTURES)
        for round_number in range(ROUNDS):
            sig = signal.SIGINT if round_number % 3 == 2 else signal.SIGTERM
            with self.subTest(round=round_number, signal=sig.name), \
                    tempfile.TemporaryDirectory(prefix="payloadfs-stop-") as tmp:
                src = pathlib.Path(tmp) / "src"
                src.mkdir()
                log = pathlib.Path(tmp) / "daemon.log"
                work = churn.Workload(src, None, pool, readers=12, seed=round_number)
                with serving(src, "-o", "cache_entries=8", log_path=log) as daemon:
                    work.mnt = daemon.mnt
                    work.start(writer_interval=0.001, stop_on_gone=True)
                    work.stop.wait(BUSY_SECONDS)
                    daemon.signal(sig)
                    try:
                        code = daemon.wait(timeout=30)
                    except Exception:
                        code = None
                    self.assertEqual(code, 0, f"daemon did not stop cleanly after {sig.name}"
                                     f" ({work.summary()})\n{log.read_text()[-3000:]}")
                    wait_until(lambda: not is_mounted(daemon.mnt), timeout=15,
                               what="the mount to go away")
                    stuck = work.join(timeout=30)
                    self.assertEqual(stuck, [], f"readers stuck after the daemon ended: {stuck}")
                self.assertEqual(work.failures, [], work.summary())
                self.assertEqual(daemon_log_problems(log), "")


if __name__ == "__main__":
    unittest.main()
