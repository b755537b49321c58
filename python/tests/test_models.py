"""In-process tests of the model registry and the python/onnx clients (spec section 5)."""

import json
import os
import threading
import time
import weakref

import pytest

from cortex_runtime import loader, models
from cortex_runtime.models import ModelError, ModelRegistry

WAIT = 5.0


class Manifest:
    """A manifest file the test rewrites atomically, as the replica front does."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "manifest.json")
        self.root = tmp_path / "models"
        self.generation = 0
        self.models = {}

    def version_dir(self, name, version, tag=""):
        d = self.root / f"{name}-{version}{tag}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.txt").write_text(f"{name}:{version}{tag}")
        return str(d)

    def set(self, name, version, tag="", timestamp=1000):
        self.models.setdefault(name, {})[str(version)] = {
            "path": self.version_dir(name, version, tag), "timestamp": timestamp}
        return self

    def remove(self, name, version=None):
        if version is None:
            del self.models[name]
        else:
            del self.models[name][str(version)]
        return self

    def write(self):
        self.generation += 1
        doc = {"generation": self.generation,
               "models": {n: {"versions": v} for n, v in self.models.items()}}
        with open(self.path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(self.path + ".tmp", self.path)
        return self


class Model:
    def __init__(self, text):
        self.text = text


class Loader:
    """A load function that records calls and can block some paths until released."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.gates = {}  # text -> Event that the load waits for
        self.started = {}  # text -> Event set when the load has started
        self.fail = set()
        self.alive = 0
        self.max_alive = 0

    def gate(self, text):
        self.gates[text] = threading.Event()
        self.started[text] = threading.Event()
        return self.gates[text]

    def _gone(self):
        with self.lock:
            self.alive -= 1

    def __call__(self, path):
        with open(os.path.join(path, "model.txt")) as f:
            text = f.read()
        with self.lock:
            self.calls.append(text)
            self.alive += 1  # a load in progress counts as held memory
            self.max_alive = max(self.max_alive, self.alive)
        try:
            if text in self.started:
                self.started[text].set()
            if text in self.gates:
                assert self.gates[text].wait(WAIT)
            if text in self.fail:
                raise ValueError(f"cannot load {text}")
        except BaseException:
            self._gone()
            raise
        model = Model(text)
        weakref.finalize(model, self._gone)
        return model


@pytest.fixture
def manifest(tmp_path):
    return Manifest(tmp_path)


@pytest.fixture
def logs():
    return []


def make_registry(manifest, load, logs, **kw):
    kw.setdefault("watch", False)
    return ModelRegistry(manifest.path, load, log=logs.append, **kw)


def wait_for(predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_lazy_load_and_hits(manifest, logs):
    manifest.set("m", 1).set("m", 2).write()
    load = Loader()
    reg = make_registry(manifest, load, logs)
    assert load.calls == []
    assert reg.get("m").text == "m:2"
    assert reg.get("m", "latest").text == "m:2"
    assert reg.get("m", "1").text == "m:1"
    assert load.calls == ["m:2", "m:1"]
    stats = reg.stats()
    assert (stats["hits"], stats["misses"], stats["loaded"]) == (1, 2, 2)
    assert "model m version 2 loaded" in logs
    assert reg.metadata() == {"m": {"versions": ["1", "2"], "timestamps": [1000, 1000]}}


def test_explicit_version_first_does_not_pin_latest(manifest, logs):
    manifest.set("m", 1).set("m", 2).write()
    load = Loader()
    gate = load.gate("m:2")
    gate.set()
    reg = make_registry(manifest, load, logs)
    assert reg.get("m", "1").text == "m:1"
    assert reg.get("m").text == "m:2"


def test_one_load_per_key_and_other_models_do_not_wait(manifest, logs):
    manifest.set("a", 1).set("b", 1).write()
    load = Loader()
    gate = load.gate("a:1")
    reg = make_registry(manifest, load, logs)
    results = []
    threads = [threading.Thread(target=lambda: results.append(reg.get("a").text))
               for _ in range(4)]
    for t in threads:
        t.start()
    assert load.started["a:1"].wait(WAIT)
    assert reg.get("b").text == "b:1"  # not blocked by a's load
    gate.set()
    for t in threads:
        t.join(WAIT)
    assert results == ["a:1"] * 4
    assert load.calls.count("a:1") == 1


def test_new_version_loads_in_background_and_latest_switches_when_ready(manifest, logs):
    manifest.set("m", 1).write()
    load = Loader()
    reg = make_registry(manifest, load, logs)
    assert reg.get("m").text == "m:1"
    gate = load.gate("m:2")
    manifest.set("m", 2).write()
    assert reg.refresh()
    assert load.started["m:2"].wait(WAIT)
    # While version 2 loads, requests keep getting version 1 without waiting.
    for _ in range(20):
        started = time.monotonic()
        assert reg.get("m").text == "m:1"
        assert time.monotonic() - started < 0.5
    assert reg.resolve_version("m") == "1"
    gate.set()
    assert reg.wait_idle()
    assert reg.get("m").text == "m:2"
    assert reg.get("m", "1").text == "m:1"  # still listed, still loaded
    assert "model m version 2 loaded" in logs


def test_changed_path_reloads_in_background(manifest, logs):
    manifest.set("m", 1).write()
    load = Loader()
    reg = make_registry(manifest, load, logs)
    assert reg.get("m").text == "m:1"
    gate = load.gate("m:1b")
    manifest.set("m", 1, tag="b").write()
    reg.refresh()
    assert load.started["m:1b"].wait(WAIT)
    assert reg.get("m").text == "m:1"
    assert reg.get("m", "1").text == "m:1"
    gate.set()
    assert reg.wait_idle()
    assert reg.get("m").text == "m:1b"
    assert reg.stats()["loaded"] == 1


def test_removed_versions_and_models_are_unloaded(manifest, logs):
    manifest.set("m", 1).set("m", 2).set("n", 1).write()
    load = Loader()
    reg = make_registry(manifest, load, logs)
    reg.get("m", "1"), reg.get("m", "2"), reg.get("n")
    manifest.remove("m", 2).remove("n").write()
    reg.refresh()
    assert reg.wait_idle()
    assert reg.loaded_versions() == [("m", "1")]
    assert reg.get("m").text == "m:1"
    assert "model m version 2 unloaded" in logs and "model n version 1 unloaded" in logs
    with pytest.raises(models.ModelNotFound, match="model m of version 2 wasn't found"):
        reg.get("m", "2")
    with pytest.raises(models.ModelNotFound, match="'n' model wasn't found"):
        reg.get("n")
    manifest.models["m"] = {}
    manifest.write()
    reg.refresh()
    with pytest.raises(ModelError, match="'m' model's versions have been removed"):
        reg.get("m")


def test_load_error_leaves_nothing_registered(manifest, logs):
    manifest.set("m", 1).write()
    load = Loader()
    load.fail.add("m:1")
    reg = make_registry(manifest, load, logs)
    with pytest.raises(ModelError) as info:
        reg.get("m")
    message = str(info.value)
    assert message.startswith("failed (re-)loading model m of version 1 (thread ")
    assert message.endswith(": cannot load m:1")
    assert reg.loaded_versions() == [] and reg.stats()["load_failures"] == 1
    assert any("model m version 1 failed to load: cannot load m:1" in line for line in logs)
    load.fail.clear()
    assert reg.get("m").text == "m:1"  # the next request tries again
    assert load.calls == ["m:1", "m:1"]


def test_failed_background_load_keeps_the_old_version(manifest, logs):
    manifest.set("m", 1).write()
    load = Loader()
    reg = make_registry(manifest, load, logs)
    reg.get("m")
    load.fail.add("m:2")
    manifest.set("m", 2).write()
    reg.refresh()
    assert reg.wait_idle()
    assert reg.get("m").text == "m:1"
    assert load.calls.count("m:2") == 1  # not retried on every request
    with pytest.raises(ModelError, match="failed \\(re-\\)loading model m of version 2"):
        reg.get("m", "2")


def test_watcher_thread_picks_up_changes(manifest, logs):
    manifest.set("m", 1).write()
    load = Loader()
    reg = make_registry(manifest, load, logs, watch=True, watch_s=0.01)
    try:
        reg.get("m")
        manifest.set("m", 2).write()
        assert wait_for(lambda: reg.resolve_version("m") == "2")
        assert reg.get("m").text == "m:2"
        manifest.remove("m", 1).write()
        assert wait_for(lambda: reg.loaded_versions() == [("m", "2")])
    finally:
        reg.close()


def test_watch_interval_from_environment(manifest, logs, monkeypatch):
    manifest.set("m", 1).write()
    monkeypatch.setenv("CORTEX_MODEL_WATCH_S", "0.25")
    assert make_registry(manifest, Loader(), logs).watch_s == 0.25
    monkeypatch.delenv("CORTEX_MODEL_WATCH_S")
    assert make_registry(manifest, Loader(), logs).watch_s == 1.0


def test_cache_never_holds_more_than_cache_size(manifest, logs):
    for name in ("a", "b", "c"):
        manifest.set(name, 1)
    manifest.write()
    load = Loader()
    reg = make_registry(manifest, load, logs, cache_size=2)
    errors = []

    def worker(names):
        try:
            for _ in range(15):
                for name in names:
                    assert reg.get(name).text == f"{name}:1"
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(order,))
               for order in ("abc", "cab", "bca")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert load.max_alive <= 2, load.max_alive
    assert load.max_alive == 2
    stats = reg.stats()
    assert stats["loaded"] <= 2 and stats["evictions"] >= 1
    assert stats["hits"] + stats["misses"] == 3 * 15 * 3
    assert any("unloaded (evicted from the cache)" in line for line in logs)


def test_cache_evicts_least_recently_used(manifest, logs):
    for name in ("a", "b", "c"):
        manifest.set(name, 1)
    manifest.write()
    load = Loader()
    reg = make_registry(manifest, load, logs, cache_size=2)
    reg.get("a"), reg.get("b"), reg.get("a")
    reg.get("c")  # evicts b, the least recently used
    assert reg.loaded_versions() == [("a", "1"), ("c", "1")]
    # Caching mode: latest is the highest version, loaded on demand on the request path.
    manifest.set("a", 2).write()
    reg.refresh()
    assert reg.get("a").text == "a:2"
    assert reg.stats()["loaded"] == 2


# -- clients -----------------------------------------------------------------------------------

def paths_spec(*names):
    return {"predictor": {"type": "python",
                          "models": {"paths": [{"name": n, "model_path": f"s3://b/{n}"}
                                               for n in names]}}}


def test_python_client_errors(manifest, logs):
    manifest.set("a", 1).set("b", 1).set("b", 2).write()
    reg = make_registry(manifest, Loader(), logs)
    client = models.PythonClient(reg, paths_spec("a", "b"))
    assert client.get_model("b").text == "b:2"
    assert client.get_model("b", "1").text == "b:1"
    with pytest.raises(ModelError) as info:
        client.get_model()
    assert str(info.value) == ("model_name was not specified, choose one of the following: "
                               "['a', 'b']")
    with pytest.raises(ModelError) as info:
        client.get_model("zz")
    assert str(info.value) == "'zz' model wasn't found in the list of available models"
    with pytest.raises(ModelError) as info:
        client.get_model("a", "7")
    assert str(info.value) == "model a of version 7 wasn't found"
    for bad in ("v1", "-1", "1.0", 1):
        with pytest.raises(ModelError) as info:
            client.get_model("a", bad)
        assert str(info.value) == ("model_version must be either a parse-able numeric value or "
                                   "'latest'")


def test_python_client_model_path_ignores_the_name(manifest, logs):
    manifest.set(models.SINGLE_MODEL_NAME, 1).write()
    reg = make_registry(manifest, Loader(), logs)
    client = models.PythonClient(reg, {"predictor": {"model_path": "s3://b/m"}})
    assert client.get_model().text == "_cortex_default:1"
    assert client.get_model("anything").text == "_cortex_default:1"
    with pytest.raises(ModelError, match="model _cortex_default of version 3 wasn't found"):
        client.get_model(model_version="3")


def test_python_client_models_dir(manifest, logs):
    manifest.set("x", 1).set("y", 1).write()
    reg = make_registry(manifest, Loader(), logs)
    client = models.PythonClient(reg, {"predictor": {"models": {"dir": "s3://b/models"}}})
    assert client.get_model("y").text == "y:1"
    with pytest.raises(ModelError) as info:
        client.get_model()
    assert str(info.value) == ("model_name was not specified, choose one of the following: "
                               "['x', 'y']")
    with pytest.raises(ModelError, match="'z' model wasn't found in the list of available"):
        client.get_model("z")


class FakeSession:
    instances = []

    def __init__(self, path, intra_op_threads=1):
        self.path = path
        self.threads = intra_op_threads
        self.runs = []
        FakeSession.instances.append(self)

    def inputs(self):
        return [{"name": "x", "shape": [None, 2], "type": "tensor(float)"}]

    def run(self, output_names, feeds):
        self.runs.append((output_names, feeds))
        return [feeds["x"] * 2]


def test_onnx_client(manifest, logs, tmp_path):
    np = pytest.importorskip("numpy")
    manifest.set("m", 1).write()
    nested = tmp_path / "models" / "m-1" / "sub"
    nested.mkdir()
    (nested / "model.onnx").write_bytes(b"onnx")
    reg = make_registry(manifest, models.onnx_loader(3, FakeSession), logs)
    seen = []

    def prepare_feeds(input_signatures, model_input, model_name):
        seen.append((input_signatures, model_name))
        return {"x": np.asarray(model_input, dtype=np.float32).reshape(-1, 2)}

    client = models.ONNXClient(reg, {"predictor": {"type": "onnx", "model_path": "s3://b/m"}},
                               prepare_feeds)
    with pytest.raises(ModelError, match="model _cortex_default of version 1 wasn't found"):
        client.predict([1, 2], model_version="1")
    reg2 = make_registry(manifest, models.onnx_loader(3, FakeSession), logs)
    client = models.ONNXClient(reg2, paths_spec("m"), prepare_feeds)
    out = client.predict([1, 2], "m")
    assert [a.tolist() for a in out] == [[[2.0, 4.0]]]
    assert seen == [({"x": {"shape": [None, 2], "type": "tensor(float)"}}, "m")]
    model = client.get_model("m")
    assert set(model) == {"session", "signatures", "input_signatures"}
    session = model["session"]
    assert session.path == str(nested / "model.onnx") and session.threads == 3
    assert session.runs[0][0] is None
    assert client.input_signatures() == {
        "m": {"1": {"x": {"shape": [None, 2], "type": "tensor(float)"}}}}
    assert models.model_metadata(reg2, client) == {"m": {
        "versions": ["1"], "timestamps": [1000],
        "input_signatures": {"1": {"x": {"shape": [None, 2], "type": "tensor(float)"}}}}}


def test_onnx_loader_needs_exactly_one_file(manifest, logs, tmp_path):
    manifest.set("m", 1).write()
    reg = make_registry(manifest, models.onnx_loader(1, FakeSession), logs)
    with pytest.raises(ModelError, match="expected exactly one \\*.onnx file, found 0"):
        reg.get("m")


@pytest.mark.parametrize("cpu,processes,threads", [
    ("200m", 1, 1), ("1", 1, 1), ("2.5", 1, 2), (4, 2, 2), ("3", 2, 1), ("8000m", 3, 2),
    (0.5, 1, 1),
])
def test_intra_op_threads(cpu, processes, threads):
    spec = {"compute": {"cpu": cpu}, "predictor": {"processes_per_replica": processes}}
    assert models.intra_op_threads(spec) == threads


def test_build_clients(manifest, logs):
    manifest.set("_cortex_default", 1).write()
    assert models.build_clients({"predictor": {"type": "python"}}) == (None, {})
    spec = {"predictor": {"type": "onnx", "model_path": "m", "models": None},
            "models_manifest": manifest.path}
    reg, clients = models.build_clients(spec, watch=False)
    assert list(clients) == ["onnx_client"] and reg.cache_size is None
    spec = {"predictor": {"type": "python", "models": {"dir": "d", "cache_size": 2}},
            "models_manifest": manifest.path}
    reg, clients = models.build_clients(spec, watch=False)
    assert list(clients) == ["python_client"] and reg.cache_size == 2
    with pytest.raises(loader.UserError, match="no models_manifest"):
        models.build_clients({"predictor": {"type": "python", "model_path": "m"}})


# -- class validation --------------------------------------------------------------------------

def validate(cls, **predictor):
    predictor.setdefault("path", "predictor.py")
    return loader.validate_predictor_class(cls, {"predictor": predictor})


def test_python_predictor_with_models_needs_load_model_and_python_client():
    class NoLoad:
        def __init__(self, config, python_client):
            pass

        def predict(self, payload):
            pass

    with pytest.raises(loader.UserError) as info:
        validate(NoLoad, model_path="m")
    assert 'required method "load_model" is not defined' in str(info.value)
    validate(NoLoad)  # without models neither is required

    class NoClient:
        def __init__(self, config):
            pass

        def load_model(self, model_path):
            pass

        def predict(self, payload):
            pass

    with pytest.raises(loader.UserError) as info:
        validate(NoClient, models={"dir": "d"})
    assert str(info.value).startswith(
        'error in predictor.py: class NoClient: invalid signature for method "__init__(self, '
        'config)": "python_client" is a required argument, but was not provided')

    class BadLoad(NoClient):
        def __init__(self, config, python_client):
            pass

        def load_model(self, path):
            pass

    with pytest.raises(loader.UserError, match='"model_path" is a required argument'):
        validate(BadLoad, model_path="m")

    class Good(BadLoad):
        def load_model(self, model_path):
            pass

    assert validate(Good, model_path="m")["load_model"] == ["self", "model_path"]


def test_onnx_predictor_validation():
    class Good:
        def __init__(self, config, onnx_client, job_spec):
            pass

        def predict(self, payload, query_params):
            pass

        def post_predict(self, response):
            pass

        def on_job_complete(self):
            pass

    sig = validate(Good, type="onnx", model_path="m")
    assert sig["__init__"] == ["self", "config", "onnx_client", "job_spec"]

    class NoClient:
        def __init__(self, config):
            pass

        def predict(self, payload):
            pass

    with pytest.raises(loader.UserError, match='"onnx_client" is a required argument'):
        validate(NoClient, type="onnx", model_path="m")

    class PythonClientArg(NoClient):
        def __init__(self, onnx_client, config, python_client):
            pass

    with pytest.raises(loader.UserError, match='"python_client" is not a supported argument'):
        validate(PythonClientArg, type="onnx", model_path="m")

    class WithLoadModel(NoClient):
        def __init__(self, onnx_client, config):
            pass

        def load_model(self, model_path, extra):
            pass  # not an ONNXPredictor method: not validated

    validate(WithLoadModel, type="onnx", model_path="m")


def test_predictor_class_names_and_refusals(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "predictor.py").write_text(
        "class PythonPredictor:\n    pass\n\nclass ONNXPredictor:\n    pass\n")
    spec = {"predictor": {"type": "onnx", "path": "predictor.py", "model_path": "m"}}
    assert loader.load_predictor_class(spec, str(project)).__name__ == "ONNXPredictor"
    with pytest.raises(loader.UserError, match="at least one model must be specified"):
        loader.load_predictor_class({"predictor": {"type": "onnx", "path": "predictor.py"}},
                                    str(project))
    with pytest.raises(loader.UserError, match="tensorflow predictor type is not supported"):
        loader.load_predictor_class(
            {"predictor": {"type": "tensorflow", "path": "predictor.py", "model_path": "m"}},
            str(project))
    (project / "predictor.py").write_text("class PythonPredictor:\n    pass\n")
    with pytest.raises(loader.UserError, match="ONNXPredictor class is not defined"):
        loader.load_predictor_class(spec, str(project))


def test_construct_with_models_sets_load_model(manifest):
    from cortex_runtime import worker

    manifest.set("_cortex_default", 1).write()

    class PythonPredictor:
        def __init__(self, config, python_client):
            self.client = python_client

        def load_model(self, model_path):
            return ("loaded", model_path)

        def predict(self, payload):
            return self.client.get_model()

    spec = {"predictor": {"type": "python", "path": "p.py", "model_path": "m"},
            "models_manifest": manifest.path}
    signatures = loader.validate_predictor_class(PythonPredictor, spec)
    predictor, registry, clients = worker.construct_with_models(
        PythonPredictor, signatures, spec, watch=False)  # BatchAPI: no reloading
    assert registry._watcher is None
    assert predictor.client is clients["python_client"]
    assert predictor.predict(None) == ("loaded", manifest.models["_cortex_default"]["1"]["path"])


class FakeFront:
    """Serves the wants file as the replica front does: keeps the first `disk` wanted versions
    on disk (a path in the manifest), the others not (null), and answers with wants_seq."""

    def __init__(self, manifest, disk):
        self.manifest = manifest
        self.disk = disk
        self.served = []  # the wants lists served, in order
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        seen = 0
        while not self.stop.wait(0.005):
            try:
                with open(self.manifest.path + ".wants") as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            if doc["seq"] <= seen:
                continue
            seen = doc["seq"]
            keep = [tuple(w) for w in doc["wants"]][:self.disk]
            self.served.append([tuple(w) for w in doc["wants"]])
            for name, versions in self.manifest.models.items():
                for version, entry in versions.items():
                    if (name, version) in keep:
                        entry["path"] = self.manifest.version_dir(name, version)
                    else:
                        entry["path"] = None
            self.manifest.wants_seq = seen
            self.manifest.write()


def test_cache_downloads_through_the_wants_file_and_a_failed_load_is_wanted_least(tmp_path):
    manifest = Manifest(tmp_path)
    for name in ("k", "f", "g"):
        manifest.models[name] = {"1": {"path": None, "timestamp": 1000}}
    manifest.wants_seq = 0
    original_write = manifest.write

    def write_with_seq():
        original_write()
        with open(manifest.path) as f:
            doc = json.load(f)
        doc["wants_seq"] = manifest.wants_seq
        with open(manifest.path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(manifest.path + ".tmp", manifest.path)
        return manifest

    manifest.write = write_with_seq
    manifest.write()
    front = FakeFront(manifest, disk=2)
    front.thread.start()
    load = Loader()
    load.fail.add("f:1")
    registry = ModelRegistry(manifest.path, load, cache_size=2, watch_s=0.01)
    try:
        assert registry.get("k", "1").text == "k:1"
        with pytest.raises(ModelError, match="failed"):
            registry.get("f", "1")
        assert registry.get("g", "1").text == "g:1"
        # The failed model was wanted least when g was asked for: the front kept k and g.
        assert front.served[-1][:2] == [("g", "1"), ("k", "1")]
        assert front.served[-1][-1] == ("f", "1")
        seqs = []
        with open(manifest.path + ".wants") as f:
            seqs.append(json.load(f)["seq"])
        assert seqs[0] == len(front.served)  # every wants file was served, in order
    finally:
        front.stop.set()
        registry.close()
