#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what is missing, builds the dev build
# (-Werror) and an ASan+UBSan build, and runs every unit and mount test in both under ctest.
# Mount tests need /dev/fuse and root (or fusermount3 for the user).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc)
build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DPAYLOADFS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

echo "== dev build"
build build/dev -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== asan+ubsan build"
build build/asan -DCMAKE_BUILD_TYPE=Debug -DPAYLOADFS_SANITIZE=ON

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for dir in build/dev build/asan; do
  echo "== ctest in $dir"
  ctest --test-dir "$dir" --output-on-failure --timeout 900 || status=1
done
exit $status
