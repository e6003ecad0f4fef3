"""Sources that fail: payloadfs mounted over payloadfs_faultfs (tests/faultfs/faultfs.cpp), a
FUSE filesystem that serves a backing directory and injects faults into chosen files: EIO past
an offset, short reads, a read that blocks for 10 s, a size that is not what reads return, a
file that vanishes between lookup and open, ENOSPC and ENOMEM on open.

Whatever the source does, payloadfs answers EIO (ENOENT or ESTALE for a file gone, see
docs/reliability.md) or shows `errors` in header.json: every byte it serves is the backing
file's byte at that offset, it never serves bytes the source does not have, its daemon stays
alive and serving, a source that blocks does not hold up the other payloads of the mount, and
once the source behaves again the payload is served whole.

Each test runs faultfs on its own mount point over its own backing directory, payloadfs on
that mount, and unmounts both (payloadfs first) whatever happens. Readiness is the mount in
/proc/self/mountinfo and faults are seen in faultfs's events file: nothing sleeps for a fixed
time. Every operation through the mounts runs on a thread joined with a timeout.
"""
import contextlib
import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from mounting import (PYTHON, daemon_pid, fuse_connection_of, is_mounted, mounted,
                      requirement, unmount, wait_until)

FAULTFS = os.environ.get("PAYLOADFS_FAULTFS", "")
BLOCK_SECONDS = 10
# A stat or a read of another payload while one source blocks, in seconds. What is proven is
# that it was not queued behind the block; a fifth of the block leaves room for a loaded
# 2-core CI machine running other tests (a bound of 0.1 s measured the scheduler instead).
LATENCY_BOUND = BLOCK_SECONDS / 5
MAX_THREADS = 4  # payloadfs's default -o max_threads
OP_TIMEOUT = 60.0  # any one step through the mounts
PAGE = 4096


def bounded(fn, timeout=OP_TIMEOUT, what="operation"):
    """fn() on a thread of its own, joined within `timeout`: a hung read fails the test
    instead of hanging it."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:  # re-raised below, in the test's thread
            result["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{what} did not answer within {timeout:.0f}s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def timed(fn, what, timeout=OP_TIMEOUT):
    """(seconds, fn()) with fn run under bounded()."""
    def run():
        started = time.monotonic()
        value = fn()
        return time.monotonic() - started, value
    return bounded(run, timeout=timeout, what=what)


class FaultFs:
    """A running payloadfs_faultfs: its mount point, rules and events."""

    def __init__(self, work):
        self.mnt = work / "mnt"
        self.rules = work / "rules"
        self.events_path = work / "events"
        self.log = work / "faultfs.log"
        self.proc = None

    def set_rules(self, text):
        """Replaces the rules atomically: faultfs applies them from its next request on."""
        tmp = self.rules.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.rules)

    def events(self):
        try:
            return [line.split() for line in self.events_path.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def saw(self, path, fault):
        return any(e[:2] == [path, fault] for e in self.events())

    def release(self):
        """No more faults, and every read blocked now answers."""
        self.set_rules("")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)


@contextlib.contextmanager
def faultfs(backing, rules):
    work = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-faultfs-"))
    fs = FaultFs(work)
    fs.mnt.mkdir()
    fs.set_rules(rules)
    try:
        with open(fs.log, "wb") as log:
            fs.proc = subprocess.Popen(
                [FAULTFS, f"--rules={fs.rules}", f"--events={fs.events_path}", str(backing),
                 str(fs.mnt), "-f"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_until(lambda: is_mounted(fs.mnt) or fs.proc.poll() is not None, timeout=30,
                   what="faultfs to mount")
        if fs.proc.poll() is not None:
            raise RuntimeError(f"faultfs exited {fs.proc.returncode}: {fs.log.read_text()}")
        yield fs
    finally:
        fs.release()
        unmount(fs.mnt)
        if fs.proc is not None:
            try:
                fs.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                fs.proc.kill()
                fs.proc.wait()
        if not is_mounted(fs.mnt):
            shutil.rmtree(work, ignore_errors=True)


def write_payloads(root):
    """Real files written by numpy and PIL: name -> bytes."""
    script = r"""
import sys, numpy as np
from PIL import Image
root = sys.argv[1]
np.save(f"{root}/big.npy", np.arange(1 << 20, dtype="<f4"))         # 4 MiB of data
np.save(f"{root}/other.npy", np.random.default_rng(7).integers(0, 1 << 30, (512, 256)))
np.save(f"{root}/fresh.npy", np.linspace(0, 1, 5000))
np.save(f"{root}/victim.npy", np.arange(100_000, dtype="<i8"))
Image.fromarray(np.random.default_rng(3).integers(0, 255, (96, 128, 3), dtype=np.uint8)
                ).save(f"{root}/image.png")
"""
    subprocess.run([PYTHON, "-c", script, str(root)], check=True, timeout=120)
    return {p.name: p.read_bytes() for p in root.iterdir()}


def pending_requests(conn):
    """Requests of a FUSE connection sent and not yet answered."""
    return int((conn / "waiting").read_text())


def errno_of(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def read_file(path, source, base, problems, allowed, chunk=1 << 16, length=None):
    """Reads `path` whole in `chunk`-byte preads (after a short one, on from where it ended;
    after an error, on from the next chunk). Every byte returned must be source[base + offset]
    and lie inside the source. Returns (bytes served, errnos met); what is wrong goes into
    `problems`."""
    served, seen = 0, []
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        if e.errno not in allowed:
            problems.append(f"{path}: open: {errno_of(e)}")
        return 0, [e.errno]
    try:
        size = os.fstat(fd).st_size if length is None else length
        offset = 0
        while offset < size:
            try:
                data = os.pread(fd, min(chunk, size - offset), offset)
            except OSError as e:
                seen.append(e.errno)
                if e.errno not in allowed:
                    problems.append(f"{path}: read at {offset}: {errno_of(e)}")
                offset = (offset // chunk + 1) * chunk
                continue
            if not data:
                problems.append(f"{path}: end of file at {offset} of {size}, without an error")
                break
            start = base + offset
            if start + len(data) > len(source):
                problems.append(f"{path}: served bytes [{max(start, len(source))}, "
                                f"{start + len(data)}) past the source's end {len(source)}")
            expected = source[start:start + len(data)]
            if data[:len(expected)] != expected:
                wrong = next(i for i, (a, b) in enumerate(zip(data, expected)) if a != b)
                problems.append(f"{path}: wrong bytes from source offset {start + wrong} "
                                f"(read at {offset}, {len(data)} bytes)")
            served += len(data)
            offset += len(data)
    finally:
        os.close(fd)
    return served, seen


def check_payload(mnt, name, source, allowed=(errno.EIO,)):
    """Reads everything payloadfs shows of `name`: header.json, slices.json, magic, every raw/
    slice and range/ over the size payloadfs reports. Returns a summary: `problems` (anything
    but correct bytes, valid JSON and the `allowed` errors), `errnos` met, `header` (None if
    unreadable) and `served` (payload bytes returned)."""
    payload = pathlib.Path(mnt) / name
    out = {"problems": [], "errnos": [], "header": None, "slices": None, "served": 0}
    allowed = set(allowed)

    def json_of(entry):
        try:
            text = (payload / entry).read_bytes()
        except OSError as e:
            out["errnos"].append(e.errno)
            if e.errno not in allowed:
                out["problems"].append(f"{name}/{entry}: {errno_of(e)}")
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            out["problems"].append(f"{name}/{entry} is not JSON: {e}")
            return None

    def read(entry, base, length=None):
        served, seen = read_file(payload / entry, source, base, out["problems"], allowed,
                                 length=length)
        out["served"] += served
        out["errnos"] += seen

    header = out["header"] = json_of("header.json")
    slices = out["slices"] = json_of("slices.json")
    if header is not None:
        read("magic", header["magic_offset"])
        size = header["size"]
        read(f"range/0-{size}", 0)
        for start in range(max(0, len(source) - 3000), min(size, len(source) + 3000), 1000):
            read(f"range/{start}+{min(2000, size - start)}", start)  # around the source's end
    for s in slices or []:
        read(s["path"], s["offset"])
    return out


@requirement(bool(FAULTFS) and os.access(FAULTFS, os.X_OK),
             "PAYLOADFS_FAULTFS (the payloadfs_faultfs binary) is not set")
class SourceFaultTest(unittest.TestCase):
    def setUp(self):
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-faults-"))
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        self.backing = self.work / "src"
        self.backing.mkdir()
        self.sources = write_payloads(self.backing)

    @contextlib.contextmanager
    def mounts(self, rules, *options):
        """faultfs over the backing directory with `rules`, payloadfs over faultfs. On the way
        out the daemon must be alive and answering; blocked reads are released before the
        unmounts, payloadfs's first."""
        self.log = self.work / "payloadfs.log"
        with faultfs(self.backing, rules) as fs:
            with mounted(fs.mnt, *options, log_path=self.log) as mnt:
                pid = daemon_pid(mnt)
                try:
                    yield fs, mnt
                    self.assert_serving(pid, mnt)
                finally:
                    fs.release()

    def assert_serving(self, pid, mnt):
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
        self.assertNotIn(state, ("Z", "X"), f"payloadfs died:\n{self.log.read_text()[-3000:]}")
        bounded(lambda: os.statvfs(mnt), timeout=10, what="statvfs of the mount")

    def check(self, mnt, name, allowed=(errno.EIO,)):
        summary = bounded(lambda: check_payload(mnt, name, self.sources[name], allowed),
                          what=f"reading {name}")
        header = summary["header"] or {}
        met = sorted({errno.errorcode.get(e, str(e)) for e in summary["errnos"]})
        self.assertEqual(summary["problems"], [],
                         f"{name}: errors met {met}, header.json errors {header.get('errors')}")
        return summary

    def assert_whole(self, mnt, name):
        """Served as a healthy payload: no error, no `errors`, every slice."""
        summary = self.check(mnt, name, allowed=())
        self.assertNotIn("errors", summary["header"])
        self.assertEqual(summary["header"]["size"], len(self.sources[name]))
        self.assertGreater(summary["served"], len(self.sources[name]))

    def assert_recovers(self, mnt, name, timeout=5.0):
        """Once the source behaves again, the payload is served whole within `timeout` (the
        1 s caches of a FUSE source expire)."""
        def whole():
            s = check_payload(mnt, name, self.sources[name], allowed=())
            return not s["problems"] and s["header"] is not None and "errors" not in s["header"]
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: bounded(whole), timeout=timeout, what=f"{name} to recover")
        self.assert_whole(mnt, name)

    def assert_failed_visibly(self, summary, name):
        """The fault showed: an error was answered or header.json has `errors`."""
        header = summary["header"]
        self.assertTrue(summary["errnos"] or (header is not None and "errors" in header),
                        f"{name}: the fault left no trace: {summary}")

    def test_eio_at_and_past_an_offset(self):
        eio_from = 128 + 600_000 + 123  # inside big.npy's data, not on a page boundary
        with self.mounts(f"big.npy eio_from {eio_from}\n") as (fs, mnt):
            summary = self.check(mnt, "big.npy")
            self.assertTrue(fs.saw("big.npy", "eio"))
            header = summary["header"]
            self.assertEqual(header["format"], "npy")  # the header lies before the fault
            self.assertNotIn("errors", header)
            self.assertIn(errno.EIO, summary["errnos"])
            # Bytes before the failing page are served; nothing at or past it.
            data = mnt / "big.npy" / "raw" / "data"
            problems = []
            served, seen = bounded(lambda: read_file(data, self.sources["big.npy"], 128,
                                                     problems, {errno.EIO}))
            self.assertEqual(problems, [])
            self.assertGreaterEqual(128 + served, eio_from // PAGE * PAGE - 2 * PAGE)
            self.assertLess(128 + served, eio_from)
            self.assertIn(errno.EIO, seen)
            for other in ("other.npy", "image.png", "fresh.npy"):
                self.assert_whole(mnt, other)
            fs.release()  # the source recovers: so does the payload
            self.assert_recovers(mnt, "big.npy")

    def test_short_reads_of_direct_io_files(self):
        # A direct_io FUSE file may answer any read short: the count reaches payloadfs's own
        # preads, which read on. Every byte is served, and right. (Without direct_io, FUSE
        # defines a short read as the end of the file, the rest of the page as zeros: the
        # kernel, not payloadfs, decides those bytes; docs/reliability.md.)
        rules = ("image.png short 1000\nimage.png direct_io\n"
                 "victim.npy short 3000\nvictim.npy direct_io\n")
        with self.mounts(rules) as (fs, mnt):
            for name in ("image.png", "victim.npy"):
                with self.subTest(name=name):
                    self.check(mnt, name)
                    self.assertTrue(fs.saw(name, "short"), name)
                    self.assert_whole(mnt, name)
            self.assert_whole(mnt, "other.npy")

    def test_size_is_not_what_reads_return(self):
        big, png = len(self.sources["big.npy"]), len(self.sources["image.png"])
        # getattr says 10,000 bytes more than reads give for big.npy, 500 fewer for image.png.
        # big.npy is direct_io: through a page cache FUSE defines the missing bytes as zeros
        # (the kernel zero-fills after the short read), so only direct_io can show the lie.
        rules = f"big.npy size {big + 10_000}\nbig.npy direct_io\nimage.png size {png - 500}\n"
        with self.mounts(rules) as (fs, mnt):
            with self.subTest(name="big.npy"):
                grown = self.check(mnt, "big.npy")
                self.assertEqual(grown["header"]["size"], big + 10_000)
                # range/ over the reported size reaches past the real end: that must fail.
                self.assertIn(errno.EIO, grown["errnos"])
            with self.subTest(name="image.png"):
                shrunk = self.check(mnt, "image.png")
                self.assertEqual(shrunk["header"]["size"], png - 500)
                self.assertIn("errors", shrunk["header"])  # IEND and the last IDAT bytes are cut
            self.assert_whole(mnt, "other.npy")

    def test_vanishes_between_lookup_and_open(self):
        with self.mounts("big.npy vanish\n") as (fs, mnt):
            self.assertIn("big.npy", bounded(lambda: os.listdir(mnt)))
            self.assertTrue(bounded(lambda: (mnt / "big.npy").is_dir()))
            gone = {errno.ENOENT, errno.ESTALE}
            summary = self.check(mnt, "big.npy", allowed=gone)
            self.assertTrue(fs.saw("big.npy", "vanish"))
            self.assertIsNone(summary["header"])
            self.assertEqual(summary["served"], 0)
            # A payload opened before its source vanished keeps serving what it opened.
            mnt_victim = mnt / "victim.npy" / "raw" / "data"
            victim = bounded(lambda: os.open(mnt_victim, os.O_RDONLY))
            try:
                first = bounded(lambda: os.pread(victim, 4096, 0))
                fs.set_rules("big.npy vanish\nvictim.npy vanish\n")
                rest = bounded(lambda: os.pread(victim, 1 << 20, 4096))
                self.assertEqual(first + rest, self.sources["victim.npy"][128:])
                self.check(mnt, "victim.npy", allowed=gone)
            finally:
                os.close(victim)
            self.assertTrue(fs.saw("victim.npy", "vanish"))
            self.assert_whole(mnt, "other.npy")
            fs.release()
            for name in ("big.npy", "victim.npy"):
                self.assert_recovers(mnt, name)

    def test_open_fails_with_enospc_or_enomem(self):
        with self.mounts("big.npy open_error ENOSPC\nimage.png open_error ENOMEM\n") as (fs, mnt):
            for name in ("big.npy", "image.png"):
                with self.subTest(name=name):
                    summary = self.check(mnt, name)
                    self.assertTrue(fs.saw(name, "open_error"), name)
                    self.assert_failed_visibly(summary, name)
                    self.assertEqual(summary["served"], 0)
            self.assert_whole(mnt, "other.npy")
            fs.release()
            for name in ("big.npy", "image.png"):
                with self.subTest(name=name, source="recovered"):
                    self.assert_recovers(mnt, name)

    def assert_others_served(self, mnt, blocked):
        """While the `blocked` threads wait on big.npy: another payload's first lookup and
        parse, another's bytes and statfs each answer within LATENCY_BOUND."""
        probe = BLOCK_SECONDS / 2  # fail before the block ends by itself
        took, text = timed(lambda: (mnt / "fresh.npy" / "header.json").read_bytes(),
                           "a payload's first lookup and parse", timeout=probe)
        self.assertLess(took, LATENCY_BOUND, "first lookup and parse of another payload")
        self.assertEqual(json.loads(text)["format"], "npy")
        took, bytes_read = timed(lambda: (mnt / "other.npy" / "raw" / "data").read_bytes(),
                                 "another payload's bytes", timeout=probe)
        self.assertLess(took, LATENCY_BOUND, "first read of another payload's bytes")
        self.assertEqual(bytes_read, self.sources["other.npy"][128:])
        took, _ = timed(lambda: os.statvfs(mnt), "statvfs", timeout=probe)
        self.assertLess(took, LATENCY_BOUND, "statvfs of the mount")
        self.assertTrue(all(t.is_alive() for t in blocked), "the block ended before the checks did")

    def stall_and_probe(self, readers):
        """`readers` threads each read 8 KiB of big.npy's raw/data where faultfs blocks every
        read for BLOCK_SECONDS. Once all are blocked, payloadfs (with its default of
        MAX_THREADS workers) must find and parse a payload it never saw, read another one's
        bytes and answer statfs, each within LATENCY_BOUND; released, the readers get the
        right bytes."""
        block_from = 128 + (2 << 20)  # the second half of big.npy's data
        rules = f"big.npy block {BLOCK_SECONDS} {block_from}\n"
        with self.mounts(rules, "-o", f"max_threads={MAX_THREADS}") as (fs, mnt):
            data = mnt / "big.npy" / "raw" / "data"
            conn = fuse_connection_of(mnt)
            self.assertIsNotNone(conn, "no /sys/fs/fuse/connections entry for the mount")
            fds = [bounded(lambda: os.open(data, os.O_RDONLY)) for _ in range(readers)]
            offsets = [(3 << 20) + i * 200_000 for i in range(readers)]  # one faultfs read each
            got = {}

            def read(i):
                got[i] = os.pread(fds[i], 8192, offsets[i])
            threads = [threading.Thread(target=read, args=(i,), daemon=True)
                       for i in range(readers)]
            for thread in threads:
                thread.start()
            try:
                # Every reader's request is inside payloadfs (the kernel counts it as waiting)
                # and at least one has reached faultfs and blocks there.
                wait_until(lambda: (pending_requests(conn) >= readers and fs.saw("big.npy", "block"))
                           or not all(t.is_alive() for t in threads),
                           timeout=30, what="the reads of big.npy to block")
                self.assertTrue(all(t.is_alive() for t in threads), f"a read did not block: {got}")
                self.assert_others_served(mnt, threads)
            finally:
                fs.release()
                for thread in threads:
                    thread.join(OP_TIMEOUT)
                for fd in fds:
                    os.close(fd)
            self.assertFalse(any(t.is_alive() for t in threads), "a blocked read never answered")
            for i, offset in enumerate(offsets):
                self.assertEqual(got.get(i), self.sources["big.npy"][128 + offset:][:8192])
            self.assert_whole(mnt, "big.npy")

    def test_blocked_read_does_not_hold_up_other_payloads(self):
        self.stall_and_probe(readers=1)

    def test_readers_stalled_on_one_source_do_not_hold_up_other_payloads(self):
        # As many readers of the stalled file as payloadfs has workers (a data loader's
        # threads on a file of a hung NFS server): the other payloads must still be served.
        self.stall_and_probe(readers=MAX_THREADS)

    def stall_parses_and_probe(self, nodes, touch):
        """Readers ask for `nodes` of big.npy (one thread each) while faultfs blocks every read
        of it, so each parse stalls (a dataloader's workers on a file of a hung NFS server);
        with `touch`, big.npy was parsed before and then changed, so that every node needs the
        new version's parse. Another payload's first lookup and parse, another's bytes and
        statfs must each be answered within LATENCY_BOUND; released, every reader gets its
        answer from the new version."""
        # No kernel caching: every node's request reaches payloadfs, which sees the change.
        options = f"max_threads={MAX_THREADS},entry_timeout=0,attr_timeout=0"
        with self.mounts("", "-o", options) as (fs, mnt):
            if touch:
                for node in nodes:
                    os.stat(mnt / "big.npy" / node)
                os.utime(self.backing / "big.npy", ns=(10**18, 10**18))
            fs.set_rules(f"big.npy block {BLOCK_SECONDS} 0\n")
            got = {}

            def ask(node):
                path = mnt / "big.npy" / node
                got[node] = os.stat(path).st_size if node.startswith("raw") else \
                    json.loads(path.read_bytes())
            threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in nodes]
            for thread in threads:
                thread.start()
            try:
                wait_until(lambda: fs.saw("big.npy", "block")
                           or not all(t.is_alive() for t in threads),
                           timeout=30, what="a parse of big.npy to block")
                self.assertTrue(all(t.is_alive() for t in threads), f"a parse did not block: {got}")
                self.assert_others_served(mnt, threads)
                # What needs no parse of big.npy is not queued behind it: its directory's
                # attributes, and the security.* probe ls -l makes of every entry.
                took, _ = timed(lambda: os.stat(mnt / "big.npy"), "stat of big.npy",
                                timeout=BLOCK_SECONDS / 2)
                self.assertLess(took, LATENCY_BOUND, "stat of the stalled payload's directory")

                def probe():
                    with self.assertRaises(OSError) as ctx:
                        os.getxattr(mnt / "big.npy", "security.selinux")
                    return ctx.exception.errno
                took, err = timed(probe, "security.selinux of big.npy", timeout=BLOCK_SECONDS / 2)
                self.assertEqual(err, errno.ENODATA)
                self.assertLess(took, LATENCY_BOUND, "a security.* probe of the stalled payload")
                self.assertTrue(all(t.is_alive() for t in threads),
                                "the block ended before the checks did")
            finally:
                fs.release()
                for thread in threads:
                    thread.join(OP_TIMEOUT)
            self.assertFalse(any(t.is_alive() for t in threads), "a blocked parse never answered")
            self.assertEqual(sorted(got), sorted(nodes))
            for node, answer in got.items():
                if node.startswith("raw"):
                    self.assertEqual(answer, len(self.sources["big.npy"]) - 128)
                elif node == "header.json" and touch:
                    self.assertEqual(answer["mtime_ns"], 10**18)
            self.assert_whole(mnt, "big.npy")

    def test_readers_of_one_stalled_parse_do_not_hold_up_other_payloads(self):
        # The kernel sends one LOOKUP of a name at a time: the other readers wait for it there.
        self.stall_parses_and_probe(["header.json"] * 1, touch=False)

    def test_every_node_of_a_changed_stalled_source_does_not_hold_up_other_payloads(self):
        # Each node of the changed file needs the new version: as many parses of one source
        # at once as there are workers.
        self.stall_parses_and_probe(["header.json", "slices.json", "refs.json", "raw/data"],
                                    touch=True)

    def test_read_error_while_parsing_is_not_kept(self):
        # `errors` is for malformed files: a read error of the source while parsing must not
        # outlive the source's recovery (the version, size and mtime, stays the same).
        png = len(self.sources["image.png"])
        with self.mounts(f"image.png eio_from {png // 2}\n") as (fs, mnt):
            summary = self.check(mnt, "image.png")
            self.assertTrue(fs.saw("image.png", "eio"))
            self.assertIn("errors", summary["header"])  # CRCs are checked: the parse read it
            fs.release()
            self.assert_recovers(mnt, "image.png")

if __name__ == "__main__":
    unittest.main()
