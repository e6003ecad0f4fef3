#!/usr/bin/python3
"""payloadfs benchmark (issue 6): payloadfs vs native vs FUSE peers, one run, same data.

Run through scripts/bench, which installs the tools and builds payloadfs first.
Every sample goes to results.json, the summary to results.md, the chart to results.png.
"""
import argparse
import atexit
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GiB = 1 << 30
MiB = 1 << 20

# ----------------------------------------------------------------------------------------
# configuration

FULL = dict(seq_size=GiB, rand_size=GiB, tree_dirs=100, tree_per_dir=100, real_each=250,
            m4_big=100_000, cold_ios=32768, cold8_ios=32768, warm_region=256 * MiB,
            warm_runtime=2, reps=3)
QUICK = dict(seq_size=64 * MiB, rand_size=64 * MiB, tree_dirs=10, tree_per_dir=50,
             real_each=25, m4_big=5_000, cold_ios=4096, cold8_ios=4096,
             warm_region=32 * MiB, warm_runtime=1, reps=1)

ALL_SYSTEMS = ["native", "payloadfs", "payloadfs-tuned", "bindfs", "squashfuse", "rclone"]
FUSE_SYSTEMS = [s for s in ALL_SYSTEMS if s != "native"]
# The lever variant: long kernel caches (the default already where SRC is watched), a payload
# cache larger than the tree, the opt-in spinning request loop, and the mount's readahead
# also written from outside (root) right after the mount answers.
TUNED_OPTS = ("entry_timeout=86400,attr_timeout=86400,negative_timeout=86400,"
              "cache_entries=20000,spin_us=50")
TUNED_RA_KB = 2048

T0 = time.monotonic()


def log(msg):
    print(f"[bench {time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, **kw)


# ----------------------------------------------------------------------------------------
# mounts

STARTED = []  # (proc or None, mountpoint)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


def unmount(mnt, proc=None):
    """fusermount3 -u (a few bounded tries), then -uz; then reap the daemon if we own it."""
    for _ in range(20):
        if not is_mounted(mnt):
            break
        if run(["fusermount3", "-u", mnt], check=False, stderr=subprocess.DEVNULL).returncode == 0:
            break
        time.sleep(0.05)
    if is_mounted(mnt):
        run(["fusermount3", "-uz", mnt], check=False, stderr=subprocess.DEVNULL)
    if proc is not None and proc.poll() is None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def cleanup_all():
    for proc, mnt in reversed(STARTED):
        try:
            unmount(mnt, proc)
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"cleanup {mnt}: {e}", file=sys.stderr)
    STARTED.clear()


atexit.register(cleanup_all)
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, lambda s, f: sys.exit(128 + s))


def wait_mounted(mnt, parent_dev, proc=None, log_path=None, timeout=30.0):
    """Poll until a stat of the mount's root is answered by the new file system."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if os.stat(mnt).st_dev != parent_dev:
                return time.perf_counter()
        except OSError:
            pass
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            err = ""
            if log_path:
                with open(log_path, "rb") as f:
                    err = f.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"mount of {mnt} exited {proc.returncode}: {err.strip()}")
        time.sleep(0.0002)
    raise RuntimeError(f"{mnt}: not mounted after {timeout}s")


def rss(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


class Mount:
    """A fresh mount of one system over one source, foreground daemon we own."""

    def __init__(self, bench, system, source, pin=None, daemonize=False):
        self.b, self.system, self.source = bench, system, source
        self.mnt = os.path.join(bench.work, "mnt", system)
        self.pin = pin
        self.daemonize = daemonize
        self.proc = None
        self.ready_s = None
        self.rss_at_unmount = {}

    def command(self):
        b, src = self.b, self.b.src_dir(self.source)
        fg = [] if self.daemonize else ["-f"]
        if self.system == "payloadfs":
            cmd = [b.payloadfs, *fg, src, self.mnt]
        elif self.system == "payloadfs-tuned":
            cmd = [b.payloadfs, *fg, "-o", TUNED_OPTS, src, self.mnt]
        elif self.system == "bindfs":
            cmd = ["bindfs", *fg, "-o", "ro,kernel_cache", src, self.mnt]
        elif self.system == "squashfuse":
            cmd = ["squashfuse_ll", *fg, b.image(self.source), self.mnt]
        elif self.system == "rclone":
            cmd = ["rclone", "mount", ":local:" + src, self.mnt, "--read-only",
                   "--log-level", "ERROR"]
        else:
            raise ValueError(self.system)
        if self.pin is not None:
            cmd = ["taskset", "-c", str(self.pin), *cmd]
        return cmd

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        if is_mounted(self.mnt):
            unmount(self.mnt)
        parent_dev = os.stat(os.path.dirname(self.mnt)).st_dev
        env = dict(os.environ, RCLONE_CONFIG="/dev/null")
        t0 = time.perf_counter()
        # The daemon's log goes to a file: a pipe nobody reads would block a chatty daemon.
        os.makedirs(os.path.join(self.b.work, "logs"), exist_ok=True)
        self.log_path = os.path.join(self.b.work, "logs", f"{self.system}.log")
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log_file, env=env)
        STARTED.append((self.proc, self.mnt))
        t1 = wait_mounted(self.mnt, parent_dev, self.proc, self.log_path)
        self.ready_s = t1 - t0
        if self.system == "payloadfs-tuned":
            self.set_readahead(TUNED_RA_KB)
        return self

    def set_readahead(self, kb):
        st = os.stat(self.mnt)
        name = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        paths = glob.glob(f"/sys/class/bdi/{name}/read_ahead_kb") + \
            glob.glob(f"/sys/class/bdi/{name}-*/read_ahead_kb")
        try:
            with open(paths[0], "w") as f:
                f.write(str(kb))
        except (IndexError, OSError) as e:
            log(f"cannot raise read_ahead_kb of {self.mnt} ({name}): {e}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.rss_at_unmount = rss(self.proc.pid)
        unmount(self.mnt, self.proc)
        STARTED.remove((self.proc, self.mnt))
        return False

    # paths of the same bytes in this system
    def data(self, rel, size):
        if self.system.startswith("payloadfs"):
            return f"{self.mnt}/{rel}/range/0-{size}"
        return f"{self.mnt}/{rel}"

    def path(self, rel):
        return f"{self.mnt}/{rel}"

    def stats(self):
        if not self.system.startswith("payloadfs"):
            return {}
        with open(f"{self.mnt}/.payloadfs/stats.json") as f:
            return json.load(f)


class Native:
    """The source path itself: the same bytes from the (tmpfs) page cache."""

    system = "native"
    pid = None
    ready_s = None
    rss_at_unmount = {}

    def __init__(self, bench, source):
        self.root = bench.src_dir(source)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def data(self, rel, size):
        return f"{self.root}/{rel}"

    def path(self, rel):
        return f"{self.root}/{rel}"

    def stats(self):
        return {}


# ----------------------------------------------------------------------------------------
# primitive measurements

def seq_read(path, bs=MiB):
    buf = bytearray(bs)
    total = 0
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            n = os.readv(fd, [buf])
            if n == 0:
                break
            total += n
    finally:
        os.close(fd)
    return total, time.perf_counter() - t0


def fio(path, *, size, io_size=None, jobs=1, region=None, warm=False, runtime=None, pin=None,
        seed=1):
    """4 KiB random reads with psync. region: each of the jobs reads its own disjoint region
    (offset_increment), so that with randommap every block is read at most once overall."""
    cmd = ["fio", "--name=bench", f"--filename={path}", "--readonly", "--rw=randread",
           "--bs=4k", "--ioengine=psync", "--invalidate=0", "--fadvise_hint=random",
           f"--randseed={seed}", "--output-format=json", "--percentile_list=50:99:99.9",
           "--group_reporting", f"--numjobs={jobs}"]
    if region:
        cmd += [f"--size={region}", f"--offset_increment={region}"]
    else:
        cmd += [f"--size={size}"]
    if warm:
        cmd += ["--norandommap", "--time_based", f"--runtime={runtime}"]
    else:
        # randommap (fio's default): each 4 KiB block at most once, so every read is a miss
        # bounded: a slow peer stops after 20 s (its IOPS and percentiles stay valid)
        cmd += [f"--io_size={io_size}", "--runtime=20"]
    if pin is not None:
        cmd = ["taskset", "-c", str(pin), *cmd]
    out = run(cmd, capture_output=True, text=True).stdout
    j = json.loads(out[out.index("{"):])
    r = j["jobs"][0]["read"]
    pct = r["clat_ns"].get("percentile", {})
    return {"iops": r["iops"], "ios": r["total_ios"],
            "p50_us": pct.get("50.000000", 0) / 1000, "p99_us": pct.get("99.000000", 0) / 1000,
            "p999_us": pct.get("99.900000", 0) / 1000, "mean_us": r["clat_ns"]["mean"] / 1000}


def walk(root, headers, entry="header.json", twice=False):
    """Lists every directory and stats every entry, plus entry/<entry> when `headers`, or the
    entry a second time when `twice` (native's walk with payloadfs's number of stat calls)."""
    t0 = time.perf_counter()
    n = 0
    for d in sorted(os.listdir(root)):
        dp = os.path.join(root, d)
        for name in os.listdir(dp):
            p = dp + "/" + name
            os.stat(p)
            if headers:
                os.stat(p + "/" + entry)
            elif twice:
                os.stat(p)
            n += 1
    return time.perf_counter() - t0, n


def full_walk(root):
    """A recursive scandir + lstat of every entry below root (find/du/ls -R alike); the
    control directory is not walked."""
    t0 = time.perf_counter()
    n = 0
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                os.lstat(e.path)
                n += 1
                if e.is_dir(follow_symlinks=False) and e.name != ".payloadfs":
                    stack.append(e.path)
    return time.perf_counter() - t0, n


REQUEST_COUNTERS = ("lookups", "getattrs", "readdirs", "opendirs", "opens", "reads")


def requests_between(before, after, overhead):
    """Requests that reached the daemon between two stats.json snapshots, less what reading
    stats.json itself costs (`overhead`, measured as two snapshots in a row)."""
    if not before or not after:
        return None
    return sum(after.get(k, 0) - before.get(k, 0) for k in REQUEST_COUNTERS) - overhead


# ----------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.cfg = dict(QUICK if args.quick else FULL)
        if args.reps:
            self.cfg["reps"] = args.reps
        self.work = os.path.abspath(args.workdir)
        self.data_root = os.path.join(self.work, "data")
        self.payloadfs = os.path.abspath(args.payloadfs)
        self.systems = [s for s in ALL_SYSTEMS if s in args.systems.split(",")]
        self.samples = []
        self.pin = args.pin_cpu
        self.out = os.path.abspath(args.out or os.path.join(self.work, "results"))

    # ------------------------------------------------------------------ data
    def src_dir(self, source):
        return os.path.join(self.data_root, "src" if source == "main" else f"m4-{source}")

    def image(self, source):
        return os.path.join(self.data_root, "img", f"{source}.sqfs")

    def stamp(self):
        return json.dumps({k: self.cfg[k] for k in
                           ("seq_size", "rand_size", "tree_dirs", "tree_per_dir", "real_each",
                            "m4_big")}, sort_keys=True)

    def prepare(self):
        os.makedirs(self.data_root, exist_ok=True)
        if self.args.source_fs == "tmpfs" and not is_mounted(self.data_root):
            need = self.cfg["seq_size"] + self.cfg["rand_size"]
            size_mib = (2 * need + 2 * GiB) // MiB  # sources + their squashfs image
            run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "bench-src",
                 self.data_root])
        stamp_path = os.path.join(self.data_root, "stamp.json")
        if os.path.exists(stamp_path) and open(stamp_path).read() == self.stamp():
            log("data: reusing " + self.data_root)
        else:
            for d in os.listdir(self.data_root):
                p = os.path.join(self.data_root, d)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
            self.generate()
            with open(stamp_path, "w") as f:
                f.write(self.stamp())
        self.make_images()

    def make_images(self):
        """squashfuse's images, when it is measured and they are missing (data kept by a run
        without squashfuse has none)."""
        if "squashfuse" not in self.systems:
            return
        os.makedirs(f"{self.data_root}/img", exist_ok=True)
        for name in ("main", "one", "big"):
            if os.path.exists(self.image(name)):
                continue
            log(f"data: uncompressed squashfs image of {name}")
            run(["mksquashfs", self.src_dir(name), self.image(name), "-noI", "-noD", "-noF",
                 "-noX", "-no-xattrs", "-noappend", "-quiet", "-no-progress",
                 "-processors", "2"], stdout=subprocess.DEVNULL)

    def generate(self):
        import numpy as np
        from PIL import Image
        import wave

        c = self.cfg
        rng = np.random.default_rng(6)
        src = self.src_dir("main")
        os.makedirs(f"{src}/big")
        for name, size in (("seq.bin", c["seq_size"]), ("rand.bin", c["rand_size"])):
            log(f"data: {name} {size >> 20} MiB")
            with open(f"{src}/big/{name}", "wb") as f:
                for _ in range(size // (16 * MiB)):
                    f.write(rng.bytes(16 * MiB))
        log(f"data: tree of {c['tree_dirs'] * c['tree_per_dir']} npy payloads")
        for d in range(c["tree_dirs"]):
            dp = f"{src}/tree/d{d:03d}"
            os.makedirs(dp)
            for i in range(c["tree_per_dir"]):
                n = 8 + (i * 7) % 120
                np.save(f"{dp}/p{i:05d}.npy", np.arange(n, dtype="<f4").reshape(n // 4, 4)
                        if n % 4 == 0 else np.arange(n, dtype="<f4"))
        log(f"data: {4 * c['real_each']} real-format files (png, wav, elf, npy)")
        real = f"{src}/real"
        os.makedirs(real)
        elves = []
        for p in sorted(glob.glob("/usr/bin/*")):
            try:
                if os.path.isfile(p) and not os.path.islink(p) and \
                        4096 < os.path.getsize(p) < 256 * 1024:
                    with open(p, "rb") as f:
                        if f.read(4) == b"\x7fELF":
                            elves.append(p)
            except OSError:
                pass
            if len(elves) >= 60:
                break
        for i in range(c["real_each"]):
            w, h = 16 + i % 48, 16 + (i * 3) % 48
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                f"{real}/r{i:04d}.png")
            with wave.open(f"{real}/r{i:04d}.wav", "wb") as wv:
                wv.setnchannels(1 + i % 2)
                wv.setsampwidth(2)
                wv.setframerate(8000 + 100 * (i % 10))
                wv.writeframes(rng.integers(-3000, 3000, 400 * (1 + i % 2), dtype="<i2").tobytes())
            shutil.copyfile(elves[i % len(elves)], f"{real}/r{i:04d}.elf")
            np.save(f"{real}/r{i:04d}.npy", rng.standard_normal((4 + i % 13, 3 + i % 7)))
        for name, count in (("one", 1), ("big", c["m4_big"])):
            root = self.src_dir(name)
            log(f"data: {count} source files for M4 ({name})")
            per = 1000
            for i in range(count):
                d = f"{root}/d{i // per:03d}"
                if i % per == 0:
                    os.makedirs(d)
                with open(f"{d}/f{i:06d}", "wb") as f:
                    f.write(b"payload\n")

    # ------------------------------------------------------------------ helpers
    def open(self, system, source="main", pin=None, daemonize=False):
        if system == "native":
            return Native(self, source)
        return Mount(self, system, source, pin=pin, daemonize=daemonize)

    def add(self, metric, system, rep, value, unit, **detail):
        self.samples.append({"metric": metric, "system": system, "rep": rep, "value": value,
                             "unit": unit, **detail})

    def note_rss(self, m, metric, rep):
        if m.rss_at_unmount:
            self.add(f"rss_after_{metric}", m.system, rep, m.rss_at_unmount.get("RssAnon", 0) / 1024,
                     "MiB", **m.rss_at_unmount)

    # ------------------------------------------------------------------ metrics
    def m1(self, system, rep):
        size = self.cfg["seq_size"]
        with self.open(system) as m:
            p = m.data("big/seq.bin", size)
            n1, t1 = seq_read(p)
            n2, t2 = seq_read(p)
            assert n1 == n2 == size, (n1, n2, size)
        self.add("m1_first", system, rep, size / t1 / 1e9, "GB/s", seconds=t1)
        self.add("m1_second", system, rep, size / t2 / 1e9, "GB/s", seconds=t2)
        self.note_rss(m, "m1", rep)

    def m2_cold(self, system, rep):
        size, c = self.cfg["rand_size"], self.cfg
        for variant, pin, jobs in (("pin", self.pin, 1), ("unpin", None, 1), ("8", None, 8)):
            with self.open(system, pin=pin) as m:
                p = m.data("big/rand.bin", size)
                before = m.stats()
                if jobs == 1:
                    r = fio(p, size=size, io_size=c["cold_ios"] * 4096, pin=pin, seed=rep + 1)
                else:
                    per = c["cold8_ios"] // jobs * 4096
                    r = fio(p, size=size, region=size // jobs, io_size=per, jobs=jobs,
                            seed=rep + 1)
                after = m.stats()
            extra = {}
            if before:
                extra = {f"fuse_{k}": after[k] - before[k] for k in ("reads", "getattrs", "opens")}
            self.add(f"m2_{variant}_p50", system, rep, r["p50_us"], "us", **r, **extra)
            self.add(f"m2_{variant}_p999", system, rep, r["p999_us"], "us")
            self.add(f"m2_{variant}_p99", system, rep, r["p99_us"], "us")
            self.add(f"m2_{variant}_iops", system, rep, r["iops"], "IOPS")
            self.note_rss(m, f"m2_{variant}", rep)

    def m2_warm(self, system, rep):
        region = self.cfg["warm_region"]
        size = self.cfg["rand_size"]
        with self.open(system) as m:
            p = m.data("big/rand.bin", size)
            # fill the page cache of exactly the region fio reads (one sequential pass)
            fd = os.open(p, os.O_RDONLY)
            buf = bytearray(MiB)
            off = 0
            while off < region:
                off += os.preadv(fd, [buf], off)
            os.close(fd)
            before = m.stats()
            r1 = fio(p, size=region, warm=True, runtime=self.cfg["warm_runtime"], seed=rep + 1)
            r8 = fio(p, size=region, jobs=8, warm=True,
                     runtime=self.cfg["warm_runtime"], seed=rep + 1)
            after = m.stats()
        extra = {f"fuse_{k}": after[k] - before[k] for k in ("reads", "getattrs", "opens")} \
            if before else {}
        self.add("m2w_1_iops", system, rep, r1["iops"], "IOPS", **r1, **extra)
        self.add("m2w_1_p50", system, rep, r1["p50_us"], "us")
        self.add("m2w_8_iops", system, rep, r8["iops"], "IOPS", **r8)
        self.add("m2w_8_p999", system, rep, r8["p999_us"], "us")
        self.note_rss(m, "m2w", rep)

    def m3(self, system, rep):
        with self.open(system) as m:
            headers = system.startswith("payloadfs")
            t1, n1 = walk(m.path("tree"), headers)
            t2, n2 = walk(m.path("tree"), headers)
            st = m.stats()
        expect = self.cfg["tree_dirs"] * self.cfg["tree_per_dir"]
        assert n1 == n2 == expect, (n1, n2, expect)
        self.add("m3_first", system, rep, t1 * 1e3, "ms", entries=n1)
        self.add("m3_second", system, rep, t2 * 1e3, "ms", entries=n2,
                 **({"stats": st} if st else {}))
        self.note_rss(m, "m3", rep)
        # What stands under the targets: native with the same number of stat calls, and
        # payloadfs's walk with a lookup that parses nothing (range/), on a fresh mount.
        if system == "native":
            t1, _ = walk(self.src_dir("main") + "/tree", False, twice=True)
            t2, _ = walk(self.src_dir("main") + "/tree", False, twice=True)
            self.add("m3_2stat_first", system, rep, t1 * 1e3, "ms")
            self.add("m3_2stat_second", system, rep, t2 * 1e3, "ms")
        elif headers:
            with self.open(system) as m:
                t1, _ = walk(m.path("tree"), True, entry="range")
            self.add("m3_floor_first", system, rep, t1 * 1e3, "ms")

    def m8(self, system, rep):
        """Full walk of the tree (every entry, recursively), first and second pass after a
        fresh mount, unpinned and pinned (reader and daemon on one vCPU)."""
        for pinned in (False, True):
            pin = self.pin if pinned else None
            suffix = "_pinned" if pinned else ""
            saved = os.sched_getaffinity(0)
            with self.open(system, pin=pin) as m:
                if pinned:
                    os.sched_setaffinity(0, {pin})
                try:
                    s_ = m.stats()
                    s0 = m.stats()
                    overhead = requests_between(s_, s0, 0) or 0
                    t1, n1 = full_walk(m.path("tree"))
                    s1 = m.stats()
                    t2, n2 = full_walk(m.path("tree"))
                    s2 = m.stats()
                finally:
                    os.sched_setaffinity(0, saved)
            assert n1 == n2, (n1, n2)
            self.add(f"m8_first{suffix}", system, rep, t1 * 1e3, "ms", entries=n1,
                     requests=requests_between(s0, s1, overhead))
            self.add(f"m8_second{suffix}", system, rep, t2 * 1e3, "ms", entries=n2,
                     requests=requests_between(s1, s2, overhead))

    def m4(self, system, rep):
        if system == "native":
            return
        for source in ("one", "big"):
            # the ordinary way each tool is started (payloadfs, bindfs and squashfuse_ll
            # daemonize; rclone mount stays in the foreground); exec -> root stat answered
            mnt = os.path.join(self.work, "mnt", system)
            os.makedirs(mnt, exist_ok=True)
            m = Mount(self, system, source, daemonize=True)
            parent_dev = os.stat(os.path.dirname(mnt)).st_dev
            t0 = time.perf_counter()
            proc = subprocess.Popen(m.command(), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=dict(os.environ, RCLONE_CONFIG="/dev/null"))
            STARTED.append((proc, mnt))
            try:
                t1 = wait_mounted(mnt, parent_dev, None)
                os.listdir(mnt)
            finally:
                unmount(mnt, proc)
                STARTED.remove((proc, mnt))
            self.add(f"m4_{source}", system, rep, (t1 - t0) * 1e3, "ms")

    def m6(self, system, rep):
        if system not in ("payloadfs", "payloadfs-tuned"):
            return
        helper = os.path.join(HERE, "m6_read.py")
        with self.open(system) as m:
            t0 = time.perf_counter()
            out = run(["/usr/bin/python3", helper, "payloadfs", m.path("real"), "2"],
                      capture_output=True, text=True).stdout
            wall = time.perf_counter() - t0
        r = json.loads(out)
        self.add("m6_cold_wall", system, rep, wall * 1e3, "ms", **r)
        self.add("m6_cold_loop", system, rep, r["passes"][0] * 1e3, "ms")
        self.add("m6_warm_loop", system, rep, r["passes"][1] * 1e3, "ms")
        if system == "payloadfs":
            # the references, over the same source files (not through a mount)
            real = self.src_dir("main") + "/real"
            t0 = time.perf_counter()
            ex = run(["exiftool", "-json", "-q", "-q", real], capture_output=True, text=True,
                     check=False)
            wall = time.perf_counter() - t0
            n = len(json.loads(ex.stdout)) if ex.stdout.strip() else 0
            self.add("m6_cold_wall", "exiftool", rep, wall * 1e3, "ms", files=n)
            t0 = time.perf_counter()
            ins = run([self.payloadfs, "--inspect", "--compact", real], capture_output=True,
                      text=True, check=False)
            wall = time.perf_counter() - t0
            self.add("m6_inspect_wall", "payloadfs", rep, wall * 1e3, "ms",
                     files=len(ins.stdout.splitlines()))
            t0 = time.perf_counter()
            out = run(["/usr/bin/python3", helper, "python", real, "2"], capture_output=True,
                      text=True).stdout
            wall = time.perf_counter() - t0
            r = json.loads(out)
            self.add("m6_cold_wall", "python", rep, wall * 1e3, "ms", **r)
            self.add("m6_cold_loop", "python", rep, r["passes"][0] * 1e3, "ms")
            self.add("m6_warm_loop", "python", rep, r["passes"][1] * 1e3, "ms")

    def m5_whole_run(self, system):
        """One mount doing every workload in turn; RssAnon of the daemon at the end."""
        c = self.cfg
        with self.open(system) as m:
            seq_read(m.data("big/seq.bin", c["seq_size"]))
            fio(m.data("big/rand.bin", c["rand_size"]), size=c["rand_size"],
                io_size=c["cold_ios"] * 4096)
            fio(m.data("big/rand.bin", c["rand_size"]), size=c["rand_size"],
                region=c["rand_size"] // 8, io_size=c["cold8_ios"] // 8 * 4096, jobs=8)
            headers = system.startswith("payloadfs")
            walk(m.path("tree"), headers)
            walk(m.path("tree"), headers)
            if headers:
                run(["/usr/bin/python3", os.path.join(HERE, "m6_read.py"), "payloadfs",
                     m.path("real")], capture_output=True)
            else:
                for name in sorted(os.listdir(m.path("real"))):
                    with open(m.path("real") + "/" + name, "rb") as f:
                        f.read(4096)
            r = rss(m.pid)
            st = m.stats()
        self.add("m5_rss_anon", system, 0, r.get("RssAnon", 0) / 1024, "MiB", **r,
                 **({"stats": st} if st else {}))

    def m7(self):
        tmp = os.path.join(self.work, "payloadfs.stripped")
        run(["strip", "-o", tmp, self.payloadfs])
        self.add("m7_stripped", "payloadfs", 0, os.path.getsize(tmp) / MiB, "MiB",
                 unstripped_bytes=os.path.getsize(self.payloadfs),
                 stripped_bytes=os.path.getsize(tmp))

    # ------------------------------------------------------------------ driver
    def measure(self):
        metrics = [("M1", self.m1), ("M2", self.m2_cold), ("M2w", self.m2_warm),
                   ("M3", self.m3), ("M4", self.m4), ("M6", self.m6), ("M8", self.m8)]
        only = set(self.args.metrics.split(",")) if self.args.metrics else None
        reps = self.cfg["reps"]
        for rep in range(reps):
            for k, (name, fn) in enumerate(metrics):
                if only and name not in only:
                    continue
                n = len(self.systems)
                order = [self.systems[(i + rep + k) % n] for i in range(n)]
                for system in order:
                    log(f"rep {rep + 1}/{reps} {name} {system}")
                    try:
                        fn(system, rep)
                    except Exception as e:  # noqa: BLE001 - record and go on
                        log(f"  FAILED: {e!r}")
                        self.add(f"error_{name}", system, rep, 0, "", error=repr(e))
        if not only or "M5" in only:
            for system in self.systems:
                if system == "native":
                    continue
                log(f"M5 whole-run mount {system}")
                try:
                    self.m5_whole_run(system)
                except Exception as e:  # noqa: BLE001
                    log(f"  FAILED: {e!r}")
                    self.add("error_M5", system, 0, 0, "", error=repr(e))
        self.m7()

    def environment(self):
        def cmd(c):
            try:
                return run(c, capture_output=True, text=True, check=False).stdout.strip() or \
                    run(c, capture_output=True, text=True, check=False).stderr.strip()
            except OSError:
                return "?"

        def pkg(p):
            return cmd(["dpkg-query", "-W", "-f=${Version}", p])

        cpu = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem = open("/proc/meminfo").readline().split()[1]
        return {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "kernel": platform.release(), "cpus": os.cpu_count(), "cpu": cpu,
            "mem_gib": round(int(mem) / 2**20, 1),
            "libfuse3": pkg("libfuse3-3"), "fuse3": pkg("fuse3"),
            "bindfs": pkg("bindfs"), "squashfuse": pkg("squashfuse"), "rclone": pkg("rclone"),
            "fio": pkg("fio"), "exiftool": pkg("libimage-exiftool-perl"),
            "payloadfs": cmd([self.payloadfs, "--version"]).splitlines()[0],
            "payloadfs_commit": cmd(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
            "source_fs": self.args.source_fs, "pin_cpu": self.pin,
            "config": self.cfg, "systems": self.systems, "tuned_opts": TUNED_OPTS,
            "tuned_read_ahead_kb": TUNED_RA_KB,
        }


# ----------------------------------------------------------------------------------------
# summary

ROWS = [  # key, label, unit, higher is better
    ("m1_first", "M1 seq 1 MiB reads, first read after mount", "GB/s", True),
    ("m1_second", "M1b seq, second read (new open)", "GB/s", True),
    ("m2_pin_p50", "M2 4K rand cold, 1 reader pinned: p50", "µs", False),
    ("m2_pin_p999", "M2 4K rand cold, 1 reader pinned: p99.9", "µs", False),
    ("m2_pin_iops", "M2 4K rand cold, 1 reader pinned: IOPS", "IOPS", True),
    ("m2_unpin_p50", "M2 4K rand cold, 1 reader unpinned: p50", "µs", False),
    ("m2_unpin_p999", "M2 4K rand cold, 1 reader unpinned: p99.9", "µs", False),
    ("m2_8_iops", "M2 4K rand cold, 8 readers: IOPS", "IOPS", True),
    ("m2_8_p50", "M2 4K rand cold, 8 readers: p50", "µs", False),
    ("m2_8_p999", "M2 4K rand cold, 8 readers: p99.9", "µs", False),
    ("m2w_1_iops", "M2w 4K rand warm, 1 reader: IOPS", "IOPS", True),
    ("m2w_1_p50", "M2w 4K rand warm, 1 reader: p50", "µs", False),
    ("m2w_8_iops", "M2w 4K rand warm, 8 readers: IOPS", "IOPS", True),
    ("m2w_8_p999", "M2w 4K rand warm, 8 readers: p99.9", "µs", False),
    ("m3_first", "M3 walk 10k payloads, first pass", "ms", False),
    ("m3_second", "M3 walk, second pass", "ms", False),
    ("m3_2stat_first", "M3 native walk with 2 stat calls an entry, first pass", "ms", False),
    ("m3_2stat_second", "M3 native walk with 2 stat calls an entry, second pass", "ms", False),
    ("m3_floor_first", "M3 walk with P/range for P/header.json (no parse), first pass", "ms",
     False),
    ("m8_first", "M8 full walk (scandir + lstat of every entry), first pass", "ms", False),
    ("m8_second", "M8 full walk, second pass", "ms", False),
    ("m8_first_pinned", "M8 full walk pinned, first pass", "ms", False),
    ("m8_second_pinned", "M8 full walk pinned, second pass", "ms", False),
    ("m6_inspect_wall", "M6 payloadfs --inspect of the 1,000 files", "ms", False),
    ("m4_one", "M4 mount-ready, 1 source file", "ms", False),
    ("m4_big", "M4 mount-ready, 100k source files", "ms", False),
    ("m5_rss_anon", "M5 daemon RssAnon after a whole run", "MiB", False),
]


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 10000:
        return f"{v / 1000:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(samples):
    by = {}
    for s in samples:
        by.setdefault((s["metric"], s["system"]), []).append(s["value"])
    return {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
            for k, v in by.items()}


def get(summary, metric, system):
    return summary.get((metric, system), {}).get("median")


def targets(summary, samples=()):
    g = lambda m, s="payloadfs": get(summary, m, s)  # noqa: E731
    out = []

    def check(name, target, value_text, ok):
        out.append((name, target, value_text, None if ok is None else bool(ok)))

    def ratio(a, b):
        return a / b if a is not None and b else None

    r = ratio(g("m1_first"), g("m1_first", "native"))
    check("M1", "≥ 0.5× native", f"{fmt(r)}×" if r else "–", r and r >= 0.5)
    r = ratio(g("m1_second"), g("m1_second", "native"))
    check("M1b", "≥ 0.9× native", f"{fmt(r)}×" if r else "–", r and r >= 0.9)
    p50, p999 = g("m2_pin_p50"), g("m2_pin_p999")
    check("M2 pinned p50", "≤ 6 µs", f"{fmt(p50)} µs", p50 is not None and p50 <= 6)
    r = ratio(p999, p50)
    check("M2 pinned p99.9", "≤ 5× own p50", f"{fmt(p999)} µs = {fmt(r)}× p50", r and r <= 5)
    r = ratio(g("m2_8_iops"), g("m2_8_iops", "bindfs"))
    check("M2 8 readers IOPS", "≥ 1.2× bindfs", f"{fmt(g('m2_8_iops'))} = {fmt(r)}× bindfs",
          r and r >= 1.2)
    r = ratio(g("m2_8_p999"), g("m2_8_p50"))
    check("M2 8 readers p99.9", "≤ 10× own p50", f"{fmt(g('m2_8_p999'))} µs = {fmt(r)}× p50",
          r and r <= 10)
    for k, label in (("m2w_1_iops", "M2w 1 reader"), ("m2w_8_iops", "M2w 8 readers")):
        r = ratio(g(k), g(k, "native"))
        check(label, "≥ 0.8× native IOPS", f"{fmt(r)}×" if r else "–", r and r >= 0.8)
    r = ratio(g("m3_first"), g("m3_first", "native"))
    check("M3 first pass", "≤ 3× native", f"{fmt(r)}×" if r else "–", r and r <= 3)
    r = ratio(g("m3_second"), g("m3_second", "native"))
    check("M3 second pass", "≤ 1.5× native", f"{fmt(r)}×" if r else "–", r and r <= 1.5)
    one, big = g("m4_one"), g("m4_big")
    check("M4", "≤ 10 ms, 100k files = 1 file", f"{fmt(one)} / {fmt(big)} ms",
          one is not None and big is not None and one <= 10 and big <= 10
          and big <= one * 1.5 + 1)
    v = g("m5_rss_anon")
    check("M5", "RssAnon ≤ 16 MiB", f"{fmt(v)} MiB", v is not None and v <= 16)
    pw, ew, pl = g("m6_cold_wall"), g("m6_cold_wall", "exiftool"), g("m6_cold_loop", "python")
    ploop = g("m6_cold_loop")
    r = ratio(ew, pw)
    check("M6 vs exiftool", "≥ 10× faster", f"{fmt(r)}× ({fmt(pw)} vs {fmt(ew)} ms)",
          r and r >= 10)
    r = ratio(pl, ploop)
    check("M6 vs python loop", "faster", f"{fmt(r)}× ({fmt(ploop)} vs {fmt(pl)} ms, loops)",
          r and r > 1)
    # Issue #15's targets (payloadfs shows 5 entries and more a payload; bindfs 1 a file).
    for suffix, label in (("", ""), ("_pinned", " pinned")):
        r = ratio(g(f"m8_first{suffix}"), g(f"m8_first{suffix}", "bindfs"))
        check(f"M8 full walk{label}, first pass", "≤ 2× bindfs",
              f"{fmt(r)}× ({fmt(g(f'm8_first{suffix}'))} ms)" if r else "–", r and r <= 2)
        r = ratio(g(f"m8_second{suffix}"), g(f"m8_second{suffix}", "native"))
        check(f"M8 full walk{label}, second pass", "≤ 5× native",
              f"{fmt(r)}× ({fmt(g(f'm8_second{suffix}'))} ms)" if r else "–", r and r <= 5)
    reqs = [x.get("requests") for x in samples
            if x["metric"].startswith("m8_second") and x["system"] == "payloadfs"]
    reqs = [x for x in reqs if x is not None]
    check("M8 second pass, requests reaching the daemon", "0",
          ", ".join(str(x) for x in reqs) or "–", bool(reqs) and max(reqs) == 0)
    r = ratio(g("m3_first"), g("m3_first", "bindfs"))
    check("M3 first pass vs bindfs", "≤ 0.8× bindfs", f"{fmt(r)}×" if r else "–", r and r <= 0.8)
    r = ratio(g("m3_second"), g("m3_2stat_second", "native"))
    check("M3 second pass vs native, same calls", "≤ 1.2×", f"{fmt(r)}×" if r else "–",
          r and r <= 1.2)
    r = ratio(ew, pw)
    check("M6 vs exiftool (#15)", "≥ 4× faster", f"{fmt(r)}×", r and r >= 4)
    r = ratio(g("m6_warm_loop", "python"), g("m6_warm_loop"))
    check("M6 second pass vs python loop", "faster",
          f"{fmt(r)}× ({fmt(g('m6_warm_loop'))} vs {fmt(g('m6_warm_loop', 'python'))} ms)",
          r and r > 1)
    r = ratio(ew, g("m6_inspect_wall"))
    check("--inspect vs exiftool", "≥ 25× faster", f"{fmt(r)}×", r and r >= 25)
    for k, label in (("m1_first", "M1"), ("m1_second", "M1b"), ("m2_8_iops", "M2 8 readers")):
        r = ratio(g(k), g(k, "bindfs"))
        check(f"{label} vs bindfs", "≥ 1.0×", f"{fmt(r)}×" if r else "–", r and r >= 1.0)
    v = g("m7_stripped")
    check("M7", "≤ 2 MiB", f"{fmt(v)} MiB", v is not None and v <= 2)
    return out


def markdown(samples, env, systems):
    s = summarize(samples)
    lines = ["### Absolute figures (median [min–max] over the repetitions)", ""]
    lines.append("| metric | " + " | ".join(systems) + " |")
    lines.append("|---|" + "---|" * len(systems))
    for key, label, unit, _ in ROWS:
        cells = []
        for sy in systems:
            v = s.get((key, sy))
            if not v:
                cells.append("–")
            elif v["n"] == 1:
                cells.append(fmt(v["median"]))
            else:
                cells.append(f"{fmt(v['median'])} [{fmt(v['min'])}–{fmt(v['max'])}]")
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    lines += ["", "### Ratios to native (median / native median; ↑ higher is better, "
              "↓ lower is better)", ""]
    fuse = [x for x in systems if x != "native"]
    lines.append("| metric | " + " | ".join(fuse) + " |")
    lines.append("|---|" + "---|" * len(fuse))
    for key, label, unit, hib in ROWS:
        nat = get(s, key, "native")
        if not nat:
            continue
        cells = [f"{fmt(get(s, key, sy) / nat)}×" if get(s, key, sy) is not None else "–"
                 for sy in fuse]
        lines.append(f"| {label} {'↑' if hib else '↓'} | " + " | ".join(cells) + " |")
    bind = get(s, "m2_8_iops", "bindfs")
    if bind:
        cells = [f"{fmt(get(s, 'm2_8_iops', sy) / bind)}×" if get(s, "m2_8_iops", sy) else "–"
                 for sy in fuse]
        lines.append("| M2 8 readers IOPS / bindfs ↑ | " + " | ".join(cells) + " |")
    lines += ["", "### M6 header extraction, 1,000 real files (median [min–max], ms)", ""]
    lines.append("| reader | wall (process) | loop, first pass | loop, second pass |")
    lines.append("|---|---|---|---|")
    for sy, label in (("payloadfs", "payloadfs: read+json.loads every header.json "
                       "(fresh mount)"),
                      ("payloadfs-tuned", "payloadfs-tuned: same"),
                      ("python", "python3 loop: numpy / PIL / wave / struct on the sources"),
                      ("exiftool", "`exiftool -json` over the sources")):
        cells = []
        for key in ("m6_cold_wall", "m6_cold_loop", "m6_warm_loop"):
            v = s.get((key, sy))
            cells.append(f"{fmt(v['median'])} [{fmt(v['min'])}–{fmt(v['max'])}]" if v else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    v = s.get(("m7_stripped", "payloadfs"))
    if v:
        lines += ["", f"M7: stripped release binary {v['median']:.2f} MiB."]
    lines += ["", "### Targets (payloadfs with its defaults)", "",
              "| target | wanted | measured | |", "|---|---|---|---|"]
    for name, target, value, ok in targets(s, samples):
        mark = "–" if ok is None else ("met" if ok else "**not met**")
        lines.append(f"| {name} | {target} | {value} | {mark} |")
    errors = [x for x in samples if x["metric"].startswith("error_")]
    if errors:
        lines += ["", "### Failed measurements", ""]
        for e in errors:
            lines.append(f"- {e['metric']} {e['system']} rep {e['rep']}: {e['error']}")
    return "\n".join(lines) + "\n"


def chart(samples, systems, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summarize(samples)
    fuse = [x for x in systems if x != "native"]
    colors = {"payloadfs": "#1f77b4", "payloadfs-tuned": "#9ecae1", "bindfs": "#ff7f0e",
              "squashfuse": "#2ca02c", "rclone": "#d62728", "native": "#7f7f7f",
              "python": "#9467bd", "exiftool": "#8c564b"}
    rel = [("m1_first", "M1\nseq 1st", True), ("m1_second", "M1b\nseq 2nd", True),
           ("m2_pin_p50", "M2 cold\np50 pinned", False),
           ("m2_unpin_p50", "M2 cold\np50 unpinned", False),
           ("m2_8_iops", "M2 cold\n8r IOPS", True), ("m2w_1_iops", "M2w warm\n1r IOPS", True),
           ("m2w_8_iops", "M2w warm\n8r IOPS", True), ("m3_first", "M3 walk\n1st", False),
           ("m3_second", "M3 walk\n2nd", False)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [3.2, 1, 1]})
    ax = axes[0]
    w = 0.8 / len(fuse)
    for i, sy in enumerate(fuse):
        xs, ys = [], []
        for j, (key, _, hib) in enumerate(rel):
            v, nat = get(s, key, sy), get(s, key, "native")
            if v and nat:
                xs.append(j + (i - (len(fuse) - 1) / 2) * w)
                ys.append(v / nat if hib else nat / v)
        ax.bar(xs, ys, w, label=sy, color=colors.get(sy))
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rel)))
    ax.set_xticklabels([r[1] for r in rel], fontsize=7.5)
    ax.set_ylabel("speed relative to native (log; 1 = native)")
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    ax.set_title("FUSE systems vs native, same data", fontsize=9)

    ax = axes[1]
    for i, sy in enumerate(systems):
        for k, (key, hatch) in enumerate((("m2_pin_p50", None), ("m2_pin_p999", "//"))):
            v = get(s, key, sy)
            if v:
                ax.bar(i + (k - 0.5) * 0.4, v, 0.4, color=colors.get(sy), hatch=hatch,
                       edgecolor="k" if hatch else None, lw=0.3)
    ax.set_yscale("log")
    ax.set_xticks(range(len(systems)))
    ax.set_xticklabels(systems, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("µs (log)")
    ax.set_title("M2 cold 4K, 1 reader pinned:\np50 (plain), p99.9 (hatched)", fontsize=9)

    ax = axes[2]
    names = ["payloadfs", "payloadfs-tuned", "python", "exiftool"]
    vals = [get(s, "m6_cold_wall", n) for n in names]
    names = [n for n, v in zip(names, vals) if v]
    vals = [v for v in vals if v]
    ax.bar(range(len(names)), vals, 0.6, color=[colors[n] for n in names])
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("ms (log), whole process")
    ax.set_title("M6 headers of 1,000 real files", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


# ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", default="/tmp/payloadfs-bench")
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 repetition")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 3, quick 1)")
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    ap.add_argument("--metrics", default="", help="subset, e.g. M1,M3 (default all)")
    ap.add_argument("--source-fs", choices=("tmpfs", "disk"), default="tmpfs")
    ap.add_argument("--pin-cpu", type=int, default=1)
    ap.add_argument("--payloadfs", default=os.path.join(REPO, "build/release/cli/payloadfs"))
    ap.add_argument("--out", default="", help="results directory (default WORKDIR/results)")
    ap.add_argument("--keep-data", action="store_true", help="leave the tmpfs data mounted")
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild results.md and the chart from OUT/results.json")
    args = ap.parse_args()
    b = Bench(args)
    os.makedirs(b.out, exist_ok=True)
    jpath = os.path.join(b.out, "results.json")
    if args.report_only:
        doc = json.load(open(jpath))
    else:
        if os.geteuid() != 0 and args.source_fs == "tmpfs":
            sys.exit("bench: run as root (tmpfs sources, read_ahead_kb), or use --source-fs disk")
        try:
            b.prepare()
            b.measure()
        finally:
            cleanup_all()
            if args.source_fs == "tmpfs" and not args.keep_data and is_mounted(b.data_root):
                run(["umount", b.data_root], check=False)
        doc = {"environment": b.environment(), "samples": b.samples,
               "elapsed_s": round(time.monotonic() - T0, 1)}
        with open(jpath, "w") as f:
            json.dump(doc, f, indent=1)
    systems = doc["environment"]["systems"]
    md = markdown(doc["samples"], doc["environment"], systems)
    with open(os.path.join(b.out, "results.md"), "w") as f:
        f.write(md)
    chart(doc["samples"], systems, os.path.join(b.out, "results.png"))
    print(md)
    log(f"results in {b.out} (results.json, results.md, results.png)")


if __name__ == "__main__":
    main()
