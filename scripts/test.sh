#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what is missing, builds the dev build
# (g++, -Werror, with the microbenchmarks, which ctest runs once briefly), a sanitizer build
# (clang, ASan+UBSan, -Werror, with the libFuzzer targets) and the daemon under
# ThreadSanitizer, checks the .deb built from the dev build, runs every unit and mount test in
# the first two builds under ctest and the concurrency mount tests (churn, shutdown, failing
# sources, range/ pruning) against the ThreadSanitizer daemon, then a fixed fuzz run of every
# target seeded with the real-file fixtures: FUZZ_RUNS inputs each (default 2000) from a fixed
# seed, the same work on any machine rather than a timed random walk (FUZZ_RUNS= fuzzes
# FUZZ_SECONDS each instead; scripts/fuzz.sh alone, for minutes, is the tool for hunting).
# Mount tests need /dev/fuse and root (or fusermount3 for the user).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
stage() { echo "== $* (at $((SECONDS - started)) s)"; }  # the log shows where the time goes

./scripts/install-deps.sh

jobs=$(nproc)
build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DPAYLOADFS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

# Debug info: line tables only (g++ -g1, clang -gline-tables-only), which is what backtraces,
# sanitizer reports and perf need; full -g costs a third more compile time at -O2 (variable
# tracking) and buys only a debugger's view of locals.
stage "dev build (g++)"
build build/dev -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DPAYLOADFS_MICROBENCH=ON
stage "the .deb: contents, dependencies, payloadfs --version from an extracted copy"
./scripts/check-package.sh build/dev
stage "sanitizer and fuzz build (clang, ASan+UBSan)"
CC=clang CXX=clang++ build build/asan -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DPAYLOADFS_FUZZ=ON

stage "the daemon under ThreadSanitizer (clang)"
CC=clang CXX=clang++ build build/tsan -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DPAYLOADFS_SANITIZE_THREAD=ON \
  -DPAYLOADFS_TESTS=OFF

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for dir in build/dev build/asan; do
  stage "ctest in $dir"
  ctest --test-dir "$dir" --output-on-failure --timeout 900 -j "$jobs" || status=1
done

# Any report makes the daemon exit 66, which the tests check along with its log.
stage "concurrency mount tests against the ThreadSanitizer daemon"
(cd tests/integration &&
  TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1" \
    PAYLOADFS_BIN="$PWD/../../build/tsan/cli/payloadfs" PAYLOADFS_SANITIZED=1 \
    PAYLOADFS_FIXTURES="$PWD/../../build/dev/tests/fixtures" \
    PAYLOADFS_FAULTFS="$PWD/../../build/dev/tests/payloadfs_faultfs" \
    timeout 600 /usr/bin/python3 -m unittest -v test_churn test_shutdown test_faults \
      test_range_nodes) || status=1

stage "fuzz"
unset ASAN_OPTIONS UBSAN_OPTIONS  # fuzz.sh sets its own
FUZZ_BUILD=build/asan FUZZ_PREBUILT=1 FUZZ_RUNS=${FUZZ_RUNS-2000} \
  ./scripts/fuzz.sh "${FUZZ_SECONDS:-120}" build/asan/tests/fixtures ||
  status=1
stage "done, status $status"
exit $status
