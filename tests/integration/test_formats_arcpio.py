"""ar and cpio through a real mount, on archives GNU ar, llvm-ar, dpkg-deb and GNU cpio wrote
(tests/fixtures/gen_ar.py, gen_cpio.py), compared with what the reference tools read from the
same files: `ar tvO` (names, modes, owners, times, sizes, data offsets), `ar p` (member bytes),
`nm --print-armap` / `llvm-nm --print-armap` (the symbol table), `cpio -itvn` (entries,
types, sizes, owners, link targets) and `cpio -i --to-stdout` (file bytes). The malformed
copies the generators wrote must show their format with the error they were made for, and the
mount must keep serving."""
import json
import os
import unittest

from mounting import FIXTURES, MountedFixtures


def load(name):
    return json.loads((FIXTURES / name / "expected.json").read_text())


class ArCpioThroughMount(MountedFixtures):
    REQUIRED = ("ar/expected.json", "cpio/expected.json")

    def test_ar_matches_ar_tv_ar_p_and_nm(self):
        want_all = load("ar")["archives"]
        self.assertGreaterEqual(len(want_all), 10)
        for want in want_all:
            rel = f"ar/{want['file']}"
            with self.subTest(archive=want["file"]):
                h = self.header(rel)
                self.assertEqual(h["format"], "ar")
                self.assertNotIn("errors", h)
                self.assertEqual((self.mnt / rel / "magic").read_bytes(), b"!<arch>\n")
                self.assertEqual(h["header"]["variant"], want["variant"])
                self.assertEqual(h["header"]["members"], len(want["members"]))
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(want["members"]))
                for s, member in zip(slices, want["members"]):
                    self.assertEqual(s["name"], member["name"])
                    self.assertEqual(s["offset"], member["offset"])  # ar tvO
                    self.assertEqual(s["length"], member["size"])
                    self.assertEqual(int(s["mode"], 8) & 0o777, member["mode"])
                    self.assertEqual((s["uid"], s["gid"]), (member["uid"], member["gid"]))
                    self.assertEqual(s["mtime"] // 60 * 60, member["mtime_minute"])
                    if member["mtime"] is not None:
                        self.assertEqual(s["mtime"], member["mtime"])
                    served = self.mnt / rel / s["path"]
                    self.assertEqual(os.stat(served).st_size, member["size"])
                    self.assertEqual(served.read_bytes(),
                                     (FIXTURES / "ar" / member["data"]).read_bytes(), s["path"])
                table = h["header"]["symbol_table"]
                if want["symbol_kind"] is None:
                    self.assertIsNone(table)
                    continue
                self.assertEqual(table["kind"], want["symbol_kind"])
                self.assertEqual(h["header"]["symbol_count"], len(want["symbols"]))
                self.assertEqual([[x["name"], x["member"]] for x in table["symbols"]],
                                 want["symbols"])

    def test_ar_repeated_names_get_a_suffix(self):
        slices = self.slices("ar/gnu_repeated.a")
        self.assertEqual([s["name"] for s in slices],
                         ["short.o", "first_object_with_a_long_name.o", "short.o"])
        self.assertEqual([s["path"] for s in slices],
                         ["raw/short.o", "raw/first_object_with_a_long_name.o", "raw/short.o~1"])
        self.assertEqual(sorted(os.listdir(self.mnt / "ar/gnu_repeated.a/raw")),
                         ["first_object_with_a_long_name.o", "short.o", "short.o~1"])

    def test_deb_members(self):
        for deb, codec in (("package_xz.deb", "xz"), ("package_gzip.deb", "gz")):
            with self.subTest(deb=deb):
                names = sorted(os.listdir(self.mnt / "ar" / deb / "raw"))
                self.assertEqual(names, sorted(["debian-binary", f"control.tar.{codec}",
                                                f"data.tar.{codec}"]))
                self.assertEqual((self.mnt / "ar" / deb / "raw/debian-binary").read_bytes(),
                                 b"2.0\n")

    def test_cpio_matches_cpio_itv_and_extraction(self):
        want_all = load("cpio")["archives"]
        self.assertGreaterEqual(len(want_all), 6)
        for want in want_all:
            rel = f"cpio/{want['file']}"
            with self.subTest(archive=want["file"]):
                h = self.header(rel)
                self.assertEqual(h["format"], "cpio")
                self.assertNotIn("errors", h)
                hdr = h["header"]
                self.assertEqual(hdr["format"], want["format"])
                self.assertEqual(hdr["trailing_data_offset"], want["trailing_data_offset"])
                self.assertEqual([(a["offset"], a["format"]) for a in hdr["archives"]],
                                 [(p["offset"], p["format"]) for p in want["parts"]])
                entries = [e for p in want["parts"] for e in p["entries"]]
                self.assertEqual(hdr["members"], len(entries))
                files = [e for e in entries if e["type"] == "file"]
                others = [e for e in entries if e["type"] != "file"]
                self.assertEqual([(o["path"], o["type"], o.get("target")) for o in hdr["others"]],
                                 [(o["name"], o["type"], o["target"]) for o in others])
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(files))
                for s, entry in zip(slices, files):
                    self.assertEqual(s["stored_name"], entry["name"])
                    self.assertEqual(s["length"], entry["size"])
                    self.assertEqual(int(s["mode"], 8) & 0o7777, entry["mode"])
                    self.assertEqual((s["uid"], s["gid"]), (entry["uid"], entry["gid"]))
                    self.assertEqual(s["nlink"], entry["nlink"])
                    if entry["mtime"] is not None:
                        self.assertEqual(s["mtime"], entry["mtime"])
                    self.assertEqual((self.mnt / rel / s["path"]).read_bytes(),
                                     (FIXTURES / "cpio" / entry["data"]).read_bytes(), s["path"])

    def test_cpio_concatenated_repeats_get_a_suffix(self):
        slices = self.slices("cpio/concatenated.cpio")
        hello = [s for s in slices if s["name"] == "hello.txt"]
        self.assertEqual([s["path"] for s in hello], ["raw/hello.txt", "raw/hello.txt~1"])
        self.assertEqual([s["archive"] for s in hello], [0, 1])
        # Paths with a directory and odd characters nest and stay as they are.
        names = {s["path"] for s in slices}
        self.assertIn("raw/sub/deeper/notes.md", names)
        self.assertIn("raw/name with spaces.txt", names)
        self.assertIn("raw/naïve_日本.txt", names)
        self.assertEqual(os.getxattr(self.mnt / "cpio/concatenated.cpio/raw/hello.txt~1",
                                     "user.payloadfs.archive"), b"1")

    def test_malformed_copies_report_their_error(self):
        checked = 0
        for fmt in ("ar", "cpio"):
            for case in load(fmt)["malformed"]:
                rel = f"{fmt}/{case['file']}"
                with self.subTest(file=rel, mutation=case["mutation"]):
                    h = self.header(rel)
                    self.assertEqual(h["format"], fmt)
                    self.assertTrue(any(case["error"] in e for e in h.get("errors", [])),
                                    h.get("errors"))
                    size = (FIXTURES / rel).stat().st_size
                    for s in self.slices(rel):
                        self.assertLessEqual(s["offset"] + s["length"], size)
                        self.assertEqual(len((self.mnt / rel / s["path"]).read_bytes()),
                                         s["length"])
                    checked += 1
        self.assertGreaterEqual(checked, 11)
        # Still serving after every malformed file.
        self.assertEqual(self.header("ar/gnu_long_names.a")["format"], "ar")


if __name__ == "__main__":
    unittest.main()
