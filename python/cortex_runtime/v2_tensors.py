"""Tensors of the Open Inference Protocol (v2.py): request inputs from JSON or Triton's binary
tensor extension into numpy arrays, and numpy outputs back to JSON or binary, with every check
the protocol's errors need (400 for anything malformed, nothing allocated before the counts are
checked against the body). Pure functions over numpy.
"""

import json
import math
import re
import struct

import numpy as np

__all__ = ["V2Error", "DATATYPES", "HEADER_LENGTH", "bad_request", "shape_text",
           "check_shape", "split_body", "read_inputs", "select_outputs", "to_binary", "to_json"]

DATATYPES = {"BOOL": np.dtype("bool"), "UINT8": np.dtype("uint8"), "UINT16": np.dtype("uint16"),
             "UINT32": np.dtype("uint32"), "UINT64": np.dtype("uint64"),
             "INT8": np.dtype("int8"), "INT16": np.dtype("int16"), "INT32": np.dtype("int32"),
             "INT64": np.dtype("int64"), "FP16": np.dtype("float16"),
             "FP32": np.dtype("float32"), "FP64": np.dtype("float64"), "BYTES": np.dtype("object")}
HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_DIMS = 32  # numpy's limit
MAX_ELEMENTS = 1 << 56  # the product of a shape's non-zero dimensions
_LENGTH = re.compile(r"[0-9]{1,18}")
_U32 = struct.Struct("<I")


class V2Error(Exception):
    """An answer {"error": message} with HTTP status ``status``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message):
    return V2Error(400, message)


def shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def check_shape(shape, name, model_shape):
    """The element count of a request shape, checked against the model's shape."""
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise bad_request(f"input '{name}': shape must be a list of at most {MAX_DIMS} integers, not "
                   f"{shape!r:.100}")
    if not all(type(d) is int for d in shape):
        raise bad_request(f"input '{name}': shape must be a list of integers, not {shape!r:.100}")
    if any(d < 0 for d in shape):
        raise bad_request(f"input '{name}': shape {shape_text(shape)} has a negative dimension")
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise bad_request(f"input '{name}': shape {shape_text(shape)} is too large")
    if model_shape and (len(shape) != len(model_shape) or
                        any(m >= 0 and d != m for d, m in zip(shape, model_shape))):
        raise bad_request(f"input '{name}': shape {shape_text(shape)} does not match the model's "
                   f"{shape_text(model_shape)} (-1: any)")
    return math.prod(shape)


def _count_error(name, got, shape, count):
    return bad_request(f"input '{name}': data has {got} elements but shape {shape_text(shape)} "
                f"holds {count}")


def _from_json(data, datatype, shape, count, name):
    if datatype == "FP16":
        raise bad_request(f"input '{name}': FP16 has no JSON form; send it as binary data "
                   "(parameters.binary_data_size)")
    target = DATATYPES[datatype]
    try:
        arr = np.array(data, dtype=object if datatype == "BYTES" else None)
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise bad_request(f"input '{name}': data is not a regular array ({e})") from None
    if arr.size != count:
        raise _count_error(name, arr.size, shape, count)
    kind = arr.dtype.kind
    if datatype == "BYTES":
        flat = arr.ravel()
        if not all(type(s) is str for s in flat):
            raise bad_request(f"input '{name}': BYTES data must be an array of strings")
        out = np.empty(count, dtype=object)
        try:
            out[:] = [s.encode("utf-8") for s in flat]
        except UnicodeEncodeError as e:
            raise bad_request(f"input '{name}': a string is not valid Unicode ({e})") from None
        return out.reshape(shape)
    if count == 0:
        return np.empty(shape, target)
    if target.kind in "iu" and kind in "fO":  # maybe Python ints that numpy didn't fit in one type
        arr = np.array(data, dtype=object)
        kind = "i" if all(type(x) is int for x in arr.flat) else "O"
    ok = {"b": "b", "f": "iuf"}.get(target.kind, "iu")
    if kind not in ok:
        expected = {"b": "true/false", "f": "numbers"}.get(target.kind, "integers")
        raise bad_request(f"input '{name}': {datatype} data must be an array of {expected}")
    if target.kind in "iu":
        info = np.iinfo(target)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise bad_request(f"input '{name}': a value is out of the range of {datatype}")
    return arr.astype(target).reshape(shape)


def _bytes_elements(view, count, name):
    """A BYTES tensor's binary form: each element a u32 little-endian length and its bytes."""
    n = len(view)
    if count * 4 > n:
        raise bad_request(f"input '{name}': {n} bytes of BYTES data cannot hold {count} elements")
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > n:
            raise bad_request(f"input '{name}': BYTES data ends inside the length of element {i}")
        (length,) = _U32.unpack_from(view, pos)
        pos += 4
        if length > n - pos:
            raise bad_request(f"input '{name}': BYTES element {i} ({length} bytes) runs past the end "
                       "of its binary data")
        out[i] = bytes(view[pos:pos + length])
        pos += length
    if pos != n:
        raise bad_request(f"input '{name}': {n - pos} bytes follow its {count} BYTES elements")
    return out


def _from_binary(view, datatype, shape, count, name):
    if datatype == "BYTES":
        return _bytes_elements(view, count, name).reshape(shape)
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(view) != count * dtype.itemsize:
        raise bad_request(f"input '{name}': binary_data_size is {len(view)} but shape "
                   f"{shape_text(shape)} of {datatype} needs {count * dtype.itemsize} bytes")
    if count == 0:
        return np.empty(shape, dtype)
    if datatype == "BOOL" and np.frombuffer(view, np.uint8).max() > 1:
        raise bad_request(f"input '{name}': BOOL binary data must be bytes 0 or 1")
    arr = np.frombuffer(view, dtype, count).reshape(shape)
    return arr if arr.flags.aligned else arr.copy()


def split_body(headers, body):
    """(the request JSON, a memoryview of the binary part, whether the header was given)."""
    view = memoryview(body if body is not None else b"").cast("B")
    length = None
    for pair in headers or ():
        if len(pair) == 2 and str(pair[0]).lower() == HEADER_LENGTH.lower():
            text = str(pair[1]).strip()
            if not _LENGTH.fullmatch(text):
                raise bad_request(f"{HEADER_LENGTH} must be a byte count, not {pair[1]!r}")
            length = int(text)
            if length > len(view):
                raise bad_request(f"{HEADER_LENGTH} is {length} but the body has {len(view)} bytes")
            break
    given = length is not None
    length = len(view) if length is None else length
    try:
        request = json.loads(bytes(view[:length]))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise bad_request(f"the request is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise bad_request("the request must be a JSON object")
    return request, view[length:], given


def read_inputs(request, binary, given, ports):
    raw = request.get("inputs")
    if not isinstance(raw, list):
        raise bad_request("'inputs' must be a list of tensors")
    by_name = {p[0]: p for p in ports}
    known = ", ".join(p[0] for p in ports)
    feeds, offset = {}, 0
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise bad_request(f"inputs[{i}] must be an object with a name")
        name, datatype = item["name"], item.get("datatype")
        if name in feeds:
            raise bad_request(f"input '{name}' is given twice")
        if name not in by_name:
            raise bad_request(f"unknown input '{name}' (the model's inputs: {known})")
        _, expected, model_shape = by_name[name]
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise bad_request(f"input '{name}': datatype must be one of {', '.join(DATATYPES)}, not "
                       f"{datatype!r}")
        if expected not in DATATYPES:
            raise bad_request(f"input '{name}' has type {expected}, which the v2 protocol cannot send")
        if datatype != expected:
            raise bad_request(f"input '{name}' has datatype {datatype} but the model expects "
                       f"{expected} (datatypes are not converted)")
        count = check_shape(item.get("shape"), name, model_shape)
        params = _params(item, f"input '{name}': ")
        size = params.get("binary_data_size")
        if size is None:
            if "data" not in item:
                raise bad_request(f"input '{name}' has neither data nor parameters.binary_data_size")
            feeds[name] = _from_json(item["data"], datatype, item["shape"], count, name)
            continue
        if not given:
            raise bad_request(f"input '{name}' has binary_data_size but the request has no "
                       f"{HEADER_LENGTH} header")
        if "data" in item:
            raise bad_request(f"input '{name}' has both data and binary_data_size")
        if type(size) is not int or size < 0:
            raise bad_request(f"input '{name}': binary_data_size must be a byte count")
        if size > len(binary) - offset:
            raise bad_request(f"input '{name}': its {size} bytes of binary data run past the end of "
                       "the body")
        feeds[name] = _from_binary(binary[offset:offset + size], datatype, item["shape"],
                                   count, name)
        offset += size
    if offset != len(binary):
        raise bad_request(f"{len(binary) - offset} bytes of binary data belong to no input")
    missing = [p[0] for p in ports if p[0] not in feeds]
    if missing:
        raise bad_request(f"missing inputs: {', '.join(missing)} (the model's inputs: {known})")
    return feeds


# -- outputs -----------------------------------------------------------------------------------

def _params(item, where):
    params = item.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise bad_request(f"{where}parameters must be an object")
    return params


def _flag(params, key, where, default=False):
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise bad_request(f"{where}{key} must be true or false")
    return value


def select_outputs(request, ports):
    """[(port, binary)] of the outputs to return."""
    params = _params(request, "")
    default = _flag(params, "binary_data_output", "parameters.")
    wanted = request.get("outputs")
    if wanted is None:
        wanted = []
    if not isinstance(wanted, list):
        raise bad_request("'outputs' must be a list")
    if not wanted:
        chosen = [(p, default) for p in ports if p[1] in DATATYPES]
    else:
        by_name, chosen, seen = {p[0]: p for p in ports}, [], set()
        for i, item in enumerate(wanted):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise bad_request(f"outputs[{i}] must be an object with a name")
            name = item["name"]
            if name not in by_name:
                raise bad_request(f"unknown output '{name}' (the model's outputs: "
                           f"{', '.join(by_name)})")
            if name in seen:
                raise bad_request(f"output '{name}' is requested twice")
            if by_name[name][1] not in DATATYPES:
                raise bad_request(f"output '{name}' has type {by_name[name][1]}, which the v2 protocol "
                           "cannot send")
            out_params = _params(item, f"output '{name}': ")
            if "classification" in out_params:
                raise bad_request("the classification extension is not supported")
            seen.add(name)
            chosen.append((by_name[name], _flag(out_params, "binary_data",
                                                f"output '{name}': parameters.", default)))
    for (name, datatype, _), binary in chosen:
        if datatype == "FP16" and not binary:
            raise bad_request(f"output '{name}' is FP16, which has no JSON form: request it with "
                       "parameters.binary_data true")
    return chosen


def to_binary(arr, datatype, name):
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


def to_json(arr, datatype, name):
    if datatype != "BYTES":
        return arr.reshape(-1).tolist()
    out = []
    for s in arr.flat:
        if isinstance(s, bytes):
            try:
                s = s.decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request(f"output '{name}' holds bytes that are not UTF-8, which have no JSON "
                           "form: request it with parameters.binary_data true") from None
        elif not isinstance(s, str):
            raise TypeError(f"output '{name}' holds a {type(s).__name__}, not str or bytes")
        out.append(str(s))
    return out


# -- the handler -------------------------------------------------------------------------------
