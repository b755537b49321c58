"""The Python client's own parts, without an operator: environments, project packing, and the
shipping of predictor classes (run in subprocesses, so that __main__ is a real script)."""

import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import textwrap

import pytest

from cortex import environments, predictor_shipping, project
from cortex.exceptions import CortexException
from conftest import PYTHON, PYTHON_DIR


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CORTEX_CLI_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_environments_round_trip_and_checks(config_dir):
    with pytest.raises(CortexException, match="start the local cluster"):
        environments.find(None)
    environments.upsert({"name": "local", "provider": "local",
                         "operator_endpoint": "http://127.0.0.1:1", "operator_token": "t"})
    environments.upsert({"name": "k", "provider": "kubernetes",
                         "operator_endpoint": "https://op.example"})
    assert environments.find(None)["operator_token"] == "t"
    assert environments.find("k")["provider"] == "kubernetes"
    assert oct(os.stat(config_dir).st_mode & 0o777) == "0o700"
    environments.delete("local")
    assert environments.load()["default_environment"] == "k"
    for bad, message in [
            ({"name": "x", "provider": "aws", "operator_endpoint": "http://a"},
             "provider aws is not supported"),
            ({"name": "local", "provider": "kubernetes", "operator_endpoint": "http://a"},
             "the local environment must use the local provider"),
            ({"name": "x", "provider": "local", "operator_endpoint": "a:1"},
             'operator endpoint "a:1" must start with http:// or https://')]:
        with pytest.raises(CortexException, match=message):
            environments.upsert(bad)
    with pytest.raises(CortexException, match="environment nope is not configured"):
        environments.find("nope")


def test_the_cli_yaml_written_by_the_cli_is_read(config_dir):
    config_dir.mkdir()
    (config_dir / "cli.yaml").write_text(
        "default_environment: local\nenvironments:\n  - name: local\n    provider: local\n"
        "    operator_endpoint: http://127.0.0.1:8890\n    operator_token: abc\n")
    assert environments.find("local") == {"name": "local", "provider": "local",
                                          "operator_endpoint": "http://127.0.0.1:8890",
                                          "operator_token": "abc"}
    (config_dir / "cli.yaml").write_text("environments: 3\n")
    with pytest.raises(CortexException, match="environments: must be a list"):
        environments.load()


def test_project_files_follow_the_cli_rules(tmp_path):
    files = {"predictor.py": "x", "lib/util.py": "y", ".hidden": "h", ".git/config": "g",
             "__pycache__/a.cpython-311.pyc": "c", "lib/b.pyc": "c", "cortex-debug-1.tgz": "d",
             ".env": "A=1", "data/big.bin": "z", "data/keep.txt": "k", ".cortexignore": "data/*\n!data/keep.txt\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert project.list_files(tmp_path) == [".env", "data/keep.txt", "lib/util.py",
                                            "predictor.py"]


def test_pack_is_deterministic_and_extra_files_win(tmp_path):
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "run.sh", 0o755)
    (tmp_path / "a.py").write_text("old")
    archive, digest = project.pack(tmp_path, {"a.py": b"new"})
    os.utime(tmp_path / "run.sh", (1, 1))
    assert project.pack(tmp_path, {"a.py": b"new"}) == (archive, digest)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["a.py", "run.sh"]
        assert tar.extractfile("a.py").read() == b"new"
        assert members["run.sh"].mode == 0o755 and members["a.py"].mode == 0o644
        assert all(m.mtime == 0 and m.uid == 0 for m in members.values())
    assert project.pack(None, {"x": b"1"})[1] != digest


def test_predictor_type_from_the_class_name():
    class PythonPredictor:
        pass

    class ONNXPredictor:
        pass

    class Model:
        pass

    assert predictor_shipping.predictor_type(PythonPredictor) == "python"
    assert predictor_shipping.predictor_type(ONNXPredictor) == "onnx"
    with pytest.raises(CortexException, match="invalid class name Model: must be"):
        predictor_shipping.predictor_type(Model)
    with pytest.raises(CortexException, match="must be a class"):
        predictor_shipping.predictor_type(PythonPredictor())
    with pytest.raises(CortexException, match="defined inside a function cannot be shipped"):
        predictor_shipping.ship(PythonPredictor)


def run_script(tmp_path, script, *args):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    p = subprocess.run([PYTHON, str(path), *args], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": f"{PYTHON_DIR}:{tmp_path}"})
    return p


def unpickle_in(project_dir):
    """Loads predictor.pickle in a fresh interpreter with only the project on sys.path, and calls
    predict on an instance: what a replica does."""
    code = textwrap.dedent("""
        import json, pickle, sys
        sys.path.insert(0, sys.argv[1])
        with open(sys.argv[1] + "/predictor.pickle", "rb") as f:
            cls = pickle.load(f)
        print(json.dumps([cls.__name__, cls(config={"k": 2}).predict([1, 2])]))
    """)
    p = subprocess.run([PYTHON, "-c", code, str(project_dir)], capture_output=True, text=True,
                       timeout=60, cwd="/")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def write_shipped(files, directory):
    for rel, data in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)


def test_a_main_class_ships_its_source_and_the_globals_it_uses(tmp_path):
    p = run_script(tmp_path, """
        import json, os, sys
        import os.path as osp
        from statistics import mean
        from cortex import predictor_shipping

        SCALE = {"factor": 10}

        class PythonPredictor:
            def __init__(self, config):
                self.k = config["k"]

            def predict(self, payload):
                return {"mean": mean(payload) * SCALE["factor"] * self.k,
                        "sep": osp.sep, "json": json.dumps(1)}

        sys.stdout.write(__import__("pickle").dumps(predictor_shipping.ship(PythonPredictor)).hex())
    """)
    assert p.returncode == 0, p.stderr
    files = pickle.loads(bytes.fromhex(p.stdout))
    source = files["cortex_predictor.py"].decode()
    assert "import json" in source and "from statistics import mean" in source
    assert "SCALE = {'factor': 10}" in source and "as osp" in source
    assert "import sys" not in source  # unused
    shipped = tmp_path / "shipped"
    write_shipped(files, shipped)
    assert unpickle_in(shipped) == ["PythonPredictor", {"mean": 30.0, "sep": "/", "json": "1"}]


def test_a_main_class_using_an_object_of_main_is_refused_by_name(tmp_path):
    p = run_script(tmp_path, """
        from cortex import predictor_shipping

        class Table:
            pass

        TABLE = Table()

        class PythonPredictor:
            def predict(self, payload):
                return TABLE

        predictor_shipping.ship(PythonPredictor)
    """)
    assert p.returncode != 0
    assert "PythonPredictor uses TABLE (Table) from __main__, which cannot be shipped" in p.stderr


def test_an_importable_class_is_pickled_by_reference_with_its_package(tmp_path):
    (tmp_path / "mypkg" / "sub").mkdir(parents=True)
    (tmp_path / "mypkg" / "__init__.py").write_text("BASE = 5\n")
    (tmp_path / "mypkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "sub" / "predictors.py").write_text(textwrap.dedent("""
        import mypkg

        class PythonPredictor:
            def __init__(self, config):
                self.k = config["k"]

            def predict(self, payload):
                return sum(payload) * self.k + mypkg.BASE
    """))
    p = run_script(tmp_path, """
        import pickle, sys
        from mypkg.sub.predictors import PythonPredictor
        from cortex import predictor_shipping
        sys.stdout.write(pickle.dumps(predictor_shipping.ship(PythonPredictor)).hex())
    """)
    assert p.returncode == 0, p.stderr
    files = pickle.loads(bytes.fromhex(p.stdout))
    assert sorted(files) == ["mypkg/__init__.py", "mypkg/sub/__init__.py",
                             "mypkg/sub/predictors.py", "predictor.pickle"]
    shipped = tmp_path / "shipped"
    write_shipped(files, shipped)
    assert unpickle_in(shipped) == ["PythonPredictor", 11]


def test_a_class_in_a_namespace_package_ships_its_module_only(tmp_path):
    (tmp_path / "nspkg").mkdir()  # no __init__.py
    (tmp_path / "nspkg" / "mod.py").write_text(
        "class PythonPredictor:\n"
        "    def __init__(self, config):\n        self.k = config['k']\n"
        "    def predict(self, payload):\n        return self.k * len(payload)\n")
    p = run_script(tmp_path, """
        import pickle, sys
        from nspkg.mod import PythonPredictor
        from cortex import predictor_shipping
        sys.stdout.write(pickle.dumps(predictor_shipping.ship(PythonPredictor)).hex())
    """)
    assert p.returncode == 0, p.stderr
    files = pickle.loads(bytes.fromhex(p.stdout))
    assert sorted(files) == ["nspkg/mod.py", "predictor.pickle"]
    shipped = tmp_path / "shipped"
    write_shipped(files, shipped)
    assert unpickle_in(shipped) == ["PythonPredictor", 4]


def test_a_notebook_cell_class_with_decorators_bases_and_attributes_ships(tmp_path):
    """As in IPython: the module has no __file__ and the cell's source is in linecache; the
    class is defined twice (the last one counts) and indented under a block."""
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    p = run_script(tmp_path, '''
        import linecache, pickle, sys
        cell = """
        import functools
        from collections import OrderedDict
        from numbers import Number
        from helpers import double

        LIMIT = 3
        model = object()  # a notebook object, only ever used as self.model

        class PythonPredictor:
            def predict(self, payload):
                return "first definition"

        if True:
            class PythonPredictor(OrderedDict):
                SCALE: Number = LIMIT

                def __init__(self, config):
                    super().__init__()
                    self.model = config["k"]

                @functools.lru_cache(maxsize=None)
                def cached(self, n):
                    return n

                def predict(self, payload):
                    from math import floor as model_floor
                    model = self.model  # a local that shadows the notebook's global
                    return double(model_floor(sum(payload))) * self.SCALE * model
        """
        import textwrap
        cell = textwrap.dedent(cell)
        name = "<ipython-input-3-0123456789ab>"
        linecache.cache[name] = (len(cell), None, cell.splitlines(True), name)
        del sys.modules["__main__"].__file__
        exec(compile(cell, name, "exec"), sys.modules["__main__"].__dict__)
        from cortex import predictor_shipping
        sys.stdout.write(pickle.dumps(predictor_shipping.ship(PythonPredictor)).hex())
    ''')
    assert p.returncode == 0, p.stderr
    files = pickle.loads(bytes.fromhex(p.stdout))
    assert sorted(files) == ["cortex_predictor.py", "helpers.py", "predictor.pickle"]
    source = files["cortex_predictor.py"].decode()
    assert "first definition" not in source, source
    for line in ("import functools", "from collections import OrderedDict",
                 "from numbers import Number", "from helpers import double", "LIMIT = 3"):
        assert line in source.splitlines(), (line, source)
    assert "model =" not in source.split("class PythonPredictor")[0], source
    shipped = tmp_path / "shipped"
    write_shipped(files, shipped)
    assert unpickle_in(shipped) == ["PythonPredictor", 2 * 3 * 3 * 2]


def test_constants_whose_repr_is_not_python_are_refused(tmp_path):
    p = run_script(tmp_path, """
        from cortex import predictor_shipping

        CEILING = float("inf")

        class PythonPredictor:
            def predict(self, payload):
                return min(payload, CEILING)

        predictor_shipping.ship(PythonPredictor)
    """)
    assert p.returncode != 0
    assert "PythonPredictor uses CEILING (float) from __main__" in p.stderr, p.stderr


# The CLI's IgnoreRules cases (src/bundle/bundle_test.cc), so both pack the same files.
IGNORE_CASES = [
    ("*.log", "a.log", False, True), ("*.log", "x/y/a.log", False, True),
    ("*.log", "a.log.txt", False, False), ("foo", "x/foo", True, True),
    ("file?.txt", "file1.txt", False, True), ("file?.txt", "file10.txt", False, False),
    ("[ab].txt", "b.txt", False, True), ("[ab].txt", "c.txt", False, False),
    ("# a.log\n\n", "# a.log", False, False), ("\\#a", "#a", False, True),
    ("\\!a", "!a", False, True), ("a.log   \r\n", "a.log", False, True),
    ("*.log\n!keep.log", "keep.log", False, False), ("*.log\n!keep.log", "x/keep.log", False, False),
    ("*.log\n!keep.log", "other.log", False, True), ("!keep.log\n*.log", "keep.log", False, True),
    ("build/", "build", True, True), ("build/", "build", False, False),
    ("build/", "x/build/y.o", False, True), ("build/\n!build/keep", "build/keep", False, True),
    ("/top.txt", "top.txt", False, True), ("/top.txt", "x/top.txt", False, False),
    ("docs/*.md", "docs/a.md", False, True), ("docs/*.md", "x/docs/a.md", False, False),
    ("docs/*.md", "docs/sub/a.md", False, False), ("docs/", "x/docs", True, True),
    ("**/foo", "foo", False, True), ("**/foo", "a/b/foo", False, True),
    ("**/foo/bar", "a/foo/bar", False, True), ("abc/**", "abc", True, False),
    ("abc/**", "abc/x", False, True), ("abc/**", "abc/x/y", False, True),
    ("abc/**\n!abc/keep", "abc/keep", False, False), ("a/**/b", "a/b", False, True),
    ("a/**/b", "a/x/b", False, True), ("a/**/b", "a/x/y/b", False, True),
    ("a/**/b", "a/xb", False, False), ("a/**/*.bin", "a/1/2/w.bin", False, True),
    ("!", "x", False, False),
]


@pytest.mark.parametrize("rules,path,is_dir,ignored", IGNORE_CASES)
def test_ignore_rules_match_the_clis(rules, path, is_dir, ignored):
    from cortex.ignore_rules import IgnoreRules
    assert IgnoreRules(rules).ignored(path, is_dir) is ignored


def test_project_listing_applies_cortexignore_as_the_cli(tmp_path):
    (tmp_path / ".cortexignore").write_text(
        "# build output\n\n*.log\n!keep.log\nbuild/\n/top.txt\ndata/**/*.bin\nmodels/**\n"
        "!models/README.md\n")
    for rel in ("a.log", "sub/b.log", "sub/keep.log", "build/out.o", "sub/build/out.o", "top.txt",
                "sub/top.txt", "data/x.bin", "data/a/b/y.bin", "data/y.txt", "models/w.pt",
                "models/v1/w.pt", "models/README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert project.list_files(tmp_path) == ["data/y.txt", "models/README.md", "sub/keep.log",
                                            "sub/top.txt"]
