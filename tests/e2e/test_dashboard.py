"""The dashboard (docs/dashboard.md) in headless Chromium, driven by playwright-core
(tests/e2e/dashboard_browser.cjs), against a real local cluster with traffic: the numbers it shows
are checked against the gateway's and the operator's /metrics and the batch REST API.

CORTEX_DASHBOARD_SCREENSHOTS=DIR keeps the screenshots there (docs/images holds the README's)."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import LOOPBACK, REPO_ROOT, api_yaml
from test_metrics import scrape, value

CLUSTER_UP_ARGS = ("--autoscaler-tick-ms", 1000)
NODE_MODULES = os.environ.get("CORTEX_DASHBOARD_NODE_MODULES",
                              os.path.join(REPO_ROOT, "build", "_deps", "dashboard", "node_modules"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_browser.cjs")

REALTIME = """
from starlette.exceptions import HTTPException

class PythonPredictor:
    def __init__(self, config):
        print("dashboard predictor ready", flush=True)

    def predict(self, payload):
        if payload.get("bad"):
            raise HTTPException(status_code=400, detail="bad input")
        if payload.get("boom"):
            raise RuntimeError("boom")
        return {"ok": True}
"""

BATCH = """
class PythonPredictor:
    def __init__(self, config, job_spec):
        pass

    def predict(self, payload, batch_id):
        if 13 in payload:
            raise ValueError(f"refusing item 13 of batch {batch_id}")
        print(f"dashboard batch {batch_id}: {len(payload)} items", flush=True)

    def on_job_complete(self):
        pass
"""


@pytest.fixture(scope="module")
def browser_tools():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/install-deps.sh installs Debian's chromium")
    if not os.path.isdir(os.path.join(NODE_MODULES, "playwright-core")):
        pytest.fail(f"playwright-core is missing in {NODE_MODULES}: run scripts/install-deps.sh")


class Browser:
    """One Chromium, one page, driven through dashboard_browser.cjs."""

    def __init__(self, shots_dir):
        env = dict(os.environ, NODE_PATH=NODE_MODULES, CHROMIUM=CHROMIUM)
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(var, None)
        self.stderr = open(os.path.join(shots_dir, "browser.stderr"), "w+")
        self.proc = subprocess.Popen(["node", DRIVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     env=env)
        self.shots_dir = shots_dir
        self.expected_errors = set()

    def do(self, op, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.stderr.seek(0)
            raise AssertionError(f"the browser driver exited: {self.stderr.read()[-4000:]}")
        answer = json.loads(line)
        assert answer.pop("ok"), f"{op} {args}: {answer['error']}"
        return answer

    def read(self):
        shown = self.do("read")
        # No refused script, style or request (but the refusals a test asks for).
        errors = [e for e in shown["errors"] if e not in self.expected_errors]
        assert errors == [], errors
        return shown

    def wait_shown(self, cluster, predicate, timeout, message):
        """The page's reading once predicate(reading) holds (the page redraws every 2 s)."""
        last = {}

        def check():
            last["shown"] = self.read()
            return last["shown"] if predicate(last["shown"]) else None
        try:
            return cluster.wait_until(check, timeout, interval=0.5, message=message)
        except BaseException:
            print("last reading:", json.dumps(last.get("shown"), indent=1)[:6000])
            raise

    def screenshot(self, name):
        path = os.path.join(self.shots_dir, name)
        self.do("screenshot", path=path)
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
        if os.environ.get("CORTEX_DASHBOARD_SCREENSHOTS"):
            shutil.copy(path, os.path.join(os.environ["CORTEX_DASHBOARD_SCREENSHOTS"], name))

    def close(self):
        """Closes the browser; it must go within 15 s (the driver kills it after 10)."""
        try:
            self.proc.stdin.write('{"op": "close"}\n')
            self.proc.stdin.flush()
            rc = self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.stderr.seek(0)
            err = self.stderr.read()
            self.stderr.close()
        assert rc == 0, f"the browser driver exited {rc}: {err[-4000:]}"


@pytest.fixture
def browser(browser_tools, tmp_path):
    b = Browser(str(tmp_path))
    yield b
    b.close()


def dashboard_link(cluster, api=None):
    """The link `cortex dashboard` prints, opened on one API's view."""
    out = cluster.cli_json("dashboard")
    assert out["reachable"] is True, out
    base, token = out["url"].split("#token=")
    assert base == f"http://{LOOPBACK}:{cluster.operator_port}/dashboard/" and token == cluster.token()
    return f"{base}?api={api}#token={token}" if api else out["url"]


def row_of(shown, api):
    rows = [r for r in shown["apis"] if r["api"] == api]
    return rows[0] if rows else None


def test_the_dashboards_files_are_open_and_its_data_is_not(module_cluster):
    c = module_cluster
    base = f"http://{LOOPBACK}:{c.operator_port}"
    page = c.http.get(base + "/dashboard/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"], page.headers
    assert page.headers["Referrer-Policy"] == "no-referrer", page.headers
    script = c.http.get(base + "/dashboard/app.js", timeout=5)
    assert script.status_code == 200 and "Chart.js v4" in script.text
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    again = c.http.get(base + "/dashboard/app.js", headers={"If-None-Match": script.headers["ETag"]},
                       timeout=5)
    assert again.status_code == 304 and again.content == b"", again.status_code
    missing = c.http.get(base + "/dashboard/nope.js", timeout=5)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"] == "the dashboard has no file /dashboard/nope.js"
    # What the page reads needs the token.
    for path in ("/v1/apis", "/v1/apis/x/history", "/v1/logs/x"):
        assert c.http.get(base + path, timeout=5).status_code == 401, path


def test_realtime_api_numbers_match_the_metrics(module_cluster, browser):
    c = module_cluster
    name = "dash-realtime"
    c.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": REALTIME})
    c.wait_live(name)
    headers = {"Authorization": f"Bearer {c.token()}"}
    history_url = f"http://{LOOPBACK}:{c.operator_port}/v1/apis/{name}/history"
    # The gateway counts an API from its first request, and the first snapshot holds it: one
    # request, then an interval, then the traffic the charts must show.
    assert c.post(name, {}).status_code == 200
    c.wait_until(lambda: c.http.get(history_url, headers=headers, timeout=5).json()["requests"],
                 15, interval=0.5, message="a first interval")
    for i in range(30):
        assert c.post(name, {"i": i}).status_code == 200
    for _ in range(3):
        assert c.post(name, {"bad": True}).status_code == 400
    for _ in range(2):
        assert c.post(name, {"boom": True}).status_code == 500

    def gateway():
        samples = scrape(c, c.gateway_url + "/metrics")[1]
        counts = [int(value(samples, "cortex_requests_total", api=name, code=k) or 0)
                  for k in ("2XX", "4XX", "5XX")]
        total = value(samples, "cortex_request_duration_seconds_count", api=name)
        mean_ms = value(samples, "cortex_request_duration_seconds_sum", api=name) / total * 1000
        return counts, mean_ms

    (ok, client_errors, server_errors), mean_ms = gateway()
    assert (ok, client_errors, server_errors) == (31, 3, 2)
    browser.do("goto", url=dashboard_link(c, name))

    def settled(shown):
        row = row_of(shown, name)
        charts = (shown["detail"] or {}).get("charts") or {}
        return (row is not None and row["code_2xx"] == "31" and row["code_5xx"] == "2" and
                charts.get("rate", {}).get("requests") == f"{ok - 1},{client_errors},{server_errors}"
                and shown["detail"]["decisions"])
    shown = browser.wait_shown(c, settled, 20, "the page to show the gateway's counts")
    row = row_of(shown, name)
    assert (row["kind"], row["status"], row["selected"]) == ("RealtimeAPI", "live", True), row
    assert (row["code_2xx"], row["code_4xx"], row["code_5xx"]) == ("31", "3", "2"), row
    # Shown to 3 decimals; /metrics prints the sum with 6 significant digits (%g).
    assert abs(float(row["mean_latency"]) - mean_ms) <= 0.0005 + mean_ms * 1e-5, (row, mean_ms)
    operator = scrape(c, f"http://{LOOPBACK}:{c.operator_port}/metrics", c.token())[1]
    ready = int(value(operator, "cortex_api_ready_replicas", api=name))
    requested = int(value(operator, "cortex_api_requested_replicas", api=name))
    assert row["replicas"] == f"{ready} / {requested}" == "1 / 1", row
    # Rate and latency charts drew points from the history; the scale chart its in-flight samples.
    charts = shown["detail"]["charts"]
    assert all(int(n) > 0 for n in charts["rate"]["points"].split(",")), charts
    assert int(charts["latency"]["points"].split(",")[0]) > 0, charts
    assert int(charts["scale"]["points"].split(",")[0]) > 0, charts
    assert all(ch["width"] > 100 and ch["height"] > 100 for ch in charts.values()), charts
    decision = shown["detail"]["decisions"][0]
    assert decision["replicas"] == "1" and decision["recommendation"] == "1", decision
    assert shown["detail"]["title"] == f"{name} (RealtimeAPI)"
    assert "dashboard predictor ready" in shown["detail"]["logs"], shown["detail"]["logs"][-2000:]
    assert shown["banner"] == "" and shown["cluster"].startswith("cluster "), shown
    assert "#token" not in shown["url"], shown["url"]  # taken out of the address bar
    browser.screenshot("dashboard-realtime.png")

    # New log lines are followed without reloading the page.
    before = shown["detail"]["logs"]
    c.cli_ok("refresh", name)
    shown = browser.wait_shown(
        c, lambda s: s["detail"]["logs"].count("dashboard predictor ready") >
        before.count("dashboard predictor ready"), 30, "the refreshed replica's log line")
    assert shown["detail"]["logs"].startswith(before[:200]), "the log was not followed"


def test_batch_jobs_show_progress_and_dead_letters(module_cluster, browser):
    c = module_cluster
    name = "dash-batch"
    c.deploy_ok({"cortex.yaml": f"- name: {name}\n  kind: BatchAPI\n  predictor:\n"
                                f"    type: python\n    path: predictor.py\n",
                 "predictor.py": BATCH})
    submission = {"workers": 1, "item_list": {"items": list(range(20)), "batch_size": 4}}
    # The gateway learns the new route from the operator's long poll: retry until it has it.
    r = c.wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
        c.http.post(c.url(name), json=submission, timeout=30)), 15, interval=0.2,
        message="the job's submission")
    job_id = r.json()["job_id"]

    def ended():
        s = c.http.get(c.url(name), params={"jobID": job_id}, timeout=10).json()["job_status"]
        return s if s["end_time"] else None
    status = c.wait_until(ended, 90, interval=0.5, message="the job to end")
    assert status["batch_metrics"]["succeeded"] == 4 and status["batch_metrics"]["failed"] == 1

    browser.do("goto", url=dashboard_link(c, name))
    shown = browser.wait_shown(
        c, lambda s: s["detail"] and s["detail"]["jobs"] and s["detail"]["dead_letters"],
        20, "the job and its dead letters")
    row = row_of(shown, name)
    assert row["kind"] == "BatchAPI" and row["replicas"] == "—", row
    (job,) = shown["detail"]["jobs"]
    assert job["job"] == job_id and job["selected"], job
    assert job["status"] == status["status"] == "status_completed_with_failures", job
    assert (job["succeeded"], job["failed"], job["in_queue"]) == ("4", "1", "0"), job
    assert job["progress"].strip() == "5 / 5", job
    assert (job["start_time"], job["end_time"]) == (status["start_time"], status["end_time"]), job
    (dead,) = shown["detail"]["dead_letters"]
    expected = status["dead_letters"][0]
    assert dead["batch_index"] == str(expected["batch_index"]) == "3", dead
    assert dead["attempts"] == str(expected["attempts"]), dead
    assert "refusing item 13" in dead["error"] and dead["error"] == expected["error"], dead
    assert shown["detail"]["dead_letters_title"] == f"Dead letters of job {job_id} (1)"
    assert shown["detail"]["charts"] is None and shown["detail"]["decisions"] is None
    # The logs panel follows the selected job's log.
    shown = browser.wait_shown(c, lambda s: "dashboard batch" in s["detail"]["logs"], 15,
                               "the job's log")
    assert shown["detail"]["logs_title"] == f"Recent logs of job {job_id}"
    browser.screenshot("dashboard-batch.png")


def test_a_missing_or_wrong_token_asks_for_one(module_cluster, browser):
    c = module_cluster
    base = f"http://{LOOPBACK}:{c.operator_port}/dashboard/"
    browser.do("goto", url=base)
    shown = browser.read()
    assert shown["login"] and shown["apis"] == [], shown
    browser.expected_errors.add(
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)")
    browser.do("fill", selector="#token", value="not-the-token")
    browser.do("press", selector="#token", key="Enter")
    shown = browser.wait_shown(c, lambda s: s["login"] and "refused the token" in s["banner"], 10,
                               "the refusal")
    browser.do("fill", selector="#token", value=c.token())
    browser.do("press", selector="#token", key="Enter")
    shown = browser.wait_shown(c, lambda s: not s["login"] and s["updates"] > 0 and s["apis"], 10,
                               "the API list")
    assert shown["banner"] == "", shown
