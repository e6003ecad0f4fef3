#!/usr/bin/env bash
# More payloads than the daemon may open files: N small npy files (default 200,000, in
# directories of 1,000), mounted by a payloadfs started under `ulimit -n NOFILE` (default
# 1024), read in one pass (every header.json and every raw/data, with find | xargs cat).
# Reports the time, the failures (must be 0), the daemon's peak open descriptors (must stay
# below NOFILE) and its peak and final RssAnon, then checks 200 random slices byte for byte.
#
#   scripts/many-payloads.sh [N]
#   PAYLOADFS_BIN=path   use this binary instead of building build/dev
#   NOFILE=n             the daemon's descriptor limit (default 1024)
#   TMPDIR=dir           where the tree and the mount point go (default /tmp)
# Needs /dev/fuse and root (or fusermount3 for the user). Exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
count=${1:-200000}
nofile=${NOFILE:-1024}

if [ -z "${PAYLOADFS_BIN:-}" ]; then
  echo "== build (build/dev)"
  cmake -S . -B build/dev -DPAYLOADFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build/dev -j "$(nproc)" --target payloadfs >/dev/null
  PAYLOADFS_BIN=$root/build/dev/cli/payloadfs
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/payloadfs-many.XXXXXX")
src=$work/src
mnt=$work/mnt
mkdir -p "$src" "$mnt"
sampler=""
cleanup() {
  local rc=$?
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  if grep -qs " $mnt " /proc/self/mountinfo; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

echo "== tree: $count npy files in $src"
started=$(now)
/usr/bin/python3 - "$src" "$count" <<'EOF'
import io, os, sys
import numpy as np
root, count = sys.argv[1], int(sys.argv[2])
buf = io.BytesIO()
np.save(buf, np.zeros(16, dtype="<f4"))
header = buf.getvalue()[:-64]  # numpy's header for 16 float32s
for d in range((count + 999) // 1000):
    sub = os.path.join(root, f"d{d:04d}")
    os.mkdir(sub)
    for i in range(min(1000, count - 1000 * d)):
        n = 1000 * d + i
        fd = os.open(os.path.join(sub, f"a{n:07d}.npy"), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, header + np.arange(n, n + 16, dtype="<f4").tobytes())  # distinct bytes
        os.close(fd)
EOF
echo "   $(since "$started") s"

echo "== mount with ulimit -n $nofile"
(ulimit -n "$nofile" && exec "$PAYLOADFS_BIN" "$src" "$mnt")
pid=$(pgrep -xf -- "$PAYLOADFS_BIN $src $mnt")
limit=$(awk '/^Max open files/ {print $4 "/" $5}' "/proc/$pid/limits")
echo "   daemon $pid, open-file limit (soft/hard) $limit"
[ "$limit" = "$nofile/$nofile" ] || { echo "FAIL: the limit did not apply"; exit 1; }

# Peak descriptors and RssAnon, sampled every 0.1 s while the pass runs.
(
  peak_fds=0 peak_rss=0
  while [ -d "/proc/$pid" ]; do
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    rss=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "$fds" -gt "$peak_fds" ] && peak_fds=$fds
    [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
    echo "$peak_fds $peak_rss" >"$work/peaks"
    sleep 0.1
  done
) &
sampler=$!

echo "== one pass: find | xargs cat of every header.json and raw/data"
started=$(now)
status=0
find "$mnt" -mindepth 2 \( -name header.json -o -path '*/raw/data' \) -print0 2>"$work/find.err" |
  tee "$work/list" | xargs -0 -n 2000 cat >/dev/null 2>"$work/cat.err" || status=$?
pass_time=$(since "$started")
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""
read -r peak_fds peak_rss <"$work/peaks"

headers=$(tr '\0' '\n' <"$work/list" | grep -c '/header.json$' || true)
raws=$(tr '\0' '\n' <"$work/list" | grep -c '/raw/data$' || true)
failures=$(cat "$work/find.err" "$work/cat.err" | wc -l)
rss_now=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
stats=$(cat "$mnt/.payloadfs/stats.json")
stat_of() { echo "$stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "== check 200 random slices against the source"
started=$(now)
mismatches=$(/usr/bin/python3 - "$src" "$mnt" "$count" <<'EOF'
import os, random, sys
src, mnt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
bad = 0
for n in random.Random(1).sample(range(count), min(200, count)):
    rel = f"d{n // 1000:04d}/a{n:07d}.npy"
    with open(os.path.join(src, rel), "rb") as f:
        expected = f.read()[-64:]
    with open(os.path.join(mnt, rel, "raw", "data"), "rb") as f:
        got = f.read()
    if got != expected:
        bad += 1
        if bad <= 3:
            print(f"{rel}: got {got.hex()}, expected {expected.hex()}", file=sys.stderr)
print(bad)
EOF
)
echo "   $(since "$started") s"

echo
echo "payloads:              $count (headers read: $headers, raw slices read: $raws)"
echo "pass time:             $pass_time s"
echo "failures:              $failures (find/cat error lines; xargs status $status)"
echo "mismatched slices:     $mismatches of 200"
echo "daemon fd limit:       $nofile; peak open fds: $peak_fds"
echo "daemon RssAnon:        peak $peak_rss KiB, after the pass $rss_now KiB"
echo "payloads built:        $(stat_of payloads_built); evictions: $(stat_of payload_cache_evictions); errors: $(stat_of errors)"
if [ "$failures" -ne 0 ]; then
  echo "first failures:"
  cat "$work/find.err" "$work/cat.err" | head -5
fi

ok=1
[ "$headers" -eq "$count" ] && [ "$raws" -eq "$count" ] || ok=0
[ "$failures" -eq 0 ] && [ "$status" -eq 0 ] && [ "$mismatches" -eq 0 ] || ok=0
[ "$peak_fds" -lt "$nofile" ] || ok=0
[ "$(stat_of errors)" -eq 0 ] || ok=0
if [ "$ok" -eq 1 ]; then
  echo "PASS"
else
  echo "FAIL"
  exit 1
fi
