"""Permissions through a mount with allow_other, checked as a second user (nobody).

Virtual entries carry the source file's owner and its read bits (files r, directories r-x),
and the kernel enforces them (default_permissions): what nobody cannot read in SRC, nobody
cannot read through the mount either. Needs root (to mount with allow_other for others and
to switch user); skipped otherwise, and failed in CI (env CI set).
"""
import errno
import io
import json
import os
import pathlib
import shutil
import stat
import subprocess
import tempfile
import unittest

import numpy

from mounting import PYTHON, mounted, requirement

NOBODY_UID = NOBODY_GID = 65534

# Run as nobody: tries each path (open + read whole, or stat) and prints one JSON list of
# [errno or 0, bytes read] per path.
PROBE = r"""
import json, os, sys
out = []
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            out.append([0, len(f.read())])
    except OSError as e:
        out.append([e.errno, 0])
print(json.dumps(out))
"""


def as_nobody(*paths):
    """[(errno, length)] for reading each path as uid/gid 65534 with no supplementary groups."""
    result = subprocess.run(
        ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_GID}", "--clear-groups",
         PYTHON, "-c", PROBE, *map(str, paths)],
        capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"probe as nobody failed: {result.stderr}")
    return [tuple(r) for r in json.loads(result.stdout)]


@requirement(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv (util-linux)")
class PermissionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-perm-"))
        cls.src = cls.tmp / "src"
        cls.src.mkdir()
        # The mount's root shows SRC's mode, and the premise checks read SRC itself: nobody
        # must be able to traverse both (mkdtemp makes 0700 directories).
        os.chmod(cls.tmp, 0o755)
        os.chmod(cls.src, 0o755)
        data = bytes(range(256)) * 16
        npy = io.BytesIO()
        numpy.save(npy, numpy.arange(256, dtype="<f4"))
        cls.files = {
            # name: (mode, uid, gid, readable by nobody)
            "secret.bin": (0o600, 0, 0, False),
            "secret.npy": (0o600, 0, 0, False),   # with a raw/ slice
            "public.npy": (0o644, 0, 0, True),
            "public.bin": (0o644, 0, 0, True),
            "group.bin": (0o640, 0, NOBODY_GID, True),    # readable through nobody's group
            "others.bin": (0o604, 1234, 5678, True),      # readable through "others" only
            "owned.bin": (0o400, NOBODY_UID, 0, True),    # readable through the owner bits
            "not_owner.bin": (0o060, NOBODY_UID, 0, False),  # owner bits win over group
        }
        for name, (mode, uid, gid, _) in cls.files.items():
            path = cls.src / name
            path.write_bytes(npy.getvalue() if name.endswith(".npy") else data)
            os.chown(path, uid, gid)
            os.chmod(path, mode)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def entries(self, mnt, name):
        p = mnt / name
        paths = [p / "header.json", p / "slices.json", p / "magic", p / "range" / "0-16",
                 p / "range" / "16+256"]
        return paths + [p / "raw" / "data"] if name.endswith(".npy") else paths

    def test_kernel_enforces_the_source_permissions_for_other_users(self):
        with mounted(self.src, "-o", "allow_other") as mnt:
            for name, (mode, _, _, readable) in self.files.items():
                # Check the premise on SRC itself, then the same through the mount.
                in_src = as_nobody(self.src / name)[0]
                self.assertEqual(in_src[0] == 0, readable, f"premise: nobody reading {name}")
                results = as_nobody(*self.entries(mnt, name))
                self.assertEqual(len(results), len(self.entries(mnt, name)))
                for path, (err, length) in zip(self.entries(mnt, name), results):
                    rel = path.relative_to(mnt)
                    if readable:
                        self.assertEqual(err, 0, f"nobody should read {rel}")
                        self.assertGreater(length, 0, rel)
                    else:
                        self.assertEqual(err, errno.EACCES, f"nobody must not read {rel}")
                # Root still reads everything (root bypasses the mode bits).
                self.assertEqual((mnt / name / "range" / "0-16").read_bytes(),
                                 (self.src / name).read_bytes()[:16])

    def test_listing_an_unreadable_payload_is_denied(self):
        with mounted(self.src, "-o", "allow_other") as mnt:
            listing = subprocess.run(
                ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_GID}", "--clear-groups",
                 "ls", mnt / "secret.bin", mnt / "public.bin"],
                capture_output=True, text=True, timeout=60)
            self.assertNotEqual(listing.returncode, 0)
            self.assertIn("Permission denied", listing.stderr)
            self.assertIn("header.json", listing.stdout)  # public.bin's listing

    def test_without_allow_other_only_the_mounting_user_gets_in(self):
        with mounted(self.src) as mnt:
            self.assertEqual(as_nobody(mnt / "public.bin" / "header.json")[0][0], errno.EACCES)
            self.assertTrue((mnt / "public.bin" / "header.json").read_bytes())

    def test_virtual_entries_show_the_source_owner_and_read_bits(self):
        with mounted(self.src, "-o", "allow_other") as mnt:
            for name, (mode, uid, gid, _) in self.files.items():
                read_bits = mode & 0o444
                expected_file = read_bits
                expected_dir = read_bits | (read_bits >> 2)  # r-x where the source has r
                for path in [mnt / name, mnt / name / "raw", mnt / name / "range"]:
                    st = os.stat(path)
                    self.assertTrue(stat.S_ISDIR(st.st_mode), path)
                    self.assertEqual(stat.S_IMODE(st.st_mode), expected_dir, f"{path}: {oct(mode)}")
                    self.assertEqual((st.st_uid, st.st_gid), (uid, gid), path)
                for path in self.entries(mnt, name):
                    st = os.stat(path)
                    self.assertTrue(stat.S_ISREG(st.st_mode), path)
                    self.assertEqual(stat.S_IMODE(st.st_mode), expected_file,
                                     f"{path}: {oct(mode)}")
                    self.assertEqual((st.st_uid, st.st_gid), (uid, gid), path)


if __name__ == "__main__":
    unittest.main()
