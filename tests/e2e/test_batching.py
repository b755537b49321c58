"""Server-side batching and the Open Inference Protocol (KServe v2) end to end.

One cluster for the module: a Python API whose predictor reports the size of each batch it gets,
an ONNX API (batched) with an MLP of known weights and a model with INT64, UINT8 and BYTES inputs,
and a plain Python API. Requests go through the gateway, concurrently where batches should form.
"""

import json
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

INTERVAL_S = 0.3
PY_API = "batch-py"
ONNX_API = "batch-onnx"
PLAIN_API = "batch-plain"
MULTI_API = "batch-multi"
HOOK_API = "batch-hook"

PY_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload, query_params):
        if any(p.get("boom") for p in payload):
            raise ValueError("boom")
        out = [{"i": p.get("i"), "size": len(payload), "q": q.get("q")}
               for p, q in zip(payload, query_params)]
        if any(p.get("short") for p in payload):
            out.pop()
        return out
"""

ONNX_PREDICTOR = """
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload):
        return self.client.predict(payload["x"], "mlp")[0].tolist()
"""

PLAIN_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return "plain"
"""

MULTI_PREDICTOR = """
import os, threading, time


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        time.sleep(0.05)
        return [{"pid": os.getpid(), "thread": threading.get_ident(), "size": len(payload)}
                for _ in payload]
"""

HOOK_PREDICTOR = """
import numpy as np


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return "use the v2 endpoints"

    def v2_metadata(self):
        return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
                "outputs": [{"name": "sum", "datatype": "FP64", "shape": [-1]}]}

    def v2_infer(self, inputs):
        return {"sum": inputs["x"].sum(axis=1)}
"""

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
B = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def save(graph, path):
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def make_models(root):
    from onnx import TensorProto, helper, numpy_helper

    save(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b")]),
        f"{root}/mlp/1/model.onnx")
    save(helper.make_graph(
        [helper.make_node("Mul", ["i", "two"], ["i2"]), helper.make_node("Identity", ["u"], ["u1"]),
         helper.make_node("Identity", ["s"], ["s1"])],
        "types",
        [helper.make_tensor_value_info("i", TensorProto.INT64, ["n", 2]),
         helper.make_tensor_value_info("u", TensorProto.UINT8, ["n", 3]),
         helper.make_tensor_value_info("s", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("i2", TensorProto.INT64, ["n", 2]),
         helper.make_tensor_value_info("u1", TensorProto.UINT8, ["n", 3]),
         helper.make_tensor_value_info("s1", TensorProto.STRING, ["n"])],
        [numpy_helper.from_array(np.array(2, dtype=np.int64), "two")]),
        f"{root}/types/1/model.onnx")


@pytest.fixture(scope="module")
def apis(_module_cluster, tmp_path_factory):
    c = _module_cluster
    root = str(tmp_path_factory.mktemp("batching-models"))
    make_models(root)
    batching = (f"server_side_batching: {{max_batch_size: 8, batch_interval: "
                f"{int(INTERVAL_S * 1000)}ms}}")
    files = {
        "cortex.yaml": (
            f"- name: {PY_API}\n  kind: RealtimeAPI\n"
            f"  predictor: {{type: python, path: py.py, {batching}}}\n"
            f"- name: {ONNX_API}\n  kind: RealtimeAPI\n"
            f"  predictor:\n    type: onnx\n    path: onnx_predictor.py\n    {batching}\n"
            f"    models:\n      paths:\n"
            f"        - {{name: mlp, model_path: {root}/mlp}}\n"
            f"        - {{name: types, model_path: {root}/types}}\n"
            f"- name: {PLAIN_API}\n  kind: RealtimeAPI\n"
            f"  predictor: {{type: python, path: plain.py}}\n"
            f"- name: {MULTI_API}\n  kind: RealtimeAPI\n"
            f"  predictor: {{type: python, path: multi.py, processes_per_replica: 2, "
            f"threads_per_process: 2, server_side_batching: {{max_batch_size: 4, "
            f"batch_interval: 100ms}}}}\n"
            f"  compute: {{cpu: 200m}}\n"
            f"- name: {HOOK_API}\n  kind: RealtimeAPI\n"
            f"  predictor: {{type: python, path: hook.py}}\n"),
        "py.py": PY_PREDICTOR, "onnx_predictor.py": ONNX_PREDICTOR, "plain.py": PLAIN_PREDICTOR,
        "multi.py": MULTI_PREDICTOR, "hook.py": HOOK_PREDICTOR}
    c.deploy_ok(c.project("batching", files))
    for name in (PY_API, ONNX_API, PLAIN_API, MULTI_API, HOOK_API):
        c.wait_live(name, timeout=90)
    return c


def concurrently(fn, args, workers=16):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, args))


# ---- server-side batching -------------------------------------------------------------------

def test_concurrent_requests_are_batched_and_each_caller_gets_its_own_answer(apis):
    url = apis.url(PY_API)

    def call(i):
        r = requests.post(f"{url}?q=q{i}", json={"i": i}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    answers = concurrently(call, range(32))
    assert [a["i"] for a in answers] == list(range(32))
    assert [a["q"] for a in answers] == [f"q{i}" for i in range(32)]
    sizes = [a["size"] for a in answers]
    assert max(sizes) > 1, sizes
    assert max(sizes) <= 8, sizes


def test_a_lone_request_is_a_batch_of_one_after_at_most_the_interval(apis):
    for i in range(3):
        started = time.monotonic()
        r = apis.post(PY_API, {"i": i})
        elapsed = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert r.json()["size"] == 1
        # It waited for company for batch_interval, and not much longer.
        assert INTERVAL_S * 0.8 <= elapsed < INTERVAL_S + 2.0, elapsed


def test_a_wrong_length_or_an_exception_fails_the_whole_batch_with_a_clear_500(apis):
    r = apis.post(PY_API, {"short": True})
    assert r.status_code == 500
    assert "predict must return a list of 1 results" in r.json()["error"]
    r = apis.post(PY_API, {"boom": True})
    assert r.status_code == 500
    assert r.json()["error"] == "ValueError: boom"
    # a bad request in a concurrent batch fails its batch-mates, and the API keeps serving
    answers = concurrently(lambda i: requests.post(apis.url(PY_API), json={"i": i, "boom": i == 0},
                                                   timeout=30).status_code, range(8))
    assert answers[0] == 500
    assert apis.post(PY_API, {"i": 1}).status_code == 200


def test_several_batches_run_at_once_on_every_process_and_thread(apis):
    answers = concurrently(
        lambda i: requests.post(apis.url(MULTI_API), json={}, timeout=30).json(), range(48),
        workers=24)
    assert max(a["size"] for a in answers) > 1
    assert max(a["size"] for a in answers) <= 4
    assert len({a["pid"] for a in answers}) == 2, answers  # both processes took batches
    assert len({(a["pid"], a["thread"]) for a in answers}) >= 3  # and more than one slot each


def test_onnx_batches_give_the_numbers_of_unbatched_calls(apis):
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(1 + i % 3, 4)).round(3).astype(np.float32) for i in range(24)]

    def call(x):
        r = requests.post(apis.url(ONNX_API), json={"x": x.tolist()}, timeout=30)
        assert r.status_code == 200, r.text
        return np.array(r.json(), dtype=np.float32)

    batched = concurrently(call, inputs)
    alone = [call(x) for x in inputs[:3]]
    for x, y in zip(inputs, batched):
        np.testing.assert_allclose(y, x @ W + B, rtol=1e-5, atol=1e-5)
    for a, b in zip(alone, batched[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # a request whose shape cannot be stacked with the others runs alone, not as an error
    odd = concurrently(lambda x: requests.post(apis.url(ONNX_API), json={"x": x},
                                               timeout=30).status_code,
                       [[[1, 2, 3, 4]], [[1, 2, 3, 4]], [1, 2, 3, 4, 5, 6, 7, 8]])
    assert odd == [200, 200, 200]


def test_the_batch_size_histogram_and_cortex_get(apis):
    concurrently(lambda i: requests.post(apis.url(PY_API), json={"i": i}, timeout=30), range(16))
    replica = apis.get_api(PY_API)
    stats = replica["metrics"]["batch_stats"]
    assert stats["batches"] > 0
    assert stats["batched_requests"] >= stats["batches"]
    assert stats["avg_batch_size"] == pytest.approx(stats["batched_requests"] / stats["batches"])
    rc, out, err = apis.cli("get", PY_API)
    assert rc == 0, err
    assert "average batch size: " in out
    # the replica's Prometheus histogram
    port = next(r["port"] for r in replica["replicas"] if r["state"] == "ready")
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'cortex_replica_batch_size_bucket{api="batch-py"' in text
    count = next(line for line in text.splitlines()
                 if line.startswith("cortex_replica_batch_size_count"))
    assert int(count.split()[-1]) == stats["batches"]  # one replica: the same count


# ---- the Open Inference Protocol --------------------------------------------------------------

def v2(apis, path):
    return apis.gateway_url + path


def infer_binary(apis, name, header, parts, binary_outputs=True):
    body_json = json.dumps(header).encode()
    return requests.post(v2(apis, f"/v2/models/{name}/infer"), data=body_json + b"".join(parts),
                         headers={"Inference-Header-Content-Length": str(len(body_json)),
                                  "Content-Type": "application/octet-stream"}, timeout=30)


def split_binary(r):
    """(the JSON header, the binary rest) of a binary v2 response."""
    n = int(r.headers["Inference-Header-Content-Length"])
    return json.loads(r.content[:n]), r.content[n:]


def test_health_and_server_metadata(apis):
    assert requests.get(v2(apis, "/v2/health/live"), timeout=10).json() == {"live": True}
    r = requests.get(v2(apis, "/v2/health/ready"), timeout=10)
    assert r.status_code == 200 and r.json() == {"ready": True}
    meta = requests.get(v2(apis, "/v2"), timeout=10).json()
    assert meta["name"] == "cortex" and "binary_tensor_data" in meta["extensions"]


def test_model_metadata_and_readiness(apis):
    r = requests.get(v2(apis, f"/v2/models/{ONNX_API}.mlp"), timeout=10)
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["name"] == f"{ONNX_API}.mlp"
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]
    r = requests.get(v2(apis, f"/v2/models/{ONNX_API}.mlp/versions/1/ready"), timeout=10)
    assert r.status_code == 200 and r.json()["ready"] is True
    # the API has two models: the name must say which
    r = requests.get(v2(apis, f"/v2/models/{ONNX_API}"), timeout=10)
    assert r.status_code == 400 and f"{ONNX_API}.types" in r.json()["error"]
    assert requests.get(v2(apis, f"/v2/models/{ONNX_API}.nope"), timeout=10).status_code == 404
    assert requests.get(v2(apis, "/v2/models/no-such-api"), timeout=10).status_code == 404
    r = requests.get(v2(apis, f"/v2/models/{PLAIN_API}"), timeout=10)
    assert r.status_code == 404 and "Open Inference Protocol" in r.json()["error"]


def test_infer_with_json_tensors(apis):
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 1]], dtype=np.float32)
    r = requests.post(v2(apis, f"/v2/models/{ONNX_API}.mlp/infer"), json={
        "id": "r1", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                "data": x.flatten().tolist()}]}, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "r1" and out["model_name"] == f"{ONNX_API}.mlp"
    assert out["outputs"][0]["shape"] == [2, 3] and out["outputs"][0]["datatype"] == "FP32"
    np.testing.assert_allclose(np.array(out["outputs"][0]["data"]).reshape(2, 3), x @ W + B,
                               rtol=1e-5)
    r = requests.post(v2(apis, f"/v2/models/{ONNX_API}.types/infer"), json={"inputs": [
        {"name": "i", "shape": [1, 2], "datatype": "INT64", "data": [[5, -7]]},
        {"name": "u", "shape": [1, 3], "datatype": "UINT8", "data": [0, 128, 255]},
        {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["héllo"]}]}, timeout=30)
    assert r.status_code == 200, r.text
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["i2"]["data"] == [10, -14] and outs["i2"]["datatype"] == "INT64"
    assert outs["u1"]["data"] == [0, 128, 255] and outs["u1"]["datatype"] == "UINT8"
    assert outs["s1"]["data"] == ["héllo"] and outs["s1"]["datatype"] == "BYTES"


def test_infer_with_binary_tensors_in_and_out(apis):
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    r = infer_binary(apis, f"{ONNX_API}.mlp", {
        "inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}, [x.tobytes()])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    header, rest = split_binary(r)
    assert header["outputs"][0]["parameters"]["binary_data_size"] == len(rest) == 3 * 3 * 4
    np.testing.assert_allclose(np.frombuffer(rest, dtype="<f4").reshape(3, 3), x @ W + B,
                               rtol=1e-5)
    # ONNX string tensors hold text: no NUL bytes, and invalid UTF-8 comes back replaced
    strings = [b"a", "binär ✓".encode(), b""]
    blob = b"".join(struct.pack("<I", len(s)) + s for s in strings)
    i = np.array([[1, 2], [3, 4], [5, 6]], dtype="<i8")
    u = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.uint8)
    r = infer_binary(apis, f"{ONNX_API}.types", {
        "inputs": [{"name": "i", "shape": [3, 2], "datatype": "INT64",
                    "parameters": {"binary_data_size": i.nbytes}},
                   {"name": "u", "shape": [3, 3], "datatype": "UINT8",
                    "parameters": {"binary_data_size": u.nbytes}},
                   {"name": "s", "shape": [3], "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)}}],
        "parameters": {"binary_data_output": True}}, [i.tobytes(), u.tobytes(), blob])
    assert r.status_code == 200, r.text
    header, rest = split_binary(r)
    sizes = {o["name"]: o["parameters"]["binary_data_size"] for o in header["outputs"]}
    order = [o["name"] for o in header["outputs"]]
    parts, at = {}, 0
    for name in order:
        parts[name] = rest[at:at + sizes[name]]
        at += sizes[name]
    assert np.array_equal(np.frombuffer(parts["i2"], dtype="<i8").reshape(3, 2), i * 2)
    assert np.array_equal(np.frombuffer(parts["u1"], dtype=np.uint8).reshape(3, 3), u)
    assert parts["s1"] == blob


def test_concurrent_binary_infers_are_batched_and_right(apis):
    rng = np.random.default_rng(5)
    inputs = [rng.normal(size=(1, 4)).astype(np.float32) for _ in range(16)]

    def call(x):
        r = infer_binary(apis, f"{ONNX_API}.mlp", {
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                        "parameters": {"binary_data_size": x.nbytes}}],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}, [x.tobytes()])
        assert r.status_code == 200, r.text
        return np.frombuffer(split_binary(r)[1], dtype="<f4").reshape(1, 3)

    for x, y in zip(inputs, concurrently(call, inputs)):
        np.testing.assert_allclose(y, x @ W + B, rtol=1e-5, atol=1e-5)


def test_a_python_predictor_serves_v2_through_its_hook(apis):
    meta = requests.get(v2(apis, f"/v2/models/{HOOK_API}"), timeout=10).json()
    assert meta["platform"] == "python"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
    x = np.array([[1, 2], [3, 4.5]], dtype=np.float32)
    r = infer_binary(apis, HOOK_API, {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": "sum", "parameters": {"binary_data": True}}]}, [x.tobytes()])
    assert r.status_code == 200, r.text
    header, rest = split_binary(r)
    assert header["outputs"][0]["datatype"] == "FP64"
    assert np.frombuffer(rest, dtype="<f8").tolist() == [3.0, 7.5]
    assert apis.post(HOOK_API, {}).text == "use the v2 endpoints"  # its Cortex endpoint


@pytest.mark.parametrize("header_length,body", [
    ("99999", b'{"inputs": []}'),
    ("abc", b'{"inputs": []}'),
    ("-1", b'{"inputs": []}'),
    ("5", b'{"inputs": []}'),
])
def test_malformed_binary_headers_are_400(apis, header_length, body):
    r = requests.post(v2(apis, f"/v2/models/{ONNX_API}.mlp/infer"), data=body,
                      headers={"Inference-Header-Content-Length": header_length}, timeout=30)
    assert r.status_code == 400, r.text
    assert "error" in r.json()


def test_malformed_tensors_are_400_and_the_api_keeps_serving(apis):
    name = f"{ONNX_API}.mlp"
    cases = [
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                      "parameters": {"binary_data_size": 16}}]}, [b"\x00" * 8]),  # short
        ({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                      "parameters": {"binary_data_size": 16}}]}, [b"\x00" * 16]),  # shape
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64",
                      "parameters": {"binary_data_size": 32}}]}, [b"\x00" * 32]),  # datatype
        ({"inputs": [{"name": "z", "shape": [1, 4], "datatype": "FP32",
                      "parameters": {"binary_data_size": 16}}]}, [b"\x00" * 16]),  # name
    ]
    for header, parts in cases:
        r = infer_binary(apis, name, header, parts)
        assert r.status_code == 400, (header, r.text)
    r = requests.post(v2(apis, f"/v2/models/{name}/infer"), data=b"{not json", timeout=30)
    assert r.status_code == 400
    r = requests.post(v2(apis, f"/v2/models/{name}/infer"), json={"inputs": [
        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}, timeout=30)
    assert r.status_code == 400
    assert apis.post(ONNX_API, {"x": [[1, 2, 3, 4]]}).status_code == 200
