"""A payloadfs daemon in the foreground whose fate a test checks: its log in a file, its exit
status after the unmount, and whether a sanitizer reported anything."""
import contextlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile

from mounting import BIN, is_mounted, unmount, wait_until

SANITIZER_LINE = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|"
    r"ThreadSanitizer: reported|runtime error:|==\d+==ERROR")


def daemon_log_problems(log_path):
    """The sanitizer lines of a daemon's log with what follows them, or '' when none."""
    text = pathlib.Path(log_path).read_text(errors="replace")
    match = SANITIZER_LINE.search(text)
    return "" if match is None else text[max(0, match.start() - 200):match.start() + 4000]


def fuse_connection_of(mnt):
    """/sys/fs/fuse/connections/<N> of a mount (N is the minor of its st_dev), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(mnt):
                minor = int(fields[2].split(":")[1])
                path = pathlib.Path(f"/sys/fs/fuse/connections/{minor}")
                return path if path.exists() else None
    return None


def abort_connection(conn):
    """Ends a wedged mount through its /sys/fs/fuse/connections/<N> entry: the kernel fails
    every pending request, so neither the daemon nor a reader stays stuck."""
    if conn is not None and (conn / "abort").exists():
        (conn / "abort").write_text("1")


def ensure_fusectl():
    """The fuse control filesystem, where a wedged mount can be aborted (root only)."""
    with open("/proc/mounts") as f:
        if any(line.split()[2] == "fusectl" for line in f):
            return
    if os.geteuid() == 0 and os.path.isdir("/sys/fs/fuse/connections"):
        subprocess.run(["mount", "-t", "fusectl", "none", "/sys/fs/fuse/connections"],
                       capture_output=True)


class Daemon:
    def __init__(self, mnt, proc, log_path):
        self.mnt = mnt
        self.proc = proc
        self.log_path = log_path
        self.returncode = None

    def wait(self, timeout):
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)


@contextlib.contextmanager
def serving(source, *options, log_path, env=None, stop_timeout=30):
    """Runs `payloadfs -f SOURCE MNT OPTIONS` on a fresh mount point and yields a Daemon; on
    the way out unmounts (or finds it unmounted), waits for the daemon and records its exit
    status in `returncode`. A daemon that does not end in time has its connection aborted and
    is killed (returncode stays None), so a test never leaves a wedged mount behind."""
    ensure_fusectl()
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-mnt-"))
    proc = None
    daemon = None
    conn = None
    try:
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen([BIN, str(source), str(mnt), *options, "-f"],
                                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                    env=env)
        wait_until(lambda: is_mounted(mnt) or proc.poll() is not None, timeout=60, what="mount")
        if proc.poll() is not None:
            raise RuntimeError(f"payloadfs exited {proc.returncode}: "
                               f"{pathlib.Path(log_path).read_text()[-4000:]}")
        conn = fuse_connection_of(mnt)  # found now: a lazy unmount hides it later
        daemon = Daemon(mnt, proc, log_path)
        yield daemon
    finally:
        if proc is not None:
            try:
                if proc.poll() is None:
                    unmount(mnt)
                code = proc.wait(timeout=stop_timeout)
                if daemon is not None:
                    daemon.returncode = code
            except (subprocess.TimeoutExpired, TimeoutError):
                abort_connection(conn)
                proc.kill()
                proc.wait(timeout=stop_timeout)
            if is_mounted(mnt):
                abort_connection(conn)
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)
