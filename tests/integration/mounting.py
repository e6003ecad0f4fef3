"""Mounting payloadfs for tests: one mount point per test, ready before use, always unmounted,
and the daemon's fate checked on the way out.

Every daemon mounted() starts runs in the foreground (-f) with its stdout and stderr in a log
file (a file, not a pipe, which a chatty daemon could fill). After the unmount it must exit by
itself, with status 0, and its log must hold no sanitizer report; otherwise the test fails
with the log's tail. mounted_in_background() starts payloadfs the way users do (it
daemonizes), and checks the same of the daemonized process.

Importing this module isolates the configuration payloadfs reads: HOME and XDG_CONFIG_HOME
point at an empty directory for this process and everything it starts, and
PAYLOADFS_SYSTEM_FORMATS at an empty directory instead of /etc/payloadfs/formats (payloadfs
loads descriptors from $XDG_CONFIG_HOME/payloadfs/formats, else ~/.config/payloadfs/formats,
then from the system directory, see cli/format_loading.cpp).

CI (env CI set, as in CI, where everything is installed and the tests run as root): a test
whose requirement is missing fails instead of skipping (see requirement()).
"""
import atexit
import contextlib
import ctypes
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("PAYLOADFS_BIN", "payloadfs")
FIXTURES = pathlib.Path(os.environ.get("PAYLOADFS_FIXTURES", ""))
PYTHON = "/usr/bin/python3"  # Debian's interpreter, which has numpy
SANITIZED = os.environ.get("PAYLOADFS_SANITIZED") == "1"
CI = bool(os.environ.get("CI"))

# Lines a sanitizer prints when it reports (ASan, UBSan, LSan, TSan).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ThreadSanitizer",
                     "LeakSanitizer", "==ERROR")
# How long a daemon may take to serve after it starts, and to exit after its unmount.
START_TIMEOUT = 120.0 if SANITIZED else 30.0
EXIT_TIMEOUT = 120.0 if SANITIZED else 30.0
LOG_TAIL_LINES = 40

# --- the configuration payloadfs reads --------------------------------------------------------

ISOLATED_HOME = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-home-"))
atexit.register(shutil.rmtree, ISOLATED_HOME, ignore_errors=True)
os.environ["HOME"] = str(ISOLATED_HOME)
os.environ["XDG_CONFIG_HOME"] = str(ISOLATED_HOME / ".config")
SYSTEM_DESCRIPTOR_DIR = ISOLATED_HOME / "system-formats"
SYSTEM_DESCRIPTOR_DIR.mkdir()
os.environ["PAYLOADFS_SYSTEM_FORMATS"] = str(SYSTEM_DESCRIPTOR_DIR)


def daemon_env(extra=None):
    """The environment test daemons run with: this process's (isolated HOME) plus `extra`."""
    env = dict(os.environ)
    env.update(extra or {})
    return env


# --- requirements: skipped locally, failures in CI ---------------------------------------------

def requirement(condition, reason):
    """A decorator for a test or a TestCase class that needs `condition`: nothing when it
    holds; otherwise the test is skipped, or, in CI (env CI set), fails with `reason`."""
    if condition:
        return lambda obj: obj
    if not CI:
        return unittest.skip(reason)
    message = f"CI requires this test to run, but: {reason}"

    def fail(obj):
        if isinstance(obj, type):
            def setUpClass(cls):
                raise AssertionError(message)
            obj.setUpClass = classmethod(setUpClass)
            return obj

        def failing(*args, **kwargs):
            raise AssertionError(message)
        failing.__name__, failing.__doc__ = obj.__name__, obj.__doc__
        return failing
    return fail


# --- mounts ------------------------------------------------------------------------------------

def wait_until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def is_mounted(path):
    """Whether a mount is on `path` (a dead FUSE mount, whose daemon is gone, counts too:
    is_serving() asks the daemon)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def is_serving(path, timeout=START_TIMEOUT):
    """Whether a FUSE daemon answers on `path` within `timeout`: statfs always goes to the
    daemon (a dead mount fails with ENOTCONN; a hung daemon never answers)."""
    answer = []

    def ask():
        try:
            os.statvfs(path)
            answer.append(True)
        except OSError:
            answer.append(False)
    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(timeout)
    return bool(answer and answer[0])


def unmount(path):
    """fusermount3 -u, falling back to a lazy unmount so a failed test never leaves a mount.
    Returns fusermount3 -u's error text when it failed (e.g. busy), else None."""
    if not is_mounted(path):
        return None
    result = subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, text=True)
    error = None
    if result.returncode != 0:
        error = result.stderr.strip() or f"fusermount3 -u exited {result.returncode}"
        subprocess.run(["fusermount3", "-uz", str(path)], capture_output=True)
    wait_until(lambda: not is_mounted(path), what=f"unmount of {path}")
    return error


def ensure_fusectl():
    """The FUSE control filesystem, through which a wedged mount can be aborted (root)."""
    with open("/proc/mounts") as f:
        if any(line.split()[2] == "fusectl" for line in f):
            return
    if os.geteuid() == 0 and os.path.isdir("/sys/fs/fuse/connections"):
        subprocess.run(["mount", "-t", "fusectl", "none", "/sys/fs/fuse/connections"],
                       capture_output=True)


def fuse_connection_of(mnt):
    """/sys/fs/fuse/connections/<N> of the mount on `mnt` (N is its device's minor), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(mnt):
                path = pathlib.Path(f"/sys/fs/fuse/connections/{fields[2].split(':')[1]}")
                return path if path.exists() else None
    return None


def open_abort(conn):
    """A descriptor of `conn`'s abort file, or None. Writing "1" to it ends a wedged mount:
    the kernel fails every request pending on the connection, so neither the daemon nor a
    reader stays stuck (a thread waiting in the kernel for a reply ignores even SIGKILL).

    Open it while the connection is the mount's, and keep it: a connection's number is its
    device's minor, which the kernel hands to the next mount as soon as this one is gone, so
    the path may name another test's connection later (a new mount's connection exists before
    its mount point shows in mountinfo). The descriptor stays this connection's: once the
    kernel has removed it (at unmount, when it is aborted anyway) a write does nothing."""
    if conn is None:
        return None
    try:
        return os.open(conn / "abort", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return None


class DaemonFailure(AssertionError):
    """The daemon behind a test mount crashed, hung, exited non-zero or logged a sanitizer
    report."""


def sanitizer_lines(text):
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


def log_tail(path, lines=LOG_TAIL_LINES):
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError as e:
        return f"(log {path} unreadable: {e})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(empty)"


def describe_status(status):
    return f"killed by signal {-status}" if status < 0 else f"exited with status {status}"


class ForegroundDaemon:
    """payloadfs SRC MNT OPTIONS... -f, with stdout and stderr in `log_path`."""

    def __init__(self, source, mnt, *options, log_path, preexec_fn=None, env=None):
        self.source, self.mnt, self.log_path = source, pathlib.Path(mnt), pathlib.Path(log_path)
        cmd = [BIN, str(source), str(mnt), *map(str, options), "-f"]
        ensure_fusectl()
        self.connection = None
        self.abort_fd = None
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file,
                                         stderr=log_file, preexec_fn=preexec_fn,
                                         env=daemon_env(env))

    def wait_serving(self):
        """Until the mount exists and the daemon answers on it; fails if the daemon exits."""
        try:
            wait_until(lambda: is_mounted(self.mnt) or self.proc.poll() is not None,
                       timeout=START_TIMEOUT, what=f"payloadfs to mount {self.mnt}")
        except TimeoutError:
            self.proc.kill()
            self.proc.wait()
            raise DaemonFailure(f"payloadfs did not mount {self.mnt} within {START_TIMEOUT:.0f}s"
                                f"\n--- {self.log_path} ---\n{log_tail(self.log_path)}")
        if self.proc.poll() is not None or not is_serving(self.mnt):
            status = self.proc.wait(timeout=EXIT_TIMEOUT)
            raise DaemonFailure(f"payloadfs {describe_status(status)} before serving {self.mnt}"
                                f"\n--- {self.log_path} ---\n{log_tail(self.log_path)}")
        self.hold_connection(fuse_connection_of(self.mnt))  # now: a lazy unmount hides it

    def hold_connection(self, conn):
        """Keeps a way to abort the mount's FUSE connection `conn` (see open_abort)."""
        self.connection = conn
        self.abort_fd = open_abort(conn)

    def release_connection(self):
        if self.abort_fd is not None:
            os.close(self.abort_fd)
            self.abort_fd = None

    def problems(self, expected_status=0, timeout=EXIT_TIMEOUT):
        """Waits for the daemon to exit (killing it after `timeout`); returns what was wrong."""
        problems = []
        try:
            status = self.proc.wait(timeout=timeout)
            self.release_connection()
        except subprocess.TimeoutExpired:
            self.kill()
            problems.append(f"still running {timeout:.0f}s after its unmount (killed)")
        else:
            if status != expected_status:
                problems.append(describe_status(status)
                                + ("" if expected_status == 0 else f", not {expected_status}"))
        try:
            reports = sanitizer_lines(self.log_path.read_text(errors="replace"))
        except OSError as e:
            reports = [f"log unreadable: {e}"]
        if reports:
            problems.append(f"sanitizer report in its log: {reports[0]}")
        return problems

    def check_exit(self, expected_status=0, timeout=EXIT_TIMEOUT, context=""):
        """Raises DaemonFailure (with the log's tail) unless the daemon exits by itself with
        `expected_status` within `timeout` and logged no sanitizer report."""
        problems = self.problems(expected_status, timeout)
        if problems:
            raise DaemonFailure(
                f"payloadfs serving {self.source} on {self.mnt}: " + "; ".join(problems)
                + (f" ({context})" if context else "")
                + f"\n--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}")

    def kill(self):
        if self.proc.poll() is None:
            # A wedged daemon ends only once it is aborted.
            if self.abort_fd is not None:
                try:
                    os.write(self.abort_fd, b"1")
                except OSError:
                    pass
            self.proc.kill()
        self.proc.wait(timeout=EXIT_TIMEOUT)
        self.release_connection()


@contextlib.contextmanager
def checked_exit(stop, *, keep_log=None, log_path=None):
    """Runs the body, then `stop()` (which raises DaemonFailure when the daemon misbehaved).
    A failure of the body keeps its own exception, with the daemon's problems as a note.
    The log is removed after a clean exit unless `keep_log`."""
    try:
        yield
    except BaseException as body_error:
        try:
            stop()
        except DaemonFailure as failure:
            body_error.add_note(f"and the daemon failed too: {failure}")
        else:
            if log_path is not None:
                body_error.add_note(f"(the daemon's log: {log_path})")
        raise
    else:
        stop()
        if log_path is not None and not keep_log:
            pathlib.Path(log_path).unlink(missing_ok=True)


@contextlib.contextmanager
def mounted(source, *options, log_path=None, preexec_fn=None, env=None):
    """Mounts `source` on a fresh mount point and yields it; unmounts on the way out.
    payloadfs runs in the foreground (-f) with its stdout and stderr going to `log_path` (a
    temporary file when None, removed when all went well), and must then exit with status 0
    and no sanitizer report in its log, or the test fails (DaemonFailure) with the log's tail.
    `preexec_fn` runs in the child before payloadfs starts (e.g. to lower its rlimits); `env`
    adds variables to the daemon's environment."""
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-mnt-"))
    own_log = log_path is None
    if own_log:
        fd, log_path = tempfile.mkstemp(prefix="payloadfs-daemon-", suffix=".log")
        os.close(fd)
    daemon = None
    try:
        daemon = ForegroundDaemon(source, mnt, *options, log_path=log_path,
                                  preexec_fn=preexec_fn, env=env)
        daemon.wait_serving()
        alive_before_unmount = []

        def stop():
            alive_before_unmount.append(daemon.proc.poll() is None)
            busy = unmount(mnt)
            context = []
            if not alive_before_unmount[0]:
                context.append("it had exited before the unmount")
            if busy:
                context.append(f"fusermount3 -u failed ({busy}), lazily unmounted")
            daemon.check_exit(context=", ".join(context))

        with checked_exit(stop, keep_log=not own_log, log_path=log_path):
            yield mnt
    finally:
        if daemon is not None:
            unmount(mnt)
            daemon.kill()  # only if still running: check_exit has waited already
        shutil.rmtree(mnt, ignore_errors=True)


PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper(on):
    """Orphans of our children (a daemonized payloadfs) become our children, so we can wait
    for them and see their exit status. Returns whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_pid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


class DaemonizedWatch:
    """Checks the fate of payloadfs processes that daemonize from this process's children
    (`payloadfs SRC MNT`, or mount(8) through mount.fuse3). While it is open this process is
    the child subreaper, so an orphaned daemon becomes its child and its exit status can be
    waited for; `env` gives the sanitizers a log_path (a daemon's stderr is /dev/null)."""

    def __init__(self):
        self.reports = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-sanitizer-"))
        self.env = {}
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            previous = os.environ.get(var)
            self.env[var] = (previous + ":" if previous else "") + f"log_path={self.reports}/report"
        self.reaper = set_child_subreaper(True)

    def problems(self, pid, timeout=EXIT_TIMEOUT):
        """Waits for daemon `pid` to exit; returns what was wrong with its end."""
        problems = []
        parent = parent_pid_or_none(pid)
        if self.reaper and parent == os.getpid():
            status = wait_child(pid, timeout)
            if status is None:
                problems.append(f"still running {timeout:.0f}s after its unmount")
            elif status != 0:
                problems.append(describe_status(status))
        else:
            problems.append(f"its exit status cannot be seen: its parent is {parent}, not this "
                            f"process (subreaper {'set' if self.reaper else 'refused'})")
            try:
                wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=timeout,
                           what="the daemon to exit")
            except TimeoutError:
                problems.append(f"still running {timeout:.0f}s after its unmount")
        found = sorted(self.reports.iterdir())
        if found:
            problems.append("sanitizer report: " + found[0].read_text(errors="replace")[-4000:])
        return problems

    def kill(self, pid):
        if os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def close(self):
        if self.reaper:
            set_child_subreaper(False)
        shutil.rmtree(self.reports, ignore_errors=True)


@contextlib.contextmanager
def mounted_in_background(source, *options, mnt=None):
    """payloadfs SRC MNT as users start it: it daemonizes (syslog, stdio on /dev/null) and
    returns once the mount serves requests. Yields the mount point (a fresh one unless `mnt`)
    and the daemon's pid; after the unmount the daemonized process must exit by itself with
    status 0 and leave no sanitizer report (DaemonizedWatch)."""
    own_mnt = mnt is None
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-mnt-")) if own_mnt else pathlib.Path(mnt)
    watch = DaemonizedWatch()
    pid = None
    try:
        result = subprocess.run([BIN, str(source), str(mnt), *map(str, options)],
                                capture_output=True, text=True, timeout=START_TIMEOUT,
                                stdin=subprocess.DEVNULL, env=daemon_env(watch.env))
        if result.returncode != 0:
            raise DaemonFailure(f"payloadfs failed ({result.returncode}): {result.stderr}")
        if not is_mounted(mnt):
            raise DaemonFailure("payloadfs returned before the mount existed")
        if not is_serving(mnt):
            raise DaemonFailure("payloadfs returned, but nothing serves the mount")
        pid = daemon_pid(mnt)

        def stop():
            problems = []
            if not is_serving(mnt):
                problems.append("the mount was dead before its unmount")
            busy = unmount(mnt)
            if busy:
                problems.append(f"fusermount3 -u failed ({busy}), lazily unmounted")
            problems += watch.problems(pid)
            if problems:
                raise DaemonFailure(f"daemonized payloadfs {pid} on {mnt}: " + "; ".join(problems))

        with checked_exit(stop):
            yield mnt, pid
    finally:
        unmount(mnt)
        if pid is not None:
            watch.kill(pid)
        watch.close()
        if own_mnt:
            shutil.rmtree(mnt, ignore_errors=True)


def parent_pid_or_none(pid):
    try:
        return parent_pid(pid)
    except (OSError, ValueError, IndexError):
        return None


def wait_child(pid, timeout):
    """The exit status of child `pid` (negative: the signal), or None after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


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


class MountedFixtures(unittest.TestCase):
    """A test case that mounts SOURCE (FIXTURES unless the class names another directory) once
    for all its tests, as `mnt`, after checking that REQUIRED (paths relative to FIXTURES,
    written by tests/fixtures/generate.py) exist. A subclass that extends setUpClass calls
    this one first; `stack` takes further contexts (temporary directories) to close at the
    end."""

    REQUIRED = ()
    SOURCE = None

    @classmethod
    def setUpClass(cls):
        missing = [str(rel) for rel in cls.REQUIRED if not (FIXTURES / rel).exists()]
        if missing:
            raise RuntimeError(f"fixtures missing ({', '.join(missing)}): run "
                               "tests/fixtures/generate.py first (ctest does)")
        cls.stack = contextlib.ExitStack()
        cls.mnt = cls.stack.enter_context(mounted(cls.SOURCE or FIXTURES))

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def header(self, rel):
        """header.json of the payload directory MNT/rel."""
        return json.loads((self.mnt / rel / "header.json").read_text())

    def slices(self, rel):
        """slices.json of the payload directory MNT/rel."""
        return json.loads((self.mnt / rel / "slices.json").read_text())
