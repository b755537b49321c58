"""cortex_runtime.v2: KServe v2 REST model endpoints with Triton's binary tensor extension.

In-process: V2Handler over OnnxBackend (a real ModelRegistry, real tiny ONNX models built with
onnx.helper and run by the _cortex_onnx extension from build/python, or fake sessions) and over
PythonHookBackend. Tests that need _cortex_onnx or onnx skip when it is absent.
"""

import json
import random
import struct
import time

import numpy as np
import pytest

from cortex_runtime import models, v2
from cortex_runtime.model_registry import ModelError, ModelRegistry
from cortex_runtime.v2 import OnnxBackend, PythonHookBackend, V2Error, V2Handler

HEADER = "Inference-Header-Content-Length"
SINGLE = {"predictor": {"type": "onnx", "model_path": "s3://bucket/model"}}


def paths_spec(*names):
    return {"predictor": {"type": "onnx", "models": {"paths": [{"name": n} for n in names]}}}


# --- models, registries, requests --------------------------------------------------------------

@pytest.fixture(scope="module")
def ort():
    try:
        import _cortex_onnx
    except ImportError as e:
        pytest.skip(f"_cortex_onnx is not built ({e})")
    return _cortex_onnx


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    d = tmp_path_factory.mktemp("v2onnx")

    def build(key, nodes, inputs, outputs):
        graph = helper.make_graph(nodes, key, inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        path = d / key / "model.onnx"
        path.parent.mkdir()
        onnx.save(model, str(path))
        return str(path.parent)

    vi = helper.make_tensor_value_info
    out = {"add": build("add", [helper.make_node("Add", ["a", "b"], ["sum"])],
                        [vi("a", TensorProto.FLOAT, ["batch", 4]),
                         vi("b", TensorProto.FLOAT, ["batch", 4])],
                        [vi("sum", TensorProto.FLOAT, ["batch", 4])]),
           "two": build("two", [helper.make_node("ArgMax", ["x"], ["index"], axis=1, keepdims=0),
                                helper.make_node("Neg", ["x"], ["negated"])],
                        [vi("x", TensorProto.FLOAT, [2, 3])],
                        [vi("index", TensorProto.INT64, [2]),
                         vi("negated", TensorProto.FLOAT, [2, 3])])}
    for key, proto in [("int64", TensorProto.INT64), ("uint8", TensorProto.UINT8),
                       ("uint64", TensorProto.UINT64), ("string", TensorProto.STRING),
                       ("bool", TensorProto.BOOL), ("float16", TensorProto.FLOAT16)]:
        out[key] = build(key, [helper.make_node("Identity", ["x"], ["y"])],
                         [vi("x", proto, [None, 2])], [vi("y", proto, [None, 2])])
    return out


class FakeSession:
    """A session with given ports; run() records the feeds and returns fn(feeds)."""

    def __init__(self, inputs, outputs, fn=None):
        self._inputs, self._outputs = inputs, outputs
        self.fn = fn or (lambda feeds: [np.zeros(1, np.float32) for _ in outputs])
        self.calls = []

    def inputs(self):
        return [dict(p) for p in self._inputs]

    def outputs(self):
        return [dict(p) for p in self._outputs]

    def run(self, names, feeds):
        assert names is None
        self.calls.append(feeds)
        return self.fn(feeds)


def port(name, shape, type_="tensor(float)"):
    return {"name": name, "shape": shape, "type": type_}


@pytest.fixture
def make_handler(tmp_path):
    """make_handler({name: {version: model dir | FakeSession | Exception}}, spec, run=None)."""
    registries = []

    def make(table, spec=SINGLE, run=None, api="api"):
        fakes, manifest = {}, {}
        for name, versions in table.items():
            manifest[name] = {"versions": {}}
            for version, what in versions.items():
                path = what
                if not isinstance(what, str):
                    d = tmp_path / f"fake-{name}-{version}-{len(registries)}"
                    d.mkdir()
                    (d / "model.onnx").write_bytes(b"fake")
                    fakes[str(d / "model.onnx")] = what
                    path = str(d)
                manifest[name]["versions"][str(version)] = {"path": path, "timestamp": 1}
        mpath = tmp_path / f"manifest{len(registries)}.json"
        mpath.write_text(json.dumps({"generation": 1, "models": manifest}))

        def factory(file, intra_op_threads=1):
            if file in fakes:
                if isinstance(fakes[file], Exception):
                    raise fakes[file]
                return fakes[file]
            import _cortex_onnx
            return _cortex_onnx.Session(file, intra_op_threads=intra_op_threads)

        registry = ModelRegistry(str(mpath), models.onnx_loader(1, factory), watch=False,
                                 log=lambda m: None)
        registries.append(registry)
        return V2Handler(api, OnnxBackend(registry, spec, run))

    yield make
    for r in registries:
        r.close()


class Reply:
    def __init__(self, answer):
        self.status, self.content_type, self.headers, self.body = answer
        assert isinstance(self.body, bytes) and isinstance(self.headers, list)

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self):
        n = self.header(HEADER)
        return json.loads(self.body[:int(n)] if n is not None else self.body)

    def binary(self):
        """{output name: bytes} of the binary outputs."""
        n = int(self.header(HEADER))
        out, pos = {}, n
        for o in self.json()["outputs"]:
            size = (o.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                out[o["name"]] = self.body[pos:pos + size]
                pos += size
        assert pos == len(self.body)
        return out

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:300]!r})"


def call(handler, method, path, body=b"", headers=()):
    return Reply(handler.handle(method, path, "", [list(h) for h in headers], body))


def infer(handler, doc, parts=None, path="/v2/models/api/infer", header=True):
    """POST a request; with parts (a list of bytes) they follow the JSON as binary data."""
    text = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    if parts is None:
        return call(handler, "POST", path, text)
    headers = [["inference-header-content-length", str(len(text))]] if header else []
    return call(handler, "POST", path, text + b"".join(parts), headers)


def tensor(name, datatype, shape, data=None, size=None):
    t = {"name": name, "datatype": datatype, "shape": shape}
    if data is not None:
        t["data"] = data
    if size is not None:
        t["parameters"] = {"binary_data_size": size}
    return t


def bytes_blob(items):
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def expect_error(reply, status, *words):
    assert reply.status == status, reply
    assert reply.content_type == "application/json"
    message = reply.json()["error"]
    for w in words:
        assert w in message, (w, message)
    return message


# --- ONNX models through the real extension ----------------------------------------------------

def test_metadata_and_ready(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["add"], "2": onnx_files["add"]}})
    r = call(h, "GET", "/v2/models/api")
    assert r.status == 200 and r.content_type == "application/json"
    assert r.json() == {
        "name": "api", "versions": ["1", "2"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "a", "datatype": "FP32", "shape": [-1, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "sum", "datatype": "FP32", "shape": [-1, 4]}]}
    assert call(h, "GET", "/v2/models/api/versions/1").json()["name"] == "api"
    assert call(h, "GET", "/v2/models/api/").status == 200  # a trailing slash
    for path in ("/v2/models/api/ready", "/v2/models/api/versions/2/ready"):
        r = call(h, "GET", path)
        assert (r.status, r.json()) == (200, {"name": "api", "ready": True})
    expect_error(call(h, "GET", "/v2/models/api/versions/3/ready"), 404, "version '3'")
    expect_error(call(h, "GET", "/v2/models/api/versions/3"), 404, "version '3'")


def test_infer_fp32_json(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["add"], "2": onnx_files["add"]}})
    a = [[1, 2, 3, 4], [5, 6, 7, 8]]
    doc = {"id": "req-7", "inputs": [tensor("a", "FP32", [2, 4], a),  # nested
                                     tensor("b", "FP32", [2, 4], [0.5] * 8)]}  # flat
    r = infer(h, doc)
    assert r.status == 200 and r.content_type == "application/json" and r.headers == []
    assert r.json() == {"model_name": "api", "model_version": "2", "id": "req-7",
                        "outputs": [{"name": "sum", "datatype": "FP32", "shape": [2, 4],
                                     "data": [x + 0.5 for x in range(1, 9)]}]}
    r = infer(h, doc, path="/v2/models/api/versions/1/infer")
    assert r.json()["model_version"] == "1"
    # An empty batch.
    r = infer(h, {"inputs": [tensor("a", "FP32", [0, 4], []), tensor("b", "FP32", [0, 4], [])]})
    assert r.json()["outputs"][0]["shape"] == [0, 4] and r.json()["outputs"][0]["data"] == []


def test_infer_fp32_binary_in_and_out(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["add"]}})
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4), dtype=np.float32)
    b = rng.standard_normal((3, 4), dtype=np.float32)
    for pad in range(4):  # the JSON's length moves the binary parts off alignment
        doc = {"id": " " * pad, "inputs": [tensor("a", "FP32", [3, 4], size=48),
                                           tensor("b", "FP32", [3, 4], size=48)],
               "outputs": [{"name": "sum", "parameters": {"binary_data": True}}]}
        r = infer(h, doc, [a.tobytes(), b.tobytes()])
        assert r.status == 200, r
        assert r.content_type == "application/octet-stream"
        meta = r.json()
        assert meta["outputs"] == [{"name": "sum", "datatype": "FP32", "shape": [3, 4],
                                    "parameters": {"binary_data_size": 48}}]
        np.testing.assert_array_equal(np.frombuffer(r.binary()["sum"], "<f4").reshape(3, 4),
                                      a + b)
    # Mixed: one input in JSON, one binary; the output in JSON.
    r = infer(h, {"inputs": [tensor("a", "FP32", [3, 4], a.tolist()),
                             tensor("b", "FP32", [3, 4], size=48)]}, [b.tobytes()])
    assert r.content_type == "application/json" and r.header(HEADER) is None
    np.testing.assert_allclose(np.array(r.json()["outputs"][0]["data"]).reshape(3, 4), a + b)


def test_outputs_selection_and_binary_data_output(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["two"]}})
    x = [[1, 5, 2], [9, 0, -1]]
    base = {"inputs": [tensor("x", "FP32", [2, 3], x)]}
    r = infer(h, base)
    assert [o["name"] for o in r.json()["outputs"]] == ["index", "negated"]
    assert r.json()["outputs"][0] == {"name": "index", "datatype": "INT64", "shape": [2],
                                      "data": [1, 0]}
    r = infer(h, {**base, "outputs": [{"name": "negated"}]})
    assert [o["name"] for o in r.json()["outputs"]] == ["negated"]
    # All outputs binary, but one overridden back to JSON.
    r = infer(h, {**base, "parameters": {"binary_data_output": True},
                  "outputs": [{"name": "negated"},
                              {"name": "index", "parameters": {"binary_data": False}}]})
    assert r.content_type == "application/octet-stream"
    outs = r.json()["outputs"]
    assert outs[0]["parameters"] == {"binary_data_size": 24} and "data" not in outs[0]
    assert outs[1]["data"] == [1, 0]
    np.testing.assert_array_equal(np.frombuffer(r.binary()["negated"], "<f4"),
                                  -np.array(x, np.float32).ravel())
    r = infer(h, {**base, "parameters": {"binary_data_output": True}})
    assert set(r.binary()) == {"index", "negated"}
    assert np.frombuffer(r.binary()["index"], "<i8").tolist() == [1, 0]
    expect_error(infer(h, {**base, "outputs": [{"name": "nope"}]}), 400, "unknown output 'nope'")
    expect_error(infer(h, {**base, "outputs": [{"name": "index"}, {"name": "index"}]}), 400,
                 "twice")
    # The model's fixed shape [2, 3] is checked before running.
    expect_error(infer(h, {"inputs": [tensor("x", "FP32", [3, 2], x)]}), 400, "[3,2]", "[2,3]")
    expect_error(infer(h, {"inputs": [tensor("x", "FP32", [6], x)]}), 400, "does not match")


def test_int64_and_uint64(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["int64"]}})
    data = [[-2 ** 63, 2 ** 63 - 1], [0, 7]]
    r = infer(h, {"inputs": [tensor("x", "INT64", [2, 2], data)]})
    assert r.json()["outputs"][0]["data"] == sum(data, [])
    arr = np.array(data, np.int64)
    r = infer(h, {"inputs": [tensor("x", "INT64", [2, 2], size=32)],
                  "parameters": {"binary_data_output": True}}, [arr.tobytes()])
    assert np.frombuffer(r.binary()["y"], "<i8").tolist() == sum(data, [])
    expect_error(infer(h, {"inputs": [tensor("x", "INT64", [1, 2], [2 ** 63, 0])]}), 400,
                 "out of the range of INT64")
    expect_error(infer(h, {"inputs": [tensor("x", "INT64", [1, 2], [1.5, 0])]}), 400, "integers")
    expect_error(infer(h, {"inputs": [tensor("x", "INT64", [1, 2], [True, False])]}), 400,
                 "integers")
    expect_error(infer(h, {"inputs": [tensor("x", "INT32", [1, 2], [1, 2])]}), 400,
                 "INT32", "expects INT64", "not converted")

    h = make_handler({"_cortex_default": {"1": onnx_files["uint64"]}})
    big = [[2 ** 64 - 1, 1]]  # numpy alone would make this float64
    r = infer(h, {"inputs": [tensor("x", "UINT64", [1, 2], big)]})
    assert r.json()["outputs"][0]["data"] == big[0]
    expect_error(infer(h, {"inputs": [tensor("x", "UINT64", [1, 2], [-1, 1])]}), 400, "range")


def test_uint8_json_and_binary(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["uint8"]}})
    r = infer(h, {"inputs": [tensor("x", "UINT8", [2, 2], [[0, 255], [7, 8]])]})
    assert r.json()["outputs"][0] == {"name": "y", "datatype": "UINT8", "shape": [2, 2],
                                      "data": [0, 255, 7, 8]}
    r = infer(h, {"inputs": [tensor("x", "UINT8", [3, 2], size=6)],
                  "outputs": [{"name": "y", "parameters": {"binary_data": True}}]},
              [bytes([1, 2, 3, 4, 5, 250])])
    assert r.binary()["y"] == bytes([1, 2, 3, 4, 5, 250])
    assert r.json()["outputs"][0]["shape"] == [3, 2]
    expect_error(infer(h, {"inputs": [tensor("x", "UINT8", [1, 2], [256, 0])]}), 400, "range")
    expect_error(infer(h, {"inputs": [tensor("x", "UINT8", [1, 2], size=3)]}, [b"abc"]), 400,
                 "binary_data_size is 3", "needs 2 bytes")


def test_bytes_json_and_binary(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["string"]}})
    words = ["héllo", "", "wörld ✓", "x" * 1000]
    r = infer(h, {"inputs": [tensor("x", "BYTES", [2, 2], [words[:2], words[2:]])]})
    assert r.json()["outputs"][0] == {"name": "y", "datatype": "BYTES", "shape": [2, 2],
                                      "data": words}
    blob = bytes_blob([w.encode() for w in words])
    r = infer(h, {"inputs": [tensor("x", "BYTES", [2, 2], size=len(blob))],
                  "parameters": {"binary_data_output": True}}, [blob])
    assert r.status == 200, r
    assert r.binary()["y"] == blob
    assert r.json()["outputs"][0]["parameters"] == {"binary_data_size": len(blob)}
    expect_error(infer(h, {"inputs": [tensor("x", "BYTES", [1, 2], ["a", 1])]}), 400, "strings")
    expect_error(infer(h, {"inputs": [tensor("x", "BYTES", [1, 2], ["a"])]}), 400,
                 "1 elements", "holds 2")


def test_bool_and_fp16(ort, onnx_files, make_handler):
    h = make_handler({"_cortex_default": {"1": onnx_files["bool"]}})
    r = infer(h, {"inputs": [tensor("x", "BOOL", [1, 2], [True, False])]})
    assert r.json()["outputs"][0]["data"] == [True, False]
    r = infer(h, {"inputs": [tensor("x", "BOOL", [1, 2], size=2)],
                  "parameters": {"binary_data_output": True}}, [b"\x00\x01"])
    assert r.binary()["y"] == b"\x00\x01"
    expect_error(infer(h, {"inputs": [tensor("x", "BOOL", [1, 2], size=2)]}, [b"\x00\x02"]),
                 400, "0 or 1")
    expect_error(infer(h, {"inputs": [tensor("x", "BOOL", [1, 2], [1, 0])]}), 400, "true/false")

    h = make_handler({"_cortex_default": {"1": onnx_files["float16"]}})
    x = np.array([[1.5, -2.25]], np.float16)
    r = infer(h, {"inputs": [tensor("x", "FP16", [1, 2], size=4)],
                  "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}, [x.tobytes()])
    assert r.json()["outputs"][0]["datatype"] == "FP16"
    np.testing.assert_array_equal(np.frombuffer(r.binary()["y"], "<f2"), x.ravel())
    expect_error(infer(h, {"inputs": [tensor("x", "FP16", [1, 2], [1.5, 2])],
                           "parameters": {"binary_data_output": True}}), 400,
                 "FP16 has no JSON form")
    expect_error(infer(h, {"inputs": [tensor("x", "FP16", [1, 2], size=4)]}, [x.tobytes()]), 400,
                 "output 'y' is FP16", "binary_data")


def test_model_that_cannot_load(make_handler):
    h = make_handler({"_cortex_default": {"1": RuntimeError("corrupt protobuf")}})
    r = call(h, "GET", "/v2/models/api/ready")
    assert (r.status, r.json()) == (503, {"name": "api", "ready": False})
    expect_error(call(h, "GET", "/v2/models/api"), 503, "corrupt protobuf")
    expect_error(infer(h, {"inputs": []}), 503, "failed (re-)loading model")


# --- fake sessions -------------------------------------------------------------------------------

ALL_TYPES = ["tensor(float)", "tensor(double)", "tensor(float16)", "tensor(int8)",
             "tensor(int16)", "tensor(int32)", "tensor(int64)", "tensor(uint8)",
             "tensor(uint16)", "tensor(uint32)", "tensor(uint64)", "tensor(bool)",
             "tensor(string)"]


def test_metadata_datatypes(make_handler):
    inputs = [port(f"i{n}", [None, 3], t) for n, t in enumerate(ALL_TYPES)]
    outputs = [port("map", [], "seq(map(int64,tensor(float)))"), port("y", [5])]
    h = make_handler({"_cortex_default": {"4": FakeSession(inputs, outputs)}})
    meta = call(h, "GET", "/v2/models/api").json()
    assert [i["datatype"] for i in meta["inputs"]] == [
        "FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
        "UINT64", "BOOL", "BYTES"]
    assert all(i["shape"] == [-1, 3] for i in meta["inputs"])
    assert meta["outputs"] == [{"name": "map", "datatype": "seq(map(int64,tensor(float)))",
                                "shape": []}, {"name": "y", "datatype": "FP32", "shape": [5]}]
    assert v2.ONNX_DATATYPES == {t: d["datatype"] for t, d in zip(ALL_TYPES, meta["inputs"])}


def test_feeds_are_views_of_the_body(make_handler):
    session = FakeSession([port("x", [None, 4]), port("n", [None], "tensor(int64)")],
                          [port("y", [None, 4])], lambda feeds: [feeds["x"] * 2])
    h = make_handler({"_cortex_default": {"1": session}})
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    for pad, aligned in ((0, True), (1, False)):
        doc = {"id": "ab"[:1 + pad], "inputs": [tensor("x", "FP32", [2, 4], size=32),
                                                tensor("n", "INT64", [2], [1, 2])],
               "outputs": [{"name": "y"}]}
        text = json.dumps(doc).encode()
        if (len(text) % 4 == 0) != aligned:
            doc["id"] += "   "
            text = json.dumps(doc).encode()
        r = infer(h, doc, [x.tobytes()])
        assert r.json()["outputs"][0]["data"] == (x * 2).ravel().tolist()
        feed = session.calls[-1]["x"]
        assert feed.dtype == np.float32 and feed.shape == (2, 4) and feed.flags.c_contiguous
        assert feed.flags.aligned
        # Aligned: a read-only view of the request body; misaligned: a copy.
        assert feed.flags.writeable is not aligned
        assert session.calls[-1]["n"].dtype == np.int64


def test_nothing_is_allocated_for_huge_shapes(make_handler):
    session = FakeSession([port("x", [None, None]), port("s", [None], "tensor(string)")],
                          [port("y", [None])])
    h = make_handler({"_cortex_default": {"1": session}})
    s = tensor("s", "BYTES", [1], ["a"])
    start = time.monotonic()
    for shape in ([2 ** 40, 2 ** 40], [2 ** 31, 2 ** 31]):
        expect_error(infer(h, {"inputs": [tensor("x", "FP32", shape, size=8), s]}, [b"x" * 8]),
                     400)
        expect_error(infer(h, {"inputs": [tensor("x", "FP32", shape, [1, 2]), s]}), 400)
    expect_error(infer(h, {"inputs": [tensor("x", "FP32", [1, 1], [1]),
                                      tensor("s", "BYTES", [2 ** 40], size=8)]},
                       [b"\x00" * 8]), 400, "cannot hold")
    # A zero-sized tensor with huge other dimensions is fine.
    r = infer(h, {"inputs": [tensor("x", "FP32", [0, 2 ** 50], size=0), s]}, [b""])
    assert r.status == 200, r
    assert session.calls[-1]["x"].shape == (0, 2 ** 50)
    assert time.monotonic() - start < 5
    assert len(session.calls) == 1


def _errors_session():
    return FakeSession([port("x", [None, 2]), port("s", [None], "tensor(string)"),
                        port("seq", [], "seq(tensor(float))")],
                       [port("y", [None, 2])])


GOOD_X = tensor("x", "FP32", [1, 2], [1, 2])
GOOD_S = tensor("s", "BYTES", [1], ["a"])


def _req(*inputs, **extra):
    return {"inputs": list(inputs), **extra}


MALFORMED = [
    # (name, body, binary parts or None, header value or None, words in the message)
    ("empty body", b"", None, None, ["not valid JSON"]),
    ("bad json", b"{\"inputs\": [", None, None, ["not valid JSON"]),
    ("not utf-8", b"\xff\xfe{}", None, None, ["not valid JSON"]),
    ("deep json", b"[" * 100000 + b"]" * 100000, None, None, ["not valid JSON"]),
    ("json array", b"[]", None, None, ["JSON object"]),
    ("header not a number", _req(GOOD_X, GOOD_S), [], "abc", [HEADER]),
    ("header negative", _req(GOOD_X, GOOD_S), [], "-1", [HEADER]),
    ("header float", _req(GOOD_X, GOOD_S), [], "1.5", [HEADER]),
    ("header empty", _req(GOOD_X, GOOD_S), [], "", [HEADER]),
    ("header unicode digits", _req(GOOD_X, GOOD_S), [], "١٢", [HEADER]),
    ("header huge", _req(GOOD_X, GOOD_S), [], "9" * 40, [HEADER]),
    ("header beyond body", _req(GOOD_X, GOOD_S), [], "100000", ["body has"]),
    ("header too short", _req(GOOD_X, GOOD_S), [], "5", ["not valid JSON"]),
    ("no inputs", {}, None, None, ["'inputs' must be a list"]),
    ("inputs not a list", {"inputs": {"x": 1}}, None, None, ["'inputs' must be a list"]),
    ("input not an object", _req(1), None, None, ["inputs[0]"]),
    ("input without name", _req({"datatype": "FP32", "shape": [1], "data": [1]}), None, None,
     ["inputs[0]"]),
    ("unknown input", _req(GOOD_X, GOOD_S, tensor("z", "FP32", [1], [1])), None, None,
     ["unknown input 'z'", "x, s, seq"]),
    ("duplicate input", _req(GOOD_X, GOOD_X, GOOD_S), None, None, ["twice"]),
    ("missing input", _req(GOOD_X), None, None, ["missing inputs: s"]),
    ("missing datatype", _req({"name": "x", "shape": [1, 2], "data": [1, 2]}, GOOD_S), None,
     None, ["datatype"]),
    ("unknown datatype", _req(tensor("x", "FLOAT", [1, 2], [1, 2]), GOOD_S), None, None,
     ["'FLOAT'"]),
    ("other datatype", _req(tensor("x", "FP64", [1, 2], [1, 2]), GOOD_S), None, None,
     ["FP64", "expects FP32"]),
    ("unsupported model input", _req(GOOD_X, GOOD_S, tensor("seq", "FP32", [1], [1])), None,
     None, ["seq(tensor(float))"]),
    ("missing shape", _req({"name": "x", "datatype": "FP32", "data": [1, 2]}, GOOD_S), None,
     None, ["shape must be a list"]),
    ("shape not a list", _req(tensor("x", "FP32", 2, [1, 2]), GOOD_S), None, None,
     ["shape must be a list"]),
    ("float dimension", _req(tensor("x", "FP32", [1, 2.0], [1, 2]), GOOD_S), None, None,
     ["integers"]),
    ("bool dimension", _req(tensor("x", "FP32", [True, 2], [1, 2]), GOOD_S), None, None,
     ["integers"]),
    ("negative dimension", _req(tensor("x", "FP32", [-1, 2], [1, 2]), GOOD_S), None, None,
     ["negative"]),
    ("too many dimensions", _req(tensor("x", "FP32", [1] * 33, [1]), GOOD_S), None, None,
     ["at most 32"]),
    ("rank mismatch", _req(tensor("x", "FP32", [2], [1, 2]), GOOD_S), None, None,
     ["does not match", "[-1,2]"]),
    ("count mismatch", _req(tensor("x", "FP32", [2, 2], [1, 2]), GOOD_S), None, None,
     ["2 elements", "holds 4"]),
    ("ragged data", _req(tensor("x", "FP32", [2, 2], [[1, 2], [3]]), GOOD_S), None, None,
     ["regular array"]),
    ("strings as numbers", _req(tensor("x", "FP32", [1, 2], ["1", "2"]), GOOD_S), None, None,
     ["numbers"]),
    ("null data", _req(tensor("x", "FP32", [1, 2], [None, 1]), GOOD_S), None, None,
     ["numbers"]),
    ("object data", _req({**GOOD_X, "data": {"a": 1}}, GOOD_S), None, None, ["elements"]),
    ("bools as floats", _req(tensor("x", "FP32", [1, 2], [True, False]), GOOD_S), None, None,
     ["numbers"]),
    ("no data", _req(tensor("x", "FP32", [1, 2]), GOOD_S), None, None,
     ["neither data nor"]),
    ("parameters not an object", _req({**GOOD_X, "parameters": [1]}, GOOD_S), None, None,
     ["parameters must be an object"]),
    ("binary without header", _req(tensor("x", "FP32", [1, 2], size=8), GOOD_S), [], "omit",
     ["no " + HEADER]),
    ("binary data without header", _req(tensor("x", "FP32", [1, 2], size=8), GOOD_S),
     [b"\x00" * 8], "omit", ["not valid JSON"]),
    ("data and binary", _req({**GOOD_X, "parameters": {"binary_data_size": 8}}, GOOD_S),
     [b"\x00" * 8], None, ["both"]),
    ("binary size not int", _req(tensor("x", "FP32", [1, 2], size="8"), GOOD_S), [b"\x00" * 8],
     None, ["byte count"]),
    ("binary size negative", _req(tensor("x", "FP32", [1, 2], size=-8), GOOD_S), [], None,
     ["byte count"]),
    ("binary beyond body", _req(tensor("x", "FP32", [1, 2], size=8), GOOD_S), [b"\x00" * 7],
     None, ["past the end"]),
    ("binary size mismatch", _req(tensor("x", "FP32", [1, 2], size=4), GOOD_S), [b"\x00" * 4],
     None, ["needs 8 bytes"]),
    ("trailing bytes", _req(GOOD_X, GOOD_S), [b"junk"], None, ["4 bytes", "no input"]),
    ("bytes length truncated", _req(GOOD_X, tensor("s", "BYTES", [2], size=6)),
     [bytes_blob([b"a"]) + b"\x01"], None, ["cannot hold"]),
    ("bytes prefix truncated", _req(GOOD_X, tensor("s", "BYTES", [2], size=10)),
     [bytes_blob([b"abcd"]) + b"\x01\x00"], None, ["inside the length of element 1"]),
    ("bytes element truncated", _req(GOOD_X, tensor("s", "BYTES", [1], size=6)),
     [struct.pack("<I", 5) + b"ab"], None, ["element 0", "past the end"]),
    ("bytes trailing", _req(GOOD_X, tensor("s", "BYTES", [1], size=7)),
     [bytes_blob([b"a"]) + b"zz"], None, ["2 bytes follow"]),
    ("bytes huge length", _req(GOOD_X, tensor("s", "BYTES", [1], size=8)),
     [struct.pack("<I", 2 ** 32 - 1) + b"abcd"], None, ["past the end"]),
    ("lone surrogate", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], '
     b'"data": [1, 2]}, {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["\\ud800"]}]}',
     None, None, ["not valid Unicode"]),
    ("id not a string", _req(GOOD_X, GOOD_S, id=7), None, None, ["id must be a string"]),
    ("request parameters not an object", _req(GOOD_X, GOOD_S, parameters=[]), None, None,
     ["parameters must be an object"]),
    ("binary_data_output not a bool", _req(GOOD_X, GOOD_S, parameters={"binary_data_output": 1}),
     None, None, ["binary_data_output must be true or false"]),
    ("outputs not a list", _req(GOOD_X, GOOD_S, outputs={"name": "y"}), None, None,
     ["'outputs' must be a list"]),
    ("output not an object", _req(GOOD_X, GOOD_S, outputs=["y"]), None, None, ["outputs[0]"]),
    ("binary_data not a bool", _req(GOOD_X, GOOD_S, outputs=[
        {"name": "y", "parameters": {"binary_data": "yes"}}]), None, None, ["binary_data must"]),
    ("classification", _req(GOOD_X, GOOD_S, outputs=[
        {"name": "y", "parameters": {"classification": 2}}]), None, None, ["classification"]),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_requests_are_400(make_handler, case):
    _, doc, parts, header, words = case
    session = _errors_session()
    h = make_handler({"_cortex_default": {"1": session}})
    text = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = []
    if parts is not None and header != "omit":
        headers = [[HEADER.upper() if header is None else HEADER, str(len(text))
                    if header is None else header]]
    r = call(h, "POST", "/v2/models/api/infer", text + b"".join(parts or []), headers)
    expect_error(r, 400, *words)
    assert session.calls == []


def test_header_given_without_binary_and_any_case(make_handler):
    session = FakeSession([port("x", [None, 2])], [port("y", [None, 2])],
                          lambda feeds: [feeds["x"] + 1])
    h = make_handler({"_cortex_default": {"1": session}})
    text = json.dumps({"inputs": [GOOD_X]}).encode()
    for name in (HEADER, HEADER.lower(), "INFERENCE-HEADER-CONTENT-LENGTH"):
        r = call(h, "POST", "/v2/models/api/infer", text, [[name, f" {len(text)} "]])
        assert r.json()["outputs"][0]["data"] == [2, 3]


def test_run_hook_and_its_errors(make_handler):
    session = FakeSession([port("x", [None, 2])], [port("y", [None, 2]), port("z", [None])])
    seen = []

    def run(model, name, version, feeds):
        seen.append((model["session"], name, version, sorted(feeds)))
        if feeds["x"][0, 0] == 13:
            raise RuntimeError("unlucky")
        if feeds["x"][0, 0] == 14:
            raise V2Error(429, "too many")
        if feeds["x"][0, 0] == 15:
            return [feeds["x"]]
        return [feeds["x"] * 10, np.array([1.0])]

    h = make_handler({"_cortex_default": {"3": session}}, run=run)
    r = infer(h, {"inputs": [GOOD_X]})
    assert [o["data"] for o in r.json()["outputs"]] == [[10, 20], [1.0]]
    assert seen == [(session, "_cortex_default", "3", ["x"])]
    assert session.calls == []  # the hook ran instead of session.run
    expect_error(infer(h, {"inputs": [tensor("x", "FP32", [1, 2], [13, 0])]}), 500,
                 "RuntimeError: unlucky")
    expect_error(infer(h, {"inputs": [tensor("x", "FP32", [1, 2], [14, 0])]}), 429, "too many")
    expect_error(infer(h, {"inputs": [tensor("x", "FP32", [1, 2], [15, 0])]}), 500,
                 "1 outputs, not 2")


def test_methods_and_paths(make_handler):
    h = make_handler({"_cortex_default": {"1": _errors_session()}})
    for method, path, allow in [("GET", "/v2/models/api/infer", "POST"),
                                ("PUT", "/v2/models/api/versions/1/infer", "POST"),
                                ("POST", "/v2/models/api", "GET"),
                                ("DELETE", "/v2/models/api/ready", "GET")]:
        r = call(h, method, path)
        expect_error(r, 405, method)
        assert r.header("Allow") == allow
    for path in ["/v2/models/", "/v2/models//ready", "/v2/models/api/stats",
                 "/v2/models/api/versions/", "/v2/models/api/versions//infer",
                 "/v2/models/api/versions", "/v2/models/api/versions/1/stats",
                 "/v2/models/api/infer/more", "/v2/models/api/metadata", "/v2/health/ready",
                 "/v1/models/api"]:
        expect_error(call(h, "GET", path), 404)
        expect_error(call(h, "POST", path), 404)
    # The API part of the name is not checked (traffic splitters forward under their name).
    r = call(h, "GET", "/v2/models/splitter")
    assert r.status == 200 and r.json()["name"] == "splitter"
    expect_error(call(h, "GET", "/v2/models/api.other"), 404, "one model")
    expect_error(call(h, "GET", "/v2/models/api/versions/x"), 404, "version 'x'")


def test_several_models(make_handler):
    def ident(_):
        return FakeSession([port("x", [None])], [port("y", [None])],
                           lambda feeds: [feeds["x"]])

    table = {"a": {"1": ident(0), "2": ident(0)}, "b-2": {"5": ident(0)}}
    h = make_handler(table, spec=paths_spec("a", "b-2"))
    expect_error(call(h, "GET", "/v2/models/api"), 400, "api.a, api.b-2")
    expect_error(call(h, "GET", "/v2/models/api/ready"), 400, "api.a, api.b-2")
    expect_error(infer(h, {"inputs": []}), 400, "api.a, api.b-2")
    meta = call(h, "GET", "/v2/models/api.a").json()
    assert meta["name"] == "api.a" and meta["versions"] == ["1", "2"]
    doc = {"inputs": [tensor("x", "FP32", [1], [4])]}
    r = infer(h, doc, path="/v2/models/api.b-2/infer")
    assert (r.json()["model_name"], r.json()["model_version"]) == ("api.b-2", "5")
    r = infer(h, doc, path="/v2/models/split.a/versions/1/infer")
    assert (r.json()["model_name"], r.json()["model_version"]) == ("split.a", "1")
    assert infer(h, doc, path="/v2/models/api.a/infer").json()["model_version"] == "2"
    expect_error(call(h, "GET", "/v2/models/api.c"), 404, "api.c")
    expect_error(call(h, "GET", "/v2/models/api.a.b"), 404)
    expect_error(call(h, "GET", "/v2/models/api.a/versions/9/ready"), 404, "version '9'")
    expect_error(call(h, "GET", "/v2/models/api.b-2/versions/1"), 404, "version '1'")

    # models.dir with one model: the bare API name serves it.
    h = make_handler({"only": {"1": ident(0)}},
                     spec={"predictor": {"type": "onnx", "models": {"dir": "s3://b/models"}}})
    assert call(h, "GET", "/v2/models/api/ready").status == 200
    assert call(h, "GET", "/v2/models/api.only").json()["name"] == "api.only"


# --- the Python hook -----------------------------------------------------------------------------

class Hooked:
    def __init__(self):
        self.seen = []

    def v2_metadata(self):
        return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                           {"name": "scale", "datatype": "FP32", "shape": [1]}],
                "outputs": [{"name": "length", "datatype": "INT32", "shape": [-1]},
                            {"name": "raw", "datatype": "BYTES", "shape": [-1]},
                            {"name": "scaled", "datatype": "FP32", "shape": [-1]}],
                "versions": ["1"]}

    def v2_infer(self, inputs):
        self.seen.append(inputs)
        text, scale = inputs["text"], inputs["scale"]
        return {"length": [len(t) for t in text], "raw": [t[::-1] for t in text],
                "scaled": [len(t) * float(scale[0]) for t in text]}


def test_python_hook():
    pred = Hooked()
    assert PythonHookBackend.supports(pred) and not PythonHookBackend.supports(object())
    h = V2Handler("api", PythonHookBackend(pred))
    meta = call(h, "GET", "/v2/models/api").json()
    assert meta["platform"] == "python" and meta["versions"] == ["1"]
    assert meta["inputs"][0] == {"name": "text", "datatype": "BYTES", "shape": [-1]}
    assert call(h, "GET", "/v2/models/api/ready").json() == {"name": "api", "ready": True}
    doc = {"inputs": [tensor("text", "BYTES", [2], ["ab", "ü"]),
                      tensor("scale", "FP32", [1], [0.5])]}
    r = infer(h, doc)
    # "ü" reversed byte-wise is not UTF-8: no JSON form for that output.
    expect_error(r, 400, "output 'raw'", "not UTF-8", "binary_data")
    inputs = pred.seen[-1]
    assert inputs["text"].dtype == object and list(inputs["text"]) == [b"ab", "ü".encode()]
    assert inputs["scale"].dtype == np.float32
    r = infer(h, {**doc, "outputs": [{"name": "raw", "parameters": {"binary_data": True}},
                                     {"name": "length"}]})
    assert r.status == 200, r
    assert r.binary()["raw"] == bytes_blob([b"ba", "ü".encode()[::-1]])
    assert r.json()["outputs"][1] == {"name": "length", "datatype": "INT32", "shape": [2],
                                      "data": [2, 2]}
    r = infer(h, {"inputs": [tensor("text", "BYTES", [1], ["abc"]),
                             tensor("scale", "FP32", [1], [2])]})
    assert [o["data"] for o in r.json()["outputs"]] == [[3], ["cba"], [6.0]]
    # Validated against the metadata before v2_infer runs.
    calls = len(pred.seen)
    expect_error(infer(h, {"inputs": [tensor("text", "BYTES", [1], ["a"]),
                                      tensor("scale", "FP32", [2], [1, 2])]}), 400, "[1]")
    expect_error(infer(h, {"inputs": [tensor("text", "BYTES", [1], ["a"])]}), 400, "scale")
    assert len(pred.seen) == calls
    expect_error(call(h, "GET", "/v2/models/api.other"), 404)
    expect_error(call(h, "GET", "/v2/models/api/versions/1"), 404)


def test_python_hook_names_versions_and_lists():
    class Named:
        def v2_metadata(self, model_name):
            return {"inputs": [{"name": "x", "datatype": "INT64", "shape": [-1]}],
                    "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]},
                                {"name": "who", "datatype": "BYTES", "shape": [1]}]}

        def v2_infer(self, inputs, model_name=None, model_version=None):
            return [inputs["x"] + 1, np.array([f"{model_name}:{model_version}"])]

    h = V2Handler("api", PythonHookBackend(Named()))
    doc = {"inputs": [tensor("x", "INT64", [2], [1, 2])]}
    r = infer(h, doc, path="/v2/models/api.m1/versions/3/infer")
    assert r.json()["model_name"] == "api.m1" and r.json()["model_version"] == "3"
    assert [o["data"] for o in r.json()["outputs"]] == [[2, 3], ["m1:3"]]
    assert infer(h, doc).json()["outputs"][1]["data"] == ["None:latest"]
    expect_error(call(h, "GET", "/v2/models/api.m.x"), 404)
    expect_error(call(h, "GET", "/v2/models/api/versions/v1"), 404)


def test_python_hook_failures():
    class Broken:
        def __init__(self, meta, result=None):
            self.meta, self.result = meta, result

        def v2_metadata(self):
            if isinstance(self.meta, Exception):
                raise self.meta
            return self.meta

        def v2_infer(self, inputs):
            if isinstance(self.result, Exception):
                raise self.result
            return self.result

    good = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}
    doc = {"inputs": [tensor("x", "FP32", [1], [1])]}

    def handler(*args):
        return V2Handler("api", PythonHookBackend(Broken(*args)))

    expect_error(infer(handler(good, {"z": [1]}), doc), 500, "no output 'y'")
    expect_error(infer(handler(good, 5), doc), 500, "TypeError")
    expect_error(infer(handler(good, [1, 2]), doc), 500, "2 outputs, not 1")
    expect_error(infer(handler(good, ValueError("bad model")), doc), 500, "ValueError: bad model")
    expect_error(infer(handler(good, V2Error(422, "nope")), doc), 422, "nope")
    expect_error(infer(handler(good, ModelError("not loaded")), doc), 503, "not loaded")
    expect_error(infer(handler(good, {"y": ["a"]}), doc), 500, "ValueError")
    for meta in (None, {"inputs": []}, {"inputs": [{"name": "x", "datatype": "F", "shape": []}],
                                       "outputs": []},
                 {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-2]}], "outputs": []}):
        expect_error(call(handler(meta), "GET", "/v2/models/api"), 500, "v2_metadata")
    expect_error(call(handler(RuntimeError("boom")), "GET", "/v2/models/api/ready"), 500, "boom")
    r = call(handler(ModelError("loading")), "GET", "/v2/models/api/ready")
    assert (r.status, r.json()) == (503, {"name": "api", "ready": False})


# --- robustness -------------------------------------------------------------------------------

def test_random_requests_never_raise(make_handler):
    session = FakeSession([port("x", [None, 2]), port("s", [None], "tensor(string)"),
                           port("b", [None], "tensor(bool)")],
                          [port("y", [None, 2])], lambda feeds: [feeds["x"]])
    h = make_handler({"_cortex_default": {"1": session}})
    doc = {"inputs": [tensor("x", "FP32", [2, 2], size=16), tensor("s", "BYTES", [2], size=11),
                      tensor("b", "BOOL", [3], [True, False, True])],
           "parameters": {"binary_data_output": True}}
    text = json.dumps(doc).encode()
    body = text + np.arange(4, dtype=np.float32).tobytes() + bytes_blob([b"a", b"bc"])
    good = call(h, "POST", "/v2/models/api/infer", body, [[HEADER, str(len(text))]])
    assert good.status == 200, good
    rng = random.Random(7)
    statuses = set()
    for _ in range(1500):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            at = rng.randrange(len(mutated))
            if kind < 0.5:
                mutated[at] = rng.randrange(256)
            elif kind < 0.75:
                del mutated[at:at + rng.randint(1, 8)]
            else:
                mutated[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        length = str(len(text) + rng.choice([0, 0, 0, -1, 1, -5, 7]))
        r = call(h, "POST", "/v2/models/api/infer", bytes(mutated), [[HEADER, length]])
        statuses.add(r.status)
        assert r.status in (200, 400), r
        json.loads(r.body[:int(r.header(HEADER))] if r.header(HEADER) else r.body)
    assert statuses == {200, 400}


WEIRD = [None, True, 0, -1, 1, 2, 2 ** 64, 1.5, float("nan"), "", "x", "FP32", "BYTES", "BOOL",
         [], [1], [-1], [2, 2], [[1, 2], [3, 4]], ["a", "b"], [True, False], [None], [[1], [2, 3]],
         {}, {"binary_data_size": 4}, {"binary_data_size": -1}, {"binary_data": True},
         {"binary_data_output": True}, {"binary_data_size": 2 ** 62}]


def test_random_documents_never_raise(make_handler):
    session = FakeSession([port("x", [None, 2]), port("s", [None], "tensor(string)"),
                           port("b", [None], "tensor(bool)")],
                          [port("y", [None, 2]), port("h", [None], "tensor(float16)")],
                          lambda feeds: [feeds["x"], np.zeros(2, np.float16)])
    h = make_handler({"_cortex_default": {"1": session}})
    rng = random.Random(11)
    statuses = set()
    for _ in range(3000):
        inputs = []
        for name in rng.sample(["x", "s", "b", "x", "q", 3], rng.randint(0, 4)):
            t = {k: rng.choice(WEIRD) for k in ("datatype", "shape", "data", "parameters")
                 if rng.random() < 0.8}
            if rng.random() < 0.5:
                t["datatype"] = {"x": "FP32", "s": "BYTES", "b": "BOOL"}.get(name, "FP32")
            inputs.append({"name": name, **t})
        doc = {"inputs": inputs}
        for key in ("id", "parameters", "outputs"):
            if rng.random() < 0.3:
                doc[key] = rng.choice(WEIRD + [[{"name": "y"}], [{"name": "h"}], ["y"]])
        text = json.dumps(doc).encode()
        tail = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 4, 8, 13])))
        headers = [[HEADER, str(len(text))]] if rng.random() < 0.7 else []
        r = call(h, "POST", "/v2/models/api/infer", text + tail, headers)
        statuses.add(r.status)
        assert r.status in (200, 400), (doc, r)
    assert 400 in statuses
