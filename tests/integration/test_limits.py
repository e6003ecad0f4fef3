"""Limits through a real mount: huge directories, empty and 100 GB sparse files, odd names,
the daemon's memory after many payloads, and more payloads than the daemon's fd limit.

No test asserts how long anything takes (performance belongs to scripts/bench and
docs/benchmarks.md); the subprocess timeouts below and ctest's per-module TIMEOUT only turn a
hang into a failure. Under the ASan build (PAYLOADFS_SANITIZED=1) the trees are smaller and the
RssAnon ceilings are not checked (the sanitizer's shadow memory and quarantine are anonymous
memory too), but every walk still runs.
"""
import codecs
import contextlib
import io
import json
import os
import pathlib
import resource
import shutil
import stat
import subprocess
import tarfile
import tempfile
import unittest

import numpy as np

from mounting import daemon_pid, mounted, open_fd_count, proc_status_kib

SANITIZED = os.environ.get("PAYLOADFS_SANITIZED") == "1"
HANG_GUARD = 600 if SANITIZED else 300  # seconds for one `ls -f` of 100,000 entries
# Tree sizes of the walks: smaller under ASan, where each request costs several times more.
MEMORY_WALK_PAYLOADS = 5_000 if SANITIZED else 10_000
FD_WALK_PAYLOADS = 2_000 if SANITIZED else 5_000
GiB = 1 << 30

# The daemon's anonymous memory after reading every payload of a 10,000-file tree (see
# docs/reliability.md): the payload cache holds at most 4096 entries / about 4 MiB, the inode
# table one node per name the kernel remembers (about 200 bytes each), plus glibc's per-thread
# malloc arenas (4 workers and the watcher). Measured about 13 MiB; the ceiling leaves room for arena
# fragmentation, and does not depend on payload sizes (the files here are 4 MiB each).
RSS_ANON_CEILING_KIB = 64 << 10


def escaped(name: bytes) -> str:
    """What payloadfs's JSON shows for `name`: invalid UTF-8 bytes as \\xHH, upper-case."""
    return name.decode("utf-8", "payloadfs-upper-backslashreplace")


codecs.register_error(
    "payloadfs-upper-backslashreplace",
    lambda e: ("".join(f"\\x{b:02X}" for b in e.object[e.start:e.end]), e.end))


def npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def write_file(path, data: bytes, size=None):
    """Writes `data` and extends the file to `size` with a hole (no blocks written)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if size is not None:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


def make_npy_tree(root: pathlib.Path, count: int, shape=(1024, 1024)):
    """`count` npy files in directories of 100. Each is a real numpy header followed by a
    hole of shape's data: a 4 MiB payload that costs one block on disk."""
    header = npy_header(shape)
    size = len(header) + 4 * int(np.prod(shape))
    paths = []
    for d in range((count + 99) // 100):
        sub = root / f"d{d:04d}"
        sub.mkdir()
        for i in range(min(100, count - 100 * d)):
            path = sub / f"a{i:03d}.npy"
            write_file(path, header, size)
            paths.append(path.relative_to(root))
    return paths, len(header), size


def read_all(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def pread_random(path, length, offset) -> bytes:
    """One read without readahead (a 4 MiB file must not be read whole by the kernel)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def stats(mnt):
    return json.loads(read_all(mnt / ".payloadfs" / "stats.json"))


class LimitsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-limits-"))
        self.src = self.tmp / "src"
        self.src.mkdir()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_directory_of_100000_files(self):
        count = 100_000
        many = self.src / "many"
        many.mkdir()
        names = [f"f{i:06d}" for i in range(count)]
        for name in names:
            os.close(os.open(many / name, os.O_CREAT | os.O_WRONLY, 0o644))
        with mounted(self.src) as mnt:
            listed = {}
            with os.scandir(mnt / "many") as it:
                for entry in it:
                    listed[entry.name] = entry.is_dir(follow_symlinks=False)
            self.assertEqual(len(listed), count)
            self.assertEqual(set(listed), set(names))
            self.assertTrue(all(listed.values()), "every payload is listed as a directory")

            ls = subprocess.run(["ls", "-f", mnt / "many"], capture_output=True, check=True,
                                timeout=HANG_GUARD)
            self.assertEqual(len(ls.stdout.splitlines()), count + 2)  # with . and ..

            for name in (names[0], names[count // 2], names[-1]):
                st = os.stat(mnt / "many" / name)
                self.assertTrue(stat.S_ISDIR(st.st_mode))
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o555)
                self.assertEqual(os.stat(mnt / "many" / name / "header.json").st_size,
                                 len(read_all(mnt / "many" / name / "header.json")))
            # Listing a directory does not parse its payloads: only the three stat'ed were.
            self.assertLessEqual(stats(mnt)["payloads_built"], 3)

    def test_empty_file(self):
        write_file(self.src / "empty", b"")
        with mounted(self.src) as mnt:
            p = mnt / "empty"
            self.assertTrue(p.is_dir())
            header = json.loads(read_all(p / "header.json"))
            self.assertEqual(header["size"], 0)
            self.assertEqual(header["format"], "unknown")
            self.assertEqual(header["magic"], "")
            self.assertEqual(header["header"], {})
            self.assertEqual(header["slice_count"], 0)
            self.assertNotIn("errors", header)  # empty is not malformed
            self.assertEqual(json.loads(read_all(p / "slices.json")), [])
            self.assertEqual(os.listdir(p / "raw"), [])
            self.assertEqual(os.stat(p / "magic").st_size, 0)
            self.assertEqual(read_all(p / "magic"), b"")
            # The whole (empty) file is range/0-0 and range/0+0: empty files, not ENOENT.
            for name in ("0-0", "0+0", "0x0-0x0"):
                self.assertEqual(os.stat(p / "range" / name).st_size, 0)
                self.assertEqual(read_all(p / "range" / name), b"")
            for name in ("0-1", "1+0", "1-1", "0+1"):  # not inside the file
                with self.assertRaises(FileNotFoundError, msg=name):
                    os.stat(p / "range" / name)

    def test_sparse_100_gb_file(self):
        size = 100 * GiB
        with open(self.src / "big.bin", "wb") as f:
            f.write(b"head")
            os.truncate(f.fileno(), size)
        # A 100 GB npy whose data is a hole: a slice of 100 GB.
        items = (size - 128) // 4
        header = npy_header((items,))
        write_file(self.src / "big.npy", header, len(header) + 4 * items)
        self.assertLess(os.stat(self.src / "big.bin").st_blocks * 512, 1 << 20, "not sparse")
        with mounted(self.src) as mnt:
            header_json = json.loads(read_all(mnt / "big.bin" / "header.json"))
            self.assertEqual(header_json["size"], size)
            self.assertEqual(header_json["magic"], b"head".hex())

            whole = mnt / "big.bin" / "range" / f"0-{size}"
            self.assertEqual(os.stat(whole).st_size, size)
            self.assertEqual(os.stat(mnt / "big.bin" / "range" / f"0+{size}").st_size, size)
            with self.assertRaises(FileNotFoundError):
                os.stat(mnt / "big.bin" / "range" / f"0-{size + 1}")
            self.assertEqual(pread_random(whole, 4096, 99 * GiB), bytes(4096))
            self.assertEqual(pread_random(whole, 4096, 0)[:4], b"head")
            self.assertEqual(pread_random(whole, 4096, size - 4096), bytes(4096))
            self.assertEqual(pread_random(whole, 4096, size), b"")  # end of file
            tail = mnt / "big.bin" / "range" / f"{99 * GiB}+4096"
            self.assertEqual(read_all(tail), bytes(4096))

            npy = json.loads(read_all(mnt / "big.npy" / "header.json"))
            self.assertEqual(npy["format"], "npy")
            self.assertEqual(npy["header"]["shape"], [items])
            data = mnt / "big.npy" / "raw" / "data"
            self.assertEqual(os.stat(data).st_size, 4 * items)
            self.assertEqual(pread_random(data, 4096, 99 * GiB), bytes(4096))

            if not SANITIZED:
                rss = proc_status_kib(daemon_pid(mnt), "RssAnon")
                self.assertLess(rss, 32 << 10, f"RssAnon {rss} KiB after 100 GB files")

    def test_names_with_spaces_newlines_and_invalid_utf8(self):
        src = os.fsencode(self.src)
        dir_name = b"dir with spaces\nand a newline \xff"
        npy_name = b"caf\xe9 \n.npy"
        bad_name = b"bad\xfe.npy"
        tar_name = b"t\xe9.tar"
        member = b"m\xe9mber.txt"
        os.mkdir(os.path.join(src, dir_name))
        buf = io.BytesIO()
        np.save(buf, np.arange(12, dtype="<f4").reshape(3, 4))
        npy = buf.getvalue()
        write_file(os.path.join(src, dir_name, npy_name), npy)
        write_file(os.path.join(src, dir_name, bad_name), b"\x93NUMPY\x01\x00\xff\xff" + bytes(8))
        with tarfile.open(os.path.join(src, dir_name, tar_name), "w", format=tarfile.GNU_FORMAT,
                          encoding="utf-8", errors="surrogateescape") as tar:
            info = tarfile.TarInfo(os.fsdecode(member))
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))

        with mounted(self.src) as mnt:
            m = os.fsencode(mnt)
            self.assertIn(dir_name, os.listdir(m))
            d = os.path.join(m, dir_name)
            self.assertEqual(sorted(os.listdir(d)), sorted([npy_name, bad_name, tar_name]))
            rel = dir_name + b"/" + npy_name
            header = json.loads(read_all(os.path.join(d, npy_name, b"header.json")))
            self.assertEqual(header["path"], escaped(rel))
            self.assertEqual(header["path"], "dir with spaces\nand a newline \\xFF/caf\\xE9 \n.npy")
            self.assertEqual(header["format"], "npy")
            self.assertEqual(read_all(os.path.join(d, npy_name, b"raw", b"data")), npy[128:])
            self.assertEqual(os.getxattr(os.path.join(d, npy_name, b"raw", b"data"),
                                         "user.payloadfs.source"), escaped(rel).encode())

            # Slice names from file contents: the tar member's name.
            slices = json.loads(read_all(os.path.join(d, tar_name, b"slices.json")))
            self.assertEqual([s["name"] for s in slices], [escaped(member)])
            self.assertEqual(slices[0]["path"], "raw/" + escaped(member))
            self.assertEqual(os.listdir(os.path.join(d, tar_name, b"raw")), [member])
            self.assertEqual(read_all(os.path.join(d, tar_name, b"raw", member)), b"hello")

            bad = json.loads(read_all(os.path.join(d, bad_name, b"header.json")))
            self.assertEqual(bad["path"], escaped(dir_name + b"/" + bad_name))
            self.assertTrue(bad["errors"])
            # The control file's paths use the same escape.
            errors_json = mnt / ".payloadfs" / "errors.json"
            listed = [p["path"] for p in json.loads(read_all(errors_json))["payloads"]]
            self.assertIn(escaped(dir_name + b"/" + bad_name), listed)

    def walk(self, mnt, paths, size, on_each=None):
        """Reads every payload's header.json and 4 KiB of its raw slice; returns the count."""
        done = 0
        for i, rel in enumerate(paths):
            p = mnt / rel
            header = json.loads(read_all(p / "header.json"))
            self.assertEqual((header["format"], header["size"]), ("npy", size), str(rel))
            self.assertNotIn("errors", header)
            # The first page: a 4 KiB read further in would make the daemon's mapping fault
            # in the source device's read-around window (8 MiB on virtio disks) of zeros.
            self.assertEqual(pread_random(p / "raw" / "data", 4096, 0), bytes(4096))
            done += 1
            if on_each:
                on_each(i)
        return done

    def test_daemon_memory_after_10000_payloads(self):
        paths, _, size = make_npy_tree(self.src, MEMORY_WALK_PAYLOADS)
        with mounted(self.src) as mnt:
            pid = daemon_pid(mnt)
            self.assertEqual(self.walk(mnt, paths, size), MEMORY_WALK_PAYLOADS)
            counters = stats(mnt)
            self.assertGreaterEqual(counters["payloads_built"], MEMORY_WALK_PAYLOADS)
            self.assertGreater(counters["payload_cache_evictions"], 0)  # the bound was hit
            if not SANITIZED:
                rss = proc_status_kib(pid, "RssAnon")
                self.assertLess(rss, RSS_ANON_CEILING_KIB,
                                f"RssAnon {rss} KiB after 10,000 payloads of {size} bytes")

    FD_LIMIT = 256

    @contextlib.contextmanager
    def mounted_with_low_fd_limit(self):
        """Mounts SRC with the daemon started under RLIMIT_NOFILE = FD_LIMIT (soft and hard);
        yields the mount point and the daemon's pid."""
        limit = self.FD_LIMIT

        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with mounted(self.src, preexec_fn=low_fd_limit) as mnt:
            pid = daemon_pid(mnt)
            with open(f"/proc/{pid}/limits") as f:
                line = next(l for l in f if l.startswith("Max open files"))
            self.assertEqual(line.split()[3:5], [str(limit), str(limit)])
            yield mnt, pid

    def test_more_payloads_than_the_fd_limit(self):
        paths, _, size = make_npy_tree(self.src, FD_WALK_PAYLOADS)
        with self.mounted_with_low_fd_limit() as (mnt, pid):
            peak = open_fd_count(pid)

            def sample(i):
                nonlocal peak
                if i % 50 == 0:
                    peak = max(peak, open_fd_count(pid))

            self.assertEqual(self.walk(mnt, paths, size, sample), FD_WALK_PAYLOADS)
            self.assertLess(peak, self.FD_LIMIT // 2, f"the daemon had {peak} descriptors open")
            self.assertEqual(stats(mnt)["errors"], 0)

    def test_more_open_files_than_the_daemon_fd_limit(self):
        """A reader holding more files open than the daemon may have descriptors: every open
        succeeds and reads, and the rest of the mount keeps working meanwhile."""
        paths, _, size = make_npy_tree(self.src, 3 * self.FD_LIMIT)
        with self.mounted_with_low_fd_limit() as (mnt, pid):
            held = []
            try:
                for rel in paths[:2 * self.FD_LIMIT]:
                    held.append(os.open(mnt / rel / "raw" / "data", os.O_RDONLY))
                peak = open_fd_count(pid)
                for fd in held:
                    self.assertEqual(os.pread(fd, 16, 0), bytes(16))
                # Payloads nobody holds are still served.
                for rel in paths[2 * self.FD_LIMIT:]:
                    self.assertEqual(json.loads(read_all(mnt / rel / "header.json"))["format"],
                                     "npy")
                parent = paths[-1].parent
                self.assertEqual(sorted(os.listdir(mnt / parent)),
                                 sorted(os.listdir(self.src / parent)))
            finally:
                for fd in held:
                    os.close(fd)
            self.assertLess(peak, self.FD_LIMIT, f"the daemon had {peak} descriptors open")

if __name__ == "__main__":
    unittest.main()
