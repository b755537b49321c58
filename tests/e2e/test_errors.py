"""Bad input: invalid configurations, bad requests, a predictor that cannot start, no cluster."""

import os

import pytest

from conftest import api_yaml

GOOD_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"got": payload}
"""

# (case id, cortex.yaml text, texts that the error message must contain)
INVALID_CONFIGS = [
    ("invalid-yaml",
     "- name: broken-api\n  kind: RealtimeAPI\n  predictor:\n    type: python\n"
     "    path: predictor.py\n   bad: [\n",
     ["invalid yaml"]),
    ("unknown-key",
     api_yaml("broken-api", predictor_extra="bogus_key: 1"),
     ["broken-api", "predictor", "bogus_key"]),
    ("wrong-type",
     api_yaml("broken-api", predictor_extra="processes_per_replica: lots"),
     ["broken-api", "predictor", "processes_per_replica"]),
    ("wrong-type-autoscaling",
     api_yaml("broken-api", extra="autoscaling:\n  max_replica_concurrency: [1, 2]"),
     ["broken-api", "autoscaling", "max_replica_concurrency"]),
    ("missing-predictor-file",
     api_yaml("broken-api", predictor_path="does_not_exist.py"),
     ["broken-api", "predictor", "path", "does_not_exist.py"]),
]


def test_invalid_configurations_are_rejected_and_nothing_is_deployed(cluster):
    failures = []
    for case, yaml_text, expected in INVALID_CONFIGS:
        # A config file not named cortex.yaml: the message must name this file.
        project = cluster.project(case, {"my-apis.yaml": yaml_text, "predictor.py": GOOD_PREDICTOR})
        rc, out, err = cluster.deploy(os.path.join(project, "my-apis.yaml"))
        message = err.strip()
        problems = []
        if rc == 0:
            problems.append("exit status 0")
        if "my-apis.yaml" not in message:
            problems.append("file name missing")
        problems += [f"{text!r} missing" for text in expected if text not in message]
        if len(message.splitlines()) != 1:
            problems.append("not exactly one line on stderr")
        if "creating" in out or "updating" in out:
            problems.append("stdout says something was deployed")
        if problems:
            failures.append(f"{case}: {', '.join(problems)}; rc={rc} stdout={out!r} stderr={err!r}")
    assert not failures, "\n".join(failures)

    assert cluster.list_apis() == []
    assert "no apis are deployed" in cluster.cli_ok("get")


def test_all_or_nothing_when_one_api_of_several_is_invalid(cluster):
    yaml_text = (api_yaml("good-api")
                 + api_yaml("bad-api", predictor_extra="threads_per_process: -3"))
    rc, out, err = cluster.deploy({"cortex.yaml": yaml_text, "predictor.py": GOOD_PREDICTOR})
    assert rc != 0, out
    assert "cortex.yaml" in err and "bad-api" in err and "threads_per_process" in err, err
    assert cluster.list_apis() == []


def test_gateway_rejects_bad_requests(cluster):
    name = "strict"
    cluster.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": GOOD_PREDICTOR})
    cluster.wait_live(name)

    r = cluster.post(name, data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "error" in r.json()

    r = cluster.post(name, {"a": [1, 2]})
    assert r.status_code == 200 and r.json() == {"got": {"a": [1, 2]}}, r.text

    r = cluster.post("no-such-api", {})
    assert r.status_code == 404, r.text
    assert "error" in r.json()
    r = cluster.post(name + "/extra", {})  # endpoints match exactly
    assert r.status_code == 404, r.text
    r = cluster.http.get(cluster.url("no-such-api"), timeout=10)
    assert r.status_code == 404, r.text

    rc, _, err = cluster.cli("get", "no-such-api")
    assert rc != 0 and "no-such-api is not deployed" in err, err
    rc, _, err = cluster.cli("delete", "no-such-api", "-f")
    assert rc != 0 and "no-such-api is not deployed" in err, err


FAILING_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        raise RuntimeError("init exploded: marker-7f3a")

    def predict(self, payload):
        return {}
"""


def test_predictor_init_error_sets_status_error_and_logs_traceback(cluster):
    name = "crashy"
    out = cluster.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": FAILING_PREDICTOR})
    assert f"creating {name}" in out

    cluster.wait_until(lambda: cluster.status_code(name) == "status_error", 20, interval=0.1,
                       message=f"{name} to report status_error")
    out = cluster.cli_ok("get", name)
    assert "error" in out, out

    def traceback_logged():
        log = cluster.api_log(name)
        return "Traceback" in log and "RuntimeError: init exploded: marker-7f3a" in log
    cluster.wait_until(traceback_logged, 10, message="the traceback in cortex logs")

    # Never ready: the gateway knows the endpoint but has nowhere to send requests.
    def unavailable():
        return cluster.post(name, {}, timeout=10).status_code == 503
    cluster.wait_until(unavailable, 10, message="503 from an api without ready replicas")

    rc, out, err = cluster.cli("predict", name, os.path.join(cluster.root, "missing.json"))
    assert rc != 0
    assert "not ready" in err, err

    # It never becomes live on its own.
    assert cluster.status_code(name) != "status_live"


def test_cli_without_cluster_points_to_cluster_up(cluster_factory):
    never_started = cluster_factory(start=False)
    for args in (("get",), ("get", "x"), ("logs", "x", "--no-follow"), ("delete", "x", "-f")):
        rc, out, err = never_started.cli(*args)
        assert rc != 0, (args, out)
        assert "cortex cluster up" in err, (args, err)
    project = never_started.project("p", {"cortex.yaml": api_yaml("x"),
                                          "predictor.py": GOOD_PREDICTOR})
    rc, out, err = never_started.deploy(project)
    assert rc != 0 and "cortex cluster up" in err, err

    rc, out, err = never_started.cli("cluster", "info")
    assert rc != 0 and "stopped" in out, (out, err)

    # A cluster that was brought down: the operator is unreachable.
    stopped = cluster_factory()
    rc, out, err = stopped.down()
    assert rc == 0 and "down" in out, (out, err)
    for args in (("get", "x"), ("logs", "x", "--no-follow"), ("delete", "x", "-f")):
        rc, out, err = stopped.cli(*args, timeout=15)
        assert rc != 0, (args, out)
        assert "cortex cluster up" in err, (args, err)
    # Listing every environment when the only one is unreachable is an error too (as in Cortex
    # v0.24, which exits with that environment's error and does not claim "no apis are deployed").
    rc, out, err = stopped.cli("get", timeout=15)
    assert "cortex cluster up" in out + err, (out, err)
    assert rc != 0, f"`cortex get` exited 0 with its only environment unreachable: {out!r}"
    assert "no apis are deployed" not in out, out
    rc, out, err = stopped.down()  # idempotent
    assert rc == 0 and "not running" in out, (out, err)

    rc, out, err = never_started.cli("version")
    assert rc == 0 and "0.24" in out, (out, err)


def test_operator_routes_by_path_segments(cluster):
    """API names that begin with "jobs" are API names (the operator matched "/jobs" as a
    substring and answered 500), and a known path with another method is a 405."""
    c = cluster
    base = f"http://127.0.0.1:{c.operator_port}"
    auth = {"Authorization": f"Bearer {c.token()}"}
    for method, path, name in (("GET", "/v1/apis/jobs", "jobs"),
                               ("DELETE", "/v1/apis/jobs-classifier", "jobs-classifier"),
                               ("POST", "/v1/apis/jobsfoo/refresh", "jobsfoo")):
        r = c.http.request(method, base + path, headers=auth, timeout=10)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        message = f"{name} is not deployed"  # ours, and v0.24's kind and message
        assert r.json() == {"error": message, "kind": "err_not_found", "message": message}, r.text
    r = c.http.put(base + "/v1/apis/iris", headers=auth, timeout=10)
    assert r.status_code == 405, r.text
    assert set(r.headers["Allow"].split(", ")) == {"GET", "DELETE"}, r.headers
    assert c.http.get(base + "/v1/apis/iris", timeout=10).status_code == 401  # no token
