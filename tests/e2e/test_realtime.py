"""Realtime API lifecycle: deploy, predict, get, logs, delete, update, concurrency, back-pressure."""

import concurrent.futures
import json
import os
import shutil
import threading
import time

import requests

from conftest import REPO_ROOT, api_yaml, pid_alive

ECHO_PREDICTOR = """
import os


class PythonPredictor:
    def __init__(self, config):
        self.greeting = config.get("greeting", "hello")
        print("echo predictor initialised with", self.greeting)

    def predict(self, payload):
        print("predict called with", payload.get("name"))
        return {"message": f"{self.greeting}, {payload.get('name', 'world')}!", "pid": os.getpid()}
"""


def echo_project(name, greeting="hello"):
    return {
        "cortex.yaml": api_yaml(name, predictor_extra=f"config:\n  greeting: {greeting}"),
        "predictor.py": ECHO_PREDICTOR,
        "sample.json": json.dumps({"name": "sample"}),
    }


def test_deploy_predict_get_logs_delete(cluster):
    name = "echo-api"
    project = cluster.project("echo", echo_project(name, greeting="howdy"))

    out = cluster.deploy_ok(project)
    assert f"creating {name} (RealtimeAPI)" in out

    info = cluster.wait_live(name, timeout=30)
    assert info["endpoint"] == f"{cluster.gateway_url}/{name}"
    before = cluster.network_stats(name)

    # cortex predict: pretty-printed JSON of the response.
    rc, out, err = cluster.cli("predict", name, os.path.join(project, "sample.json"))
    assert rc == 0, err
    assert json.loads(out)["message"] == "howdy, sample!"

    # Direct POST through the gateway.
    r = cluster.post(name, {"name": "direct"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["message"] == "howdy, direct!"

    # get (list), pretty.
    out = cluster.cli_ok("get")
    assert name in out and "live" in out, out
    assert "no apis are deployed" not in out

    # get (list), json.
    listed = cluster.list_apis()
    assert [a["spec"]["name"] for a in listed] == [name]
    assert listed[0]["status"]["status_code"] == "status_live"
    assert listed[0]["endpoint"] == f"{cluster.gateway_url}/{name}"

    # get API, pretty.
    out = cluster.cli_ok("get", name)
    assert "live" in out, out
    assert f"endpoint: {cluster.gateway_url}/{name}" in out, out

    # get API, json: replicas, status and the gateway's network stats for the two requests.
    info = cluster.get_api(name)
    assert info["spec"]["name"] == name
    assert info["status"]["status_code"] == "status_live"
    assert info["status"]["replica_counts"]["updated"]["ready"] == 1
    assert len(info["replicas"]) == 1
    replica = info["replicas"][0]
    assert replica["state"] == "ready" and replica["pid"] > 0 and replica["port"] > 0, replica
    stats = info["metrics"]["network_stats"]
    assert stats is not None, info["metrics"]
    delta = {k: stats[k] - before[k] for k in ("code_2xx", "code_4xx", "code_5xx", "total")}
    assert delta == {"code_2xx": 2, "code_4xx": 0, "code_5xx": 0, "total": 2}, (before, stats)
    assert isinstance(stats["latency"], (int, float)) and stats["latency"] > 0, stats

    # get API -v shows the configuration.
    out = cluster.cli_ok("get", name, "-v")
    assert "howdy" in out, out

    # The predictor's print() output reaches `cortex logs`.
    cluster.wait_until(lambda: "predict called with direct" in cluster.api_log(name), 10,
                       message="the predictor's print() output in cortex logs")
    log = cluster.api_log(name)
    assert "echo predictor initialised with howdy" in log, log
    assert "predict called with sample" in log, log

    # delete
    rc, out, err = cluster.cli("delete", name, "-f")
    assert rc == 0, err
    assert f"deleting {name}" in out

    rc, out, err = cluster.cli("get", name)
    assert rc != 0
    assert f"{name} is not deployed" in err, err
    out = cluster.cli_ok("get")
    assert "no apis are deployed" in out, out
    assert cluster.list_apis() == []

    # The route goes away and the replica process with it.
    cluster.wait_until(lambda: cluster.post(name, {}).status_code == 404, 10,
                       message="the endpoint to answer 404 after delete")
    cluster.wait_until(lambda: not pid_alive(replica["pid"]), 15,
                       message="the deleted api's replica to exit")


def test_shipped_hello_example(cluster):
    """examples/hello deploys as shipped and answers its sample."""
    example = os.path.join(REPO_ROOT, "examples", "hello")
    project = os.path.join(cluster.projects_dir, "hello")
    shutil.copytree(example, project, ignore=shutil.ignore_patterns("__pycache__"))
    out = cluster.deploy_ok(project)
    assert "creating hello (RealtimeAPI)" in out, out
    cluster.wait_live("hello")
    rc, out, err = cluster.cli("predict", "hello", os.path.join(project, "sample.json"))
    assert rc == 0, err
    assert json.loads(out) == {"message": "hello, cortex!"}


VERSIONED_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {{"version": {version}}}
"""


def version_of(body):
    try:
        return json.loads(body).get("version")
    except (ValueError, AttributeError):
        return None


def test_redeploy_unchanged_then_rolling_update_without_errors(cluster):
    name = "versioned"
    project = cluster.project("versioned", {
        "cortex.yaml": api_yaml(name),
        "predictor.py": VERSIONED_PREDICTOR.format(version=1),
    })
    cluster.deploy_ok(project)
    cluster.wait_live(name)
    assert cluster.post(name, {}).json() == {"version": 1}
    old_replica = cluster.get_api(name)["replicas"][0]

    # Unchanged: nothing to do.
    out = cluster.deploy_ok(project)
    assert f"{name} (RealtimeAPI) is up to date" in out, out
    assert cluster.get_api(name)["replicas"][0]["id"] == old_replica["id"]

    # Changed predictor: a rolling update, with traffic flowing the whole time.
    with open(os.path.join(project, "predictor.py"), "w") as f:
        f.write(VERSIONED_PREDICTOR.format(version=2))

    results = []  # (status, body) of every request sent during the update
    stop = threading.Event()

    def traffic():
        with requests.Session() as s:
            s.trust_env = False
            while not stop.is_set():
                try:
                    r = s.post(cluster.url(name), json={}, timeout=15)
                    results.append((r.status_code, r.text))
                except requests.RequestException as e:
                    results.append((None, repr(e)))
                time.sleep(0.01)

    senders = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
    for t in senders:
        t.start()
    try:
        time.sleep(0.3)  # some traffic before the update starts
        out = cluster.deploy_ok(project)
        assert f"updating {name} (RealtimeAPI)" in out, out

        def rolled_over():
            if not any(version_of(body) == 2 for _, body in results[-5:]):
                return False
            info = cluster.get_api(name)
            counts = info["status"]["replica_counts"]
            return (info["status"]["status_code"] == "status_live"
                    and counts["updated"]["ready"] == 1 and counts["stale"]["ready"] == 0
                    and all(r["updated"] for r in info["replicas"]))

        cluster.wait_until(rolled_over, 45, interval=0.2,
                           message="the update to finish and version 2 to answer")
        time.sleep(0.5)  # a little more traffic after the switch
    finally:
        stop.set()
        for t in senders:
            t.join(timeout=20)

    failures = [(code, body) for code, body in results if code != 200]
    assert results, "no request was sent during the update"
    assert not failures, (f"{len(failures)} of {len(results)} requests failed during the rolling "
                          f"update; first ones: {failures[:5]}")
    versions = {version_of(body) for _, body in results}
    assert versions == {1, 2} or versions == {2}, versions
    assert version_of(results[-1][1]) == 2

    info = cluster.get_api(name)
    assert len(info["replicas"]) == 1 and info["replicas"][0]["id"] != old_replica["id"]
    cluster.wait_until(lambda: not pid_alive(old_replica["pid"]), 15,
                       message="the old replica to exit")


OVERLAP_PREDICTOR = """
import os
import time


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        start = time.time()
        time.sleep(0.3)
        return {"start": start, "end": time.time(), "pid": os.getpid()}
"""


def max_overlap(intervals):
    """The largest number of [start, end) intervals that cover one instant."""
    events = [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals]
    events.sort(key=lambda ev: (ev[0], ev[1]))  # at equal times, ends before starts
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_processes_and_threads_bound_concurrency(cluster):
    name = "overlap"
    cluster.deploy_ok({
        "cortex.yaml": api_yaml(name, predictor_extra="processes_per_replica: 2\n"
                                                      "threads_per_process: 2"),
        "predictor.py": OVERLAP_PREDICTOR,
    })
    cluster.wait_live(name)

    barrier = threading.Barrier(12, timeout=10)

    def one():
        with requests.Session() as s:
            s.trust_env = False
            barrier.wait()
            return s.post(cluster.url(name), json={}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: one(), range(12)))

    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    intervals = [(b["start"], b["end"]) for b in bodies]
    assert max_overlap(intervals) == 4, sorted(intervals)
    assert len({b["pid"] for b in bodies}) == 2, "both worker processes should have served"


SLOW_PREDICTOR = """
import time


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        time.sleep(1)
        return {"ok": True}
"""


def test_max_replica_concurrency_rejects_with_503_and_retry_after(cluster):
    name = "limited"
    cluster.deploy_ok({
        "cortex.yaml": api_yaml(name, extra="autoscaling:\n  max_replica_concurrency: 2"),
        "predictor.py": SLOW_PREDICTOR,
    })
    info = cluster.wait_live(name)
    replica = info["replicas"][0]
    before = cluster.network_stats(name)

    barrier = threading.Barrier(6, timeout=10)

    def one():
        with requests.Session() as s:
            s.trust_env = False
            barrier.wait()
            return s.post(cluster.url(name), json={}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: one(), range(6)))

    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 503}, [(r.status_code, r.text) for r in responses]
    ok = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code == 503]
    # 1 slot: one request runs, one waits, the other four arrive while two are in flight.
    assert len(ok) >= 2, codes
    assert len(busy) >= 3, codes
    for r in busy:
        assert r.headers.get("Retry-After"), dict(r.headers)
        assert "max_replica_concurrency" in r.text, r.text
    for r in ok:
        assert r.json() == {"ok": True}

    # The replica stays healthy: same process, still live, serves again.
    r = cluster.post(name, {})
    assert r.status_code == 200, r.text
    info = cluster.get_api(name)
    assert info["status"]["status_code"] == "status_live"
    assert [(x["id"], x["pid"], x["state"]) for x in info["replicas"]] == \
        [(replica["id"], replica["pid"], "ready")]
    assert pid_alive(replica["pid"])
    stats = info["metrics"]["network_stats"]
    assert stats["code_5xx"] - before["code_5xx"] == len(busy), (before, stats)
    assert stats["code_2xx"] - before["code_2xx"] == len(ok) + 1, (before, stats)
