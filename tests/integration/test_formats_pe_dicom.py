"""pe and dicom through a real mount, on files the real producers wrote
(tests/fixtures/gen_pe.py: mingw-w64; gen_dicom.py: pydicom), compared with independent readers:

- pe: python3-pefile (every section's raw/ bytes equal `section.get_data()`; the data
  directories' names, RVAs, sizes, and file offsets equal `get_offset_from_rva`; the imported
  DLLs and the export name) and `x86_64-w64-mingw32-objdump -h -p` (section names, sizes, VMAs,
  file offsets; the optional header fields and data directories). COFF objects (which pefile
  does not read) against `objdump -h` alone: names, sizes, file offsets and the bytes there.
- dicom: pydicom (transfer syntax, SOP class, modality, rows, columns, bits allocated; every
  element's tag, VR and short value, sequences item by item; `ds.pixel_array` equal to a
  numpy.memmap of raw/pixel_data with the served dtype and shape; encapsulated fragments equal
  to `pydicom.encaps.generate_pixel_data_fragment`'s).

The broken copies under each fixture directory's malformed/ show their format with `errors`,
every raw/ file reads, and the mount still serves afterwards.
"""
import json
import os
import re
import shutil
import subprocess
import unittest

from mounting import FIXTURES, MountedFixtures, requirement

PE_DIR = FIXTURES / "pe"
DICOM_DIR = FIXTURES / "dicom"
OBJDUMP = "x86_64-w64-mingw32-objdump"

try:
    import numpy
    import pefile
    import pydicom
    from pydicom import encaps
    from pydicom.filebase import DicomBytesIO
    HAVE_READERS = True
except ImportError:
    HAVE_READERS = False

# objdump -p's optional header lines, by our key.
OBJDUMP_FIELDS = {"address_of_entry_point": "AddressOfEntryPoint", "image_base": "ImageBase",
                  "section_alignment": "SectionAlignment", "file_alignment": "FileAlignment",
                  "size_of_image": "SizeOfImage", "size_of_headers": "SizeOfHeaders",
                  "checksum": "CheckSum", "size_of_code": "SizeOfCode",
                  "size_of_stack_reserve": "SizeOfStackReserve",
                  "size_of_heap_reserve": "SizeOfHeapReserve", "base_of_code": "BaseOfCode",
                  "number_of_rva_and_sizes": "NumberOfRvaAndSizes"}
VERSIONS = {"os_version": "OSystem", "image_version": "Image", "subsystem_version": "Subsystem"}
TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
            "UI", "UR", "UT"}


def objdump(*args):
    return subprocess.run([OBJDUMP, *args], check=True, capture_output=True, text=True).stdout


def objdump_sections(path):
    rows = re.findall(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)",
                      objdump("-h", str(path)), re.M)
    return [(name, int(size, 16), int(vma, 16), int(off, 16)) for name, size, vma, off in rows]


def objdump_private(path):
    text = objdump("-p", str(path))
    fields = dict(re.findall(r"^(\w+)\s+(?:0x)?([0-9a-fA-F]+)\b", text, re.M))
    directories = [(int(i, 16), int(rva, 16), int(size, 16)) for i, rva, size in
                   re.findall(r"^Entry ([0-9a-f]) ([0-9a-f]+) ([0-9a-f]+)", text, re.M)]
    return fields, directories


def tag_text(tag):
    return f"({tag.group:04X},{tag.element:04X})"


def pydicom_text(elem):
    value = elem.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


@requirement(HAVE_READERS and shutil.which(OBJDUMP) is not None,
             "python3-pefile, python3-pydicom, python3-numpy and mingw-w64 are needed")
class PeDicomThroughMount(MountedFixtures):
    REQUIRED = ("pe/manifest.json", "dicom/manifest.json")

    # ------------------------------------------------------------------------------ pe

    def test_pe_images_match_pefile(self):
        images = json.loads((PE_DIR / "manifest.json").read_text())["images"]
        self.assertGreaterEqual(len(images), 5)
        for name in images:
            rel = f"pe/{name}"
            with self.subTest(file=rel):
                pe = pefile.PE(str(PE_DIR / name))
                whole = self.header(rel)
                self.assertEqual(whole["format"], "pe")
                self.assertNotIn("errors", whole)
                h = whole["header"]
                slices = self.slices(rel)
                self.assertEqual(len(slices), len(pe.sections))
                for s, section in zip(slices, pe.sections):
                    raw_name = section.Name.rstrip(b"\0").decode("latin-1")
                    self.assertEqual(s.get("header_name", s["name"]), raw_name)
                    self.assertEqual(s["virtual_address"], section.VirtualAddress)
                    self.assertEqual(s["virtual_size"], section.Misc_VirtualSize)
                    self.assertEqual(int(s["characteristics"], 16), section.Characteristics)
                    served = (self.mnt / rel / s["path"]).read_bytes()
                    self.assertEqual(served, section.get_data(), s["name"])
                ours = h["data_directories"]
                self.assertEqual(len(ours), len(pe.OPTIONAL_HEADER.DATA_DIRECTORY))
                for d, ref in zip(ours, pe.OPTIONAL_HEADER.DATA_DIRECTORY):
                    self.assertEqual("IMAGE_DIRECTORY_ENTRY_" + d["name"], ref.name)
                    self.assertEqual((d["rva"], d["size"]), (ref.VirtualAddress, ref.Size))
                    if ref.VirtualAddress and d["name"] != "SECURITY":
                        self.assertEqual(d["file_offset"],
                                         pe.get_offset_from_rva(ref.VirtualAddress))
                self.assertEqual(h["imports"],
                                 [e.dll.decode() for e in pe.DIRECTORY_ENTRY_IMPORT])
                if hasattr(pe, "DIRECTORY_ENTRY_EXPORT"):
                    export = pe.DIRECTORY_ENTRY_EXPORT
                    self.assertEqual(h["export_name"], export.name.decode())
                    self.assertEqual(h["exports"],
                                     [s.name.decode() for s in export.symbols if s.name])
                    self.assertIn("pfs_add", h["exports"])
                else:
                    self.assertNotIn("export_name", h)
                self.assertEqual(h["optional_header"]["magic_value"], pe.OPTIONAL_HEADER.Magic)
                self.assertEqual(h["machine"]["value"], pe.FILE_HEADER.Machine)
                self.assertEqual(h["timestamp"], pe.FILE_HEADER.TimeDateStamp)

    def test_pe_images_match_objdump(self):
        images = json.loads((PE_DIR / "manifest.json").read_text())["images"]
        for name in images:
            rel = f"pe/{name}"
            with self.subTest(file=rel):
                h = self.header(rel)["header"]
                oh = h["optional_header"]
                slices = self.slices(rel)
                sections = objdump_sections(PE_DIR / name)
                self.assertEqual(len(sections), len(slices))
                for s, (sname, size, vma, offset) in zip(slices, sections):
                    self.assertEqual(s["name"], sname)
                    self.assertEqual(s["virtual_size"], size, sname)
                    self.assertEqual(oh["image_base"] + s["virtual_address"], vma, sname)
                    self.assertEqual(s["pointer_to_raw_data"], offset, sname)
                fields, directories = objdump_private(PE_DIR / name)
                self.assertEqual(oh["magic_value"], int(fields["Magic"], 16))
                self.assertEqual(int(h["characteristics"], 16),
                                 int(fields["Characteristics"], 16))
                for key, field in OBJDUMP_FIELDS.items():
                    self.assertEqual(oh[key], int(fields[field], 16), key)
                for key, field in VERSIONS.items():
                    self.assertEqual(oh[key], f"{int(fields['Major' + field + 'Version'])}."
                                              f"{int(fields['Minor' + field + 'Version'])}")
                self.assertEqual(oh["subsystem"]["value"], int(fields["Subsystem"], 16))
                self.assertEqual(int(oh["dll_characteristics"], 16),
                                 int(fields["DllCharacteristics"], 16))
                self.assertEqual([(d["index"], d["rva"], d["size"])
                                  for d in h["data_directories"]], directories)

    def test_coff_objects_match_objdump(self):
        objects = json.loads((PE_DIR / "manifest.json").read_text())["objects"]
        self.assertGreaterEqual(len(objects), 3)
        long_names = 0
        for name in objects:
            rel = f"pe/{name}"
            with self.subTest(file=rel):
                whole = self.header(rel)
                self.assertEqual(whole["format"], "pe")
                self.assertEqual(whole["header"]["kind"], "COFF object")
                src = (PE_DIR / name).read_bytes()
                slices = self.slices(rel)
                sections = objdump_sections(PE_DIR / name)
                self.assertEqual([s["name"] for s in slices], [x[0] for x in sections])
                for s, (sname, size, _, offset) in zip(slices, sections):
                    self.assertEqual(s["length"], size, sname)
                    long_names += "header_name" in s
                    if size:
                        self.assertEqual(s["offset"], offset, sname)
                        self.assertEqual((self.mnt / rel / s["path"]).read_bytes(),
                                         src[offset:offset + size])
        self.assertGreater(long_names, 5)

    # ------------------------------------------------------------------------------ dicom

    def check_elements(self, ours, dataset, implicit, where):
        elements = [e for e in dataset]
        self.assertEqual([e["tag"] for e in ours], [tag_text(e.tag) for e in elements], where)
        for e, ref in zip(ours, elements):
            what = f"{where} {e['tag']}"
            if not implicit or e["vr"] != "UN":
                self.assertEqual(e["vr"], ref.VR if ref.VR != "OB or OW" else e["vr"], what)
            if ref.VR == "SQ":
                self.assertEqual(len(e["items"]), len(ref.value), what)
                for i, (items, item) in enumerate(zip(e["items"], ref.value)):
                    self.check_elements(items, item, implicit, f"{what}[{i}]")
            elif "value" in e and e["value"] is not None and ref.tag != 0x7FE00010:
                if ref.VR in TEXT_VRS:
                    self.assertEqual(e["value"], pydicom_text(ref).strip(), what)
                elif isinstance(e["value"], list):
                    self.assertEqual(e["value"], list(ref.value), what)
                else:
                    self.assertEqual(e["value"], ref.value, what)

    def test_dicom_matches_pydicom(self):
        files = json.loads((DICOM_DIR / "manifest.json").read_text())
        self.assertGreaterEqual(len(files), 6)
        for name in files:
            rel = f"dicom/{name}"
            with self.subTest(file=rel):
                ds = pydicom.dcmread(str(DICOM_DIR / name))
                whole = self.header(rel)
                self.assertEqual(whole["format"], "dicom")
                self.assertNotIn("errors", whole)
                h = whole["header"]
                syntax = ds.file_meta.TransferSyntaxUID
                self.assertEqual(h["transfer_syntax"]["uid"], str(syntax))
                self.assertEqual(h["transfer_syntax"]["name"], syntax.name)
                self.assertEqual(h["sop_class_uid"], str(ds.SOPClassUID))
                self.assertEqual(h["modality"], ds.Modality)
                self.assertEqual((h["rows"], h["columns"], h["bits_allocated"]),
                                 (ds.Rows, ds.Columns, ds.BitsAllocated))
                self.assertEqual(h["samples_per_pixel"], ds.SamplesPerPixel)
                self.assertEqual(h["number_of_frames"],
                                 int(ds.NumberOfFrames) if "NumberOfFrames" in ds else None)
                self.assertEqual(h["photometric_interpretation"], ds.PhotometricInterpretation)
                self.check_elements(h["file_meta"], ds.file_meta, False, "meta")
                self.check_elements(h["elements"], ds, syntax.is_implicit_VR, "dataset")
                if syntax.is_compressed:
                    self.check_fragments(rel, ds)
                else:
                    self.check_pixels(rel, ds)

    def check_pixels(self, rel, ds):
        (s,) = self.slices(rel)
        self.assertEqual(s["name"], "pixel_data")
        served = numpy.memmap(self.mnt / rel / s["path"], dtype=numpy.dtype(s["dtype"]),
                              mode="r", shape=tuple(s["shape"]))
        expected = ds.pixel_array
        self.assertEqual(served.shape, expected.shape)
        self.assertTrue(numpy.array_equal(served, expected))
        self.assertEqual(served.dtype.kind + str(served.dtype.itemsize),
                         expected.dtype.kind + str(expected.dtype.itemsize))

    def check_fragments(self, rel, ds):
        fp = DicomBytesIO(ds.PixelData)
        fp.is_little_endian = True
        encaps.get_frame_offsets(fp)  # past the basic offset table
        if hasattr(encaps, "generate_pixel_data_fragment"):
            fragments = list(encaps.generate_pixel_data_fragment(fp))
        else:  # pydicom 3
            fragments = list(encaps.generate_fragments(ds.PixelData))[1:]
        slices = self.slices(rel)
        self.assertEqual([s["name"] for s in slices],
                         [f"pixel_data/{i}" for i in range(len(fragments))])
        self.assertEqual(len(fragments), 3)
        for s, fragment in zip(slices, fragments):
            self.assertEqual((self.mnt / rel / s["path"]).read_bytes(), fragment)

    # ------------------------------------------------------------------------------ malformed

    def test_malformed_copies_have_errors_and_the_mount_stays_alive(self):
        version = (self.mnt / ".payloadfs" / "version").read_text()
        checked = 0
        for fmt, base in (("pe", PE_DIR), ("dicom", DICOM_DIR)):
            for name, problem in json.loads((base / "malformed" / "manifest.json")
                                            .read_text()).items():
                rel = f"{fmt}/malformed/{name}"
                with self.subTest(file=rel, problem=problem):
                    src = (FIXTURES / rel).read_bytes()
                    h = self.header(rel)
                    self.assertEqual(h["format"], fmt)
                    self.assertTrue(h.get("errors"), problem)
                    for s in self.slices(rel):
                        data = (self.mnt / rel / s["path"]).read_bytes()
                        self.assertEqual(data, src[s["offset"]:s["offset"] + s["length"]])
                    for dirpath, _, files in os.walk(self.mnt / rel / "raw"):
                        for f in files:
                            with open(os.path.join(dirpath, f), "rb") as raw:
                                raw.read()
                    checked += 1
        self.assertGreaterEqual(checked, 10)
        self.assertEqual((self.mnt / ".payloadfs" / "version").read_text(), version)


if __name__ == "__main__":
    unittest.main()
