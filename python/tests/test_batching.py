"""Server-side batching in the worker: batch frames, list predictors, ONNX stacking."""

import json

BATCHING = {"server_side_batching": {"max_batch_size": 8, "batch_interval": "10ms"}}

LIST_PREDICTOR = """
    import json, os

    class PythonPredictor:
        def __init__(self, config):
            self.log = config["log"]

        def predict(self, payload, query_params, headers):
            with open(self.log, "a") as f:
                f.write(json.dumps(len(payload)) + "\\n")
            out = []
            for p, q, h in zip(payload, query_params, headers):
                if p.get("kind") == "bytes":
                    out.append(b"raw")
                elif p.get("kind") == "text":
                    out.append("text")
                else:
                    out.append({"x": p.get("x"), "q": q.get("q"), "h": h.get("x-h")})
            if any(p.get("short") for p in payload):
                out.pop()
            if any(p.get("boom") for p in payload):
                raise ValueError("boom")
            if any(p.get("teapot") for p in payload):
                from cortex_runtime import HTTPException
                raise HTTPException(status_code=418, detail="short and stout")
            return out

        def post_predict(self, response, payload):
            with open(self.log + ".post", "a") as f:
                f.write(json.dumps([len(response), len(payload)]) + "\\n")
"""


def start_list(start_worker, tmp_path, slots=1):
    log = tmp_path / "sizes.log"
    w = start_worker(LIST_PREDICTOR, slots=slots, config={"log": str(log)},
                     predictor=BATCHING)
    return w, log


def test_predict_gets_lists_and_each_caller_its_own_item(start_worker, tmp_path):
    w, log = start_list(start_worker, tmp_path)
    replies = w.request_batch([
        ({"x": 1}, {"query": "q=a", "headers": [["content-type", "application/json"],
                                                 ["x-h", "one"]]}),
        ({"x": 2, "kind": "bytes"}, None),
        ({"x": 3, "kind": "text"}, None),
        ({"x": 4}, {"query": "q=d"}),
    ])
    assert [r.status for r in replies] == [200, 200, 200, 200]
    assert replies[0].json() == {"x": 1, "q": "a", "h": "one"}
    assert replies[1].body == b"raw"
    assert replies[1].header["content_type"] == "application/octet-stream"
    assert replies[2].body == b"text"
    assert replies[3].json() == {"x": 4, "q": "d", "h": None}
    assert log.read_text().split() == ["4"]
    # post_predict ran once, with the lists
    w.request_batch([({"x": 5}, None)])
    assert (tmp_path / "sizes.log.post").read_text().split("\n")[0] == "[4, 4]"


def test_a_request_that_cannot_be_parsed_fails_alone(start_worker, tmp_path):
    w, log = start_list(start_worker, tmp_path)
    replies = w.request_batch([({"x": 1}, None), (b"{not json", None), ({"x": 3}, None)])
    assert [r.status for r in replies] == [200, 400, 200]
    assert "error" in replies[1].json()
    assert replies[2].json()["x"] == 3
    assert log.read_text().split() == ["2"]


def test_a_wrong_length_fails_every_request_of_the_batch(start_worker, tmp_path):
    w, _ = start_list(start_worker, tmp_path)
    replies = w.request_batch([({"x": 1}, None), ({"short": True}, None), ({"x": 3}, None)])
    assert [r.status for r in replies] == [500, 500, 500]
    message = replies[0].json()["error"]
    assert "predict must return a list of 3 results" in message
    assert "a list of 2 items" in message
    # the slot goes on serving
    assert w.request_batch([({"x": 9}, None)])[0].json()["x"] == 9
    w.request_batch([({"x": 10}, None)])  # the slot runs post_predict before its next frame
    # post_predict ran for the good batch only
    lines = (tmp_path / "sizes.log.post").read_text().split("\n")[:-1]
    assert lines[0] == "[1, 1]" and set(lines) == {"[1, 1]"}


def test_an_exception_fails_every_request_of_the_batch(start_worker, tmp_path):
    w, _ = start_list(start_worker, tmp_path)
    replies = w.request_batch([({"x": 1}, None), ({"boom": True}, None)])
    assert [r.status for r in replies] == [500, 500]
    assert replies[1].json() == {"error": "ValueError: boom"}
    assert "exception in predict" in w.stderr
    replies = w.request_batch([({"teapot": True}, None), ({"x": 2}, None)])
    assert [r.status for r in replies] == [418, 418]


def test_a_non_list_result_is_a_clear_500(start_worker, tmp_path):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return {"not": "a list"}
    """, predictor=BATCHING)
    replies = w.request_batch([({}, None), ({}, None)])
    assert [r.status for r in replies] == [500, 500]
    assert "but it returned a dict" in replies[0].json()["error"]


def test_a_malformed_batch_frame_closes_the_slot(start_worker, tmp_path):
    from cortex_runtime.protocol import encode_frame
    from conftest import read_frame  # noqa: F401
    w, _ = start_list(start_worker, tmp_path, slots=2)
    w.conns[1].sendall(encode_frame({"batch": [{"length": 10}]}, b"short"))
    assert w.conns[1].recv(1) == b""
    assert "bad batch frame" in w.stderr
    assert w.request_batch([({"x": 1}, None)])[0].json()["x"] == 1  # the other slot serves


FAKE_ONNX = """
    import json, os
    import numpy as np

    class Session:
        def __init__(self, path, intra_op_threads=1):
            self.log = os.path.join(os.path.dirname(path), "runs.log")

        def inputs(self):
            return [{"name": "x", "shape": [None, 2], "type": "tensor(float)"}]

        def outputs(self):
            return [{"name": "y", "shape": [None, 2], "type": "tensor(float)"}]

        def run(self, names, feeds):
            x = feeds["x"]
            with open(self.log, "a") as f:
                f.write(json.dumps(list(x.shape)) + "\\n")
            return [x * 10]
"""


def test_onnx_requests_of_a_batch_run_the_model_once(start_worker, tmp_path):
    d = tmp_path / "models" / "m1"
    d.mkdir(parents=True)
    (d / "model.onnx").write_text("m")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"generation": 1, "models": {"_cortex_default": {
        "versions": {"1": {"path": str(d), "timestamp": 1}}}}}))
    w = start_worker("""
        class ONNXPredictor:
            def __init__(self, onnx_client, config):
                self.client = onnx_client

            def predict(self, payload):
                return self.client.predict(payload["x"])[0].tolist()
    """, files={"_cortex_onnx.py": FAKE_ONNX},
        predictor={"type": "onnx", "model_path": "s3://x/m", **BATCHING},
        spec_extra={"models_manifest": str(manifest)})
    items = [({"x": [[i, i + 1]] * (1 + i % 2)}, None) for i in range(6)]
    replies = w.request_batch(items)
    assert [r.json() for r in replies] == [[[10 * i, 10 * (i + 1)]] * (1 + i % 2)
                                           for i in range(6)]
    assert (d / "runs.log").read_text().split("\n")[:-1] == ["[9, 2]"]
    # a request whose shape cannot be stacked runs alone, not as an error
    replies = w.request_batch([({"x": [[1, 2]]}, None), ({"x": [1, 2, 3]}, None)])
    assert replies[0].json() == [[10, 20]]
    assert replies[1].status == 500  # the model's input is [None, 2]: 3 values do not fit
