#!/usr/bin/env bash
# Installs what is missing, builds payloadfs, writes a few sample payloads to demo/src and
# mounts them read-only on demo/mnt, then shows what a user sees.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DPAYLOADFS_TESTS=OFF -DPAYLOADFS_WERROR=OFF >/dev/null
cmake --build build/release -j "$(nproc)"

src=demo/src
mnt=demo/mnt
mkdir -p "$src" "$mnt"
if mountpoint -q "$mnt" 2>/dev/null || ! stat "$mnt" >/dev/null 2>&1; then
  fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
fi
/usr/bin/python3 scripts/make-samples.py "$src"
/usr/bin/python3 scripts/gen-telemetry.py "$src/telemetry" --files 2 --records 50
# Descriptors in examples/formats teach payloadfs the sample telemetry format.
./build/release/cli/payloadfs "$src" "$mnt" -o formats="$PWD/examples/formats"  # returns once mounted

show() { printf '\n$ %s\n' "$*"; "$@"; }
show ls "$mnt"
show ls "$mnt/models/tiny.safetensors" "$mnt/models/tiny.safetensors/raw/encoder"
show cat "$mnt/models/tiny.safetensors/header.json"
show cat "$mnt/arrays/temperatures.npy/slices.json"
tlm=$(ls "$mnt/telemetry" | head -n 1)
show ls "$mnt/telemetry"
show jq .header "$mnt/telemetry/$tlm/header.json"
show head -n 3 "$mnt/telemetry/$tlm/slices.json"
show /usr/bin/python3 -c "import numpy as np; print(np.memmap('$mnt/models/tiny.safetensors/raw/encoder/weight', dtype='<f4', mode='r', shape=(8, 4))[:2])"
printf '\n$ xxd %s\n' "$mnt/blob.bin/range/0x10+32"
xxd "$mnt/blob.bin/range/0x10+32"
cat <<EOT

payloadfs is mounted on $mnt (source: $src).
Explore it, then unmount with:   fusermount3 -u $mnt
EOT
