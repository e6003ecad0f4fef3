"""Mount options the other modules leave out (issue #13): read_ahead_kb as the mount's BDI
readahead window, clone_fd and max_threads under parallel readers, cache_memory's eviction by
bytes, and the command line's refusals (one line on stderr, the exit status the man page
gives, no mount left behind), FUSE being unavailable among them.

Every fixture is written here (numpy arrays with np.save, pcap captures byte by byte) in a
temporary directory per test; nothing is written into a source after its mount.
"""
import collections
import json
import os
import pathlib
import random
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import numpy as np

from mounting import (BIN, START_TIMEOUT, daemon_pid, is_mounted, mounted, mounted_in_background,
                      requirement, unmount, wait_until)

# The kernel's own readahead window of a FUSE mount (VM_READAHEAD_PAGES): what
# read_ahead_kb=0 leaves in place; 2048 is payloadfs's default (fs/options.hpp, the man page).
KERNEL_READ_AHEAD_KB = 128
DEFAULT_READ_AHEAD_KB = 2048
DEFAULT_MAX_THREADS = 4

# read(2)'s number, to find the threads waiting for a request in /proc/PID/task/TID/syscall.
READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "riscv64": 63}.get(os.uname().machine)

ROOT = os.geteuid() == 0


def bdi_read_ahead_kb(mnt):
    """read_ahead_kb of the mount's backing device: /sys/class/bdi/MAJOR:MINOR of its st_dev."""
    dev = os.stat(mnt).st_dev
    return int(pathlib.Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
               .read_text())


def bdi_read_ahead_kb_once_set(mnt, want):
    """bdi_read_ahead_kb(mnt) once it is `want` (the daemon writes it while it answers its first
    request; another process's request may be that one), or what it is after 5 s."""
    try:
        wait_until(lambda: bdi_read_ahead_kb(mnt) == want, timeout=5)
    except TimeoutError:
        pass  # the caller's assertion says what it is
    return bdi_read_ahead_kb(mnt)


def stats(mnt):
    return json.loads((mnt / ".payloadfs" / "stats.json").read_text())


# --- the daemon's threads ----------------------------------------------------------------------

def fuse_descriptors(pid):
    """The daemon's descriptors open on /dev/fuse."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/fuse":
                found.add(int(fd))
        except OSError:
            pass  # closed meanwhile
    return found


def threads(pid):
    """{tid: what it does}: ("fuse", fd) for a thread waiting in read(2) on a /dev/fuse
    descriptor (a request worker between requests), else the syscall field ("running", or the
    number of the call it waits in)."""
    fuse = fuse_descriptors(pid)
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = pathlib.Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()
        except OSError:
            continue  # exited meanwhile
        if fields and fields[0] == str(READ_SYSCALL) and int(fields[1], 16) in fuse:
            out[int(tid)] = ("fuse", int(fields[1], 16))
        else:
            out[int(tid)] = (fields[0] if fields else "?",)
    return out


def settled_threads(pid, quiet_for=0.025):
    """threads(pid) once no thread runs and every look for `quiet_for` seconds agrees: every
    worker is back waiting for a request (the kernel's last asynchronous requests, releases
    and readahead, answered)."""
    since = [None, None]  # the snapshot, and when it was first seen

    def settled():
        now = threads(pid)
        if now != since[0] or any(state[0] == "running" for state in now.values()):
            since[0], since[1] = now, time.monotonic()
            return False
        return time.monotonic() - since[1] >= quiet_for
    wait_until(settled, timeout=15, what=f"the threads of payloadfs {pid} to settle")
    return since[0]


def workers_of(snapshot):
    return {tid: state[1] for tid, state in snapshot.items() if state[0] == "fuse"}


# --- fixtures ----------------------------------------------------------------------------------

def write_arrays(src):
    """npy files written by numpy; returns {name: the array as written}."""
    rng = np.random.default_rng(13)
    arrays = {
        "f4_big.npy": rng.standard_normal(1 << 20).astype("<f4"),  # 4 MiB
        "i2_2d.npy": rng.integers(-30000, 30000, size=(513, 1001)).astype("<i2"),
        "c16_fortran.npy": np.asfortranarray(
            (rng.standard_normal((300, 170)) + 1j * rng.standard_normal((300, 170)))
            .astype("<c16")),
        "structured.npy": np.array(
            [(i, i * 0.5, b"n%05d" % i) for i in range(40000)],
            dtype=[("id", "<u4"), ("x", "<f8"), ("name", "S6")]),
    }
    for name, array in arrays.items():
        np.save(src / name, array, allow_pickle=False)
    return arrays


def data_bytes(array):
    """The bytes of an npy file's data section, from the array itself (not from the file)."""
    return array.tobytes(order="F" if array.flags.f_contiguous and array.ndim > 1 else "C")


def pcap_bytes(packets, seed):
    """A classic little-endian pcap of `packets` 4-byte packets (16 bytes of record each)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(packets):
        out.append(struct.pack("<IIIII", seed, i, 4, 4, (seed << 20) ^ i))
    return b"".join(out)


# --- read_ahead_kb -----------------------------------------------------------------------------

@requirement(ROOT, "read_ahead_kb is written to /sys/class/bdi, which needs root")
@requirement(os.path.isdir("/sys/class/bdi"), "needs /sys/class/bdi (sysfs)")
class ReadAheadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-opts-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        (self.src / "x.bin").write_bytes(bytes(range(256)) * 16)
        self.log = self.tmp / "daemon.log"

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_read_ahead_kb_is_the_mounts_bdi_window(self):
        for options, want in (((), DEFAULT_READ_AHEAD_KB),
                              (("-o", "read_ahead_kb=512"), 512),
                              (("-o", "read_ahead_kb=4096"), 4096)):
            with self.subTest(options=options):
                with mounted(self.src, *options, log_path=self.log) as mnt:
                    os.listdir(mnt)  # the daemon sets it on its first request after INIT
                    self.assertEqual(bdi_read_ahead_kb_once_set(mnt, want), want)
                    self.assertEqual((mnt / "x.bin" / "range" / "0+4").read_bytes(),
                                     b"\0\1\2\3")
                self.assertIn(f"info: readahead set to {want} KiB", self.log.read_text())

    def test_zero_leaves_the_kernels_window(self):
        with mounted(self.src, "-o", "read_ahead_kb=0", log_path=self.log) as mnt:
            os.listdir(mnt)
            self.assertEqual((mnt / "x.bin" / "magic").read_bytes(), b"\0\1\2\3")
            self.assertEqual(bdi_read_ahead_kb(mnt), KERNEL_READ_AHEAD_KB)
        text = self.log.read_text()
        self.assertIn("info: serving", text)
        self.assertNotIn("readahead", text)  # neither set nor a problem reported

    def test_daemonized_mount_sets_it_too(self):
        """Started the way users start it (it daemonizes before its first request)."""
        with mounted_in_background(self.src, "-o", "read_ahead_kb=256") as (mnt, _):
            os.listdir(mnt)
            self.assertEqual(bdi_read_ahead_kb_once_set(mnt, 256), 256)


# --- clone_fd and max_threads ------------------------------------------------------------------

@requirement(ROOT, "reads other processes' /proc/PID/task/TID/syscall (root)")
@requirement(READ_SYSCALL is not None, f"read(2)'s number on {os.uname().machine} is not known")
class RequestLoopTest(unittest.TestCase):
    READERS = 6

    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-opts-loop-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        self.arrays = write_arrays(self.src)
        self.expected = {name: data_bytes(array) for name, array in self.arrays.items()}

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def parallel_readers(self, mnt, sample=None):
        """READERS threads read every array's raw/data at random offsets (and its
        header.json, which is direct I/O: every read is a request) and compare each byte with
        the array numpy wrote. `sample()` runs in this thread while they do. Returns what went
        wrong."""
        failures = []

        def reader(seed):
            rng = random.Random(seed)
            try:
                names = sorted(self.expected)
                rng.shuffle(names)
                for name in names:
                    want = self.expected[name]
                    json.loads((mnt / name / "header.json").read_text())
                    with open(mnt / name / "raw" / "data", "rb", buffering=0) as f:
                        for _ in range(24):
                            start = rng.randrange(len(want))
                            length = rng.randrange(1, 256 << 10)
                            got = os.pread(f.fileno(), length, start)
                            if got != want[start:start + length]:
                                failures.append(f"{name}: bytes {start}+{length} differ")
                                return
            except Exception as e:  # noqa: BLE001 - reported by the test thread
                failures.append(f"reader {seed}: {e!r}")

        readers = [threading.Thread(target=reader, args=(seed,)) for seed in range(self.READERS)]
        for t in readers:
            t.start()
        while any(t.is_alive() for t in readers):
            if sample is not None:
                sample()
            readers[0].join(0.002)
        for t in readers:
            t.join()
        return failures

    def check_whole_arrays(self, mnt):
        """Every raw/data equals numpy's bytes, and numpy.memmap over the mount reads the
        arrays back."""
        for name, array in self.arrays.items():
            with self.subTest(npy=name):
                header = json.loads((mnt / name / "header.json").read_text())["header"]
                self.assertEqual(tuple(header["shape"]), array.shape)
                self.assertEqual((mnt / name / "raw" / "data").read_bytes(), self.expected[name])
                mapped = np.memmap(mnt / name / "raw" / "data", mode="r", dtype=array.dtype,
                                   shape=array.shape,
                                   order="F" if header["fortran_order"] else "C")
                self.assertTrue(np.array_equal(mapped, array))
                del mapped

    def run_loop(self, *options):
        """Mounts with `options`, reads in parallel while sampling the daemon's thread count,
        checks every byte; returns (the settled threads, their count at most while reading,
        the daemon's /dev/fuse descriptors once settled, the daemon's log)."""
        log = self.tmp / "daemon.log"
        with mounted(self.src, *options, log_path=log) as mnt:
            pid = daemon_pid(mnt)
            peak = [len(threads(pid))]

            def sample():
                peak[0] = max(peak[0], len(os.listdir(f"/proc/{pid}/task")))
            failures = self.parallel_readers(mnt, sample)
            self.assertEqual(failures, [])
            self.check_whole_arrays(mnt)
            settled = settled_threads(pid)
            descriptors = fuse_descriptors(pid)
        return settled, peak[0], descriptors, log.read_text()

    def test_clone_fd_gives_each_worker_its_own_descriptor(self):
        for clone_fd in (False, True):
            with self.subTest(clone_fd=clone_fd):
                settled, _, descriptors, log = self.run_loop(
                    *(("-o", "clone_fd") if clone_fd else ()))
                workers = workers_of(settled)
                self.assertGreaterEqual(len(workers), 1, settled)
                fds = list(workers.values())
                if clone_fd:
                    # one each, besides the session's own (which no worker reads)
                    self.assertEqual(len(set(fds)), len(fds), workers)
                    self.assertEqual(len(descriptors), len(workers) + 1, (workers, descriptors))
                    self.assertIn("(clone_fd)", log)
                else:
                    self.assertEqual(len(set(fds)), 1, workers)
                    self.assertEqual(descriptors, set(fds))
                    self.assertNotIn("clone_fd", log)

    def test_max_threads_bounds_the_request_workers(self):
        for limit, options in ((1, ("-o", "max_threads=1")), (2, ("-o", "max_threads=2")),
                               (DEFAULT_MAX_THREADS, ()),
                               (2, ("-o", "max_threads=2", "-o", "clone_fd"))):
            with self.subTest(options=options):
                settled, peak, _, log = self.run_loop(*options)
                workers = workers_of(settled)
                self.assertGreaterEqual(len(workers), 1, settled)
                self.assertLessEqual(len(workers), limit, settled)
                # The other threads (main, source watcher, signals) are there throughout: at no
                # time while the readers ran were there more workers than the limit.
                others = len(settled) - len(workers)
                self.assertLessEqual(peak - others, limit, (peak, settled))
                self.assertIn(f", {limit} threads", log)


# --- cache_memory ------------------------------------------------------------------------------

class CacheMemoryTest(unittest.TestCase):
    """cache_memory=MiB bounds the cache's estimated bytes (stats.json payload_cache.bytes, the
    sum of each cached payload's memory_estimate()), least recently used first, whatever
    cache_entries allows; the most recently used payload is kept whatever its size."""

    PACKETS = 20000  # about 16 bytes a packet: some 320 KiB a capture, 3 to a MiB
    BIG_PACKETS = 90000  # more than a MiB on its own

    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-opts-cache-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        self.names = [f"c{i}.pcap" for i in range(7)]
        for i, name in enumerate(self.names):
            (self.src / name).write_bytes(pcap_bytes(self.PACKETS, i))
        (self.src / "big.pcap").write_bytes(pcap_bytes(self.BIG_PACKETS, 99))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def read_header(self, mnt, name):
        header = json.loads((mnt / name / "header.json").read_text())
        self.assertEqual(header["format"], "pcap", name)
        return header

    def test_bytes_bound_evicts_least_recently_used(self):
        everything = self.names + ["big.pcap"]
        # Each payload's estimate, alone in a cache with room for all of them.
        estimate = {}
        with mounted(self.src, "-o", "cache_memory=64") as mnt:
            for name in everything:
                before = stats(mnt)["payload_cache"]["bytes"]
                self.read_header(mnt, name)
                cache = stats(mnt)["payload_cache"]
                estimate[name] = cache["bytes"] - before
            self.assertEqual(cache["evictions"], 0)
            self.assertEqual(cache["entries"], len(everything))
        budget = 1 << 20
        small = [estimate[n] for n in self.names]
        self.assertTrue(0 < 2 * max(small) < budget < sum(small), estimate)  # the premise
        self.assertGreater(estimate["big.pcap"], budget)

        model = collections.OrderedDict()  # least recently used first
        evictions = misses = 0

        def use(mnt, name, expect_miss):
            nonlocal evictions, misses
            self.read_header(mnt, name)
            if expect_miss:
                misses += 1
            model[name] = estimate[name]
            model.move_to_end(name)
            while sum(model.values()) > budget and len(model) > 1:
                model.popitem(last=False)
                evictions += 1
            cache = stats(mnt)["payload_cache"]
            self.assertEqual((cache["max_bytes"], cache["max_entries"]), (budget, 4096))
            self.assertEqual(cache["misses"], misses, name)
            self.assertEqual(cache["entries"], len(model), (name, cache, list(model)))
            self.assertEqual(cache["bytes"], sum(model.values()), (name, cache))
            self.assertEqual(cache["evictions"], evictions, (name, cache))
            self.assertEqual(stats(mnt)["payload_cache_evictions"], evictions)
            return cache

        with mounted(self.src, "-o", "cache_memory=1,cache_entries=4096") as mnt:
            for name in self.names:
                cache = use(mnt, name, expect_miss=True)
                self.assertLessEqual(cache["bytes"], budget, name)
            self.assertGreater(evictions, 0)
            self.assertLess(len(model), len(self.names))
            # The most recently used is still there (a hit); the first one read was evicted
            # (a miss, and its return evicts the one now least recently used).
            use(mnt, self.names[-1], expect_miss=False)
            self.assertNotIn(self.names[0], model)
            use(mnt, self.names[0], expect_miss=True)
            # A payload over the budget on its own is kept, alone.
            cache = use(mnt, "big.pcap", expect_miss=True)
            self.assertEqual(cache["entries"], 1)
            self.assertGreater(cache["bytes"], budget)
            use(mnt, self.names[1], expect_miss=True)  # and goes when the next one comes
            self.assertEqual(list(model), [self.names[1]])


# --- refusals ----------------------------------------------------------------------------------

class CommandLineErrorTest(unittest.TestCase):
    """Each refusal prints one line on stderr, exits with the man page's status (2: a
    command-line error such as a missing argument or a bad value; 1: the mount cannot be made,
    including an option libfuse rejects and FUSE being unavailable) and leaves no mount."""

    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-opts-cli-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        (self.src / "x.bin").write_bytes(b"hello")
        self.mnt = self.tmp / "mnt"
        self.mnt.mkdir()
        self.file = self.tmp / "plain-file"
        self.file.write_bytes(b"")

    def tearDown(self):
        unmount(self.mnt)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_refusal(self, result, status, contains):
        """`result` of a payloadfs that was not given -f: had it mounted, it would have
        daemonized and exited 0, leaving the mount (removed here, and failed on)."""
        left_mounted = is_mounted(self.mnt)
        unmount(self.mnt)
        self.assertFalse(left_mounted, "the refusal left a mount")
        self.assertEqual(result.returncode, status, result.stderr)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(result.stderr.endswith("\n"), result.stderr)
        for text in contains:
            self.assertIn(text, lines[0])

    def refused(self, *args, status, contains=()):
        result = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)
        self.check_refusal(result, status, contains)

    def test_bad_numbers_are_command_line_errors(self):
        for option in ("cache_entries=abc", "cache_entries=-1",
                       "cache_entries=99999999999999999999", "cache_entries=4294967296",
                       "cache_entries=12abc", "cache_entries=", "cache_memory=-5",
                       "cache_memory=1.5", "read_ahead_kb=-1", "read_ahead_kb=0x800",
                       "spin_us=-1", "max_threads=-1", "max_threads=many",
                       "nest_depth=-1", "nest_depth=9", "nest_depth=two",
                       "entry_timeout=abc"):
            name = option.partition("=")[0]
            with self.subTest(option=option):
                self.refused(self.src, self.mnt, "-o", option, status=2, contains=[name])
        # The largest whole number is a value, not an error.
        with mounted(self.src, "-o", "cache_entries=4294967295") as mnt:
            self.assertEqual(stats(mnt)["payload_cache"]["max_entries"], 4294967295)

    def test_unknown_options_are_rejected_by_libfuse(self):
        for args in (("-o", "no_such_option"), ("-o", "no_such_option=1"), ("--no-such-flag",),
                     ("-o", "cache_entries")):
            with self.subTest(args=args):
                self.refused(self.src, self.mnt, *args, status=1,
                             contains=["unknown option", args[-1]])

    def test_missing_arguments(self):
        self.refused(status=2, contains=["missing SRC and MNT"])
        self.refused(self.src, status=2, contains=["missing MNT"])
        self.refused("-o", "cache_entries=5", self.src, status=2, contains=["missing MNT"])
        self.refused(self.src, self.mnt, self.tmp, status=2, contains=["unexpected argument"])

    def test_source_and_mount_point_must_be_directories(self):
        self.refused(self.tmp / "no-src", self.mnt, status=1, contains=["no-src"])
        self.refused(self.file, self.mnt, status=1, contains=["not a directory"])
        self.refused(self.src, self.tmp / "no-mnt", status=1, contains=["no-mnt"])
        self.refused(self.src, self.file, status=1, contains=["not a directory"])

    def test_formats_option_must_name_a_directory(self):
        for where in (self.file, self.tmp / "no-formats"):
            with self.subTest(formats=where):
                self.refused(self.src, self.mnt, "-o", f"formats={where}", status=1,
                             contains=[str(where), "not a directory"])

    @requirement(ROOT and shutil.which("unshare"), "needs root and unshare (util-linux)")
    def test_fuse_unavailable(self):
        """/dev/fuse replaced in a private mount namespace: by /dev/null, by an empty file, or
        gone (an empty tmpfs on /dev). The shell reports, from inside the namespace, whether a
        mount was left there."""
        script = ('{setup} || exit 99\n'
                  '"$0" "$1" "$2"\n'
                  'rc=$?\n'
                  'if grep -q " $2 " /proc/self/mountinfo; then\n'
                  '  echo "left a mount"; fusermount3 -u "$2"\n'
                  'fi\n'
                  'exit $rc\n')
        for setup, why in (("mount --bind /dev/null /dev/fuse", "not the FUSE device"),
                           (f"mount --bind '{self.file}' /dev/fuse", "not the FUSE device"),
                           ("mount -t tmpfs none /dev", "No such file or directory")):
            with self.subTest(setup=setup):
                result = subprocess.run(
                    ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     script.format(setup=setup), BIN, str(self.src), str(self.mnt)],
                    capture_output=True, text=True, stdin=subprocess.DEVNULL,
                    timeout=START_TIMEOUT)
                self.assertNotEqual(result.returncode, 99, result.stderr)
                self.check_refusal(result, 1, ["FUSE is unavailable", why])


if __name__ == "__main__":
    unittest.main()
