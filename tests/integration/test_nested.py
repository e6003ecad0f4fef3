"""nested/ through a real mount: payloads inside a container's stored members (GNU tar and
`zip -0` archives of real npy, png, wav and ELF files, a tar in a tar; see
tests/fixtures/gen_nested.py). References: the member extracted with tar/unzip and read by
numpy, Python's wave module and the bytes themselves; the member's own parse by payloadfs
(--inspect of the extracted file), which a nested payload must equal apart from its
place."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest
import wave

import numpy as np

from mounting import BIN, FIXTURES, SANITIZED, MountedFixtures, mounted, run, wait_until

NESTED = FIXTURES / "nested"
PROMPT = 30.0 if SANITIZED else 10.0
# Keys of header.json that say where a payload is rather than what its bytes are.
PLACE_KEYS = {"path", "size", "mtime", "mtime_ns", "container", "container_offset"}


def read_at(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def extract(container, member, into):
    """The member as its own file, extracted by tar or unzip (not by payloadfs)."""
    into = pathlib.Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if container.suffix == ".zip":
        run("unzip", "-q", "-o", str(container), member, "-d", str(into))
    else:
        run("tar", "-xf", str(container), "-C", str(into), member)
    return into / member


class NestedThroughMount(MountedFixtures):
    REQUIRED = ("nested/manifest.json",)
    SOURCE = NESTED

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manifest = json.loads((NESTED / "manifest.json").read_text())
        cls.tmp = pathlib.Path(cls.stack.enter_context(tempfile.TemporaryDirectory()))

    def inspect(self, path):
        return json.loads(run(BIN, "--inspect", "--compact", str(path)).stdout)

    def test_nested_header_is_the_extracted_members_own(self):
        for container in ("shards.tar", "stored.zip"):
            for name, member in self.manifest["containers"][container]["nested"].items():
                with self.subTest(container=container, member=name):
                    at = f"{container}/nested/{name}"
                    nested = self.header(at)
                    own = self.inspect(extract(NESTED / container, name, self.tmp / container))
                    self.assertEqual(nested["container"], container)
                    self.assertEqual(nested["container_offset"], member["offset"])
                    self.assertEqual(nested["path"], at)
                    self.assertEqual(nested["size"], own["size"])
                    self.assertEqual(nested["format"], member["format"])
                    self.assertEqual({k: v for k, v in nested.items() if k not in PLACE_KEYS},
                                     {k: v for k, v in own.items() if k not in PLACE_KEYS})
                    # slices.json's offsets are the container file's: its bytes there are the
                    # extracted member's at the member-relative offset.
                    extracted = (self.tmp / container / name).read_bytes()
                    slices = json.loads((self.mnt / at / "slices.json").read_text())
                    self.assertTrue(slices)
                    for s in slices:
                        inside = s["offset"] - member["offset"]
                        self.assertGreaterEqual(inside, 0)
                        self.assertEqual(read_at(NESTED / container, s["offset"], s["length"]),
                                         extracted[inside:inside + s["length"]])

    def test_nested_npy_is_numpys_array_and_memmaps(self):
        for container in ("shards.tar", "stored.zip"):
            with self.subTest(container=container):
                path = extract(NESTED / container, "train/000001.npy", self.tmp / container)
                expected = np.load(path)
                data = self.mnt / container / "nested/train/000001.npy/raw/data"
                self.assertEqual(data.read_bytes(), expected.tobytes())
                mapped = np.memmap(data, dtype=expected.dtype, mode="r", shape=expected.shape)
                np.testing.assert_array_equal(mapped, expected)
                header = self.header(f"{container}/nested/train/000001.npy")
                self.assertEqual(header["header"]["shape"], list(expected.shape))
                offset = int(os.getxattr(data, "user.payloadfs.offset"))
                self.assertEqual(read_at(NESTED / container, offset, expected.nbytes),
                                 expected.tobytes())
                self.assertEqual(os.getxattr(data, "user.payloadfs.source").decode(), container)

    def test_nested_wav_is_waves_frames(self):
        path = extract(NESTED / "shards.tar", "sound.wav", self.tmp / "wav")
        with wave.open(str(path)) as w:
            frames = w.readframes(w.getnframes())
            channels, rate = w.getnchannels(), w.getframerate()
        nested = self.mnt / "shards.tar/nested/sound.wav"
        self.assertEqual((nested / "raw/data").read_bytes(), frames)
        fmt = self.header("shards.tar/nested/sound.wav")["header"]
        self.assertEqual((fmt["channels"], fmt["sample_rate"]), (channels, rate))

    def test_listing_shows_only_members_holding_a_payload(self):
        self.assertIn("nested", os.listdir(self.mnt / "shards.tar"))
        self.assertEqual(sorted(os.listdir(self.mnt / "shards.tar/nested")),
                         ["code.o", "sound.wav", "train"])
        self.assertEqual(sorted(os.listdir(self.mnt / "shards.tar/nested/train")),
                         ["000001.npy", "000002.npy", "image.png"])
        self.assertFalse((self.mnt / "shards.tar/nested/readme.txt").exists())
        # Deflated members hold npy and wav, but compressed bytes are not nestable.
        self.assertEqual(self.manifest["containers"]["deflated.zip"]["nested"], {})
        self.assertNotIn("nested", os.listdir(self.mnt / "deflated.zip"))
        self.assertFalse((self.mnt / "deflated.zip/nested/zeros.npy").exists())
        elf = self.header("stored.zip/nested/code.o")
        self.assertEqual(elf["format"], "elf")
        self.assertEqual((self.mnt / "stored.zip/nested/code.o/magic").read_bytes(), b"\x7fELF")

    def test_a_tar_in_a_tar_two_levels_deep(self):
        inner_at = self.manifest["containers"]["outer.tar"]["nested"]["inner.tar"]["offset"]
        self.assertEqual(sorted(os.listdir(self.mnt / "outer.tar/nested/inner.tar/nested")),
                         ["a.npy", "b.wav"])
        inner = self.tmp / "inner"
        inner_tar = extract(NESTED / "outer.tar", "inner.tar", inner)
        member = self.manifest["inner"]["nested"]["a.npy"]
        header = self.header("outer.tar/nested/inner.tar/nested/a.npy")
        self.assertEqual(header["container"], "outer.tar/nested/inner.tar")
        self.assertEqual(header["container_offset"], inner_at + member["offset"])
        expected = np.load(extract(inner_tar, "a.npy", inner / "members"))
        data = self.mnt / "outer.tar/nested/inner.tar/nested/a.npy/raw/data"
        np.testing.assert_array_equal(
            np.memmap(data, dtype=expected.dtype, mode="r", shape=expected.shape), expected)
        offset = int(os.getxattr(data, "user.payloadfs.offset"))
        self.assertEqual(read_at(NESTED / "outer.tar", offset, expected.nbytes),
                         expected.tobytes())


class NestDepthAndChanges(unittest.TestCase):
    def setUp(self):
        self.src = pathlib.Path(tempfile.mkdtemp(prefix="payloadfs-nested-src-"))
        self.addCleanup(shutil.rmtree, self.src, ignore_errors=True)
        for name in ("shards.tar", "outer.tar"):
            shutil.copyfile(NESTED / name, self.src / name)

    def test_nest_depth_one_hides_the_second_level(self):
        with mounted(self.src, "-o", "nest_depth=1") as mnt:
            self.assertIn("nested", os.listdir(mnt / "outer.tar"))
            self.assertTrue((mnt / "outer.tar/nested/inner.tar/header.json").is_file())
            self.assertNotIn("nested", os.listdir(mnt / "outer.tar/nested/inner.tar"))
            self.assertFalse((mnt / "outer.tar/nested/inner.tar/nested").exists())

    def test_nest_depth_zero_shows_no_nested(self):
        with mounted(self.src, "-o", "nest_depth=0") as mnt:
            self.assertNotIn("nested", os.listdir(mnt / "shards.tar"))
            self.assertFalse((mnt / "shards.tar/nested").exists())

    def test_bad_nest_depth_is_refused(self):
        for option in ("nest_depth=9", "nest_depth=-1", "nest_depth=x"):
            with self.subTest(option=option):
                result = subprocess.run([BIN, "-o", option, str(self.src), str(self.src)],
                                        capture_output=True, text=True, timeout=30)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("nest_depth", result.stderr)

    def test_a_rewritten_container_is_never_served_stale(self):
        with mounted(self.src) as mnt:
            old = mnt / "shards.tar/nested/train/000001.npy/raw/data"
            self.assertEqual(len(old.read_bytes()), 48)
            self.assertEqual(sorted(os.listdir(mnt / "shards.tar/nested")),
                             ["code.o", "sound.wav", "train"])
            # The same file rewritten in place (same inode) with other members.
            with tempfile.TemporaryDirectory() as tmp:
                np.save(pathlib.Path(tmp) / "new.npy", np.arange(5, dtype="<i2"))
                run("tar", "-C", tmp, "-cf", str(self.src / "shards.tar.new"), "new.npy")
            with open(self.src / "shards.tar", "r+b") as f:
                f.truncate(0)
                f.write((self.src / "shards.tar.new").read_bytes())
            (self.src / "shards.tar.new").unlink()

            def shows_new():
                try:
                    return sorted(os.listdir(mnt / "shards.tar/nested")) == ["new.npy"]
                except OSError:
                    return False
            wait_until(shows_new, timeout=PROMPT, what="nested/ listing the new member")
            data = mnt / "shards.tar/nested/new.npy/raw/data"
            self.assertEqual(data.read_bytes(), np.arange(5, dtype="<i2").tobytes())
            header = json.loads((mnt / "shards.tar/nested/new.npy/header.json").read_text())
            self.assertEqual(header["header"]["shape"], [5])
            with self.assertRaises(OSError):
                old.read_bytes()


if __name__ == "__main__":
    unittest.main()
