"""payloadfs mounted the way the system mounts file systems: `mount -t fuse.payloadfs` and an
fstab line, through mount(8) and mount.fuse3 (package fuse3), unmounted with umount(8); and the
fstab-only options that reach payloadfs accepted when it is run directly.

mount(8) runs its helpers with PATH removed from the environment, and mount.fuse3 starts
`payloadfs` through /bin/sh, which then searches its default PATH (/usr/local/sbin first). So
that the build under test is the one found without installing it, each mount runs in a private
mount namespace (unshare) in which a temporary directory holding a `payloadfs` symlink to
$PAYLOADFS_BIN is bind-mounted over /usr/local/sbin; the system's directories are untouched, and
whatever the namespace mounts goes when it ends.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import textwrap
import unittest

from mounting import (BIN, FIXTURES, PYTHON, DaemonizedWatch, daemon_env, is_mounted, mounted,
                      requirement, run)

REPO = pathlib.Path(__file__).resolve().parents[2]
FORMATS = REPO / "examples" / "formats"
SHELL_PATH = "/usr/local/sbin"  # the first directory of /bin/sh's default PATH


def find_mount_helper():
    for d in ("/sbin", "/usr/sbin", "/bin", "/usr/bin"):
        if os.access(os.path.join(d, "mount.fuse3"), os.X_OK):
            return os.path.join(d, "mount.fuse3")
    return None


def daemons_serving(mnt):
    """Pids of payloadfs processes whose command line names `mnt`."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"payloadfs" and os.fsencode(str(mnt)) in argv:
            pids.append(int(entry.name))
    return pids


# Runs inside the namespace: puts the build's payloadfs first on the shell's PATH, mounts with
# the command given as arguments, records what the mount shows, unmounts with umount(8).
IN_NAMESPACE = textwrap.dedent("""\
    set -euo pipefail
    bin_dir=$1 mnt=$2 out=$3
    shift 3
    trap 'if mountpoint -q "$mnt"; then umount -l "$mnt"; fi' EXIT
    mount --bind "$bin_dir" {shell_path}
    "$@"
    # The daemon mount.fuse3 started (its command line names the mount point), for its fate.
    for proc in /proc/[0-9]*; do
      argv0=$(tr '\\0' '\\n' <"$proc/cmdline" 2>/dev/null | head -n 1) || continue
      if [ "${{argv0##*/}}" = payloadfs ] && tr '\\0' '\\n' <"$proc/cmdline" 2>/dev/null | grep -qxF "$mnt"; then
        echo "${{proc#/proc/}}" >>"$out/pids"
      fi
    done
    findmnt -n -o FSTYPE,SOURCE,OPTIONS --mountpoint "$mnt" >"$out/findmnt"
    cat "$mnt/f4_2d.npy/header.json" >"$out/npy.json"
    cat "$mnt/flight-000.tlm/header.json" >"$out/telemetry.json"
    umount "$mnt"
    if mountpoint -q "$mnt"; then echo "still mounted after umount" >&2; exit 1; fi
    """).format(shell_path=SHELL_PATH)


@requirement(os.geteuid() == 0, "mount(8) with a fuse.* type needs root")
@requirement(find_mount_helper() is not None, "mount.fuse3 (package fuse3) is not installed")
class SystemMount(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary = shutil.which(BIN)
        if binary is None:
            raise AssertionError(f"PAYLOADFS_BIN {BIN!r} is not an executable")
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-sysmount-"))
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)  # even if setup fails
        cls.bin_dir = cls.tmp / "bin"
        cls.bin_dir.mkdir()
        (cls.bin_dir / "payloadfs").symlink_to(pathlib.Path(binary).resolve())
        cls.src = cls.tmp / "src"
        cls.src.mkdir()
        shutil.copy(FIXTURES / "numpy" / "f4_2d.npy", cls.src / "f4_2d.npy")
        # A format that only the descriptors in examples/formats know: proves formats=DIR
        # reached payloadfs through mount(8) and mount.fuse3.
        run(PYTHON, REPO / "scripts" / "gen-telemetry.py", cls.src, "--files", "1",
            "--records", "10")
        # The same header.json without a mount ("path" is the path as given): a consistency
        # check (both are payloadfs's code) that the mount(8) route serves what a direct run
        # does; check_what_was_mounted() also compares with numpy's reading.
        cls.want_npy = json.loads(run(BIN, "--inspect", "f4_2d.npy", cwd=cls.src).stdout)
        cls.numpy_npy = json.loads((FIXTURES / "numpy" / "expected.json").read_text())["f4_2d"]

    def setUp(self):
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="case-", dir=self.tmp))
        self.mnt = self.work / "mnt"
        self.mnt.mkdir()
        self.out = self.work / "out"
        self.out.mkdir()

    def tearDown(self):
        # The namespace's mounts end with it, but a daemon left running would keep it alive.
        for pid in daemons_serving(self.mnt):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(self.work, ignore_errors=True)

    def mount_in_namespace(self, *mount_cmd):
        # The daemon mount.fuse3 starts becomes our child (DaemonizedWatch): after umount(8)
        # ended the FUSE connection it must exit by itself, with status 0, no sanitizer report.
        watch = DaemonizedWatch()
        try:
            env = daemon_env(dict(watch.env, PATH=f"{self.bin_dir}:{os.environ.get('PATH', os.defpath)}"))
            result = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "bash", "-c", IN_NAMESPACE,
                 "in-namespace", self.bin_dir, self.mnt, self.out, *map(str, mount_cmd)],
                capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(result.returncode, 0, f"mount in a namespace failed:\n{result.stderr}")
            pids = [int(p) for p in (self.out / "pids").read_text().split()]
            self.assertEqual(len(pids), 1, f"daemons found for {self.mnt}: {pids}")
            problems = watch.problems(pids[0])
            self.assertEqual(problems, [], f"payloadfs started by mount(8), pid {pids[0]}")
            self.assertEqual(daemons_serving(self.mnt), [])
        finally:
            for pid in daemons_serving(self.mnt):
                watch.kill(pid)
            watch.close()
        self.assertFalse(is_mounted(self.mnt))

    def check_what_was_mounted(self):
        fstype, source, options = (self.out / "findmnt").read_text().split()
        self.assertEqual(fstype, "fuse.payloadfs")
        self.assertEqual(source, str(self.src.resolve()))
        self.assertIn("ro", options.split(","))
        npy = json.loads((self.out / "npy.json").read_text())
        self.assertEqual(npy, self.want_npy)
        for key in ("version", "descr", "shape", "fortran_order"):
            self.assertEqual(npy["header"][key], self.numpy_npy[key], key)
        telemetry = json.loads((self.out / "telemetry.json").read_text())
        self.assertEqual(telemetry["format"], "telemetry")
        self.assertNotIn("errors", telemetry)

    def test_mount_t_fuse_payloadfs(self):
        self.mount_in_namespace("mount", "-t", "fuse.payloadfs", self.src, self.mnt,
                                "-o", f"ro,formats={FORMATS}")
        self.check_what_was_mounted()

    def test_fstab_line(self):
        # What people write in /etc/fstab: defaults (which mount(8) turns into rw), nofail,
        # _netdev, an atime policy (passed on to payloadfs) and systemd's x-* options next to
        # payloadfs's own.
        fstab = self.work / "fstab"
        fstab.write_text(
            f"# payloadfs test\n{self.src} {self.mnt} fuse.payloadfs "
            f"defaults,nofail,_netdev,noatime,relatime,x-systemd.automount,"
            f"x-systemd.mount-timeout=30,formats={FORMATS},inotify=1 0 0\n")
        self.mount_in_namespace("mount", "-T", fstab, self.mnt)
        self.check_what_was_mounted()


@requirement(os.path.exists("/dev/fuse"), "needs /dev/fuse")
class FstabOptionsRunDirectly(unittest.TestCase):
    """payloadfs run by hand or from a unit with the options of an fstab line."""

    def test_fstab_options_are_accepted_and_the_mount_stays_read_only(self):
        with tempfile.TemporaryDirectory(prefix="payloadfs-src-") as src:
            shutil.copy(FIXTURES / "numpy" / "f4_2d.npy", pathlib.Path(src) / "f4_2d.npy")
            with mounted(src, "-o", "defaults,rw,nofail,_netdev,noauto,auto,user,users,nouser,"
                         "x-systemd.automount,x-systemd.requires=network-online.target,"
                         "relatime,strictatime,lazytime,nodiratime,comment=payloads") as mnt:
                header = json.loads((mnt / "f4_2d.npy" / "header.json").read_text())
                self.assertEqual(header["format"], "npy")
                self.assertEqual(os.statvfs(mnt).f_flag & os.ST_RDONLY, os.ST_RDONLY)

    def test_unknown_options_still_fail(self):
        with tempfile.TemporaryDirectory(prefix="payloadfs-src-") as src, \
                tempfile.TemporaryDirectory(prefix="payloadfs-mnt-") as mnt:
            for option in ("bogus", "xsystemd.automount", "nofail=1"):
                with self.subTest(option=option):
                    result = run(BIN, src, mnt, "-o", option, check=False, timeout=30)
                    try:
                        self.assertNotEqual(result.returncode, 0)
                        self.assertIn(option, result.stderr.decode())
                        self.assertFalse(is_mounted(mnt))
                    finally:
                        if is_mounted(mnt):
                            subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)


if __name__ == "__main__":
    unittest.main()
