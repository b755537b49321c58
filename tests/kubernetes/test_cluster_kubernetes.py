"""`cortex cluster up | info | down --provider kubernetes`, end to end against a fake API server.

Real processes: the CLI, reaching fake_apiserver.py on 127.0.0.1 through a kubeconfig. The test
plays the cluster's controllers: it reports the platform's Deployments ready and gives the
LoadBalancer Services an address, as a cloud would.
"""
import base64
import json
import os
import subprocess
import threading
import time

import pytest
import yaml

from fake_apiserver import FakeApiServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CORTEX_BIN = os.environ.get("CORTEX_BIN") or os.path.join(REPO_ROOT, "build/src/apps/cortex")
NS = "ml"
INSTALLED = [("", "namespaces", NS), (NS, "serviceaccounts", "cortex-operator"),
             (NS, "roles", "cortex-operator"), (NS, "rolebindings", "cortex-operator"),
             (NS, "secrets", "cortex-operator-token"), (NS, "configmaps", "cortex-cluster-config"),
             (NS, "persistentvolumeclaims", "cortex-operator-data"),
             (NS, "deployments", "cortex-operator"), (NS, "services", "cortex-operator"),
             (NS, "deployments", "cortex-gateway"), (NS, "services", "cortex-gateway")]


class Cluster:
    """The fake API server, a kubeconfig for it and a CLI configuration directory."""

    def __init__(self, api, tmp_path):
        self.api = api
        self.tmp = tmp_path
        self.kubeconfig = tmp_path / "kubeconfig"
        self.api.write_kubeconfig(self.kubeconfig)
        self.env = dict(os.environ, CORTEX_CLI_CONFIG_DIR=str(tmp_path / "cli"))
        self.env.pop("KUBECONFIG", None)

    def cli(self, *args, timeout=60):
        return subprocess.run([CORTEX_BIN, "cluster", *args, "--provider", "kubernetes",
                               "--kubeconfig", str(self.kubeconfig), "--namespace", NS],
                              capture_output=True, text=True, timeout=timeout, env=self.env,
                              stdin=subprocess.DEVNULL, cwd=self.tmp)

    def become_ready(self, gateway_replicas=1, lb_address="127.0.0.1"):
        """What the Deployment controller and the cloud would do, once the objects are there."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            gateway = self.api.get(NS, "deployments", "cortex-gateway")
            if (self.api.get(NS, "services", "cortex-gateway")
                    and gateway["spec"]["replicas"] == gateway_replicas):
                break
            time.sleep(0.05)
        for name in ("cortex-operator", "cortex-gateway"):
            deployment = self.api.get(NS, "deployments", name)
            replicas = deployment["spec"]["replicas"]
            deployment["status"] = {"readyReplicas": replicas, "updatedReplicas": replicas}
            self.api.put(NS, "deployments", deployment)
            service = self.api.get(NS, "services", name)
            if service["spec"].get("type") == "LoadBalancer":
                service["status"] = {"loadBalancer": {"ingress": [{"ip": lb_address}]}}
                self.api.put(NS, "services", service)

    def cli_config(self):
        return yaml.safe_load((self.tmp / "cli" / "cli.yaml").read_text())

    def secret_token(self):
        secret = self.api.get(NS, "secrets", "cortex-operator-token")
        return base64.b64decode(secret["data"]["token"]).decode()


@pytest.fixture
def cluster(tmp_path):
    with FakeApiServer() as api:
        yield Cluster(api, tmp_path)


def up_while_ready(cluster, *args):
    helper = threading.Thread(target=cluster.become_ready)
    helper.start()
    result = cluster.cli("up", "--wait-s", "30", *args)
    helper.join()
    return result


def test_up_installs_waits_and_configures_an_environment(cluster):
    result = up_while_ready(cluster)
    assert result.returncode == 0, result.stdout + result.stderr
    for key in INSTALLED:
        assert cluster.api.get(*key) is not None, key
    assert "created Deployment cortex-operator" in result.stdout
    assert "waiting for the operator (0/1 ready)" in result.stdout
    assert "operator:      http://127.0.0.1:8888" in result.stdout
    assert "load balancer: http://127.0.0.1:8889" in result.stdout
    env = {e["name"]: e for e in cluster.cli_config()["environments"]}["kubernetes"]
    assert env["provider"] == "kubernetes"
    assert env["operator_endpoint"] == "http://127.0.0.1:8888"
    assert env["operator_token"] == cluster.secret_token() and len(env["operator_token"]) >= 24
    # The namespace holds only what the CLI was given: the role is namespaced and least.
    role = cluster.api.get(NS, "roles", "cortex-operator")
    assert {"secrets"}.isdisjoint(r for rule in role["rules"] for r in rule["resources"])

    # Again: nothing is replaced, the token (and so the environment) stays.
    token = cluster.secret_token()
    cluster.api.requests.clear()
    again = cluster.cli("up", "--wait-s", "5")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not [r for r in cluster.api.requests if not r.startswith("GET ")], cluster.api.requests
    assert "Deployment cortex-operator unchanged" in again.stdout
    assert "Namespace ml exists" in again.stdout
    assert cluster.secret_token() == token


def test_up_replaces_what_changed_and_keeps_the_volume(cluster, tmp_path):
    assert up_while_ready(cluster).returncode == 0
    config = tmp_path / "cluster.yaml"
    config.write_text("gateway_replicas: 3\noperator_volume_size: 5Gi\n")
    thread = threading.Thread(target=cluster.become_ready, args=(3,))
    thread.start()
    result = cluster.cli("up", "--config", str(config), "--wait-s", "30")
    thread.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "updated ConfigMap cortex-cluster-config" in result.stdout
    # The servers read the configuration at start: their pods roll to read the new one.
    assert "updated Deployment cortex-operator" in result.stdout
    assert "updated Deployment cortex-gateway" in result.stdout
    assert cluster.api.get(NS, "deployments", "cortex-gateway")["spec"]["replicas"] == 3
    assert "PersistentVolumeClaim cortex-operator-data exists" in result.stdout
    pvc = cluster.api.get(NS, "persistentvolumeclaims", "cortex-operator-data")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_up_that_never_gets_ready_says_what_it_waits_for(cluster):
    result = cluster.cli("up", "--wait-s", "2")
    assert result.returncode == 1
    assert "the platform is installed but not ready after 2 s" in result.stderr
    assert "the operator (0/1 ready)" in result.stderr
    assert "`cortex cluster up` again goes on from here" in result.stderr
    assert not (cluster.tmp / "cli" / "cli.yaml").exists()


def test_an_operator_without_a_load_balancer_is_reached_at_the_given_endpoint(cluster, tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text("operator_service_type: ClusterIP\n")
    result = up_while_ready(cluster, "--config", str(config),
                            "--operator-endpoint", "http://127.0.0.1:18888", "-e", "prod")
    assert result.returncode == 0, result.stdout + result.stderr
    env = {e["name"]: e for e in cluster.cli_config()["environments"]}["prod"]
    assert env["operator_endpoint"] == "http://127.0.0.1:18888"


def test_info_reports_readiness_addresses_apis_and_pod_problems(cluster):
    result = cluster.cli("info")
    assert result.returncode == 0, result.stderr
    assert "not installed" in result.stdout
    assert up_while_ready(cluster).returncode == 0
    labels = {"app.kubernetes.io/managed-by": "cortex", "cortex.dev/cluster": "cortex",
              "app.kubernetes.io/name": "api", "apiKind": "RealtimeAPI", "apiName": "iris"}
    cluster.api.put(NS, "deployments", {"metadata": {"name": "api-iris", "labels": labels},
                                        "spec": {"replicas": 1}})
    gateway_labels = {"app.kubernetes.io/managed-by": "cortex", "cortex.dev/cluster": "cortex",
                      "app.kubernetes.io/name": "gateway"}
    cluster.api.put(NS, "pods", {
        "metadata": {"name": "cortex-gateway-abc", "labels": gateway_labels},
        "status": {"containerStatuses": [{"state": {"waiting": {
            "reason": "ImagePullBackOff", "message": "cortex:0.24.0 not found"}}}]}})
    info = cluster.cli("info", "-o", "json")
    assert info.returncode == 0, info.stderr
    state = json.loads(info.stdout)
    assert state["installed"] and state["namespace"] == NS
    assert state["operator"] == {"ready": 1, "wanted": 1, "url": "http://127.0.0.1:8888",
                                 "service_type": "LoadBalancer"}
    assert state["gateway"]["api_gateway_url"] == "http://127.0.0.1:8888"
    assert state["realtime_apis"] == 1
    assert state["problems"] == [
        "cortex-gateway-abc: ImagePullBackOff: cortex:0.24.0 not found"]
    pretty = cluster.cli("info")
    assert "problem:       cortex-gateway-abc: ImagePullBackOff" in pretty.stdout
    assert "apis:          1 realtime, 0 batch jobs" in pretty.stdout


def test_down_asks_then_removes_the_apis_and_the_installation(cluster):
    assert up_while_ready(cluster).returncode == 0
    labels = {"app.kubernetes.io/managed-by": "cortex", "cortex.dev/cluster": "cortex",
              "app.kubernetes.io/name": "api", "apiKind": "RealtimeAPI", "apiName": "iris"}
    for plural in ("deployments", "services"):
        cluster.api.put(NS, plural, {"metadata": {"name": "api-iris", "labels": labels},
                                     "spec": {}})
    other = {"metadata": {"name": "not-ours"}, "spec": {}}
    cluster.api.put("default", "deployments", other)

    refused = cluster.cli("down")  # no terminal, no --yes: nothing happens
    assert refused.returncode == 1
    assert "pass --yes to confirm" in refused.stderr
    assert "with its 1 realtime APIs" in refused.stderr
    assert cluster.api.get(NS, "deployments", "api-iris") is not None

    result = cluster.cli("down", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deleted Deployment api-iris" in result.stdout
    assert "deleted Namespace ml" in result.stdout
    for key in INSTALLED:
        assert cluster.api.get(*key) is None, key
    assert cluster.api.get("default", "deployments", "not-ours") is not None
    again = cluster.cli("down", "--yes")
    assert again.returncode == 0 and "not installed" in again.stdout


def test_down_keeps_a_namespace_it_did_not_create(cluster):
    cluster.api.put("", "namespaces", {"metadata": {"name": NS}})
    assert up_while_ready(cluster).returncode == 0
    result = cluster.cli("down", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Namespace ml kept: cortex did not create it" in result.stdout
    assert cluster.api.get("", "namespaces", NS) is not None
    assert cluster.api.get(NS, "deployments", "cortex-operator") is None


def test_a_refused_token_and_a_missing_kubeconfig_are_named(cluster):
    cluster.api.token = "another"
    result = cluster.cli("info")
    assert result.returncode == 1
    assert "Unauthorized" in result.stderr
    cluster.kubeconfig.unlink()
    result = cluster.cli("up")
    assert result.returncode == 1
    assert "kubeconfig" in result.stderr
