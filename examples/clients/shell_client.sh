#!/usr/bin/env bash
# Reads a payload through a payloadfs mount with jq, dd and sha256sum.
#
# usage: shell_client.sh MNT/<file> [START LENGTH]
#
# Prints the payload's format, size and slice count (jq on header.json), each slice's name,
# offset and length (jq on slices.json), and the SHA-256 of bytes [START, START+LENGTH) of the
# source read by dd from range/START+LENGTH (default: the first slice's range).
set -euo pipefail

if [ "$#" -ne 1 ] && [ "$#" -ne 3 ]; then
  echo "usage: $0 MNT/<file> [START LENGTH]" >&2
  exit 2
fi
payload=$1

jq -r '"format \(.format)", "size \(.size)", "slices \(.slice_count)"' "$payload/header.json"
jq -r '.[] | "slice \(.name) \(.offset) \(.length)"' "$payload/slices.json"

if [ "$#" -eq 3 ]; then
  start=$2
  length=$3
else
  read -r start length < <(jq -r 'first(.[] | "\(.offset) \(.length)") // "0 0"' "$payload/slices.json")
fi
# range/<start>+<length> exists on lookup only (it is not listed): dd reads it like any file.
sum=$(dd if="$payload/range/$start+$length" bs=64K status=none | sha256sum | cut -d' ' -f1)
echo "range $start+$length sha256 $sum"
