"""Hostile and unlucky input against the real servers: what the hardening review found, each
driven as it was found (bodies announced but never sent, a million replicas, a 2 MB cortex.yaml,
a million batches, a predictor that prints without end), and the limits of cluster.yaml."""

import json
import os
import socket
import time

from conftest import api_yaml, pid_alive

HELLO = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"ok": True}
"""


def raw_exchange(port, head, timeout=5.0):
    """Sends only `head` (request line and headers) and reads until the server closes; returns
    (answer, seconds). A server that waited for the announced body would time out here."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode())
        answer = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except socket.timeout:
            pass
    return answer.decode(errors="replace"), time.monotonic() - started


def test_bodies_are_refused_from_the_header_before_they_are_read(cluster):
    """3 x 300 MB to an unknown path pushed the gateway to 890 MB, and the operator read 500 MB
    before it answered 401: now both answer from the header, at once, and close."""
    c = cluster
    answer, seconds = raw_exchange(
        c.gateway_port, "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n")
    assert answer.startswith("HTTP/1.1 404"), answer
    assert "no api is deployed at endpoint /nowhere" in answer, answer
    assert seconds < 4, seconds

    answer, _ = raw_exchange(
        c.operator_port, "POST /v1/deploy HTTP/1.1\r\nHost: x\r\nContent-Length: 500000000\r\n\r\n")
    assert answer.startswith("HTTP/1.1 401"), answer
    assert "missing or wrong operator token" in answer, answer

    # With the token, a deploy body over the operator's limit (16 MiB) is refused by its length.
    answer, _ = raw_exchange(
        c.operator_port, "POST /v1/deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        f"{c.token()}\r\nContent-Length: 500000000\r\n\r\n")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "request body is larger than the limit (16 MiB)" in answer, answer

    # Both servers still serve.
    assert c.http.get(c.url("/_cortex/healthz"), timeout=5).status_code == 200
    assert c.http.get(f"http://127.0.0.1:{c.operator_port}/healthz", timeout=5).status_code == 200


def test_replica_counts_and_config_size_are_bounded(cluster):
    """min_replicas: 1000000 hung the operator (every record made under its lock), and a 50 MB
    cortex.yaml kept it at 100% of a core."""
    c = cluster
    rc, out, err = c.deploy({"cortex.yaml": api_yaml(
        "many", extra="autoscaling:\n  min_replicas: 1000000\n  max_replicas: 1000000\n"),
        "predictor.py": HELLO})
    assert rc != 0, out
    assert ("autoscaling: min_replicas: must be less than or equal to 1000 (the most replicas "
            "this cluster runs per api, limits: replicas_per_api)") in out + err, out + err

    padding = "# " + "x" * 1000 + "\n"
    big = api_yaml("big") + padding * 2100  # 2.1 MB
    rc, out, err = c.deploy({"cortex.yaml": big, "predictor.py": HELLO})
    assert rc != 0, out
    assert "more than this cluster takes (1048576 bytes, limits: config)" in out + err, out + err
    assert c.list_apis() == []


def test_batch_jobs_are_bounded_in_batches_and_workers(cluster):
    """A 2 MB submission made 1M batches and 140 MB of SQLite; workers: 20 started 20 Python
    processes on 2 cores."""
    c = cluster
    out_dir = os.path.join(c.root, "out")
    os.makedirs(out_dir)
    c.deploy_ok({"cortex.yaml": f"""
- name: bulk
  kind: BatchAPI
  predictor:
    type: python
    path: predictor.py
    config: {{out: {out_dir}}}
""", "predictor.py": """
class PythonPredictor:
    def __init__(self, config, job_spec):
        pass

    def predict(self, payload, batch_id):
        pass
"""})
    url = c.url("/bulk")
    c.wait_until(lambda: c.http.get(url, timeout=5).status_code == 401, 15, interval=0.05,
                 message="the gateway to route /bulk")
    body = {"workers": 1, "item_list": {"items": [1] * 1_000_000, "batch_size": 1}}
    r = c.http.post(url, data=json.dumps(body), timeout=60)
    assert r.status_code == 400, r.text
    assert "the job would have more than 100000 batches" in r.text, r.text

    r = c.http.post(url, json={"workers": 20, "item_list": {"items": [1], "batch_size": 1}},
                    timeout=30)
    assert r.status_code == 400, r.text
    assert "workers: 20 is more than this cluster allows (16, limits: workers_per_job)" in r.text

    jobs = c.http.get(url, headers={"Authorization": f"Bearer {c.token()}"}, timeout=10)
    assert jobs.status_code == 200 and jobs.json() == [], jobs.text


CHATTY = """
import sys


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        # 20 KB with no newline, then 64 KB of short lines.
        sys.stdout.write("y" * 20000)
        sys.stdout.write("\\n")
        for i in range(1000):
            print("line", i, "z" * 60)
        sys.stdout.flush()
        return {"ok": True}
"""


def test_predictor_output_lines_are_split_and_logs_rotate(cluster_factory):
    """300 MB without a newline were held in the front, and logs never rotated."""
    c = cluster_factory(cluster_yaml="limits: {{log_line: 4Ki, log_file: 64Ki}}\n")
    c.deploy_ok({"cortex.yaml": api_yaml("chatty"), "predictor.py": CHATTY})
    c.wait_live("chatty")
    log = os.path.join(c.cluster_dir, "logs", "apis", "chatty.log")
    for _ in range(4):
        r = c.post("/chatty", {})
        assert r.status_code == 200, r.text
    # The operator rotates every 10 s: the log is cut back, one older file is kept.
    c.wait_until(lambda: os.path.exists(log + ".1"), 30, interval=0.5,
                 message="the api log to be rotated")
    c.wait_until(lambda: os.path.getsize(log) < 256 * 1024, 30, interval=0.5,
                 message="the api log to be cut back")
    with open(log + ".1", errors="replace") as f:
        lines = f.read().splitlines()
    with open(log, errors="replace") as f:
        lines += f.read().splitlines()
    longest = max(len(line) for line in lines)
    # 4 KiB pieces plus the "[<replica> p0] " prefix.
    assert longest <= 4096 + 80, longest
    assert any(line.endswith("y" * 100) for line in lines), "the long line was lost"
    # The CLI still follows the (truncated) log.
    rc, out, _ = c.cli("logs", "chatty", "--no-follow")
    assert rc == 0


def test_cluster_config_errors_are_reported_before_anything_starts(cluster_factory):
    c = cluster_factory(start=False)
    bad = os.path.join(c.root, "bad.yaml")
    with open(bad, "w") as f:
        f.write("limits:\n  workers_per_job: 0\n")
    rc, out, err = c.cli("cluster", "up", "--config", bad, "--operator-port", 1, "--gateway-port",
                         1)
    assert rc != 0
    assert "limits: workers_per_job: 0 is out of range (1 to 10000)" in err, err
    assert not os.path.exists(os.path.join(c.cluster_dir, "cluster.json"))


ESCAPING = """
import subprocess
import sys


class PythonPredictor:
    def __init__(self, config):
        # A child in a session of its own: outside the replica's process group.
        child = subprocess.Popen(
            [sys.executable, "-c", config["child"]], start_new_session=True)
        with open(config["pid_file"], "a") as f:
            f.write(f"{child.pid}\\n")

    def predict(self, payload):
        return {"ok": True}
"""


def escaped_pids(path):
    try:
        with open(path) as f:
            return [int(line) for line in f.read().split()]
    except OSError:
        return []


def test_a_child_in_a_new_session_is_stopped_with_its_replica(cluster):
    """It survived `cortex delete`."""
    c = cluster
    pid_file = os.path.join(c.root, "escaped.pids")
    extra = (f"config:\n  pid_file: {pid_file}\n"
             "  child: 'import time; time.sleep(600)'\n")
    c.deploy_ok({"cortex.yaml": api_yaml("escape", predictor_extra=extra),
                 "predictor.py": ESCAPING})
    c.wait_live("escape")
    pids = escaped_pids(pid_file)
    assert pids and all(pid_alive(p) for p in pids), pids
    c.cli_ok("delete", "escape", "-f")
    c.wait_until(lambda: not any(pid_alive(p) for p in pids), 20, interval=0.1,
                 message=f"the escaped children {pids} to stop with the replica")


def test_a_child_in_a_new_session_counts_against_compute_mem(cluster):
    """It escaped compute.mem accounting."""
    c = cluster
    pid_file = os.path.join(c.root, "hungry.pids")
    extra = (f"config:\n  pid_file: {pid_file}\n"
             "  child: 'import time; b = b\"1\" * (300 << 20); time.sleep(600)'\n")
    c.deploy_ok({"cortex.yaml": api_yaml("hungry-child", predictor_extra=extra,
                                         extra="compute:\n  mem: 200Mi"),
                 "predictor.py": ESCAPING})
    c.wait_until(lambda: c.status_code("hungry-child") == "status_oom", 40, interval=0.2,
                 message="the replica to be killed for its child's memory")
    pids = escaped_pids(pid_file)
    assert pids
    c.wait_until(lambda: not any(pid_alive(p) for p in pids), 10, interval=0.1,
                 message="the hungry child to be killed with its replica")
    log = c.api_log("hungry-child")
    assert "over its limit of 200 MiB (compute.mem)" in log, log


SMALL_LIMITS = """
limits:
  api_gateway_body: 1Ki
  load_balancer_body: 4Ki
  header: 2Ki
  json_depth: 8
  config: 4Ki
  job_submission: 2Ki
  batches_per_job: 5
  workers_per_job: 2
  replicas_per_api: 3
"""

BATCH = """
class PythonPredictor:
    def __init__(self, config, job_spec):
        pass

    def predict(self, payload, batch_id):
        pass
"""


def test_every_limit_of_cluster_yaml_takes_effect(cluster_factory):
    c = cluster_factory(cluster_yaml=SMALL_LIMITS)
    c.deploy_ok({"cortex.yaml": api_yaml("small") + f"""
- name: jobs
  kind: BatchAPI
  predictor:
    type: python
    path: batch.py
""", "predictor.py": HELLO, "batch.py": BATCH})
    c.wait_live("small")
    # Bodies, per listener.
    r = c.http.post(c.url("/small"), data=b"x" * 2000, timeout=10)
    assert r.status_code == 413 and "(1 KiB)" in r.text, r.text
    lb = c.state()["lb_url"]
    assert c.http.post(lb + "/small", json={"x": "y" * 2000}, timeout=10).status_code == 200
    r = c.http.post(lb + "/small", data=b"x" * 5000, timeout=10)
    assert r.status_code == 413 and "(4 KiB)" in r.text, r.text
    # Headers.
    r = c.http.get(c.url("/small"), headers={"X-Big": "h" * 3000}, timeout=10)
    assert r.status_code == 431, r.text
    r = c.http.get(c.url("/small") + "?q=" + "u" * 3000, timeout=10)
    assert r.status_code == 414 and "request URL is longer than the limit (2 KiB)" in r.text, r.text
    # Replicas per API and the size of cortex.yaml.
    rc, out, err = c.deploy({"cortex.yaml": api_yaml(
        "wide", extra="autoscaling:\n  min_replicas: 4\n  max_replicas: 4\n"),
        "predictor.py": HELLO})
    assert rc != 0 and "must be less than or equal to 3" in out + err, out + err
    rc, out, err = c.deploy({"cortex.yaml": api_yaml("big") + "#" * 5000 + "\n",
                             "predictor.py": HELLO})
    assert rc != 0 and "(4096 bytes, limits: config)" in out + err, out + err
    # Batch jobs: submission size, nesting, batches, workers.
    url = lb + "/jobs"  # the load balancer: its body limit is above the submission limit
    c.wait_until(lambda: c.http.get(url, timeout=5).status_code == 401, 15, interval=0.05,
                 message="the gateway to route /jobs")
    items = {"items": [1] * 800, "batch_size": 1}  # 2.4 KB
    r = c.http.post(url, json={"workers": 1, "item_list": items}, timeout=10)
    assert r.status_code == 413 and "(2 KiB)" in r.text, r.text
    nested = json.loads("[" * 10 + "]" * 10)
    r = c.http.post(url, json={"workers": 1, "item_list": {"items": [nested], "batch_size": 1}},
                    timeout=10)
    assert r.status_code == 400 and "nested more than 8 levels" in r.text, r.text
    r = c.http.post(url, json={"workers": 1, "item_list": {"items": [1] * 6, "batch_size": 1}},
                    timeout=10)
    assert r.status_code == 400 and "more than 5 batches" in r.text, r.text
    r = c.http.post(url, json={"workers": 3, "item_list": {"items": [1], "batch_size": 1}},
                    timeout=10)
    assert r.status_code == 400 and "(2, limits: workers_per_job)" in r.text, r.text


def test_the_bundle_and_operator_body_limits(cluster_factory):
    c = cluster_factory(cluster_yaml="limits: {{bundle: 1Ki, operator_body: 1Ki}}\n")
    rc, out, err = c.deploy({"cortex.yaml": api_yaml("any"), "predictor.py": HELLO})
    assert rc != 0, out
    assert "request body is larger than the limit (1 KiB)" in out + err, out + err
    r = c.http.post(f"http://127.0.0.1:{c.operator_port}/v1/deploy", data=b"{}" * 1000,
                    headers={"Authorization": f"Bearer {c.token()}"}, timeout=10)
    assert r.status_code == 413, r.text


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_the_gateway_waits_instead_of_spinning(cluster):
    """`continue` on accept errors spun the gateway at 100% CPU and it served nobody."""
    c = cluster
    c.deploy_ok({"cortex.yaml": api_yaml("fd"), "predictor.py": HELLO})
    c.wait_live("fd")
    pid = c.state()["gateway_pid"]
    open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    import resource
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds + 4, old[1]))
    clients = []
    try:
        for _ in range(20):  # past the limit: the rest wait in the listen backlog
            clients.append(socket.create_connection(("127.0.0.1", c.gateway_port), timeout=5))
        before = process_cpu_seconds(pid)
        time.sleep(2)
        spent = process_cpu_seconds(pid) - before
        assert spent < 0.5, f"the gateway used {spent:.2f} s of CPU in 2 s while out of fds"
    finally:
        for s in clients:
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
    r = c.wait_serving("fd", {}, timeout=10)
    assert r.status_code == 200


COUNTING = """
import time


class PythonPredictor:
    def __init__(self, config):
        self.log = config["log"]

    def predict(self, payload):
        with open(self.log, "a") as f:
            f.write(f"{payload['n']}\\n")
        time.sleep(payload.get("sleep", 0))
        return {"n": payload["n"]}
"""


def test_requests_whose_clients_left_are_not_run(cluster):
    """Queued requests whose client had gone were still run: 20 of them kept an API busy (and
    failing) for minutes. A client that gives up closes the gateway's connection to the replica,
    and the replica drops the request if it has not started it."""
    import concurrent.futures

    import requests

    c = cluster
    ran = os.path.join(c.root, "ran.txt")
    c.deploy_ok({"cortex.yaml": api_yaml("queue", predictor_extra=f"config:\n  log: {ran}\n"),
                 "predictor.py": COUNTING})
    c.wait_live("queue")
    url = c.url("/queue")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        busy = pool.submit(c.http.post, url, json={"n": 0, "sleep": 2}, timeout=30)
        time.sleep(0.3)  # it holds the only slot

        def impatient(n):
            with requests.Session() as session:
                session.trust_env = False  # loopback only, never a proxy
                try:
                    session.post(url, json={"n": n}, timeout=0.5)
                except requests.exceptions.Timeout:
                    return "gave up"
            return "answered"
        outcomes = list(pool.map(impatient, range(1, 6)))
        assert outcomes == ["gave up"] * 5, outcomes
        assert busy.result().status_code == 200
    r = c.post("/queue", {"n": 99})
    assert r.status_code == 200, r.text
    with open(ran) as f:
        assert f.read().split() == ["0", "99"], "requests whose clients had left were run"
    replica = c.get_api("queue")["replicas"][0]
    stats = c.http.get(f"http://127.0.0.1:{replica['port']}/_cortex/stats", timeout=5).json()
    assert stats["abandoned"] == 5, stats
