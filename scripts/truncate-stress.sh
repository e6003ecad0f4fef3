#!/usr/bin/env bash
# Sources that change under the mount: a writer truncates and regrows one source file in a
# loop for SECONDS (default 30) while 4 readers read raw/data, range/ files and header.json
# through the mount. The mount must stay up, and every byte a reader gets must be the byte of
# some version of the file at that offset.
#
# The file is an .npy array of uint8 whose header is always 128 bytes; version v has a random
# size and data byte f(v, o) = 1 + ((7 v + o) mod 251) at file offset o >= 128: never 0 (so a
# zero-filled page is caught), and f(v, o) tells v mod 251, so a byte is valid when a version of
# that residue was at least o + 1 bytes long. Header bytes are checked against every header
# written. Expected and counted: EIO (reads past a new end), ENOENT (a range or slice gone),
# ESTALE (a node opened after its version went away) and end-of-file before the size fstat gave
# at open (the file shrank meanwhile: a local file does the same). A wrong byte, invalid
# header.json, any other error or a dead mount fail.
#
#   scripts/truncate-stress.sh [SECONDS]
#   PAYLOADFS_BIN=path   use this binary instead of building build/dev
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-30}

if [ -z "${PAYLOADFS_BIN:-}" ]; then
  echo "== build (build/dev)"
  cmake -S . -B build/dev -DPAYLOADFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build/dev -j "$(nproc)" --target payloadfs >/dev/null
  PAYLOADFS_BIN=$root/build/dev/cli/payloadfs
fi

work=$(mktemp -d /tmp/payloadfs-truncate.XXXXXX)
mkdir -p "$work/src" "$work/mnt"
cleanup() {
  local rc=$?
  if grep -qs " $work/mnt " /proc/self/mountinfo; then
    fusermount3 -u "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null ||
      umount -l "$work/mnt" || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

/usr/bin/python3 - "$work/src/changing.npy" init <<'EOF'
import sys
open(sys.argv[1], "wb").close()
EOF
"$PAYLOADFS_BIN" "$work/src" "$work/mnt"
pid=$(pgrep -f -- " $work/mnt( |$)" | head -1)
[ -n "$pid" ] || { echo "no daemon found"; exit 1; }
echo "== writer + 4 readers for ${seconds}s (daemon pid $pid)"

/usr/bin/python3 - "$work/src/changing.npy" "$work/mnt/changing.npy" "$seconds" "$pid" <<'EOF'
import errno, json, os, random, sys, threading, time
import numpy as np

src, payload, seconds, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
HEADER = 128
M = 251
INV7 = pow(7, -1, M)
MAX_DATA = 2 << 20

def header_bytes(n):
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % n
    text = text.ljust(HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + (HEADER - 10).to_bytes(2, "little") + text.encode()

def data_bytes(v, n):
    o = np.arange(HEADER, HEADER + n, dtype=np.int64)
    return (1 + (7 * v + o) % M).astype(np.uint8).tobytes()

lock = threading.Lock()
max_size = np.zeros(M, dtype=np.int64)   # per residue of v: longest version size
header_ok = np.zeros((HEADER, 256), dtype=bool)  # bytes seen at each header offset
sizes = set()
stop = time.monotonic() + seconds
counts = {k: 0 for k in ("versions", "truncations", "raw_reads", "range_reads", "header_reads",
                         "bytes_checked", "eio", "enoent", "estale", "eof_early", "bad_bytes", "bad_json",
                         "other_errors", "torn_json_sizes")}
failures = {}  # category -> messages

def fail(category, message):
    with lock:
        failures.setdefault(category, []).append(message)

def record(v, size, header):
    with lock:
        r = v % M
        max_size[r] = max(max_size[r], size)
        header_ok[np.arange(HEADER), np.frombuffer(header, dtype=np.uint8)] = True
        sizes.add(size)

def check(offset, got, what):
    """Every byte must be some version's byte at its offset."""
    a = np.frombuffer(got, dtype=np.uint8)
    o = np.arange(offset, offset + len(a), dtype=np.int64)
    ok = np.zeros(len(a), dtype=bool)
    with lock:
        h = o < HEADER
        ok[h] = header_ok[o[h], a[h]]
        d = ~h
        b = a[d].astype(np.int64)
        r = ((b - 1 - o[d]) * INV7) % M
        ok[d] = (b >= 1) & (b <= M) & (max_size[r] > o[d])
    counts["bytes_checked"] += len(a)
    if not ok.all():
        i = int(np.argmin(ok))
        counts["bad_bytes"] += int((~ok).sum())
        bad = np.flatnonzero(~ok)
        fail("bad bytes", f"{what}: {len(bad)} of {len(a)} bytes match no version, first at offset "
                          f"{offset + i} (value {a[i]}), last at {offset + int(bad[-1])}; {int((a[bad] == 0).sum())} are 0")

def writer():
    v = 0
    f = open(src, "r+b")
    while time.monotonic() < stop:
        v += 1
        n = random.choice([0, 1, 4095, 4096, 4097, random.randrange(MAX_DATA)])
        header = header_bytes(n)
        record(v, HEADER + n, header)
        content = header + data_bytes(v, n)
        cut = random.randrange(os.fstat(f.fileno()).st_size + 1)
        os.ftruncate(f.fileno(), cut)   # shrink under the readers...
        counts["truncations"] += 1
        for at in range(0, len(content), 256 << 10):   # ...and regrow, in pieces
            os.pwrite(f.fileno(), content[at:at + (256 << 10)], at)
        os.ftruncate(f.fileno(), len(content))
        counts["versions"] = v
        time.sleep(random.random() * 0.01)

def read_file(path):
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        data = b""
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            data += chunk
        return size, data

def reader(seed):
    rng = random.Random(seed)
    while time.monotonic() < stop:
        kind = rng.choice(["raw", "range", "header"])
        try:
            if kind == "raw":
                size, data = read_file(f"{payload}/raw/data")
                counts["raw_reads"] += 1
                if len(data) != size:
                    counts["eof_early"] += 1
                check(HEADER, data, "raw/data")
            elif kind == "range":
                cur = os.stat(src).st_size
                a = rng.randrange(cur + 1)
                n = rng.randrange(min(cur - a, 1 << 20) + 1)
                size, data = read_file(f"{payload}/range/{a}+{n}")
                counts["range_reads"] += 1
                if len(data) != size:
                    counts["eof_early"] += 1
                check(a, data, f"range/{a}+{n}")
            else:
                size, data = read_file(f"{payload}/header.json")
                counts["header_reads"] += 1
                try:
                    h = json.loads(data)
                except ValueError as e:
                    counts["bad_json"] += 1
                    fail("bad header.json", f"{e}: {len(data)} bytes of {size}, ends {data[-60:]!r}")
                    continue
                if h["size"] not in sizes and h["size"] != 0:
                    counts["torn_json_sizes"] += 1  # a size seen mid-rewrite: fine
        except OSError as e:
            if e.errno == errno.EIO:
                counts["eio"] += 1
            elif e.errno == errno.ENOENT:
                counts["enoent"] += 1
            elif e.errno == errno.ESTALE:
                counts["estale"] += 1
            else:
                counts["other_errors"] += 1
                fail(f"errno {errno.errorcode.get(e.errno, e.errno)}", f"{kind}: {e}")
                if e.errno == errno.ENOTCONN:
                    return

def rss():
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        return -1
    return -1

threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
peak = 0
while any(t.is_alive() for t in threads):
    peak = max(peak, rss())
    time.sleep(0.2)
alive = os.path.exists(f"/proc/{pid}")
try:
    version = open(os.path.join(os.path.dirname(payload), ".payloadfs", "version")).read().strip()
except OSError as e:
    version, alive = f"unreadable: {e}", False
for k, v in counts.items():
    print(f"   {k:16} {v}")
print(f"   daemon RssAnon peak {peak} KiB; mount alive: {alive} ({version})")
for category, messages in failures.items():
    print(f"   FAIL {category}: {len(messages)}")
    for m in messages[:3]:
        print("        " + m)
bad = counts["bad_bytes"] + counts["bad_json"] + counts["other_errors"]
sys.exit(0 if alive and bad == 0 and counts["raw_reads"] + counts["range_reads"] > 0 else 1)
EOF
