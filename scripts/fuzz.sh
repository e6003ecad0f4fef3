#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz: clang, ASan+UBSan, -DPAYLOADFS_FUZZ=ON), replays every regression input
# in tests/fuzz/regressions/, then fuzzes each target in turn for SECONDS (default 60), seeded
# with the fixture files the registry detects as that target's format. Fails when a replay or a
# fuzz run finds a crash, a leak, a timeout or an out-of-memory; the inputs are copied to
# tests/fuzz/regressions/<format>/ (review them with git status) and printed in base64 to the
# log (CI keeps nothing else). Also fails when nothing would run (no target, a target missing
# from the build, fewer targets than the build made) and when a target did not demonstrably run
# (a replay without an "Executed" line per input, a fuzz run without libFuzzer's "Done N runs").
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [FIXTURES_DIR]
#   SECONDS=0 only builds and replays the regressions.
#   FUZZ_TARGETS="npy registry"   only these targets (default: every target the build made)
#   FUZZ_BUILD=build/fuzz          build directory (keeps the grown corpus in corpus/<target>)
#   FUZZ_PREBUILT=1                FUZZ_BUILD is already built (clang, -DPAYLOADFS_FUZZ=ON)
#   FUZZ_JOBS=N                    targets fuzzed at once (default: the number of CPUs)
#   FUZZ_MAX_SEED_BYTES=262144     larger fixture files are not used as seeds
#   FUZZ_MAX_CRASHES=3             a target that crashes is restarted until this many crashes
#   FUZZ_NO_KEEP=1                 do not copy crashing inputs into tests/fuzz/regressions/
#   FUZZ_RUNS=N                    a fixed amount of work instead of SECONDS: N inputs per
#                                  target from FUZZ_SEED (default 1), in one round: the same
#                                  work on any machine (CI's gate should not depend on how far
#                                  a timed random walk got). SECONDS is then each target's
#                                  time limit. Fixtures with timestamps still vary the seeds.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-60}
fixtures=${2:-}
build=${FUZZ_BUILD:-build/fuzz}
max_seed=${FUZZ_MAX_SEED_BYTES:-262144}
max_crashes=${FUZZ_MAX_CRASHES:-3}
jobs=${FUZZ_JOBS:-$(nproc)}
regressions=$root/tests/fuzz/regressions

# clang with libFuzzer (Debian: clang, and libclang-rt-14-dev which ships libclang_rt.fuzzer).
./scripts/install-deps.sh clang libclang-rt-14-dev

if [ -z "${FUZZ_PREBUILT:-}" ]; then
  echo "== build ($build)"
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAYLOADFS_FUZZ=ON \
    -DPAYLOADFS_TESTS=OFF >/dev/null || exit 1
  cmake --build "$build" -j "$(nproc)" >/dev/null || { cmake --build "$build"; exit 1; }
fi
build=$(cd "$build" && pwd)
fuzz=$build/tests/fuzz  # the targets and their target list

# The targets the build made (its list, checked against the binaries actually there).
[ -s "$fuzz/fuzz_targets.txt" ] || { echo "== FAILED: no $fuzz/fuzz_targets.txt: not a fuzz build"; exit 1; }
mapfile -t built < <(grep -v '^$' "$fuzz/fuzz_targets.txt")
for target in "${built[@]}"; do
  [ -x "$fuzz/fuzz_$target" ] || { echo "== FAILED: fuzz_$target is listed but was not built"; exit 1; }
done
for bin in "$fuzz"/fuzz_*; do
  name=${bin##*/fuzz_}
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  case "$name" in classify | targets.txt) continue ;; esac
  printf '%s\n' "${built[@]}" | grep -qxF "$name" ||
    { echo "== FAILED: $bin was built but is not in fuzz_targets.txt"; exit 1; }
done
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
  for target in "${targets[@]}"; do
    [ -x "$fuzz/fuzz_$target" ] || { echo "== FAILED: FUZZ_TARGETS names $target, which the build lacks"; exit 1; }
  done
  if [ -n "${CI:-}" ] && [ "${#targets[@]}" -lt "${#built[@]}" ]; then
    echo "== FAILED: CI fuzzes every target; FUZZ_TARGETS names ${#targets[@]} of ${#built[@]}"
    exit 1
  fi
else
  targets=("${built[@]}")  # every target the build made
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "== FAILED: no fuzz target to run"
  exit 1
fi
echo "== ${#targets[@]} targets: ${targets[*]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fuzz_args=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1)
runs=${FUZZ_RUNS:-}
if [ -n "$runs" ]; then
  [ "$runs" -gt 0 ] 2>/dev/null || { echo "== FAILED: FUZZ_RUNS=$runs is not a positive count"; exit 1; }
  fuzz_args+=(-runs="$runs" -seed="${FUZZ_SEED:-1}")
fi

status=0
failures=()
mkdir -p "$build/logs"

# Prints FILE in base64 (76 columns) between markers, so that a CI log holds the input itself:
#   sed -n '/^-----BEGIN/,/^-----END/p' LOG | sed '1d;$d' | base64 -d >input
print_input() {  # print_input LABEL FILE
  local label=$1 file=$2 size
  size=$(stat -c %s "$file")
  echo "     $label: $file ($size bytes), base64:"
  echo "-----BEGIN ${file##*/}-----"
  if [ "$size" -le $((1 << 20)) ]; then
    base64 -w 76 "$file"
  else
    head -c $((1 << 20)) "$file" | base64 -w 76
    echo "(the first 1 MiB of $size bytes)"
  fi
  echo "-----END ${file##*/}-----"
}

# Where a crashing input belongs: the target's format, or for the registry target the format
# the registry detects (registry/ when none does).
keep_input() {  # keep_input TARGET FILE
  local target=$1 file=$2 dir
  if [ -n "${FUZZ_NO_KEEP:-}" ]; then return; fi
  dir=$target
  if [ "$target" = registry ]; then
    dir=$("$fuzz/fuzz_classify" "$file" | cut -f1)
    [ "$dir" = unknown ] && dir=registry
  fi
  mkdir -p "$regressions/$dir"
  cp "$file" "$regressions/$dir/$(basename "$file")"
  echo "   kept: tests/fuzz/regressions/$dir/$(basename "$file")"
}

echo "== replay tests/fuzz/regressions"
for target in "${targets[@]}"; do
  bin=$fuzz/fuzz_$target
  if [ "$target" = registry ]; then
    mapfile -t inputs < <(find "$regressions" -type f ! -name '*.md' ! -name '.*' 2>/dev/null | sort)
  else
    mapfile -t inputs < <(find "$regressions/$target" -type f ! -name '*.md' ! -name '.*' 2>/dev/null | sort)
  fi
  [ "${#inputs[@]}" -eq 0 ] && continue
  log=$build/logs/replay-$target.log
  mkdir -p "$build/logs"
  if timeout 600 "$bin" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 "${inputs[@]}" >"$log" 2>&1; then
    executed=$(grep -c '^Executed ' "$log")
    if [ "$executed" -eq "${#inputs[@]}" ]; then
      echo "   $target: ${#inputs[@]} inputs ok"
    else
      echo "   $target: FAILED: executed $executed of ${#inputs[@]} inputs (log: $log)"
      failures+=("replay $target: $executed of ${#inputs[@]} inputs")
      status=1
    fi
  else
    echo "   $target: FAILED on a regression input (log: $log)"
    grep -E "^(==[0-9]+==ERROR|\*\*\* payloadfs|Running:|SUMMARY)" "$log" | tail -6 | sed 's/^/     /'
    crashed=$(grep -oP '^Running: \K.*' "$log" | tail -1)
    [ -n "$crashed" ] && [ -f "$crashed" ] && print_input "the input it failed on" "$crashed"
    failures+=("replay $target")
    status=1
  fi
done

[ "$seconds" -gt 0 ] 2>/dev/null || { [ $status -eq 0 ] && echo "== ok"; exit $status; }

echo "== seeds"
if [ -z "$fixtures" ]; then
  fixtures=$build/fixtures
  /usr/bin/python3 tests/fixtures/generate.py "$fixtures" >/dev/null || { echo "fixture generation failed"; exit 1; }
fi
rm -rf "$build/seeds"
mkdir -p "$build/seeds/registry"
find "$fixtures" -type f -size -"$((max_seed + 1))"c -print0 |
  xargs -0 -r "$fuzz/fuzz_classify" |
  while IFS=$'\t' read -r format file; do
    name=$(sha1sum "$file" | cut -c1-40)
    mkdir -p "$build/seeds/$format"
    cp "$file" "$build/seeds/$format/$name"
    cp "$file" "$build/seeds/registry/$name"
  done
# Descriptor seeds: each shipped descriptor (u16 length, then its text) followed by a file it
# describes, and by a few files it does not.
mkdir -p "$build/seeds/descriptor" "$build/seeds/telemetry-samples"
/usr/bin/python3 scripts/gen-telemetry.py "$build/seeds/telemetry-samples" --files 2 --records 40 --malformed >/dev/null
/usr/bin/python3 - "$build/seeds" examples/formats/*.json <<'EOF'
import hashlib, pathlib, sys
seeds, descriptors = pathlib.Path(sys.argv[1]), sys.argv[2:]
samples = sorted((seeds / "telemetry-samples").glob("*.tlm"))
samples += sorted((seeds / "pcap").glob("*"))[:4] + sorted((seeds / "registry").glob("*"))[:8]
for d in descriptors:
    text = pathlib.Path(d).read_bytes()
    for sample in samples:
        data = len(text).to_bytes(2, "little") + text + sample.read_bytes()[:65536]
        (seeds / "descriptor" / hashlib.sha1(data).hexdigest()).write_bytes(data)
EOF
for target in "${targets[@]}"; do
  mkdir -p "$build/seeds/$target"
  # A format not registered yet is detected as nothing: seed it from fixtures/<format>/. So is a
  # target that is no format: fuzz_pickle takes gen_pickle.py's pickles from fixtures/pickle/.
  if [ -z "$(ls -A "$build/seeds/$target")" ] && [ -d "$fixtures/$target" ]; then
    find "$fixtures/$target" -type f -size -"$((max_seed + 1))"c -exec cp -t "$build/seeds/$target" {} +
  fi
  printf '   %-12s %4d seeds\n' "$target" "$(find "$build/seeds/$target" -type f | wc -l)"
done

if [ -n "$runs" ]; then
  echo "== fuzz, $runs inputs per target from seed ${FUZZ_SEED:-1} (at most ${seconds}s), ${jobs} at a time"
else
  echo "== fuzz, ${seconds}s per target, ${jobs} at a time"
fi
# One target's whole run; prints its lines and leaves its summary line and verdict in logs/.
fuzz_target() {  # fuzz_target TARGET
  local target=$1 bin=$fuzz/fuzz_$1 corpus=$build/corpus/$1 artifacts=$build/artifacts/$1
  local deadline=$((SECONDS + seconds)) crashes=0 execs=0 cov="" ft="" result=ok round=0
  local remaining log before rc n last seed_crash f sum unit line done_runs=0
  mkdir -p "$corpus" "$artifacts"
  while :; do
    remaining=$((deadline - SECONDS))
    [ $remaining -le 0 ] && break
    round=$((round + 1))
    log=$build/logs/fuzz-$target.$round.log
    before=$(ls "$artifacts" | sort)
    timeout $((remaining + 120)) "$bin" "${fuzz_args[@]}" -max_total_time="$remaining" \
      -artifact_prefix="$artifacts/" "$corpus" "$build/seeds/$target" >"$log" 2>&1
    rc=$?
    n=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1)
    execs=$((execs + ${n:-0}))
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    [ -n "$last" ] && cov=$(grep -oP 'cov: \K[0-9]+' <<<"$last") && ft=$(grep -oP 'ft: \K[0-9]+' <<<"$last")
    if [ $rc -eq 0 ]; then
      # libFuzzer ends a completed run with "Done N runs in S second(s)".
      n=$(grep -oP '^Done \K[0-9]+(?= runs)' "$log" | tail -1)
      if [ -z "$n" ] || [ "$n" -eq 0 ]; then
        echo "   $target: exit 0 without libFuzzer's \"Done N runs\" line (log $log)"
        result="FAILED (did not run)"
        crashes=$((crashes + 1))
      fi
      done_runs=$((done_runs + ${n:-0}))
      break
    fi
    crashes=$((crashes + 1))
    result=FAILED
    echo "   $target: failure (exit $rc), log $log"
    grep -E "^(==[0-9]+==ERROR|\*\*\* payloadfs|SUMMARY|artifact_prefix|Test unit written)" "$log" | head -6 | sed 's/^/     /'
    seed_crash=0
    for f in $(comm -13 <(echo "$before") <(ls "$artifacts" | sort)); do
      keep_input "$target" "$artifacts/$f"
      print_input "crashing input" "$artifacts/$f"
      # A seed (or grown corpus unit) that crashes would stop every later round at start-up:
      # take it out of the corpus (it is kept above) and go on fuzzing.
      sum=$(sha1sum "$artifacts/$f" | cut -c1-40)
      for unit in "$build/seeds/$target/$sum" "$corpus/$sum"; do
        if [ -f "$unit" ]; then
          rm -f "$unit"
          seed_crash=1
          echo "     (a seed: removed from the corpus)"
        fi
      done
    done
    [ -n "$runs" ] && break  # a fixed run is one round: a restart would replay the same inputs
    [ $seed_crash -eq 0 ] && [ $crashes -ge "$max_crashes" ] && break
  done
  if [ $round -eq 0 ] || { [ $crashes -eq 0 ] && [ $done_runs -eq 0 ]; }; then
    echo "   $target: never ran ($round rounds)"
    result="FAILED (did not run)"
    crashes=$((crashes + 1))
  fi
  line=$(printf '%-12s execs %10d  cov %5s  ft %6s  corpus %5d  crashes %d  %s' "$target" "$execs" \
    "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)" "$crashes" "$result")
  echo "   $line"
  echo "$line" >"$build/logs/summary-$target"
  echo "$crashes" >"$build/logs/crashes-$target"
}

rm -f "$build"/logs/summary-* "$build"/logs/crashes-*
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  fuzz_target "$target" &
done
wait

echo "== summary"
summaries=0
for target in "${targets[@]}"; do
  [ -f "$build/logs/summary-$target" ] && summaries=$((summaries + 1))
  echo "   $(cat "$build/logs/summary-$target" 2>/dev/null || echo "$target: no result")"
  crashes=$(cat "$build/logs/crashes-$target" 2>/dev/null || echo 1)
  if [ "$crashes" != 0 ]; then
    failures+=("fuzz $target: $crashes")
    status=1
  fi
done
if [ "$summaries" -ne "${#targets[@]}" ]; then
  failures+=("only $summaries of ${#targets[@]} targets reported")
  status=1
fi
if [ $status -ne 0 ]; then
  echo "== FAILED: ${failures[*]}"
else
  if [ -n "$runs" ]; then
    echo "== ok: ${#targets[@]} targets fuzzed, $runs inputs each"
  else
    echo "== ok: ${#targets[@]} targets fuzzed ${seconds}s each"
  fi
fi
exit $status
