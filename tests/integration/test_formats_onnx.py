"""ONNX models through a real mount, compared with the onnx package that wrote them
(tests/fixtures/gen_onnx.py): every raw initializer read with numpy.memmap equals
onnx.numpy_helper.to_array, header fields equal the ModelProto's as onnx.load reads it,
externally stored initializers are listed with their external_data entries, and refs.json,
read by zarr through fsspec's reference filesystem, gives numpy_helper's arrays."""
import json
import unittest

import numpy as np

from mounting import FIXTURES, MountedFixtures

try:
    import onnx
    from onnx import numpy_helper
except ImportError as e:  # the suite needs it: scripts/install-deps.sh installs it
    raise RuntimeError(f"{e}: install python3-onnx") from e

try:
    import fsspec
    import zarr
except ImportError as e:
    raise RuntimeError(f"{e}: install python3-zarr python3-fsspec") from e

MODELS = ("mlp.onnx", "typed.onnx", "seqmap.onnx", "external.onnx")


def open_refs(refs_path):
    """The zarr group a refs.json describes, through fsspec's reference filesystem."""
    fs = fsspec.filesystem("reference", fo=str(refs_path), skip_instance_cache=True)
    return zarr.open(fs.get_mapper(""), mode="r")


def load(name, external=False):
    return onnx.load(str(FIXTURES / "onnx" / name), load_external_data=external)


def type_json(t):
    """What payloadfs shows for a TypeProto, from onnx's own parse of it."""
    kind = t.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(t, kind)
        shape = None
        if tt.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else
                     d.dim_param if d.HasField("dim_param") else None for d in tt.shape.dim]
        return {"type": kind[:-len("_type")], "elem_type": tt.elem_type,
                "onnx_dtype": onnx.TensorProto.DataType.Name(tt.elem_type), "shape": shape}
    if kind in ("sequence_type", "optional_type"):
        return {"type": kind[:-len("_type")],
                "element": type_json(getattr(t, kind).elem_type)}
    if kind == "map_type":
        return {"type": "map", "key_type": onnx.TensorProto.DataType.Name(t.map_type.key_type),
                "value": type_json(t.map_type.value_type)}
    return {}


class OnnxThroughMount(MountedFixtures):
    REQUIRED = tuple(f"onnx/{m}" for m in MODELS) + ("onnx/malformed/manifest.json",)

    def test_header_matches_model_proto(self):
        for name in MODELS:
            with self.subTest(model=name):
                model = load(name)
                h = self.header(f"onnx/{name}")
                self.assertEqual(h["format"], "onnx")
                self.assertNotIn("errors", h)
                got = h["header"]
                self.assertEqual(got["ir_version"], model.ir_version)
                for key in ("producer_name", "producer_version", "domain", "model_version"):
                    self.assertEqual(got[key], getattr(model, key), key)
                self.assertEqual(got["opset_import"],
                                 [{"domain": o.domain, "version": o.version}
                                  for o in model.opset_import])
                self.assertEqual(got["metadata_props"],
                                 {p.key: p.value for p in model.metadata_props})
                g = got["graph"]
                self.assertEqual(g["name"], model.graph.name)
                self.assertEqual(g["node_count"], len(model.graph.node))
                for key, values in (("inputs", model.graph.input),
                                    ("outputs", model.graph.output)):
                    want = [{"name": v.name, **type_json(v.type)} for v in values]
                    self.assertEqual(g[key], want, key)
                self.assertEqual(got["initializer_count"], len(model.graph.initializer))
                self.assertEqual(list(got["initializers"]),
                                 [i.name for i in model.graph.initializer])

    def test_raw_initializers_are_numpy_helper_arrays(self):
        checked = 0
        for name in ("mlp.onnx", "typed.onnx"):
            model = load(name)
            slices = {s["name"]: s for s in self.slices(f"onnx/{name}")}
            listed = self.header(f"onnx/{name}")["header"]["initializers"]
            for init in model.graph.initializer:
                with self.subTest(model=name, initializer=init.name):
                    want = numpy_helper.to_array(init)
                    entry = listed[init.name]
                    self.assertEqual(entry["shape"], list(init.dims))
                    self.assertEqual(entry["data_type"], init.data_type)
                    in_file = init.HasField("raw_data") or (
                        init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)
                        and (len(init.float_data) or len(init.double_data)))
                    if not in_file:  # varints in int32_data/int64_data: listed, no slice
                        self.assertNotIn(init.name, slices)
                        continue
                    s = slices[init.name]
                    if init.data_type == onnx.TensorProto.BFLOAT16:
                        continue  # to_array widens it to float32: test_storage_... checks it
                    self.assertEqual(np.dtype(s["dtype"]), want.dtype)  # a little-endian host
                    got = np.memmap(self.mnt / "onnx" / name / "raw" / init.name,
                                    dtype=s["dtype"], mode="r", shape=tuple(s["shape"]))
                    np.testing.assert_array_equal(got, want)
                    self.assertEqual(got.tobytes(), want.astype(s["dtype"]).tobytes())
                    checked += 1
        self.assertGreaterEqual(checked, 9)

    def test_storage_of_typed_initializers(self):
        listed = self.header("onnx/typed.onnx")["header"]["initializers"]
        self.assertEqual({k: v["storage"] for k, v in listed.items()},
                         {"floats": "float_data", "doubles": "double_data",
                          "longs": "int64_data", "ints": "int32_data", "halves": "int32_data",
                          "raw_ints": "raw_data", "bf16": "raw_data"})
        slices = {s["name"]: s for s in self.slices("onnx/typed.onnx")}
        self.assertEqual(sorted(slices), ["bf16", "doubles", "floats", "raw_ints"])
        # bfloat16: two opaque bytes per element, named by ONNX, bytes as onnx stored them.
        init = next(i for i in load("typed.onnx").graph.initializer if i.name == "bf16")
        self.assertEqual((slices["bf16"]["dtype"], slices["bf16"]["onnx_dtype"]),
                         ("|V2", "BFLOAT16"))
        self.assertEqual((self.mnt / "onnx/typed.onnx/raw/bf16").read_bytes(), init.raw_data)

    def test_external_initializers_are_listed_with_their_entries(self):
        model = load("external.onnx")
        data = (FIXTURES / "onnx" / "external.onnx.data").read_bytes()
        full = load("external.onnx", external=True)
        arrays = {i.name: numpy_helper.to_array(i) for i in full.graph.initializer}
        listed = self.header("onnx/external.onnx")["header"]["initializers"]
        self.assertEqual(self.slices("onnx/external.onnx"), [])
        self.assertEqual(len(listed), len(model.graph.initializer))
        for init in model.graph.initializer:
            with self.subTest(initializer=init.name):
                entries = {e.key: e.value for e in init.external_data}
                got = listed[init.name]
                self.assertEqual(got["storage"], "external")
                self.assertEqual(got["location"], entries["location"])
                self.assertEqual(got["offset"], int(entries.get("offset", 0)))
                self.assertEqual(got["length"], int(entries["length"]))
                # The listed range of the data file holds numpy_helper's array.
                chunk = data[got["offset"]:got["offset"] + got["length"]]
                want = arrays[init.name]
                self.assertEqual(chunk, want.astype(got["dtype"]).tobytes())

    def test_refs_json_read_by_zarr(self):
        model = load("mlp.onnx")
        group = open_refs(self.mnt / "onnx/mlp.onnx/refs.json")
        self.assertEqual(len(list(group.array_keys())), len(model.graph.initializer))
        for init in model.graph.initializer:
            with self.subTest(initializer=init.name):
                want = numpy_helper.to_array(init)
                # Array names are slice names with '/' and '%' percent-encoded (docs/layout.md).
                got = group[init.name.replace("%", "%25").replace("/", "%2F")][...]
                self.assertEqual(got.shape, want.shape)
                np.testing.assert_array_equal(got, want)

    def test_malformed_models_give_errors_and_the_mount_lives(self):
        manifest = json.loads((FIXTURES / "onnx/malformed/manifest.json").read_text())
        self.assertGreaterEqual(len(manifest), 5)
        for case in manifest:
            with self.subTest(file=case["file"]):
                rel = f"onnx/malformed/{case['file']}"
                h = self.header(rel)
                self.assertEqual(h["format"], "onnx")
                self.assertTrue(h.get("errors"), case["problem"])
                size = (FIXTURES / rel).stat().st_size
                for s in self.slices(rel):
                    self.assertLessEqual(s["offset"] + s["length"], size)
        # The cut model keeps no slice for the cut raw_data; the mount still serves the rest.
        self.assertEqual(self.slices("onnx/malformed/cut_in_raw_data.onnx"), [])
        self.assertEqual(self.header("onnx/mlp.onnx")["format"], "onnx")


if __name__ == "__main__":
    unittest.main()
