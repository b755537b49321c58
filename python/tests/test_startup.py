"""Worker start-up: environment, module loading, signature checks, construction (spec section 4)."""

import os


def assert_failed_start(w, *fragments):
    assert not w.accept_slots(), "the worker connected although start-up should fail"
    assert w.wait() == 1
    err = w.stderr
    assert "failed to start api" in err
    assert "Traceback (most recent call last)" in err
    for fragment in fragments:
        assert fragment in err, err


def test_init_exception_exits_1(start_worker):
    w = start_worker("""
        def helper():
            raise KeyError("missing-thing")

        class PythonPredictor:
            def __init__(self, config):
                helper()

            def predict(self, payload):
                return 1
    """, connect=False)
    assert_failed_start(w, "KeyError: 'missing-thing'", "in helper")


def test_import_error_exits_1(start_worker):
    w = start_worker("""
        import module_that_does_not_exist_42

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return 1
    """, connect=False)
    assert_failed_start(w, "module_that_does_not_exist_42")


def test_missing_class(start_worker):
    w = start_worker("""
        class Predictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return 1
    """, connect=False)
    assert_failed_start(w, "error in predictor.py: PythonPredictor class is not defined")


def test_multiple_definitions(start_worker):
    w = start_worker("""
        from base import PythonPredictor as Base

        class PythonPredictor(Base):
            pass
    """, files={"base.py": """
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return 1
    """}, connect=False)
    assert_failed_start(w, "multiple definitions for PythonPredictor class found")


def test_unknown_predict_argument(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload, extra):
                return 1
    """, connect=False)
    assert_failed_start(
        w, 'invalid signature for method "predict(self, payload, extra)"',
        '"extra" is not a supported argument')


def test_init_without_config(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self):
                pass

            def predict(self, payload):
                return 1
    """, connect=False)
    assert_failed_start(w, 'invalid signature for method "__init__(self)"',
                        '"config" is a required argument, but was not provided')


def test_missing_predict(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass
    """, connect=False)
    assert_failed_start(w, 'required method "predict" is not defined')


def test_self_must_be_first(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(config, self):
                pass

            def predict(self):
                return 1
    """, connect=False)
    assert_failed_start(w, '"self" must be the first argument')


def test_bad_post_predict_signature(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return 1

            def post_predict(self, response, prediction):
                pass
    """, connect=False)
    assert_failed_start(w, 'post_predict(self, response, prediction)',
                        '"prediction" is not a supported argument')


def test_tensorflow_refused(start_worker):
    w = start_worker("""
        class TensorFlowPredictor:
            def __init__(self, tensorflow_client, config):
                pass

            def predict(self, payload):
                return 1
    """, predictor={"type": "tensorflow", "model_path": "s3://bucket/model"}, connect=False)
    assert_failed_start(w, "the tensorflow predictor type is not supported",
                        "export the model to ONNX")


def test_optional_init_arguments_and_config(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, job_spec, config, python_client):
                config["nested"]["list"].append("mutated")
                self.seen = {"config": config, "job_spec": job_spec,
                             "python_client": python_client}

            def predict(self):
                return self.seen
    """, config={"nested": {"list": [1, 2]}, "s": "x"})
    r = w.request(body=b"")
    assert r.json() == {"config": {"nested": {"list": [1, 2, "mutated"]}, "s": "x"},
                        "job_spec": None, "python_client": None}


def test_environment(start_worker):
    w = start_worker("""
        import os, sys
        import helper_module  # found through python_path

        class PythonPredictor:
            def __init__(self, config):
                self.env = {k: os.environ.get(k) for k in
                            ("FROM_DOTENV", "QUOTED", "SINGLE", "EXPORTED", "OVERRIDDEN",
                             "FROM_SPEC", "WITH_HASH")}
                self.cwd = os.getcwd()
                self.path0 = sys.path[0]
                self.helper = helper_module.VALUE

            def predict(self):
                return {"env": self.env, "cwd": self.cwd, "path0": self.path0,
                        "helper": self.helper, "index": os.environ.get("CORTEX_PROCESS_INDEX")}
    """, files={
        ".env": """
            # a comment
            FROM_DOTENV=plain
            QUOTED="a b c"
            SINGLE='x=y'
            export EXPORTED=yes
            OVERRIDDEN=from-dotenv
            WITH_HASH=value # trailing comment

            not a variable line
        """,
        "lib/helper_module.py": "VALUE = 'helper loaded'\n",
    }, env={"OVERRIDDEN": "from-spec", "FROM_SPEC": "1"},
        predictor={"python_path": "lib"}, process_index=3)
    r = w.request(body=b"").json()
    assert r["env"] == {"FROM_DOTENV": "plain", "QUOTED": "a b c", "SINGLE": "x=y",
                        "EXPORTED": "yes", "OVERRIDDEN": "from-spec", "FROM_SPEC": "1",
                        "WITH_HASH": "value"}
    project = os.path.realpath(r["cwd"])
    assert os.path.basename(project).startswith("project")
    assert os.path.realpath(r["path0"]) == os.path.join(project, "lib")
    assert r["helper"] == "helper loaded"
    assert r["index"] == "3"


def test_project_dir_on_sys_path_by_default(start_worker):
    w = start_worker("""
        import sys
        from sibling import VALUE

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self):
                return {"value": VALUE, "path0": sys.path[0]}
    """, files={"sibling.py": "VALUE = 7\n"})
    r = w.request(body=b"").json()
    assert r["value"] == 7
    assert os.path.basename(r["path0"]).startswith("project")


def test_constructor_runs_on_slot_zero_thread(start_worker):
    w = start_worker("""
        import threading

        class PythonPredictor:
            def __init__(self, config):
                self.init_thread = threading.get_ident()

            def predict(self):
                return threading.get_ident() == self.init_thread
    """, slots=1)
    assert w.request(body=b"").json() is True
