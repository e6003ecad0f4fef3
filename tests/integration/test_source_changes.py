"""How the names a mount shows follow SRC: sources and directories renamed while mounted, an
inotify queue that overflowed, and directories left unwatched by the inotify watch limit
(docs/layout.md, "Caching and change").

The tests of watched directories mount with 86400 s caches (their default, set explicitly),
so a change that shows within PROMPT was invalidated by the watcher; one in an unwatched
directory shows once its 1 s entries expire."""
import contextlib
import ctypes
import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import unittest

import numpy as np

from mounting import (SANITIZED, START_TIMEOUT, DaemonFailure, ForegroundDaemon, checked_exit,
                      daemon_pid, is_serving, log_tail, mounted, requirement, wait_until)

# Changes in watched directories show "within milliseconds" (docs/layout.md); this bound only
# absorbs a loaded machine, far below the 86400 s the kernel would otherwise cache.
PROMPT = 30.0 if SANITIZED else 10.0
# Unwatched directories: 1 s timeouts (fs/options.hpp kUnwatchedTimeout), plus the same margin.
UNWATCHED_TIMEOUT = 1.0
EXPIRY = UNWATCHED_TIMEOUT + PROMPT

# The watched default (fs/options.hpp kWatchedTimeout), set explicitly for the tests of
# watched directories: were one left unwatched, its changes would stay hidden for a day rather
# than show after 1 s, so only the watcher's invalidation lets those tests pass.
DAY_LONG_CACHES = ("-o", "entry_timeout=86400,attr_timeout=86400,negative_timeout=86400")

LIBC = ctypes.CDLL(None, use_errno=True)


def save_npy(path, array):
    """np.save into `path` in place (the same inode: O_TRUNC, then the new bytes)."""
    with open(path, "wb") as f:
        np.save(f, array)


def missing(path):
    """Whether `path` is gone; ESTALE (a name being invalidated) counts as not yet."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno == errno.ESTALE:
            return False
        raise
    return False


def present(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def size_is(path, size):
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


class NamespaceTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-ns-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def assert_enoent(self, path):
        with self.assertRaises(OSError, msg=str(path)) as ctx:
            os.stat(path)
        self.assertEqual(ctx.exception.errno, errno.ENOENT, f"{path}: {ctx.exception}")

    @contextlib.contextmanager
    def log_on_failure(self, log):
        """A failure of the body carries the daemon's log (the temporary directory goes)."""
        try:
            yield
        except BaseException as e:
            e.add_note(f"--- {log} ---\n{log_tail(log)}")
            raise

    def check_payload(self, mnt, rel):
        """MNT/rel serves the array numpy reads from SRC/rel: bytes, size, header."""
        array = np.load(self.src / rel)
        data = mnt / rel / "raw" / "data"
        self.assertEqual(data.read_bytes(), array.tobytes(), rel)
        self.assertEqual(os.stat(data).st_size, array.nbytes, rel)
        header_path = mnt / rel / "header.json"
        text = header_path.read_bytes()
        self.assertEqual(os.stat(header_path).st_size, len(text), rel)
        header = json.loads(text)
        self.assertEqual(header["path"], rel)
        self.assertEqual(header["size"], os.stat(self.src / rel).st_size)
        self.assertEqual(header["header"]["shape"], list(array.shape), rel)
        self.assertEqual(header["header"]["descr"], array.dtype.str, rel)



class RenameTest(NamespaceTestCase):
    """Renames in watched directories: the old names go (ENOENT) and the new ones serve the
    sources' bytes within PROMPT, although the kernel holds both, the new ones as missing."""

    def warm(self, mnt, *rels):
        """Makes the kernel cache these payloads (header.json, raw/data) with their listings."""
        for rel in rels:
            self.check_payload(mnt, rel)
            os.listdir(mnt / rel)
            os.listdir(mnt / rel / "raw")
            os.listdir((mnt / rel).parent)

    def cached_as_missing(self, *paths):
        for path in paths:
            self.assert_enoent(path)

    def test_payload_renamed_across_directories(self):
        for d in ("a", "b"):
            (self.src / d).mkdir()
        save_npy(self.src / "a" / "x.npy", np.arange(6, dtype="<i4"))
        save_npy(self.src / "a" / "y.npy", np.arange(8, dtype=">f8").reshape(2, 4))
        save_npy(self.src / "b" / "other.npy", np.ones(3, dtype="<u2"))
        with mounted(self.src, *DAY_LONG_CACHES) as mnt:
            self.warm(mnt, "a/x.npy", "a/y.npy", "b/other.npy")
            self.cached_as_missing(mnt / "b" / "x.npy", mnt / "b" / "x.npy" / "header.json")
            os.rename(self.src / "a" / "x.npy", self.src / "b" / "x.npy")
            wait_until(lambda: missing(mnt / "a" / "x.npy") and present(mnt / "b" / "x.npy"),
                       timeout=PROMPT, what="a/x.npy to move to b/x.npy")
            for old in ("a/x.npy", "a/x.npy/header.json", "a/x.npy/raw/data"):
                self.assert_enoent(mnt / old)
            self.check_payload(mnt, "b/x.npy")
            self.assertEqual(sorted(os.listdir(mnt / "a")), ["y.npy"])
            self.assertEqual(sorted(os.listdir(mnt / "b")), ["other.npy", "x.npy"])
            # Renamed over an existing payload: the name now serves the other file.
            os.rename(self.src / "a" / "y.npy", self.src / "b" / "other.npy")
            wait_until(lambda: missing(mnt / "a" / "y.npy")
                       and size_is(mnt / "b" / "other.npy" / "raw" / "data", 64),
                       timeout=PROMPT, what="a/y.npy to replace b/other.npy")
            self.assert_enoent(mnt / "a" / "y.npy")
            self.check_payload(mnt, "b/other.npy")
            self.check_payload(mnt, "b/x.npy")
            self.assertEqual(os.listdir(mnt / "a"), [])

    def test_directory_renamed_with_payloads_inside(self):
        (self.src / "a" / "sub").mkdir(parents=True)
        save_npy(self.src / "a" / "x.npy", np.arange(5, dtype="<i8"))
        save_npy(self.src / "a" / "sub" / "deep.npy", np.arange(4, dtype="<f4").reshape(2, 2))
        with mounted(self.src, *DAY_LONG_CACHES) as mnt:
            self.warm(mnt, "a/x.npy", "a/sub/deep.npy")
            self.cached_as_missing(mnt / "c", mnt / "c" / "x.npy")
            os.rename(self.src / "a", self.src / "c")
            wait_until(lambda: missing(mnt / "a") and present(mnt / "c" / "x.npy"),
                       timeout=PROMPT, what="a/ to be renamed c/")
            for old in ("a", "a/x.npy", "a/sub", "a/sub/deep.npy", "a/sub/deep.npy/raw/data"):
                self.assert_enoent(mnt / old)
            self.assertEqual(os.listdir(mnt), ["c"])
            self.check_payload(mnt, "c/x.npy")
            self.check_payload(mnt, "c/sub/deep.npy")
            # The renamed directories are still watched, under their new names.
            self.cached_as_missing(mnt / "c" / "sub" / "new.npy")
            bigger = np.arange(50, dtype="<i8")
            save_npy(self.src / "c" / "x.npy", bigger)
            save_npy(self.src / "c" / "sub" / "new.npy", np.zeros(7, dtype="<u1"))
            wait_until(lambda: size_is(mnt / "c" / "x.npy" / "raw" / "data", bigger.nbytes)
                       and present(mnt / "c" / "sub" / "new.npy"),
                       timeout=PROMPT, what="changes inside the renamed directory")
            self.check_payload(mnt, "c/x.npy")
            self.check_payload(mnt, "c/sub/new.npy")

    def test_directory_moved_into_another_directory(self):
        (self.src / "a" / "sub").mkdir(parents=True)
        (self.src / "d").mkdir()
        save_npy(self.src / "a" / "x.npy", np.arange(9, dtype="<i2").reshape(3, 3))
        save_npy(self.src / "a" / "sub" / "deep.npy", np.arange(3, dtype=">i4"))
        save_npy(self.src / "d" / "keep.npy", np.arange(2, dtype="<f8"))
        with mounted(self.src, *DAY_LONG_CACHES) as mnt:
            self.warm(mnt, "a/x.npy", "a/sub/deep.npy", "d/keep.npy")
            self.cached_as_missing(mnt / "d" / "a", mnt / "d" / "a" / "x.npy")
            os.rename(self.src / "a", self.src / "d" / "a")
            wait_until(lambda: missing(mnt / "a") and present(mnt / "d" / "a" / "x.npy"),
                       timeout=PROMPT, what="a/ to move into d/")
            for old in ("a", "a/x.npy", "a/sub/deep.npy"):
                self.assert_enoent(mnt / old)
            self.assertEqual(os.listdir(mnt), ["d"])
            self.assertEqual(sorted(os.listdir(mnt / "d")), ["a", "keep.npy"])
            for rel in ("d/a/x.npy", "d/a/sub/deep.npy", "d/keep.npy"):
                self.check_payload(mnt, rel)
            # Still watched where it went.
            bigger = np.arange(30, dtype=">i4")
            save_npy(self.src / "d" / "a" / "sub" / "deep.npy", bigger)
            wait_until(lambda: size_is(mnt / "d" / "a" / "sub" / "deep.npy" / "raw" / "data",
                                       bigger.nbytes),
                       timeout=PROMPT, what="a change inside the moved directory")
            self.check_payload(mnt, "d/a/sub/deep.npy")

    def test_directory_replaced_under_its_old_name(self):
        """`mv data data.old && mkdir data`: the new data/ is another directory, and it must
        be watched too (a watch known by the old name would leave it cached for a day)."""
        (self.src / "data").mkdir()
        save_npy(self.src / "data" / "old.npy", np.arange(4, dtype="<i4"))
        with mounted(self.src, *DAY_LONG_CACHES) as mnt:
            self.warm(mnt, "data/old.npy")
            os.rename(self.src / "data", self.src / "data.old")
            (self.src / "data").mkdir()
            save_npy(self.src / "data" / "new1.npy", np.arange(6, dtype="<f4"))
            wait_until(lambda: missing(mnt / "data" / "old.npy")
                       and present(mnt / "data" / "new1.npy"),
                       timeout=PROMPT, what="data/ to be the new directory")
            self.assert_enoent(mnt / "data" / "old.npy")
            self.check_payload(mnt, "data/new1.npy")
            # Later changes in the new data/.
            self.cached_as_missing(mnt / "data" / "new2.npy")
            save_npy(self.src / "data" / "new2.npy", np.arange(3, dtype="<u8"))
            wait_until(lambda: present(mnt / "data" / "new2.npy"), timeout=PROMPT,
                       what="a payload created in the new data/")
            self.assertEqual(sorted(os.listdir(mnt / "data")), ["new1.npy", "new2.npy"])
            self.check_payload(mnt, "data/new2.npy")
            bigger = np.arange(40, dtype="<f4")
            save_npy(self.src / "data" / "new1.npy", bigger)
            wait_until(lambda: size_is(mnt / "data" / "new1.npy" / "raw" / "data", bigger.nbytes),
                       timeout=PROMPT, what="a payload changed in the new data/")
            self.check_payload(mnt, "data/new1.npy")
            # And in the old one, under its new name.
            self.check_payload(mnt, "data.old/old.npy")
            bigger = np.arange(20, dtype="<i4")
            save_npy(self.src / "data.old" / "old.npy", bigger)
            wait_until(lambda: size_is(mnt / "data.old" / "old.npy" / "raw" / "data",
                                       bigger.nbytes),
                       timeout=PROMPT, what="a payload changed in data.old/")
            self.check_payload(mnt, "data.old/old.npy")


# --- the inotify queue overflowing --------------------------------------------------------------

def max_queued_events():
    try:
        return int(pathlib.Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    except (OSError, ValueError):
        return None


def all_threads_stopped(pid):
    states = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            states.append(pathlib.Path(f"/proc/{pid}/task/{task}/stat").read_text()
                          .rpartition(")")[2].split()[0])
    return bool(states) and all(state in "tT" for state in states)


QUEUE = max_queued_events()


@requirement(QUEUE is not None and QUEUE <= 1_000_000,
             f"fs.inotify.max_queued_events is {QUEUE}: too many events to overflow it quickly")
class OverflowTest(NamespaceTestCase):
    def test_changes_lost_in_an_overflow_still_show(self):
        """With the daemon stopped, more events than its inotify queue holds, then the changes
        that matter (lost with the queue full): once continued, it logs the overflow once and
        the mount shows SRC as it is, though the kernel had all of it cached for a day."""
        w = self.src / "w"
        w.mkdir()
        for i in range(3):
            save_npy(w / f"p{i}.npy", np.arange(10 + i, dtype="<i4"))
        log = self.tmp / "daemon.log"
        with mounted(self.src, *DAY_LONG_CACHES, log_path=log) as mnt, self.log_on_failure(log):
            for i in range(3):
                self.check_payload(mnt, f"w/p{i}.npy")
            self.assertEqual(sorted(os.listdir(mnt / "w")), ["p0.npy", "p1.npy", "p2.npy"])
            self.assert_enoent(mnt / "w" / "born.npy")  # cached as missing
            pid = daemon_pid(mnt)
            bigger = np.arange(1000, dtype="<i4")
            os.kill(pid, signal.SIGSTOP)
            try:
                # Nothing may touch the mount until SIGCONT: only SRC is written.
                wait_until(lambda: all_threads_stopped(pid), timeout=PROMPT,
                           what="the daemon to stop")
                # 3 distinct events a name (create, close_write, delete): past the queue.
                for i in range(QUEUE // 3 + 1000):
                    name = w / f"t{i}"
                    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
                    os.unlink(name)
                save_npy(w / "p0.npy", bigger)
                os.unlink(w / "p1.npy")
                save_npy(w / "born.npy", np.arange(5, dtype="<f8"))
            finally:
                os.kill(pid, signal.SIGCONT)
            marker = "inotify queue overflowed"
            wait_until(lambda: marker in log.read_text(errors="replace"), timeout=PROMPT,
                       what="the daemon to log the overflow")
            wait_until(lambda: size_is(mnt / "w" / "p0.npy" / "raw" / "data", bigger.nbytes)
                       and missing(mnt / "w" / "p1.npy") and present(mnt / "w" / "born.npy"),
                       timeout=PROMPT, what="the mount to show SRC after the overflow")
            self.check_payload(mnt, "w/p0.npy")
            self.assertEqual(json.loads((mnt / "w" / "p0.npy" / "header.json").read_text())
                             ["header"]["shape"], [1000])
            self.assertEqual(os.stat(mnt / "w" / "p0.npy").st_mtime_ns,
                             os.stat(w / "p0.npy").st_mtime_ns)
            for gone in ("w/p1.npy", "w/p1.npy/header.json", "w/t0", f"w/t{QUEUE // 3}"):
                self.assert_enoent(mnt / gone)
            self.check_payload(mnt, "w/born.npy")
            self.check_payload(mnt, "w/p2.npy")
            self.assertEqual(sorted(os.listdir(mnt / "w")), ["born.npy", "p0.npy", "p2.npy"])
            text = log.read_text(errors="replace")
            self.assertEqual(text.count(marker), 1, log_tail(log))
            # Watching goes on after it.
            save_npy(w / "later.npy", np.arange(2, dtype="<i4"))
            wait_until(lambda: present(mnt / "w" / "later.npy"), timeout=PROMPT,
                       what="a change after the overflow")


# --- directories the watch limit leaves unwatched ------------------------------------------------

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def in_user_namespace(max_watches):
    """A preexec_fn: the child enters a new user namespace (its root is this process's uid)
    and mount namespace, whose inotify watch limit is `max_watches`. user.max_inotify_watches
    is per user namespace and checked at each level up, so this lowers the daemon's limit
    alone, never the machine's (other tests run in parallel)."""
    uid, gid = os.getuid(), os.getgid()

    def enter():
        if LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER | CLONE_NEWNS)")
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                           ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        with open("/proc/sys/user/max_inotify_watches", "w") as f:
            f.write(str(max_watches))
    return enter


def user_namespace_problem():
    try:
        subprocess.run(["true"], preexec_fn=in_user_namespace(1), check=True)
    except (OSError, subprocess.SubprocessError) as e:
        return f"no user namespace with its own inotify watch limit ({e})"
    return None


def mount_line(pid, mnt):
    """The line of /proc/PID/mountinfo for `mnt` (the mount namespace of PID), or None."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                if line.split()[4] == str(mnt):
                    return line
    return None


USERNS_PROBLEM = user_namespace_problem()


@requirement(USERNS_PROBLEM is None, USERNS_PROBLEM or "")
class WatchLimitTest(NamespaceTestCase):
    @contextlib.contextmanager
    def mounted_in_user_namespace(self, max_watches, *options):
        """payloadfs -f in its own user and mount namespaces (mounting.ForegroundDaemon, the
        same checks on its exit); yields the mount as this process reaches it, through
        /proc/PID/root, and the log. Stopped with SIGTERM, which unmounts."""
        mnt = self.tmp / "mnt"
        mnt.mkdir()
        log = self.tmp / "daemon.log"
        daemon = ForegroundDaemon(self.src, mnt, *options, log_path=log,
                                  preexec_fn=in_user_namespace(max_watches))
        try:
            wait_until(lambda: mount_line(daemon.proc.pid, mnt) or daemon.proc.poll() is not None,
                       timeout=START_TIMEOUT, what="payloadfs to mount in its namespace")
            pid = daemon_pid(mnt)
            self.assertEqual(pid, daemon.proc.pid)
            view = pathlib.Path(f"/proc/{pid}/root") / mnt.relative_to("/")
            if daemon.proc.poll() is not None or not is_serving(view):
                raise DaemonFailure(f"payloadfs did not serve in its namespace\n{log_tail(log)}")
            minor = mount_line(pid, mnt).split()[2].split(":")[1]
            connection = pathlib.Path(f"/sys/fs/fuse/connections/{minor}")
            daemon.hold_connection(connection if connection.exists() else None)

            def stop():
                daemon.proc.send_signal(signal.SIGTERM)
                daemon.check_exit(context="after SIGTERM")

            with checked_exit(stop):
                yield view, log
        finally:
            daemon.kill()  # only if still running

    def test_unwatched_directories_show_changes_as_entries_expire(self):
        """A watch limit of 1 (SRC's own watch): looking up sub/ and sub2/ fails to watch
        them (ENOSPC), which is warned once; they are served with 1 s caches, so their changes
        show once those expire, while SRC's top level stays watched."""
        for d in ("sub", "sub2"):
            (self.src / d).mkdir()
        save_npy(self.src / "top.npy", np.arange(3, dtype="<i4"))
        save_npy(self.src / "sub" / "f.npy", np.arange(8, dtype="<f4").reshape(2, 4))
        save_npy(self.src / "sub" / "gone.npy", np.arange(2, dtype="<i8"))
        save_npy(self.src / "sub2" / "g.npy", np.arange(6, dtype=">u2"))
        with (self.mounted_in_user_namespace(1, "-o", "log_level=debug") as (mnt, log),
              self.log_on_failure(log)):
            for rel in ("top.npy", "sub/f.npy", "sub/gone.npy", "sub2/g.npy"):
                self.check_payload(mnt, rel)
            self.assertEqual(sorted(os.listdir(mnt)), ["sub", "sub2", "top.npy"])
            lines = log.read_text(errors="replace").splitlines()
            warned = [line for line in lines if line.startswith("payloadfs: warn: cannot watch")]
            quiet = [line for line in lines if line.startswith("payloadfs: debug: cannot watch")]
            self.assertEqual(len(warned), 1, "\n".join(lines))
            self.assertIn("No space left on device", warned[0])
            self.assertTrue(any(f"{self.src}/sub2 " in line for line in warned + quiet), lines)
            self.assertTrue(any(f"{self.src}/sub " in line for line in warned + quiet), lines)
            self.assertFalse(any(f"{self.src} " in line for line in warned + quiet), lines)
            # Changes in an unwatched directory: a name cached as missing, a removal, a change.
            self.assert_enoent(mnt / "sub" / "new.npy")
            bigger = np.arange(400, dtype="<f4").reshape(20, 20)
            save_npy(self.src / "sub" / "f.npy", bigger)
            os.unlink(self.src / "sub" / "gone.npy")
            save_npy(self.src / "sub" / "new.npy", np.arange(5, dtype="<u4"))
            wait_until(lambda: size_is(mnt / "sub" / "f.npy" / "raw" / "data", bigger.nbytes)
                       and missing(mnt / "sub" / "gone.npy")
                       and present(mnt / "sub" / "new.npy"),
                       timeout=EXPIRY, what="changes in sub/ to show as its entries expire")
            self.assert_enoent(mnt / "sub" / "gone.npy")
            for rel in ("sub/f.npy", "sub/new.npy", "sub2/g.npy"):
                self.check_payload(mnt, rel)
            self.assertEqual(sorted(os.listdir(mnt / "sub")), ["f.npy", "new.npy"])
            # SRC's own watch still works: a name cached as missing for a day shows at once.
            self.assert_enoent(mnt / "later.npy")
            save_npy(self.src / "later.npy", np.arange(4, dtype="<i2"))
            wait_until(lambda: present(mnt / "later.npy"), timeout=PROMPT,
                       what="a payload created in the watched top level")
            self.check_payload(mnt, "later.npy")
            text = log.read_text(errors="replace")
            self.assertEqual(text.count("warn: cannot watch"), 1, text)


if __name__ == "__main__":
    unittest.main()
