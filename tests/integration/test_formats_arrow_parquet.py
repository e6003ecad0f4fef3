"""Parquet and Arrow through a real mount, on files two npm writers produced (hyparquet-writer and
@dsnp/parquetjs, tests/fixtures/gen_parquet.py), compared with what an independent npm reader,
hyparquet's parquetMetadata, reads from the same footers: each column chunk's slice starts at
its dictionary page (when there is one) or its first data page and is total_compressed_size
long, with the reader's codec, type, num_values and sizes. The malformed copies must show
`parquet` with the error they were made for, and the mount must keep serving."""
import json
import struct
import time
import unittest

from mounting import FIXTURES, MountedFixtures


def load(name):
    return json.loads((FIXTURES / name / "expected.json").read_text())


def chunk_start(column):
    dictionary = column["dictionary_page_offset"]
    if dictionary and dictionary < column["data_page_offset"]:
        return dictionary
    return column["data_page_offset"]


class ParquetThroughMount(MountedFixtures):
    REQUIRED = ("parquet/expected.json",)

    def check_file(self, name, want):
        rel = f"parquet/{name}"
        h = self.header(rel)
        self.assertEqual(h["format"], "parquet")
        self.assertNotIn("errors", h)
        self.assertEqual((self.mnt / rel / "magic").read_bytes(), b"PAR1")
        head = h["header"]
        self.assertEqual(head["num_rows"], want["num_rows"])
        self.assertEqual(head["created_by"], want["created_by"])
        self.assertEqual(head["key_value_metadata"], want["key_value_metadata"])
        self.assertEqual([[g["num_rows"], g["total_byte_size"]] for g in head["row_groups"]],
                         [[g["num_rows"], g["total_byte_size"]] for g in want["row_groups"]])
        slices = {s["name"]: s for s in self.slices(rel)}
        source = (FIXTURES / rel).read_bytes()
        expected_names = []
        for i, group in enumerate(want["row_groups"]):
            for column in group["columns"]:
                slice_name = f"row_group/{i}/{column['path']}"
                expected_names.append(slice_name)
                s = slices[slice_name]
                start, length = chunk_start(column), column["total_compressed_size"]
                self.assertEqual((s["offset"], s["length"]), (start, length), slice_name)
                for key in ("codec", "type", "num_values", "total_compressed_size",
                            "total_uncompressed_size", "encodings"):
                    self.assertEqual(s[key], column[key], f"{slice_name} {key}")
                self.assertEqual((self.mnt / rel / s["path"]).read_bytes(),
                                 source[start:start + length], slice_name)
        self.assertEqual(sorted(slices), sorted(expected_names))
        return slices

    def test_hyparquet_writer_file_matches_hyparquet_metadata(self):
        want = load("parquet")["hyparquet.parquet"]
        self.assertEqual(len(want["row_groups"]), 2)
        slices = self.check_file("hyparquet.parquet", want)
        # The dictionary-encoded column starts at its dictionary page.
        city = slices["row_group/0/city"]
        self.assertIn("RLE_DICTIONARY", city["encodings"])
        self.assertEqual(city["offset"], city["dictionary_page_offset"])
        self.assertEqual(slices["row_group/0/big"]["codec"], "UNCOMPRESSED")

    def test_parquetjs_file_matches_hyparquet_metadata(self):
        want = load("parquet")["parquetjs.parquet"]
        self.assertEqual(len(want["row_groups"]), 3)
        slices = self.check_file("parquetjs.parquet", want)
        self.assertEqual(slices["row_group/0/name"]["codec"], "GZIP")

    def test_a_thousand_row_groups(self):
        want = load("parquet")["many_groups.parquet"]
        self.assertEqual(len(want["row_groups"]), 1000)
        started = time.monotonic()
        self.check_file("many_groups.parquet", want)
        self.assertLess(time.monotonic() - started, 30)

    def test_malformed_copies_report_their_error(self):
        cases = {
            "footer_past_start.parquet": "runs past the start",
            "truncated_footer.parquet": "footer (FileMetaData)",
            "list_bomb.parquet": "thrift list of 1099511627776 elements",
            "no_end_magic.parquet": "no \"PAR1\" at the end",
            "chunk_past_end.parquet": "row_group/0/x: its pages",
        }
        for name, error in cases.items():
            rel = f"parquet/malformed/{name}"
            with self.subTest(file=name):
                h = self.header(rel)
                self.assertEqual(h["format"], "parquet")
                self.assertTrue(any(error in e for e in h.get("errors", [])), h.get("errors"))
                size = (FIXTURES / rel).stat().st_size
                for s in self.slices(rel):
                    self.assertLessEqual(s["offset"] + s["length"], size)
        self.assertEqual(self.header("parquet/hyparquet.parquet")["format"], "parquet")




def arrow_buffers(want_column):
    """The reader's buffers of a column, by role, in the file's order."""
    return {role: bytes.fromhex(want_column[role]) if want_column[role] else None
            for role in ("validity", "offsets", "data")}


class ArrowThroughMount(MountedFixtures):
    """Arrow IPC file written by apache-arrow's tableToIPC (tests/fixtures/gen_arrow.py),
    compared with what apache-arrow's tableFromIPC reads back: the schema, the row counts, and
    each buffer's bytes (the served slice starts with the reader's buffer: the file pads
    buffers to 8 bytes); the int32 data buffer also equals the values as little-endian bytes."""
    REQUIRED = ("arrow/expected.json",)

    ROLES = {"Int32": ["validity", "data"], "Float64": ["validity", "data"],
             "Utf8": ["validity", "offsets", "data"],
             "Dictionary<Int32, Utf8>": ["validity", "data"]}

    def test_schema_and_batches_match_apache_arrow(self):
        want = load("arrow")
        h = self.header("arrow/table.arrow")
        self.assertEqual(h["format"], "arrow")
        self.assertNotIn("errors", h)
        self.assertEqual((self.mnt / "arrow/table.arrow" / "magic").read_bytes(), b"ARROW1\0\0")
        head = h["header"]
        self.assertEqual(head["metadata"], want["metadata"])
        fields = head["schema"]["fields"]
        self.assertEqual([[f["name"], f["nullable"]] for f in fields],
                         [[f["name"], f["nullable"]] for f in want["fields"]])
        self.assertEqual([f["type"] for f in fields], ["int32", "double", "utf8", "utf8"])
        self.assertEqual(fields[3]["dictionary"]["index_type"], "int32")
        self.assertEqual([b["rows"] for b in head["batches"]],
                         [b["rows"] for b in want["batches"]])

    def test_buffers_are_the_readers_buffers(self):
        want = load("arrow")
        rel = "arrow/table.arrow"
        slices = {s["name"]: s for s in self.slices(rel)}
        checked = 0
        for i, batch in enumerate(want["batches"]):
            for field in want["fields"]:
                column = batch["columns"][field["name"]]
                buffers = arrow_buffers(column)
                for k, role in enumerate(self.ROLES[field["type"]]):
                    name = f"batch/{i}/{field['name']}/{k}"
                    with self.subTest(slice=name):
                        s = slices[name]
                        self.assertEqual(s["role"], role)
                        self.assertEqual(s["rows"], column["rows"])
                        self.assertEqual(s["null_count"], column["null_count"])
                        served = (self.mnt / rel / s["path"]).read_bytes()
                        self.assertEqual(len(served), s["length"])
                        if buffers[role] is not None:
                            self.assertTrue(served.startswith(buffers[role]), name)
                            checked += 1
                        elif role == "validity":
                            self.assertEqual(column["null_count"], 0)
        self.assertEqual(checked, 12)
        # Values, independently of the reader's buffers: i is [1, null, -3] then [40, 50].
        i0 = (self.mnt / rel / slices["batch/0/i/1"]["path"]).read_bytes()
        self.assertEqual(struct.unpack_from("<i", i0, 0)[0], 1)
        self.assertEqual(struct.unpack_from("<i", i0, 8)[0], -3)
        self.assertEqual((self.mnt / rel / slices["batch/1/i/1"]["path"]).read_bytes()[:8],
                         struct.pack("<2i", 40, 50))
        self.assertEqual((self.mnt / rel / slices["batch/0/s/2"]["path"]).read_bytes()[:10],
                         b"alphagamma")

    def test_dictionary_batch(self):
        want = load("arrow")["dictionaries"]["d"]
        rel = "arrow/table.arrow"
        h = self.header(rel)
        dict_id = h["header"]["schema"]["fields"][3]["dictionary"]["id"]
        slices = {s["name"]: s for s in self.slices(rel)}
        offsets = slices[f"dictionary/{dict_id}/d/1"]
        data = slices[f"dictionary/{dict_id}/d/2"]
        self.assertEqual((offsets["role"], data["role"]), ("offsets", "data"))
        self.assertTrue((self.mnt / rel / offsets["path"]).read_bytes().startswith(
            bytes.fromhex(want["offsets"])))
        self.assertTrue((self.mnt / rel / data["path"]).read_bytes().startswith(b"xy"))

    def test_malformed_copies_report_their_error(self):
        cases = {
            "footer_past_start.arrow": "runs past the start",
            "no_end_magic.arrow": "no \"ARROW1\" at the end",
            "footer_offset_oob.arrow": "root table out of bounds",
            "field_dag_bomb.arrow": "more than 10000 fields",
        }
        for name, error in cases.items():
            rel = f"arrow/malformed/{name}"
            with self.subTest(file=name):
                started = time.monotonic()
                h = self.header(rel)
                self.assertLess(time.monotonic() - started, 10)
                self.assertEqual(h["format"], "arrow")
                self.assertTrue(any(error in e for e in h.get("errors", [])), h.get("errors"))
        self.assertEqual(self.header("arrow/table.arrow")["format"], "arrow")


if __name__ == "__main__":
    unittest.main()
