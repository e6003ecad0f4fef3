#!/usr/bin/env bash
# A mount session under valgrind memcheck: payloadfs -f over the fixtures dir, exercised with
# ls -R, cat of every header.json / slices.json / control file, reads of raw/ and range/
# files, stat, getfattr and a few refused operations, then unmounted with fusermount3 -u.
# Prints valgrind's summary; exits non-zero on any memcheck error, a definite leak, or a
# descriptor payloadfs opened and left open at exit.
#
#   scripts/valgrind.sh [BUILD_DIR]   build a Debug, non-sanitized payloadfs there
#                                     (default build/valgrind)
#   PAYLOADFS_BIN=path       use this (non-sanitized) binary instead of building
#   PAYLOADFS_FIXTURES=dir   mount these fixtures (default: generated in BUILD_DIR)
#   JOBS=n                   build jobs (default nproc)
#   KEEP_LOG=path            copy valgrind's full log there
#   SAMPLE=n                 payloads exercised one by one (default 150; every payload's
#                            generated files are read in any case)
# Needs valgrind, /dev/fuse and root (or fusermount3 for the user).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build/valgrind}

if [ -z "${PAYLOADFS_BIN:-}" ]; then
  echo "== build ($build: Debug, no sanitizers)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPAYLOADFS_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j "${JOBS:-$(nproc)}" --target payloadfs >/dev/null
  PAYLOADFS_BIN=$root/$build/cli/payloadfs
fi
if nm -D "$PAYLOADFS_BIN" 2>/dev/null | grep -q '__asan_init'; then
  echo "valgrind.sh: $PAYLOADFS_BIN is built with ASan; valgrind needs a plain build" >&2
  exit 2
fi
fixtures=${PAYLOADFS_FIXTURES:-$root/$build/tests/fixtures}
if [ ! -f "$fixtures/numpy/expected.json" ]; then
  echo "== fixtures ($fixtures)"
  /usr/bin/python3 tests/fixtures/generate.py "$fixtures" >/dev/null
fi

work=$(mktemp -d /tmp/payloadfs-valgrind.XXXXXX)
mnt=$work/mnt
log=$work/valgrind.log
mkdir "$mnt"
vg=""
cleanup() {
  local rc=$?
  if grep -qs " $mnt " /proc/self/mountinfo; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
  fi
  if [ -n "$vg" ] && kill -0 "$vg" 2>/dev/null; then kill "$vg" 2>/dev/null || true; fi
  if [ -n "${KEEP_LOG:-}" ] && [ -f "$log" ]; then cp "$log" "$KEEP_LOG"; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

echo "== valgrind payloadfs -f $fixtures $mnt"
started=$(date +%s.%N)
# Possible leaks are not errors: libfuse's worker threads end with the loop and glibc keeps
# per-thread state that memcheck can only call "possibly lost"; definite leaks are.
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite --error-exitcode=99 --track-fds=yes \
  --suppressions="$root/scripts/valgrind.supp" --num-callers=30 --log-file="$log" \
  "$PAYLOADFS_BIN" -f "$fixtures" "$mnt" 2>"$work/daemon.log" &  # its log: malformed files
vg=$!
for _ in $(seq 600); do  # up to 60 s: valgrind starts slowly
  grep -qs " $mnt " /proc/self/mountinfo && break
  kill -0 "$vg" 2>/dev/null || break
  sleep 0.1
done
if ! grep -qs " $mnt " /proc/self/mountinfo; then
  echo "valgrind.sh: the mount did not appear" >&2
  cat "$log" >&2
  exit 1
fi

echo "== exercise the mount"
failures=0
expect_ok() { "$@" >/dev/null 2>&1 || { echo "   failed: $*"; failures=$((failures + 1)); }; }
expect_fail() { if "$@" >/dev/null 2>&1; then echo "   succeeded: $*"; failures=$((failures + 1)); fi; }

expect_ok ls -R "$mnt"  # names only: ls -l of every record of every table is hours under valgrind
expect_ok ls -la "$mnt/.payloadfs"
for f in version formats.json stats.json errors.json; do
  [ -e "$mnt/.payloadfs/$f" ] && expect_ok cat "$mnt/.payloadfs/$f"
done
mapfile -d '' payloads < <(find "$mnt" -name header.json -printf '%h\0')
echo "   ${#payloads[@]} payloads"
[ "${#payloads[@]}" -gt 0 ] || { echo "   no payloads found"; failures=$((failures + 1)); }
# Every payload's generated files, in one process (each payload is parsed).
expect_ok sh -c "find '$mnt' -mindepth 2 \( -name header.json -o -name slices.json -o \
  -name refs.json -o -name magic \) -print0 | xargs -0 -r cat"
# One by one, an even sample: under valgrind every command costs about a second.
step=$(((${#payloads[@]} + ${SAMPLE:-150} - 1) / ${SAMPLE:-150}))
sample=()
for ((i = 0; i < ${#payloads[@]}; i += step)); do sample+=("${payloads[i]}"); done
echo "   ${#sample[@]} of them one by one"
for p in "${sample[@]}"; do
  expect_ok cat "$p/header.json" "$p/slices.json" "$p/magic"
  [ -e "$p/refs.json" ] && expect_ok cat "$p/refs.json"
  expect_ok stat "$p" "$p/header.json" "$p/raw"
  expect_ok getfattr -d "$p" "$p/magic"
  size=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"])' \
    "$p/header.json")
  expect_ok cat "$p/range/0-$size"
  if [ "$size" -ge 16 ]; then
    expect_ok dd if="$p/range/$((size / 2))+8" bs=8 count=1 status=none
    expect_ok getfattr -d "$p/range/0+16"
  fi
  expect_fail stat "$p/range/0-$((size + 1))"   # past the end: ENOENT
  expect_fail stat "$p/nonexistent"
done
# The first 20 slices of each sampled payload: read whole and their attributes listed.
while IFS= read -r -d '' f; do
  expect_ok cat "$f"
  expect_ok getfattr -d "$f"
done < <(for p in "${sample[@]}"; do find "$p/raw" -type f -print0 | head -z -n 20; done)
# Refused operations take their error paths too.
first=${payloads[0]}
expect_fail touch "$first/header.json"
expect_fail mkdir "$first/new"
expect_fail setfattr -n user.x -v 1 "$first/magic"
expect_fail getfattr -n user.payloadfs.nonexistent "$first/magic"
expect_fail sh -c "echo x > '$mnt/new-file'"

echo "== unmount"
fusermount3 -u "$mnt"
status=0
wait "$vg" || status=$?
vg=""
took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

echo
grep -E "ERROR SUMMARY|in use at exit|All heap blocks|definitely lost|indirectly lost|possibly lost|still reachable|FILE DESCRIPTORS" "$log" |
  sed 's/^==[0-9]*== */   /'
# Descriptors still open at exit that payloadfs opened itself (not inherited from us).
leaked_fds=$(grep -A1 -E "^==[0-9]+== Open (file descriptor|AF_UNIX socket)" "$log" |
  grep -vc -E "Open |inherited from parent|^--$" || true)
echo "   descriptors payloadfs left open at exit: $leaked_fds"
echo "   valgrind exit status: $status (99: memcheck errors or definite leaks)"
echo "   session time: ${took} s; exercise failures: $failures"
if [ "$status" -ne 0 ] || [ "$failures" -ne 0 ] || [ "$leaked_fds" -ne 0 ]; then
  echo "FAIL"
  grep -E -A25 "^==[0-9]+== (Invalid|Conditional|Syscall param|Mismatched|Source and destination|[0-9,]+ bytes in [0-9,]+ blocks are definitely)" "$log" | head -120
  exit 1
fi
echo "PASS"
