"""Cluster lifecycle: two clusters side by side, info, down, and ports that are taken."""

import json

from conftest import api_yaml, pid_alive, pids_mentioning

PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        self.owner = config["owner"]

    def predict(self, payload):
        return {"owner": self.owner}
"""


def project(name, owner):
    return {"cortex.yaml": api_yaml(name, predictor_extra=f"config:\n  owner: {owner}"),
            "predictor.py": PREDICTOR}


def test_two_clusters_side_by_side(cluster_factory):
    a = cluster_factory()
    b = cluster_factory()
    assert {a.operator_port, a.gateway_port}.isdisjoint({b.operator_port, b.gateway_port})

    # The same api name in both, answering differently; plus one api only in b.
    a.deploy_ok(project("shared-name", "cluster-a"))
    b.deploy_ok(project("shared-name", "cluster-b"))
    b.deploy_ok(project("only-b", "cluster-b"))
    a.wait_live("shared-name")
    b.wait_live("shared-name")
    b.wait_live("only-b")

    assert a.post("shared-name", {}).json() == {"owner": "cluster-a"}
    assert b.post("shared-name", {}).json() == {"owner": "cluster-b"}
    assert b.post("only-b", {}).json() == {"owner": "cluster-b"}
    assert a.post("only-b", {}).status_code == 404

    assert sorted(x["spec"]["name"] for x in a.list_apis()) == ["shared-name"]
    assert sorted(x["spec"]["name"] for x in b.list_apis()) == ["only-b", "shared-name"]
    assert a.get_api("shared-name")["endpoint"] == f"{a.gateway_url}/shared-name"
    assert b.get_api("shared-name")["endpoint"] == f"{b.gateway_url}/shared-name"

    info = json.loads(a.cli_ok("cluster", "info", "-o", "json"))
    assert info["status"] == "running"
    assert info["operator"]["url"] == f"http://127.0.0.1:{a.operator_port}"
    assert info["gateway"]["url"] == a.gateway_url
    assert "running" in a.cli_ok("cluster", "info")

    # Bringing a down stops a's processes only; b keeps serving.
    a_replica = a.get_api("shared-name")["replicas"][0]["pid"]
    b_replica = b.get_api("shared-name")["replicas"][0]["pid"]
    rc, out, err = a.down()
    assert rc == 0, err
    a.wait_until(lambda: not [p for p in pids_mentioning(a.config_dir) if pid_alive(p)], 15,
                 message="every process of cluster a to exit after cluster down")
    assert not pid_alive(a_replica)
    assert pid_alive(b_replica)
    assert b.post("shared-name", {}).json() == {"owner": "cluster-b"}
    rc, out, _ = a.cli("cluster", "info")
    assert rc != 0 and "stopped" in out, out


def test_cluster_up_twice_is_a_no_op(cluster):
    before = cluster.state()
    rc, out, err = cluster.up(cluster.operator_port, cluster.gateway_port)
    assert rc == 0, err
    assert "already running" in out, out
    after = cluster.state()
    assert (after["operator_pid"], after["gateway_pid"]) == \
        (before["operator_pid"], before["gateway_pid"])


def test_cluster_up_fails_when_its_ports_are_taken(cluster_factory):
    first = cluster_factory()
    second = cluster_factory(start=False)
    # The ports belong to the first cluster: the second cannot serve on them.
    rc, out, err = second.up(first.operator_port, first.gateway_port, timeout=90)
    state = second.state() or {}
    alive = {k: pid_alive(state[k]) for k in ("operator_pid", "gateway_pid") if k in state}
    assert rc != 0, (
        "cortex cluster up reported success although its operator and gateway could not listen "
        f"(ports taken by another cluster): stdout={out!r} stderr={err!r} daemons alive={alive} "
        f"logs={second.daemon_logs()}")
    # The first cluster is unaffected.
    assert first.cli("get")[0] == 0
