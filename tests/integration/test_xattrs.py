"""Extended attributes of every kind of node (docs/layout.md, "Extended attributes"):
listxattr and getxattr against the files' own layout (numpy's reader, the safetensors and pcap
layouts walked here, not payloadfs's own slices.json), ENODATA for names a node lacks, ERANGE
for short buffers (through libc, as getfattr calls it) and EROFS for every change."""
import contextlib
import ctypes
import datetime
import errno
import json
import os
import pathlib
import shutil
import struct
import tempfile
import unittest

import numpy as np

from mounting import mounted

PREFIX = "user.payloadfs."
LIBC = ctypes.CDLL(None, use_errno=True)
for _name in ("getxattr", "lgetxattr"):
    getattr(LIBC, _name).argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                                     ctypes.c_size_t]
    getattr(LIBC, _name).restype = ctypes.c_ssize_t
for _name in ("listxattr", "llistxattr"):
    getattr(LIBC, _name).argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    getattr(LIBC, _name).restype = ctypes.c_ssize_t


def libc_getxattr(path, name, size, follow=True):
    """getxattr(2) with a buffer of `size` bytes: (return value, errno, bytes returned)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    call = LIBC.getxattr if follow else LIBC.lgetxattr
    ctypes.set_errno(0)
    n = call(os.fsencode(path), name.encode(), buf if size else None, size)
    return n, ctypes.get_errno() if n < 0 else 0, buf.raw[:max(n, 0)]


def libc_listxattr(path, size, follow=True):
    """listxattr(2) with a buffer of `size` bytes: (return value, errno)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    call = LIBC.listxattr if follow else LIBC.llistxattr
    ctypes.set_errno(0)
    n = call(os.fsencode(path), buf if size else None, size)
    return n, ctypes.get_errno() if n < 0 else 0


# --- fixtures, and what the formats say about them ----------------------------------------------

def npy_data_offset(path):
    """Where numpy's own reader finds the array data of an .npy file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.tell()


def write_safetensors(path, tensors):
    """A safetensors file as the specification lays it out: a u64 N, N bytes of JSON header
    (space-padded to 8), then the buffer. `tensors`: name -> (dtype, shape, bytes) in buffer
    order. Returns name -> (offset in the file, length, data_offsets)."""
    header, begin = {"__metadata__": {"made_by": "test_xattrs"}}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, begin + len(data)]}
        begin += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.write(b"".join(data for _, _, data in tensors.values()))
    spans = {}
    for name in tensors:
        begin, end = header[name]["data_offsets"]
        spans[name] = (8 + len(text) + begin, end - begin, [begin, end])
    return spans


def write_pcap(path, packets):
    """A little-endian microsecond pcap (libpcap's layout) of (sec, usec, bytes, origlen)."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for sec, usec, data, origlen in packets:
        out += struct.pack("<IIII", sec, usec, len(data), origlen) + data
    pathlib.Path(path).write_bytes(out)


def pcap_records(path):
    """(offset, caplen, origlen, ts) of each packet, walked from the file's record headers."""
    raw = pathlib.Path(path).read_bytes()
    records, at = [], 24
    while at + 16 <= len(raw):
        sec, usec, caplen, origlen = struct.unpack_from("<IIII", raw, at)
        when = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
        records.append((at + 16, caplen, origlen, f"{when:%Y-%m-%dT%H:%M:%S}.{usec:06d}Z"))
        at += 16 + caplen
    return records


class XattrTest(unittest.TestCase):
    """listxattr/getxattr of every kind of node against the files' own layout; ENODATA, ERANGE
    and EROFS exactly where docs/layout.md says."""

    OPTIONS = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-ns-xattr-"))
        cls.src = cls.tmp / "src"
        data = cls.src / "data"
        data.mkdir(parents=True)
        cls.array = np.arange(12, dtype="<f4").reshape(3, 4)
        np.save(data / "x.npy", cls.array)
        cls.tensors = write_safetensors(data / "m.safetensors", {
            "model/layers.0/weight": ("F32", [2, 3], np.arange(6, dtype="<f4").tobytes()),
            "bias": ("I16", [4], np.array([1, -2, 3, -4], dtype="<i2").tobytes())})
        write_pcap(data / "c.pcap", [(1700000000, 0, bytes(range(10)), 14),
                                     (1700000001, 250000, bytes(range(20, 45)), 29)])
        (data / "lnk").symlink_to("x.npy")
        cls.stack = contextlib.ExitStack()
        cls.mnt = cls.stack.enter_context(mounted(cls.src, *cls.OPTIONS))
        cls.expected = cls.expected_attributes()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stack.close()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def expected_attributes(cls):
        """Node (path, follow symlinks) -> {xattr name: value}, from the files themselves."""
        mnt, data = cls.mnt, cls.src / "data"

        def of(rel, fmt, span=None, **attributes):
            out = {"source": rel, "format": fmt}
            if span is not None:
                out["offset"], out["length"] = str(span[0]), str(span[1])
            for key, value in attributes.items():
                out[key] = value if isinstance(value, str) else json.dumps(value,
                                                                           separators=(",", ":"))
            return {PREFIX + key: value.encode() for key, value in out.items()}

        npy, st, cap = "data/x.npy", "data/m.safetensors", "data/c.pcap"
        offset = npy_data_offset(data / "x.npy")
        records = pcap_records(data / "c.pcap")
        nodes = {}
        # Source directories, the control directory and its files, links: none.
        for path in (mnt, mnt / "data", mnt / ".payloadfs", mnt / "data" / "x.npy" / "range"):
            nodes[path] = {}
        for name in ("version", "formats.json", "stats.json", "errors.json"):
            nodes[mnt / ".payloadfs" / name] = {}
        nodes[(mnt / "data" / "lnk", False)] = {}
        # Payload directories; generated files and raw/ directories carry the same two.
        for rel, fmt in ((npy, "npy"), (st, "safetensors"), (cap, "pcap")):
            nodes[mnt / rel] = of(rel, fmt)
            nodes[mnt / rel / "raw"] = of(rel, fmt)
            for generated in ("header.json", "slices.json"):
                nodes[mnt / rel / generated] = of(rel, fmt)
        nodes[mnt / npy / "refs.json"] = of(npy, "npy")
        nodes[mnt / st / "refs.json"] = of(st, "safetensors")
        nodes[mnt / st / "raw" / "model"] = of(st, "safetensors")
        nodes[mnt / st / "raw" / "model" / "layers.0"] = of(st, "safetensors")
        nodes[mnt / cap / "raw" / "packet"] = of(cap, "pcap")
        # magic: the signature's bytes (npy, pcap), the first 4 bytes (safetensors).
        nodes[mnt / npy / "magic"] = of(npy, "npy", (0, 6))
        nodes[mnt / st / "magic"] = of(st, "safetensors", (0, 4))
        nodes[mnt / cap / "magic"] = of(cap, "pcap", (0, 4))
        # Slices, with their attributes.
        nodes[mnt / npy / "raw" / "data"] = of(
            npy, "npy", (offset, cls.array.nbytes), dtype="<f4", shape=[3, 4], fortran_order=False)
        kinds = {"model/layers.0/weight": ("F32", "<f4", [2, 3]), "bias": ("I16", "<i2", [4])}
        for name, (dtype, numpy_dtype, shape) in kinds.items():
            start, length, data_offsets = cls.tensors[name]
            nodes[mnt / st / "raw" / name] = of(st, "safetensors", (start, length), dtype=dtype,
                                                 shape=shape, data_offsets=data_offsets,
                                                 numpy_dtype=numpy_dtype)
        for i, (start, caplen, origlen, ts) in enumerate(records):
            nodes[mnt / cap / "raw" / "packet" / str(i)] = of(
                cap, "pcap", (start, caplen), ts=ts, caplen=caplen, origlen=origlen)
        # range/ files, decimal and hex.
        nodes[mnt / npy / "range" / "3+20"] = of(npy, "npy", (3, 20))
        nodes[mnt / cap / "range" / "0x10-0x20"] = of(cap, "pcap", (16, 16))
        return nodes

    def nodes(self):
        for node, attributes in self.expected.items():
            path, follow = node if isinstance(node, tuple) else (node, True)
            yield path, follow, attributes

    def test_fixture_facts(self):
        """The facts the other tests use are the files' own: the bytes at each offset."""
        data = self.src / "data"
        raw = (data / "x.npy").read_bytes()
        offset = npy_data_offset(data / "x.npy")
        self.assertEqual(raw[offset:], self.array.tobytes())
        for name, (start, length, _) in self.tensors.items():
            self.assertEqual((self.mnt / "data" / "m.safetensors" / "raw" / name).read_bytes(),
                             (data / "m.safetensors").read_bytes()[start:start + length], name)
        capture = (data / "c.pcap").read_bytes()
        packets = self.mnt / "data" / "c.pcap" / "raw" / "packet"
        for i, (start, caplen, _, _) in enumerate(pcap_records(data / "c.pcap")):
            self.assertEqual((packets / str(i)).read_bytes(), capture[start:start + caplen])

    def test_every_node_lists_and_gets_exactly_its_attributes(self):
        every_name = {name for attributes in self.expected.values() for name in attributes}
        # Names of no node, and names `ls -l` probes (docs/reliability.md, "Limits").
        absent = every_name | {PREFIX + "nope", "user.other", "security.selinux",
                               "system.posix_acl_access"}
        for path, follow, attributes in self.nodes():
            with self.subTest(node=str(path)):
                # The kernel answers POSIX ACL names of a link itself (EOPNOTSUPP).
                probes = absent if follow else {n for n in absent if not n.startswith("system.")}
                listed = os.listxattr(path, follow_symlinks=follow)
                self.assertEqual(len(listed), len(set(listed)), listed)
                self.assertEqual(sorted(listed), sorted(attributes))
                for name, value in attributes.items():
                    self.assertEqual(os.getxattr(path, name, follow_symlinks=follow), value, name)
                for name in sorted(probes - set(attributes)):
                    with self.assertRaises(OSError, msg=name) as ctx:
                        os.getxattr(path, name, follow_symlinks=follow)
                    self.assertEqual(ctx.exception.errno, errno.ENODATA, f"{name}: {ctx.exception}")

    def test_small_buffers_are_erange_and_size_zero_gives_the_length(self):
        for path, follow, attributes in self.nodes():
            with self.subTest(node=str(path)):
                needed = sum(len(name) + 1 for name in attributes)
                self.assertEqual(libc_listxattr(path, 0, follow), (needed, 0))
                if needed:
                    self.assertEqual(libc_listxattr(path, 1, follow), (-1, errno.ERANGE))
                    self.assertEqual(libc_listxattr(path, needed - 1, follow), (-1, errno.ERANGE))
                else:
                    self.assertEqual(libc_listxattr(path, 1, follow), (0, 0))
                self.assertEqual(libc_listxattr(path, needed + 1, follow)[0], needed)
                for name, value in attributes.items():
                    self.assertEqual(libc_getxattr(path, name, 0, follow)[:2], (len(value), 0))
                    for small in sorted({1, len(value) - 1}):
                        if 1 <= small < len(value):
                            self.assertEqual(libc_getxattr(path, name, small, follow)[:2],
                                             (-1, errno.ERANGE), (name, small))
                    self.assertEqual(libc_getxattr(path, name, len(value), follow),
                                     (len(value), 0, value), name)

    def test_setting_or_removing_any_attribute_is_erofs(self):
        for path, follow, attributes in self.nodes():
            with self.subTest(node=str(path)):
                existing = next(iter(attributes), PREFIX + "source")
                attempts = {
                    "set new": lambda: os.setxattr(path, "user.new", b"1",
                                                   follow_symlinks=follow),
                    "replace": lambda: os.setxattr(path, existing, b"x", os.XATTR_REPLACE,
                                                   follow_symlinks=follow),
                    "remove": lambda: os.removexattr(path, existing, follow_symlinks=follow),
                    "remove missing": lambda: os.removexattr(path, PREFIX + "nope",
                                                             follow_symlinks=follow),
                }
                for what, attempt in attempts.items():
                    with self.assertRaises(OSError, msg=what) as ctx:
                        attempt()
                    self.assertEqual(ctx.exception.errno, errno.EROFS, f"{what}: {ctx.exception}")
                self.assertEqual(sorted(os.listxattr(path, follow_symlinks=follow)),
                                 sorted(attributes))


class XattrOnMetadataThreadsTest(XattrTest):
    """The same with -o pread=1 (the default on FUSE and network sources), where xattr calls
    on a payload's nodes are answered from the metadata threads."""

    OPTIONS = ("-o", "pread=1")


if __name__ == "__main__":
    unittest.main()
