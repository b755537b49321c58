"""KServe v2 / Open Inference Protocol model endpoints (REST) with Triton's binary tensor extension.

The worker hands ``V2Handler.handle`` the requests whose path starts with ``/v2/models/``:

    GET  /v2/models/NAME[/versions/V]        {"name", "versions", "platform", "inputs", "outputs"}
    GET  /v2/models/NAME[/versions/V]/ready  200 {"name", "ready": true} | 503 {.., "ready": false}
    POST /v2/models/NAME[/versions/V]/infer  inference

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
import math
import re
import struct
import sys
import traceback

import numpy as np

from .model_registry import SINGLE_MODEL_NAME, ModelError, ModelNotFound

__all__ = ["V2Error", "OnnxBackend", "PythonHookBackend", "V2Handler", "DATATYPES",
           "ONNX_DATATYPES", "HEADER_LENGTH"]

DATATYPES = {"BOOL": np.dtype("bool"), "UINT8": np.dtype("uint8"), "UINT16": np.dtype("uint16"),
             "UINT32": np.dtype("uint32"), "UINT64": np.dtype("uint64"),
             "INT8": np.dtype("int8"), "INT16": np.dtype("int16"), "INT32": np.dtype("int32"),
             "INT64": np.dtype("int64"), "FP16": np.dtype("float16"),
             "FP32": np.dtype("float32"), "FP64": np.dtype("float64"), "BYTES": np.dtype("object")}
ONNX_DATATYPES = {"tensor(bool)": "BOOL", "tensor(float16)": "FP16", "tensor(float)": "FP32",
                  "tensor(double)": "FP64", "tensor(string)": "BYTES",
                  **{f"tensor({t}{b})": f"{t.upper()}{b}" for t in ("int", "uint")
                     for b in (8, 16, 32, 64)}}
HEADER_LENGTH = "Inference-Header-Content-Length"
PREFIX = "/v2/models/"
MAX_DIMS = 32  # numpy's limit
MAX_ELEMENTS = 1 << 56  # the product of a shape's non-zero dimensions
_MODEL = re.compile(r"[A-Za-z0-9_-]+")
_LENGTH = re.compile(r"[0-9]{1,18}")
_VERSION = re.compile(r"[0-9]{1,18}")
_U32 = struct.Struct("<I")


class V2Error(Exception):
    """An answer {"error": message} with HTTP status ``status``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message):
    return V2Error(400, message)


def _answer(status, doc, headers=()):
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return status, "application/json", [list(h) for h in headers], body


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


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
            raise _bad(f"the API serves several models; name one of: {listed}")
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

def _check_shape(shape, name, model_shape):
    """The element count of a request shape, checked against the model's shape."""
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise _bad(f"input '{name}': shape must be a list of at most {MAX_DIMS} integers, not "
                   f"{shape!r:.100}")
    if not all(type(d) is int for d in shape):
        raise _bad(f"input '{name}': shape must be a list of integers, not {shape!r:.100}")
    if any(d < 0 for d in shape):
        raise _bad(f"input '{name}': shape {_shape_text(shape)} has a negative dimension")
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise _bad(f"input '{name}': shape {_shape_text(shape)} is too large")
    if model_shape and (len(shape) != len(model_shape) or
                        any(m >= 0 and d != m for d, m in zip(shape, model_shape))):
        raise _bad(f"input '{name}': shape {_shape_text(shape)} does not match the model's "
                   f"{_shape_text(model_shape)} (-1: any)")
    return math.prod(shape)


def _count_error(name, got, shape, count):
    return _bad(f"input '{name}': data has {got} elements but shape {_shape_text(shape)} "
                f"holds {count}")


def _from_json(data, datatype, shape, count, name):
    if datatype == "FP16":
        raise _bad(f"input '{name}': FP16 has no JSON form; send it as binary data "
                   "(parameters.binary_data_size)")
    target = DATATYPES[datatype]
    try:
        arr = np.array(data, dtype=object if datatype == "BYTES" else None)
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise _bad(f"input '{name}': data is not a regular array ({e})") from None
    if arr.size != count:
        raise _count_error(name, arr.size, shape, count)
    kind = arr.dtype.kind
    if datatype == "BYTES":
        flat = arr.ravel()
        if not all(type(s) is str for s in flat):
            raise _bad(f"input '{name}': BYTES data must be an array of strings")
        out = np.empty(count, dtype=object)
        try:
            out[:] = [s.encode("utf-8") for s in flat]
        except UnicodeEncodeError as e:
            raise _bad(f"input '{name}': a string is not valid Unicode ({e})") from None
        return out.reshape(shape)
    if count == 0:
        return np.empty(shape, target)
    if target.kind in "iu" and kind in "fO":  # maybe Python ints that numpy didn't fit in one type
        arr = np.array(data, dtype=object)
        kind = "i" if all(type(x) is int for x in arr.flat) else "O"
    ok = {"b": "b", "f": "iuf"}.get(target.kind, "iu")
    if kind not in ok:
        expected = {"b": "true/false", "f": "numbers"}.get(target.kind, "integers")
        raise _bad(f"input '{name}': {datatype} data must be an array of {expected}")
    if target.kind in "iu":
        info = np.iinfo(target)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise _bad(f"input '{name}': a value is out of the range of {datatype}")
    return arr.astype(target).reshape(shape)


def _bytes_elements(view, count, name):
    """A BYTES tensor's binary form: each element a u32 little-endian length and its bytes."""
    n = len(view)
    if count * 4 > n:
        raise _bad(f"input '{name}': {n} bytes of BYTES data cannot hold {count} elements")
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > n:
            raise _bad(f"input '{name}': BYTES data ends inside the length of element {i}")
        (length,) = _U32.unpack_from(view, pos)
        pos += 4
        if length > n - pos:
            raise _bad(f"input '{name}': BYTES element {i} ({length} bytes) runs past the end "
                       "of its binary data")
        out[i] = bytes(view[pos:pos + length])
        pos += length
    if pos != n:
        raise _bad(f"input '{name}': {n - pos} bytes follow its {count} BYTES elements")
    return out


def _from_binary(view, datatype, shape, count, name):
    if datatype == "BYTES":
        return _bytes_elements(view, count, name).reshape(shape)
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(view) != count * dtype.itemsize:
        raise _bad(f"input '{name}': binary_data_size is {len(view)} but shape "
                   f"{_shape_text(shape)} of {datatype} needs {count * dtype.itemsize} bytes")
    if count == 0:
        return np.empty(shape, dtype)
    if datatype == "BOOL" and np.frombuffer(view, np.uint8).max() > 1:
        raise _bad(f"input '{name}': BOOL binary data must be bytes 0 or 1")
    arr = np.frombuffer(view, dtype, count).reshape(shape)
    return arr if arr.flags.aligned else arr.copy()


def _split_body(headers, body):
    """(the request JSON, a memoryview of the binary part, whether the header was given)."""
    view = memoryview(body if body is not None else b"").cast("B")
    length = None
    for pair in headers or ():
        if len(pair) == 2 and str(pair[0]).lower() == HEADER_LENGTH.lower():
            text = str(pair[1]).strip()
            if not _LENGTH.fullmatch(text):
                raise _bad(f"{HEADER_LENGTH} must be a byte count, not {pair[1]!r}")
            length = int(text)
            if length > len(view):
                raise _bad(f"{HEADER_LENGTH} is {length} but the body has {len(view)} bytes")
            break
    given = length is not None
    length = len(view) if length is None else length
    try:
        request = json.loads(bytes(view[:length]))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise _bad(f"the request is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise _bad("the request must be a JSON object")
    return request, view[length:], given


def _read_inputs(request, binary, given, ports):
    raw = request.get("inputs")
    if not isinstance(raw, list):
        raise _bad("'inputs' must be a list of tensors")
    by_name = {p[0]: p for p in ports}
    known = ", ".join(p[0] for p in ports)
    feeds, offset = {}, 0
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _bad(f"inputs[{i}] must be an object with a name")
        name, datatype = item["name"], item.get("datatype")
        if name in feeds:
            raise _bad(f"input '{name}' is given twice")
        if name not in by_name:
            raise _bad(f"unknown input '{name}' (the model's inputs: {known})")
        _, expected, model_shape = by_name[name]
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise _bad(f"input '{name}': datatype must be one of {', '.join(DATATYPES)}, not "
                       f"{datatype!r}")
        if expected not in DATATYPES:
            raise _bad(f"input '{name}' has type {expected}, which the v2 protocol cannot send")
        if datatype != expected:
            raise _bad(f"input '{name}' has datatype {datatype} but the model expects "
                       f"{expected} (datatypes are not converted)")
        count = _check_shape(item.get("shape"), name, model_shape)
        params = _params(item, f"input '{name}': ")
        size = params.get("binary_data_size")
        if size is None:
            if "data" not in item:
                raise _bad(f"input '{name}' has neither data nor parameters.binary_data_size")
            feeds[name] = _from_json(item["data"], datatype, item["shape"], count, name)
            continue
        if not given:
            raise _bad(f"input '{name}' has binary_data_size but the request has no "
                       f"{HEADER_LENGTH} header")
        if "data" in item:
            raise _bad(f"input '{name}' has both data and binary_data_size")
        if type(size) is not int or size < 0:
            raise _bad(f"input '{name}': binary_data_size must be a byte count")
        if size > len(binary) - offset:
            raise _bad(f"input '{name}': its {size} bytes of binary data run past the end of "
                       "the body")
        feeds[name] = _from_binary(binary[offset:offset + size], datatype, item["shape"],
                                   count, name)
        offset += size
    if offset != len(binary):
        raise _bad(f"{len(binary) - offset} bytes of binary data belong to no input")
    missing = [p[0] for p in ports if p[0] not in feeds]
    if missing:
        raise _bad(f"missing inputs: {', '.join(missing)} (the model's inputs: {known})")
    return feeds


# -- outputs -----------------------------------------------------------------------------------

def _params(item, where):
    params = item.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _bad(f"{where}parameters must be an object")
    return params


def _flag(params, key, where, default=False):
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise _bad(f"{where}{key} must be true or false")
    return value


def _select_outputs(request, ports):
    """[(port, binary)] of the outputs to return."""
    params = _params(request, "")
    default = _flag(params, "binary_data_output", "parameters.")
    wanted = request.get("outputs")
    if wanted is None:
        wanted = []
    if not isinstance(wanted, list):
        raise _bad("'outputs' must be a list")
    if not wanted:
        chosen = [(p, default) for p in ports if p[1] in DATATYPES]
    else:
        by_name, chosen, seen = {p[0]: p for p in ports}, [], set()
        for i, item in enumerate(wanted):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise _bad(f"outputs[{i}] must be an object with a name")
            name = item["name"]
            if name not in by_name:
                raise _bad(f"unknown output '{name}' (the model's outputs: "
                           f"{', '.join(by_name)})")
            if name in seen:
                raise _bad(f"output '{name}' is requested twice")
            if by_name[name][1] not in DATATYPES:
                raise _bad(f"output '{name}' has type {by_name[name][1]}, which the v2 protocol "
                           "cannot send")
            out_params = _params(item, f"output '{name}': ")
            if "classification" in out_params:
                raise _bad("the classification extension is not supported")
            seen.add(name)
            chosen.append((by_name[name], _flag(out_params, "binary_data",
                                                f"output '{name}': parameters.", default)))
    for (name, datatype, _), binary in chosen:
        if datatype == "FP16" and not binary:
            raise _bad(f"output '{name}' is FP16, which has no JSON form: request it with "
                       "parameters.binary_data true")
    return chosen


def _to_binary(arr, datatype, name):
    if datatype != "BYTES":
        flat = np.ascontiguousarray(arr.reshape(-1), arr.dtype.newbyteorder("<"))
        return memoryview(flat.view(np.uint8))
    pieces = []
    for s in arr.flat:
        b = s.encode("utf-8") if isinstance(s, str) else s
        if not isinstance(b, bytes):
            raise TypeError(f"output '{name}' holds a {type(s).__name__}, not str or bytes")
        pieces += (_U32.pack(len(b)), b)
    return b"".join(pieces)


def _to_json(arr, datatype, name):
    if datatype != "BYTES":
        return arr.reshape(-1).tolist()
    out = []
    for s in arr.flat:
        if isinstance(s, bytes):
            try:
                s = s.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"output '{name}' holds bytes that are not UTF-8, which have no JSON "
                           "form: request it with parameters.binary_data true") from None
        elif not isinstance(s, str):
            raise TypeError(f"output '{name}' holds a {type(s).__name__}, not str or bytes")
        out.append(str(s))
    return out


# -- the handler -------------------------------------------------------------------------------

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
        request, binary, given = _split_body(headers, body)
        if "id" in request and not isinstance(request["id"], str):
            raise _bad("id must be a string")
        chosen = _select_outputs(request, target.outputs)
        feeds = _read_inputs(request, binary, given, target.inputs)
        results = target.infer(feeds)
        outputs, parts = [], []
        for (out_name, datatype, _), as_binary in chosen:
            if out_name not in results:
                raise RuntimeError(f"the model returned no output '{out_name}'")
            arr = np.asarray(results[out_name], dtype=DATATYPES[datatype])
            entry = {"name": out_name, "datatype": datatype, "shape": [int(d) for d in arr.shape]}
            if as_binary:
                part = _to_binary(arr, datatype, out_name)
                entry["parameters"] = {"binary_data_size": len(part)}
                parts.append(part)
            else:
                entry["data"] = _to_json(arr, datatype, out_name)
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
