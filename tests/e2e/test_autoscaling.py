"""Autoscaling, rolling updates, `cortex refresh` and `cortex patch` on a real local cluster.

The clusters here run the autoscaler with a 1 s tick (`cortex cluster up --autoscaler-tick-ms
1000`) so that the policy of spec §7 acts within seconds. Load comes from a few client threads
that post to the gateway for a bounded time; every wait is bounded and all traffic is loopback.
"""

import json
import os
import re
import threading
import time

import pytest
import requests

from conftest import api_yaml, pid_alive

TICK_ARGS = ("--autoscaler-tick-ms", 1000)

# A predictor whose behaviour comes from predictor.config, so that a config change is a predictor
# change (new replicas) and `cortex patch` can change the responses without new project files.
SLEEPY_PREDICTOR = """
import os
import time

CODE_VERSION = "{code_version}"


class PythonPredictor:
    def __init__(self, config):
        self.delay = float(config.get("delay", 0.2))
        self.version = config.get("version", 1)
        self.greeting = config.get("greeting", "hello")
        time.sleep(float(config.get("init_delay", 0)))

    def predict(self, payload):
        time.sleep(self.delay)
        return {{"version": self.version, "greeting": self.greeting, "code": CODE_VERSION,
                 "pid": os.getpid()}}
"""


def sleepy_project(name, config, autoscaling="", update_strategy="", code_version="v1",
                   processes=1, threads=1):
    """{path: text} of a one-API project running SLEEPY_PREDICTOR. autoscaling and
    update_strategy are "key: value" lines (their indentation does not matter)."""
    predictor_extra = f"processes_per_replica: {processes}\nthreads_per_process: {threads}\n"
    predictor_extra += "config:\n" + "".join(f"  {k}: {v}\n" for k, v in config.items())
    extra = ""
    if autoscaling:
        extra += "autoscaling:\n" + "".join(f"  {line.strip()}\n" for line in
                                            autoscaling.strip().splitlines())
    if update_strategy:
        extra += "update_strategy:\n" + "".join(f"  {line.strip()}\n" for line in
                                                update_strategy.strip().splitlines())
    return {
        "cortex.yaml": api_yaml(name, predictor_extra=predictor_extra, extra=extra),
        "predictor.py": SLEEPY_PREDICTOR.format(code_version=code_version),
    }


@pytest.fixture
def fast_cluster(cluster_factory):
    """A cluster whose autoscaler decides every second."""
    return cluster_factory(up_args=TICK_ARGS)


class Load:
    """`clients` threads POSTing to an endpoint back to back until stop() (or max_seconds)."""

    def __init__(self, cluster, endpoint, clients, pause=0.0, max_seconds=90, timeout=30):
        self.url = cluster.url(endpoint)
        self.clients = clients
        self.pause = pause
        self.timeout = timeout
        self.deadline = time.monotonic() + max_seconds
        self.results = []  # (monotonic time, status or None, body or error)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _run(self):
        with requests.Session() as s:
            s.trust_env = False
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                try:
                    r = s.post(self.url, json={}, timeout=self.timeout)
                    item = (time.monotonic(), r.status_code, r.text)
                except requests.RequestException as e:
                    item = (time.monotonic(), None, repr(e))
                with self._lock:
                    self.results.append(item)
                if self.pause:
                    time.sleep(self.pause)

    def __enter__(self):
        for _ in range(self.clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, check=True):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)
        if check:
            assert not any(t.is_alive() for t in self._threads), "a load thread did not stop"

    def __exit__(self, exc_type, *exc):
        self.stop(check=exc_type is None)  # never hide the error that ended the block

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def failures(self):
        return [(code, body) for _, code, body in self.snapshot() if code != 200]


def counts(info):
    """(requested, updated ready, replicas not stopping) of a `cortex get API -o json` entry."""
    rc = info["status"]["replica_counts"]
    active = [r for r in info["replicas"] if r["state"] != "stopping"]
    return rc["requested"], rc["updated"]["ready"], len(active)


def replica_ids(info, states=("ready",)):
    return {(r["id"], r["pid"]) for r in info["replicas"] if r["state"] in states}


def body_field(body, key):
    try:
        return json.loads(body).get(key)
    except (ValueError, AttributeError):
        return None


def operator_log(cluster):
    with open(os.path.join(cluster.cluster_dir, "logs", "operator.log"), errors="replace") as f:
        return f.read()


# ---- the autoscaler ---------------------------------------------------------------------------

def test_load_above_target_scales_out_then_idle_scales_in_to_min(fast_cluster):
    c = fast_cluster
    name = "scaler"
    c.deploy_ok(sleepy_project(name, {"delay": 0.2}, autoscaling="""
        min_replicas: 1
        max_replicas: 4
        target_replica_concurrency: 1
        window: 10s
        upscale_stabilization_period: 0s
        downscale_stabilization_period: 0s
    """))
    info = c.wait_live(name)
    assert counts(info) == (1, 1, 1), info["replicas"]

    observed = []  # (requested, updated ready, active replicas) while the load runs

    # 6 clients on 1 replica with 1 slot: ~6 requests in flight against a target of 1 per
    # replica, so the autoscaler wants 6 and max_replicas caps it at 4.
    with Load(c, name, clients=6, max_seconds=60) as load:
        def scaled_out():
            observed.append(counts(c.get_api(name)))
            return observed[-1][:2] == (4, 4)
        c.wait_until(scaled_out, 30, interval=0.5,
                     message="the api to scale out to max_replicas (4) under load")
        # A few more ticks at full load: max_replicas holds.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            observed.append(counts(c.get_api(name)))
            time.sleep(0.5)
        load.stop()
        failures = load.failures()
        sent = len(load.snapshot())

    assert sent > 0
    assert not failures, \
        f"{len(failures)} of {sent} requests failed while scaling out: {failures[:5]}"
    assert max(req for req, _, _ in observed) == 4, observed
    assert max(active for _, _, active in observed) <= 4, observed
    assert all(req <= 4 for req, _, _ in observed), f"more than max_replicas requested: {observed}"

    log = c.api_log(name)
    assert f"{name} autoscaling event: 1 -> 2" in log, log
    # max_upscale_factor 1.5 with "adding one is always allowed": 1 -> 2 -> 3 -> 4.
    ups = re.findall(rf"{name} autoscaling event: (\d+) -> (\d+)", log)
    assert ("3", "4") in ups, ups
    assert f"{name} autoscaler tick: avg_in_flight=" in operator_log(c)

    # No load: back to min_replicas (downscale_stabilization_period 0s; the window average falls
    # as idle seconds replace busy ones, and max_downscale_factor lets it drop one per tick).
    stopped_at = time.monotonic()

    def scaled_in():
        info = c.get_api(name)
        return info if (counts(info) == (1, 1, 1) and len(info["replicas"]) == 1) else None
    info = c.wait_until(scaled_in, 40, interval=0.5,
                        message="the idle api to scale back in to min_replicas (1)")
    took = time.monotonic() - stopped_at
    log = c.api_log(name)
    assert re.search(rf"{name} autoscaling event: \d+ -> 1\b", log), log
    assert info["status"]["status_code"] == "status_live"
    r = c.post(name, {})
    assert r.status_code == 200, r.text
    print(f"scaled in to 1 replica {took:.1f}s after the load stopped")


def test_init_replicas_honoured_on_first_deploy(fast_cluster):
    c = fast_cluster
    name = "init3"
    # Default stabilization periods (5m down, 1m up): the idle autoscaler must not move it.
    c.deploy_ok(sleepy_project(name, {"delay": 0.01}, autoscaling="""
        min_replicas: 1
        init_replicas: 3
        max_replicas: 5
        window: 10s
    """))
    info = c.get_api(name)
    assert info["status"]["replica_counts"]["requested"] == 3, info["status"]

    def three_ready():
        info = c.get_api(name)
        return info if counts(info) == (3, 3, 3) else None
    info = c.wait_until(three_ready, 30, interval=0.2, message="3 ready replicas")
    first = replica_ids(info)
    assert len(first) == 3

    # Let the autoscaler tick on idle samples for a few seconds: it recommends fewer replicas
    # but the downscale stabilization period keeps the request at 3.
    c.wait_until(lambda: re.search(rf"{name} autoscaler tick: avg_in_flight=[0-9.]+, request=3",
                                   operator_log(c)), 15, interval=0.5,
                 message="an autoscaler tick with data for the api")
    time.sleep(2)
    info = c.get_api(name)
    assert counts(info) == (3, 3, 3), info["replicas"]
    assert replica_ids(info) == first
    assert "autoscaling event" not in c.api_log(name)
    assert c.post(name, {}).status_code == 200


def test_autoscaling_only_redeploy_keeps_replicas_predictor_change_replaces_them(fast_cluster):
    c = fast_cluster
    name = "keeper"
    autoscaling = "min_replicas: 1\ninit_replicas: 2\nmax_replicas: {max}\n"
    project = c.project("keeper", sleepy_project(name, {"delay": 0.01, "version": 1},
                                                 autoscaling=autoscaling.format(max=4)))
    c.deploy_ok(project)

    def two_ready():
        info = c.get_api(name)
        return info if counts(info) == (2, 2, 2) else None
    info = c.wait_until(two_ready, 30, interval=0.2, message="2 ready replicas")
    before = replica_ids(info)
    api_id = info["status"]["api_id"]
    log_before = c.api_log(name)

    # Only autoscaling changes: a new api version, the same replica processes.
    files = sleepy_project(name, {"delay": 0.01, "version": 1},
                           autoscaling=autoscaling.format(max=5))
    with open(os.path.join(project, "cortex.yaml"), "w") as f:
        f.write(files["cortex.yaml"])
    out = c.deploy_ok(project)
    ticks = len(re.findall(rf"{name} autoscaler tick: avg_in_flight", operator_log(c)))
    assert f"updating {name} (RealtimeAPI)" in out, out
    info = c.get_api(name)
    assert info["status"]["api_id"] != api_id
    assert info["spec"]["autoscaling"]["max_replicas"] == 5, info["spec"]["autoscaling"]
    c.wait_reconcile_passes(5)
    c.wait_until(lambda: len(re.findall(rf"{name} autoscaler tick: avg_in_flight", operator_log(c)))
                 >= ticks + 2, 15, interval=0.2, message="two more autoscaler ticks")
    info = c.get_api(name)
    assert counts(info) == (2, 2, 2), info["replicas"]
    assert replica_ids(info) == before, (before, info["replicas"])
    assert all(r["updated"] and r["restarts"] == 0 for r in info["replicas"]), info["replicas"]
    assert all(pid_alive(pid) for _, pid in before)
    new_lines = c.api_log(name)[len(log_before):]
    assert "starting replica" not in new_lines and "stopping replica" not in new_lines, new_lines
    r = c.post(name, {})
    assert r.status_code == 200 and r.json()["version"] == 1, r.text

    # A predictor change (its config): new replicas replace the old ones.
    files = sleepy_project(name, {"delay": 0.01, "version": 2},
                           autoscaling=autoscaling.format(max=5))
    with open(os.path.join(project, "cortex.yaml"), "w") as f:
        f.write(files["cortex.yaml"])
    out = c.deploy_ok(project)
    assert f"updating {name} (RealtimeAPI)" in out, out
    old_ids = {rid for rid, _ in before}

    def replaced():
        info = c.get_api(name)
        if counts(info) != (2, 2, 2) or len(info["replicas"]) != 2:
            return None
        return info if not ({r["id"] for r in info["replicas"]} & old_ids) else None
    info = c.wait_until(replaced, 30, interval=0.2, message="new replicas to replace the old ones")
    assert all(r["updated"] for r in info["replicas"])
    assert c.post(name, {}).json()["version"] == 2
    for _, pid in before:
        c.wait_until(lambda: not pid_alive(pid), 15, message=f"old replica pid {pid} to exit")


# ---- rolling updates, refresh, patch ------------------------------------------------------------

def test_rolling_update_under_load_respects_max_surge_and_max_unavailable(fast_cluster):
    c = fast_cluster
    name = "roller"
    strategy = "max_surge: 1\nmax_unavailable: 0"
    autoscaling = "min_replicas: 3\nmax_replicas: 3"
    project = c.project("roller", sleepy_project(name, {"delay": 0.05, "version": 1},
                                                 autoscaling=autoscaling,
                                                 update_strategy=strategy))
    c.deploy_ok(project)
    c.wait_until(lambda: counts(c.get_api(name)) == (3, 3, 3), 30, interval=0.2,
                 message="3 ready replicas")
    c.wait_live(name)
    old_ids = {r["id"] for r in c.get_api(name)["replicas"]}

    observations = []  # (active = not stopping, ready of any version, summary)
    stop_polling = threading.Event()

    def poll():
        while not stop_polling.is_set():
            rc, out, _ = c.cli("get", name, "-o", "json", timeout=15)
            if rc == 0:
                info = json.loads(out)[0]
                active = [r for r in info["replicas"] if r["state"] != "stopping"]
                ready = [r for r in info["replicas"] if r["state"] == "ready"]
                observations.append((len(active), len(ready),
                                     [(r["id"][-5:], r["state"], r["updated"])
                                      for r in info["replicas"]]))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    with Load(c, name, clients=3, max_seconds=60) as load:
        poller.start()
        try:
            time.sleep(0.5)
            # The new version takes ~0.5 s to construct: the rollout spans a few seconds.
            files = sleepy_project(name, {"delay": 0.05, "version": 2, "init_delay": 0.5},
                                   autoscaling=autoscaling, update_strategy=strategy)
            with open(os.path.join(project, "cortex.yaml"), "w") as f:
                f.write(files["cortex.yaml"])
            out = c.deploy_ok(project)
            assert f"updating {name} (RealtimeAPI)" in out, out

            def rolled():
                info = c.get_api(name)
                reps = info["replicas"]
                return (len(reps) == 3 and all(r["updated"] and r["state"] == "ready"
                                               for r in reps)
                        and not ({r["id"] for r in reps} & old_ids))
            c.wait_until(rolled, 45, interval=0.2, message="the rolling update to finish")
            time.sleep(0.5)
        finally:
            stop_polling.set()
            poller.join(timeout=20)
            load.stop(check=False)  # checked when the with block ends
    results = load.snapshot()
    failures = load.failures()

    assert results, "no request was sent"
    assert not failures, (f"{len(failures)} of {len(results)} requests failed during the rolling "
                          f"update: {failures[:5]}")
    versions = [body_field(body, "version") for _, _, body in results]
    assert set(versions) == {1, 2}, set(versions)
    assert versions[-1] == 2
    assert len(observations) >= 5, observations
    too_many = [o for o in observations if o[0] > 4]
    assert not too_many, f"more than desired + max_surge (4) replicas at once: {too_many[:3]}"
    too_few = [o for o in observations if o[1] < 3]
    assert not too_few, f"fewer than desired - max_unavailable (3) ready replicas: {too_few[:3]}"
    # The rollout went one replica at a time: some observation saw both versions serving.
    assert any({u for _, s, u in o[2] if s == "ready"} == {True, False} for o in observations), \
        observations


def test_refresh_replaces_every_replica_without_failed_requests(fast_cluster):
    c = fast_cluster
    name = "fresh"
    # 1 s constructor: the refreshed replicas take a while, so the api is "updating" meanwhile.
    c.deploy_ok(sleepy_project(name, {"delay": 0.02, "init_delay": 1},
                               autoscaling="min_replicas: 2\nmax_replicas: 2"))
    c.wait_until(lambda: counts(c.get_api(name)) == (2, 2, 2), 30, interval=0.2,
                 message="2 ready replicas")
    c.wait_live(name)
    info = c.get_api(name)
    old_ids = {r["id"] for r in info["replicas"]}
    old_pids = [r["pid"] for r in info["replicas"]]
    deployment_id = info["spec"]["deployment_id"]
    predictor_id = info["spec"]["predictor_id"]

    with Load(c, name, clients=1, pause=0.02, max_seconds=60) as load:
        time.sleep(0.3)
        rc, out, err = c.cli("refresh", name)
        assert rc == 0, err
        assert out.strip() == f"updating {name}", out

        # While the refreshed replicas start, the api is updating: refused without --force.
        rc, out, err = c.cli("refresh", name)
        assert rc == 1, (out, err)
        assert f"error: {name} is updating (override with --force)" in err, err
        rc, out, err = c.cli("refresh", name, "-f")
        assert rc == 0, err
        assert out.strip() == f"updating {name}", out

        def refreshed():
            info = c.get_api(name)
            reps = info["replicas"]
            return info if (len(reps) == 2 and all(r["state"] == "ready" and r["updated"]
                                                   for r in reps)
                            and not ({r["id"] for r in reps} & old_ids)) else None
        info = c.wait_until(refreshed, 45, interval=0.2, message="the refresh to finish")
        time.sleep(0.3)
        load.stop()
    failures = load.failures()
    sent = len(load.snapshot())
    assert sent > 0
    assert not failures, \
        f"{len(failures)} of {sent} requests failed during the refresh: {failures[:5]}"
    assert info["spec"]["deployment_id"] != deployment_id
    assert info["spec"]["predictor_id"] == predictor_id
    assert info["status"]["status_code"] == "status_live"
    assert f"updating {name} (refresh)" in c.api_log(name)
    for pid in old_pids:
        c.wait_until(lambda: not pid_alive(pid), 15, message=f"old replica pid {pid} to exit")

    rc, out, err = c.cli("refresh", "nope")
    assert rc == 1, (out, err)
    assert "error: nope is not deployed" in err, err
    rc, out, err = c.cli("refresh", "nope", "-o", "json")
    assert rc == 1 and "nope is not deployed" in err, (out, err)


def test_patch_applies_a_changed_config_against_the_uploaded_project(cluster):
    c = cluster
    name = "patchy"
    project = c.project("patchy", sleepy_project(name, {"delay": 0.01, "greeting": "hello"},
                                                 code_version="v1"))
    c.deploy_ok(project)
    c.wait_live(name)
    body = c.post(name, {}).json()
    assert (body["greeting"], body["code"]) == ("hello", "v1"), body

    # Change the config *and* a project file locally: patch sends only the YAML, so the
    # predictor keeps the uploaded code.
    files = sleepy_project(name, {"delay": 0.01, "greeting": "bonjour"}, code_version="v2")
    for rel, text in files.items():
        with open(os.path.join(project, rel), "w") as f:
            f.write(text)
    rc, out, err = c.cli("patch", project)
    assert rc == 0, err
    assert f"updating {name} (RealtimeAPI)" in out, out

    def patched():
        r = c.post(name, {})
        return r.json() if r.status_code == 200 and r.json()["greeting"] == "bonjour" else None
    body = c.wait_until(patched, 30, interval=0.2, message="the patched config to answer")
    assert body["code"] == "v1", f"patch must use the uploaded project, not local files: {body}"
    c.wait_live(name)

    # The same YAML again: nothing to do.
    rc, out, err = c.cli("patch", os.path.join(project, "cortex.yaml"))
    assert rc == 0, err
    assert f"{name} (RealtimeAPI) is up to date" in out, out

    # An api that is not deployed cannot be patched; nothing is created.
    other = c.project("other", sleepy_project("ghost", {"delay": 0.01}))
    rc, out, err = c.cli("patch", other)
    assert rc == 1, (out, err)
    assert "ghost is not deployed" in err and "cortex deploy" in err, err
    rc, _, err = c.cli("get", "ghost")
    assert rc == 1 and "ghost is not deployed" in err, err
    assert [a["spec"]["name"] for a in c.list_apis()] == [name]
