"""`cortex replica-pod`: what a RealtimeAPI's pod runs on the Kubernetes provider, driven here
against a real local operator. It fetches its API's configuration for one version and the
project (checked against its sha256) over the operator's REST API, then serves as a replica.
The version it is given comes from `cortex deploy --dry-run --provider kubernetes`, so these
tests also prove that the rendered pods carry the operator's own predictorID."""

import os
import signal
import subprocess
import tempfile

import pytest
import requests
import yaml

from conftest import CORTEX_BIN, LOOPBACK, api_yaml, free_port, wait_until

PREDICTOR = """
import os


class PythonPredictor:
    def __init__(self, config):
        self.greeting = config.get("greeting", "hi")

    def predict(self, payload):
        return {"greeting": self.greeting, "name": payload["name"], "cwd": os.getcwd()}
"""


def rendered_predictor_id(c, project):
    out = c.cli_ok("deploy", project, "--dry-run", "--provider", "kubernetes")
    deployment = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return deployment["metadata"]["labels"]["predictorID"], args


def replica_pod(c, data_dir, predictor_id, port, api="pod-api", operator_port=None,
                token_file=None, wait_s=30):
    return subprocess.Popen(
        [CORTEX_BIN, "replica-pod", "--operator",
         f"http://{LOOPBACK}:{operator_port or c.operator_port}",
         "--token-file", token_file or os.path.join(c.cluster_dir, "operator.token"),
         "--api", api, "--predictor-id", predictor_id, "--id", "pod-1", "--host", LOOPBACK,
         "--port", str(port), "--data-dir", data_dir, "--python", "/usr/bin/python3",
         "--wait-s", str(wait_s)],
        env=c.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture
def deployed(cluster):
    project = cluster.project("pod", {
        "predictor.py": PREDICTOR,
        "cortex.yaml": api_yaml("pod-api", predictor_extra="config: {greeting: hello}"),
    })
    cluster.deploy_ok(project)
    cluster.wait_live("pod-api")
    return cluster, project


def test_a_replica_pod_fetches_its_api_and_serves_it(deployed):
    c, project = deployed
    predictor_id, args = rendered_predictor_id(c, project)
    # The rendered pod runs this very command, for this version.
    assert args[:1] == ["replica-pod"] and args[args.index("--predictor-id") + 1] == predictor_id
    data_dir = tempfile.mkdtemp(prefix="cx-pod-", dir=c.root)
    port = free_port()
    process = replica_pod(c, data_dir, predictor_id, port)
    try:
        url = f"http://{LOOPBACK}:{port}"

        def ready():
            if process.poll() is not None:
                pytest.fail(f"replica-pod exited {process.returncode}: {process.stdout.read()}")
            try:
                return requests.get(url + "/_cortex/ready", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False
        wait_until(ready, 60, interval=0.2, message="the replica pod to be ready")
        answer = requests.post(url + "/predict", json={"name": "pod"}, timeout=10).json()
        project_dir = os.path.join(data_dir, "projects")
        [project_id] = os.listdir(project_dir)
        assert answer == {"greeting": "hello", "name": "pod",
                          "cwd": os.path.join(project_dir, project_id)}
        with open(os.path.join(project_dir, project_id, "predictor.py")) as f:
            assert f.read().strip() == PREDICTOR.strip()
    finally:
        stop(process)


@pytest.mark.parametrize("case", ["old-version", "bad-token", "unknown-api", "no-operator"])
def test_a_replica_pod_that_cannot_start_says_why(deployed, case):
    c, project = deployed
    predictor_id, _ = rendered_predictor_id(c, project)
    data_dir = tempfile.mkdtemp(prefix="cx-pod-", dir=c.root)
    kwargs, expected = {}, ""
    if case == "old-version":
        predictor_id, expected = "0" * 63, "pod-api no longer runs version 000000000000"
    elif case == "bad-token":
        token = os.path.join(data_dir, "token")
        with open(token, "w") as f:
            f.write("not-the-token\n")
        kwargs, expected = {"token_file": token}, "the operator answered 401"
    elif case == "unknown-api":
        kwargs, expected = {"api": "nope"}, "nope is not deployed"
    else:
        kwargs, expected = {"operator_port": free_port(), "wait_s": 1}, "did not answer"
    process = replica_pod(c, data_dir, predictor_id, free_port(), **kwargs)
    try:
        output, _ = process.communicate(timeout=30)
    finally:
        stop(process)
    assert process.returncode == 1, output
    assert expected in output, output
    assert not os.path.exists(os.path.join(data_dir, "run")), "nothing may start"
