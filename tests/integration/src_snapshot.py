#!/usr/bin/python3
"""Proves a source tree was not modified: `snapshot DIR STATEFILE` records every entry under
DIR (type, mode, size, mtime_ns, and the sha256 of each regular file's bytes or each link's
target); `verify DIR STATEFILE` compares DIR with the record and exits 1 listing every entry
added, removed or changed.

Access times are not compared (reading changes them unless O_NOATIME applies); everything a
write, chmod, truncate, touch, create, unlink or rename would change is.
"""
import hashlib
import json
import os
import stat
import sys


def describe(path):
    st = os.lstat(path)
    entry = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
             "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        entry["sha256"] = digest.hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        entry["target"] = os.fsdecode(os.readlink(path))
    return entry


def snapshot(root):
    """{relative path: entry} for DIR itself and everything below it (links not followed)."""
    root = os.fsencode(root)
    out = {".": describe(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            # Names are bytes; surrogateescape keeps non-UTF-8 names round-trippable in JSON.
            out[os.fsdecode(os.path.relpath(path, root))] = describe(path)
    return out


def differences(before, after):
    lines = []
    for rel in sorted(before.keys() - after.keys()):
        lines.append(f"removed: {os.fsencode(rel)!r}")
    for rel in sorted(after.keys() - before.keys()):
        lines.append(f"added: {os.fsencode(rel)!r}")
    for rel in sorted(before.keys() & after.keys()):
        changed = [f"{k} {before[rel].get(k)!r} -> {after[rel].get(k)!r}"
                   for k in sorted(before[rel].keys() | after[rel].keys())
                   if before[rel].get(k) != after[rel].get(k)]
        if changed:
            lines.append(f"changed: {os.fsencode(rel)!r}: " + ", ".join(changed))
    return lines


def main(argv):
    if len(argv) != 4 or argv[1] not in ("snapshot", "verify"):
        print(f"usage: {argv[0]} snapshot|verify DIR STATEFILE", file=sys.stderr)
        return 2
    command, root, state = argv[1:]
    if not os.path.isdir(root):
        print(f"src_snapshot: {root} is not a directory", file=sys.stderr)
        return 2
    current = snapshot(root)
    if command == "snapshot":
        with open(state, "w", encoding="utf-8", errors="surrogateescape") as f:
            json.dump(current, f, ensure_ascii=True)
        print(f"src_snapshot: recorded {len(current)} entries of {root}")
        return 0
    with open(state, encoding="utf-8", errors="surrogateescape") as f:
        recorded = json.load(f)
    lines = differences(recorded, current)
    if lines:
        print(f"src_snapshot: {root} changed since the snapshot ({len(lines)} entries):",
              file=sys.stderr)
        for line in lines:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"src_snapshot: {root} unchanged ({len(current)} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
