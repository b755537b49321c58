"""Failures of running processes: a replica, the operator, the gateway or the supervisor killed
with SIGKILL (or stopped), and what heals them."""

import os
import signal
import subprocess
import time

from conftest import api_yaml, pid_alive, pids_mentioning

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


def test_operator_killed_api_keeps_serving_and_the_supervisor_restarts_it(cluster):
    name = "survivor"
    cluster.deploy_ok(project(name))
    info = cluster.wait_live(name)
    replica = info["replicas"][0]

    state = cluster.state()
    operator_pid = state["operator_pid"]
    os.kill(operator_pid, signal.SIGKILL)
    cluster.wait_until(lambda: not pid_alive(operator_pid), 5, message="the operator to die")

    # The data plane does not need the operator: keep serving meanwhile.
    deadline = time.monotonic() + 2.0
    sent = 0
    while time.monotonic() < deadline:
        r = cluster.post(name, {"n": sent})
        assert r.status_code == 200, (sent, r.status_code, r.text)
        assert r.json()["echo"] == {"n": sent}
        sent += 1
    assert sent > 5
    assert pid_alive(replica["pid"])

    # The supervisor starts a new operator by itself (no `cortex cluster up`).
    cluster.wait_until(lambda: (cluster.state() or {}).get("operator_pid") not in
                       (None, 0, operator_pid), 15, message="a new operator")
    new_state = cluster.state()
    assert pid_alive(new_state["operator_pid"])
    assert new_state["supervisor_pid"] == state["supervisor_pid"]
    info = cluster.wait_live(name, timeout=30)
    assert [a["spec"]["name"] for a in cluster.list_apis()] == [name]
    reps = info["replicas"]
    assert len(reps) == 1 and reps[0]["state"] == "ready", reps
    if reps[0]["pid"] == replica["pid"]:
        assert reps[0]["id"] == replica["id"]  # adopted, not restarted
    r = cluster.wait_serving(name, {"after": "restart"}, timeout=10)
    assert r.json()["echo"] == {"after": "restart"}
    log = open(os.path.join(cluster.cluster_dir, "logs", "supervisor.log")).read()
    assert f"the operator (pid {operator_pid}) was killed by signal 9" in log, log

    # `cortex cluster up` finds it running.
    rc, out, err = cluster.up(cluster.operator_port, cluster.gateway_port)
    assert rc == 0 and "already running" in out, (out, err)

    # The new operator manages the api fully: it can delete it.
    rc, out, err = cluster.cli("delete", name, "-f")
    assert rc == 0, err
    for rep in reps + [replica]:
        cluster.wait_until(lambda: not pid_alive(rep["pid"]), 15,
                           message=f"replica {rep['id']} to exit after delete")


def test_a_killed_gateway_is_restarted_and_serves_again(cluster):
    """A killed gateway failed every request until a manual `cluster up`."""
    name = "through"
    cluster.deploy_ok(project(name))
    cluster.wait_live(name)
    gateway_pid = cluster.state()["gateway_pid"]
    os.kill(gateway_pid, signal.SIGKILL)
    started = time.monotonic()
    r = cluster.wait_serving(name, {"n": 1}, timeout=15)
    assert r.json()["echo"] == {"n": 1}
    assert time.monotonic() - started < 10
    new_pid = cluster.state()["gateway_pid"]
    assert new_pid != gateway_pid and pid_alive(new_pid)
    info = cluster.cli_json("cluster", "info")
    assert info["status"] == "running" and info["supervisor"]["running"], info


def test_a_wedged_operator_is_killed_and_restarted(cluster_factory):
    """Alive but not answering (here: SIGSTOP) is as bad as dead."""
    c = cluster_factory(start=False)
    c.env["CORTEX_WEDGED_AFTER_S"] = "3"
    c.start()
    operator_pid = c.state()["operator_pid"]
    os.kill(operator_pid, signal.SIGSTOP)
    c.wait_until(lambda: (c.state() or {}).get("operator_pid") not in (None, 0, operator_pid), 30,
                 message="the stopped operator to be replaced")
    assert not pid_alive(operator_pid)
    # The new operator is recorded when it starts; it answers a moment later.
    c.wait_until(lambda: c.cli("get")[0] == 0, 30, interval=0.2,
                 message="the new operator to answer")
    log = open(os.path.join(c.cluster_dir, "logs", "supervisor.log")).read()
    assert "the operator has not answered its health check for 3 s; killing it" in log, log


def test_cluster_down_stops_every_replica_even_after_the_operator_died(cluster):
    """`cluster down` after an operator crash left the replicas running."""
    name = "orphaned"
    cluster.deploy_ok(project(name))
    replica = cluster.wait_live(name)["replicas"][0]
    state = cluster.state()
    # The supervisor first, so that no one restarts the operator: the cluster is unsupervised.
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    os.kill(state["operator_pid"], signal.SIGKILL)
    cluster.wait_until(lambda: not pid_alive(state["operator_pid"]), 5, message="the operator")
    assert pid_alive(replica["pid"])
    # Someone reading a log of the cluster is not the cluster's: it is left alone.
    reader = subprocess.Popen(["tail", "-f", os.path.join(cluster.cluster_dir, "logs",
                                                          "operator.log")],
                              stdout=subprocess.DEVNULL)
    try:
        rc, out, err = cluster.down()
        assert rc == 0, (out, err)
        assert "leftover processes of the cluster" in out, out
        cluster.wait_until(lambda: not pid_alive(replica["pid"]), 5,
                           message="the replica to stop")
        assert reader.poll() is None, "cluster down stopped a process that only reads its log"
        assert [p for p in pids_mentioning(cluster.config_dir)
                if pid_alive(p) and p != reader.pid] == []
    finally:
        reader.kill()
        reader.wait()
