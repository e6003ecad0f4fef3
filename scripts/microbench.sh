#!/usr/bin/env bash
# Google Benchmark microbenchmarks of core/ (tests/microbench): header parse per format, raw/
# lookups, range names, slices.json rendering, the payload cache. Installs libbenchmark-dev if
# missing, builds a Release build dir with PAYLOADFS_MICROBENCH=ON, runs every benchmark
# REPS times and prints the medians as a markdown table.
#
#   scripts/microbench.sh [options] [-- extra benchmark arguments]
#     --out FILE      JSON results (default BUILD/microbench.json)
#     --filter REGEX  only these benchmarks (--benchmark_filter)
#     --reps N        repetitions (default 5)
#     --min-time S    minimum seconds per repetition (default: the library's 0.5)
#     --cpu N         pin the run to CPU N (taskset) for steadier numbers
#     --build DIR     build directory (default build/microbench)
#     --no-build      run the binary already in the build directory
#   MICROBENCH_JOBS=N  parallel build jobs (default: nproc)
#
# Regression check: keep the JSON of a baseline run and compare a later one with
#   scripts/microbench-compare.py compare BASE.json NEW.json [--threshold 10]
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/microbench
out=""
filter=""
reps=5
min_time=""
cpu=""
do_build=1
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --min-time) min_time=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "microbench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-$build/microbench.json}

if [ "$do_build" = 1 ]; then
  ./scripts/install-deps.sh libbenchmark-dev
  generator=()
  if command -v ninja >/dev/null && [ ! -f "$build/CMakeCache.txt" ]; then generator=(-G Ninja); fi
  # Release (-O3) as shipped; no -Werror (GCC 12's false positives at -O3, see CMakeLists.txt);
  # the unit tests are not needed here.
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DPAYLOADFS_MICROBENCH=ON -DPAYLOADFS_TESTS=OFF >/dev/null
  cmake --build "$build" --target payloadfs_microbench -j "${MICROBENCH_JOBS:-$(nproc)}"
fi
bin=$build/tests/microbench/payloadfs_microbench
[ -x "$bin" ] || { echo "microbench.sh: $bin is missing (build first)" >&2; exit 1; }

args=(--benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true
      --benchmark_out="$out" --benchmark_out_format=json)
[ -n "$filter" ] && args+=(--benchmark_filter="$filter")
# libbenchmark 1.7 takes plain seconds; 1.8 and later also accept them (with a suffix preferred).
[ -n "$min_time" ] && args+=(--benchmark_min_time="$min_time")
pin=()
[ -n "$cpu" ] && pin=(taskset -c "$cpu")

mkdir -p "$(dirname "$out")"
echo "== running $bin (${reps} repetitions; JSON to $out)"
"${pin[@]}" "$bin" "${args[@]}" "${extra[@]}"
echo
/usr/bin/python3 scripts/microbench-compare.py table "$out"
