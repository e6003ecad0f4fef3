"""payloadfs through a real mount, read with the tools users use: ls, stat, cat, dd, python."""
import errno
import json
import os
import pathlib
import shutil
import signal
import stat
import struct
import tempfile
import unittest

from mounting import (BIN, FIXTURES, PYTHON, ForegroundDaemon, is_mounted, is_serving, mounted,
                      mounted_in_background, run, tree_digest, unmount, wait_until)


def build_source(root: pathlib.Path):
    """A SRC tree: real numpy and safetensors files in nested dirs, odd names, malformed files."""
    (root / "models" / "deep" / "er").mkdir(parents=True)
    (root / "arrays").mkdir()
    for npy in sorted((FIXTURES / "numpy").glob("*.npy")):
        shutil.copy(npy, root / "arrays" / npy.name)
    for st in sorted((FIXTURES / "safetensors").glob("*.safetensors")):
        shutil.copy(st, root / "models" / st.name)
    shutil.copy(FIXTURES / "numpy" / "f4_2d.npy", root / "models" / "deep" / "er" / "nested.npy")
    shutil.copy(FIXTURES / "numpy" / "f4_2d.npy", root / "name with spaces.npy")
    (root / "random.bin").write_bytes(bytes(range(256)) * 64)
    (root / "empty").write_bytes(b"")
    (root / "tiny").write_bytes(b"ab")
    bad = root / "malformed"
    bad.mkdir()
    good_npy = (FIXTURES / "numpy" / "f4_2d.npy").read_bytes()
    (bad / "truncated.npy").write_bytes(good_npy[:-5])
    (bad / "zero.npy").write_bytes(b"")
    (bad / "past_eof.safetensors").write_bytes(struct.pack("<Q", 10_000) + b'{"a":1}')
    (bad / "not_json.safetensors").write_bytes(struct.pack("<Q", 6) + b"{oops}" + b"\0" * 8)
    (bad / "garbage.npy").write_bytes(b"\x93NUMPY\x01\x00\xff\xff" + os.urandom(64))
    (root / "link_out").symlink_to("/etc")
    (root / "fifo").exists() or os.mkfifo(root / "fifo")


class MountTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (FIXTURES / "numpy" / "expected.json").exists():
            raise RuntimeError("fixtures missing: run tests/fixtures/generate.py first (ctest does)")
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-src-"))
        cls.src = cls.tmp / "src"
        cls.src.mkdir()
        build_source(cls.src)
        cls.numpy_expected = json.loads((FIXTURES / "numpy" / "expected.json").read_text())
        cls.st_expected = json.loads((FIXTURES / "safetensors" / "expected.json").read_text())
        cls.digest_before = tree_digest(cls.src)

    @classmethod
    def tearDownClass(cls):
        try:
            assert tree_digest(cls.src) == cls.digest_before, "SRC was modified"
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_layout_and_listing(self):
        with mounted(self.src) as mnt:
            top = sorted(os.listdir(mnt))
            self.assertEqual(top, sorted(["arrays", "models", "name with spaces.npy", "random.bin",
                                          "empty", "tiny", "malformed"]))  # no link, no FIFO
            self.assertNotIn(".payloadfs", top)
            self.assertTrue(os.path.isdir(mnt / ".payloadfs"))
            self.assertEqual(sorted(os.listdir(mnt / "arrays" / "f4_2d.npy")),
                             ["header.json", "magic", "raw", "refs.json", "slices.json"])
            ls = run("ls", "-la", mnt / "models" / "deep" / "er" / "nested.npy" / "raw").stdout.decode()
            self.assertIn("data", ls)
            self.assertFalse(os.path.exists(mnt / "link_out"))
            self.assertFalse(os.path.exists(mnt / "fifo"))
            self.assertFalse(os.path.exists(mnt / "arrays" / "f4_2d.npy" / "nope"))

    def test_stat_sizes_modes_times(self):
        with mounted(self.src) as mnt:
            src_file = self.src / "arrays" / "f4_2d.npy"
            payload = mnt / "arrays" / "f4_2d.npy"
            st_src = os.stat(src_file)
            st_dir = os.stat(payload)
            self.assertTrue(stat.S_ISDIR(st_dir.st_mode))
            self.assertEqual(stat.S_IMODE(st_dir.st_mode), 0o555)
            self.assertEqual(st_dir.st_mtime_ns, st_src.st_mtime_ns)
            for entry in ["header.json", "slices.json", "magic", "raw/data"]:
                path = payload / entry
                st = os.stat(path)
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o444, entry)
                self.assertEqual(st.st_mtime_ns, st_src.st_mtime_ns, entry)
                self.assertEqual(st.st_size, len(path.read_bytes()), entry)
                out = run("stat", "-c", "%s", path).stdout.decode().strip()
                self.assertEqual(int(out), st.st_size)
            # A file readable by its owner only stays that way.
            private = self.src / "private.npy"
            shutil.copy(src_file, private)
            os.chmod(private, 0o600)
            try:
                mode = stat.S_IMODE(os.stat(mnt / "private.npy" / "raw" / "data").st_mode)
                self.assertEqual(mode, 0o400)
                self.assertEqual(stat.S_IMODE(os.stat(mnt / "private.npy").st_mode), 0o500)
            finally:
                private.unlink()
            self.digest_before_ok = True

    def test_inode_numbers_are_stable(self):
        with mounted(self.src) as mnt:
            paths = [mnt / "arrays", mnt / "arrays" / "f4_2d.npy", mnt / "arrays" / "f4_2d.npy" / "raw" / "data",
                     mnt / "random.bin" / "range" / "0-10"]
            first = [os.stat(p).st_ino for p in paths]
            self.assertEqual(len(set(first)), len(first))
            pathlib.Path("/proc/sys/vm/drop_caches").write_text("2")  # kernel forgets its inodes
            self.assertEqual([os.stat(p).st_ino for p in paths], first)
            self.assertEqual(os.stat(mnt).st_ino, 1)

    def test_npy_bytes_and_header_match_numpy(self):
        with mounted(self.src) as mnt:
            for name, want in self.numpy_expected.items():
                with self.subTest(name=name):
                    payload = mnt / "arrays" / f"{name}.npy"
                    header = json.loads((payload / "header.json").read_text())
                    self.assertEqual(header["format"], "npy")
                    self.assertEqual(header["path"], f"arrays/{name}.npy")
                    self.assertNotIn("errors", header)
                    for key in ("version", "descr", "shape", "fortran_order"):
                        self.assertEqual(header["header"][key], want[key], key)
                    expected = (FIXTURES / "numpy" / f"{name}.data").read_bytes()
                    self.assertEqual(run("cat", payload / "raw" / "data").stdout, expected)
                    self.assertEqual((payload / "magic").read_bytes(), b"\x93NUMPY")
                    slices = json.loads((payload / "slices.json").read_text())
                    self.assertEqual(slices[0]["offset"], want["data_offset"])
                    self.assertEqual(slices[0]["length"], want["length"])

    def test_numpy_memmap_through_the_mount(self):
        script = """
import json, sys, numpy as np
mnt, src = sys.argv[1], sys.argv[2]
for name in ["f4_2d", "i8_3d", "structured", "fortran", "f8_big_endian", "version3_utf8_fields"]:
    h = json.load(open(f"{mnt}/arrays/{name}.npy/header.json"))["header"]
    descr = h["descr"]
    dtype = np.dtype([tuple(f) for f in descr] if isinstance(descr, list) else descr)
    order = "F" if h["fortran_order"] else "C"
    m = np.memmap(f"{mnt}/arrays/{name}.npy/raw/data", dtype=dtype, mode="r", shape=tuple(h["shape"]), order=order)
    ref = np.load(f"{src}/arrays/{name}.npy")
    assert m.dtype == ref.dtype and m.shape == ref.shape, name
    assert (m == ref).all(), name
st = json.load(open(f"{mnt}/models/all_dtypes.safetensors/slices.json"))
w = [s for s in st if s["name"] == "model/layers.0/weight"][0]
m = np.memmap(f"{mnt}/models/all_dtypes.safetensors/raw/model/layers.0/weight", dtype="<f4", mode="r", shape=tuple(w["shape"]))
raw = open(f"{src}/models/all_dtypes.safetensors", "rb").read()[w["offset"]:w["offset"] + w["length"]]
assert m.tobytes() == raw
print("ok")
"""
        with mounted(self.src) as mnt:
            out = run(PYTHON, "-c", script, mnt, self.src).stdout.decode()
            self.assertEqual(out.strip(), "ok")

    def test_safetensors_tensors(self):
        with mounted(self.src) as mnt:
            for file, tensors in self.st_expected["tensors"].items():
                payload = mnt / "models" / f"{file}.safetensors"
                header = json.loads((payload / "header.json").read_text())
                self.assertEqual(header["format"], "safetensors")
                self.assertNotIn("errors", header)
                self.assertEqual(header["header"]["__metadata__"], self.st_expected["metadata"][file])
                self.assertEqual(header["header"]["tensor_count"], len(tensors))
                self.assertEqual(header["slice_count"], len(tensors))
                raw = (self.src / "models" / f"{file}.safetensors").read_bytes()
                self.assertEqual((payload / "magic").read_bytes(), raw[:4])
                slices = {s["name"]: s for s in json.loads((payload / "slices.json").read_text())}
                self.assertEqual(set(slices), set(tensors))
                for name, want in tensors.items():
                    got = slices[name]
                    for key in ("dtype", "shape", "data_offsets", "offset", "length"):
                        self.assertEqual(got[key], want[key], (file, name, key))
                    data = (payload / got["path"]).read_bytes()
                    self.assertEqual(data.hex(), want["bytes_hex"], (file, name))

    def test_range_files(self):
        with mounted(self.src) as mnt:
            raw = (self.src / "random.bin").read_bytes()
            rng = mnt / "random.bin" / "range"
            self.assertEqual((rng / "4096+512").read_bytes(), raw[4096:4608])
            self.assertEqual((rng / "0x10-0x20").read_bytes(), raw[16:32])
            self.assertEqual((rng / f"0-{len(raw)}").read_bytes(), raw)
            self.assertEqual((rng / "7-7").read_bytes(), b"")
            dd = run("dd", f"if={rng / '4096+512'}", "bs=512", "count=1", "status=none").stdout
            self.assertEqual(dd, raw[4096:4608])
            for bad in [f"0-{len(raw) + 1}", "10-5", "abc", "1-2-3", f"{len(raw) + 1}+0", "-1"]:
                self.assertFalse(os.path.exists(rng / bad), bad)
            self.assertNotIn("range", os.listdir(mnt / "random.bin"))
            self.assertEqual(os.listdir(rng), [])
            self.assertEqual((mnt / "random.bin" / "magic").read_bytes(), raw[:4])
            header = json.loads((mnt / "random.bin" / "header.json").read_text())
            self.assertEqual(header["format"], "unknown")
            self.assertEqual(header["magic"], raw[:4].hex())
            self.assertEqual(header["slice_count"], 0)
            self.assertEqual(os.listdir(mnt / "random.bin" / "raw"), [])
            self.assertEqual((mnt / "tiny" / "magic").read_bytes(), b"ab")
            self.assertEqual((mnt / "empty" / "magic").read_bytes(), b"")

    def test_malformed_files_keep_the_mount_alive(self):
        with mounted(self.src) as mnt:
            bad = mnt / "malformed"
            # A zero-byte file matches no signature: it is an (empty) unknown file, not a
            # malformed one.
            zero = json.loads((bad / "zero.npy" / "header.json").read_text())
            self.assertEqual((zero["format"], zero["size"], zero["magic"]), ("unknown", 0, ""))
            self.assertNotIn("errors", zero)
            for name in os.listdir(self.src / "malformed"):
                if name == "zero.npy":
                    continue
                with self.subTest(name=name):
                    header = json.loads((bad / name / "header.json").read_text())
                    self.assertIn("errors", header)
                    self.assertTrue(all(isinstance(e, str) and e for e in header["errors"]))
                    raw = (self.src / "malformed" / name).read_bytes()
                    self.assertEqual((bad / name / "range" / f"0+{len(raw)}").read_bytes(), raw)
                    # npy's signature; safetensors has none: its first 4 bytes (docs/layout.md).
                    signature = b"\x93NUMPY" if name.endswith(".npy") else raw[:4]
                    self.assertEqual(header["format"], name.rpartition(".")[2])
                    self.assertEqual((bad / name / "magic").read_bytes(), signature)
                    self.assertEqual(header["magic"], signature.hex())
            past = json.loads((bad / "past_eof.safetensors" / "header.json").read_text())
            self.assertEqual(past["format"], "safetensors")
            self.assertIn("runs past the end", past["errors"][0])
            # Still serving after all of that.
            self.assertTrue((mnt / "arrays" / "f4_2d.npy" / "raw" / "data").read_bytes())

    def test_everything_is_read_only(self):
        with mounted(self.src) as mnt:
            payload = mnt / "arrays" / "f4_2d.npy"
            attempts = [
                lambda: open(payload / "header.json", "w"),
                lambda: open(payload / "raw" / "data", "r+b"),
                lambda: open(mnt / "new_file", "w"),
                lambda: os.mkdir(mnt / "newdir"),
                lambda: os.rmdir(mnt / "arrays"),
                lambda: os.unlink(payload / "magic"),
                lambda: os.rename(mnt / "tiny", mnt / "tiny2"),
                lambda: os.chmod(payload / "magic", 0o777),
                lambda: os.utime(payload / "magic"),
                lambda: os.truncate(payload / "raw" / "data", 0),
                lambda: os.symlink("x", mnt / "lnk"),
                lambda: os.link(payload / "magic", mnt / "hard"),
                lambda: os.setxattr(payload / "magic", "user.x", b"1"),
            ]
            for i, attempt in enumerate(attempts):
                with self.assertRaises(OSError, msg=str(i)) as ctx:
                    attempt()
                self.assertEqual(ctx.exception.errno, errno.EROFS, f"attempt {i}: {ctx.exception}")
            self.assertNotEqual(run("touch", payload / "magic", check=False).returncode, 0)

    def test_extended_attributes_give_provenance(self):
        with mounted(self.src) as mnt:
            data = mnt / "arrays" / "f4_2d.npy" / "raw" / "data"
            names = sorted(os.listxattr(data))
            self.assertEqual(names, sorted(f"user.payloadfs.{k}" for k in
                                           ("source", "format", "offset", "length", "dtype", "shape",
                                            "fortran_order")))
            want = self.numpy_expected["f4_2d"]
            self.assertEqual(os.getxattr(data, "user.payloadfs.offset"), str(want["data_offset"]).encode())
            self.assertEqual(os.getxattr(data, "user.payloadfs.length"), str(want["length"]).encode())
            self.assertEqual(os.getxattr(data, "user.payloadfs.source"), b"arrays/f4_2d.npy")
            self.assertEqual(os.getxattr(data, "user.payloadfs.dtype"), b"<f4")
            self.assertEqual(json.loads(os.getxattr(data, "user.payloadfs.shape")), [3, 4])
            self.assertEqual(os.getxattr(mnt / "arrays" / "f4_2d.npy", "user.payloadfs.format"), b"npy")
            rng = mnt / "random.bin" / "range" / "16+32"
            self.assertEqual(os.getxattr(rng, "user.payloadfs.offset"), b"16")
            self.assertEqual(os.getxattr(rng, "user.payloadfs.length"), b"32")
            getfattr = run("getfattr", "-d", data).stdout.decode()
            self.assertIn('user.payloadfs.dtype="<f4"', getfattr)
            with self.assertRaises(OSError) as ctx:
                os.getxattr(data, "user.payloadfs.nope")
            self.assertEqual(ctx.exception.errno, errno.ENODATA)
            self.assertEqual(os.listxattr(mnt / "arrays"), [])

    def test_control_directory(self):
        with mounted(self.src) as mnt:
            control = mnt / ".payloadfs"
            self.assertEqual(sorted(os.listdir(control)),
                             ["errors.json", "formats.json", "stats.json", "version"])
            self.assertTrue((control / "version").read_text().startswith("payloadfs "))
            formats = [f["name"] for f in json.loads((control / "formats.json").read_text())]
            self.assertIn("npy", formats)
            self.assertIn("safetensors", formats)
            self.assertEqual(formats[-1], "unknown")
            (mnt / "arrays" / "f4_2d.npy" / "raw" / "data").read_bytes()
            stats = json.loads((control / "stats.json").read_text())
            for key in ("lookups", "opens", "reads", "bytes_served", "errors", "payloads_mapped"):
                self.assertIsInstance(stats[key], int, key)
            self.assertGreater(stats["bytes_served"], 0)
            for name in ("version", "formats.json", "stats.json"):
                st = os.stat(control / name)
                self.assertTrue(0 < st.st_size < 1 << 20, name)  # finite
            self.assertNotIn(".payloadfs", run("find", mnt, "-maxdepth", "1").stdout.decode())

    def test_source_entry_named_like_the_control_dir_is_hidden(self):
        src = self.tmp / "shadow"
        (src / ".payloadfs").mkdir(parents=True)
        (src / ".payloadfs" / "secret").write_bytes(b"x")
        try:
            with mounted(src) as mnt:
                self.assertEqual(os.listdir(mnt), [])
                self.assertIn("version", os.listdir(mnt / ".payloadfs"))
        finally:
            shutil.rmtree(src)

    def test_changed_sources_show_new_versions(self):
        src = self.tmp / "changing"
        src.mkdir()
        f = src / "f.bin"
        f.write_bytes(b"A" * 100)
        try:
            with mounted(src, "-o", "attr_timeout=0,entry_timeout=0,negative_timeout=0") as mnt:
                with open(mnt / "f.bin" / "range" / "0-100", "rb") as held:
                    self.assertEqual(json.loads((mnt / "f.bin" / "header.json").read_text())["size"], 100)
                    f.write_bytes(b"B" * 50)
                    os.utime(f, ns=(1, 1_000_000_000))
                    self.assertEqual(json.loads((mnt / "f.bin" / "header.json").read_text())["size"], 50)
                    self.assertEqual((mnt / "f.bin" / "range" / "0-50").read_bytes(), b"B" * 50)
                    self.assertFalse(os.path.exists(mnt / "f.bin" / "range" / "0-100"))
                    # The handle opened before the change keeps its version's bounds, never
                    # serving stale bytes: with no attribute cache the kernel revalidates the
                    # node before the read, and a range the new version lacks is ESTALE
                    # (docs/layout.md, "Caching and change").
                    with self.assertRaises(OSError) as ctx:
                        held.read()
                    self.assertEqual(ctx.exception.errno, errno.ESTALE, ctx.exception)
                (src / "new.bin").write_bytes(b"new")
                self.assertIn("new.bin", os.listdir(mnt))
                f.unlink()
                self.assertNotIn("f.bin", os.listdir(mnt))
        finally:
            shutil.rmtree(src)

    def test_watched_sources_update_despite_long_timeouts(self):
        """Default timeouts are long where SRC is watched: inotify must invalidate what changed."""
        src = self.tmp / "watched"
        (src / "sub").mkdir(parents=True)
        f = src / "sub" / "f.bin"
        f.write_bytes(b"A" * 100)
        try:
            with mounted(src) as mnt:
                header = mnt / "sub" / "f.bin" / "header.json"
                size = lambda: json.loads(header.read_text())["size"]
                self.assertEqual(size(), 100)
                self.assertEqual(os.stat(header).st_size, len(header.read_bytes()))
                self.assertFalse(os.path.exists(mnt / "sub" / "new.bin"))  # cached as missing
                f.write_bytes(b"B" * 7)
                wait_until(lambda: size() == 7, timeout=10, what="header.json to show the new size")
                # The kernel's cached size follows within the invalidation's latency.
                wait_until(lambda: os.stat(header).st_size == len(header.read_bytes()), timeout=10,
                           what="header.json's size to follow its text")
                self.assertEqual((mnt / "sub" / "f.bin" / "range" / "0-7").read_bytes(), b"B" * 7)
                (src / "sub" / "new.bin").write_bytes(b"new")
                wait_until(lambda: os.path.exists(mnt / "sub" / "new.bin"), timeout=10, what="new file")
                self.assertIn("new.bin", os.listdir(mnt / "sub"))
                f.unlink()
                wait_until(lambda: not os.path.exists(mnt / "sub" / "f.bin"), timeout=10, what="removal")
                self.assertNotIn("f.bin", os.listdir(mnt / "sub"))
                os.rename(src / "sub" / "new.bin", src / "sub" / "renamed.bin")
                # Invalidation is asynchronous (milliseconds): wait for both sides of the rename.
                wait_until(lambda: os.path.exists(mnt / "sub" / "renamed.bin"), timeout=10, what="rename")
                wait_until(lambda: not os.path.exists(mnt / "sub" / "new.bin"), timeout=10, what="old name")
        finally:
            shutil.rmtree(src)

    def test_spinning_loop_serves_the_same_tree(self):
        def listing(mnt):
            digest = tree_digest(mnt)
            return {os.path.relpath(path, mnt): value for path, value in digest.items()}

        with mounted(self.src) as mnt:
            expected = listing(mnt)
        self.assertGreater(len(expected), 50)
        for options in (["-o", "spin_us=200"], ["-o", "spin_us=200", "-s"]):
            with mounted(self.src, *options) as mnt:
                self.assertEqual(listing(mnt), expected, options)
                # raw/ bytes through the spinning loop, many requests back to back
                data = mnt / "arrays" / "f4_2d.npy" / "raw" / "data"
                with open(data, "rb") as f:
                    chunks = [f.read(7) for _ in range(10)]
                self.assertEqual(b"".join(chunks), data.read_bytes()[:70])

    def test_inspect_without_mounting(self):
        """--inspect against numpy's own reading of the header (the reference), and against
        the mount (a consistency check: both are payloadfs's code)."""
        path = self.src / "arrays" / "structured.npy"
        out = json.loads(run(BIN, "--inspect", path).stdout)
        self.assertEqual(out["format"], "npy")
        want = self.numpy_expected["structured"]
        for key in ("version", "descr", "shape", "fortran_order"):
            self.assertEqual(out["header"][key], want[key], key)
        with mounted(self.src) as mnt:
            via_mount = json.loads((mnt / "arrays" / "structured.npy" / "header.json").read_text())
        self.assertEqual(out["header"], via_mount["header"])
        slices = json.loads(run(BIN, "--inspect", path, "--slices").stdout)
        self.assertEqual(len(slices), 1)
        self.assertEqual((slices[0]["name"], slices[0]["offset"], slices[0]["length"]),
                         ("data", want["data_offset"], want["length"]))
        self.assertNotEqual(run(BIN, "--inspect", self.tmp / "missing", check=False).returncode, 0)

    def test_no_descriptor_is_loaded_by_default(self):
        """The tests' daemons see only the built-in formats: HOME is isolated (mounting.py)."""
        with mounted(self.src) as mnt:
            formats = json.loads((mnt / ".payloadfs" / "formats.json").read_text())
        self.assertEqual({f["source"] for f in formats}, {"built-in"}, formats)


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-life-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        (self.src / "x.bin").write_bytes(b"hello")
        self.mnt = self.tmp / "mnt"
        self.mnt.mkdir()
        self.log = self.tmp / "daemon.log"
        self.daemons = []

    def tearDown(self):
        unmount(self.mnt)
        for daemon in self.daemons:
            daemon.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def foreground(self, *options):
        daemon = ForegroundDaemon(self.src, self.mnt, *options, log_path=self.log)
        self.daemons.append(daemon)
        daemon.wait_serving()
        return daemon

    def check_usage_error(self, *args, contains):
        result = run(BIN, *args, check=False)
        self.assertNotEqual(result.returncode, 0)
        err = result.stderr.decode()
        self.assertIn(contains, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_command_line_errors(self):
        self.check_usage_error(contains="missing SRC and MNT")
        self.check_usage_error(self.src, contains="missing MNT")
        self.check_usage_error(self.tmp / "nope", self.mnt, contains="nope")
        self.check_usage_error(self.src / "x.bin", self.mnt, contains="not a directory")
        self.check_usage_error(self.src, self.tmp / "nomnt", contains="nomnt")
        self.check_usage_error(self.src, self.mnt, "extra", contains="unexpected argument")
        self.check_usage_error(self.src, self.mnt, "-o", "attr_timeout=-1", contains="negative")
        self.assertEqual(run(BIN, "--version").returncode, 0)
        self.assertIn(b"usage", run(BIN, "--help").stdout)

    def test_unmount_and_relaunch_in_the_background(self):
        """The daemonizing start users use: returns once the mount serves; after fusermount3
        -u the daemonized process exits with status 0 (mounted_in_background checks)."""
        for _ in range(2):
            with mounted_in_background(self.src, mnt=self.mnt) as (mnt, pid):
                self.assertTrue(is_mounted(mnt))
                self.assertNotEqual(pid, os.getpid())
                self.assertEqual((mnt / "x.bin" / "range" / "0-5").read_bytes(), b"hello")
            self.assertFalse(is_mounted(self.mnt))
            self.assertFalse(os.path.exists(f"/proc/{pid}"), "the daemon outlived its mount")

    def test_signals_unmount_cleanly(self):
        for sig, options in ((signal.SIGTERM, []), (signal.SIGINT, []),
                             (signal.SIGTERM, ["-o", "spin_us=100"])):
            with self.subTest(signal=sig.name, options=options):
                daemon = self.foreground(*options)
                self.assertEqual((self.mnt / "x.bin" / "magic").read_bytes(), b"hell")
                daemon.proc.send_signal(sig)
                daemon.check_exit(context=f"after {sig.name}")
                self.assertFalse(is_mounted(self.mnt))

    def test_spinning_loop_ends_on_unmount(self):
        daemon = self.foreground("-o", "spin_us=100")
        self.assertEqual((self.mnt / "x.bin" / "magic").read_bytes(), b"hell")
        run("fusermount3", "-u", self.mnt)
        daemon.check_exit(context="after fusermount3 -u")

    def test_sigkill_leaves_a_mount_that_can_be_cleared(self):
        daemon = self.foreground()
        daemon.kill()
        self.assertEqual(daemon.proc.returncode, -signal.SIGKILL)
        self.assertTrue(is_mounted(self.mnt))  # a dead mount: still in the mount table,
        self.assertFalse(is_serving(self.mnt))  # but nobody answers
        result = run(BIN, self.src, self.mnt, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("fusermount3 -u", result.stderr.decode())
        run("fusermount3", "-u", self.mnt)
        with mounted_in_background(self.src, mnt=self.mnt) as (mnt, _):
            self.assertEqual((mnt / "x.bin" / "magic").read_bytes(), b"hell")


if __name__ == "__main__":
    unittest.main()
