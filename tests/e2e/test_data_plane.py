"""The data plane's local shape (docs/performance.md): the gateway runs one thread per CPU on
shared ports, with one set of request counts, and reaches each replica through the replica's
Unix socket instead of TCP."""

import json
import os
import re
import subprocess
import threading

import requests

from conftest import api_yaml

ECHO_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"id": payload["id"]}
"""


def unix_sockets_at(path):
    """How many sockets /proc/net/unix lists bound to `path` (a listener, and each connection it
    accepted)."""
    with open("/proc/net/unix") as f:
        return sum(1 for line in f if line.rstrip("\n").endswith(" " + path))


def gateway_metric(c, api):
    r = c.http.get(c.gateway_url + "/metrics", timeout=5)
    assert r.status_code == 200, r.text
    m = re.search(r'^cortex_requests_total\{api="%s",code="2XX"\} (\d+)$' % re.escape(api), r.text,
                  re.M)
    return int(m.group(1)) if m else 0


def test_threaded_gateway_reaches_replicas_over_unix_sockets(cluster_factory):
    c = cluster_factory(start=False)
    c.env["CORTEX_GATEWAY_THREADS"] = "3"
    c.start()
    c.deploy_ok({"cortex.yaml": api_yaml("echo"), "predictor.py": ECHO_PREDICTOR})
    c.wait_live("echo")

    with open(os.path.join(c.cluster_dir, "logs", "gateway.log")) as f:
        assert "3 thread(s)" in f.read()

    # The operator's route table names the replica's Unix socket, and the front listens there.
    r = c.http.get(f"http://127.0.0.1:{c.operator_port}/v1/routes",
                   headers={"Authorization": f"Bearer {c.token()}"}, timeout=5)
    assert r.status_code == 200, r.text
    (route,) = [a for a in r.json()["apis"] if a["name"] == "echo"]
    (replica,) = route["replicas"]
    socket_path = replica["unix_socket"]
    assert socket_path.startswith(c.cluster_dir) and socket_path.endswith(".sock"), replica
    assert os.path.exists(socket_path)
    assert "and " + socket_path in c.api_log("echo")

    # Many clients on many connections (spread over the gateway's threads): every answer is the
    # caller's own, and every thread's requests are counted in the one /metrics.
    before = gateway_metric(c, "echo")
    answers, errors = {}, []

    def client(k):
        with requests.Session() as s:
            s.trust_env = False
            for i in range(10):
                ident = f"{k}-{i}"
                try:
                    resp = s.post(c.url("echo"), json={"id": ident}, timeout=10)
                    answers[ident] = (resp.status_code, resp.json())
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(answers) == 80
    assert all(v == (200, {"id": k}) for k, v in answers.items())
    for _ in range(4):  # whichever thread answers /metrics, it counts all of them
        assert gateway_metric(c, "echo") == before + 80

    # The gateway's connections to the front are Unix-domain ones: the front's socket has
    # accepted connections besides its listener.
    assert unix_sockets_at(socket_path) >= 2


def test_open_loop_generator_keeps_its_rate(cluster, cortex_bin):
    """bench/load_openloop.py's generator: 300 requests due over 1.5 s, each answered once."""
    loadgen = os.path.join(os.path.dirname(cortex_bin), "cortex-loadgen")
    c = cluster
    c.deploy_ok({"cortex.yaml": api_yaml("echo"), "predictor.py": ECHO_PREDICTOR})
    c.wait_live("echo")
    before = gateway_metric(c, "echo")
    r = subprocess.run([loadgen, "--port", str(c.gateway_port), "--path", "/echo", "--rate", "200",
                        "--duration", "1.5", "--connections", "4", "--body", '{"id": "x"}'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sent"] == out["answered"] == 301, out  # due at 0, 5 ms, ..., 1500 ms
    assert out["errors"] == out["non_2xx"] == out["late"] == 0, out
    assert 0 < out["p50_us"] <= out["p99_us"] <= out["max_us"], out
    assert 1.4 < out["duration_s"] < 3, out
    assert gateway_metric(c, "echo") == before + 301
    bad = subprocess.run([loadgen, "--port", "0"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "bad flag or value" in bad.stderr


POLICY_PREDICTOR = """
import os


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"policy": os.sched_getscheduler(0)}
"""


def _policies(pid):
    """The scheduling policy of every thread of `pid` and of its descendants, by thread id."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            found[int(tid)] = os.sched_getscheduler(int(tid))
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = f.read().split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        for child in children:
            found.update(_policies(int(child)))
    return found


def test_data_plane_runs_under_batch_scheduling_unless_turned_off(cluster_factory):
    """docs/adr/0004: every thread of the gateway, of the replica front and of its workers runs
    under SCHED_BATCH (the operator keeps the default); CORTEX_SCHED_BATCH=0 keeps the default
    everywhere."""
    for env, want in ((None, os.SCHED_BATCH), ("0", os.SCHED_OTHER)):
        c = cluster_factory(start=False)
        c.env["CORTEX_GATEWAY_THREADS"] = "2"
        if env is not None:
            c.env["CORTEX_SCHED_BATCH"] = env
        c.start()
        c.deploy_ok({"cortex.yaml": api_yaml("policy", predictor_extra="processes_per_replica: 2"),
                     "predictor.py": POLICY_PREDICTOR})
        c.wait_live("policy")
        state = c.state()
        (replica,) = c.get_api("policy")["replicas"]
        gateway = _policies(state["gateway_pid"])
        assert len(gateway) >= 3, gateway  # the route watcher and two serving threads at least
        assert set(gateway.values()) == {want}, gateway
        front_and_workers = _policies(replica["pid"])
        assert len(front_and_workers) >= 3, front_and_workers  # the front and its two workers
        assert set(front_and_workers.values()) == {want}, front_and_workers
        assert os.sched_getscheduler(state["operator_pid"]) == os.SCHED_OTHER
        r = c.http.post(c.url("policy"), json={}, timeout=10)
        assert r.status_code == 200 and r.json() == {"policy": want}, r.text
