"""Models end to end: model_path and models (paths, dir) from local directories, the layout rules
at deploy, python_client.get_model with names and versions, and live reloading while traffic runs.

The models are small files the tests write themselves (a text "model", and a scikit-learn pickle).
Clusters poll their model sources every 0.5 s here (CORTEX_MODEL_POLL_S) and workers watch their
manifest every 0.1 s (CORTEX_MODEL_WATCH_S), so reloads are seen within a second or two.
"""

import concurrent.futures
import json
import os
import shutil
import threading
import time

import pytest

from conftest import api_yaml, write_files

POLL_S = 0.5

TEXT_MODEL_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        with open(model_path + "/value.txt") as f:
            return f.read().strip()

    def predict(self, payload):
        name = payload.get("model")
        version = payload.get("version", "latest")
        return {"value": self.client.get_model(name, version)}
"""


@pytest.fixture
def model_cluster(cluster_factory):
    c = cluster_factory(start=False)
    c.env["CORTEX_MODEL_POLL_S"] = str(POLL_S)
    c.env["CORTEX_MODEL_WATCH_S"] = "0.1"
    return c.start()


def write_model(root, rel, value):
    """A text model: <root>/<rel>/value.txt, written aside and renamed into place."""
    final = os.path.join(root, rel)
    staging = final.rstrip("/") + ".staging"
    write_files(staging, {"value.txt": value})
    os.makedirs(os.path.dirname(final), exist_ok=True)
    os.rename(staging, final)


def models_yaml(name, models):
    return api_yaml(name, predictor_extra=models)


def text_model_project(cluster, name, store):
    """A project serving the text model at `store` as its model_path."""
    return cluster.project(name, {
        "cortex.yaml": models_yaml(name, f"model_path: {store}"),
        "predictor.py": TEXT_MODEL_PREDICTOR,
    })


def test_models_paths_versions_get_model_and_metadata(model_cluster, tmp_path):
    store = str(tmp_path / "store")
    write_model(store, "a/1", "a-one")
    write_model(store, "a/2", "a-two")
    write_model(store, "b", "b-plain")  # not versioned: version 1
    name = "text-models"
    project = model_cluster.project(name, {
        "cortex.yaml": models_yaml(name, f"""
            models:
              paths:
                - {{name: a, model_path: {store}/a}}
                - {{name: b, model_path: {store}/b}}
            """),
        "predictor.py": TEXT_MODEL_PREDICTOR,
    })
    model_cluster.deploy_ok(project)
    model_cluster.wait_live(name, timeout=60)

    assert model_cluster.post(name, {"model": "a"}).json() == {"value": "a-two"}
    assert model_cluster.post(name, {"model": "a", "version": "1"}).json() == {"value": "a-one"}
    assert model_cluster.post(name, {"model": "b"}).json() == {"value": "b-plain"}

    missing = model_cluster.post(name, {"model": "a", "version": "7"})
    assert missing.status_code >= 400
    assert "model a of version 7 wasn't found" in missing.text
    unnamed = model_cluster.post(name, {})
    assert unnamed.status_code >= 400 and "model_name was not specified" in unnamed.text
    unknown = model_cluster.post(name, {"model": "zzz"})
    assert "'zzz' model wasn't found in the list of available models" in unknown.text

    summary = model_cluster.http.get(model_cluster.url(name), timeout=10).json()
    assert summary["model_metadata"]["a"]["versions"] == ["1", "2"]
    assert summary["model_metadata"]["b"]["versions"] == ["1"]
    assert len(summary["model_metadata"]["a"]["timestamps"]) == 2

    log = model_cluster.api_log(name)
    assert "model a version 2 downloaded" in log
    assert "model a version 2 loaded" in log

    # cortex get API: Cortex's model table, from the same GET.
    out = model_cluster.cli_ok("get", name)
    rows = [line.split() for line in out.splitlines()]
    assert ["model", "name", "model", "version", "edit", "time"] in rows, out
    assert any(r[:2] == ["a", "1"] for r in rows), out
    assert any(r[:3] == ["a", "2", "(latest)"] for r in rows), out
    assert any(r[:3] == ["b", "1", "(latest)"] for r in rows), out


def test_a_sklearn_pickle_as_model_path(model_cluster, tmp_path):
    import pickle

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=200).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    os.makedirs(tmp_path / "iris" / "1")
    with open(tmp_path / "iris" / "1" / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    name = "sk-model"
    project = model_cluster.project(name, {
        "cortex.yaml": models_yaml(name, f"model_path: {tmp_path}/iris"),
        "predictor.py": """
            import pickle

            class PythonPredictor:
                def __init__(self, config, python_client):
                    self.client = python_client

                def load_model(self, model_path):
                    with open(model_path + "/model.pkl", "rb") as f:
                        return pickle.load(f)

                def predict(self, payload):
                    return {"label": int(self.client.get_model().predict([[payload["x"]]])[0])}
            """,
    })
    model_cluster.deploy_ok(project)
    model_cluster.wait_live(name, timeout=60)
    assert model_cluster.post(name, {"x": 0.1}).json() == {"label": 0}
    assert model_cluster.post(name, {"x": 2.9}).json() == {"label": 1}


@pytest.mark.parametrize("layout,expected", [
    ({"1/value.txt": "v", "stray.txt": "x"}, "version directories and other files are mixed"),
    ({}, "dir not found or insufficient permissions"),
])
def test_a_bad_layout_fails_the_deploy_naming_the_path(model_cluster, tmp_path, layout, expected):
    store = tmp_path / "bad"
    if layout:
        write_files(str(store), layout)
    name = "bad-layout"
    project = text_model_project(model_cluster, name, store)
    rc, out, err = model_cluster.deploy(project)
    assert rc != 0
    assert f"bad-layout (RealtimeAPI): predictor: model_path: {store}" in out + err
    assert expected in out + err
    assert model_cluster.list_apis() == []


def test_onnx_needs_one_onnx_file_and_tensorflow_is_refused(model_cluster, tmp_path):
    write_files(str(tmp_path / "onnx"), {"1/weights.bin": "x"})
    project = model_cluster.project("o", {
        "cortex.yaml": f"""
            - name: o
              kind: RealtimeAPI
              predictor: {{type: onnx, path: predictor.py, model_path: {tmp_path}/onnx}}
            """,
        "predictor.py": "class ONNXPredictor:\n    pass\n",
    })
    rc, out, err = model_cluster.deploy(project)
    assert rc != 0 and "invalid ONNX model path" in out + err
    assert "version 1 has 0 *.onnx files; exactly one is needed" in out + err

    project = model_cluster.project("t", {
        "cortex.yaml": """
            - name: t
              kind: RealtimeAPI
              predictor: {type: tensorflow, path: predictor.py, model_path: s3://bucket/tf}
            """,
        "predictor.py": "class TensorFlowPredictor:\n    pass\n",
    })
    rc, out, err = model_cluster.deploy(project)
    assert rc != 0
    assert "tensorflow predictors cannot run on this platform" in out + err
    assert "export the model to ONNX" in out + err


def test_a_new_version_is_served_within_two_polls_with_no_failed_request(model_cluster, tmp_path):
    store = str(tmp_path / "live")
    write_model(store, "1", "one")
    name = "live-models"
    project = text_model_project(model_cluster, name, store)
    model_cluster.deploy_ok(project)
    model_cluster.wait_live(name, timeout=60)
    assert model_cluster.post(name, {}).json() == {"value": "one"}

    answers, failures = [], []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            r = model_cluster.post(name, {}, timeout=10)
            if r.status_code != 200:
                failures.append((r.status_code, r.text))
            else:
                answers.append((time.monotonic(), r.json()["value"]))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = [pool.submit(traffic) for _ in range(2)]
        time.sleep(0.5)
        uploaded = time.monotonic()
        write_model(store, "2", "two")
        try:
            model_cluster.wait_until(lambda: answers and answers[-1][1] == "two", timeout=20,
                                     message="version 2 answering")
            served = next(t for t, v in answers if v == "two" and t > uploaded)
            time.sleep(0.5)
            shutil.rmtree(os.path.join(store, "2"))
            model_cluster.wait_until(lambda: answers[-1][1] == "one", timeout=20,
                                     message="version 1 answering again after 2 was removed")
        finally:
            stop.set()
            for f in running:
                f.result(timeout=30)
    assert failures == []
    # Within two polls of the source, plus the worker's manifest watch and the load itself.
    assert served - uploaded < 2 * POLL_S + 1.5, served - uploaded
    summary = model_cluster.http.get(model_cluster.url(name), timeout=10).json()
    assert summary["model_metadata"]["_cortex_default"]["versions"] == ["1"]
    log = model_cluster.api_log(name)
    assert "model _cortex_default version 2 is available" in log
    assert "model _cortex_default version 2 was removed upstream" in log


def test_caching_three_models_with_cache_size_two_never_holds_three(model_cluster, tmp_path):
    store = str(tmp_path / "cached")
    for m in ("a", "b", "c"):
        write_model(store, m, f"{m}-value")
    name = "cached-models"
    project = model_cluster.project(name, {
        "cortex.yaml": models_yaml(name, f"""
            models:
              paths:
                - {{name: a, model_path: {store}/a}}
                - {{name: b, model_path: {store}/b}}
                - {{name: c, model_path: {store}/c}}
              cache_size: 2
              disk_cache_size: 2
            """),
        "predictor.py": TEXT_MODEL_PREDICTOR,
    })
    model_cluster.deploy_ok(project)
    model_cluster.wait_live(name, timeout=60)
    private = os.path.join(model_cluster.cluster_dir, "models", "replicas")
    most_on_disk = 0
    for m in ["a", "b", "c", "a", "c", "b", "b", "a"]:
        r = model_cluster.post(name, {"model": m}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"value": f"{m}-value"}
        on_disk = sum(len([d for d in os.listdir(os.path.join(private, rep))
                           if not d.startswith(".tmp-")]) for rep in os.listdir(private))
        most_on_disk = max(most_on_disk, on_disk)
    assert most_on_disk <= 2

    # What the worker held in memory, replayed from its log.
    held, most_held = set(), 0
    for line in model_cluster.api_log(name).splitlines():
        for m in ("a", "b", "c"):
            if f"model {m} version 1 loaded" in line:
                held.add(m)
            elif f"model {m} version 1 unloaded" in line:
                held.discard(m)
        most_held = max(most_held, len(held))
    assert most_held == 2
    log = model_cluster.api_log(name)
    assert "evicted from the cache" in log
    assert "evicted from the disk cache" in log


def test_a_replica_that_cannot_fetch_its_model_is_an_error_with_the_reason_in_the_logs(
        model_cluster, tmp_path):
    import signal

    store = str(tmp_path / "vanishing")
    write_model(store, "1", "one")
    name = "vanishing-model"
    project = text_model_project(model_cluster, name, store)
    model_cluster.deploy_ok(project)
    replica = model_cluster.wait_live(name, timeout=60)["replicas"][0]
    # The model goes away, then the replica dies: its successor cannot start without it.
    shutil.rmtree(store)
    os.killpg(replica["pid"], signal.SIGKILL)
    reason = (f"cannot fetch the models: predictor: model_path: {store}: dir not found or "
              "insufficient permissions; failed to start api")
    model_cluster.wait_until(lambda: reason in model_cluster.api_log(name), timeout=60,
                             interval=0.2, message="the restarted replica's reason in the log")
    model_cluster.wait_reconcile_passes(2)
    assert model_cluster.status_code(name) == "status_error"
    assert model_cluster.post(name, {}).status_code == 503
