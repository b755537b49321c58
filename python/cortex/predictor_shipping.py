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

import ast
import builtins
import importlib
import inspect
import linecache
import os
import pickle
import sys
import sysconfig
import textwrap
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
    """Installed where the replica has its own copy: site/dist-packages or the standard library."""
    parts = os.path.normpath(path).split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    stdlib = os.path.normpath(sysconfig.get_paths()["stdlib"])
    return os.path.normpath(path).startswith(stdlib + os.sep)


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
        if path is None or not path.endswith(".py") and _installed(path):
            return {}  # built in, or an installed extension module
        if not path.endswith(".py"):
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


def _class_source(cls):
    """The class's source as its own module-level text, found through its methods' code objects
    and linecache (which IPython fills for each cell, where the module has no file), so that the
    class defined last under that name is the one shipped; inspect.getsource otherwise."""
    lines_seen = []
    for member in vars(cls).values():
        func = getattr(member, "__func__", member)
        func = getattr(func, "fget", func)
        func = getattr(func, "__wrapped__", func)
        code = getattr(func, "__code__", None)
        if code is not None:
            lines_seen.append((code.co_filename, code.co_firstlineno))
    for filename, line in lines_seen:
        text = "".join(linecache.getlines(filename))
        if not text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.ClassDef) and node.name == cls.__name__
                    and node.lineno <= line <= node.end_lineno):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                return textwrap.dedent("".join(text.splitlines(True)[first - 1:node.end_lineno]))
    try:
        return textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError) as e:
        raise CortexException(f"the source of {cls.__name__} cannot be read ({e}); define "
                              "the class in a module and import it") from None


def _bound_names(node):
    """The names a function or class body binds itself (arguments, assignments, imports, ...)."""
    bound = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None:
                bound.add(a.arg)
    body = node.body if isinstance(node.body, list) else [node.body]
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                bound.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                bound |= {(a.asname or a.name).split(".")[0] for a in sub.names}
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(sub.name)
    return bound


def _free_names(class_node):
    """The names the class reads from its module: in its bases, decorators, annotations,
    defaults and body, less what each function (or the class body) binds itself."""
    free = set()

    def visit(node, bound):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # Decorators, defaults and annotations are evaluated outside the function.
            outer = list(getattr(node, "decorator_list", [])) + node.args.defaults + \
                [d for d in node.args.kw_defaults if d is not None]
            for expr in outer:
                visit(expr, bound)
            inner = bound | _bound_names(node)
            for stmt in (node.body if isinstance(node.body, list) else [node.body]):
                visit(stmt, inner)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound:
                free.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, bound)

    for expr in class_node.bases + class_node.keywords + class_node.decorator_list:
        visit(expr, set())
    class_bound = set()
    for stmt in class_node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(stmt, set())  # a method does not see the class body's names
        else:
            visit(stmt, class_bound)
            class_bound |= {n.id for n in ast.walk(stmt)
                            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return free


_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def _plain(value):
    """A value whose repr is Python that rebuilds it (exact built-in types only)."""
    if type(value) in _PLAIN:
        try:
            return ast.literal_eval(repr(value)) == value
        except (ValueError, SyntaxError):
            return False  # inf, nan
    if type(value) in (list, tuple, set, frozenset):
        return all(_plain(v) for v in value)
    if type(value) is dict:
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


def _main_module(cls):
    """(the text of the module shipped for a __main__ class, the local modules it imports)."""
    source = _class_source(cls)
    try:
        class_node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
    except (SyntaxError, StopIteration):
        raise CortexException(f"the source of {cls.__name__} cannot be parsed; define the class "
                              "in a module and import it") from None
    namespace = vars(sys.modules[cls.__module__])
    lines, constants, modules = [], [], set()
    for name in sorted(_free_names(class_node)):
        if name not in namespace or name == cls.__name__:
            continue  # a builtin, or the class itself
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            modules.add(value.__name__)
            if value.__name__ == name:
                lines.append(f"import {name}")
            elif "." in value.__name__ and value.__name__.rsplit(".", 1)[1] == name:
                parent, child = value.__name__.rsplit(".", 1)
                lines.append(f"from {parent} import {child}")
            else:
                lines.append(f"import {value.__name__} as {name}")
        elif (where := _importable_as(value)) is not None:
            module, real = where
            modules.add(module)
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
    text = "\n".join(["# Shipped by cortex.Client.create_api from __main__."] + lines +
                     constants + ["", "", source])
    try:
        compile(text, MAIN_MODULE + ".py", "exec")
    except SyntaxError as e:
        raise CortexException(f"the shipped source of {cls.__name__} does not compile ({e}); "
                              "define the class in a module and import it") from None
    return text, modules


def ship(cls):
    """{project path: bytes}: the pickle, plus the sources the replica needs to import it."""
    predictor_type(cls)
    if cls.__module__ == "__main__":
        text, modules = _main_module(cls)
        files = {}
        for module in sorted(modules):  # local helper modules it imports go along
            files.update(_module_files(module))
        files[MAIN_MODULE + ".py"] = text.encode()
        files[PICKLE_PATH] = pickle.dumps(_ClassRef(MAIN_MODULE, cls.__name__))
        return files
    if _importable_as(cls) is None:
        raise CortexException(
            f"{cls.__module__}.{cls.__qualname__} cannot be imported by that name (a class "
            "defined inside a function cannot be shipped); define it at a module's top level")
    files = _module_files(cls.__module__)
    files[PICKLE_PATH] = pickle.dumps(cls)
    return files
