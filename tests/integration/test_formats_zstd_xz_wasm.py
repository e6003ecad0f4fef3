"""zstd, xz and wasm through a real mount, on files the real tools wrote
(tests/fixtures/gen_zstd.py, gen_xz.py, gen_wasm.py), compared with the reference tools:

- zstd: `zstd -lv` on the source (frame and skippable frame counts, decompressed size) and on
  every raw/frame/<i> alone (window size, dictionary ID, content size, check), and `zstd -d`
  of every frame slice alone, which must give back the input that frame was made from.
- xz: `xz -lvv --robot` (every block's offset and total size, sizes, check, streams), and every
  raw/block/<i> wrapped alone in a new stream (header, index of one record, footer, written
  here from the .xz specification) that `xz -d` must decompress, checking the block's own check,
  to exactly the block's part of `xz -dc` of the whole file.
- wasm: `wasm-objdump -h` (section names, offsets, sizes; the raw/ bytes at those offsets) and
  `wasm-objdump -x` (import and export counts, export names).

The broken copies under each fixture directory's malformed/ show their format with `errors`,
every raw/ file reads, and the mount still serves afterwards.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import unittest
import zlib

from mounting import FIXTURES, MountedFixtures, requirement

ZSTD_DIR = FIXTURES / "zstd"
XZ_DIR = FIXTURES / "xz"
WASM_DIR = FIXTURES / "wasm"

WASM_KINDS = {"Type": "type", "Import": "import", "Function": "function", "Table": "table",
              "Memory": "memory", "Global": "global", "Export": "export", "Start": "start",
              "Elem": "element", "Code": "code", "Data": "data", "DataCount": "data_count",
              "Tag": "tag"}


def tool(*args, stdin=None):
    return subprocess.run(args, check=True, capture_output=True, input=stdin).stdout


def zstd_list(path):
    """`zstd -lv PATH`'s fields: frames, skippable, dict_id, window, decompressed, check."""
    text = tool("zstd", "-lv", str(path)).decode()

    def number(pattern, default=None):
        m = re.search(pattern, text, re.M)
        return int(m[1]) if m else default
    return {"frames": number(r"^# Zstandard Frames: (\d+)"),
            "skippable": number(r"^# Skippable Frames: (\d+)", 0),
            "dict_id": number(r"^DictID: (\d+)"),
            "window": number(r"^Window Size: .*\((\d+) B\)"),
            "compressed": number(r"^Compressed Size: .*\((\d+) B\)"),
            "decompressed": number(r"^Decompressed Size: .*\((\d+) B\)"),
            "check": re.search(r"^Check: (\S+)", text, re.M)[1]}


def xz_robot(path):
    out = tool("xz", "-lvv", "--robot", str(path)).decode()
    rows = [line.split("\t") for line in out.splitlines()]
    return [r for r in rows if r[0] == "stream"], [r for r in rows if r[0] == "block"]


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def lone_block_stream(block, check_id, unpadded, uncompressed):
    """A stream holding only `block` (.xz format 1.2.0, sections 2.1 and 4)."""
    flags = bytes([0, check_id])
    header = b"\xfd7zXZ\0" + flags + struct.pack("<I", zlib.crc32(flags))
    index = b"\0" + varint(1) + varint(unpadded) + varint(uncompressed)
    index += bytes(-len(index) % 4)
    index += struct.pack("<I", zlib.crc32(index))
    tail = struct.pack("<I", len(index) // 4 - 1) + flags
    return header + block + index + struct.pack("<I", zlib.crc32(tail)) + tail + b"YZ"


XZ_CHECK_IDS = {"None": 0, "CRC32": 1, "CRC64": 4, "SHA-256": 10}


@requirement(all(shutil.which(t) for t in ("zstd", "xz", "wasm-objdump")),
             "zstd, xz and wasm-objdump (packages zstd, xz-utils, wabt) are needed")
class ZstdXzWasmThroughMount(MountedFixtures):
    REQUIRED = ("zstd/manifest.json", "xz/manifest.json", "wasm/manifest.json")

    # ------------------------------------------------------------------------------ zstd

    def check_zstd_frame(self, rel, s, expected):
        raw = self.mnt / rel / s["path"]
        alone = zstd_list(raw)
        self.assertEqual((alone["frames"], alone["skippable"]), (1, 0))
        self.assertEqual(s["window_size"], alone["window"])
        self.assertEqual(s["dictionary_id"], alone["dict_id"])
        self.assertEqual(s.get("content_size"), alone["decompressed"])
        self.assertEqual(s["checksum"], alone["check"] == "XXH64")
        args = ["zstd", "-q", "-d", "-c", str(raw)]
        if expected["dictionary"]:
            args[1:1] = ["-D", str(ZSTD_DIR / "dict")]
        part = (ZSTD_DIR / f"{rel.split('/')[-1]}.parts" / str(expected["part"])).read_bytes()
        self.assertEqual(tool(*args), part)

    def test_zstd_matches_zstd_list_and_decompression(self):
        checked = 0
        for name in json.loads((ZSTD_DIR / "manifest.json").read_text()):
            rel = f"zstd/{name}"
            with self.subTest(file=name):
                h = self.header(rel)
                self.assertEqual(h["format"], "zstd")
                self.assertNotIn("errors", h)
                listed = zstd_list(ZSTD_DIR / name)
                self.assertEqual(h["header"]["frames"], listed["frames"])
                self.assertEqual(h["header"]["skippable_frames"], listed["skippable"])
                self.assertEqual(h["header"].get("content_size"), listed["decompressed"])
                slices = self.slices(rel)
                self.assertEqual(sum(s["length"] for s in slices), listed["compressed"])
                expected = json.loads((ZSTD_DIR / f"{name}.expected.json").read_text())["frames"]
                self.assertEqual(len(slices), len(expected))
                for s, e in zip(slices, expected):
                    if e["kind"] == "frame":
                        self.check_zstd_frame(rel, s, e)
                    else:  # written by gen_zstd.py: zstd lists and skips it
                        raw = self.mnt / rel / s["path"]
                        alone = zstd_list(raw)
                        self.assertEqual((alone["frames"], alone["skippable"]), (0, 1))
                        self.assertEqual(tool("zstd", "-q", "-d", "-c", str(raw)), b"")
                        self.assertEqual(raw.read_bytes()[8:].hex(), e["user_data"])
                    checked += 1
        self.assertGreaterEqual(checked, 14)

    # ------------------------------------------------------------------------------ xz

    def test_xz_blocks_match_xz_robot_and_decompress_alone(self):
        checked = 0
        for name in json.loads((XZ_DIR / "manifest.json").read_text()):
            rel = f"xz/{name}"
            with self.subTest(file=name):
                h = self.header(rel)
                self.assertEqual(h["format"], "xz")
                self.assertNotIn("errors", h)
                streams, blocks = xz_robot(XZ_DIR / name)
                self.assertEqual(h["header"]["streams"], len(streams))
                self.assertEqual(h["header"]["blocks"], len(blocks))
                checks = list(dict.fromkeys(r[8] for r in streams))
                self.assertEqual(h["header"]["check"], checks[0] if len(checks) == 1 else checks)
                content = tool("xz", "-d", "-c", str(XZ_DIR / name))
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(blocks))
                for s, b in zip(slices, blocks):
                    self.assertEqual(s["name"], f"block/{int(b[3]) - 1}")
                    self.assertEqual((s["offset"], s["length"]), (int(b[4]), int(b[6])))
                    self.assertEqual(s["uncompressed_size"], int(b[7]))
                    self.assertEqual(s["uncompressed_offset"], int(b[5]))
                    self.assertEqual(s["check"], b[9])
                    self.assertEqual(s["compressed_size"], int(b[13]))
                    block = (self.mnt / rel / s["path"]).read_bytes()
                    lone = lone_block_stream(block, XZ_CHECK_IDS[b[9]], s["unpadded_size"],
                                             s["uncompressed_size"])
                    start = int(b[5])
                    self.assertEqual(tool("xz", "-d", "-c", stdin=lone),
                                     content[start:start + int(b[7])])
                    checked += 1
        self.assertGreaterEqual(checked, 30)

    # ------------------------------------------------------------------------------ wasm

    def test_wasm_matches_wasm_objdump(self):
        checked = 0
        for name in json.loads((WASM_DIR / "manifest.json").read_text()):
            rel = f"wasm/{name}"
            with self.subTest(file=name):
                src = (WASM_DIR / name).read_bytes()
                h = self.header(rel)
                self.assertEqual(h["format"], "wasm")
                listing = tool("wasm-objdump", "-h", str(WASM_DIR / name)).decode()
                sections = re.findall(r'^\s*(\w+) start=0x([0-9a-f]+) end=0x([0-9a-f]+) '
                                      r'\(size=0x([0-9a-f]+)\)(?: "(.*)")?', listing, re.M)
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(sections))
                self.assertEqual(h["header"]["section_count"], len(sections))
                for s, (kind, start, end, size, custom) in zip(slices, sections):
                    want = f"custom/{custom}" if kind == "Custom" else WASM_KINDS[kind]
                    self.assertEqual(s["name"], want)
                    self.assertEqual((s["offset"], s["length"]), (int(start, 16), int(size, 16)))
                    data = (self.mnt / rel / s["path"]).read_bytes()
                    self.assertEqual(data, src[int(start, 16):int(end, 16)])
                    checked += 1
                details = tool("wasm-objdump", "-x", str(WASM_DIR / name)).decode()
                counts = dict(re.findall(r"^(Import|Export)\[(\d+)\]:", details, re.M))
                self.assertEqual(h["header"]["import_count"], int(counts.get("Import", 0)))
                self.assertEqual(h["header"]["export_count"], int(counts.get("Export", 0)))
                names = re.findall(r'^ - \w+\[\d+\](?: <[^>]*>)? -> "(.*)"$', details, re.M)
                self.assertEqual([e["name"] for e in h["header"]["exports"]], names[:4096])
                # Only a module past the 4096-export listing limit reports it.
                self.assertEqual("errors" in h, len(names) > 4096, h.get("errors"))
        self.assertGreaterEqual(checked, 30)

    # ------------------------------------------------------------------------------ malformed

    def test_malformed_copies_have_errors_and_the_mount_stays_alive(self):
        version = (self.mnt / ".payloadfs" / "version").read_text()
        checked = 0
        for fmt, base in (("zstd", ZSTD_DIR), ("xz", XZ_DIR), ("wasm", WASM_DIR)):
            for entry in json.loads((base / "malformed" / "manifest.json").read_text()):
                rel = f"{fmt}/malformed/{entry['file']}"
                with self.subTest(file=rel, problem=entry["problem"]):
                    src = (FIXTURES / rel).read_bytes()
                    h = self.header(rel)
                    self.assertEqual(h["format"], fmt)
                    self.assertTrue(h.get("errors"), entry["problem"])
                    for s in self.slices(rel):
                        data = (self.mnt / rel / s["path"]).read_bytes()
                        self.assertEqual(data, src[s["offset"]:s["offset"] + s["length"]])
                    for dirpath, _, files in os.walk(self.mnt / rel / "raw"):
                        for f in files:
                            with open(os.path.join(dirpath, f), "rb") as raw:
                                raw.read()
                    checked += 1
        self.assertGreaterEqual(checked, 19)
        self.assertEqual((self.mnt / ".payloadfs" / "version").read_text(), version)


if __name__ == "__main__":
    unittest.main()
