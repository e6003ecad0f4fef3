"""User-defined formats (descriptors) through a real mount: a telemetry format from
examples/formats read from shell and Python, the pcap descriptor agreeing with the built-in
pcap parser on the same captures, and bad descriptors stopping the mount."""
import datetime
import json
import os
import pathlib
import shutil
import tempfile
import unittest

from mounting import BIN, FIXTURES, PYTHON, mounted, run

REPO = pathlib.Path(__file__).resolve().parents[2]
FORMATS = REPO / "examples" / "formats"


class DescriptorsThroughMount(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-desc-"))
        cls.telemetry = cls.tmp / "telemetry"
        run(PYTHON, REPO / "scripts" / "gen-telemetry.py", cls.telemetry, "--files", "3",
            "--records", "200", "--expected")
        cls.expected = json.loads((cls.telemetry / "expected.json").read_text())
        (cls.telemetry / "expected.json").unlink()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_telemetry_files_read_from_shell_and_python(self):
        with mounted(self.telemetry, "-o", f"formats={FORMATS}") as mnt:
            formats = json.loads((mnt / ".payloadfs" / "formats.json").read_text())
            mine = [f for f in formats if f["name"] == "telemetry"]
            self.assertEqual(len(mine), 1)
            self.assertEqual(mine[0]["source"], str(FORMATS / "telemetry.json"))
            self.assertEqual(formats[0]["source"] != "built-in", True)  # descriptors come first
            for name, want in self.expected.items():
                with self.subTest(file=name):
                    header = json.loads((mnt / name / "header.json").read_text())
                    self.assertEqual(header["format"], "telemetry")
                    self.assertNotIn("errors", header)
                    h = header["header"]
                    for key in ("device_id", "sample_rate_hz", "start_time_ns", "record_count", "device_name"):
                        self.assertEqual(h[key], want[key], key)
                    self.assertEqual(h["mode"]["value"], want["mode"])
                    self.assertEqual(h["status"]["value"], want["status"])
                    records = sorted(os.listdir(mnt / name / "raw" / "records"))
                    self.assertEqual(len(records), len(want["records"]))
                    slices = [s for s in json.loads((mnt / name / "slices.json").read_text())
                              if s["name"].startswith("records/")]
                    self.assertEqual(len(slices), len(want["records"]))
                    raw = (self.telemetry / name).read_bytes()
                    for s, w in zip(slices, want["records"]):
                        self.assertEqual(s["sequence"], w["sequence"])
                        self.assertEqual(s["channel"], w["channel"])
                        self.assertEqual(s["kind"]["value"], w["kind"])
                        self.assertAlmostEqual(s["value"], w["value"], places=4)
                        self.assertEqual((mnt / name / s["path"]).read_bytes(),
                                         raw[s["offset"]:s["offset"] + s["length"]])
            # From the shell: dd one record; from Python: numpy over the record table.
            first = sorted(self.expected)[0]
            rec = run("dd", f"if={mnt / first / 'raw' / 'records' / records[0]}", "status=none").stdout
            self.assertEqual(len(rec), 24)
            script = (
                "import json, sys, numpy as np\n"
                "mnt, name = sys.argv[1], sys.argv[2]\n"
                "s = [x for x in json.load(open(f'{mnt}/{name}/slices.json')) if x['name'].startswith('records/')]\n"
                "raw = open(f'{mnt}/{name}/range/{s[0][\"offset\"]}+{24 * len(s)}', 'rb').read()\n"
                "print(len(np.frombuffer(raw, dtype=np.uint8).reshape(len(s), 24)))\n")
            out = run(PYTHON, "-c", script, mnt, first).stdout.decode().strip()
            self.assertEqual(int(out), len(self.expected[first]["records"]))

    def test_malformed_telemetry_reports_errors(self):
        bad = self.tmp / "bad"
        run(PYTHON, REPO / "scripts" / "gen-telemetry.py", bad, "--files", "1", "--records", "10",
            "--malformed")
        malformed = [n for n in os.listdir(bad) if n.startswith("malformed")]
        self.assertGreaterEqual(len(malformed), 2)
        with mounted(bad, "-o", f"formats={FORMATS}") as mnt:
            for name in malformed:
                header = json.loads((mnt / name / "header.json").read_text())
                self.assertEqual(header["format"], "telemetry", name)
                self.assertIn("errors", header, name)
            self.assertTrue((mnt / ".payloadfs" / "version").read_text())

    def test_pcap_descriptor_agrees_with_the_builtin_parser(self):
        captures = FIXTURES / "pcap"
        names = sorted(p.name for p in captures.glob("*.pcap"))
        self.assertGreaterEqual(len(names), 5)
        with mounted(captures) as builtin, mounted(captures, "-o", f"formats={FORMATS}") as described:
            for name in names:
                with self.subTest(capture=name):
                    hb = json.loads((builtin / name / "header.json").read_text())
                    hd = json.loads((described / name / "header.json").read_text())
                    self.assertEqual((hb["format"], hd["format"]), ("pcap", "pcap-descriptor"))
                    self.assertEqual("errors" in hb, "errors" in hd)
                    pb = [s for s in json.loads((builtin / name / "slices.json").read_text())
                          if s["name"].startswith("packet/")]
                    pd = [s for s in json.loads((described / name / "slices.json").read_text())
                          if s["name"].startswith("packet/")]
                    self.assertEqual(len(pb), len(pd))
                    self.assertEqual([s["name"] for s in pb], [s["name"] for s in pd])
                    nano = hb["header"]["ts_resolution"] == "ns"
                    for b, d in zip(pb, pd):
                        self.assertEqual((b["offset"], b["length"]), (d["offset"], d["length"]))
                        self.assertEqual((b["caplen"], b["origlen"]), (d["caplen"], d["origlen"]))
                        frac = f"{d['ts_usec']:09d}" if nano else f"{d['ts_usec']:06d}"
                        when = datetime.datetime.fromtimestamp(d["ts_sec"], datetime.timezone.utc)
                        self.assertEqual(b["ts"], when.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z")
                        self.assertEqual((builtin / name / b["path"]).read_bytes(),
                                         (described / name / d["path"]).read_bytes())

    def test_descriptor_search_path(self):
        """Descriptors load from -o formats=DIR, then $XDG_CONFIG_HOME/payloadfs/formats (else
        ~/.config/payloadfs/formats), then the system directory ($PAYLOADFS_SYSTEM_FORMATS,
        else /etc/payloadfs/formats), and of one name the first directory's wins
        (docs/descriptors.md). The same descriptor sits in each directory; formats.json says
        which file the mount loaded, and the header which format it parsed with."""
        home = self.tmp / "home"
        xdg = self.tmp / "xdg"
        explicit = self.tmp / "explicit"
        system = self.tmp / "system"
        home_dir = home / ".config" / "payloadfs" / "formats"
        xdg_dir = xdg / "payloadfs" / "formats"
        for d in (home_dir, xdg_dir, explicit, system):
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy(FORMATS / "telemetry.json", d / "telemetry.json")
        empty = self.tmp / "empty"
        empty.mkdir(exist_ok=True)
        first = sorted(self.expected)[0]
        nohome = str(self.tmp / "nohome")
        cases = (
            ((f"formats={explicit}",), {"XDG_CONFIG_HOME": str(xdg),
                                        "PAYLOADFS_SYSTEM_FORMATS": str(system)}, explicit),
            ((), {"XDG_CONFIG_HOME": str(xdg), "PAYLOADFS_SYSTEM_FORMATS": str(system)}, xdg_dir),
            ((), {"HOME": str(home), "XDG_CONFIG_HOME": "",
                  "PAYLOADFS_SYSTEM_FORMATS": str(system)}, home_dir),
            ((), {"HOME": nohome, "XDG_CONFIG_HOME": str(empty),
                  "PAYLOADFS_SYSTEM_FORMATS": str(system)}, system),
            ((), {"HOME": nohome, "XDG_CONFIG_HOME": str(empty),
                  "PAYLOADFS_SYSTEM_FORMATS": ""}, None),
            ((), {}, None),  # the tests' own environment: nothing but the built-ins
        )
        for options, env, where in cases:
            with self.subTest(options=options, env=env):
                opts = ("-o", options[0]) if options else ()
                with mounted(self.telemetry, *opts, env=env) as mnt:
                    formats = json.loads((mnt / ".payloadfs" / "formats.json").read_text())
                    sources = [f["source"] for f in formats if f["source"] != "built-in"]
                    header = json.loads((mnt / first / "header.json").read_text())
                if where is None:
                    self.assertEqual(sources, [])
                    self.assertEqual(header["format"], "unknown")
                else:
                    self.assertEqual(sources, [str(where / "telemetry.json")])
                    self.assertEqual(header["format"], "telemetry")

    def test_bad_descriptor_stops_the_mount(self):
        formats = self.tmp / "badformats"
        formats.mkdir(exist_ok=True)
        (formats / "broken.json").write_text(json.dumps(
            {"name": "broken", "magic": {"offset": 0, "ascii": "XX"},
             "slices": [{"name": "s", "offset": "1 +", "length": "2"}]}))
        mnt = self.tmp / "mnt"
        mnt.mkdir(exist_ok=True)
        result = run(BIN, self.telemetry, mnt, "-o", f"formats={formats}", check=False)
        self.assertNotEqual(result.returncode, 0)
        err = result.stderr.decode()
        self.assertIn("broken.json", err)
        self.assertIn("/slices/0/offset", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        check = run(BIN, "--check-format", formats / "broken.json", check=False)
        self.assertNotEqual(check.returncode, 0)
        good = run(BIN, "--check-format", FORMATS / "telemetry.json",
                   *sorted(self.telemetry.glob("*.tlm"))[:1])
        self.assertIn(b"matches", good.stdout)


if __name__ == "__main__":
    unittest.main()
