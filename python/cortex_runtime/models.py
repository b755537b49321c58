"""The clients a predictor gets for its models: ``python_client`` and ``onnx_client``.

Both read models through a ``ModelRegistry`` (model_registry.py) and answer Cortex v0.24's
``get_model(model_name=None, model_version="latest")`` with its messages (spec section 5);
``onnx_client.predict`` converts the input for the model's signature (onnx_inputs.py) and runs
the ONNX Runtime session (the ``_cortex_onnx`` extension).
"""

import math
import os
import threading

from .loader import UserError
from .model_registry import (SINGLE_MODEL_NAME, ModelError, ModelNotFound,  # noqa: F401
                             ModelRegistry, read_manifest)

__all__ = [
    "SINGLE_MODEL_NAME",
    "ModelError",
    "ModelNotFound",
    "ModelRegistry",
    "read_manifest",
    "PythonClient",
    "ONNXClient",
    "onnx_loader",
    "intra_op_threads",
    "parse_cpu",
    "build_clients",
    "model_metadata",
    "set_batch_run",
    "run_session",
]

# The server-side batch (onnx_batching.BatchRun) the current thread's request belongs to.
_batch = threading.local()


def set_batch_run(batch_run):
    """Makes this thread's onnx_client.predict calls part of ``batch_run`` (None: run alone)."""
    _batch.run = batch_run


def run_session(model, model_name, version, feeds):
    """Runs an ONNX model on ``feeds``, stacked with the rest of this thread's batch if any."""
    batch_run = getattr(_batch, "run", None)
    if batch_run is not None:
        return batch_run.run(model, model_name, version, feeds)
    return model["session"].run(None, feeds)


# -- clients -----------------------------------------------------------------------------------

def _models_mode(spec):
    """("single", None) | ("paths", [names]) | ("dir", None) from the predictor spec."""
    predictor = spec.get("predictor") or {}
    if predictor.get("model_path"):
        return "single", [SINGLE_MODEL_NAME]
    models = predictor.get("models") or {}
    if models.get("dir"):
        return "dir", None
    paths = models.get("paths") or []
    return "paths", [p.get("name") for p in paths if isinstance(p, dict)]


class _Client:
    def __init__(self, registry, spec):
        self._registry = registry
        self._mode, self._names = _models_mode(spec)

    def _model_name(self, model_name):
        if self._mode == "single":
            return SINGLE_MODEL_NAME  # with model_path the name is ignored
        names = self._names if self._mode == "paths" and self._names else self._registry.names()
        if model_name is None:
            raise ModelError(f"model_name was not specified, choose one of the following: "
                             f"{names}")
        if model_name not in names or not self._registry.has_model(model_name):
            raise ModelError(f"'{model_name}' model wasn't found in the list of available models")
        return model_name

    def _get(self, model_name, model_version):
        if not isinstance(model_version, str) or (model_version != "latest"
                                                  and not model_version.isnumeric()):
            raise ModelError("model_version must be either a parse-able numeric value or "
                             "'latest'")
        name = self._model_name(model_name)
        try:
            return name, self._registry.get(name, model_version)
        except ModelNotFound as e:
            if model_version == "latest":
                raise
            raise ModelError(f"model {name} of version {model_version} wasn't found") from e


class PythonClient(_Client):
    """``python_client`` of a PythonPredictor: ``get_model`` returns what ``load_model`` did."""

    def get_model(self, model_name=None, model_version="latest"):
        return self._get(model_name, model_version)[1]


def parse_cpu(value):
    """A Kubernetes CPU quantity ("200m", "1", 2.5) in cores; None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


def intra_op_threads(spec):
    """ONNX Runtime's intra-op threads: compute.cpu / processes_per_replica, at least 1."""
    predictor = spec.get("predictor") or {}
    processes = int(predictor.get("processes_per_replica") or 1)
    try:
        cpu = parse_cpu((spec.get("compute") or {}).get("cpu"))
    except ValueError:
        cpu = None
    if cpu is None:
        cpu = float(os.cpu_count() or 1)
    return max(1, int(math.floor(cpu / max(1, processes) + 1e-9)))


def find_onnx_file(path):
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if f.endswith(".onnx")]
    if len(found) != 1:
        raise ValueError(f"{path}: expected exactly one *.onnx file, found {len(found)}")
    return found[0]


def onnx_loader(threads, session_factory=None):
    """The registry's load function for ONNX models.

    A model is {"session", "signatures" (session.inputs()), "input_signatures" ({name: {shape,
    type}})}; the session reads the version's single ``*.onnx`` file.
    """

    def load(path):
        factory = session_factory
        if factory is None:
            import _cortex_onnx
            factory = _cortex_onnx.Session
        session = factory(find_onnx_file(path), intra_op_threads=threads)
        signatures = list(session.inputs())
        input_signatures = {s["name"]: {"shape": list(s["shape"]), "type": s["type"]}
                            for s in signatures}
        return {"session": session, "signatures": signatures,
                "input_signatures": input_signatures}

    return load


class ONNXClient(_Client):
    """``onnx_client`` of an ONNXPredictor."""

    def __init__(self, registry, spec, prepare_feeds=None):
        super().__init__(registry, spec)
        self._prepare_feeds = prepare_feeds

    def get_model(self, model_name=None, model_version="latest"):
        return self._get(model_name, model_version)[1]

    def predict(self, model_input, model_name=None, model_version="latest"):
        name, model = self._get(model_name, model_version)
        prepare = self._prepare_feeds
        if prepare is None:
            from .onnx_inputs import prepare_feeds as prepare
            self._prepare_feeds = prepare
        feeds = prepare(model["input_signatures"], model_input, name)
        return run_session(model, name, model_version, feeds)

    def input_signatures(self):
        """{name: {version: {input: {shape, type}}}} of the versions in the manifest.

        Versions not in memory are loaded through the registry, except in caching mode, where
        only the versions in memory are reported (loading them all would empty the cache).
        """
        registry = self._registry
        out = {}
        for name in registry.names():
            per_version = {}
            for version in registry.versions(name):
                model = registry.peek(name, version)
                if model is None and registry.cache_size is None:
                    try:
                        model = registry.get(name, version)
                    except ModelError:
                        model = None
                if model is not None:
                    per_version[version] = model["input_signatures"]
            out[name] = per_version
        return out


def _load_model_not_ready(path):
    raise RuntimeError("load_model cannot be called before the predictor's constructor has "
                       "returned")


def build_clients(spec, watch=True, session_factory=None, prepare_feeds=None):
    """(registry, {"python_client" | "onnx_client": client}) for a spec with models.

    Returns (None, {}) when the spec has no models. For python the caller sets the registry's
    ``load_fn`` to the predictor's ``load_model`` once the predictor is constructed.
    """
    from .loader import has_models
    if not has_models(spec):
        return None, {}
    predictor = spec["predictor"]
    manifest = spec.get("models_manifest")
    if not manifest:
        raise UserError("models are configured but the spec has no models_manifest")
    cache_size = (predictor.get("models") or {}).get("cache_size")
    ptype = predictor.get("type", "python")
    if ptype == "onnx":
        registry = ModelRegistry(manifest, onnx_loader(intra_op_threads(spec), session_factory),
                                 cache_size=cache_size, watch=watch)
        return registry, {"onnx_client": ONNXClient(registry, spec, prepare_feeds)}
    registry = ModelRegistry(manifest, _load_model_not_ready, cache_size=cache_size, watch=watch)
    return registry, {"python_client": PythonClient(registry, spec)}


def model_metadata(registry, onnx_client=None):
    """The GET route's model_metadata: versions and timestamps (and ONNX input signatures)."""
    meta = registry.metadata()
    if onnx_client is not None:
        for name, signatures in onnx_client.input_signatures().items():
            if name in meta:
                meta[name]["input_signatures"] = signatures
    return meta
