"""The operator with `--provider kubernetes`, end to end against a fake API server.

Real processes: the `cortex` operator (its Kubernetes backend, REST client and control loop, as in
a cluster, but reaching the API through a kubeconfig) and the CLI; the API server is
fake_apiserver.py on 127.0.0.1. A deploy becomes a Deployment and a Service, a pod the test
reports as ready makes the API live, a new version replaces the Deployment, and a delete removes
both.
"""
import json
import os
import signal
import socket
import subprocess
import textwrap
import time
import urllib.parse
import urllib.request

import pytest

from fake_apiserver import FakeApiServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CORTEX_BIN = os.environ.get("CORTEX_BIN") or os.path.join(REPO_ROOT, "build/src/apps/cortex")
NAMESPACE = "ml"

PREDICTOR = textwrap.dedent("""
    class PythonPredictor:
        def __init__(self, config):
            pass

        def predict(self, payload):
            return payload
    """)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {message}")


@pytest.fixture
def stack(tmp_path):
    with FakeApiServer() as api:
        kubeconfig = tmp_path / "kubeconfig"
        api.write_kubeconfig(kubeconfig)
        cluster_config = tmp_path / "cluster.json"
        cluster_config.write_text(json.dumps({"kubernetes": {"namespace": NAMESPACE}}))
        token = tmp_path / "operator.token"
        token.write_text("operator-token")
        port = free_port()
        env = dict(os.environ, CORTEX_CLI_CONFIG_DIR=str(tmp_path / "cli"))
        env.pop("KUBECONFIG", None)
        log = open(tmp_path / "operator.log", "w")
        operator = subprocess.Popen(
            [CORTEX_BIN, "operator", "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1",
             "--port", str(port), "--token-file", str(token), "--provider", "kubernetes",
             "--kubeconfig", str(kubeconfig), "--cluster-config", str(cluster_config),
             "--autoscaler-tick-ms", "1000"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

        def cli(*args, check=True):
            result = subprocess.run([CORTEX_BIN, *args], capture_output=True, text=True,
                                    timeout=60, env=env, cwd=tmp_path)
            if check:
                assert result.returncode == 0, result.stdout + result.stderr
            return result

        try:
            wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 30, "the operator")
            cli("env", "configure", "k8s", "--provider", "kubernetes", "--operator-endpoint",
                f"http://127.0.0.1:{port}", "--operator-token", "operator-token")
            project = tmp_path / "project"
            project.mkdir()
            (project / "predictor.py").write_text(PREDICTOR)
            (project / "cortex.yaml").write_text(textwrap.dedent("""
                - name: iris
                  kind: RealtimeAPI
                  predictor: {type: python, path: predictor.py}
                  autoscaling: {min_replicas: 2}
                """))
            yield api, cli, project
        finally:
            os.killpg(operator.pid, signal.SIGTERM)
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)
                operator.wait(timeout=10)
            log.close()
            print((tmp_path / "operator.log").read_text())


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def ready_pod(deployment, name, ip):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def test_a_deploy_becomes_a_deployment_and_its_pods_the_replicas(stack):
    api, cli, project = stack
    out = cli("deploy", str(project), "-e", "k8s").stdout
    assert "creating iris (RealtimeAPI)" in out
    deployment = wait_until(lambda: api.get(NAMESPACE, "deployments", "api-iris"), 30,
                            "the Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["labels"]["apiName"] == "iris"
    assert wait_until(lambda: api.get(NAMESPACE, "services", "api-iris"), 10, "the Service")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    predictor_id = deployment["metadata"]["labels"]["predictorID"]
    assert args[args.index("--predictor-id") + 1] == predictor_id

    # What the kubelet would report: two ready pods of this version.
    for i in range(2):
        api.put(NAMESPACE, "pods", ready_pod(deployment, f"api-iris-{i}", f"10.1.0.{i + 1}"))

    def live():
        info = json.loads(cli("get", "iris", "-e", "k8s", "-o", "json").stdout)[0]
        return info if info["status"]["status_code"] == "status_live" else None
    info = wait_until(live, 30, "iris to be live")
    assert info["status"]["replica_counts"]["updated"]["ready"] == 2

    # `cortex logs` reads the pods' output through the API (pods/log), each line once.
    api.logs[(NAMESPACE, "api-iris-0")] = ("2026-12-03T07:00:01.5Z loading the predictor\n"
                                           "2026-12-03T07:00:02.25Z ready\n")
    def logged(*needles):
        text = cli("logs", "iris", "-e", "k8s", "--no-follow").stdout
        return text if all(n in text for n in needles) else None
    wait_until(lambda: logged("[api-iris-0] loading the predictor", "[api-iris-0] ready"),
               30, "the pod's log")
    with api.lock:
        api.logs[(NAMESPACE, "api-iris-0")] += "2026-12-03T07:00:02.75Z request 1\n"
    text = wait_until(lambda: logged("[api-iris-0] request 1"), 30, "the pod's next line")
    assert text.count("[api-iris-0] ready") == 1, text
    assert any("/pods/api-iris-0/log?timestamps=true" in r and "container=api" in r
               and "sinceTime=2026-12-03T07%3A00%3A02Z" in r for r in api.requests)

    # A new version (a changed predictor) replaces the Deployment's template.
    (project / "predictor.py").write_text(PREDICTOR + "\n# v2\n")
    assert "updating iris (RealtimeAPI)" in cli("deploy", str(project), "-e", "k8s").stdout
    updated = wait_until(
        lambda: (d := api.get(NAMESPACE, "deployments", "api-iris"))
        and d["metadata"]["labels"]["predictorID"] != predictor_id and d, 30, "the new version")
    assert updated["spec"]["template"]["metadata"]["labels"]["predictorID"] != predictor_id

    cli("delete", "iris", "-e", "k8s", "-f")
    wait_until(lambda: not api.names(NAMESPACE, "deployments")
               and not api.names(NAMESPACE, "services"), 30, "the objects to be deleted")
    # The backend lists only this cluster's objects.
    lists = [urllib.parse.unquote(r) for r in api.requests
             if r.startswith("GET /apis/apps/v1/namespaces/ml/deployments?")]
    assert lists and all("app.kubernetes.io/managed-by=cortex,cortex.dev/cluster=cortex" in r
                         for r in lists)
