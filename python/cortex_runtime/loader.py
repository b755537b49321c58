"""Start-up of a worker: environment, the user's module, and the predictor instance.

Follows Cortex v0.24 (spec sections 1 and 4): the module at ``predictor.path`` must define exactly
one class named after the predictor type (``PythonPredictor``, ``ONNXPredictor``); method
signatures are checked before construction; arguments are passed by keyword, chosen by parameter
name. A PythonPredictor with models configured must declare ``python_client`` and define
``load_model``.
"""

import copy
import importlib.util
import inspect
import json
import os
import pickle
import sys

__all__ = [
    "UserError",
    "load_spec",
    "parse_dotenv",
    "prepare_environment",
    "load_predictor_class",
    "validate_predictor_class",
    "construct_predictor",
    "method_args",
    "has_models",
    "predictor_class_name",
]

PREDICTOR_CLASS_NAME = "PythonPredictor"
CLASS_NAMES = {"python": "PythonPredictor", "onnx": "ONNXPredictor",
               "tensorflow": "TensorFlowPredictor"}

_PREDICT = (["self"], ["payload", "query_params", "headers", "batch_id"])
_POST_PREDICT = (["self"], ["response", "payload", "query_params", "headers"])

# Cortex v0.24 PYTHON_CLASS_VALIDATION.
REQUIRED_METHODS = {
    "__init__": (["self", "config"], ["python_client", "job_spec"]),
    "predict": _PREDICT,
}
OPTIONAL_METHODS = {
    "post_predict": _POST_PREDICT,
    "load_model": (["self", "model_path"], []),
    "on_job_complete": (["self"], []),
}
# With models configured, python_client and load_model become required.
MODELS_REQUIRED_METHODS = {
    "__init__": (["self", "config", "python_client"], ["job_spec"]),
    "predict": _PREDICT,
    "load_model": (["self", "model_path"], []),
}
# Cortex v0.24 ONNX_CLASS_VALIDATION.
ONNX_REQUIRED_METHODS = {
    "__init__": (["self", "onnx_client", "config"], ["job_spec"]),
    "predict": _PREDICT,
}
ONNX_OPTIONAL_METHODS = {
    "post_predict": _POST_PREDICT,
    "on_job_complete": (["self"], []),
}

TENSORFLOW_REFUSAL = (
    "the tensorflow predictor type is not supported by this platform: no TensorFlow runtime "
    "is available to it; export the model to ONNX (for example with tf2onnx) and use "
    "type: onnx with an ONNXPredictor instead")


class UserError(Exception):
    """A problem with the user's project; the message is meant for the user."""

    def __init__(self, *parts):
        super().__init__(": ".join(str(p) for p in parts if p))


def load_spec(path):
    with open(path, "rb") as f:
        spec = json.load(f)
    if not isinstance(spec, dict):
        raise UserError(f"{path}: the API spec must be a JSON object")
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        raise UserError(f"{path}: the API spec has no predictor")
    return spec


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        inner = value[1:-1]
        if value[0] == '"':
            inner = (inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\"))
        return inner
    # Unquoted: a " #" starts a comment.
    hash_at = value.find(" #")
    if hash_at >= 0:
        value = value[:hash_at].rstrip()
    return value


def parse_dotenv(text):
    """``VAR=value`` lines of a .env file: ``#`` comments, optional ``export``, quotes stripped."""
    result = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        eq = line.find("=")
        if eq <= 0:
            continue
        key = line[:eq].strip()
        if not key.replace("_", "a").isalnum() or key[0].isdigit():
            continue
        result[key] = _unquote(line[eq + 1:].strip())
    return result


def prepare_environment(spec):
    """chdir to the project, set sys.path and PYTHONPATH, then apply .env and predictor.env."""
    predictor = spec["predictor"]
    project_dir = os.path.abspath(spec.get("project_dir") or os.getcwd())
    if not os.path.isdir(project_dir):
        raise UserError(f"project directory {project_dir} does not exist")
    os.chdir(project_dir)

    python_path = predictor.get("python_path")
    import_dir = os.path.normpath(os.path.join(project_dir, python_path)) if python_path else project_dir
    if import_dir in sys.path:
        sys.path.remove(import_dir)
    sys.path.insert(0, import_dir)
    existing = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = import_dir + (os.pathsep + existing if existing else "")

    dotenv_path = os.path.join(project_dir, ".env")
    if os.path.isfile(dotenv_path):
        with open(dotenv_path, encoding="utf-8", errors="replace") as f:
            os.environ.update(parse_dotenv(f.read()))
    env = predictor.get("env") or {}
    if not isinstance(env, dict):
        raise UserError("predictor.env must be a map of strings")
    for key, value in env.items():
        os.environ[str(key)] = "" if value is None else str(value)
    return project_dir


def has_models(spec):
    """True when predictor.model_path or predictor.models is configured."""
    predictor = spec["predictor"]
    if predictor.get("model_path"):
        return True
    models = predictor.get("models")
    return isinstance(models, dict) and bool(models.get("paths") or models.get("dir"))


def predictor_class_name(spec):
    return CLASS_NAMES.get(spec["predictor"].get("type", "python"), PREDICTOR_CLASS_NAME)


def _check_predictor_type(spec):
    predictor = spec["predictor"]
    ptype = predictor.get("type", "python")
    if ptype == "tensorflow":
        raise UserError(TENSORFLOW_REFUSAL)
    if ptype not in CLASS_NAMES:
        raise UserError(f"predictor type {ptype!r} is not supported by the python runtime")
    if ptype == "onnx" and not has_models(spec):
        raise UserError("at least one model must be specified for the onnx predictor type "
                        "(predictor.model_path or predictor.models)")
    path = predictor.get("path")
    if not path:
        raise UserError("predictor.path is not set")
    return path


def _unpickle_predictor_class(path, full_path, project_dir, class_name):
    """The class in a pickle written by the Python client's create_api (pickled by reference:
    the modules it names are shipped in the project, or installed)."""
    if project_dir not in sys.path:
        sys.path.append(project_dir)  # python_path may have put another directory first
    try:
        with open(full_path, "rb") as f:
            cls = pickle.load(f)
    except (ImportError, AttributeError) as e:
        raise UserError(f"error in {path}", f"the pickled predictor cannot be imported: {e}; "
                        "ship its module in the project or list its package in "
                        "requirements.txt") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise UserError(f"error in {path}", f"not a pickled predictor class ({e})") from None
    if not inspect.isclass(cls) or cls.__name__ != class_name:
        raise UserError(f"error in {path}",
                        f"the pickle holds {cls!r}, not a {class_name} class")
    return cls


def load_predictor_class(spec, project_dir):
    """Executes the module at predictor.path and returns its predictor class."""
    path = _check_predictor_type(spec)
    class_name = predictor_class_name(spec)
    full_path = os.path.join(project_dir, path)
    if not os.path.isfile(full_path):
        raise UserError(f"error in {path}", "file does not exist")
    if path.endswith(".pickle"):
        return _unpickle_predictor_class(path, full_path, os.path.abspath(project_dir),
                                         class_name)
    module_spec = importlib.util.spec_from_file_location("predictor", full_path)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"error in {path}", "unable to load the file as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["predictor"] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop("predictor", None)
        raise

    found = [obj for name, obj in inspect.getmembers(module, inspect.isclass)
             if name == class_name]
    # getmembers returns each name once; a class is also "defined" under another name when a
    # module re-exports it, which Cortex reported as a duplicate definition.
    found += [obj for name, obj in vars(module).items()
              if inspect.isclass(obj) and name != class_name
              and obj.__name__ == class_name and obj not in found]
    if not found:
        raise UserError(f"error in {path}", f"{class_name} class is not defined")
    if len(found) > 1:
        raise UserError(
            f"error in {path}",
            f"multiple definitions for {class_name} class found; please check your "
            "imports and class definitions and ensure that there is only one Predictor class "
            "definition")
    return found[0]


def method_args(fn):
    """Names of the arguments of ``fn`` that can be passed by keyword (self included)."""
    spec = inspect.getfullargspec(fn)
    return list(spec.args) + list(spec.kwonlyargs)


def _validate_method(cls, name, required, optional, path):
    class_part = f"class {cls.__name__}"
    fn = getattr(cls, name, None)
    if fn is None:
        raise UserError(f"error in {path}", class_part, f'required method "{name}" is not defined')
    if not callable(fn):
        raise UserError(f"error in {path}", class_part, f'"{name}" is defined, but is not a method')
    try:
        args = method_args(fn)
    except TypeError as e:
        raise UserError(f"error in {path}", class_part,
                        f'unable to read the signature of method "{name}": {e}') from e
    fn_str = f'{name}({", ".join(args)})'
    for arg in required:
        if arg not in args:
            raise UserError(f"error in {path}", class_part, f'invalid signature for method "{fn_str}"',
                            f'"{arg}" is a required argument, but was not provided')
    if required and required[0] == "self" and args[0] != "self":
        raise UserError(f"error in {path}", class_part, f'invalid signature for method "{fn_str}"',
                        '"self" must be the first argument')
    seen = set()
    for arg in args:
        if arg not in required and arg not in optional:
            raise UserError(f"error in {path}", class_part, f'invalid signature for method "{fn_str}"',
                            f'"{arg}" is not a supported argument')
        if arg in seen:
            raise UserError(f"error in {path}", class_part, f'invalid signature for method "{fn_str}"',
                            f'"{arg}" is duplicated')
        seen.add(arg)
    return args


def validate_predictor_class(cls, spec):
    """Checks the method signatures; returns {method name: [argument names]}."""
    path = spec["predictor"].get("path", "")
    ptype = spec["predictor"].get("type", "python")
    if ptype == "onnx":
        required_methods, optional_methods = ONNX_REQUIRED_METHODS, ONNX_OPTIONAL_METHODS
    elif has_models(spec):
        required_methods, optional_methods = MODELS_REQUIRED_METHODS, OPTIONAL_METHODS
        class_part = f"class {cls.__name__}"
        if getattr(cls, "load_model", None) is None:
            raise UserError(f"error in {path}", class_part,
                            'required method "load_model" is not defined (a PythonPredictor must '
                            'define load_model(self, model_path) when predictor.model_path or '
                            'predictor.models is configured)')
        init = getattr(cls, "__init__", None)
        try:
            init_args = method_args(init) if callable(init) else []
        except TypeError:
            init_args = []
        if "python_client" not in init_args:
            raise UserError(f"error in {path}", class_part,
                            f'invalid signature for method "__init__({", ".join(init_args)})"',
                            '"python_client" is a required argument, but was not provided (the '
                            'constructor must declare python_client when predictor.model_path '
                            'or predictor.models is configured)')
    else:
        required_methods, optional_methods = REQUIRED_METHODS, OPTIONAL_METHODS
    signatures = {}
    for name, (required, optional) in required_methods.items():
        signatures[name] = _validate_method(cls, name, required, optional, path)
    for name, (required, optional) in optional_methods.items():
        if name in signatures:
            continue
        if any(name in vars(klass) for klass in cls.__mro__[:-1]):
            signatures[name] = _validate_method(cls, name, required, optional, path)
    return signatures


def _deep_merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def construct_predictor(cls, init_args, spec, clients=None):
    """Constructs the predictor with the keyword arguments its ``__init__`` declares.

    ``clients``: {"python_client": ..., "onnx_client": ...} when models are configured.
    """
    config = copy.deepcopy(spec["predictor"].get("config") or {})
    job_spec = spec.get("job_spec")
    if isinstance(job_spec, dict) and isinstance(job_spec.get("config"), dict):
        _deep_merge(config, job_spec["config"])
    available = {"config": config, "job_spec": copy.deepcopy(job_spec), "python_client": None,
                 "onnx_client": None}
    available.update(clients or {})
    kwargs = {name: available[name] for name in init_args if name in available}
    return cls(**kwargs)
