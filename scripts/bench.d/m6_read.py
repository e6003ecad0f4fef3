#!/usr/bin/python3
"""M6 helper: read every header of a directory of real-format files, one of two ways.

  m6_read.py payloadfs MNTDIR   read and json-parse MNTDIR/<F>/header.json for every F
  m6_read.py python SRCDIR      parse the same headers with numpy / PIL / wave / struct

Prints one JSON line: {"mode", "files", "import_s", "loop_s", "passes": [loop_s, ...]}.
"""
import json
import os
import sys
import time

t_start = time.perf_counter()
mode, root = sys.argv[1], sys.argv[2]
passes = int(sys.argv[3]) if len(sys.argv) > 3 else 1
names = sorted(os.listdir(root))

if mode == "python":
    import struct
    import wave

    import numpy as np
    from PIL import Image

    def parse(path):
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0)
            if head.startswith(b"\x89PNG"):
                with Image.open(f) as im:
                    return {"format": "png", "size": im.size, "mode": im.mode}
            if head.startswith(b"RIFF"):
                with wave.open(f) as w:
                    p = w.getparams()
                    return {"format": "wav", "channels": p.nchannels, "rate": p.framerate,
                            "width": p.sampwidth, "frames": p.nframes}
            if head.startswith(b"\x93NUMPY"):
                version = np.lib.format.read_magic(f)
                shape, fortran, dtype = np.lib.format._read_array_header(f, version)
                return {"format": "npy", "shape": shape, "fortran": fortran, "descr": dtype.str}
            if head.startswith(b"\x7fELF"):
                ident = f.read(64)
                cls, data = ident[4], ident[5]
                end = "<" if data == 1 else ">"
                if cls == 2:
                    fields = struct.unpack_from(end + "HHIQQQIHHHHHH", ident, 16)
                else:
                    fields = struct.unpack_from(end + "HHIIIIIHHHHHH", ident, 16)
                keys = ("type", "machine", "version", "entry", "phoff", "shoff", "flags",
                        "ehsize", "phentsize", "phnum", "shentsize", "shnum", "shstrndx")
                return {"format": "elf", "class": cls, **dict(zip(keys, fields))}
            return {"format": "unknown"}
else:
    def parse(path):
        with open(path + "/header.json", "rb") as f:
            return json.loads(f.read())

t_loop = time.perf_counter()
loops = []
count = 0
for _ in range(passes):
    t0 = time.perf_counter()
    count = 0
    for name in names:
        if parse(os.path.join(root, name)).get("format"):
            count += 1
    loops.append(time.perf_counter() - t0)
print(json.dumps({"mode": mode, "files": count, "import_s": t_loop - t_start,
                  "loop_s": loops[0], "passes": loops}))
