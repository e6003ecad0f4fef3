"""Symbolic links in SRC: shown as links only when they lead to something shown inside SRC."""
import errno
import os
import pathlib
import shutil
import tempfile
import unittest

from mounting import FIXTURES, mounted


class SymlinkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        npy = FIXTURES / "numpy" / "f4_2d.npy"
        if not npy.exists():
            raise RuntimeError("fixtures missing: run tests/fixtures/generate.py first (ctest does)")
        cls.npy_bytes = npy.read_bytes()
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-links-"))
        cls.src = cls.tmp / "src"
        data = cls.src / "data" / "deep"
        data.mkdir(parents=True)
        (data / "a.npy").write_bytes(cls.npy_bytes)
        (cls.tmp / "outside.npy").write_bytes(cls.npy_bytes)
        (cls.src / "sub").mkdir()
        links = {
            # Inside SRC: shown, with a target relative to the link's directory.
            "rel_file": "data/deep/a.npy",
            "abs_file": str(cls.src / "data" / "deep" / "a.npy"),
            "rel_dir": "data",
            "dot_dot_inside": "sub/../data/deep/a.npy",
            "chain": "rel_file",
            "sub/up_file": "../data/deep/a.npy",
            "sub/to_root": "..",
            # Outside SRC, dangling or looping: hidden.
            "to_etc": "/etc",
            "to_passwd": "/etc/passwd",
            "escape_rel": "../outside.npy",
            "escape_via_dots": "data/../../outside.npy",
            "escape_abs": str(cls.tmp / "outside.npy"),
            "dangling": "data/missing.npy",
            "loop_a": "loop_b",
            "loop_b": "loop_a",
            "sub/escape_up": "../../outside.npy",
        }
        for name, target in links.items():
            os.symlink(target, cls.src / name)
        # A link into SRC through a link that itself leads outside: hidden.
        os.symlink("/etc", cls.src / "etc_dir")
        os.symlink("etc_dir/hostname", cls.src / "via_etc")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_links_inside_src_are_shown_with_targets_inside_the_mount(self):
        with mounted(self.src) as mnt:
            expected = {
                "rel_file": "data/deep/a.npy",
                "abs_file": "data/deep/a.npy",
                "rel_dir": "data",
                "dot_dot_inside": "data/deep/a.npy",
                "chain": "data/deep/a.npy",
                "sub/up_file": "../data/deep/a.npy",
                "sub/to_root": "..",
            }
            for name, target in expected.items():
                with self.subTest(link=name):
                    self.assertTrue(os.path.islink(mnt / name))
                    self.assertEqual(os.readlink(mnt / name), target)
                    self.assertEqual(os.lstat(mnt / name).st_size, len(target))
                    self.assertTrue(os.path.realpath(mnt / name).startswith(str(mnt)))
            # Following a link reaches the payload directory of its target.
            self.assertEqual((mnt / "rel_file" / "magic").read_bytes(), self.npy_bytes[:6])
            self.assertEqual((mnt / "sub" / "up_file" / "magic").read_bytes(), self.npy_bytes[:6])
            self.assertTrue((mnt / "rel_dir" / "deep" / "a.npy" / "header.json").is_file())
            self.assertTrue((mnt / "sub" / "to_root" / "data").is_dir())

    def test_links_leading_outside_src_are_hidden(self):
        with mounted(self.src) as mnt:
            top = set(os.listdir(mnt))
            sub = set(os.listdir(mnt / "sub"))
            for name in ("to_etc", "to_passwd", "escape_rel", "escape_via_dots", "escape_abs",
                         "dangling", "loop_a", "loop_b", "etc_dir", "via_etc"):
                with self.subTest(link=name):
                    self.assertNotIn(name, top)
                    self.assertFalse(os.path.lexists(mnt / name))
                    with self.assertRaises(FileNotFoundError):
                        os.lstat(mnt / name)
            self.assertNotIn("escape_up", sub)
            self.assertFalse(os.path.lexists(mnt / "sub" / "escape_up"))
            for name in ("rel_file", "abs_file", "rel_dir", "chain", "dot_dot_inside"):
                self.assertIn(name, top)
            self.assertEqual(sub, {"up_file", "to_root"})

    def test_listing_reports_link_types(self):
        with mounted(self.src) as mnt:
            with os.scandir(mnt) as entries:
                kinds = {e.name: e.is_symlink() for e in entries}
            self.assertTrue(kinds["rel_file"])
            self.assertFalse(kinds["data"])

    def test_links_are_read_only(self):
        with mounted(self.src) as mnt:
            with self.assertRaises(OSError) as ctx:
                os.symlink("data", mnt / "new_link")
            self.assertEqual(ctx.exception.errno, errno.EROFS)
            with self.assertRaises(OSError) as ctx:
                os.unlink(mnt / "rel_file")
            self.assertEqual(ctx.exception.errno, errno.EROFS)

    def test_a_link_retargeted_outside_src_disappears(self):
        src = self.tmp / "changing"
        (src / "d").mkdir(parents=True)
        (src / "d" / "x.npy").write_bytes(self.npy_bytes)
        os.symlink("d/x.npy", src / "moving")
        try:
            with mounted(src, "-o", "inotify=0,entry_timeout=0,attr_timeout=0") as mnt:
                self.assertEqual(os.readlink(mnt / "moving"), "d/x.npy")
                os.unlink(src / "moving")
                os.symlink("/etc/passwd", src / "moving")
                self.assertFalse(os.path.lexists(mnt / "moving"))
        finally:
            shutil.rmtree(src, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
