"""The ONNX predictor end to end, with models the tests make themselves: an MLP exported with
torch (answers compared with torch's own), and small graphs built with onnx.helper (one input, two
named inputs). Covers onnx_client.predict's input handling and its messages, get_model's
{session, signatures, input_signatures}, the GET route's model metadata, models.paths with names
and versions, ONNX Runtime's thread count following compute.cpu, a BatchAPI job whose predictor
uses a model, and a model that fails to load while the API keeps serving the others.

Most tests share one cluster (the module's), which polls its model sources every 0.5 s
(CORTEX_MODEL_POLL_S) and whose workers watch their manifest every 0.1 s (CORTEX_MODEL_WATCH_S).
"""

import json
import os

import numpy as np
import pytest

POLL_ENV = {"CORTEX_MODEL_POLL_S": "0.5", "CORTEX_MODEL_WATCH_S": "0.1"}
TOL = 1e-4
TERMINAL = {"status_succeeded", "status_completed_with_failures", "status_stopped",
            "status_timed_out", "status_worker_error", "status_worker_oom",
            "status_unexpected_error", "status_enqueue_failed"}

# One predictor for every realtime test: the payload says what to do.
PREDICTOR = """
import numpy as np


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload):
        name = payload.get("model")
        version = payload.get("version", "latest")
        if payload.get("what") == "model":
            model = self.client.get_model(name, version)
            session = model["session"]
            # The session itself runs: a zero input of the first input's shape (None -> 1).
            first = model["signatures"][0]
            shape = [d if isinstance(d, int) else 1 for d in first["shape"]]
            outs = session.run(None, {first["name"]: np.zeros(shape, dtype=np.float32)})
            return {"keys": sorted(model), "input_signatures": model["input_signatures"],
                    "signatures": model["signatures"],
                    "session_output_shapes": [list(o.shape) for o in outs]}
        outputs = self.client.predict(payload["input"], name, version)
        return {"outputs": [o.tolist() for o in outputs],
                "dtypes": [str(o.dtype) for o in outputs]}
"""


# ---- models ---------------------------------------------------------------------------------

def make_mlp(seed):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 3)).eval()


def export_mlp(model, path):
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 4), path, opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def torch_out(model, rows):
    import torch

    with torch.no_grad():
        return model(torch.tensor(rows, dtype=torch.float32)).numpy()


def save_helper_model(graph, path):
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="cortex-e2e")
    model.ir_version = 7
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def diff_model(path):
    """Two named inputs a and b, float [None, 3]; output d = a - b (the order shows the names)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Sub", ["a", "b"], ["d"])], "diff",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 3]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [None, 3])])
    save_helper_model(graph, path)


def neg_model(path):
    """One input x, double [2, 3] (fixed: flat lists are reshaped); output y = -x."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])], "neg",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 3])])
    save_helper_model(graph, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Every model of the module, built once: {"root", "mlp1", "mlp2"} (torch modules)."""
    root = str(tmp_path_factory.mktemp("onnx-models"))
    mlp1, mlp2 = make_mlp(0), make_mlp(1)
    export_mlp(mlp1, f"{root}/mlp/1/model.onnx")
    export_mlp(mlp2, f"{root}/mlp/2/nested/mlp-v2.onnx")  # one *.onnx, in a subdirectory
    diff_model(f"{root}/diff/model.onnx")  # not versioned: version 1
    neg_model(f"{root}/neg/1/neg.onnx")
    # A corrupt model with the right name, next to a good one.
    os.makedirs(f"{root}/broken/1")
    with open(f"{root}/broken/1/model.onnx", "wb") as f:
        f.write(b"\x08\x07this is not a protobuf of an ONNX model\xff\xff\xff")
    return {"root": root, "mlp1": mlp1, "mlp2": mlp2}


# ---- the module's cluster -------------------------------------------------------------------

CLUSTER_ENV = POLL_ENV  # the module's cluster polls its models fast


@pytest.fixture
def oc(module_cluster):
    """The module's cluster."""
    return module_cluster


def onnx_yaml(name, models_yaml, kind="RealtimeAPI", extra=""):
    text = (f"- name: {name}\n"
            f"  kind: {kind}\n"
            f"  predictor:\n"
            f"    type: onnx\n"
            f"    path: predictor.py\n")
    text += "".join(f"    {line}\n" for line in models_yaml.strip("\n").splitlines())
    text += "".join(f"  {line}\n" for line in extra.strip("\n").splitlines() if line)
    return text


def deploy_onnx(c, name, models_yaml, predictor=PREDICTOR, extra="", timeout=60):
    project = c.project(name, {"cortex.yaml": onnx_yaml(name, models_yaml, extra=extra),
                               "predictor.py": predictor})
    c.deploy_ok(project)

    def settled():  # live, or failing: a replica that cannot start fails the test at once
        code = c.status_code(name)
        if code in ("status_error", "status_oom"):
            pytest.fail(f"{name} is {code}:\n{c.api_log(name)[-3000:]}")
        return code == "status_live"
    c.wait_until(settled, timeout, interval=0.2, message=f"{name} to be live or failing")
    c.wait_live(name, timeout=timeout)


def predict_ok(c, name, payload):
    r = c.post(name, payload, timeout=60)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()


def error_of(r):
    try:
        return r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return r.text


def paths_yaml(root, *names):
    return "models:\n  paths:\n" + "".join(
        f"    - {{name: {n}, model_path: {root}/{n}}}\n" for n in names)


# ---- (a), (c), (d): one MLP as model_path -----------------------------------------------------

def test_mlp_exported_with_torch_answers_as_torch_does(oc, models):
    root = models["root"]
    name = "onnx-mlp-single"
    deploy_onnx(oc, name, f"model_path: {root}/mlp")
    mlp2 = models["mlp2"]  # model_path serves the latest version: 2

    rng = np.random.default_rng(7)
    one = rng.normal(size=(1, 4)).round(4).tolist()
    four = rng.normal(size=(4, 4)).round(4).tolist()
    for rows in (one, four):
        answer = predict_ok(oc, name, {"input": rows})
        assert answer["dtypes"] == ["float32"], answer
        got = np.array(answer["outputs"][0])
        assert got.shape == (len(rows), 3), got.shape
        np.testing.assert_allclose(got, torch_out(mlp2, rows), atol=TOL, rtol=TOL)
    # A flat list of 4 numbers: reshaped to [-1, 4] (one unknown dimension), and ints are cast.
    answer = predict_ok(oc, name, {"input": [1, 2, 3, 4]})
    np.testing.assert_allclose(answer["outputs"][0], torch_out(mlp2, [[1, 2, 3, 4]]), atol=TOL,
                               rtol=TOL)
    # The model's name is ignored with model_path; version 1 is still there.
    answer = predict_ok(oc, name, {"input": four, "model": "whatever", "version": "1"})
    np.testing.assert_allclose(answer["outputs"][0], torch_out(models["mlp1"], four), atol=TOL,
                               rtol=TOL)

    # A shape that cannot be reshaped: Cortex's conversion message, not a crash.
    r = oc.post(name, {"input": [1, 2, 3]})
    assert r.status_code >= 400, r.text
    assert "failed to convert to numpy array for model '_cortex_default'" in error_of(r), r.text

    # (c) get_model: {session, signatures, input_signatures}; the session runs.
    model = predict_ok(oc, name, {"what": "model"})
    assert model["keys"] == ["input_signatures", "session", "signatures"], model
    assert model["input_signatures"] == {"input": {"shape": [None, 4], "type": "tensor(float)"}}
    assert model["signatures"] == [{"name": "input", "shape": [None, 4],
                                    "type": "tensor(float)"}], model
    assert model["session_output_shapes"] == [[1, 3]], model

    # (d) GET: the summary with versions, timestamps and input signatures per version.
    r = oc.http.get(oc.url(name), timeout=30)
    assert r.status_code == 200, r.text
    meta = r.json()["model_metadata"]
    assert list(meta) == ["_cortex_default"], meta
    default = meta["_cortex_default"]
    assert default["versions"] == ["1", "2"], default
    assert len(default["timestamps"]) == 2, default
    signature = {"input": {"shape": [None, 4], "type": "tensor(float)"}}
    assert default["input_signatures"] == {"1": signature, "2": signature}, default

    log = oc.api_log(name)
    assert "model _cortex_default version 2 loaded" in log, log


# ---- (b), (e): models.paths with versions, two inputs, one input -----------------------------

def test_models_paths_names_versions_and_input_forms(oc, models):
    root = models["root"]
    name = "onnx-paths"
    deploy_onnx(oc, name, paths_yaml(root, "mlp", "diff", "neg"))
    rows = [[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0]]

    # (e) model_name and model_version choose.
    for version, torch_model in (("1", models["mlp1"]), ("2", models["mlp2"]),
                                 ("latest", models["mlp2"])):
        answer = predict_ok(oc, name, {"model": "mlp", "version": version, "input": rows})
        np.testing.assert_allclose(answer["outputs"][0], torch_out(torch_model, rows), atol=TOL,
                                   rtol=TOL)
    r = oc.post(name, {"input": rows})
    assert r.status_code >= 400 and "model_name was not specified" in error_of(r), r.text
    r = oc.post(name, {"model": "nope", "input": rows})
    assert "'nope' model wasn't found in the list of available models" in error_of(r), r.text
    r = oc.post(name, {"model": "mlp", "version": "3", "input": rows})
    assert r.status_code >= 400 and "model mlp of version 3 wasn't found" in error_of(r), r.text

    # (b) Two named inputs: a dict by name (its order does not matter).
    a, b = [[1, 2, 3], [4, 5, 6]], [[0.5, 0.5, 0.5], [10, 20, 30]]
    answer = predict_ok(oc, name, {"model": "diff", "input": {"b": b, "a": a}})
    np.testing.assert_allclose(answer["outputs"][0], np.subtract(a, b), atol=TOL)
    r = oc.post(name, {"model": "diff", "input": {"a": a}})
    assert r.status_code >= 400, r.text
    assert "missing key 'b' for model 'diff'" in error_of(r), r.text
    r = oc.post(name, {"model": "diff", "input": a})
    assert r.status_code >= 400, r.text
    assert "expected model_input to be a dictionary with keys" in error_of(r), r.text

    # One input: a bare value or {name: value}; a flat list is reshaped to the fixed [2, 3], and
    # ints become the input's dtype (double).
    flat = [1, 2, 3, 4, 5, 6]
    expected = [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]
    for model_input in (flat, {"x": flat}, [[1, 2, 3], [4, 5, 6]]):
        answer = predict_ok(oc, name, {"model": "neg", "input": model_input})
        assert answer == {"outputs": [expected], "dtypes": ["float64"]}, answer
    r = oc.post(name, {"model": "neg", "input": {"y": flat}})
    assert r.status_code >= 400 and "missing key 'x' for model 'neg'" in error_of(r), r.text

    # The metadata lists every model with its versions and input signatures.
    meta = oc.http.get(oc.url(name), timeout=30).json()["model_metadata"]
    assert sorted(meta) == ["diff", "mlp", "neg"], meta
    assert meta["mlp"]["versions"] == ["1", "2"], meta
    assert meta["diff"]["input_signatures"] == {"1": {
        "a": {"shape": [None, 3], "type": "tensor(float)"},
        "b": {"shape": [None, 3], "type": "tensor(float)"}}}, meta
    assert meta["neg"]["input_signatures"] == {"1": {
        "x": {"shape": [2, 3], "type": "tensor(double)"}}}, meta


# ---- (h): a model that fails to load ---------------------------------------------------------

def test_a_corrupt_model_fails_its_requests_and_the_others_keep_serving(oc, models):
    root = models["root"]
    name = "onnx-broken"
    deploy_onnx(oc, name, paths_yaml(root, "neg", "broken"))
    flat = [1, 2, 3, 4, 5, 6]
    assert predict_ok(oc, name, {"model": "neg", "input": flat})["outputs"] == \
        [[[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]]

    for _ in range(2):  # every request that needs it fails the same way (nothing cached)
        r = oc.post(name, {"model": "broken", "input": flat})
        assert r.status_code >= 400, r.text
        message = error_of(r)
        assert "failed (re-)loading model broken of version 1" in message, message
        # ONNX Runtime's own reason comes along (naming the replica's copy of the file).
        assert "/model.onnx failed" in message, message
        assert "Protobuf parsing failed" in message, message

    # The API is still live and the other model answers.
    assert oc.status_code(name) == "status_live"
    assert predict_ok(oc, name, {"model": "neg", "input": {"x": flat}})["outputs"] == \
        [[[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]]
    # GET still answers: the broken model is listed, without signatures.
    r = oc.http.get(oc.url(name), timeout=30)
    assert r.status_code == 200, r.text
    meta = r.json()["model_metadata"]
    assert meta["broken"]["versions"] == ["1"] and meta["broken"]["input_signatures"] == {}, meta
    assert meta["neg"]["input_signatures"]["1"] == {"x": {"shape": [2, 3],
                                                          "type": "tensor(double)"}}, meta
    log = oc.api_log(name)
    assert "model broken version 1 failed to load" in log, log


# ---- (g): a BatchAPI job whose ONNXPredictor uses a model ------------------------------------

BATCH_PREDICTOR = """
import json
import os


class ONNXPredictor:
    def __init__(self, onnx_client, config, job_spec):
        self.client = onnx_client
        self.out = os.path.join(config["out_dir"], job_spec["job_id"])
        os.makedirs(self.out, exist_ok=True)

    def predict(self, payload, batch_id):
        outputs = self.client.predict(payload)[0]
        tmp = os.path.join(self.out, f".tmp-{batch_id}")
        with open(tmp, "w") as f:
            json.dump({"inputs": payload, "outputs": outputs.tolist()}, f)
        os.rename(tmp, os.path.join(self.out, f"batch-{batch_id}.json"))
"""


def test_batch_job_with_an_onnx_model(oc, models):
    root = models["root"]
    name = "onnx-batch"
    out_dir = os.path.join(oc.root, "out", name)
    os.makedirs(out_dir)
    yaml = onnx_yaml(name, f"model_path: {root}/mlp\nconfig: {json.dumps({'out_dir': out_dir})}",
                     kind="BatchAPI")
    oc.deploy_ok(oc.project(name, {"cortex.yaml": yaml, "predictor.py": BATCH_PREDICTOR}))
    url = oc.url(name)
    oc.wait_until(lambda: oc.http.get(url, timeout=5).status_code == 401, 15, interval=0.05,
                  message=f"the gateway to route /{name}")

    rng = np.random.default_rng(11)
    items = rng.normal(size=(10, 4)).round(4).tolist()
    r = oc.http.post(url, json={"workers": 1, "item_list": {"items": items, "batch_size": 4}},
                     timeout=60)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]

    def done():
        status = oc.http.get(url, params={"jobID": job_id}, timeout=30).json()["job_status"]
        return status if status["status"] in TERMINAL else None
    status = oc.wait_until(done, 90, interval=0.2, message=f"job {job_id} to end")
    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == 3, status

    job_dir = os.path.join(out_dir, job_id)
    records = []
    for entry in sorted(os.listdir(job_dir)):
        assert entry.startswith("batch-") and entry.endswith(".json"), entry
        with open(os.path.join(job_dir, entry)) as f:
            records.append(json.load(f))
    assert sorted(len(rec["inputs"]) for rec in records) == [2, 4, 4], records
    seen = []
    for rec in records:
        np.testing.assert_allclose(rec["outputs"], torch_out(models["mlp2"], rec["inputs"]),
                                   atol=TOL, rtol=TOL)
        seen += rec["inputs"]
    assert sorted(seen) == sorted(items)


# ---- (f): ONNX Runtime's threads follow compute.cpu ------------------------------------------

# Records the intra_op_threads the worker gives each session (wrapping the extension's Session
# before the first model loads), and counts the threads a loaded session adds to the process.
THREADS_PREDICTOR = """
import os

import _cortex_onnx

_real_session = _cortex_onnx.Session
_created = []


def _recording_session(path, intra_op_threads=1):
    before = len(os.listdir("/proc/self/task"))
    session = _real_session(path, intra_op_threads=intra_op_threads)
    _created.append({"intra_op_threads": intra_op_threads,
                     "new_threads": len(os.listdir("/proc/self/task")) - before})
    return session


_cortex_onnx.Session = _recording_session


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload):
        self.client.get_model()
        return {"sessions": _created}
"""


def test_compute_cpu_sets_the_intra_op_threads(cluster_factory, models):
    # cpu: 2 needs the whole of a 2-core machine: a cluster of its own.
    c = cluster_factory(start=False)
    c.env.update(POLL_ENV)
    c.start()
    root = models["root"]
    cpu = min(2, os.cpu_count() or 1)
    # The machine's whole CPU for one API: the small one goes away first.
    deploy_onnx(c, "onnx-threads-small", f"model_path: {root}/neg",
                predictor=THREADS_PREDICTOR, extra="compute:\n  cpu: 20m")
    small = predict_ok(c, "onnx-threads-small", {})["sessions"]
    assert [s["intra_op_threads"] for s in small] == [1], small
    c.cli_ok("delete", "onnx-threads-small")
    c.wait_until(lambda: c.list_apis() == [], 30, interval=0.2, message="the delete")
    deploy_onnx(c, "onnx-threads", f"model_path: {root}/neg", predictor=THREADS_PREDICTOR,
                extra=f"compute:\n  cpu: {cpu}")
    big = predict_ok(c, "onnx-threads", {})["sessions"]
    assert [s["intra_op_threads"] for s in big] == [cpu], big
    # ONNX Runtime's intra-op pool has threads - 1 workers (the caller is the other one): the
    # first session of a worker with 2 threads starts one thread more than one with 1.
    assert big[0]["new_threads"] >= small[0]["new_threads"] + cpu - 1, (big, small)
