"""Models through the real worker: python_client, onnx_client, GET model_metadata, numpy results."""

import json
import os
import time

import pytest

from test_startup import assert_failed_start

PY_MODELS = """
    import os

    class PythonPredictor:
        def __init__(self, config, python_client):
            self.client = python_client

        def load_model(self, model_path):
            with open(os.path.join(model_path, "model.txt")) as f:
                return {"text": f.read(), "path": model_path}

        def predict(self, payload):
            return self.client.get_model(payload.get("name"), payload.get("version", "latest"))
"""


def write_manifest(tmp_path, versions):
    """versions: {name: {version: text}}; each version gets its own directory."""
    models = {}
    for name, per_version in versions.items():
        models[name] = {"versions": {}}
        for version, text in per_version.items():
            d = tmp_path / "models" / f"{name}-{version}-{abs(hash(text))}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "model.txt").write_text(text)
            models[name]["versions"][version] = {"path": str(d), "timestamp": 1700 + int(version)}
    path = tmp_path / "manifest.json"
    tmp = tmp_path / "manifest.json.tmp"
    tmp.write_text(json.dumps({"generation": 1, "models": models}))
    os.replace(tmp, path)
    return str(path)


def test_python_client_and_metadata(start_worker, tmp_path):
    manifest = write_manifest(tmp_path, {"a": {"1": "a1"}, "b": {"1": "b1", "2": "b2"}})
    w = start_worker(PY_MODELS, predictor={"models": {"paths": [
        {"name": "a", "model_path": "s3://x/a"}, {"name": "b", "model_path": "s3://x/b"}]}},
        spec_extra={"models_manifest": manifest})
    r = w.request(method="GET")
    assert r.status == 200
    assert r.json() == {
        "message": "make a prediction by sending a post request to this endpoint with a json "
                   "payload",
        "model_metadata": {"a": {"versions": ["1"], "timestamps": [1701]},
                           "b": {"versions": ["1", "2"], "timestamps": [1701, 1702]}}}
    assert w.request(json_body={"name": "b"}).json()["text"] == "b2"
    assert w.request(json_body={"name": "b", "version": "1"}).json()["text"] == "b1"
    r = w.request(json_body={"name": "zz"})
    assert r.status == 500
    assert "'zz' model wasn't found in the list of available models" in r.json()["error"]
    r = w.request(json_body={})
    assert "model_name was not specified, choose one of the following: ['a', 'b']" in \
        r.json()["error"]
    assert "model b version 2 loaded" in w.stderr


def test_live_reload_through_the_worker(start_worker, tmp_path):
    manifest = write_manifest(tmp_path, {"_cortex_default": {"1": "v1"}})
    w = start_worker(PY_MODELS, predictor={"model_path": "s3://x/m"},
                     env={"CORTEX_MODEL_WATCH_S": "0.02"},
                     spec_extra={"models_manifest": manifest})
    assert w.request(json_body={}).json()["text"] == "v1"
    write_manifest(tmp_path, {"_cortex_default": {"1": "v1", "2": "v2"}})
    deadline = time.monotonic() + 5
    texts = set()
    while time.monotonic() < deadline:
        r = w.request(json_body={})
        assert r.status == 200, r
        texts.add(r.json()["text"])
        if "v2" in texts:
            break
        time.sleep(0.01)
    assert "v2" in texts
    write_manifest(tmp_path, {"_cortex_default": {"2": "v2"}})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "version 1 unloaded" not in w.stderr:
        time.sleep(0.02)
    assert "model _cortex_default version 1 unloaded" in w.stderr
    assert w.request(method="GET").json()["model_metadata"] == {
        "_cortex_default": {"versions": ["2"], "timestamps": [1702]}}
    r = w.request(json_body={"version": "1"})
    assert "model _cortex_default of version 1 wasn't found" in r.json()["error"]


def test_python_models_need_load_model(start_worker, tmp_path):
    manifest = write_manifest(tmp_path, {"_cortex_default": {"1": "v1"}})
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config, python_client):
                pass

            def predict(self, payload):
                return 1
    """, predictor={"model_path": "s3://x/m"}, spec_extra={"models_manifest": manifest},
        connect=False)
    assert_failed_start(w, 'required method "load_model" is not defined')


def test_numpy_results_are_serialized(start_worker):
    pytest.importorskip("numpy")
    w = start_worker("""
        import numpy as np

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                kind = payload["kind"]
                if kind == "array":
                    return np.arange(4, dtype=np.int64).reshape(2, 2)
                if kind == "list":
                    return [np.array([0.5, 1.5], dtype=np.float32), np.int32(3)]
                if kind == "scalar":
                    return np.float64(2.25)
                if kind == "object":
                    return {"x": object()}
                return {"a": np.array([1, 2]), "b": np.bool_(True), "c": np.float32(0.5)}
    """)
    assert w.request(json_body={"kind": "array"}).json() == [[0, 1], [2, 3]]
    assert w.request(json_body={"kind": "list"}).json() == [[0.5, 1.5], 3]
    assert w.request(json_body={"kind": "scalar"}).json() == 2.25
    assert w.request(json_body={"kind": "dict"}).json() == {"a": [1, 2], "b": True, "c": 0.5}
    r = w.request(json_body={"kind": "object"})
    assert r.status == 500 and "Object of type object is not JSON serializable" in r.json()["error"]


FAKE_ONNX = """
    import os

    class Session:
        def __init__(self, path, intra_op_threads=1):
            with open(path) as f:
                self.name = f.read()
            self.path = path
            self.threads = intra_op_threads

        def inputs(self):
            return [{"name": "in_" + self.name, "shape": [None, 3], "type": "tensor(float)"}]

        def outputs(self):
            return []

        def run(self, names, feeds):
            return [self.name]
"""


def test_onnx_predictor_through_the_worker(start_worker, tmp_path):
    models = {}
    for version in ("1", "2"):
        d = tmp_path / "models" / f"m{version}" / "nested"
        d.mkdir(parents=True)
        (d / "model.onnx").write_text(f"m{version}")
        models[version] = {"path": str(d.parent), "timestamp": 10 + int(version)}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"generation": 1, "models": {"m": {"versions": models}}}))
    w = start_worker("""
        class ONNXPredictor:
            def __init__(self, onnx_client, config):
                self.client = onnx_client

            def predict(self, payload):
                model = self.client.get_model("m", payload.get("version", "latest"))
                s = model["session"]
                return {"name": s.name, "threads": s.threads,
                        "inputs": model["input_signatures"], "run": s.run(None, {})}
    """, files={"_cortex_onnx.py": FAKE_ONNX},
        predictor={"type": "onnx", "processes_per_replica": 2,
                   "models": {"paths": [{"name": "m", "model_path": "s3://x/m"}]}},
        spec_extra={"models_manifest": str(manifest), "compute": {"cpu": "4"}})
    r = w.request(json_body={})
    assert r.json() == {"name": "m2", "threads": 2, "run": ["m2"],
                        "inputs": {"in_m2": {"shape": [None, 3], "type": "tensor(float)"}}}
    meta = w.request(method="GET").json()["model_metadata"]
    assert meta == {"m": {"versions": ["1", "2"], "timestamps": [11, 12], "input_signatures": {
        "1": {"in_m1": {"shape": [None, 3], "type": "tensor(float)"}},
        "2": {"in_m2": {"shape": [None, 3], "type": "tensor(float)"}}}}}
