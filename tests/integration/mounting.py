"""Mounting payloadfs for tests: one mount point per test, ready before use, always unmounted."""
import contextlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

BIN = os.environ.get("PAYLOADFS_BIN", "payloadfs")
FIXTURES = pathlib.Path(os.environ.get("PAYLOADFS_FIXTURES", ""))
PYTHON = "/usr/bin/python3"  # Debian's interpreter, which has numpy


def wait_until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def unmount(path):
    """fusermount3 -u, falling back to a lazy unmount so a failed test never leaves a mount."""
    if not is_mounted(path):
        return
    if subprocess.run(["fusermount3", "-u", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["fusermount3", "-uz", str(path)], capture_output=True)
    wait_until(lambda: not is_mounted(path), what=f"unmount of {path}")


@contextlib.contextmanager
def mounted(source, *options, log_path=None, preexec_fn=None):
    """Mounts `source` on a fresh mount point and yields it; unmounts on the way out.
    With `log_path`, payloadfs runs in the foreground (-f) with its stderr going to that file
    (a file, not a pipe, which a chatty daemon could fill), and is waited for on the way out.
    `preexec_fn` runs in the child before payloadfs starts (e.g. to lower its rlimits)."""
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-mnt-"))
    proc = None
    try:
        cmd = [BIN, str(source), str(mnt), *options]
        if log_path is not None:
            with open(log_path, "w") as log_file:
                proc = subprocess.Popen(cmd + ["-f"], stderr=log_file, preexec_fn=preexec_fn)
            wait_until(lambda: is_mounted(mnt) or proc.poll() is not None, what="mount")
            if proc.poll() is not None:
                raise RuntimeError(f"payloadfs exited {proc.returncode}: "
                                   f"{pathlib.Path(log_path).read_text()}")
        else:
            # The daemon returns once the mount exists: no waiting needed, and none done.
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                                    preexec_fn=preexec_fn)
            if result.returncode != 0:
                raise RuntimeError(f"payloadfs failed ({result.returncode}): {result.stderr}")
            assert is_mounted(mnt), "payloadfs returned before the mount existed"
        yield mnt
    finally:
        unmount(mnt)
        if proc is not None:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(mnt, ignore_errors=True)


def run(*cmd, check=True, **kwargs):
    return subprocess.run([str(c) for c in cmd], capture_output=True, check=check, **kwargs)


def tree_digest(root):
    """Bytes, sizes and mtimes of everything under `root`, to prove it was not modified."""
    digest = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(filenames + dirnames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    content = f.read()
            digest[path] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return digest


def daemon_pid(mnt):
    """The pid of the payloadfs serving `mnt` (foreground or daemonized): the process whose
    command line names the mount point, which mounted() makes unique."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        if os.fsencode(str(mnt)) in argv and os.path.basename(argv[0]) == b"payloadfs":
            found.append(int(entry.name))
    if len(found) != 1:
        raise RuntimeError(f"expected one payloadfs process for {mnt}, found {found}")
    return found[0]


def proc_status_kib(pid, field):
    """A `kB` field of /proc/PID/status (RssAnon, VmHWM, ...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
    raise KeyError(field)


def open_fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
