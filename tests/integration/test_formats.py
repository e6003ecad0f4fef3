"""Every built-in format through a real mount, on the real files the fixture generators made
with real tools, compared with what the reference tools (numpy, pngcheck, readelf, tar,
tshark, ...) read from the same files. One test, named as such, is a consistency check of
payloadfs with itself (mount against --inspect, raw/ against the offsets it reported)."""
import contextlib
import json
import os
import unittest
import zlib

import numpy as np

from mounting import BIN, FIXTURES, mounted, run

# The signature each format's `magic` holds (docs/formats.md); the others show the first 4
# bytes (safetensors, unknown) or their own rule (wav: 4 bytes, tar: bytes 257-264).
SIGNATURES = {"npy": b"\x93NUMPY", "gguf": b"GGUF", "sqlite": b"SQLite format 3\0",
              "png": b"\x89PNG\r\n\x1a\n", "elf": b"\x7fELF", "gzip": b"\x1f\x8b",
              "mcap": b"\x89MCAP0\r\n"}


class FormatsThroughMount(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not FIXTURES.is_dir():
            raise RuntimeError("fixtures missing: run tests/fixtures/generate.py first (ctest does)")
        cls.stack = contextlib.ExitStack()
        cls.mnt = cls.stack.enter_context(mounted(FIXTURES))

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def payload(self, rel):
        return self.mnt / rel

    def header(self, rel):
        return json.loads((self.payload(rel) / "header.json").read_text())

    def slices(self, rel):
        return json.loads((self.payload(rel) / "slices.json").read_text())

    def test_consistency_mount_inspect_and_reported_offsets(self):
        """A consistency check, not a reference (both sides are payloadfs's code): for every
        fixture, the mount's header.json is --inspect's, and every raw/ file and magic hold
        exactly the source bytes at the offsets payloadfs itself reported. The other tests of
        this module compare with independent readers."""
        checked = 0
        paths = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and not p.is_symlink())
        # One --inspect for all (a process each costs minutes under the sanitizers): one JSON
        # object per line, in argument order, each with the path as given.
        lines = run(BIN, "--inspect", "--compact", *paths).stdout.splitlines()
        self.assertEqual(len(lines), len(paths))
        inspected_by_path = {}
        for line in lines:
            inspected = json.loads(line)
            inspected_by_path[inspected["path"]] = inspected
        for path in paths:
            rel = path.relative_to(FIXTURES)
            with self.subTest(file=str(rel)):
                header = self.header(rel)
                inspected = inspected_by_path[str(path)]
                for key in ("size", "format", "magic", "magic_offset", "header", "slice_count"):
                    self.assertEqual(header[key], inspected[key], key)
                self.assertEqual(header.get("errors"), inspected.get("errors"))
                self.assertEqual(header["path"], str(rel))
                source = path.read_bytes()
                magic = (self.payload(rel) / "magic").read_bytes()
                start = header["magic_offset"]
                self.assertEqual(magic, source[start:start + len(magic)])
                self.assertEqual(magic.hex(), header["magic"])
                # Never vacuous: a signature where the format has one (docs/formats.md), else
                # the first bytes (every fixture is non-empty but the empty ones).
                if header["format"] in SIGNATURES:
                    self.assertEqual((start, magic), (0, SIGNATURES[header["format"]]))
                elif source:
                    self.assertTrue(magic, "empty magic for a non-empty file")
                slices = self.slices(rel)
                self.assertEqual(len(slices), header["slice_count"])
                for s in slices:
                    served = (self.payload(rel) / s["path"])
                    self.assertEqual(os.stat(served).st_size, s["length"], s["path"])
                    self.assertEqual(served.read_bytes(), source[s["offset"]:s["offset"] + s["length"]],
                                     s["path"])
                checked += 1
        self.assertGreater(checked, 20)

    def test_npy_matches_numpy_load(self):
        """raw/data holds the values numpy itself loads from the file (np.load, in the file's
        memory order), and header.json the header numpy's reader parsed."""
        expected = json.loads((FIXTURES / "numpy" / "expected.json").read_text())
        self.assertGreaterEqual(len(expected), 15)
        for name, want in expected.items():
            with self.subTest(file=name):
                h = self.header(f"numpy/{name}.npy")
                self.assertEqual(h["format"], "npy")
                self.assertNotIn("errors", h)
                for key in ("version", "descr", "shape", "fortran_order"):
                    self.assertEqual(h["header"][key], want[key], key)
                array = np.load(FIXTURES / "numpy" / f"{name}.npy", allow_pickle=False)
                order = "F" if want["fortran_order"] else "C"
                slices = self.slices(f"numpy/{name}.npy")
                self.assertEqual([s["name"] for s in slices], ["data"])
                self.assertEqual(slices[0]["length"], array.nbytes)
                data = (self.payload(f"numpy/{name}.npy") / "raw" / "data").read_bytes()
                self.assertEqual(data, array.tobytes(order=order))

    def test_gguf_matches_huggingface_gguf(self):
        expected = json.loads((FIXTURES / "gguf" / "expected.json").read_text())["files"]
        self.assertGreaterEqual(len(expected), 4)
        for name, want in expected.items():
            with self.subTest(file=name):
                h = self.header(f"gguf/{name}")
                self.assertEqual(h["format"], "gguf")
                self.assertNotIn("errors", h)
                for key in ("version", "byte_order", "tensor_count", "metadata_kv_count", "alignment",
                            "tensor_data_offset"):
                    self.assertEqual(h["header"][key], want[key], key)
                self.assertEqual(sorted(h["header"]["metadata"]), sorted(want["metadata"]))
                slices = self.slices(f"gguf/{name}")
                self.assertEqual([s["name"] for s in slices], [t["name"] for t in want["tensors"]])
                for s, t in zip(slices, want["tensors"]):
                    for key in ("type", "dims", "data_offset", "offset", "length"):
                        self.assertEqual(s[key], t[key], (t["name"], key))
                    self.assertEqual((self.payload(f"gguf/{name}") / s["path"]).read_bytes(),
                                     (FIXTURES / "gguf" / t["bytes"]).read_bytes(), t["name"])

    def test_sqlite_matches_sqlite(self):
        expected = json.loads((FIXTURES / "sqlite" / "expected.json").read_text())
        self.assertGreaterEqual(len(expected), 5)
        for name, want in expected.items():
            with self.subTest(db=name):
                h = self.header(f"sqlite/{name}")
                self.assertEqual(h["format"], "sqlite")
                pragma = want["pragma"]
                hh = h["header"]
                self.assertEqual(hh["page_size"], pragma["page_size"])
                self.assertEqual(hh["database_pages"], pragma["page_count"])
                self.assertEqual(hh["freelist_pages"], pragma["freelist_count"])
                self.assertEqual(hh["user_version"], pragma["user_version"])
                self.assertEqual(hh["application_id"], pragma["application_id"])
                self.assertEqual(hh["schema_cookie"], pragma["schema_version"])
                self.assertEqual(hh["text_encoding_name"], pragma["encoding"].lower())
                self.assertEqual((self.payload(f"sqlite/{name}") / "raw" / "header").read_bytes(),
                                 (FIXTURES / "sqlite" / f"{name}.header").read_bytes())

    def test_png_matches_pngcheck_and_pil(self):
        manifest = json.loads((FIXTURES / "png" / "manifest.json").read_text())
        self.assertGreaterEqual(len(manifest), 8)
        inflated = 0
        for name, want in manifest.items():
            with self.subTest(file=name):
                h = self.header(f"png/{name}")
                self.assertEqual(h["format"], "png")
                check = want["pngcheck"]
                for key in ("width", "height", "bit_depth", "color_type", "interlace"):
                    self.assertEqual(h["header"][key], check[key], key)
                slices = self.slices(f"png/{name}")
                # pngcheck stops at the first CRC error; what it listed must agree.
                listed = slices if not check["crc_error"] else slices[:len(check["chunks"])]
                self.assertEqual([s["name"] for s in listed], [c["type"] for c in check["chunks"]])
                self.assertEqual([s["length"] for s in listed], [c["length"] for c in check["chunks"]])
                # The generator's own chunk walk (Python, zlib.crc32): offsets, CRCs and the
                # chunk data bytes it cut out.
                self.assertEqual(len(slices), len(want["walk"]))
                for i, (s, c) in enumerate(zip(slices, want["walk"])):
                    self.assertEqual((s["name"], s["offset"], s["length"]),
                                     (c["type"], c["data_offset"], c["length"]))
                    self.assertEqual((s["crc"], s["crc_ok"]), (c["crc"], c["crc_ok"]))
                    self.assertEqual((self.payload(f"png/{name}") / s["path"]).read_bytes(),
                                     (FIXTURES / "png" / "chunks" / name / f"{i}.bin").read_bytes(),
                                     s["path"])
                self.assertEqual((self.payload(f"png/{name}") / "magic").read_bytes(),
                                 SIGNATURES["png"])
                if (want["pil"] or {}).get("decoded") and check["interlace"] == 0 and h["header"]["bit_depth"] == 8:
                    # The IDAT slices read through the mount inflate to the image's scanlines.
                    idat = b"".join((self.payload(f"png/{name}") / s["path"]).read_bytes()
                                    for s in slices if s["name"] == "IDAT")
                    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[h["header"]["color_type"]]
                    rows = h["header"]["height"] * (1 + h["header"]["width"] * channels)
                    self.assertEqual(len(zlib.decompress(idat)), rows)
                    inflated += 1
        self.assertGreaterEqual(inflated, 8)

    def test_wav_matches_soxi_and_wave(self):
        manifest = json.loads((FIXTURES / "wav" / "manifest.json").read_text())
        self.assertGreaterEqual(len(manifest), 10)
        compared = 0
        for name, want in manifest.items():
            with self.subTest(file=name):
                h = self.header(f"wav/{name}")
                self.assertEqual(h["format"], "wav")
                self.assertEqual("errors" in h, want["expect_errors"])
                soxi = want.get("soxi")
                self.assertIsNotNone(soxi, "soxi read every fixture when it was made")
                self.assertEqual(h["header"]["channels"], soxi["channels"])
                self.assertEqual(h["header"]["sample_rate"], soxi["rate"])
                if want.get("data"):  # all but ADPCM, which no reference decodes byte for byte
                    data = [s for s in self.slices(f"wav/{name}") if s["name"] == "data"]
                    self.assertEqual(len(data), 1)
                    self.assertEqual((self.payload(f"wav/{name}") / data[0]["path"]).read_bytes(),
                                     (FIXTURES / "wav" / want["data"]).read_bytes())
                    compared += 1
        self.assertGreaterEqual(compared, len(manifest) - 2)

    def test_tar_matches_gnu_tar_and_tarfile(self):
        archives = json.loads((FIXTURES / "tar" / "expected.json").read_text())["archives"]
        self.assertGreaterEqual(len(archives), 8)
        for want in archives:
            with self.subTest(archive=want["file"]):
                rel = f"tar/{want['file']}"
                h = self.header(rel)
                self.assertEqual(h["format"], "tar")
                self.assertEqual(h["header"]["members"], want["members"])
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(want["regular"]))
                for s, member in zip(slices, want["regular"]):
                    self.assertEqual(s["stored_name"].encode(), bytes.fromhex(member["name_hex"]))
                    for key in ("size", "uid", "gid", "mtime"):
                        self.assertEqual(s[key], member[key], key)
                    self.assertEqual(int(s["mode"], 8), member["mode"])
                    # The bytes GNU `tar -xO` extracts, read through the mount.
                    self.assertEqual((self.payload(rel) / s["path"]).read_bytes(),
                                     (FIXTURES / "tar" / member["data"]).read_bytes(), s["name"])

    def test_zip_matches_zipfile_and_unzip(self):
        archives = json.loads((FIXTURES / "zip" / "expected.json").read_text())["archives"]
        self.assertGreaterEqual(len(archives), 8)
        checked = 0
        for want in archives:
            if (FIXTURES / "zip" / want["file"]).read_bytes()[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
                continue  # self-extractors start with their stub, not a zip signature
            checked += 1
            with self.subTest(archive=want["file"]):
                rel = f"zip/{want['file']}"
                h = self.header(rel)
                self.assertEqual(h["format"], "zip")
                self.assertEqual(h["header"]["entries"], want["entries"])
                self.assertEqual(h["header"]["zip64"], want["zip64"])
                files = [e for e in want["entries_list"] if not e["is_dir"]]
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(files))
                for s, entry in zip(slices, files):
                    self.assertEqual(s["name"].encode(), bytes.fromhex(entry["name_hex"]))
                    self.assertEqual(s["method"], entry["method"])
                    self.assertEqual(s["crc32"], entry["crc"])
                    self.assertEqual(s["compressed_size"], entry["compress_size"])
                    self.assertEqual(s["uncompressed_size"], entry["file_size"])
                    # Stored entries equal `unzip -p`; deflated ones inflate to zipfile.read().
                    self.assertEqual((self.payload(rel) / s["path"]).read_bytes(),
                                     (FIXTURES / "zip" / entry["data"]).read_bytes(), s["name"])
        self.assertGreaterEqual(checked, 7)

    def test_elf_matches_readelf_and_objcopy(self):
        files = sorted((FIXTURES / "elf").glob("*.expected.json"))
        self.assertGreaterEqual(len(files), 8)
        for expected_file in files:
            name = expected_file.name[:-len(".expected.json")]
            with self.subTest(file=name):
                want = json.loads(expected_file.read_text())
                h = self.header(f"elf/{name}")
                self.assertEqual(h["format"], "elf")
                for key in ("class", "data", "type", "machine", "entry", "phnum", "shnum", "shstrndx"):
                    self.assertEqual(h["header"][key], want["header"][key], key)
                self.assertEqual([s["name"] or "" for s in h["header"]["sections"]],
                                 [s["name"] for s in want["sections"]])
                self.assertEqual(len(h["header"]["segments"]), len(want["segments"]))
                slices = {s["index"]: s for s in self.slices(f"elf/{name}")}
                dumped = 0
                for section in want["sections"]:
                    if section["index"] == 0 or section["type"] in ("NULL", "NOBITS"):
                        self.assertNotIn(section["index"], slices, section["name"])
                        continue
                    if section["dump"] is None:  # empty (.data, .note.GNU-stack): an empty file
                        self.assertEqual(section["size"], 0, section["name"])
                        s = slices[section["index"]]
                        self.assertEqual(s["length"], 0, section["name"])
                        self.assertEqual((self.payload(f"elf/{name}") / s["path"]).read_bytes(), b"",
                                         section["name"])
                        dumped += 1
                        continue
                    s = slices[section["index"]]
                    # objcopy --dump-section (or readelf's offset/size) bytes, through the mount.
                    self.assertEqual((self.payload(f"elf/{name}") / s["path"]).read_bytes(),
                                     (FIXTURES / "elf" / f"{name}.sections" / str(section["index"])).read_bytes(),
                                     section["name"])
                    dumped += 1
                self.assertEqual(dumped, len(slices))

    def test_gzip_members_inflate_like_zlib(self):
        files = sorted((FIXTURES / "gzip").glob("*.expected.json"))
        self.assertGreaterEqual(len(files), 6)
        for expected_file in files:
            name = expected_file.name[:-len(".expected.json")]
            with self.subTest(file=name):
                want = json.loads(expected_file.read_text())
                h = self.header(f"gzip/{name}")
                self.assertEqual(h["format"], "gzip")
                self.assertEqual(h["header"]["members"], len(want["members"]))
                slices = self.slices(f"gzip/{name}")
                self.assertEqual(len(slices), len(want["members"]))
                for s, member in zip(slices, want["members"]):
                    self.assertEqual((s["offset"], s["length"]), (member["deflate_offset"], member["deflate_length"]))
                    data = (self.payload(f"gzip/{name}") / s["path"]).read_bytes()
                    inflater = zlib.decompressobj(-15)
                    content = inflater.decompress(data) + inflater.flush()
                    self.assertTrue(inflater.eof)
                    self.assertEqual(inflater.unused_data, b"")
                    self.assertEqual(zlib.crc32(content), member["crc32"])
                    self.assertEqual(len(content) % (1 << 32), member["isize"])

    def check_packets(self, rel, packets):
        """Every packet through the mount: raw/packet/<i> bytes and slices.json attributes as
        tshark (and capinfos) read them from the same capture."""
        slices = [s for s in self.slices(rel) if s["name"].startswith("packet/")]
        self.assertEqual(len(slices), len(packets))
        width = len(str(len(packets) - 1)) if packets else 1
        names = sorted(os.listdir(self.payload(rel) / "raw" / "packet")) if packets else []
        self.assertEqual(names, [str(i).zfill(width) for i in range(len(packets))])
        for i, (s, want) in enumerate(zip(slices, packets)):
            self.assertEqual(s["name"], f"packet/{str(i).zfill(width)}")
            self.assertEqual((s["caplen"], s["origlen"]), (want["cap_len"], want["len"]), i)
            if "ts" in s:
                self.assertEqual(s["ts"], want["iso"], i)
            self.assertEqual((self.payload(rel) / s["path"]).read_bytes().hex(), want["hex"], i)

    def test_pcap_matches_tshark_and_capinfos(self):
        manifest = json.loads((FIXTURES / "pcap" / "manifest.json").read_text())
        self.assertGreaterEqual(len(manifest), 6)
        for name, want in manifest.items():
            with self.subTest(file=name):
                h = self.header(f"pcap/{name}")
                self.assertEqual(h["format"], "pcap")
                self.assertEqual("errors" in h, want["expect_errors"])
                self.assertEqual(h["header"]["linktype"], want["linktype"])
                self.assertEqual(h["header"]["byte_order"], want["byte_order"])
                self.assertEqual(h["header"]["ts_resolution"], want["ts_resolution"])
                self.assertEqual(h["header"]["packet_count"], len(want["packets"]))
                self.check_packets(f"pcap/{name}", want["packets"])

    def test_pcapng_matches_tshark(self):
        manifest = json.loads((FIXTURES / "pcapng" / "manifest.json").read_text())
        self.assertGreaterEqual(len(manifest), 6)
        for name, want in manifest.items():
            with self.subTest(file=name):
                h = self.header(f"pcapng/{name}")
                self.assertEqual(h["format"], "pcapng")
                self.assertEqual("errors" in h, want["expect_errors"])
                self.assertEqual(h["header"]["packet_count"], len(want["packets"]))
                self.assertEqual([i["linktype"] for i in h["header"]["interfaces"]],
                                 [i["linktype"] for i in want["interfaces"]])
                self.check_packets(f"pcapng/{name}", want["packets"])

    def test_mcap_matches_mcap_core(self):
        expected = json.loads((FIXTURES / "mcap" / "expected.json").read_text())
        self.assertGreaterEqual(len(expected), 4)
        for name, want in expected.items():
            if want.get("truncated_from"):
                continue  # a cut copy: the unit tests check what survives
            with self.subTest(file=name):
                rel = f"mcap/{name}"
                h = self.header(rel)
                self.assertEqual(h["format"], "mcap")
                self.assertEqual(h["header"]["profile"], want["header"]["profile"])
                self.assertEqual(sorted(c["topic"] for c in h["header"]["channels"]),
                                 sorted(c["topic"] for c in want["channels"]))
                slices = self.slices(rel)
                for a in want["attachments"] or []:
                    got = [s for s in slices if s["name"] == "attachment/" + a["name"]]
                    self.assertEqual(len(got), 1, a["name"])
                    self.assertEqual((self.payload(rel) / got[0]["path"]).read_bytes().hex(), a["hex"])
                if not want.get("messages_sliceable"):
                    continue
                for topic, messages in want["messages"].items():
                    # A topic's leading '/' (ROS) makes no directory, unless another topic
                    # already has the name without it (docs/layout.md).
                    bare = topic[1:] if topic.startswith("/") and topic[1:] not in want["messages"] \
                        else topic
                    prefix = "message/" + bare
                    got = [s for s in slices if s["name"].startswith(prefix + "/")
                           and s["name"].count("/") == prefix.count("/") + 1]
                    self.assertEqual(len(got), len(messages), topic)
                    for s, m in zip(got, messages):
                        self.assertEqual(s["sequence"], m["sequence"])
                        self.assertEqual(str(s["log_time"]), str(m["log_time"]))
                        self.assertEqual((self.payload(rel) / s["path"]).read_bytes().hex(), m["hex"])


if __name__ == "__main__":
    unittest.main()
