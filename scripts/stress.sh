#!/usr/bin/env bash
# Load test: 16 concurrent readers over a mixed tree for SECONDS (default 30), through a real
# mount. 4 cat raw/ files whole, 4 dd random ranges from range/ (compared with the source),
# 4 python json.load header.json and slices.json, 4 ls -R the mount. Counts operations and
# errors (must be 0) and samples the daemon's RssAnon every 0.2 s (reports the peak).
#
#   scripts/stress.sh [SECONDS]
#   PAYLOADFS_BIN=path      use this binary instead of building build/dev
#   PAYLOADFS_FIXTURES=dir  use these fixtures instead of generating them
#   STRESS_RANDOM_FILES=N   random files added to the tree (default 300)
# Needs /dev/fuse and root (or fusermount3 for the user).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-30}
readers_per_kind=4

if [ -z "${PAYLOADFS_BIN:-}" ]; then
  echo "== build (build/dev)"
  cmake -S . -B build/dev -DPAYLOADFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build/dev -j "$(nproc)" --target payloadfs >/dev/null
  PAYLOADFS_BIN=$root/build/dev/cli/payloadfs
fi

work=$(mktemp -d /tmp/payloadfs-stress.XXXXXX)
src=$work/src
mnt=$work/mnt
mkdir -p "$src" "$mnt" "$work/out"
cleanup() {
  local rc=$?
  jobs -p | xargs -r kill 2>/dev/null || true
  wait 2>/dev/null || true
  if grep -qs " $mnt " /proc/self/mountinfo; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

echo "== tree ($src)"
fixtures=${PAYLOADFS_FIXTURES:-}
if [ -z "$fixtures" ]; then
  fixtures=$work/fixtures
  /usr/bin/python3 tests/fixtures/generate.py "$fixtures" >/dev/null
fi
cp -r "$fixtures" "$src/fixtures"
/usr/bin/python3 - "$src/random" "${STRESS_RANDOM_FILES:-300}" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
for i in range(n):
    d = os.path.join(root, *[f"d{rng.randrange(4)}" for _ in range(rng.randrange(4))])
    os.makedirs(d, exist_ok=True)
    size = rng.choice([0, 1, 7, 512, 4096, 65536, rng.randrange(1 << 21)])
    with open(os.path.join(d, f"r{i}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF
files=$(find "$src" -type f | wc -l)
echo "   $files files, $(du -sh "$src" | cut -f1)"

echo "== mount"
"$PAYLOADFS_BIN" "$src" "$mnt"
pid=$(pgrep -f -- " $mnt( |$)" | head -1)
[ -n "$pid" ] || { echo "no daemon found for $mnt"; exit 1; }
echo "   daemon pid $pid"

# Work lists: payload paths relative to SRC, with their sizes, and every raw/ file.
(cd "$src" && find . -type f -printf '%P\t%s\n') >"$work/payloads.tsv"
find "$mnt" -path '*/raw/*' -type f >"$work/raw.txt"
echo "   $(wc -l <"$work/raw.txt") raw/ files"

deadline=$(($(date +%s) + seconds))

reader_cat() {  # cat every kind of raw/ file; the byte count must be the file's size
  local ops=0 errs=0 f size got
  mapfile -t raws <"$work/raw.txt"
  while [ "$(date +%s)" -lt $deadline ]; do
    f=${raws[$(((RANDOM * 32768 + RANDOM) % ${#raws[@]}))]}
    if ! size=$(stat -c %s "$f") || ! got=$(cat "$f" | wc -c) || [ "$got" != "$size" ]; then
      errs=$((errs + 1)); echo "cat $f: size ${size:-?} got ${got:-?}" >>"$work/out/errors.log"
    fi
    ops=$((ops + 1))
  done
  echo "$ops $errs" >"$work/out/$1"
}

reader_dd() {  # a random range through range/a+n, compared with the source bytes
  local ops=0 errs=0 line path size a n
  mapfile -t payloads <"$work/payloads.tsv"
  while [ "$(date +%s)" -lt $deadline ]; do
    line=${payloads[$(((RANDOM * 32768 + RANDOM) % ${#payloads[@]}))]}
    path=${line%$'\t'*}
    size=${line##*$'\t'}
    a=$(((RANDOM * 32768 + RANDOM) % (size + 1)))
    n=$(((RANDOM * 32768 + RANDOM) % (size - a + 1)))
    [ $n -gt 1048576 ] && n=$((n % 1048576))
    if ! cmp -s <(dd if="$mnt/$path/range/$a+$n" bs=65536 status=none) \
                <(tail -c +$((a + 1)) "$src/$path" | head -c $n); then
      errs=$((errs + 1)); echo "dd $path range $a+$n differs" >>"$work/out/errors.log"
    fi
    ops=$((ops + 1))
  done
  echo "$ops $errs" >"$work/out/$1"
}

reader_json() {  # json.load header.json and slices.json of random payloads
  /usr/bin/python3 - "$mnt" "$work/payloads.tsv" "$deadline" "$work/out/$1" "$work/out/errors.log" <<'EOF'
import json, random, sys, time
mnt, listing, deadline, out, errlog = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
paths = [l.split("\t")[0] for l in open(listing).read().splitlines()]
ops = errs = 0
while time.time() < deadline:
    p = random.choice(paths)
    try:
        h = json.load(open(f"{mnt}/{p}/header.json"))
        s = json.load(open(f"{mnt}/{p}/slices.json"))
        if h["slice_count"] != len(s) or h["path"] != p:
            raise ValueError(f"slice_count {h['slice_count']} != {len(s)} or path {h['path']!r}")
    except Exception as e:
        errs += 1
        with open(errlog, "a") as f:
            f.write(f"json {p}: {type(e).__name__}: {e}\n")
    ops += 1
open(out, "w").write(f"{ops} {errs}\n")
EOF
}

reader_ls() {  # ls -R of the whole mount
  local ops=0 errs=0
  while [ "$(date +%s)" -lt $deadline ]; do
    if ! ls -R "$mnt" >/dev/null 2>"$work/out/$1.err"; then
      errs=$((errs + 1)); echo "ls -R: $(head -3 "$work/out/$1.err")" >>"$work/out/errors.log"
    fi
    ops=$((ops + 1))
  done
  echo "$ops $errs" >"$work/out/$1"
}

echo "== $((4 * readers_per_kind)) readers for ${seconds}s"
: >"$work/out/errors.log"
reader_pids=()
for kind in cat dd json ls; do
  for i in $(seq 1 $readers_per_kind); do
    "reader_$kind" "$kind.$i" &
    reader_pids+=($!)
  done
done
peak=0
rss_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; }
start_rss=$(rss_kib)
while [ "$(date +%s)" -lt $((deadline + 1)) ]; do
  r=$(rss_kib)
  [ "${r:-0}" -gt "$peak" ] && peak=$r
  sleep 0.2
done
wait "${reader_pids[@]}" || true

total_errs=0
echo "== results"
for kind in cat dd json ls; do
  ops=0 errs=0
  for i in $(seq 1 $readers_per_kind); do
    if [ -f "$work/out/$kind.$i" ]; then
      read -r o e <"$work/out/$kind.$i"
    else
      o=0 e=1
      echo "$kind.$i: reader did not finish" >>"$work/out/errors.log"
    fi
    ops=$((ops + o)) errs=$((errs + e))
  done
  total_errs=$((total_errs + errs))
  printf '   %-5s %8d ops  %4d errors\n' "$kind" "$ops" "$errs"
done
alive=yes
if ! cat "$mnt/.payloadfs/version" >/dev/null 2>&1 || ! kill -0 "$pid" 2>/dev/null; then
  alive=no
  total_errs=$((total_errs + 1))
fi
stats=$(cat "$mnt/.payloadfs/stats.json" 2>/dev/null | tr -d ' \n' || true)
echo "   daemon RssAnon: start $start_rss KiB, peak $peak KiB, end $(rss_kib) KiB"
echo "   mount alive: $alive"
echo "   stats.json: $stats"
if [ -s "$work/out/errors.log" ]; then
  echo "   first errors:"
  head -20 "$work/out/errors.log" | sed 's/^/     /'
fi
echo "== $total_errs errors"
[ "$total_errs" -eq 0 ]
