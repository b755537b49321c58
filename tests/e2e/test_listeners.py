"""The two listeners of the gateway (spec §2 networking, §3 URLs and timeouts): the API gateway
(request timeout -> 504) and the load balancer (no timeout); api_gateway: none per API and
cluster-wide; endpoint normalisation and clashes; chaining one API to another through
$CORTEX_LOAD_BALANCER_URL.

Most tests share one cluster started with `--gateway-timeout-ms 1000`; each uses API names and
endpoints of its own."""

import json
import threading
import time

import pytest
import requests

from conftest import api_yaml

GATEWAY_TIMEOUT_MS = 1000

# Sleeps payload["sleep"] seconds; answers the payload's id, so a response says which request
# it belongs to.
SLEEPY_PREDICTOR = """
import time


class PythonPredictor:
    def __init__(self, config):
        self.name = config.get("name", "sleepy")

    def predict(self, payload):
        time.sleep(float(payload.get("sleep", 0)))
        return {"api": self.name, "id": payload.get("id"), "slept": payload.get("sleep", 0)}
"""

# Calls the API "chain-back" through the load balancer listener and returns both results.
FRONT_PREDICTOR = """
import json
import os
import urllib.request


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        url = os.environ["CORTEX_LOAD_BALANCER_URL"] + "/chain-back"
        request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            back = json.loads(response.read())
        return {"front": "chain-front", "back": back,
                "lb_url": os.environ.get("CORTEX_LOAD_BALANCER_URL"),
                "gateway_url": os.environ.get("CORTEX_API_GATEWAY_URL")}
"""


CLUSTER_UP_ARGS = ("--gateway-timeout-ms", GATEWAY_TIMEOUT_MS)  # the module's cluster


@pytest.fixture
def lc(module_cluster):
    """The module's cluster (API gateway timeout 1 s)."""
    return module_cluster


def lb_url(c):
    url = (c.state() or {}).get("lb_url")
    assert url and url.startswith("http://127.0.0.1:"), c.state()
    assert url != c.gateway_url
    return url


def new_session():
    s = requests.Session()
    s.trust_env = False  # loopback only, never a proxy
    return s


def replica_stats(port):
    with new_session() as s:
        r = s.get(f"http://127.0.0.1:{port}/_cortex/stats", timeout=2)
    assert r.status_code == 200, r.text
    return r.json()


def timed_post(session, url, payload, timeout=30):
    started = time.monotonic()
    r = session.post(url, json=payload, timeout=timeout)
    return r, time.monotonic() - started


def deployed_names(c):
    return sorted(a["spec"]["name"] for a in c.list_apis())


# ---------------------------------------------------------------------------------------------
# API gateway timeout vs load balancer
# ---------------------------------------------------------------------------------------------

def test_api_gateway_times_out_with_504_and_the_load_balancer_does_not(lc):
    c = lc
    name = "tmo-slow"
    c.deploy_ok({"cortex.yaml": api_yaml(name, predictor_extra="processes_per_replica: 1\n"
                                                              "threads_per_process: 1",
                                         extra="autoscaling:\n  max_replica_concurrency: 1"),
                 "predictor.py": SLEEPY_PREDICTOR})
    info = c.wait_live(name)
    port = info["replicas"][0]["port"]
    lb = lb_url(c)
    s = new_session()

    # Fast requests pass on both listeners.
    r = s.post(c.url(name), json={"id": "warm"}, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == "warm", r.text

    # A 2 s prediction on the API gateway listener: 504 after the 1 s timeout, not after 2 s.
    started = time.monotonic()
    r, elapsed = timed_post(s, c.url(name), {"sleep": 2, "id": "late"})
    assert r.status_code == 504, (r.status_code, r.text)
    assert 0.9 <= elapsed <= 1.7, f"the 504 came after {elapsed:.2f}s (timeout is 1 s)"
    assert r.headers.get("Content-Type", "").startswith("application/json"), dict(r.headers)
    error = r.json()["error"]
    assert "timeout" in error.lower() and name in error, error

    # The replica still runs the prediction (the request is not sent twice, not cancelled).
    stats = replica_stats(port)
    assert stats["in_flight"] == 1, stats

    # Its slot comes back once the 2 s prediction has finished.
    c.wait_until(lambda: replica_stats(port)["in_flight"] == 0, 5, interval=0.05,
                 message="the timed-out prediction to finish on the replica")
    assert time.monotonic() - started >= 1.9, "the prediction stopped early"

    # With max_replica_concurrency 1, a leaked slot would make these 503; the late result of the
    # timed-out request must not be delivered to them either (on either listener).
    for i in range(3):
        r = s.post(c.url(name), json={"id": f"next-{i}"}, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.json() == {"api": "sleepy", "id": f"next-{i}", "slept": 0}, r.text
        r = s.post(f"{lb}/{name}", json={"id": f"lb-next-{i}"}, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.json()["id"] == f"lb-next-{i}", r.text

    # The same slow request on the load balancer listener: no timeout.
    r, elapsed = timed_post(s, f"{lb}/{name}", {"sleep": 2, "id": "lb-slow"})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["id"] == "lb-slow", r.text
    assert 1.9 <= elapsed <= 5, f"the load balancer answered after {elapsed:.2f}s"
    r = s.post(c.url(name), json={"id": "after"}, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == "after", r.text
    s.close()
    c.cli_ok("delete", name, "-f")


# ---------------------------------------------------------------------------------------------
# api_gateway: none
# ---------------------------------------------------------------------------------------------

def test_api_gateway_none_serves_on_the_load_balancer_only(lc):
    c = lc
    lb = lb_url(c)
    c.deploy_ok({"cortex.yaml": api_yaml("gwn-private", extra="networking:\n  api_gateway: none")
                 + api_yaml("gwn-public"),
                 "predictor.py": SLEEPY_PREDICTOR})
    private = c.wait_live("gwn-private")  # its GET goes to the endpoint it reports
    c.wait_live("gwn-public")

    assert private["spec"]["networking"]["api_gateway"] == "none", private["spec"]
    assert private["endpoint"] == f"{lb}/gwn-private", private
    public = c.get_api("gwn-public")
    assert public["spec"]["networking"]["api_gateway"] == "public"
    assert public["endpoint"] == f"{c.gateway_url}/gwn-public", public

    r = c.post("gwn-private", {"id": 1})
    assert r.status_code == 404, (r.status_code, r.text)
    r = c.http.post(f"{lb}/gwn-private", json={"id": 1}, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == 1, (r.status_code, r.text)
    # A public API is on both listeners.
    assert c.post("gwn-public", {"id": 2}).json()["id"] == 2
    r = c.http.post(f"{lb}/gwn-public", json={"id": 3}, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == 3, r.text

    out = c.cli_ok("get", "gwn-private")
    assert f"endpoint: {lb}/gwn-private" in out, out
    listed = {a["spec"]["name"]: a for a in c.list_apis()}
    assert listed["gwn-private"]["endpoint"] == f"{lb}/gwn-private"
    for name in ("gwn-private", "gwn-public"):
        c.cli_ok("delete", name, "-f")


def test_cluster_wide_api_gateway_none(cluster_factory):
    c = cluster_factory(up_args=("--api-gateway", "none"))
    lb = lb_url(c)

    # api_gateway: public is an error when the cluster has no API gateway.
    rc, out, err = c.deploy({"cortex.yaml": api_yaml("cw-fresh")
                             + api_yaml("cw-public", extra="networking:\n  api_gateway: public"),
                             "predictor.py": SLEEPY_PREDICTOR})
    assert rc != 0, out
    for text in ("cw-public", "networking", "api_gateway", '"public" is not allowed',
                 "disabled cluster-wide"):
        assert text in err, (text, err)
    assert c.list_apis() == []

    # The default is none: load balancer only.
    c.deploy_ok({"cortex.yaml": api_yaml("cw-default")
                 + "- name: cw-split\n  kind: TrafficSplitter\n  apis:\n"
                   "    - name: cw-default\n      weight: 100\n",
                 "predictor.py": SLEEPY_PREDICTOR})
    info = c.wait_live("cw-default")
    assert info["spec"]["networking"]["api_gateway"] == "none", info["spec"]
    assert info["endpoint"] == f"{lb}/cw-default", info
    assert c.post("cw-default", {"id": 1}).status_code == 404
    r = c.http.post(f"{lb}/cw-default", json={"id": 1}, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == 1, r.text

    split = c.get_api("cw-split")
    assert split["spec"]["networking"]["api_gateway"] == "none", split["spec"]
    assert split["endpoint"] == f"{lb}/cw-split", split
    c.wait_until(lambda: c.http.post(f"{lb}/cw-split", json={"id": 2}, timeout=10)
                 .status_code == 200, 10, interval=0.05,
                 message="the load balancer to route cw-split")
    assert c.post("cw-split", {"id": 2}).status_code == 404


# ---------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------

def endpoint_api(name, endpoint):
    return api_yaml(name, predictor_extra=f"config:\n  name: {name}",
                    extra=f"networking:\n  endpoint: {json.dumps(endpoint)}")


def test_custom_endpoints_normalisation_and_clashes(lc):
    c = lc
    out = c.deploy_ok({"cortex.yaml": endpoint_api("ep-one", "ep/one/"),
                       "predictor.py": SLEEPY_PREDICTOR})
    assert "creating ep-one (RealtimeAPI)" in out, out
    info = c.wait_live("ep-one")
    assert info["spec"]["networking"]["endpoint"] == "/ep/one", info["spec"]
    assert info["endpoint"] == f"{c.gateway_url}/ep/one", info
    r = c.post("ep/one", {"id": "x"})
    assert r.status_code == 200 and r.json() == {"api": "ep-one", "id": "x", "slept": 0}, r.text
    assert c.post("ep-one", {}).status_code == 404

    # Redeploying the same API with its own endpoint is not a clash.
    out = c.deploy_ok({"cortex.yaml": endpoint_api("ep-one", "/ep/one"),
                       "predictor.py": SLEEPY_PREDICTOR})
    assert "ep-one (RealtimeAPI) is up to date" in out or "updating ep-one" in out, out

    before = deployed_names(c)
    cases = [
        # (case, cortex.yaml, texts the error must contain)
        ("same endpoint twice in one file",
         endpoint_api("ep-two", "/ep/same") + endpoint_api("ep-three", "ep/same/"),
         ["ep-three (RealtimeAPI)", "endpoint is already being used by ep-two"]),
        ("endpoint of a deployed api",
         api_yaml("ep-fresh") + endpoint_api("ep-four", "ep/one/"),
         ["ep-four (RealtimeAPI)", "endpoint /ep/one is already being used by ep-one"]),
        ("default endpoint of a new api is a deployed custom endpoint",
         api_yaml("ep-fresh") + endpoint_api("ep-five", "/ep-fresh"),
         ["ep-five (RealtimeAPI)", "endpoint is already being used by ep-fresh"]),
        ("splitter on a deployed api's endpoint",
         "- name: ep-split-bad\n  kind: TrafficSplitter\n  networking:\n"
         "    endpoint: /ep/one\n  apis:\n    - name: ep-one\n      weight: 100\n",
         ["ep-split-bad (TrafficSplitter)", "endpoint /ep/one is already being used by ep-one"]),
        ("root endpoint", endpoint_api("ep-root", "/"),
         ["ep-root (RealtimeAPI)", "networking", "endpoint", 'cannot be "/"']),
        ("double slash", endpoint_api("ep-slashes", "a//b"),
         ["ep-slashes (RealtimeAPI)", "endpoint", "//"]),
        ("bad character", endpoint_api("ep-space", "a b"),
         ["ep-space (RealtimeAPI)", "endpoint", "is not a valid endpoint"]),
    ]
    failures = []
    for case, yaml_text, expected in cases:
        rc, out, err = c.deploy({"cortex.yaml": yaml_text, "predictor.py": SLEEPY_PREDICTOR})
        problems = [] if rc != 0 else ["exit status 0"]
        problems += [f"{text!r} missing" for text in expected if text not in err]
        if "creat" in out or "updat" in out:
            problems.append("stdout says something was deployed")
        if problems:
            failures.append(f"{case}: {', '.join(problems)}; rc={rc} stdout={out!r} "
                            f"stderr={err!r}")
    assert not failures, "\n".join(failures)
    assert deployed_names(c) == before

    # A splitter with a custom endpoint.
    out = c.deploy_ok({"cortex.yaml": "- name: ep-split\n  kind: TrafficSplitter\n"
                                      "  networking:\n    endpoint: ep/split/\n"
                                      "  apis:\n    - name: ep-one\n      weight: 100\n"})
    assert "created ep-split (TrafficSplitter)" in out, out
    split = c.get_api("ep-split")
    assert split["spec"]["networking"]["endpoint"] == "/ep/split", split["spec"]
    assert split["endpoint"] == f"{c.gateway_url}/ep/split", split
    c.wait_until(lambda: c.post("ep/split", {"id": "s"}).status_code == 200, 10, interval=0.05,
                 message="the gateway to route /ep/split")
    assert c.post("ep/split", {"id": "s"}).json() == {"api": "ep-one", "id": "s", "slept": 0}
    # Its endpoint is taken too.
    rc, out, err = c.deploy({"cortex.yaml": endpoint_api("ep-six", "/ep/split"),
                             "predictor.py": SLEEPY_PREDICTOR})
    assert rc != 0 and "endpoint /ep/split is already being used by ep-split" in err, (out, err)
    for name in ("ep-split", "ep-one"):
        c.cli_ok("delete", name, "-f")


# ---------------------------------------------------------------------------------------------
# Chaining
# ---------------------------------------------------------------------------------------------

def test_chaining_through_the_load_balancer_counts_the_request_in_both_apis(lc):
    c = lc
    lb = lb_url(c)
    c.deploy_ok({"cortex.yaml": api_yaml("chain-back", predictor_extra="config:\n  name: back")
                 + api_yaml("chain-front", predictor_path="front.py"),
                 "predictor.py": SLEEPY_PREDICTOR, "front.py": FRONT_PREDICTOR})
    back = c.wait_live("chain-back")
    front = c.wait_live("chain-front")

    r = c.post("chain-front", {"id": "quick"})
    assert r.status_code == 200, r.text
    assert r.json() == {"front": "chain-front",
                        "back": {"api": "back", "id": "quick", "slept": 0},
                        "lb_url": lb, "gateway_url": c.gateway_url}, r.text

    back_port = back["replicas"][0]["port"]
    front_port = front["replicas"][0]["port"]
    result = {}

    def slow_call():
        with new_session() as s:
            try:
                # The load balancer listener: 2 s is beyond the API gateway's 1 s timeout.
                result["response"] = s.post(f"{lb}/chain-front", json={"id": "slow", "sleep": 2},
                                            timeout=30)
            except requests.RequestException as e:
                result["error"] = e

    caller = threading.Thread(target=slow_call, daemon=True)
    caller.start()
    try:
        seen = c.wait_until(
            lambda: (lambda f, b: (f, b) if f["in_flight"] >= 1 and b["in_flight"] >= 1 else None)(
                replica_stats(front_port), replica_stats(back_port)),
            1.8, interval=0.05, message="the chained request to be in flight in both apis")
        assert seen[0]["in_flight"] >= 1 and seen[1]["in_flight"] >= 1, seen
    finally:
        caller.join(timeout=20)
    assert not caller.is_alive()
    assert "error" not in result, result
    r = result["response"]
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["back"] == {"api": "back", "id": "slow", "slept": 2}, r.text
    for name in ("chain-front", "chain-back"):
        c.cli_ok("delete", name, "-f")
