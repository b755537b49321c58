"""Turns an ONNX predictor's model_input into the feeds of an inference session.

Cortex v0.24's onnx_client.predict behaviour: a model with one input takes the bare value or
``{input_name: value}``; a model with several inputs needs a dict with every input's key. Each
value becomes a numpy array of the input's dtype (numpy arrays of another numeric dtype are cast;
a numeric array for a non-numeric input, or the reverse, is an error) and is reshaped to the
input's shape when at most one of its dimensions is unknown (that one is inferred).

One difference from Cortex: onnxruntime-python reported symbolic dimensions by name (Cortex
inferred those) and dimensions with neither a value nor a name as None (Cortex put 1 there);
_cortex_onnx reports both as None, and both are inferred here.

Pure functions over numpy; the errors are InputError, whose message is meant for the user.
"""

import numpy as np

__all__ = ["ONNX_TYPES", "InputError", "prepare_feeds", "to_numpy"]

# onnxruntime-python's type strings -> numpy dtypes.
ONNX_TYPES = {
    "tensor(float16)": np.dtype("float16"),
    "tensor(float)": np.dtype("float32"),
    "tensor(double)": np.dtype("float64"),
    "tensor(int8)": np.dtype("int8"),
    "tensor(uint8)": np.dtype("uint8"),
    "tensor(int16)": np.dtype("int16"),
    "tensor(uint16)": np.dtype("uint16"),
    "tensor(int32)": np.dtype("int32"),
    "tensor(uint32)": np.dtype("uint32"),
    "tensor(int64)": np.dtype("int64"),
    "tensor(uint64)": np.dtype("uint64"),
    "tensor(bool)": np.dtype("bool"),
    "tensor(string)": np.dtype("object"),
}


class InputError(ValueError):
    """model_input does not fit the model's inputs. Parts are joined with ": " (Cortex's style)."""

    def __init__(self, *parts):
        self.parts = [str(p) for p in parts if p]
        super().__init__(": ".join(self.parts))

    def wrap(self, *prefix):
        """A copy with ``prefix`` in front (as Cortex's CortexException.wrap)."""
        return InputError(*prefix, *self.parts)


def _signature_list(input_signatures):
    """[(name, shape, type)] from Session.inputs() (a list of dicts) or {name: {shape, type}}."""
    if isinstance(input_signatures, dict):
        items = [(name, sig) for name, sig in input_signatures.items()]
    else:
        items = [(sig["name"], sig) for sig in input_signatures]
    return [(name, list(sig.get("shape") or []), sig["type"]) for name, sig in items]


def _is_numeric(dtype):
    return np.issubdtype(dtype, np.number)


def to_numpy(value, shape, onnx_type, model_name):
    """One input's value as a numpy array of ``onnx_type``, reshaped to ``shape`` when at most
    one dimension is unknown (None, a name, or negative)."""
    target = ONNX_TYPES.get(onnx_type)
    if target is None:
        raise InputError(f"input type {onnx_type} of model '{model_name}' is not supported")
    dims = [d if isinstance(d, int) and not isinstance(d, bool) and d >= 0 else -1
            for d in shape]
    try:
        if isinstance(value, np.ndarray):
            array = value
            if _is_numeric(array.dtype) != _is_numeric(target):
                raise ValueError(f"expected dtype '{target}' but found '{array.dtype}' "
                                 f"for model '{model_name}'")
            if array.dtype != target:
                array = array.astype(target)
        else:
            array = np.array(value, dtype=target)
        if dims.count(-1) <= 1:
            array = array.reshape(dims)
        return array
    except InputError:
        raise
    except Exception as e:  # numpy's conversion and reshape errors
        raise InputError(f"failed to convert to numpy array for model '{model_name}'",
                         str(e)) from e


def prepare_feeds(input_signatures, model_input, model_name):
    """{input name: ndarray} for ``model_input``, the value a predictor passed to
    onnx_client.predict. ``input_signatures``: Session.inputs() or {name: {shape, type}}."""
    signatures = _signature_list(input_signatures)
    feeds = {}
    if len(signatures) == 1:
        name, shape, onnx_type = signatures[0]
        if isinstance(model_input, dict):
            if model_input.get(name) is None:
                raise InputError(f"missing key '{name}' for model '{model_name}'")
            feeds[name] = to_numpy(model_input[name], shape, onnx_type, model_name)
        else:
            try:
                feeds[name] = to_numpy(model_input, shape, onnx_type, model_name)
            except InputError as e:
                raise e.wrap(f"key '{name}' for model '{model_name}'") from e.__cause__
        return feeds

    if not isinstance(model_input, dict):
        keys = ", ".join(f'"{name}"' for name, _, _ in signatures)
        raise InputError(f"expected model_input to be a dictionary with keys '{keys}' "
                         f"for model '{model_name}'")
    for name, shape, onnx_type in signatures:
        if model_input.get(name) is None:
            raise InputError(f"missing key '{name}' for model '{model_name}'")
        try:
            feeds[name] = to_numpy(model_input[name], shape, onnx_type, model_name)
        except InputError as e:
            raise e.wrap(f"key '{name}' for model '{model_name}'") from e.__cause__
    return feeds
