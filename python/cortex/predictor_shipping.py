"""A predictor class turned into project files (``create_api(api_spec, predictor=cls)``).

Cortex v0.24 pickled the class with dill. This client uses the standard library's ``pickle``,
which stores a class *by reference* (its module and name), and ships what the replica needs to
import it:

* A class in an importable module (``from mypredictors import PythonPredictor``): pickled by
  reference, and the module's source file is shipped at its package path (``mypredictors.py``,
  or ``pkg/sub/mod.py`` with the ``__init__.py`` files of ``pkg`` and ``pkg/sub``), unless the
  module is installed (under ``site-packages``/``dist-packages``): then the replica must have it
  installed too (``requirements``).
* A class defined in ``__main__`` (a script or a notebook): its source (``inspect.getsource``) is
  shipped as the module ``cortex_predictor.py``, preceded by the globals its methods use: modules
  (``import numpy as np``), functions and classes of importable modules (``from x import y``) and
  plain constants (numbers, strings, booleans, None, and lists/tuples/dicts of them). A global of
  another kind (an object built in the notebook, a helper defined in ``__main__``) is an error
  that names it: move it into the class, or into a module.

The pickle is written to ``predictor.pickle`` and the API's ``predictor.path`` points at it; the
runtime unpickles it with the project directory on ``sys.path``.
"""

import builtins
import importlib
import inspect
import os
import pickle
import sys
import types

from cortex.exceptions import CortexException

PICKLE_PATH = "predictor.pickle"
MAIN_MODULE = "cortex_predictor"
PREDICTOR_TYPES = {"PythonPredictor": "python", "ONNXPredictor": "onnx",
                   "TensorFlowPredictor": "tensorflow"}


def predictor_type(cls):
    """The predictor type a class name stands for, as v0.24 inferred it."""
    if not inspect.isclass(cls):
        raise CortexException("predictor must be a class (PythonPredictor, ONNXPredictor or "
                              "TensorFlowPredictor), not an instance or a function")
    try:
        return PREDICTOR_TYPES[cls.__name__]
    except KeyError:
        raise CortexException(
            f"invalid class name {cls.__name__}: must be PythonPredictor, TensorFlowPredictor, "
            "or ONNXPredictor") from None


def _installed(path):
    parts = os.path.normpath(path).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def _module_files(module_name):
    """{project path: source bytes} for a module and the packages above it."""
    files = {}
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        module = sys.modules.get(name) or importlib.import_module(name)
        path = getattr(module, "__file__", None)
        if path is None and hasattr(module, "__path__"):
            continue  # a namespace package: a directory without __init__.py, nothing to ship
        if not path or not path.endswith(".py"):
            raise CortexException(
                f"module {name} has no Python source file to ship (it is {path or 'built in'})")
        if _installed(path):
            return {}  # installed: the replica imports its own copy
        rel = "/".join(parts[:depth])
        rel = rel + "/__init__.py" if os.path.basename(path) == "__init__.py" else rel + ".py"
        with open(path, "rb") as f:
            files[rel] = f.read()
    return files


class _ModuleRef:
    """Pickles as ``importlib.import_module(name)``."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return importlib.import_module, (self.name,)


class _ClassRef:
    """Pickles as ``getattr(importlib.import_module(module), name)``."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __reduce__(self):
        return getattr, (_ModuleRef(self.module), self.name)


def _global_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def _plain(value):
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _importable_as(value):
    """(module, name) when ``value`` can be imported from a module other than __main__."""
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not module or module == "__main__" or not name or "." in name:
        return None
    try:
        if getattr(importlib.import_module(module), name) is value:
            return module, name
    except (ImportError, AttributeError):
        pass
    return None


def _main_preamble(cls):
    """The statements that bind the globals the class's methods use."""
    namespace = vars(sys.modules[cls.__module__])
    names = set()
    for member in vars(cls).values():
        func = getattr(member, "__func__", member)  # staticmethod/classmethod
        if isinstance(func, property):
            func = func.fget
        code = getattr(func, "__code__", None)
        if code is not None:
            names |= _global_names(code)
    lines, constants = [], []
    for name in sorted(names):
        if name not in namespace or name == cls.__name__:
            continue  # an attribute name, a builtin, or the class itself
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            if value.__name__ == name:
                lines.append(f"import {name}")
            elif "." in value.__name__ and value.__name__.rsplit(".", 1)[1] == name:
                parent, child = value.__name__.rsplit(".", 1)
                lines.append(f"from {parent} import {child}")
            else:
                lines.append(f"import {value.__name__} as {name}")
        elif (where := _importable_as(value)) is not None:
            module, real = where
            lines.append(f"from {module} import {real}" +
                         ("" if real == name else f" as {name}"))
        elif _plain(value):
            constants.append(f"{name} = {value!r}")
        elif getattr(builtins, name, None) is value:
            continue
        else:
            raise CortexException(
                f"{cls.__name__} uses {name} ({type(value).__name__}) from __main__, which "
                "cannot be shipped with the class; define it inside the class, or in a module "
                "that the class is imported from")
    return lines + constants


def ship(cls):
    """{project path: bytes}: the pickle, plus the sources the replica needs to import it."""
    predictor_type(cls)
    if cls.__module__ == "__main__":
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError) as e:
            raise CortexException(f"the source of {cls.__name__} cannot be read ({e}); define "
                                  "the class in a module and import it") from None
        text = "\n".join(["# Shipped by cortex.Client.create_api from __main__."] +
                         _main_preamble(cls) + ["", "", source])
        reference = _ClassRef(MAIN_MODULE, cls.__name__)
        return {MAIN_MODULE + ".py": text.encode(), PICKLE_PATH: pickle.dumps(reference)}
    if _importable_as(cls) is None:
        raise CortexException(
            f"{cls.__module__}.{cls.__qualname__} cannot be imported by that name (a class "
            "defined inside a function cannot be shipped); define it at a module's top level")
    files = _module_files(cls.__module__)
    files[PICKLE_PATH] = pickle.dumps(cls)
    return files
