"""A concurrency workload for mount tests: readers doing random operations on every kind of
node while a writer rewrites, truncates, regrows, renames and deletes the sources.

Every version of every source file is a prefix of one file of a fixed pool (the writer only
replaces files atomically, cuts them at page boundaries and regrows them with the pool's own
bytes), so every byte a range/ read returns can be checked: it must equal the same offset of
some pool file. Errors a changing source explains (ENOENT, ESTALE, EIO, a raw/ name that is a
file in one version and a directory in another) are counted; any other error, invalid JSON or
a wrong byte is a failure.
"""
import collections
import errno
import json
import os
import pathlib
import random
import threading
import time

# What a reader may meet while the writer works: a name gone (ENOENT), a node of a version
# gone (ESTALE), bytes the source no longer has (EIO), an attribute a node does not have.
EXPECTED_ERRNOS = {errno.ENOENT, errno.ESTALE, errno.EIO, errno.ENODATA}
# Ends every operation once the mount is going away (shutdown tests).
GONE_ERRNOS = {errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV}
PAGE = 4096
SLOTS = 12  # source names the writer cycles through


def load_pool(fixtures, per_dir=2, max_bytes=256 << 10):
    """The smallest well-formed files of each fixture directory: many formats, small bytes."""
    pool = []
    for sub in sorted(p for p in pathlib.Path(fixtures).iterdir() if p.is_dir()):
        if sub.name == "malformed":
            continue
        files = sorted((f for f in sub.rglob("*") if f.is_file() and not f.is_symlink()),
                       key=lambda f: (f.stat().st_size, str(f)))
        picked = [f for f in files if 64 <= f.stat().st_size <= max_bytes][:per_dir]
        pool += [(f.suffix, f.read_bytes()) for f in picked]
    if len(pool) < 8:
        raise RuntimeError(f"too few fixtures for the churn pool in {fixtures}: {len(pool)}")
    return pool


class Workload:
    def __init__(self, src, mnt, pool, readers=16, seed=1):
        self.src = pathlib.Path(src)
        self.mnt = None if mnt is None else pathlib.Path(mnt)
        self.pool = pool
        self.readers = readers
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.failures = []
        self.bytes_checked = 0
        self.slowest = 0.0
        self.names = [f"s{i:02d}{pool[i % len(pool)][0]}" for i in range(SLOTS)]
        self.state = {}  # name -> (pool index, length) of its current version
        for i, name in enumerate(self.names):
            self._write_atomically(name, i % len(pool))

    # The writer's side.
    def _write_atomically(self, name, index):
        tmp = self.src / f".tmp-{name}"
        tmp.write_bytes(self.pool[index][1])
        os.replace(tmp, self.src / name)
        self.state[name] = (index, len(self.pool[index][1]))

    def mutate(self, rng):
        name = rng.choice(self.names)
        path = self.src / name
        action = rng.choice(["replace", "replace", "truncate", "regrow", "rename", "delete"])
        if name not in self.state:
            action = "create"
        if action in ("replace", "create"):
            self._write_atomically(name, rng.randrange(len(self.pool)))
        elif action == "truncate":
            index, length = self.state[name]
            cut = rng.randrange(0, length + 1) // PAGE * PAGE
            os.truncate(path, cut)
            self.state[name] = (index, cut)
        elif action == "regrow":
            index, length = self.state[name]
            with open(path, "ab") as f:
                f.write(self.pool[index][1][length:])
            self.state[name] = (index, len(self.pool[index][1]))
        elif action == "rename":
            other = rng.choice(self.names)
            if other != name:
                os.rename(path, self.src / other)
                self.state[other] = self.state.pop(name)
        else:
            os.unlink(path)
            del self.state[name]
        self.counts["mutations"] += 1

    def writer(self, interval):
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            try:
                self.mutate(rng)
            except OSError as e:  # the writer works on SRC, which nothing else touches
                self.fail(f"writer: {e!r}")
                return
            self.stop.wait(interval)

    # The readers' side.
    def fail(self, message):
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(message)

    def check_range(self, offset, data):
        if not data:
            return
        if not any(content[offset:offset + len(data)] == data for _, content in self.pool):
            self.fail(f"range {offset}+{len(data)}: bytes that no version had")
        with self.lock:
            self.bytes_checked += len(data)

    def read_json(self, path):
        with open(path, "rb") as f:
            text = f.read()
        try:
            json.loads(text)
        except ValueError as e:
            self.fail(f"{path}: invalid JSON ({e}): {text[:120]!r}")

    def one_operation(self, rng):
        payload = self.mnt / rng.choice(self.names)
        op = rng.randrange(12)
        if op == 0:
            os.stat(payload)
            os.stat(payload / rng.choice(["header.json", "slices.json", "magic", "raw"]))
        elif op == 1:
            os.listdir(self.mnt)
            os.listdir(payload)
        elif op in (2, 3):
            self.read_json(payload / "header.json")
        elif op == 4:
            self.read_json(payload / "slices.json")
        elif op == 5:
            if "refs.json" in os.listdir(payload):
                self.read_json(payload / "refs.json")
        elif op == 6:
            entries = os.listdir(payload / "raw")
            if entries:
                target = payload / "raw" / rng.choice(entries)
                # The name may be a file in one version and a directory in the next (sources
                # are replaced by other formats' files): between the check and the use, that
                # is the version changing, not an error.
                try:
                    if target.is_dir():
                        os.listdir(target)
                    else:
                        with open(target, "rb") as f:
                            f.read(1 << 20)
                except (IsADirectoryError, NotADirectoryError):
                    return "raw kind changed"
        elif op in (7, 8):
            size = json.loads((payload / "header.json").read_bytes())["size"]
            offset = rng.randrange(0, size) if size > 0 else 0
            length = rng.randrange(0, min(size - offset, 64 << 10) + 1)
            with open(payload / "range" / f"{offset}+{length}", "rb") as f:
                self.check_range(offset, f.read())
        elif op == 9:
            with open(payload / "magic", "rb") as f:
                f.read()
        elif op == 10:
            control = rng.choice(["stats.json", "errors.json", "formats.json", "version"])
            path = self.mnt / ".payloadfs" / control
            if control.endswith(".json"):
                self.read_json(path)
            else:
                path.read_bytes()
        else:
            entries = os.listdir(payload / "raw")
            if entries:
                target = payload / "raw" / rng.choice(entries)
                names = os.listxattr(target)
                if names:
                    os.getxattr(target, rng.choice(names))

    def reader(self, seed, stop_on_gone):
        rng = random.Random(seed)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                key = self.one_operation(rng) or "ok"
            except OSError as e:
                if e.errno in GONE_ERRNOS and stop_on_gone:
                    with self.lock:
                        self.counts["gone"] += 1
                    return
                key = errno.errorcode.get(e.errno, str(e.errno))
                if e.errno not in EXPECTED_ERRNOS:
                    self.fail(f"unexpected {e!r}")
            took = time.monotonic() - started
            with self.lock:
                self.counts[key] += 1
                self.slowest = max(self.slowest, took)

    def start(self, writer_interval=0.003, stop_on_gone=False):
        self.threads = [threading.Thread(target=self.writer, args=(writer_interval,), daemon=True)]
        self.threads += [threading.Thread(target=self.reader, args=(self.rng.random(), stop_on_gone),
                                          daemon=True) for _ in range(self.readers)]
        for t in self.threads:
            t.start()

    def join(self, timeout):
        """Stops and waits for every thread; the names of those that did not end."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    def summary(self):
        ops = sum(v for k, v in self.counts.items() if k not in ("mutations", "gone"))
        return (f"{ops} operations against {self.counts['mutations']} mutations, "
                f"{self.bytes_checked} range bytes checked, slowest {self.slowest:.3f} s, "
                f"outcomes {dict(self.counts)}")
