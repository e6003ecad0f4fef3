"""Every built-in format through a real mount, on the real files the fixture generators made
with real tools, compared with what the reference tools read from the same files."""
import contextlib
import json
import os
import pathlib
import unittest
import zlib

from mounting import BIN, FIXTURES, mounted, run


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

    def test_every_file_serves_exactly_its_slices(self):
        """For every fixture: the mount's header.json is --inspect's, and every raw/ file and
        magic hold exactly the source bytes slices.json and header.json point at."""
        checked = 0
        for path in sorted(p for p in FIXTURES.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = path.relative_to(FIXTURES)
            with self.subTest(file=str(rel)):
                header = self.header(rel)
                inspected = json.loads(run(BIN, "--inspect", path).stdout)
                for key in ("size", "format", "magic", "magic_offset", "header", "slice_count"):
                    self.assertEqual(header[key], inspected[key], key)
                self.assertEqual(header.get("errors"), inspected.get("errors"))
                self.assertEqual(header["path"], str(rel))
                source = path.read_bytes()
                magic = (self.payload(rel) / "magic").read_bytes()
                start = header["magic_offset"]
                self.assertEqual(magic, source[start:start + len(magic)])
                self.assertEqual(magic.hex(), header["magic"])
                slices = self.slices(rel)
                self.assertEqual(len(slices), header["slice_count"])
                for s in slices:
                    served = (self.payload(rel) / s["path"])
                    self.assertEqual(os.stat(served).st_size, s["length"], s["path"])
                    self.assertEqual(served.read_bytes(), source[s["offset"]:s["offset"] + s["length"]],
                                     s["path"])
                checked += 1
        self.assertGreater(checked, 20)

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
                self.assertEqual([s["offset"] for s in slices], [c["data_offset"] for c in want["walk"]])
                walk = {c["data_offset"]: c for c in want["walk"]}
                for s in slices:
                    self.assertEqual(s["crc"], walk[s["offset"]]["crc"])
                    self.assertEqual(s["crc_ok"], walk[s["offset"]]["crc_ok"])
                if (want["pil"] or {}).get("decoded") and check["interlace"] == 0 and h["header"]["bit_depth"] == 8:
                    # The IDAT slices read through the mount inflate to the image's scanlines.
                    idat = b"".join((self.payload(f"png/{name}") / s["path"]).read_bytes()
                                    for s in slices if s["name"] == "IDAT")
                    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[h["header"]["color_type"]]
                    rows = h["header"]["height"] * (1 + h["header"]["width"] * channels)
                    self.assertEqual(len(zlib.decompress(idat)), rows)

    def test_wav_matches_soxi_and_wave(self):
        manifest = json.loads((FIXTURES / "wav" / "manifest.json").read_text())
        self.assertGreaterEqual(len(manifest), 10)
        for name, want in manifest.items():
            with self.subTest(file=name):
                h = self.header(f"wav/{name}")
                self.assertEqual(h["format"], "wav")
                self.assertEqual("errors" in h, want["expect_errors"])
                soxi = want.get("soxi")
                if soxi:
                    self.assertEqual(h["header"]["channels"], soxi["channels"])
                    self.assertEqual(h["header"]["sample_rate"], soxi["rate"])
                if want.get("data"):
                    data = [s for s in self.slices(f"wav/{name}") if s["name"] == "data"][0]
                    self.assertEqual((self.payload(f"wav/{name}") / data["path"]).read_bytes(),
                                     (FIXTURES / "wav" / want["data"]).read_bytes())

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
        for want in archives:
            if (FIXTURES / "zip" / want["file"]).read_bytes()[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
                continue  # self-extractors start with their stub, not a zip signature
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
                    if section["dump"] is None:
                        self.assertNotIn(section["index"], slices, section["name"])
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
                    got = [s for s in slices if s["name"].startswith("message/" + topic + "/")
                           and s["name"].count("/") == ("message/" + topic).count("/") + 1]
                    self.assertEqual(len(got), len(messages), topic)
                    for s, m in zip(got, messages):
                        self.assertEqual(s["sequence"], m["sequence"])
                        self.assertEqual(str(s["log_time"]), str(m["log_time"]))
                        self.assertEqual((self.payload(rel) / s["path"]).read_bytes().hex(), m["hex"])


if __name__ == "__main__":
    unittest.main()
