"""KServe v2 / Open Inference Protocol model endpoints (REST) with Triton's binary tensor extension.

The worker hands ``V2Handler.handle`` the requests whose path starts with ``/v2/models/``:

    GET  /v2/models/NAME[/versions/V]        {"name", "versions", "platform", "inputs", "outputs"}
    GET  /v2/models/NAME[/versions/V]/ready  200 {"name", "ready": true} | 503 {.., "ready": false}
    POST /v2/models/NAME[/versions/V]/infer  inference

The backends (an ONNX API's models, a Python predictor's hook) and the routing are here; the
tensors' decoding and encoding are in v2_tensors.py.

NAME is ``<api>`` or ``<api>.<model>``; the API part is not checked (the gateway routed by it) and
the response's model_name echoes NAME. Without ``.<model>`` the API's single model is meant.

Inference: the request JSON is ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype",
"parameters"?, "data"?}], "outputs"?: [{"name", "parameters"?}]}``; ``data`` is row-major, nested
or flat; BYTES elements are JSON strings (the model gets them as UTF-8 bytes); FP16 has no JSON
form. Binary extension: with the header ``Inference-Header-Content-Length: N`` the first N body
bytes are the JSON and the rest holds, in input order, the little-endian data of every input that
has ``parameters.binary_data_size`` (a BYTES element is a u32 little-endian length and its bytes; a
BOOL one byte 0 or 1). Without the header the whole body is JSON. An output is binary when its
``parameters.binary_data`` is true, else when the request's ``parameters.binary_data_output`` is;
it then carries ``parameters.binary_data_size`` instead of ``data``, and the response is
``application/octet-stream`` with ``Inference-Header-Content-Length`` (as Triton answers), else
``application/json``. Binary inputs are read-only numpy views of the request body, copied only when
their offset leaves them misaligned for their dtype (_cortex_onnx needs C-contiguous arrays, not
writable ones, but passes the pointer to ONNX Runtime as is). Without ``outputs`` every tensor
output is returned; non-tensor ONNX outputs (sequences, maps) cannot be requested.

Datatypes are never converted: an input whose datatype is not the model's is a 400, and so is a
value out of an integer datatype's range. BYTES outputs in JSON are strings; bytes that are not
UTF-8 (a Python hook's output) have no JSON form and, like FP16, are a 400 asking for binary_data
(base64 would be indistinguishable from a string). NaN and infinities are written NaN/Infinity.

Errors are ``{"error": message}``: 400 a malformed or mismatched request (JSON, header, shapes,
counts, datatypes, unknown or missing inputs, unknown outputs, NAME without ``.<model>`` when the
API has several models); 404 an unknown path, model or version; 405 a wrong method (with Allow);
503 a model version that cannot be loaded (ModelError: KServe's server answers not-ready models
with 503, the protocol only asks for a non-200); 500 anything else, "<Type>: <message>", errors
raised while the model runs included. A V2Error raised by the run function or a hook keeps its own
status.
"""

import inspect
import json
import re
import sys
import traceback

import numpy as np

from .model_registry import SINGLE_MODEL_NAME, ModelError, ModelNotFound
from .v2_tensors import (DATATYPES, HEADER_LENGTH, V2Error, bad_request, read_inputs,
                         select_outputs, split_body, to_binary, to_json)

__all__ = ["V2Error", "OnnxBackend", "PythonHookBackend", "V2Handler", "DATATYPES",
           "ONNX_DATATYPES", "HEADER_LENGTH"]

ONNX_DATATYPES = {"tensor(bool)": "BOOL", "tensor(float16)": "FP16", "tensor(float)": "FP32",
                  "tensor(double)": "FP64", "tensor(string)": "BYTES",
                  **{f"tensor({t}{b})": f"{t.upper()}{b}" for t in ("int", "uint")
                     for b in (8, 16, 32, 64)}}
PREFIX = "/v2/models/"
_MODEL = re.compile(r"[A-Za-z0-9_-]+")
_VERSION = re.compile(r"[0-9]{1,18}")


def _answer(status, doc, headers=()):
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return status, "application/json", [list(h) for h in headers], body


class _Target:
    """One model version: its ports [(name, datatype, shape with -1 for unknown)] and infer."""

    def __init__(self, version, versions, inputs, outputs, infer):
        self.version, self.versions = version, versions
        self.inputs, self.outputs, self.infer = inputs, outputs, infer


def _models_mode(spec):
    """("single" | "paths" | "dir", the spec's model names or None), as models.py reads it."""
    predictor = (spec or {}).get("predictor") or {}
    if predictor.get("model_path"):
        return "single", [SINGLE_MODEL_NAME]
    models = predictor.get("models") or {}
    if models.get("dir"):
        return "dir", None
    return "paths", [p.get("name") for p in models.get("paths") or [] if isinstance(p, dict)]


def _onnx_port(port):
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in port.get("shape") or []]
    return port["name"], ONNX_DATATYPES.get(port["type"], port["type"]), shape


class OnnxBackend:
    """Models of an ONNX API, through its ModelRegistry."""

    platform = "onnxruntime_onnx"

    def __init__(self, registry, spec, run=None):
        self.registry = registry
        self._mode, self._names = _models_mode(spec)
        self._run = run or (lambda model, name, version, feeds: model["session"].run(None, feeds))

    def _key(self, name):
        api, dot, model = name.partition(".")
        if self._mode == "single":
            if dot:
                raise V2Error(404, f"model '{name}' not found: the API serves one model, '{api}'")
            return SINGLE_MODEL_NAME
        names = self._names if self._mode == "paths" and self._names else self.registry.names()
        if not dot:
            if len(names) == 1:
                return names[0]
            if not names:
                raise V2Error(404, f"model '{name}' not found: the API has no models")
            listed = ", ".join(f"{api}.{n}" for n in names)
            raise bad_request(f"the API serves several models; name one of: {listed}")
        if not _MODEL.fullmatch(model) or model not in names:
            raise V2Error(404, f"model '{name}' not found (models: "
                               + ", ".join(f"{api}.{n}" for n in names) + ")")
        return model

    def target(self, name, version):
        key = self._key(name)
        registry = self.registry
        if not registry.has_model(key):
            raise V2Error(404, f"model '{name}' not found")
        versions = registry.versions(key)
        if version is not None and version not in versions:
            raise V2Error(404, f"version '{version}' of model '{name}' not found (versions: "
                               f"{', '.join(versions) or 'none'})")
        try:
            if version is None:
                version = registry.resolve_version(key)
            model = registry.get(key, version)
        except ModelNotFound as e:
            raise V2Error(404, str(e)) from e
        except ModelError as e:
            raise V2Error(503, str(e)) from e
        session = model["session"]
        inputs = [_onnx_port(p) for p in session.inputs()]
        outputs = [_onnx_port(p) for p in session.outputs()]

        def infer(feeds):
            results = self._run(model, key, version, feeds)
            if len(results) != len(outputs):
                raise RuntimeError(f"the model returned {len(results)} outputs, not "
                                   f"{len(outputs)}")
            return {port[0]: value for port, value in zip(outputs, results)}

        return _Target(version, versions, inputs, outputs, infer)


def _declared(fn, names=("model_name", "model_version")):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return set()
    return {n for n in names if n in params}


def _hook_ports(ports, what):
    if not isinstance(ports, list):
        raise RuntimeError(f"v2_metadata()['{what}'] must be a list")
    out = []
    for t in ports:
        ok = (isinstance(t, dict) and isinstance(t.get("name"), str)
              and isinstance(t.get("datatype"), str)
              and t["datatype"] in DATATYPES and isinstance(t.get("shape"), list)
              and all(type(d) is int and d >= -1 for d in t["shape"]))
        if not ok:
            raise RuntimeError(f"v2_metadata()['{what}'] holds {t!r}, not a {{name, datatype, "
                               "shape}} with a v2 datatype and integer dimensions (-1: any)")
        out.append((t["name"], t["datatype"], list(t["shape"])))
    if len({p[0] for p in out}) != len(out):
        raise RuntimeError(f"v2_metadata()['{what}'] repeats a name")
    return out


class PythonHookBackend:
    """A PythonPredictor that opts in by defining v2_metadata(self) -> {"inputs": [T], "outputs":
    [T]} (T = {"name","datatype","shape"}; an optional "versions": [str]) and v2_infer(self, inputs:
    dict[str, np.ndarray]) -> dict[str, np.ndarray] (or a list in the metadata's outputs order).
    Either may declare model_name (the <model> of <api>.<model>, else None) and model_version (the
    path's version, else "latest"); NAME.<model> and /versions/V are 404 unless v2_infer declares
    them. Inputs arrive as read-only arrays; BYTES as object arrays of bytes. Outputs are converted
    to the declared datatypes."""

    platform = "python"

    def __init__(self, predictor):
        self.predictor = predictor
        self._meta_kw = _declared(predictor.v2_metadata)
        self._infer_kw = _declared(predictor.v2_infer)

    @staticmethod
    def supports(predictor):
        return all(callable(getattr(predictor, m, None)) for m in ("v2_metadata", "v2_infer"))

    def target(self, name, version):
        api, dot, model = name.partition(".")
        if dot and ("model_name" not in self._infer_kw or not _MODEL.fullmatch(model)):
            raise V2Error(404, f"model '{name}' not found: the API serves one model, '{api}'")
        if version is not None and ("model_version" not in self._infer_kw
                                    or not _VERSION.fullmatch(version)):
            raise V2Error(404, f"version '{version}' of model '{name}' not found")
        kwargs = {"model_name": model if dot else None, "model_version": version or "latest"}
        meta = self.predictor.v2_metadata(**{k: kwargs[k] for k in self._meta_kw})
        if not isinstance(meta, dict):
            raise RuntimeError("v2_metadata() must return a dict with inputs and outputs")
        inputs = _hook_ports(meta.get("inputs"), "inputs")
        outputs = _hook_ports(meta.get("outputs"), "outputs")
        versions = [str(v) for v in meta.get("versions") or []]
        infer_kwargs = {k: kwargs[k] for k in self._infer_kw}

        def infer(feeds):
            result = self.predictor.v2_infer(feeds, **infer_kwargs)
            if isinstance(result, (list, tuple)):
                if len(result) != len(outputs):
                    raise RuntimeError(f"v2_infer returned {len(result)} outputs, not "
                                       f"{len(outputs)}")
                return {port[0]: value for port, value in zip(outputs, result)}
            if not isinstance(result, dict):
                raise TypeError("v2_infer must return a dict of outputs or a list")
            return result

        return _Target(version, versions, inputs, outputs, infer)


# -- inputs ------------------------------------------------------------------------------------

class V2Handler:
    """The /v2/models/ endpoints of one API over a backend (OnnxBackend or PythonHookBackend)."""

    def __init__(self, api_name, backend):
        self.api_name = api_name
        self.backend = backend

    def handle(self, method, path, query, headers, body):
        """(status, content_type, headers [[k, v]], body bytes); never raises."""
        try:
            return self._handle(str(method).upper(), path, headers, body)
        except V2Error as e:
            return _answer(e.status, {"error": e.message})
        except ModelNotFound as e:
            return _answer(404, {"error": str(e)})
        except ModelError as e:
            return _answer(503, {"error": str(e)})
        except Exception as e:
            try:
                traceback.print_exc(file=sys.stderr)
            except Exception:
                pass
            return _answer(500, {"error": f"{type(e).__name__}: {e}"})

    @staticmethod
    def _route(path):
        """(name, version or None, "metadata" | "ready" | "infer")."""
        if not isinstance(path, str) or not path.startswith(PREFIX):
            raise V2Error(404, f"no such endpoint: {path}")
        parts = path[len(PREFIX):].split("/")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()  # a trailing slash
        name, rest, version = parts[0], parts[1:], None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
        action = {(): "metadata", ("ready",): "ready", ("infer",): "infer"}.get(tuple(rest))
        if not name or version == "" or action is None:
            raise V2Error(404, f"no such endpoint: {path}")
        return name, version, action

    def _handle(self, method, path, headers, body):
        name, version, action = self._route(path)
        allowed = "POST" if action == "infer" else "GET"
        if method != allowed:
            return _answer(405, {"error": f"{method} is not allowed on {path}; use {allowed}"},
                           [["Allow", allowed]])
        if action == "ready":
            try:
                self.backend.target(name, version)
            except (V2Error, ModelError) as e:
                if isinstance(e, ModelNotFound) or getattr(e, "status", 503) != 503:
                    raise
                return _answer(503, {"name": name, "ready": False})
            return _answer(200, {"name": name, "ready": True})
        target = self.backend.target(name, version)
        if action == "metadata":
            def describe(ports):
                return [{"name": n, "datatype": d, "shape": s} for n, d, s in ports]
            return _answer(200, {"name": name, "versions": list(target.versions),
                                 "platform": self.backend.platform,
                                 "inputs": describe(target.inputs),
                                 "outputs": describe(target.outputs)})
        return self._infer(name, target, headers, body)

    def _infer(self, name, target, headers, body):
        request, binary, given = split_body(headers, body)
        if "id" in request and not isinstance(request["id"], str):
            raise bad_request("id must be a string")
        chosen = select_outputs(request, target.outputs)
        feeds = read_inputs(request, binary, given, target.inputs)
        results = target.infer(feeds)
        outputs, parts = [], []
        for (out_name, datatype, _), as_binary in chosen:
            if out_name not in results:
                raise RuntimeError(f"the model returned no output '{out_name}'")
            arr = np.asarray(results[out_name], dtype=DATATYPES[datatype])
            entry = {"name": out_name, "datatype": datatype, "shape": [int(d) for d in arr.shape]}
            if as_binary:
                part = to_binary(arr, datatype, out_name)
                entry["parameters"] = {"binary_data_size": len(part)}
                parts.append(part)
            else:
                entry["data"] = to_json(arr, datatype, out_name)
            outputs.append(entry)
        doc = {"model_name": name}
        if target.version is not None:
            doc["model_version"] = str(target.version)
        if "id" in request:
            doc["id"] = request["id"]
        doc["outputs"] = outputs
        text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        if not parts:
            return 200, "application/json", [], text
        return (200, "application/octet-stream", [[HEADER_LENGTH, str(len(text))]],
                b"".join([text, *parts]))
