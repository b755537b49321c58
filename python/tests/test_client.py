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
