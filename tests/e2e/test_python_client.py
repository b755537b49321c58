"""The Python client (`import cortex`, docs/python-client.md) end to end: against a real local
cluster, with a predictor class from a script's __main__ (as in a notebook), from an importable
module, and from a project directory; the other methods, environments and errors."""

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import PYTHON, REPO_ROOT, free_port

sys.path.insert(0, os.path.join(REPO_ROOT, "python"))
import cortex  # noqa: E402
from cortex import CortexException  # noqa: E402

MARKER = "RESULT:"


@pytest.fixture
def client_env(module_cluster, monkeypatch):
    """This process's client sees the cluster's cli.yaml (and never a proxy)."""
    monkeypatch.setenv("CORTEX_CLI_CONFIG_DIR", module_cluster.config_dir)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return module_cluster


def run_script(cluster, tmp_path, script):
    """Runs a script (its own __main__, as a notebook's cells are) with the repo's client."""
    path = tmp_path / "notebook.py"
    path.write_text(textwrap.dedent(script))
    env = dict(cluster.env, PYTHONPATH=os.path.join(REPO_ROOT, "python"))
    p = subprocess.run([PYTHON, str(path)], capture_output=True, text=True, timeout=120, env=env,
                       cwd=str(tmp_path))
    results = [line[len(MARKER):] for line in p.stdout.splitlines() if line.startswith(MARKER)]
    return p, (json.loads(results[-1]) if results else None)


def test_a_class_defined_in_main_is_deployed_and_answers(client_env, tmp_path):
    c = client_env
    p, result = run_script(c, tmp_path, f"""
        import json
        from statistics import mean

        import cortex

        LABELS = ["small", "large"]

        class PythonPredictor:
            def __init__(self, config):
                self.threshold = config["threshold"]

            def predict(self, payload):
                return {{"label": LABELS[int(mean(payload["x"]) > self.threshold)]}}

        client = cortex.client("local")
        spec = {{"name": "pc-main", "kind": "RealtimeAPI",
                 "predictor": {{"config": {{"threshold": 2}}}}}}
        result = client.create_api(spec, predictor=PythonPredictor, wait=True)
        print("{MARKER}" + json.dumps(result))
    """)
    assert p.returncode == 0, p.stderr + p.stdout
    assert result["message"] == "creating pc-main (RealtimeAPI)", result
    assert result["error"] == ""
    # v0.24's DeployResult: the API's spec and endpoint.
    assert result["api"]["spec"]["predictor"]["path"] == "predictor.pickle", result
    assert result["api"]["spec"]["predictor"]["type"] == "python", result
    assert result["api"]["endpoint"] == c.url("pc-main"), result
    r = c.http.post(result["api"]["endpoint"], json={"x": [1, 2, 9]}, timeout=30)
    assert r.status_code == 200 and r.json() == {"label": "large"}, r.text
    r = c.http.post(result["api"]["endpoint"], json={"x": [1, 2]}, timeout=30)
    assert r.json() == {"label": "small"}, r.text
    assert cortex_delete(c, "pc-main")


def cortex_delete(c, name):
    return c.cli("delete", name, "-f")[0] == 0


def test_an_importable_class_and_every_client_method(client_env, tmp_path, monkeypatch):
    c = client_env
    (tmp_path / "mypredictors.py").write_text(textwrap.dedent("""
        class PythonPredictor:
            def __init__(self, config):
                self.scale = config["scale"]

            def predict(self, payload):
                print("predicting", payload["n"], flush=True)
                return {"answer": payload["n"] * self.scale}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from mypredictors import PythonPredictor

    client = cortex.client("local")
    assert repr(client) == "cortex.Client(env='local')"
    spec = {"name": "pc-mod", "kind": "RealtimeAPI", "predictor": {"config": {"scale": 3}}}
    result = client.create_api(spec, predictor=PythonPredictor, wait=True)
    assert spec == {"name": "pc-mod", "kind": "RealtimeAPI",
                    "predictor": {"config": {"scale": 3}}}  # the caller's dict is unchanged
    endpoint = result["api"]["endpoint"]
    assert c.http.post(endpoint, json={"n": 7}, timeout=30).json() == {"answer": 21}

    api = client.get_api("pc-mod")
    assert api["status"]["status_code"] == "status_live", api
    assert api["spec"]["predictor"]["config"] == {"scale": 3}
    assert "pc-mod" in [a["spec"]["name"] for a in client.list_apis()]

    # The same class again: the project is the same, so the API is up to date.
    again = client.create_api(spec, predictor=PythonPredictor)
    assert again["message"] == "pc-mod (RealtimeAPI) is up to date", again

    logs = io.StringIO()
    client.stream_api_logs("pc-mod", follow=False, out=logs)
    assert "predicting 7" in logs.getvalue(), logs.getvalue()

    # patch: a changed config, with the project already deployed.
    patched = dict(api["spec"], predictor=dict(api["spec"]["predictor"], config={"scale": 5}))
    patched = {k: patched[k] for k in ("name", "kind", "predictor")}
    assert client.patch(patched)["message"] == "updating pc-mod (RealtimeAPI)"
    c.wait_until(lambda: c.http.post(endpoint, json={"n": 7}, timeout=30).json() == {"answer": 35},
                 60, interval=0.3, message="the patched config to answer")

    c.wait_live("pc-mod")
    assert client.refresh("pc-mod", force=True) == "updating pc-mod"
    assert client.delete_api("pc-mod") == "deleting pc-mod"
    with pytest.raises(CortexException) as e:
        client.get_api("pc-mod")
    assert e.value.status == 404 and str(e.value) == "pc-mod is not deployed"


def test_a_project_directory_and_a_batch_job(client_env, tmp_path):
    c = client_env
    project = tmp_path / "project"
    project.mkdir()
    (project / "predictor.py").write_text(textwrap.dedent("""
        import time

        class PythonPredictor:
            def __init__(self, config, job_spec):
                print("worker for job", job_spec["job_id"], flush=True)

            def predict(self, payload, batch_id):
                time.sleep(0.5)
    """))
    client = cortex.client()
    result = client.create_api({"name": "pc-batch", "kind": "BatchAPI",
                                "predictor": {"type": "python", "path": "predictor.py"}},
                               project_dir=str(project))
    assert result["message"] == "created pc-batch (BatchAPI)", result
    def submit():  # the gateway learns the new route a moment after the deploy
        r = c.http.post(result["api"]["endpoint"], timeout=60, json={
            "workers": 1, "item_list": {"items": list(range(40)), "batch_size": 1}})
        assert r.status_code in (200, 404), r.text
        return r if r.status_code == 200 else None
    r = c.wait_until(submit, 10, interval=0.05, message="the job to be submitted")
    job_id = r.json()["job_id"]

    job = client.get_job("pc-batch", job_id)
    assert job["job_status"]["job_id"] == job_id
    assert job["job_status"]["status"] in ("status_enqueuing", "status_running"), job
    assert isinstance(job["job_status"]["batches_in_queue"], int)
    c.wait_until(lambda: "worker for job" in job_log(client, job_id), 60, interval=0.3,
                 message="the worker to start")
    assert client.stop_job("pc-batch", job_id) == f"stopped job {job_id}"
    assert client.get_job("pc-batch", job_id)["job_status"]["status"] == "status_stopped"
    assert "job stopped by the user" in job_log(client, job_id)
    with pytest.raises(CortexException, match="cannot stop batch job because it is not in progress"):
        client.stop_job("pc-batch", job_id)
    client.delete_api("pc-batch")


def job_log(client, job_id):
    out = io.StringIO()
    client.stream_job_logs("pc-batch", job_id, follow=False, out=out)
    return out.getvalue()


def test_errors_carry_the_operators_message(client_env, tmp_path):
    client = cortex.client("local")
    (tmp_path / "predictor.py").write_text("class PythonPredictor:\n    pass\n")
    with pytest.raises(CortexException) as e:
        client.create_api({"name": "pc-bad", "kind": "RealtimeAPI",
                           "predictor": {"type": "python", "path": "predictor.py"},
                           "compute": {"cpu": "lots"}}, project_dir=str(tmp_path))
    assert "pc-bad (RealtimeAPI): compute: cpu" in str(e.value), e.value
    assert e.value.status == 400

    class PythonPredictor:
        pass

    with pytest.raises(CortexException, match="cannot be specified at the same time"):
        client.create_api({"name": "x"}, predictor=PythonPredictor, project_dir=str(tmp_path))
    with pytest.raises(CortexException, match="either `predictor` or `project_dir`"):
        client.create_api({"name": "x", "kind": "RealtimeAPI"})
    with pytest.raises(CortexException, match="defined inside a function cannot be shipped"):
        client.create_api({"name": "x"}, predictor=PythonPredictor)

    url = f"http://127.0.0.1:{client_env.operator_port}"
    stranger = cortex.Client({"name": "stranger", "provider": "local", "operator_endpoint": url,
                              "operator_token": "wrong"})
    with pytest.raises(CortexException) as e:  # the upload's HEAD is the first call
        stranger.create_api({"name": "pc-x", "kind": "RealtimeAPI",
                             "predictor": {"type": "python", "path": "predictor.py"}},
                            project_dir=str(tmp_path))
    assert e.value.status == 401, e.value
    assert "the operator refused the token of environment stranger" in str(e.value), e.value

    dead = f"http://127.0.0.1:{free_port()}"
    offline = cortex.Client({"name": "offline", "provider": "local", "operator_endpoint": dead})
    with pytest.raises(CortexException, match=f"unable to connect to the operator at {dead} "
                                              r"\(environment offline\)"):
        offline.list_apis()


def test_environments_are_shared_with_the_cli(client_env):
    c = client_env
    url = f"http://127.0.0.1:{c.operator_port}"
    try:
        remote = cortex.cluster_client("pc-env", "local", url, operator_token=c.token())
        assert remote.list_apis() == cortex.client("local").list_apis()
        listed = {e["name"]: e for e in cortex.env_list()}
        assert listed["pc-env"] == {"name": "pc-env", "provider": "local", "operator_endpoint": url,
                                    "default": False}
        assert listed["local"]["default"] is True
        cli_view = {e["name"]: e for e in json.loads(c.cli_ok("env", "list", "-o", "json"))}
        assert cli_view["pc-env"]["operator_endpoint"] == url
        assert c.cli_ok("get", "-e", "pc-env").strip()  # the CLI reaches the operator with it

        with pytest.warns(UserWarning, match="aws_access_key_id, aws_secret_access_key: ignored"):
            cortex.local_client("AKID", "SECRET")
        with pytest.raises(CortexException, match="provider aws is not supported"):
            cortex.cluster_client("aws", "aws", "https://example.invalid")
    finally:  # the shared cluster's cli.yaml is left as it was
        if any(e["name"] == "pc-env" for e in cortex.env_list()):
            cortex.env_delete("pc-env")
    assert "pc-env" not in [e["name"] for e in cortex.env_list()]
    with pytest.raises(CortexException, match="environment pc-env is not configured"):
        cortex.client("pc-env")


def test_the_notebook_example_runs(client_env):
    c = client_env
    env = dict(c.env, PYTHONPATH=os.path.join(REPO_ROOT, "python"))
    p = subprocess.run([PYTHON, os.path.join(REPO_ROOT, "examples", "python-client",
                                             "notebook.py")],
                       capture_output=True, text=True, timeout=120, env=env, cwd=c.root)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "creating greeter (RealtimeAPI)" in p.stdout, p.stdout
    assert "{'greeting': 'hi, Cortex', 'vowels': 2}" in p.stdout, p.stdout
    assert "deleting greeter" in p.stdout, p.stdout


def test_a_traffic_splitter_needs_no_project(client_env, tmp_path):
    c = client_env
    (tmp_path / "predictor.py").write_text(textwrap.dedent("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return "from-target"
    """))
    client = cortex.client("local")
    client.create_api({"name": "pc-target", "kind": "RealtimeAPI",
                       "predictor": {"type": "python", "path": "predictor.py"}},
                      project_dir=str(tmp_path), wait=True)
    result = client.create_api({"name": "pc-split", "kind": "TrafficSplitter",
                                "apis": [{"name": "pc-target", "weight": 100}]})
    assert result["message"] == "created pc-split (TrafficSplitter)", result
    answer = c.wait_until(
        lambda: (lambda r: r if r.status_code == 200 else None)(
            c.http.post(result["api"]["endpoint"], json={}, timeout=30)),
        10, interval=0.05, message="the splitter to route")
    assert answer.text == "from-target", answer.text  # a str answer is plain text
    client.delete_api("pc-split")
    client.delete_api("pc-target")
