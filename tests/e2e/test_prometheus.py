"""A real Prometheus scrapes a local cluster with the configuration of docs/metrics.md.

Needs Debian's `prometheus` package (/usr/bin/prometheus and /usr/bin/promtool;
scripts/install-deps.sh installs it). Prometheus runs on a free loopback port with its TSDB in a
temporary directory and is always stopped (SIGTERM, then SIGKILL) in teardown.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import CORTEX_BIN, LOOPBACK, PYTHON, REPO_ROOT, api_yaml, free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
DOC = os.path.join(REPO_ROOT, "docs", "metrics.md")

pytestmark = pytest.mark.skipif(
    not (os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK)),
    reason=f"{PROMETHEUS} or {PROMTOOL} is missing: install Debian's `prometheus` package "
           "(scripts/install-deps.sh does)")

ECHO = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"ok": True}
"""


def doc_block(language, after_heading):
    """The first ```language block of docs/metrics.md after the line `after_heading`."""
    with open(DOC) as f:
        text = f.read()
    start = text.index(after_heading)
    m = re.compile(rf"^```{language}\n(.*?)^```$", re.MULTILINE | re.DOTALL).search(text, start)
    assert m, f"no ```{language} block after {after_heading!r} in {DOC}"
    return m.group(1)


def promtool_check(path):
    p = subprocess.run([PROMTOOL, "check", "config", path], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"promtool check config {path}:\n{p.stdout}\n{p.stderr}"
    assert "SUCCESS" in p.stdout + p.stderr, p.stdout + p.stderr


class Prometheus:
    def __init__(self, workdir, config_path, env):
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = os.path.join(workdir, "prometheus.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
             f"--web.listen-address={LOOPBACK}:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            cwd=workdir)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def prometheus_runner(request):
    """start(workdir, config_path, env) -> a running Prometheus; stopped after the test."""
    started = []

    def start(workdir, config_path, env):
        p = Prometheus(workdir, config_path, env)
        started.append(p)
        return p

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for p in started:
        p.stop()
        if failed:
            print(f"\n===== prometheus log =====\n{p.log()}")


def test_prometheus_scrapes_gateway_operator_and_replica(cluster, prometheus_runner):
    c = cluster
    name, other = "scraped", "second"
    # Two apis: each process then exposes several series per family, interleaved by api.
    c.deploy_ok({"cortex.yaml": api_yaml(name) + api_yaml(other), "predictor.py": ECHO})
    info = c.wait_live(name)
    other_info = c.wait_live(other)
    replica = info["replicas"][0]
    sent = 5
    for _ in range(sent):
        assert c.post(name, {}).status_code == 200
    assert c.post(other, {}).status_code == 200

    workdir = tempfile.mkdtemp(prefix="cx-prom-", dir="/tmp")
    try:
        # The doc's file_sd script, run once against this cluster.
        sd_dir = os.path.join(c.config_dir, "prometheus")
        os.makedirs(sd_dir)
        sd_file = os.path.join(sd_dir, "replicas.json")
        script = os.path.join(workdir, "cortex-replica-targets.py")
        with open(script, "w") as f:
            f.write(doc_block("python", "### Replica fronts: finding their ports"))
        env = dict(c.env, CORTEX=CORTEX_BIN)
        p = subprocess.run([PYTHON, script, sd_file], env=env, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        with open(sd_file) as f:
            groups = json.load(f)
        expected = [{"targets": [f"127.0.0.1:{i['replicas'][0]['port']}"],
                     "labels": {"cortex_env": "local", "cortex_api": i["spec"]["name"]}}
                    for i in (info, other_info)]
        assert sorted(groups, key=str) == sorted(expected, key=str), groups

        # The doc's scrape configuration with this cluster's paths and ports.
        doc_config = doc_block("yaml", "## Scraping with Prometheus")
        for placeholder in ("/home/me/.cortex", "127.0.0.1:8888", "127.0.0.1:8890"):
            assert placeholder in doc_config, placeholder
        config = (doc_config.replace("/home/me/.cortex", c.config_dir)
                  .replace("127.0.0.1:8888", f"127.0.0.1:{c.gateway_port}")
                  .replace("127.0.0.1:8890", f"127.0.0.1:{c.operator_port}"))
        doc_path = os.path.join(workdir, "doc-prometheus.yml")
        with open(doc_path, "w") as f:
            f.write(config)
        promtool_check(doc_path)

        # What this test runs: the same, scraped every second, plus the replica as a static
        # target taken from `cortex get -o json`.
        assert "scrape_interval: 15s" in config
        live = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
        live += ("\n  - job_name: cortex-replica-static\n"
                 "    static_configs:\n"
                 f"      - targets: [\"127.0.0.1:{replica['port']}\"]\n")
        live_path = os.path.join(workdir, "prometheus.yml")
        with open(live_path, "w") as f:
            f.write(live)
        promtool_check(live_path)

        prom = prometheus_runner(workdir, live_path, c.env)

        def query(expr):
            r = c.http.get(prom.url + "/api/v1/query", params={"query": expr}, timeout=5)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "success", body
            return body["data"]["result"]

        def values(expr):
            return [float(item["value"][1]) for item in query(expr)]

        def scraped():
            assert prom.proc.poll() is None, f"prometheus exited:\n{prom.log()}"
            return (values(f'cortex_requests_total{{api="{name}",code="2XX"}}') == [sent]
                    and values(f'cortex_api_ready_replicas{{api="{name}"}}') == [1]
                    and values(f'cortex_api_requested_replicas{{api="{name}"}}') == [1]
                    and values(f'cortex_requests_total{{api="{other}",code="2XX"}}') == [1]
                    and values('cortex_api_ready_replicas') == [1, 1]
                    and len(query(f'cortex_replica_in_flight{{api="{name}"}}')) == 2
                    and len(query(f'cortex_replica_in_flight{{api="{other}"}}')) == 1)
        c.wait_until(scraped, 20, interval=0.5, message="prometheus to have the cluster's metrics")

        in_flight = query(f'cortex_replica_in_flight{{api="{name}"}}')
        assert {item["metric"]["job"] for item in in_flight} == {"cortex-replicas",
                                                                 "cortex-replica-static"}
        assert all(item["metric"]["replica"] == replica["id"] for item in in_flight), in_flight
        from_sd = [i for i in in_flight if i["metric"]["job"] == "cortex-replicas"][0]["metric"]
        assert from_sd["cortex_api"] == name and from_sd["cortex_env"] == "local", from_sd
        assert values(f'cortex_replica_requests_total{{api="{name}",code="2XX",'
                      f'job="cortex-replica-static"}}') == [sent]
        assert values('up{job="cortex-operator"}') == [1]

        r = c.http.get(prom.url + "/api/v1/targets", timeout=5)
        assert r.status_code == 200, r.text
        active = r.json()["data"]["activeTargets"]
        summary = [(t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"])
                   for t in active]
        jobs = {"cortex-gateway", "cortex-operator", "cortex-replicas", "cortex-replica-static"}
        assert {t["labels"]["job"] for t in active} == jobs, summary
        assert all(t["health"] == "up" for t in active), summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
