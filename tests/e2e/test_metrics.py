"""The Prometheus endpoints of the gateway, the operator and the replica fronts, against
docs/metrics.md; the front's rejection counter."""

import concurrent.futures
import os
import re
import threading

import requests

from conftest import LOOPBACK, REPO_ROOT, api_yaml

DOC = os.path.join(REPO_ROOT, "docs", "metrics.md")

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> (types {family: type}, samples [(name, {label: value}, float)])."""
    types, samples = {}, []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return name


def value(samples, name, **labels):
    """The value of the one sample `name` whose labels include `labels` (None if absent)."""
    found = [v for n, have, v in samples
             if n == name and all(have.get(k) == x for k, x in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def operator_token(cluster):
    with open(os.path.join(cluster.cluster_dir, "operator.token")) as f:
        return f.read().strip()


def scrape(cluster, url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = cluster.http.get(url, headers=headers, timeout=5)
    assert r.status_code == 200, (url, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    assert "version=0.0.4" in r.headers["Content-Type"], r.headers
    return parse_metrics(r.text)


def documented_metrics():
    with open(DOC) as f:
        return set(re.findall(r"^\| `(cortex_[a-z_]+)` \|", f.read(), re.MULTILINE))


MODELLED = """
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        with open(model_path + "/value.txt") as f:
            return f.read()

    def predict(self, payload):
        return {"value": self.client.get_model()}
"""

ECHO = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"ok": True}
"""

BATCHED = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return [{"size": len(payload)} for _ in payload]
"""


def test_every_exposed_metric_is_documented_and_every_documented_one_exposed(cluster_factory):
    c = cluster_factory(up_args=("--autoscaler-tick-ms", 1000))
    name = "measured"
    c.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": ECHO})
    info = c.wait_live(name)
    for _ in range(3):
        assert c.post(name, {}).status_code == 200
    assert c.http.get(c.url(name), timeout=5).status_code == 200  # a GET: not counted
    port = info["replicas"][0]["port"]
    replica_id = info["replicas"][0]["id"]
    # An API with a model: its front adds the model registry's counters.
    modelled = "modelled"
    model_dir = os.path.join(c.root, "text-model")
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "value.txt"), "w") as f:
        f.write("v")
    c.deploy_ok({"cortex.yaml": api_yaml(modelled, predictor_extra=f"model_path: {model_dir}"),
                 "predictor.py": MODELLED})
    model_port = c.wait_live(modelled)["replicas"][0]["port"]
    assert c.post(modelled, {}).json() == {"value": "v"}
    assert c.post(modelled, {}).json() == {"value": "v"}
    model_url = f"http://{LOOPBACK}:{model_port}/metrics"
    c.wait_until(lambda: value(scrape(c, model_url, None)[1], "cortex_model_cache_hits_total",
                               api=modelled) == 1, 15, interval=0.2,
                 message="the worker's model counters in the front's metrics")
    model_samples = scrape(c, model_url, None)[1]
    assert value(model_samples, "cortex_model_cache_misses_total", api=modelled) == 1
    assert value(model_samples, "cortex_model_loads_total", api=modelled) == 1
    assert value(model_samples, "cortex_models_loaded", api=modelled) == 1
    assert value(model_samples, "cortex_model_resident_bytes", api=modelled) == 1
    # An API with server-side batching: its front adds the batch-size histogram.
    batched = "batched"
    c.deploy_ok({"cortex.yaml": api_yaml(
        batched, predictor_extra="server_side_batching: {max_batch_size: 2, batch_interval: 1ms}"),
        "predictor.py": BATCHED})
    batch_url = f"http://{LOOPBACK}:{c.wait_live(batched)['replicas'][0]['port']}/metrics"
    assert c.post(batched, {}).json() == {"size": 1}
    batch_samples = scrape(c, batch_url, None)[1]
    assert value(batch_samples, "cortex_replica_batch_size_count", api=batched) == 1
    assert value(batch_samples, "cortex_replica_batch_size_bucket", api=batched, le="1") == 1
    assert value(batch_samples, "cortex_replica_batch_size_sum", api=batched) == 1
    operator_url = f"http://{LOOPBACK}:{c.operator_port}/metrics"

    # The operator wants its token.
    assert c.http.get(operator_url, timeout=5).status_code == 401
    assert c.http.get(operator_url, headers={"Authorization": "Bearer wrong"},
                      timeout=5).status_code == 401

    token = operator_token(c)
    # The autoscaler's recommendation appears after its first tick with samples.
    c.wait_until(lambda: value(scrape(c, operator_url, token)[1],
                               "cortex_api_autoscaler_recommendation", api=name) is not None,
                 15, interval=0.5, message="the autoscaler's first recommendation")

    exposed = {}
    for component, url, tok in (("gateway", c.gateway_url + "/metrics", None),
                                ("gateway", c.gateway_url + "/_cortex/metrics", None),
                                ("operator", operator_url, token),
                                ("front", f"http://{LOOPBACK}:{port}/metrics", None),
                                ("model front", model_url, None),
                                ("batching front", batch_url, None)):
        types, samples = scrape(c, url, tok)
        for n, labels, _ in samples:
            family = family_of(n, types)
            assert family in types, f"{component}: {n} has no # TYPE line"
            exposed.setdefault(family, set()).add(component)
        if component == "gateway":
            assert value(samples, "cortex_requests_total", api=name, code="2XX") == 3
            assert value(samples, "cortex_request_duration_seconds_count", api=name) == 3
            assert value(samples, "cortex_request_duration_seconds_bucket", api=name,
                         le="+Inf") == 3
        elif component == "operator":
            assert value(samples, "cortex_api_requested_replicas", api=name) == 1
            assert value(samples, "cortex_api_ready_replicas", api=name) == 1
            assert value(samples, "cortex_api_desired_replicas", api=name) == 1
            assert value(samples, "cortex_api_autoscaler_recommendation", api=name) == 1
            assert value(samples, "cortex_api_in_flight", api=name) is not None
        elif component == "front":
            assert value(samples, "cortex_replica_in_flight", api=name, replica=replica_id) == 0
            assert value(samples, "cortex_replica_requests_total", api=name, replica=replica_id,
                         code="2XX") == 3
            assert value(samples, "cortex_replica_rejected_total", api=name,
                         replica=replica_id) == 0

    documented = documented_metrics()
    assert documented, f"no metric tables found in {DOC}"
    assert not set(exposed) - documented, f"undocumented metrics: {set(exposed) - documented}"
    assert not documented - set(exposed), f"documented but not exposed: {documented - set(exposed)}"


SLOW = """
import time


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        time.sleep(0.5)
        return {"ok": True}
"""


def test_front_metrics_count_rejections_past_max_replica_concurrency(cluster):
    c = cluster
    name = "crowded"
    c.deploy_ok({
        "cortex.yaml": api_yaml(name, extra="autoscaling:\n  max_replica_concurrency: 2"),
        "predictor.py": SLOW,
    })
    info = c.wait_live(name)
    replica = info["replicas"][0]
    front = f"http://{LOOPBACK}:{replica['port']}"
    _, samples = scrape(c, front + "/metrics")
    labels = {"api": name, "replica": replica["id"]}
    assert value(samples, "cortex_replica_rejected_total", **labels) == 0

    barrier = threading.Barrier(6, timeout=10)

    def one():
        with requests.Session() as s:
            s.trust_env = False
            barrier.wait()
            return s.post(c.url(name), json={}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: one(), range(6)))
    codes = [r.status_code for r in responses]
    busy = codes.count(503)
    assert set(codes) <= {200, 503} and busy >= 1, codes

    _, samples = scrape(c, front + "/metrics")
    rejected = value(samples, "cortex_replica_rejected_total", **labels)
    assert rejected is not None and rejected > 0, samples
    assert rejected == busy, (rejected, codes)
    assert value(samples, "cortex_replica_requests_total", code="5XX", **labels) == busy
    assert value(samples, "cortex_replica_requests_total", code="2XX", **labels) == codes.count(200)
    assert value(samples, "cortex_replica_in_flight", **labels) == 0
    stats = c.http.get(front + "/_cortex/stats", timeout=5).json()
    assert stats["rejected"] == busy, stats
    # The gateway counted the same 503s.
    _, gateway = scrape(c, c.gateway_url + "/metrics")
    assert value(gateway, "cortex_requests_total", api=name, code="5XX") == busy


def test_api_history_matches_the_gateways_counters(cluster_factory):
    """GET /v1/apis/{api}/history (the dashboard's data): its intervals count the requests the
    gateway counted, with latencies inside the histogram's range, and the autoscaler's in-flight
    samples and decisions are there."""
    c = cluster_factory(up_args=("--autoscaler-tick-ms", 1000))
    name = "historic"
    c.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": ECHO})
    c.wait_live(name)
    url = f"http://{LOOPBACK}:{c.operator_port}/v1/apis/{name}/history"
    assert c.http.get(url, timeout=5).status_code == 401  # behind the operator's token
    headers = {"Authorization": f"Bearer {operator_token(c)}"}

    def history():
        r = c.http.get(url, headers=headers, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def counted_2xx(h):
        return sum(p["code_2xx"] for p in h["requests"])

    def gateway_2xx():
        return value(scrape(c, c.gateway_url + "/metrics")[1], "cortex_requests_total", api=name,
                     code="2XX") or 0

    # The gateway counts an API from its first request, and requests before the first snapshot
    # belong to no interval: send one, wait for an interval, then send 40.
    assert c.post(name, {}).status_code == 200
    c.wait_until(lambda: history()["requests"], 15, interval=0.5, message="a first interval")
    before = counted_2xx(history())
    for _ in range(40):
        assert c.post(name, {}).status_code == 200
    h = c.wait_until(lambda: (lambda h: h if counted_2xx(h) >= before + 40 else None)(history()),
                     15, interval=0.5, message="the history to count 40 more requests")
    # Every request but the first (in the first snapshot, which starts the first interval).
    assert counted_2xx(h) == before + 40 == gateway_2xx() - 1, (counted_2xx(h), gateway_2xx())
    for p in h["requests"]:
        assert abs(p["requests_per_second"] * p["seconds"] - p["code_2xx"]) < 1e-6, p
        if p["code_2xx"] > 0:
            assert 0 < p["p50_ms"] <= p["p99_ms"] <= 10_000, p
        else:
            assert p["p50_ms"] is None and p["p99_ms"] is None, p
    assert h["replicas"] == {"ready": 1, "requested": 1}, h

    h = c.wait_until(lambda: (lambda h: h if h["decisions"] and h["in_flight"] else None)(
        history()), 15, interval=0.5, message="autoscaler samples and a decision")
    assert all(len(sample) == 2 for sample in h["in_flight"]), h
    d = h["decisions"][-1]
    assert (d["from"], d["to"], d["recommendation"]) == (1, 1, 1), d
    r = c.http.get(f"http://{LOOPBACK}:{c.operator_port}/v1/apis/nope/history", headers=headers,
                   timeout=5)
    assert r.status_code == 404 and r.json()["error"] == "nope is not deployed", r.text
