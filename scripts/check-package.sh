#!/usr/bin/env bash
# Builds the .deb of a configured build dir with cpack and checks what a user would get:
# the Depends, the installed files (payloadfs, its man page, the example descriptors) and that
# the packaged binary runs. Usage: scripts/check-package.sh BUILD_DIR
# Exits non-zero with one line on stderr on the first failure.
set -euo pipefail

fail() {
  echo "check-package: $*" >&2
  exit 1
}

[ "$#" -eq 1 ] || fail "usage: scripts/check-package.sh BUILD_DIR"
build=$(realpath -e -- "$1" 2>/dev/null) || fail "build dir '$1' does not exist"
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$build/CPackConfig.cmake" ] || fail "'$build' is not a configured payloadfs build dir"
for tool in cmake cpack dpkg-deb dpkg groff gzip readelf; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing (scripts/install-deps.sh installs it)"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/payloadfs-package.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# cpack installs from the build dir without building: bring what it installs up to date.
cmake --build "$build" --target payloadfs payloadfs_man >"$scratch/build.log" 2>&1 ||
  fail "building payloadfs in $build failed (see: cmake --build $build --target payloadfs)"
(cd "$build" && cpack -G DEB -B "$scratch/out") >"$scratch/cpack.log" 2>&1 ||
  fail "cpack failed: $(grep -m1 -i 'error' "$scratch/cpack.log" || tail -n1 "$scratch/cpack.log")"
debs=("$scratch"/out/payloadfs_*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then fail "cpack wrote no payloadfs_*.deb"; fi
deb=${debs[0]}

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = payloadfs ] || fail "Package is '$(field Package)', not payloadfs"
for f in Version Architecture Maintainer Section Description; do
  [ -n "$(field "$f")" ] || fail "the control file has no $f"
done
# Depends: package names only (versions and alternatives dropped).
depends=$(field Depends | tr ',|' '\n' | sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' | sed '/^$/d')
for pkg in fuse3 libfuse3-3 libc6 libstdc++6 zlib1g; do
  grep -qx -- "$pkg" <<<"$depends" || fail "Depends lacks $pkg: '$(field Depends)'"
done

root="$scratch/root"
dpkg -x "$deb" "$root" || fail "dpkg -x could not extract $deb"
bin="$root/usr/bin/payloadfs"
[ -x "$bin" ] || fail "usr/bin/payloadfs is missing from the package"
# A stripped binary has no symbol table (CPACK_STRIP_FILES).
sections=$(LC_ALL=C readelf -S -W "$bin") || fail "usr/bin/payloadfs is not an ELF file"
! grep -q '[[:space:]]\.symtab[[:space:]]' <<<"$sections" ||
  fail "usr/bin/payloadfs in the package is not stripped"
man=""
for candidate in "$root/usr/share/man/man1/payloadfs.1.gz" "$root/usr/share/man/man1/payloadfs.1"; do
  [ -f "$candidate" ] && man=$candidate
done
[ -n "$man" ] || fail "usr/share/man/man1/payloadfs.1(.gz) is missing from the package"
warnings=$( (if [[ $man == *.gz ]]; then gzip -dc "$man"; else cat "$man"; fi) |
  groff -man -Tutf8 -ww -z 2>&1) || fail "the man page does not render"
[ -z "$warnings" ] || fail "the man page renders with warnings: $(head -n1 <<<"$warnings")"
formats=("$root"/usr/share/payloadfs/formats/*.json)
[ -f "${formats[0]}" ] || fail "usr/share/payloadfs/formats/*.json is missing from the package"
for src in "$repo"/examples/formats/*.json; do
  name=$(basename "$src")
  cmp -s "$src" "$root/usr/share/payloadfs/formats/$name" ||
    fail "usr/share/payloadfs/formats/$name differs from examples/formats/$name or is missing"
done

version_out=$("$bin" --version 2>&1) || fail "the packaged payloadfs --version failed: $version_out"
want="payloadfs $(field Version)"
[ "$(head -n1 <<<"$version_out")" = "$want" ] ||
  fail "the packaged payloadfs --version says '$(head -n1 <<<"$version_out")', not '$want'"

echo "check-package: $(basename "$deb") ok ($(field Depends))"
