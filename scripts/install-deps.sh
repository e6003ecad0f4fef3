#!/usr/bin/env bash
# Installs the Debian packages payloadfs needs to build, test and demo (as root, or via sudo).
# Only missing packages are installed, and the package lists are refreshed only then.
set -euo pipefail

packages=(
  # build (clang and its libFuzzer runtime for the sanitizer and fuzz build)
  g++ cmake make ninja-build pkg-config libfuse3-dev nlohmann-json3-dev zlib1g-dev
  clang libclang-rt-14-dev
  # run
  fuse3
  # tests: GoogleTest, and the real tools that write and check fixtures
  googletest libgtest-dev libbenchmark-dev python3 python3-numpy xxd jq attr coreutils
  sqlite3 sqlite3-tools pngcheck python3-pil sox python3-soundfile
  tar zip unzip gzip pigz binutils gcc-multilib binutils-powerpc-linux-gnu
  # ar and cpio fixtures: GNU ar (binutils), llvm-ar/llvm-nm (BSD and /SYM64/ archives),
  # dpkg-deb (dpkg, essential) and GNU cpio
  cpio llvm
  # mp4 fixtures: ffmpeg and ffprobe
  ffmpeg
  tshark tcpdump python3-scapy
  zstd xz-utils wabt lld
  # torch.save checkpoints (tests/fixtures/gen_pickle.py, gen_pytorch.py, gen_malformed.py)
  python3-torch
  # flac and jpeg fixtures and their reference readers (metaflac is in flac)
  flac exiv2 libimage-exiftool-perl
  # pe and dicom fixtures and their readers: mingw-w64 (with its objdump), pefile, pydicom
  mingw-w64 python3-pefile python3-pydicom
  # ROS 1 bags written and read back by rosbag itself (its lz4 chunks need python3-roslz4)
  python3-rosbag python3-roslz4
  # netCDF classic fixtures and their reader (netCDF4-python); crcmod checks the TFRecord
  # generator's CRC-32C
  python3-netcdf4 python3-crcmod
  # hdf5 fixtures and their reader (h5py over libhdf5); dask.distributed reads refs.json
  # on a LocalCluster of worker processes
  python3-h5py python3-distributed
  # scripts/valgrind.sh; setpriv (test_permissions.py) is in util-linux
  valgrind util-linux
  # refs.json, read by the ecosystem's own readers (examples/clients also use jq and node)
  python3-zarr python3-fsspec python3-xarray
  # fits and tiff fixtures and their readers: astropy, tifffile, libtiff's tiffinfo
  python3-astropy python3-tifffile libtiff-tools
  # onnx fixtures and their reader (onnx.helper, numpy_helper)
  python3-onnx
  # packaging: the .deb's Depends (cpack), its check (scripts/check-package.sh) and mounts
  # through mount(8) (tests/integration/test_system_mount.py)
  dpkg-dev file groff-base util-linux mount
)
if [ "$#" -gt 0 ]; then packages+=("$@"); fi
# Node.js and npm (the GGUF reference parser comes from npm): Debian's packages unless the
# machine already has both commands (a nodesource nodejs bundles npm and conflicts with
# Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
