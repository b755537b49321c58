"""TrafficSplitter (spec §1, §2, §12, §14): validation, weighted routing statistics, live weight
changes under load, delete protection and `cortex get` for splitters.

Every test uses API names of its own on one cluster shared by the module."""

import threading
import time

import pytest
import requests

from conftest import api_yaml, pid_alive

# Answers its configured name as text/plain, so a response says which target served it.
NAME_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        self.name = config["name"]

    def predict(self, payload):
        return self.name
"""


def named_api(name, processes=1):
    return api_yaml(name, predictor_extra=f"processes_per_replica: {processes}\n"
                                          f"config:\n  name: {name}")


def splitter_yaml(name, targets, networking=None, extra=""):
    """A TrafficSplitter item; targets is [(api name, weight)]."""
    text = f"- name: {name}\n  kind: TrafficSplitter\n"
    if networking:
        text += "  networking:\n" + "".join(f"    {k}: {v}\n" for k, v in networking.items())
    text += "  apis:\n"
    for target, weight in targets:
        text += f"    - name: {target}\n      weight: {weight}\n"
    return text + extra


def new_session():
    s = requests.Session()
    s.trust_env = False  # loopback only, never a proxy
    return s


def deployed_names(c):
    return sorted(a["spec"]["name"] for a in c.list_apis())


def send_many(url, total, workers=8):
    """POSTs {} to url `total` times from `workers` threads with keep-alive sessions;
    returns [(status, body)]."""
    per_worker = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    results = [None] * workers

    def work(i):
        out = []
        with new_session() as s:
            for _ in range(per_worker[i]):
                try:
                    r = s.post(url, json={}, timeout=30)
                    out.append((r.status_code, r.text))
                except requests.RequestException as e:
                    out.append((None, repr(e)))
        results[i] = out

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "request threads did not finish in 120 s"
    return [r for chunk in results for r in chunk]


def wait_splitter_routed(c, endpoint, expected_bodies, timeout=10):
    """Waits until a POST to the splitter's endpoint answers 200 with one of expected_bodies."""
    def routed():
        r = c.post(endpoint, {}, timeout=10)
        return r.status_code == 200 and r.text in expected_bodies
    c.wait_until(routed, timeout, interval=0.05, message=f"the gateway to route {endpoint}")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

# (case id, splitter YAML (val-a, val-b and the splitter val-split are deployed), texts that the
# error must contain). Every case file also holds a new RealtimeAPI (val-fresh) that must not be
# deployed: a deploy is all or nothing.
VALIDATION_CASES = [
    ("weight-above-100",
     splitter_yaml("val-bad", [("val-a", 101), ("val-b", 0)]),
     ["val-bad (TrafficSplitter)", "apis", "weight", "must be less than or equal to 100"]),
    ("weight-negative",
     splitter_yaml("val-bad", [("val-a", -10), ("val-b", 110)]),
     ["val-bad (TrafficSplitter)", "apis", "weight", "must be greater than or equal to 0"]),
    ("weight-not-an-integer",
     splitter_yaml("val-bad", [("val-a", "half"), ("val-b", 50)]),
     ["val-bad (TrafficSplitter)", "weight", "must be an integer"]),
    ("weights-sum-below-100",
     splitter_yaml("val-bad", [("val-a", 30), ("val-b", 60)]),
     ["val-bad (TrafficSplitter)", "expected weights to sum to 100 but found 90"]),
    ("weights-sum-above-100",
     splitter_yaml("val-bad", [("val-a", 60), ("val-b", 60)]),
     ["val-bad (TrafficSplitter)", "expected weights to sum to 100 but found 120"]),
    ("duplicate-target",
     splitter_yaml("val-bad", [("val-a", 50), ("val-a", 50)]),
     ["val-bad (TrafficSplitter)", "apis", '"val-a"', "more than once"]),
    ("missing-apis",
     "- name: val-bad\n  kind: TrafficSplitter\n",
     ["val-bad (TrafficSplitter)", 'key "apis" must be specified']),
    ("empty-apis",
     "- name: val-bad\n  kind: TrafficSplitter\n  apis: []\n",
     ["val-bad (TrafficSplitter)", "apis", "must contain at least 1 element"]),
    ("missing-weight",
     "- name: val-bad\n  kind: TrafficSplitter\n  apis:\n    - name: val-a\n",
     ["val-bad (TrafficSplitter)", 'key "weight" must be specified']),
    ("empty-target-name",
     splitter_yaml("val-bad", [('""', 100)]),
     ["val-bad (TrafficSplitter)", "name", "cannot be empty"]),
    ("target-not-found",
     splitter_yaml("val-bad", [("val-a", 50), ("val-nope", 50)]),
     ["val-bad (TrafficSplitter)", "api val-nope was either not found or is not a RealtimeAPI"]),
    ("target-is-a-deployed-splitter",
     splitter_yaml("val-bad", [("val-a", 50), ("val-split", 50)]),
     ["val-bad (TrafficSplitter)", "api val-split was either not found or is not a RealtimeAPI"]),
    ("target-is-a-splitter-in-the-same-file",
     splitter_yaml("val-inner", [("val-a", 100)])
     + splitter_yaml("val-bad", [("val-b", 50), ("val-inner", 50)]),
     ["val-bad (TrafficSplitter)", "api val-inner was either not found or is not a RealtimeAPI"]),
    ("unknown-top-level-key",
     splitter_yaml("val-bad", [("val-a", 100)], extra="  bogus: 1\n"),
     ["val-bad (TrafficSplitter)", 'key "bogus" is not supported']),
    ("key-of-another-kind",
     splitter_yaml("val-bad", [("val-a", 100)], extra="  autoscaling:\n    min_replicas: 1\n"),
     ["val-bad (TrafficSplitter)", 'key "autoscaling" is not supported']),
    ("unknown-key-in-a-target",
     "- name: val-bad\n  kind: TrafficSplitter\n  apis:\n"
     "    - name: val-a\n      weight: 100\n      extra: 1\n",
     ["val-bad (TrafficSplitter)", 'key "extra" is not supported']),
    ("local-port-on-a-splitter",
     splitter_yaml("val-bad", [("val-a", 100)], networking={"local_port": 9999}),
     ["val-bad (TrafficSplitter)", 'key "local_port" is not supported']),
    ("name-used-twice-in-the-file",
     splitter_yaml("val-fresh", [("val-a", 100)]),
     ["val-fresh", "must be unique"]),
]


@pytest.fixture
def validation_apis(module_cluster):
    c = module_cluster
    if "val-split" not in deployed_names(c):
        c.deploy_ok({"cortex.yaml": named_api("val-a") + named_api("val-b")
                     + splitter_yaml("val-split", [("val-a", 50), ("val-b", 50)]),
                     "predictor.py": NAME_PREDICTOR})
        c.wait_live("val-a", routed=False)
        c.wait_live("val-b", routed=False)
    return c


def test_invalid_splitters_are_rejected_and_nothing_is_deployed(validation_apis):
    c = validation_apis
    before = deployed_names(c)
    assert {"val-a", "val-b", "val-split"} <= set(before), before
    failures = []
    for case, splitter_text, expected in VALIDATION_CASES:
        project = c.project(f"val-{case}", {
            "cortex.yaml": named_api("val-fresh") + splitter_text,
            "predictor.py": NAME_PREDICTOR,
        })
        rc, out, err = c.deploy(project)
        problems = []
        if rc == 0:
            problems.append("exit status 0")
        problems += [f"{text!r} missing" for text in expected if text not in err]
        if "creat" in out or "updat" in out:
            problems.append("stdout says something was deployed")
        if problems:
            failures.append(f"{case}: {', '.join(problems)}; rc={rc} stdout={out!r} "
                            f"stderr={err!r}")
    assert not failures, "\n".join(failures)
    assert deployed_names(c) == before


def test_splitter_cannot_take_the_name_of_a_realtime_api(validation_apis):
    c = validation_apis
    rc, out, err = c.deploy({"cortex.yaml": splitter_yaml("val-a", [("val-b", 100)]),
                             "predictor.py": NAME_PREDICTOR})
    assert rc != 0, out
    assert ("cannot change the kind of val-a to TrafficSplitter because it has already been "
            "deployed with kind RealtimeAPI") in out + err, (out, err)
    assert c.get_api("val-a")["spec"]["kind"] == "RealtimeAPI"


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------

def test_weighted_split_statistics(module_cluster):
    c = module_cluster
    out = c.deploy_ok({"cortex.yaml": named_api("ws-a", processes=2) + named_api("ws-b", processes=2)
                       + splitter_yaml("ws-split", [("ws-a", 30), ("ws-b", 70)]),
                       "predictor.py": NAME_PREDICTOR})
    assert "creating ws-a (RealtimeAPI)" in out and "creating ws-b (RealtimeAPI)" in out, out
    assert "created ws-split (TrafficSplitter)" in out, out
    # Splitters are applied after the APIs of the same file.
    assert out.index("ws-split") > max(out.index("ws-a"), out.index("ws-b")), out
    c.wait_live("ws-a")
    c.wait_live("ws-b")
    wait_splitter_routed(c, "ws-split", {"ws-a", "ws-b"})

    total = 10_000
    started = time.monotonic()
    results = send_many(c.url("ws-split"), total)
    elapsed = time.monotonic() - started
    failures = [r for r in results if r[0] != 200]
    assert len(results) == total
    assert not failures, f"{len(failures)} failed requests, first: {failures[:5]}"
    counts = {"ws-a": 0, "ws-b": 0}
    for _, body in results:
        counts[body] = counts.get(body, 0) + 1
    assert set(counts) == {"ws-a", "ws-b"}, counts
    share_a = counts["ws-a"] / total
    assert abs(share_a - 0.30) <= 0.02, (f"ws-a got {share_a:.2%} of {total} requests "
                                         f"(expected 30% ± 2 points): {counts}")
    print(f"{total} requests in {elapsed:.1f}s: {counts}")


def test_live_weight_change_under_load(module_cluster):
    c = module_cluster
    c.deploy_ok({"cortex.yaml": named_api("lw-a") + named_api("lw-b"),
                 "predictor.py": NAME_PREDICTOR})
    c.wait_live("lw-a")
    c.wait_live("lw-b")

    def deploy_weights(wa, wb):
        out = c.deploy_ok({"cortex.yaml": splitter_yaml("lw-split", [("lw-a", wa), ("lw-b", wb)])})
        return out, time.monotonic()

    out, _ = deploy_weights(30, 70)
    assert "created lw-split (TrafficSplitter)" in out, out
    wait_splitter_routed(c, "lw-split", {"lw-a", "lw-b"})

    records = []  # (start, end, status, body); list.append is atomic
    stop = threading.Event()

    def traffic():
        with new_session() as s:
            deadline = time.monotonic() + 60  # bounded even if stop is never set
            while not stop.is_set() and time.monotonic() < deadline:
                start = time.monotonic()
                try:
                    r = s.post(c.url("lw-split"), json={}, timeout=15)
                    records.append((start, time.monotonic(), r.status_code, r.text))
                except requests.RequestException as e:
                    records.append((start, time.monotonic(), None, repr(e)))

    senders = [threading.Thread(target=traffic, daemon=True) for _ in range(3)]
    for t in senders:
        t.start()
    try:
        time.sleep(2)
        t_30_70_end = time.monotonic()
        out, t_80_20 = deploy_weights(80, 20)
        assert "updated lw-split (TrafficSplitter)" in out, out
        time.sleep(3)
        t_80_20_end = time.monotonic()
        out, t_0_100 = deploy_weights(0, 100)
        assert "updated lw-split (TrafficSplitter)" in out, out
        time.sleep(3)
    finally:
        stop.set()
        for t in senders:
            t.join(timeout=20)
    assert not any(t.is_alive() for t in senders)

    failures = [r for r in records if r[2] != 200 or r[3] not in ("lw-a", "lw-b")]
    assert records, "no request was sent"
    assert not failures, (f"{len(failures)} of {len(records)} requests failed while the weights "
                          f"changed; first ones: {failures[:5]}")

    def share_a(lo, hi):
        bodies = [body for start, _, _, body in records if lo <= start < hi]
        return (sum(b == "lw-a" for b in bodies) / len(bodies) if bodies else None), len(bodies)

    share, n = share_a(0, t_30_70_end)
    assert n >= 100, f"only {n} requests at 30/70"
    assert 0.15 <= share <= 0.45, f"lw-a got {share:.1%} of {n} requests at 30/70"
    share, n = share_a(t_80_20 + 1, t_80_20_end)
    assert n >= 100, f"only {n} requests at 80/20"
    assert 0.65 <= share <= 0.95, f"lw-a got {share:.1%} of {n} requests at 80/20"
    late = [r for r in records if r[0] >= t_0_100 + 1]
    assert len(late) >= 50, f"only {len(late)} requests after the switch to 0/100"
    to_a = [r for r in late if r[3] == "lw-a"]
    assert not to_a, (f"{len(to_a)} of {len(late)} requests started >= 1 s after the deploy of "
                      f"0/100 went to the 0-weight target lw-a")

    # The same weights again: nothing to do.
    out, _ = deploy_weights(0, 100)
    assert "lw-split (TrafficSplitter) is up to date" in out, out


# ---------------------------------------------------------------------------------------------
# Delete protection and `cortex get`
# ---------------------------------------------------------------------------------------------

def table_row(text, first_cell):
    """The cells of the first table line of `text` whose first cell is first_cell (or None)."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first_cell:
            return cells
    return None


def test_get_delete_protection_and_deleting_the_splitter(module_cluster):
    c = module_cluster
    out = c.deploy_ok({"cortex.yaml": named_api("dg-a") + named_api("dg-b")
                       + splitter_yaml("dg-split", [("dg-a", 40), ("dg-b", 60)])
                       + splitter_yaml("dg-only-a", [("dg-a", 100)]),
                       "predictor.py": NAME_PREDICTOR})
    assert "created dg-split (TrafficSplitter)" in out and \
        "created dg-only-a (TrafficSplitter)" in out, out
    a_info = c.wait_live("dg-a")
    b_info = c.wait_live("dg-b")
    wait_splitter_routed(c, "dg-split", {"dg-a", "dg-b"})
    before = {n: c.network_stats(n)["total"] for n in ("dg-a", "dg-b")}
    bodies = [c.post("dg-split", {}).text for _ in range(20)]
    assert set(bodies) <= {"dg-a", "dg-b"}, bodies

    # Metrics belong to the targets: every request through the splitter counts in one of them.
    after = {n: c.network_stats(n)["total"] for n in ("dg-a", "dg-b")}
    assert sum(after.values()) - sum(before.values()) == 20, (before, after)
    assert after["dg-a"] - before["dg-a"] == bodies.count("dg-a"), (before, after, bodies)

    # cortex get (list), pretty: a splitter table after the realtime one.
    out = c.cli_ok("get")
    lines = out.splitlines()
    header = [i for i, line in enumerate(lines) if line.split()[:1] == ["env"]
              and "traffic splitter" in line]
    assert header, out
    assert lines[header[0]].split() == ["env", "traffic", "splitter", "apis", "last", "update"], out
    realtime_header = [i for i, line in enumerate(lines) if "realtime api" in line]
    assert realtime_header and realtime_header[0] < header[0], out
    splitter_lines = [line.split() for line in lines[header[0] + 1:]]
    row = next((cells for cells in splitter_lines if cells[1:2] == ["dg-split"]), None)
    assert row is not None, out
    assert row[:4] == ["local", "dg-split", "dg-a:40", "dg-b:60"], out
    assert table_row(out, "local") is not None
    # -e drops the env column.
    out = c.cli_ok("get", "-e", "local")
    assert table_row(out, "dg-split")[:3] == ["dg-split", "dg-a:40", "dg-b:60"], out

    # cortex get (list), json.
    listed = {a["spec"]["name"]: a for a in c.list_apis()}
    split = listed["dg-split"]
    assert split["spec"]["kind"] == "TrafficSplitter"
    assert split["spec"]["apis"] == [{"name": "dg-a", "weight": 40},
                                     {"name": "dg-b", "weight": 60}], split["spec"]
    assert split["endpoint"] == f"{c.gateway_url}/dg-split", split
    assert split["spec"]["networking"]["endpoint"] == "/dg-split"

    # cortex get SPLITTER, pretty.
    out = c.cli_ok("get", "dg-split")
    assert out.splitlines()[0].split()[:9] == ["apis", "weights", "status", "requested", "last",
                                               "update", "avg", "request", "2XX"], out
    row_a, row_b = table_row(out, "dg-a"), table_row(out, "dg-b")
    assert row_a is not None and row_b is not None, out
    assert row_a[1:4] == ["40", "live", "1"] and row_b[1:4] == ["60", "live", "1"], out
    assert "last updated: " in out, out
    assert f"endpoint: {c.gateway_url}/dg-split" in out, out
    assert f"example curl: curl {c.gateway_url}/dg-split -X POST" in out, out

    # cortex get SPLITTER -o json.
    info = c.get_api("dg-split")
    assert info["spec"]["name"] == "dg-split" and info["spec"]["kind"] == "TrafficSplitter"
    assert info["spec"]["apis"] == split["spec"]["apis"]
    assert info["endpoint"] == f"{c.gateway_url}/dg-split"

    # A target of a splitter cannot be deleted; every splitter that uses it is named.
    rc, out, err = c.cli("delete", "dg-a", "-f")
    assert rc != 0, out
    assert "cannot delete api because it is used by the following TrafficSplitter(s): " in err, err
    assert "dg-split" in err and "dg-only-a" in err, err
    rc, out, err = c.cli("delete", "dg-b", "-f")
    assert rc != 0, out
    assert ("cannot delete api because it is used by the following TrafficSplitter(s): dg-split"
            in err), err
    assert "dg-only-a" not in err, err
    assert c.post("dg-a", {}).text == "dg-a"
    assert c.post("dg-only-a", {}).text == "dg-a"

    # Deleting the splitters leaves the targets running.
    assert "deleting dg-split" in c.cli_ok("delete", "dg-split", "-f")
    assert "deleting dg-only-a" in c.cli_ok("delete", "dg-only-a", "-f")
    c.wait_until(lambda: c.post("dg-split", {}).status_code == 404, 10,
                 message="the deleted splitter's endpoint to answer 404")
    c.wait_until(lambda: c.post("dg-only-a", {}).status_code == 404, 10,
                 message="the other deleted splitter's endpoint to answer 404")
    names = deployed_names(c)
    assert "dg-split" not in names and {"dg-a", "dg-b"} <= set(names), names
    for name, info in (("dg-a", a_info), ("dg-b", b_info)):
        now = c.get_api(name)
        assert now["status"]["status_code"] == "status_live", now["status"]
        assert [r["pid"] for r in now["replicas"]] == [r["pid"] for r in info["replicas"]]
        assert all(pid_alive(r["pid"]) for r in now["replicas"])
        assert c.post(name, {}).text == name
    rc, out, err = c.cli("get", "dg-split")
    assert rc != 0 and "dg-split is not deployed" in err, (out, err)

    # No longer protected.
    assert "deleting dg-a" in c.cli_ok("delete", "dg-a", "-f")
    assert "deleting dg-b" in c.cli_ok("delete", "dg-b", "-f")


def test_splitter_with_a_custom_endpoint_and_on_the_load_balancer_only(module_cluster):
    c = module_cluster
    out = c.deploy_ok({"cortex.yaml": named_api("ce-a") + named_api("ce-b")
                       + splitter_yaml("ce-split", [("ce-a", 50), ("ce-b", 50)],
                                       networking={"endpoint": "custom/split/"})
                       + splitter_yaml("ce-private", [("ce-b", 100)],
                                       networking={"api_gateway": "none"}),
                       "predictor.py": NAME_PREDICTOR})
    assert "created ce-split (TrafficSplitter)" in out, out
    c.wait_live("ce-a")
    c.wait_live("ce-b")
    lb_url = c.state()["lb_url"]

    info = c.get_api("ce-split")
    assert info["spec"]["networking"]["endpoint"] == "/custom/split", info["spec"]
    assert info["endpoint"] == f"{c.gateway_url}/custom/split", info
    wait_splitter_routed(c, "custom/split", {"ce-a", "ce-b"})
    assert {c.post("custom/split", {}).text for _ in range(30)} == {"ce-a", "ce-b"}
    assert c.post("ce-split", {}).status_code == 404

    # api_gateway: none: served by the load balancer listener only.
    info = c.get_api("ce-private")
    assert info["spec"]["networking"]["api_gateway"] == "none", info["spec"]
    assert info["endpoint"] == f"{lb_url}/ce-private", info
    c.wait_until(lambda: c.http.post(f"{lb_url}/ce-private", json={}, timeout=10).text == "ce-b",
                 10, interval=0.05, message="the load balancer to route ce-private")
    r = c.post("ce-private", {})
    assert r.status_code == 404, (r.status_code, r.text)
    r = c.http.post(f"{lb_url}/custom/split", json={}, timeout=10)
    assert r.status_code == 200 and r.text in ("ce-a", "ce-b"), r.text
    for name in ("ce-split", "ce-private", "ce-a", "ce-b"):
        c.cli_ok("delete", name, "-f")
