"""`cortex replica-pod`: what a RealtimeAPI's pod runs on the Kubernetes provider, driven here
against a real local operator. It fetches its API's configuration for one version and the
project (checked against its sha256) over the operator's REST API, then serves as a replica.
The version it is given comes from `cortex deploy --dry-run --provider kubernetes`, so these
tests also prove that the rendered pods carry the operator's own predictorID."""

import json
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


BATCH_PREDICTOR = """
import json
import os
import time


class PythonPredictor:
    def __init__(self, config, job_spec):
        self.out = os.path.join(config["out_dir"], job_spec["job_id"])
        os.makedirs(self.out, exist_ok=True)
        mark = os.environ.get("POD_MARK", "local")
        with open(os.path.join(self.out, f"init-{mark}-{os.getpid()}"), "w") as f:
            json.dump({"cwd": os.getcwd(), "job_id": job_spec["job_id"]}, f)

    def predict(self, payload, batch_id):
        time.sleep(0.5)
"""


def test_a_worker_pod_runs_the_jobs_batches(cluster):
    out_dir = os.path.join(cluster.root, "out")
    os.makedirs(out_dir)
    project = cluster.project("batch-pod", {
        "predictor.py": BATCH_PREDICTOR,
        "cortex.yaml": ("- name: batch-pod\n  kind: BatchAPI\n  predictor:\n    type: python\n"
                        f"    path: predictor.py\n    config: {{out_dir: {out_dir}}}\n"),
    })
    cluster.deploy_ok(project)
    def submitted():  # once the gateway routes the new API
        r = cluster.http.post(cluster.url("batch-pod"), timeout=30,
                              json={"workers": 1, "item_list": {"items": list(range(12)),
                                                                "batch_size": 1}})
        return r if r.status_code != 404 else None
    r = wait_until(submitted, 30, interval=0.1, message="the job to be accepted")
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    data_dir = tempfile.mkdtemp(prefix="cx-wpod-", dir=cluster.root)
    env = dict(cluster.env, POD_MARK="pod")
    process = subprocess.Popen(
        [CORTEX_BIN, "worker-pod", "--operator", f"http://{LOOPBACK}:{cluster.operator_port}",
         "--token-file", os.path.join(cluster.cluster_dir, "operator.token"), "--api",
         "batch-pod", "--job", job_id, "--worker", "pod-w1", "--data-dir", data_dir,
         "--python", "/usr/bin/python3", "--wait-s", "10"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        stop(process)
    assert process.returncode == 0, output
    # It ran the job's predictor, in the project it fetched, until the queue was empty.
    inits = [n for n in os.listdir(os.path.join(out_dir, job_id)) if n.startswith("init-pod-")]
    assert len(inits) == 1, output
    with open(os.path.join(out_dir, job_id, inits[0])) as f:
        init = json.load(f)
    assert init["cwd"].startswith(os.path.join(data_dir, "projects"))

    def ended():
        r = cluster.http.get(cluster.url("batch-pod"), params={"jobID": job_id}, timeout=10)
        return r.json()["job_status"]["status"] == "status_succeeded"
    wait_until(ended, 60, interval=0.5, message="the job to succeed")
    # Once the job has ended, a worker pod that starts late is told so.
    late = subprocess.run(
        [CORTEX_BIN, "worker-pod", "--operator", f"http://{LOOPBACK}:{cluster.operator_port}",
         "--token-file", os.path.join(cluster.cluster_dir, "operator.token"), "--api",
         "batch-pod", "--job", job_id, "--data-dir", data_dir, "--wait-s", "5"],
        env=env, capture_output=True, text=True, timeout=60)
    assert late.returncode == 1 and f"job {job_id} has ended" in late.stderr, late.stderr
