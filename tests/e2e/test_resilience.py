"""Failures of running processes: a replica or the operator killed with SIGKILL."""

import os
import signal
import time

from conftest import api_yaml, pid_alive

PREDICTOR = """
import os


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"pid": os.getpid(), "echo": payload}
"""


def project(name):
    return {"cortex.yaml": api_yaml(name), "predictor.py": PREDICTOR}


def test_killed_replica_is_restarted(cluster):
    name = "phoenix"
    cluster.deploy_ok(project(name))
    info = cluster.wait_live(name)
    replica = info["replicas"][0]
    assert cluster.post(name, {"n": 1}).json()["echo"] == {"n": 1}

    # The replica is its own process group (front and worker processes): kill all of it.
    os.killpg(replica["pid"], signal.SIGKILL)
    cluster.wait_until(lambda: not pid_alive(replica["pid"]), 5, message="the replica to die")

    def restarted():
        info = cluster.get_api(name)
        reps = info["replicas"]
        return (info["status"]["status_code"] == "status_live" and len(reps) == 1
                and reps[0]["state"] == "ready" and reps[0]["pid"] != replica["pid"]
                and pid_alive(reps[0]["pid"]))

    cluster.wait_until(restarted, 30, interval=0.2, message="a new live replica")
    r = cluster.wait_serving(name, {"n": 2}, timeout=10)
    assert r.json()["echo"] == {"n": 2}
    for i in range(5):
        r = cluster.post(name, {"n": i})
        assert r.status_code == 200 and r.json()["echo"] == {"n": i}, r.text

    # The operator notes the death and the restart in the api's log.
    log = cluster.api_log(name)
    assert f"restarting replica {replica['id']}" in log, log


def test_operator_killed_api_keeps_serving_and_cluster_up_recovers(cluster):
    name = "survivor"
    cluster.deploy_ok(project(name))
    info = cluster.wait_live(name)
    replica = info["replicas"][0]

    state = cluster.state()
    operator_pid = state["operator_pid"]
    os.kill(operator_pid, signal.SIGKILL)
    cluster.wait_until(lambda: not pid_alive(operator_pid), 5, message="the operator to die")

    # The data plane does not need the operator: keep serving for a while.
    deadline = time.monotonic() + 2.0
    sent = 0
    while time.monotonic() < deadline:
        r = cluster.post(name, {"n": sent})
        assert r.status_code == 200, (sent, r.status_code, r.text)
        assert r.json()["echo"] == {"n": sent}
        sent += 1
    assert sent > 5
    assert pid_alive(replica["pid"])

    # The control plane is unreachable; the CLI says so at once, and how to fix it.
    rc, out, err = cluster.cli("get", name, timeout=10)
    assert rc != 0, out
    assert "cortex cluster up" in err, err

    # `cortex cluster up` again detects the dead operator and starts a new one.
    rc, out, err = cluster.up(cluster.operator_port, cluster.gateway_port)
    assert rc == 0, (out, err)
    assert "already running" not in out, out
    new_state = cluster.state()
    assert new_state["operator_pid"] != operator_pid and pid_alive(new_state["operator_pid"])

    info = cluster.wait_live(name, timeout=30)
    assert [a["spec"]["name"] for a in cluster.list_apis()] == [name]
    reps = info["replicas"]
    assert len(reps) == 1 and reps[0]["state"] == "ready", reps
    if reps[0]["pid"] == replica["pid"]:
        assert reps[0]["id"] == replica["id"]  # adopted, not restarted
    r = cluster.wait_serving(name, {"after": "restart"}, timeout=10)
    assert r.json()["echo"] == {"after": "restart"}

    # The new operator manages the api fully: it can delete it.
    rc, out, err = cluster.cli("delete", name, "-f")
    assert rc == 0, err
    for rep in reps + [replica]:
        cluster.wait_until(lambda: not pid_alive(rep["pid"]), 15,
                           message=f"replica {rep['id']} to exit after delete")
