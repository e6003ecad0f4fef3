"""Hostile payloads through a real mount: an ELF object with 65,535 sections (extended section
numbering) read once, in 5 new versions and as 8 copies at once. header.json must stay small
and valid, with errors saying what was cut, and the daemon's anonymous memory must come back
down once the builds are dropped (not stay at the parse's peak in the allocator's arenas).

Under the ASan build (PAYLOADFS_SANITIZED=1) the RssAnon ceiling is not checked (the
sanitizer's shadow memory and quarantine are anonymous memory too), but every step still runs.
"""
import concurrent.futures
import json
import os
import pathlib
import shutil
import struct
import sys
import tempfile
import threading
import time
import unittest

from mounting import daemon_pid, mounted, proc_status_kib

SANITIZED = os.environ.get("PAYLOADFS_SANITIZED") == "1"

SECTIONS = 65_535
# The daemon's anonymous memory after each step. The payload cache keeps the most recently used
# payload whatever its size (about 16 MiB for this file: 16,384 slices); every other build must
# have been handed back to the kernel.
RSS_ANON_CEILING_KIB = 64 << 10
# header.json lists at most 2048 sections and about 1 MiB of their text (docs/formats.md, elf).
HEADER_JSON_CEILING = 2 << 20
# What docs/formats.md names for ELF: sections listed in header.json, sections made slices.
LISTED_SECTIONS = 2048
SECTION_SLICES = 16_384


def many_sections_elf(count=SECTIONS) -> bytes:
    """An ELF64 relocatable object with `count` sections: e_shnum = 0 and section 0's sh_size
    holds the count, e_shstrndx = SHN_XINDEX and section 0's sh_link holds the name table's
    index (gABI extended numbering). Sections 1 .. count-2 are one-byte PROGBITS `.s<i>`."""
    names = bytearray(b"\0")
    name_offsets = []
    for i in range(1, count - 1):
        name_offsets.append(len(names))
        names += b".s%d\0" % i
    shstrtab_name = len(names)
    names += b".shstrtab\0"
    data = bytes(i & 0xFF for i in range(count - 2))
    data_off = 64
    names_off = data_off + len(data)
    shoff = (names_off + len(names) + 7) & ~7
    out = bytearray(b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8))
    # e_type ET_REL, EM_X86_64, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum,
    # shentsize, shnum = 0, shstrndx = SHN_XINDEX.
    out += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 0, 0xFFFF)
    out += data + names
    out += bytes(shoff - len(out))
    shdr = struct.Struct("<IIQQQQIIQQ")
    out += shdr.pack(0, 0, 0, 0, 0, count, count - 1, 0, 0, 0)
    for i in range(1, count - 1):
        out += shdr.pack(name_offsets[i - 1], 1, 2, 0, data_off + i - 1, 1, 0, 0, 1, 0)
    out += shdr.pack(shstrtab_name, 3, 0, 0, names_off, len(names), 0, 0, 1, 0)
    return bytes(out)


def read_all(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ManySectionsElfTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-hostile-"))
        self.src = self.tmp / "src"
        self.src.mkdir()
        self.elf = many_sections_elf()
        (self.src / "many.elf").write_bytes(self.elf)
        copies = self.src / "copies"
        copies.mkdir()
        for i in range(8):
            (copies / f"many{i}.elf").write_bytes(self.elf)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def settled_rss_anon(self, pid, what):
        """RssAnon once the last requests are done (their payloads are dropped, and the heap
        trimmed, just after the replies; a close's RELEASE comes after close() returns): the
        lowest value seen within half a second, checked against the ceiling."""
        lowest = proc_status_kib(pid, "RssAnon")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            time.sleep(0.05)
            lowest = min(lowest, proc_status_kib(pid, "RssAnon"))
        print(f"\n  RssAnon after {what}: {lowest} KiB", file=sys.stderr, end="")
        if not SANITIZED:
            self.assertLess(lowest, RSS_ANON_CEILING_KIB, f"RssAnon {lowest} KiB after {what}")
        return lowest

    def check_header(self, payload, source):
        text = read_all(payload / "header.json")
        self.assertLess(len(text), HEADER_JSON_CEILING)
        self.assertEqual(os.stat(payload / "header.json").st_size, len(text))
        h = json.loads(text)
        self.assertEqual(h["format"], "elf")
        self.assertEqual(h["mtime_ns"], os.stat(source).st_mtime_ns, "a stale version")
        self.assertEqual(h["header"]["shnum"], SECTIONS)
        self.assertEqual(h["header"]["shstrndx"], SECTIONS - 1)
        self.assertTrue(h["header"]["sections_truncated"])
        self.assertEqual(len(h["header"]["sections"]), LISTED_SECTIONS)
        self.assertEqual(h["header"]["sections"][-1]["index"], LISTED_SECTIONS - 1)
        self.assertEqual(h["slice_count"], SECTION_SLICES)
        errors = h["errors"]
        self.assertTrue(any(f"{SECTIONS} sections: header.json lists the first "
                            f"{LISTED_SECTIONS}" in e for e in errors), errors)
        self.assertTrue(any(f"the first {SECTION_SLICES} are slices" in e for e in errors), errors)
        self.assertLessEqual(len(errors), 4, errors)
        return h

    def test_65535_sections(self):
        with mounted(self.src, log_path=self.tmp / "payloadfs.log") as mnt:
            pid = daemon_pid(mnt)
            baseline = proc_status_kib(pid, "RssAnon")
            print(f"\n  RssAnon at mount: {baseline} KiB", file=sys.stderr, end="")

            # One parse: a bounded, valid header.json, and the sections that are slices.
            payload = mnt / "many.elf"
            self.check_header(payload, self.src / "many.elf")
            print(f"\n  header.json: {os.stat(payload / 'header.json').st_size} bytes, "
                  f"slices.json: {os.stat(payload / 'slices.json').st_size} bytes",
                  file=sys.stderr, end="")
            slices = json.loads(read_all(payload / "slices.json"))
            self.assertEqual(len(slices), SECTION_SLICES)
            self.assertEqual(slices[0]["name"], ".s1")
            self.assertEqual(slices[-1]["name"], f".s{SECTION_SLICES}")
            self.assertEqual(read_all(payload / "raw" / ".s1"), self.elf[64:65])
            self.assertEqual(read_all(payload / slices[-1]["path"]),
                             self.elf[64 + SECTION_SLICES - 1:64 + SECTION_SLICES])
            self.settled_rss_anon(pid, "one parse")

            # Five new versions: a changed byte and a new mtime each; the cache keeps one entry.
            source = self.src / "many.elf"
            for version in range(1, 6):
                with open(source, "r+b") as f:
                    f.seek(64 + version)
                    f.write(bytes([0xA0 + version]))
                stamp = 1_700_000_000_000_000_000 + version * 1_000_000_000
                os.utime(source, ns=(stamp, stamp))
                self.check_header(payload, source)
                self.assertEqual(read_all(payload / "raw" / f".s{version + 1}"),
                                 bytes([0xA0 + version]))
            stats = json.loads(read_all(mnt / ".payloadfs" / "stats.json"))
            print(f"\n  cache after 5 versions: {stats['payload_cache']['entries']} entries, "
                  f"{stats['payload_cache']['bytes']} bytes estimated", file=sys.stderr, end="")
            self.settled_rss_anon(pid, "5 new versions")

            # Eight copies read at once.
            barrier = threading.Barrier(8)

            def read_copy(i):
                copy = mnt / "copies" / f"many{i}.elf"
                barrier.wait(timeout=60)
                h = self.check_header(copy, self.src / "copies" / f"many{i}.elf")
                listed = json.loads(read_all(copy / "slices.json"))
                return h["slice_count"], len(listed)

            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(read_copy, range(8)))
            self.assertEqual(results, [(SECTION_SLICES, SECTION_SLICES)] * 8)
            peak = proc_status_kib(pid, "VmHWM")
            print(f"\n  VmHWM after 8 copies: {peak} KiB", file=sys.stderr, end="")
            self.settled_rss_anon(pid, "8 copies read at once")


if __name__ == "__main__":
    unittest.main()
