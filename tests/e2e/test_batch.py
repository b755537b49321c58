"""BatchAPI jobs end to end: submission forms and dry runs, validation messages, the job config,
retries and dead letters, on_job_complete once per job, stop, timeout, worker and operator
crashes in the middle of a job, and the CLI views (`get`, `get API JOB`, `logs API JOB`).

The predictor records what it does into files below predictor.config["out_dir"]/<job id>: one
file per batch id and attempt (`batch-<id>.<n>`, written aside and hard-linked into place, so
that no two attempts share one and none is seen half-written), one per constructed predictor
(`init.<n>`) and one per on_job_complete call (`complete.<n>`). The job config steers it
(sleep_s, fail_items, crash_items, ...), which also exercises the deep merge of the job config
over the API's.
"""

import datetime
import glob
import json
import os
import signal
import time

import pytest

from conftest import api_yaml, pid_alive, pids_mentioning

# The module's cluster lets jobs read its test data, and nothing else (not its own directory).
CLUSTER_YAML = """
allowed_local_paths: ["{root}/data", "{root}/bad-lines"]
"""

TERMINAL = {"status_succeeded", "status_completed_with_failures", "status_stopped",
            "status_timed_out", "status_worker_error", "status_worker_oom",
            "status_unexpected_error", "status_enqueue_failed"}

PREDICTOR = r'''
import json
import os
import time


def write_unique(directory, prefix, record):
    """Writes record to directory/prefix.<n> for the first free n. The file appears complete
    (written aside, then hard-linked, which fails if the name exists) or not at all."""
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{time.monotonic_ns()}")
    with open(tmp, "w") as f:
        json.dump(record, f)
    try:
        for n in range(1000):
            path = os.path.join(directory, f"{prefix}.{n}")
            try:
                os.link(tmp, path)
            except FileExistsError:
                continue
            return path
        raise RuntimeError("too many attempts of " + prefix)
    finally:
        os.unlink(tmp)


class PythonPredictor:
    def __init__(self, config, job_spec):
        self.config = config
        self.out = os.path.join(config["out_dir"], job_spec["job_id"])
        os.makedirs(self.out, exist_ok=True)
        write_unique(self.out, "init", {"config": config, "job_spec": job_spec,
                                        "pid": os.getpid()})
        time.sleep(float(config.get("init_sleep_s", 0)))
        if config.get("init_error"):
            raise RuntimeError(config["init_error"])
        print(f"predictor ready in {os.getpid()}", flush=True)

    def predict(self, payload, batch_id):
        write_unique(self.out, f"batch-{batch_id}",
                     {"payload": payload, "pid": os.getpid(), "t": time.time()})
        print(f"processing batch {batch_id} of {len(payload)} items", flush=True)
        time.sleep(float(self.config.get("sleep_s", 0)))
        for x in payload:
            time.sleep(float((self.config.get("sleep_items") or {}).get(str(x), 0)))
        if any(x in (self.config.get("crash_items") or []) for x in payload):
            os._exit(3)  # the worker process dies in the middle of a batch
        bad = [x for x in payload if x in (self.config.get("fail_items") or [])]
        if bad:
            raise ValueError(f"refusing items {bad}")

    def on_job_complete(self):
        batches = len(glob_batches(self.out))
        write_unique(self.out, "complete", {"pid": os.getpid(), "batch_files": batches,
                                            "t": time.time()})
        time.sleep(float(self.config.get("complete_sleep_s", 0)))
        if self.config.get("complete_error"):
            raise RuntimeError(self.config["complete_error"])
        print("on_job_complete ran", flush=True)


def glob_batches(directory):
    return [n for n in os.listdir(directory) if n.startswith("batch-")]
'''

API_CONFIG = {"nested": {"a": 1, "b": 2}, "top": "api", "sleep_s": 0}


def batch_yaml(name, out_dir, config=None):
    cfg = dict(API_CONFIG, out_dir=out_dir, **(config or {}))
    text = (f"- name: {name}\n"
            f"  kind: BatchAPI\n"
            f"  predictor:\n"
            f"    type: python\n"
            f"    path: predictor.py\n"
            f"    config: {json.dumps(cfg)}\n")
    return text


# ---- helpers --------------------------------------------------------------------------------

class BatchApi:
    """One deployed BatchAPI and its output dir."""

    def __init__(self, cluster, name, out_dir):
        self.c, self.name, self.out_dir = cluster, name, out_dir

    @property
    def url(self):
        return self.c.url(self.name)

    def submit(self, body, dry_run=False, raw=None, **kwargs):
        params = {"dryRun": "true"} if dry_run else None
        if raw is not None:
            return self.c.http.post(self.url, data=raw, params=params, timeout=60,
                                    headers={"Content-Type": "application/json"})
        return self.c.http.post(self.url, json=body, params=params, timeout=60, **kwargs)

    def submit_ok(self, body):
        r = self.submit(body)
        assert r.status_code == 200, f"submission failed: {r.status_code} {r.text}"
        spec = r.json()
        assert spec["job_id"] and spec["api_name"] == self.name, spec
        return spec

    def job(self, job_id):
        r = self.c.http.get(self.url, params={"jobID": job_id}, timeout=30)
        assert r.status_code == 200, f"GET ?jobID={job_id}: {r.status_code} {r.text}"
        return r.json()

    def status(self, job_id):
        return self.job(job_id)["job_status"]

    def jobs(self):
        """Every job of the API: the listing is for the cluster's owner (the operator token)."""
        r = self.c.http.get(self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.c.token()}"})
        assert r.status_code == 200, r.text
        return r.json()

    def wait_terminal(self, job_id, timeout=60):
        def done():
            s = self.status(job_id)
            return s if s["status"] in TERMINAL else None
        return self.c.wait_until(done, timeout, interval=0.1,
                                 message=f"job {job_id} to reach a terminal status")

    def wait_progress(self, job_id, succeeded, timeout=30):
        def progressed():
            s = self.status(job_id)
            assert s["status"] not in TERMINAL, f"job ended early: {s}"
            return s if s["batch_metrics"]["succeeded"] >= succeeded else None
        return self.c.wait_until(progressed, timeout, interval=0.05,
                                 message=f"job {job_id} to finish {succeeded} batches")

    # What the predictor wrote.
    def job_dir(self, job_id):
        return os.path.join(self.out_dir, job_id)

    def records(self, job_id, prefix):
        out = []
        for path in sorted(glob.glob(os.path.join(self.job_dir(job_id), prefix + ".*"))):
            with open(path) as f:
                out.append((os.path.basename(path), json.load(f)))
        return out

    def batch_attempts(self, job_id):
        """{batch id: [payload of each attempt]}."""
        attempts = {}
        for name, rec in self.records(job_id, "batch-*"):
            batch_id = name[len("batch-"):].rsplit(".", 1)[0]
            attempts.setdefault(batch_id, []).append(rec["payload"])
        return attempts

    def processed_items(self, job_id):
        items = []
        for payloads in self.batch_attempts(job_id).values():
            for p in payloads:
                items.extend(p)
        return items

    def completions(self, job_id):
        return self.records(job_id, "complete")

    def inits(self, job_id):
        return self.records(job_id, "init")

    def log(self, job_id):
        rc, out, err = self.c.cli("logs", self.name, job_id, "--no-follow")
        assert rc == 0, f"cortex logs {self.name} {job_id} --no-follow exited {rc}: {err}"
        return out


def error_text(r):
    """The message of an error response ({"error": ...}), or its text. An operator error also
    has v0.24's shape, {"kind", "message"}, with the same message."""
    try:
        body = r.json()
        if "kind" in body:  # the gateway's own errors have only "error"
            assert body["message"] == body["error"] and body["kind"].startswith("err_"), body
        return body["error"]
    except (ValueError, KeyError, TypeError):
        return r.text


def rfc3339(text):
    """Unix seconds of an RFC 3339 time (v0.24's time.Time in JSON)."""
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def worker_pids(job_id):
    """Live batch worker processes of a job (their command line names the module and the job)."""
    return [p for p in pids_mentioning("cortex_runtime.batch")
            if pid_alive(p) and job_id.encode() in _cmdline(p)]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def wait_workers_gone(c, job_id, timeout=15):
    c.wait_until(lambda: not worker_pids(job_id), timeout, interval=0.1,
                 message=f"the workers of job {job_id} to exit")


def deploy_batch_api(c, name, config=None):
    out_dir = os.path.join(c.root, "out", name)
    os.makedirs(out_dir, exist_ok=True)
    c.deploy_ok({"cortex.yaml": batch_yaml(name, out_dir, config), "predictor.py": PREDICTOR})
    api = BatchApi(c, name, out_dir)
    # The gateway learns the route a moment after the operator: wait for it.
    c.wait_until(lambda: c.http.get(api.url, timeout=5).status_code == 401, 15, interval=0.05,
                 message=f"the gateway to route /{name}")
    return api


def assert_all_processed_counts(api, job_id, items, total_batches):
    """Every item processed at least once, and the succeeded count is every batch."""
    processed = api.processed_items(job_id)
    missing = [x for x in items if x not in processed]
    assert not missing, f"items never processed: {missing[:20]} ({len(missing)} in all)"
    status = api.status(job_id)
    assert status["total_batch_count"] == total_batches, status
    assert status["batch_metrics"]["succeeded"] == total_batches, status
    assert status["batch_metrics"]["failed"] == 0, status
    assert len(api.batch_attempts(job_id)) == total_batches, sorted(api.batch_attempts(job_id))
    return status


def assert_all_processed(api, job_id, items, total_batches):
    """assert_all_processed_counts, and the job succeeded with no dead letters."""
    status = assert_all_processed_counts(api, job_id, items, total_batches)
    assert status["status"] == "status_succeeded", status
    assert status["dead_letters"] == [], status
    return status


@pytest.fixture(scope="module")
def bapi(_module_cluster):
    """A BatchAPI `bt` on the module's cluster."""
    return deploy_batch_api(_module_cluster, "bt")


# ---- submission forms -----------------------------------------------------------------------

def test_item_list_job_config_merge_and_on_job_complete_once(module_cluster, bapi):
    items = list(range(53))
    job_config = {"nested": {"b": 3, "c": {"d": 4}}, "extra": [1, 2]}
    spec = bapi.submit_ok({"workers": 3, "config": job_config,
                           "item_list": {"items": items, "batch_size": 5}})
    job_id = spec["job_id"]
    # The response is the job spec (spec §11).
    for key in ("job_id", "api_name", "workers", "config", "api_id", "spec_id", "predictor_id",
                "sqs_url", "total_batch_count", "start_time"):
        assert key in spec, (key, spec)
    assert spec["workers"] == 3 and spec["config"] == job_config, spec
    assert spec["total_batch_count"] == 11, spec
    assert abs(rfc3339(spec["start_time"]) - time.time()) < 60, spec  # a time.Time, as v0.24

    status = bapi.wait_terminal(job_id)
    assert_all_processed(bapi, job_id, items, 11)
    assert status["worker_counts"] is None and status["batches_in_queue"] == 0, status
    assert rfc3339(status["end_time"]) >= rfc3339(status["start_time"]), status
    assert status["batch_metrics"]["average_time_per_batch"] >= 0, status

    # Each batch was processed exactly once (nothing failed), in batches of batch_size.
    attempts = bapi.batch_attempts(job_id)
    assert all(len(a) == 1 for a in attempts.values()), attempts
    sizes = sorted(len(a[0]) for a in attempts.values())
    assert sizes == [3] + [5] * 10, sizes
    assert sorted(bapi.processed_items(job_id)) == items

    # Every predictor got the merged config and the job spec in __init__.
    inits = bapi.inits(job_id)
    assert 1 <= len(inits) <= 3, inits
    merged = dict(API_CONFIG, out_dir=bapi.out_dir, nested={"a": 1, "b": 3, "c": {"d": 4}},
                  extra=[1, 2])
    for _, rec in inits:
        assert rec["config"] == merged, rec["config"]
        js = rec["job_spec"]
        assert js["job_id"] == job_id and js["api_name"] == "bt" and js["workers"] == 3, js
        assert js["config"] == job_config and js["total_batch_count"] == 11, js

    # on_job_complete: exactly once, after every batch.
    completions = bapi.completions(job_id)
    assert len(completions) == 1, completions
    assert completions[0][1]["batch_files"] == 11, completions
    wait_workers_gone(module_cluster, job_id)
    module_cluster.wait_reconcile_passes(3)  # nothing runs it a second time later
    assert len(bapi.completions(job_id)) == 1

    # Both GET forms: ?jobID= and <endpoint>/<job_id>.
    by_query = bapi.job(job_id)
    r = module_cluster.http.get(f"{bapi.url}/{job_id}", timeout=30)
    assert r.status_code == 200, r.text
    by_path = r.json()
    assert by_query["job_status"]["status"] == by_path["job_status"]["status"] == "status_succeeded"
    assert by_query["endpoint"] == f"{bapi.url}/{job_id}", by_query["endpoint"]
    assert by_query["api_spec"]["kind"] == "BatchAPI" and by_query["api_spec"]["name"] == "bt"
    assert job_id in [j["job_id"] for j in bapi.jobs()]

    # Stopping a finished job is refused.
    r = module_cluster.http.delete(bapi.url, params={"jobID": job_id}, timeout=30)
    assert r.status_code == 400 and "cannot stop batch job because it is not in progress" in r.text


def test_unknown_job_is_404(module_cluster, bapi):
    r = module_cluster.http.get(bapi.url, params={"jobID": "0123456789abcdef"}, timeout=30)
    assert r.status_code == 404, r.text
    assert "0123456789abcdef" in r.text


@pytest.fixture(scope="module")
def data_dir(_module_cluster):
    """Local input files: a tree of mixed files and two JSON-lines files."""
    root = os.path.join(_module_cluster.root, "data")
    files = {
        "a.json": "{}", "b.json": "{}", "c.txt": "x", "skip-me.json": "{}",
        "sub/d.json": "{}", "sub/e.txt": "x",
    }
    for rel, text in files.items():
        path = os.path.join(root, "tree", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    lines = os.path.join(root, "lines")
    os.makedirs(lines, exist_ok=True)
    with open(os.path.join(lines, "part-1.jsonl"), "w") as f:
        for i in range(7):
            f.write(json.dumps({"id": i, "text": f"row {i}"}) + "\n")
        f.write("\n")  # blank lines are skipped
    with open(os.path.join(lines, "part-2.jsonl"), "w") as f:
        for i in range(7, 12):
            f.write(json.dumps({"id": i, "text": f"row {i}"}) + "\n")
    with open(os.path.join(lines, "notes.txt"), "w") as f:
        f.write("not json\n")
    return root


def test_dry_runs_list_what_would_be_processed(module_cluster, bapi, data_dir):
    before = len(bapi.jobs())
    tree = os.path.join(data_dir, "tree")

    r = bapi.submit({"workers": 1, "item_list": {"items": [1, 2, 3], "batch_size": 2}},
                    dry_run=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    assert r.text == "validations passed\n", repr(r.text)

    # file_path_lister, absolute path: every file below the dir, sorted, then the verdict.
    r = bapi.submit({"workers": 1, "file_path_lister": {"s3_paths": [tree], "batch_size": 2}},
                    dry_run=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    expected = [f"{tree}/{n}" for n in ("a.json", "b.json", "c.txt", "skip-me.json",
                                        "sub/d.json", "sub/e.txt")]
    assert r.text.splitlines() == expected + ["validations passed"], r.text

    # file:// urls are listed as file:// urls; includes and excludes filter.
    r = bapi.submit({"workers": 1, "file_path_lister": {
        "s3_paths": [f"file://{tree}"], "includes": ["**.json"], "excludes": ["**/skip-*"],
        "batch_size": 2}}, dry_run=True)
    assert r.status_code == 200, r.text
    assert r.text.splitlines() == [f"file://{tree}/a.json", f"file://{tree}/b.json",
                                   f"file://{tree}/sub/d.json", "validations passed"], r.text

    # delimited_files: the files, not their lines.
    lines = os.path.join(data_dir, "lines")
    r = bapi.submit({"workers": 1, "delimited_files": {
        "s3_paths": [f"file://{lines}/"], "includes": ["**.jsonl"], "batch_size": 4}},
        dry_run=True)
    assert r.status_code == 200, r.text
    assert r.text.splitlines() == [f"file://{lines}/part-1.jsonl", f"file://{lines}/part-2.jsonl",
                                   "validations passed"], r.text

    # Dry runs submit nothing.
    assert len(bapi.jobs()) == before


def test_glob_separator_is_slash(module_cluster, bapi, data_dir):
    """Spec §11: globs use `/` as the separator: `*` stays within one path segment, `**` crosses
    segments."""
    tree = os.path.join(data_dir, "tree")
    r = bapi.submit({"workers": 1, "file_path_lister": {
        "s3_paths": [tree], "includes": [f"{tree}/*.json"], "batch_size": 2}}, dry_run=True)
    assert r.status_code == 200, r.text
    assert r.text.splitlines() == [f"{tree}/a.json", f"{tree}/b.json", f"{tree}/skip-me.json",
                                   "validations passed"], (
        f"`{tree}/*.json` must not match files in subdirectories:\n{r.text}")


def test_file_path_lister_job(module_cluster, bapi, data_dir):
    tree = os.path.join(data_dir, "tree")
    spec = bapi.submit_ok({"workers": 2, "file_path_lister": {
        "s3_paths": [f"file://{tree}", f"{tree}/c.txt"], "includes": ["**.json", "**.txt"],
        "excludes": ["**/skip-*", "**/e.txt"], "batch_size": 2}})
    job_id = spec["job_id"]
    expected = [f"file://{tree}/a.json", f"file://{tree}/b.json", f"file://{tree}/c.txt",
                f"file://{tree}/sub/d.json", f"{tree}/c.txt"]
    assert spec["total_batch_count"] == 3, spec
    bapi.wait_terminal(job_id)
    assert_all_processed(bapi, job_id, expected, 3)
    assert sorted(bapi.processed_items(job_id)) == sorted(expected)


def test_delimited_files_job(module_cluster, bapi, data_dir):
    lines = os.path.join(data_dir, "lines")
    spec = bapi.submit_ok({"workers": 2, "delimited_files": {
        "s3_paths": [os.path.join(lines, "part-1.jsonl"), f"file://{lines}/part-2.jsonl"],
        "batch_size": 5}})
    job_id = spec["job_id"]
    # 12 JSON objects in batches of 5, across the two files.
    assert spec["total_batch_count"] == 3, spec
    bapi.wait_terminal(job_id)
    rows = [{"id": i, "text": f"row {i}"} for i in range(12)]
    assert_all_processed(bapi, job_id, rows, 3)
    processed = bapi.processed_items(job_id)
    assert sorted(processed, key=lambda r: r["id"]) == rows
    sizes = sorted(len(p[0]) for p in bapi.batch_attempts(job_id).values())
    assert sizes == [2, 5, 5], sizes


# ---- validation -----------------------------------------------------------------------------

BIG = "x" * (256 * 1024)

VALIDATION_CASES = [
    ("no-source", {"workers": 1},
     "please specify exactly one of the following fields: item_list, file_path_lister, "
     "delimited_files"),
    ("two-sources", {"workers": 1, "item_list": {"items": [1], "batch_size": 1},
                     "delimited_files": {"s3_paths": ["/tmp"], "batch_size": 1}},
     "please specify exactly one of the following fields"),
    ("workers-0", {"workers": 0, "item_list": {"items": [1], "batch_size": 1}},
     "workers: must be an integer >= 1"),
    ("workers-missing", {"item_list": {"items": [1], "batch_size": 1}},
     "workers: must be specified"),
    ("items-empty", {"workers": 1, "item_list": {"items": [], "batch_size": 1}},
     "item_list: items: must be a list with at least one item"),
    ("batch-size-0", {"workers": 1, "item_list": {"items": [1], "batch_size": 0}},
     "item_list: batch_size: must be an integer >= 1"),
    ("item-too-big", {"workers": 1, "item_list": {"items": ["ok", BIG], "batch_size": 1}},
     f"item 1 has size {len(BIG) + 2} bytes which exceeds the limit (262144 bytes)"),
    ("batch-too-big", {"workers": 1, "item_list": {"items": ["y" * 100_000] * 3,
                                                   "batch_size": 3}},
     "cannot enqueue message because its size (300010 bytes) exceeds the 262144 bytes limit"),
    ("unknown-key", {"workers": 1, "item_list": {"items": [1], "batch_size": 1}, "colour": 1},
     'key "colour" is not supported'),
    ("relative-path", {"workers": 1, "file_path_lister": {"s3_paths": ["data/x.json"],
                                                          "batch_size": 1}},
     "data/x.json: must be an absolute local path or a file:// url"),
    ("config-not-a-map", {"workers": 1, "config": [1], "item_list": {"items": [1],
                                                                    "batch_size": 1}},
     "config: must be a map"),
    ("no-paths", {"workers": 1, "delimited_files": {"s3_paths": [], "batch_size": 1}},
     "delimited_files: s3_paths: must be a list with at least one path"),
    ("relative-file-url", {"workers": 1, "file_path_lister": {"s3_paths": ["file://data"],
                                                              "batch_size": 1}},
     "file://data: must be an absolute local path or a file:// url"),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["submit", "dry-run"])
@pytest.mark.parametrize("case,body,message", VALIDATION_CASES,
                         ids=[c[0] for c in VALIDATION_CASES])
def test_validation_messages(module_cluster, bapi, case, body, message, dry_run):
    before = len(bapi.jobs())
    r = bapi.submit(body, dry_run=dry_run)
    assert r.status_code == 400, f"{case}: {r.status_code} {r.text}"
    assert message in error_text(r), f"{case}: expected {message!r} in {r.text!r}"
    assert len(bapi.jobs()) == before, f"{case}: a job was created"


def test_validation_no_files_match(module_cluster, bapi, data_dir):
    tree = os.path.join(data_dir, "tree")
    for form in ("file_path_lister", "delimited_files"):
        for dry_run in (False, True):
            r = bapi.submit({"workers": 1, form: {"s3_paths": [tree], "includes": ["**.csv"],
                                                  "batch_size": 1}}, dry_run=dry_run)
            assert r.status_code == 400, r.text
            assert "no s3 files match search criteria" in r.text, r.text
            r = bapi.submit({"workers": 1, form: {"s3_paths": [tree], "excludes": ["**"],
                                                  "batch_size": 1}}, dry_run=dry_run)
            assert r.status_code == 400 and "no s3 files match search criteria" in r.text, r.text


def test_local_paths_are_confined_to_the_allowed_directories(module_cluster, bapi, data_dir):
    """Jobs read local files as the platform's user: only below allowed_local_paths, after
    symbolic links are followed. The dry run lists nothing outside them either."""
    before = len(bapi.jobs())
    secret_dir = os.path.join(module_cluster.root, "secret")
    os.makedirs(secret_dir, exist_ok=True)
    with open(os.path.join(secret_dir, "creds.jsonl"), "w") as f:
        f.write('{"DB_PASSWORD": "hunter2"}\n')
    link = os.path.join(data_dir, "lines", "escape.jsonl")
    if not os.path.lexists(link):
        os.symlink(os.path.join(secret_dir, "creds.jsonl"), link)
    try:
        for path in ("/root", "/etc/passwd", module_cluster.cluster_dir, secret_dir,
                     f"file://{data_dir}/../secret", link):
            for form in ("file_path_lister", "delimited_files"):
                for dry_run in (False, True):
                    r = bapi.submit({"workers": 1, form: {"s3_paths": [path], "batch_size": 1}},
                                    dry_run=dry_run)
                    assert r.status_code == 403, f"{path} {form}: {r.status_code} {r.text}"
                    assert "is outside the directories this cluster lets jobs read" in r.text, \
                        r.text
                    assert "hunter2" not in r.text and "state.db" not in r.text, r.text
        # A link met while walking an allowed directory is left out, not followed.
        r = bapi.submit({"workers": 1, "delimited_files": {
            "s3_paths": [os.path.join(data_dir, "lines")], "includes": ["**.jsonl"],
            "batch_size": 1}}, dry_run=True)
        assert r.status_code == 200, r.text
        assert "part-1.jsonl" in r.text, r.text
        assert "escape.jsonl" not in r.text, r.text
        # Inside, a missing path is still "not found".
        r = bapi.submit({"workers": 1, "file_path_lister": {
            "s3_paths": [os.path.join(data_dir, "nonexistent")], "batch_size": 1}})
        assert r.status_code == 400 and "nonexistent: not found" in r.text, r.text
    finally:
        os.unlink(link)
    assert len(bapi.jobs()) == before


def test_a_cluster_without_allowed_local_paths_reads_none(cluster):
    """The default: no local path at all (the issue: `/root` listed by any caller)."""
    api = deploy_batch_api(cluster, "nolocal")
    for body in ({"workers": 1, "file_path_lister": {"s3_paths": ["/root"], "batch_size": 1}},
                 {"workers": 1, "delimited_files": {"s3_paths": [cluster.cluster_dir],
                                                    "batch_size": 1}}):
        r = api.submit(body, dry_run=True)
        assert r.status_code == 403, r.text
        assert "this cluster reads no local paths" in r.text, r.text


def test_validation_delimited_file_contents(module_cluster, bapi):
    d = os.path.join(module_cluster.root, "bad-lines")
    os.makedirs(d, exist_ok=True)
    files = {"bad.jsonl": '{"id": 1}\n{"id": 2\n', "big.jsonl": json.dumps({"x": BIG}) + "\n",
             "empty.jsonl": "\n\n"}
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    before = len(bapi.jobs())
    cases = [("bad.jsonl", "bad.jsonl: item 1 is not valid JSON"),
             ("big.jsonl", f"big.jsonl: item 0 has size {len(BIG) + 8} bytes which exceeds the "
                           "limit (262144 bytes)"),
             ("empty.jsonl", "unable to enqueue batches because no data was found")]
    for name, message in cases:
        r = bapi.submit({"workers": 1, "delimited_files": {
            "s3_paths": [os.path.join(d, name)], "batch_size": 1}})
        assert r.status_code == 400 and message in error_text(r), (name, r.text)
    assert len(bapi.jobs()) == before


def test_validation_unknown_nested_key(module_cluster, bapi, data_dir):
    """A misspelt key inside a source ("include" for "includes") must not be ignored: the job
    would silently process every file."""
    tree = os.path.join(data_dir, "tree")
    r = bapi.submit({"workers": 1, "file_path_lister": {
        "s3_paths": [tree], "include": ["**.json"], "batch_size": 1}}, dry_run=True)
    assert r.status_code == 400, f"the unknown key was accepted: {r.status_code} {r.text}"
    assert '"include"' in error_text(r), r.text


def test_validation_bad_json_and_body_limit(module_cluster, bapi):
    before = len(bapi.jobs())
    r = bapi.submit(None, raw=b'{"workers": 1, "item_list": ')
    assert r.status_code == 400 and "the job submission is not valid JSON" in r.text, r.text
    r = bapi.submit(None, raw=b"[1, 2]")
    assert r.status_code == 400 and "must be a JSON object" in r.text, r.text

    # Over 10 MiB in all (each item is small): refused as a whole, from its length (413).
    items = ["z" * 1000] * 10_600
    body = json.dumps({"workers": 1, "item_list": {"items": items, "batch_size": 1}}).encode()
    assert len(body) > 10 << 20
    r = bapi.submit(None, raw=body)
    assert r.status_code == 413, r.text[:300]
    assert "request body is larger than the limit (10 MiB)" in r.text, r.text[:300]
    assert len(bapi.jobs()) == before

    # Just under 10 MiB is accepted (dry run: nothing runs).
    items = ["z" * 1000] * 10_000
    body = json.dumps({"workers": 1, "item_list": {"items": items, "batch_size": 200}}).encode()
    assert len(body) < 10 << 20
    r = bapi.submit(None, raw=body, dry_run=True)
    assert r.status_code == 200 and r.text == "validations passed\n", r.text[:300]


def test_job_endpoints_refused_for_realtime_api(module_cluster):
    c = module_cluster
    c.deploy_ok({"cortex.yaml": api_yaml("rt-not-batch"),
                 "predictor.py": "class PythonPredictor:\n"
                                 "    def __init__(self, config):\n        pass\n"
                                 "    def predict(self, payload):\n        return 'ok'\n"})
    c.wait_live("rt-not-batch")
    message = ("this operation is only allowed for BatchAPI kind and is not supported for "
               "rt-not-batch of kind RealtimeAPI")
    # The gateway sends the endpoint to the replica; the operator's job endpoints refuse it.
    op = f"http://127.0.0.1:{c.operator_port}/v1/batch/rt-not-batch"
    r = c.http.post(op, json={"workers": 1, "item_list": {"items": [1], "batch_size": 1}},
                    timeout=30)
    assert r.status_code == 400 and message in r.text, r.text
    r = c.http.get(op, params={"jobID": "abc"}, timeout=30)
    assert r.status_code == 400 and message in r.text, r.text
    rc, out, err = c.cli("get", "rt-not-batch", "0123456789abcdef")
    assert rc != 0 and message in out + err, (rc, out, err)
    rc, out, err = c.cli("delete", "rt-not-batch", "0123456789abcdef")
    assert rc != 0 and message in out + err, (rc, out, err)
    c.cli_ok("delete", "rt-not-batch")


# ---- retries and dead letters ---------------------------------------------------------------

def test_retries_then_dead_letter(module_cluster, bapi):
    items = list(range(20))
    spec = bapi.submit_ok({"workers": 2, "config": {"fail_items": [7, 13]},
                           "item_list": {"items": items, "batch_size": 4}})
    job_id = spec["job_id"]
    status = bapi.wait_terminal(job_id)
    assert status["status"] == "status_completed_with_failures", status
    # Batches [4..7] (index 1) and [12..15] (index 3) fail every time: 3 attempts, then dead.
    assert status["batch_metrics"]["succeeded"] == 3 and status["batch_metrics"]["failed"] == 2
    dead = status["dead_letters"]
    assert [d["batch_index"] for d in dead] == [1, 3], dead
    assert all(d["attempts"] == 3 for d in dead), dead
    assert "refusing items [7]" in dead[0]["error"], dead
    assert "refusing items [13]" in dead[1]["error"], dead

    attempts = bapi.batch_attempts(job_id)
    by_items = {tuple(p[0]): len(p) for p in attempts.values()}
    assert by_items == {(0, 1, 2, 3): 1, (4, 5, 6, 7): 3, (8, 9, 10, 11): 1,
                        (12, 13, 14, 15): 3, (16, 17, 18, 19): 1}, by_items
    # on_job_complete still runs once, after the dead letters.
    assert len(bapi.completions(job_id)) == 1

    out = module_cluster.cli_ok("get", "bt", job_id)
    assert "completed with failures" in out, out
    assert "dead-lettered batches" in out, out
    assert "refusing items [7]" in out and "refusing items [13]" in out, out
    assert "ValueError" in out, out
    lines = [line.split() for line in out.splitlines()]
    assert ["5", "3", "2"] == next(l[:3] for l in lines if l[:1] == ["5"]), out

    # The worker log has the tracebacks.
    log = bapi.log(job_id)
    assert "batch 1 failed (attempt 3)" in log and "ValueError: refusing items [7]" in log, log

    listing = module_cluster.cli_ok("get", "bt")
    row = next(line for line in listing.splitlines() if line.startswith(job_id))
    assert "completed with failures" in row and "3/5" in row, row


# ---- stop, timeout --------------------------------------------------------------------------

def test_running_job_progress_then_cli_delete_stops_it(module_cluster, bapi):
    c = module_cluster
    spec = bapi.submit_ok({"workers": 1, "config": {"sleep_s": 0.25},
                           "item_list": {"items": list(range(60)), "batch_size": 2}})
    job_id = spec["job_id"]
    bapi.wait_progress(job_id, 3)

    status = bapi.status(job_id)
    assert status["status"] == "status_running", status
    assert status["worker_counts"]["running"] == 1, status
    assert status["batches_in_queue"] >= 1, status

    out = c.cli_ok("get", "bt", job_id)
    assert "status: running" in out, out
    assert "batch stats" in out and "worker stats" in out, out
    bar = next((line for line in out.splitlines() if line.startswith("[")), None)
    assert bar is not None and "#" in bar and "%" in bar, out
    assert "left" in bar, f"no ETA in the progress line: {bar!r}"

    listing = c.cli_ok("get", "bt")
    row = next(line for line in listing.splitlines() if line.startswith(job_id))
    assert "running" in row and "/30" in row, row
    all_apis = c.cli_ok("get")
    row = next(line for line in all_apis.splitlines() if " bt " in f" {line} ")
    assert job_id in row, all_apis

    # `cortex logs API JOB` shows the operator's lines and the worker's output.
    log = bapi.log(job_id)
    assert f"job {job_id} submitted: 30 batches, 1 worker(s)" in log, log
    assert "started worker" in log and "processing batch" in log, log

    pids = worker_pids(job_id)
    assert len(pids) == 1, pids
    out = c.cli_ok("delete", "bt", job_id)
    assert out.strip() == f"stopped job {job_id}", out
    status = bapi.status(job_id)
    assert status["status"] == "status_stopped", status
    assert status["end_time"] is not None, status
    wait_workers_gone(c, job_id)
    done = len(bapi.batch_attempts(job_id))
    c.wait_reconcile_passes(3)
    assert len(bapi.batch_attempts(job_id)) == done, "batches ran after the job was stopped"
    assert bapi.completions(job_id) == []
    assert "stopped" in c.cli_ok("get", "bt", job_id)

    rc, out, err = c.cli("delete", "bt", job_id)
    assert rc != 0 and "cannot stop batch job because it is not in progress" in out + err


@pytest.mark.parametrize("form", ["query", "path"])
def test_delete_endpoint_stops_job(module_cluster, bapi, form):
    c = module_cluster
    spec = bapi.submit_ok({"workers": 2, "config": {"sleep_s": 0.2},
                           "item_list": {"items": list(range(100)), "batch_size": 1}})
    job_id = spec["job_id"]
    bapi.wait_progress(job_id, 1)
    if form == "query":
        r = c.http.delete(bapi.url, params={"jobID": job_id}, timeout=30)
    else:
        r = c.http.delete(f"{bapi.url}/{job_id}", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"stopped job {job_id}"}
    wait_workers_gone(c, job_id)
    status = bapi.status(job_id)
    assert status["status"] == "status_stopped", status
    assert status["batch_metrics"]["succeeded"] < 100, status
    assert bapi.completions(job_id) == []


def test_timeout_ends_job(module_cluster, bapi):
    c = module_cluster
    spec = bapi.submit_ok({"workers": 2, "timeout": 3, "config": {"sleep_s": 1},
                           "item_list": {"items": list(range(40)), "batch_size": 1}})
    job_id = spec["job_id"]
    assert spec["timeout"] == 3, spec
    started = time.monotonic()
    bapi.wait_progress(job_id, 1, timeout=10)
    status = bapi.wait_terminal(job_id, timeout=15)
    elapsed = time.monotonic() - started
    assert status["status"] == "status_timed_out", status
    assert elapsed < 8, f"the 3 s timeout took {elapsed:.1f} s"
    assert rfc3339(status["end_time"]) - rfc3339(status["start_time"]) in range(3, 7), status
    wait_workers_gone(c, job_id, timeout=10)
    assert status["batch_metrics"]["succeeded"] < 40, status
    assert bapi.completions(job_id) == []
    out = c.cli_ok("get", "bt", job_id)
    assert "status: timed out" in out, out
    assert "timed out after 3 s" in bapi.log(job_id)


def test_timeout_validation(module_cluster, bapi):
    for bad in (0, -5, 1.5, "0s"):
        r = bapi.submit({"workers": 1, "timeout": bad,
                         "item_list": {"items": [1], "batch_size": 1}})
        assert r.status_code == 400, (bad, r.text)
        assert error_text(r).startswith("timeout: "), (bad, r.text)
    r = bapi.submit({"workers": 1, "timeout": "2m", "item_list": {"items": [1], "batch_size": 1}})
    assert r.status_code == 200 and r.json()["timeout"] == 120, r.text
    bapi.wait_terminal(r.json()["job_id"])


def test_timeout_bad_duration_names_the_field(module_cluster, bapi):
    r = bapi.submit({"workers": 1, "timeout": "soon",
                     "item_list": {"items": [1], "batch_size": 1}})
    assert r.status_code == 400, r.text
    assert error_text(r).startswith("timeout: "), (
        f"the message should say which field is wrong, as for other bad timeouts: {r.text}")


# ---- crashes --------------------------------------------------------------------------------

def test_worker_sigkill_mid_job_loses_nothing(module_cluster, bapi):
    c = module_cluster
    items = list(range(80))
    spec = bapi.submit_ok({"workers": 2, "config": {"sleep_s": 0.1},
                           "item_list": {"items": items, "batch_size": 2}})
    job_id = spec["job_id"]
    bapi.wait_progress(job_id, 5)
    pids = worker_pids(job_id)
    assert len(pids) == 2, pids
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    c.wait_until(lambda: not pid_alive(victim), 5, message="the worker to die")
    # A replacement starts, and the job goes on.
    c.wait_until(lambda: len([p for p in worker_pids(job_id) if p != victim]) == 2 or
                 bapi.status(job_id)["status"] in TERMINAL, 15, interval=0.05,
                 message="a replacement worker")
    replaced = bapi.status(job_id)["status"] not in TERMINAL
    status = bapi.wait_terminal(job_id, timeout=60)
    assert status["status"] == "status_succeeded", status
    assert_all_processed(bapi, job_id, items, 40)
    assert len(bapi.completions(job_id)) == 1
    c.wait_until(lambda: "was killed by signal 9" in bapi.log(job_id), 10,
                 message="the worker's death in the job log")
    if replaced:  # the surviving worker may finish the last batches before a replacement starts
        assert bapi.log(job_id).count("started worker") >= 3, bapi.log(job_id)


def test_worker_sigkill_during_on_job_complete(module_cluster, bapi):
    """The worker running on_job_complete dies in it: another worker runs it again (it is the
    only copy that can finish), and the job then succeeds with its counts right."""
    c = module_cluster
    items = list(range(6))
    spec = bapi.submit_ok({"workers": 2, "config": {"complete_sleep_s": 30},
                           "item_list": {"items": items, "batch_size": 1}})
    job_id = spec["job_id"]
    first = c.wait_until(lambda: bapi.completions(job_id), 30, interval=0.05,
                         message="on_job_complete to start")
    victim = first[0][1]["pid"]
    assert bapi.status(job_id)["status"] == "status_running"
    os.kill(victim, signal.SIGKILL)
    c.wait_until(lambda: len(bapi.completions(job_id)) >= 2, 20, interval=0.05,
                 message="another worker to run on_job_complete")
    completions = bapi.completions(job_id)
    assert len(completions) == 2 and completions[1][1]["pid"] != victim, completions
    assert completions[1][1]["batch_files"] == 6, completions
    # That worker sleeps in on_job_complete too: the job ends when it returns (30 s); stop it.
    assert bapi.status(job_id)["status"] == "status_running"
    assert_all_processed_counts(bapi, job_id, items, 6)
    r = c.http.delete(bapi.url, params={"jobID": job_id}, timeout=30)
    assert r.status_code == 200, r.text
    wait_workers_gone(c, job_id)


def test_batch_that_kills_its_worker_is_dead_lettered(module_cluster, bapi):
    """A batch whose worker dies every time comes back at once (not after the lease), is tried
    max_attempts times by fresh workers, then dead-lettered; the other batches succeed."""
    c = module_cluster
    items = list(range(12))
    started = time.monotonic()
    spec = bapi.submit_ok({"workers": 2, "config": {"crash_items": [5]},
                           "item_list": {"items": items, "batch_size": 2}})
    job_id = spec["job_id"]
    status = bapi.wait_terminal(job_id, timeout=25)
    assert time.monotonic() - started < 25, "a crashed worker's batch waited for its lease"
    assert status["status"] == "status_completed_with_failures", status
    assert status["batch_metrics"] == {**status["batch_metrics"], "succeeded": 5, "failed": 1}
    dead = status["dead_letters"]
    assert len(dead) == 1 and dead[0]["batch_index"] == 2 and dead[0]["attempts"] == 3, dead
    assert "died" in dead[0]["error"], dead
    attempts = {tuple(p[0]): len(p) for p in bapi.batch_attempts(job_id).values()}
    assert attempts[(4, 5)] == 3, attempts
    assert sorted(k for k in attempts if k != (4, 5)) == [(0, 1), (2, 3), (6, 7), (8, 9),
                                                          (10, 11)], attempts
    assert len(bapi.completions(job_id)) == 1
    wait_workers_gone(c, job_id)


def test_worker_crash_loop_fails_job(module_cluster, bapi):
    c = module_cluster
    spec = bapi.submit_ok({"workers": 1, "config": {"init_error": "cannot load the model"},
                           "item_list": {"items": [1, 2, 3], "batch_size": 1}})
    job_id = spec["job_id"]
    status = bapi.wait_terminal(job_id, timeout=60)
    assert status["status"] == "status_worker_error", status
    assert status["batch_metrics"]["succeeded"] == 0, status
    wait_workers_gone(c, job_id)
    log = bapi.log(job_id)
    assert "RuntimeError: cannot load the model" in log, log
    assert "job failed: its workers failed" in log, log
    assert "status: worker error" in c.cli_ok("get", "bt", job_id)


def test_lease_renewed_during_long_batch_and_expired_for_hung_worker(module_cluster, bapi):
    """A batch that takes longer than the 30 s lease keeps it (the worker renews it every 10 s)
    and runs once; a hung worker (SIGSTOP) loses its lease, and its batch is retried by the
    other worker."""
    c = module_cluster
    items = list(range(10))
    spec = bapi.submit_ok({"workers": 2, "config": {"sleep_items": {"0": 36, "5": 5},
                                                    "sleep_s": 0.1},
                           "item_list": {"items": items, "batch_size": 1}})
    job_id = spec["job_id"]

    def hung_candidate():
        # The worker that leased item 5 (it sleeps 5 s in it).
        for _, payloads in bapi.batch_attempts(job_id).items():
            if payloads[0] == [5]:
                recs = [r for n, r in bapi.records(job_id, "batch-*") if r["payload"] == [5]]
                return recs[0]["pid"]
        return None
    victim = c.wait_until(hung_candidate, 20, interval=0.05, message="item 5 to start")
    os.kill(victim, signal.SIGSTOP)
    try:
        status = bapi.wait_terminal(job_id, timeout=70)
    finally:
        try:
            os.kill(victim, signal.SIGCONT)
        except OSError:
            pass
    assert status["status"] == "status_succeeded", status
    assert_all_processed(bapi, job_id, items, 10)
    attempts = {tuple(p[0]): len(p) for p in bapi.batch_attempts(job_id).values()}
    assert attempts[(0,)] == 1, (
        f"the long batch was retried although its lease was renewed: {attempts}")
    assert attempts[(5,)] == 2, f"the hung worker's batch was not retried once: {attempts}"
    assert len(bapi.completions(job_id)) == 1
    wait_workers_gone(c, job_id, timeout=20)


def test_delete_api_stops_its_jobs(module_cluster):
    c = module_cluster
    api = deploy_batch_api(c, "bdel")
    spec = api.submit_ok({"workers": 2, "config": {"sleep_s": 0.3},
                          "item_list": {"items": list(range(50)), "batch_size": 1}})
    job_id = spec["job_id"]
    api.wait_progress(job_id, 1)
    assert len(worker_pids(job_id)) == 2
    c.cli_ok("delete", "bdel")
    wait_workers_gone(c, job_id)
    rc, out, err = c.cli("get", "bdel", job_id)
    assert rc != 0, out


def test_two_jobs_at_once(module_cluster, bapi):
    a = bapi.submit_ok({"workers": 2, "config": {"sleep_s": 0.02},
                        "item_list": {"items": list(range(40)), "batch_size": 2}})
    b = bapi.submit_ok({"workers": 2, "config": {"sleep_s": 0.02},
                        "item_list": {"items": list(range(100, 130)), "batch_size": 3}})
    assert a["job_id"] != b["job_id"]
    for spec, items, total in ((a, list(range(40)), 20), (b, list(range(100, 130)), 10)):
        bapi.wait_terminal(spec["job_id"])
        assert_all_processed(bapi, spec["job_id"], items, total)
        assert len(bapi.completions(spec["job_id"])) == 1
    # Newest first.
    ids = [j["job_id"] for j in bapi.jobs()]
    assert ids.index(b["job_id"]) < ids.index(a["job_id"]), ids


def test_on_job_complete_error_is_logged_once(module_cluster, bapi):
    """on_job_complete raising does not make another worker run it again (once per job)."""
    c = module_cluster
    spec = bapi.submit_ok({"workers": 2, "config": {"complete_error": "cannot write summary"},
                           "item_list": {"items": list(range(8)), "batch_size": 2}})
    job_id = spec["job_id"]
    status = bapi.wait_terminal(job_id)
    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == 4, status
    wait_workers_gone(c, job_id)
    assert len(bapi.completions(job_id)) == 1, bapi.completions(job_id)
    log = bapi.log(job_id)
    assert "on_job_complete failed" in log and "RuntimeError: cannot write summary" in log, log
    assert log.count("RuntimeError: cannot write summary") == 1, log


def test_operator_sigkill_mid_job_loses_nothing(cluster_factory):
    c = cluster_factory()
    api = deploy_batch_api(c, "bcrash")
    items = list(range(120))
    spec = api.submit_ok({"workers": 3, "config": {"sleep_s": 0.1},
                          "item_list": {"items": items, "batch_size": 2}})
    job_id = spec["job_id"]
    api.wait_progress(job_id, 6)
    operator_pid = c.state()["operator_pid"]
    os.kill(operator_pid, signal.SIGKILL)
    c.wait_until(lambda: not pid_alive(operator_pid), 5, message="the operator to die")
    workers_before = worker_pids(job_id)
    time.sleep(2)  # the workers keep working and retry their calls meanwhile

    rc, out, err = c.up(c.operator_port, c.gateway_port)
    assert rc == 0, f"cortex cluster up: {rc}\n{out}\n{err}"
    assert c.state()["operator_pid"] != operator_pid
    status = api.wait_terminal(job_id, timeout=90)
    assert status["status"] == "status_succeeded", (status, c.all_logs())
    assert_all_processed(api, job_id, items, 60)
    completions = api.completions(job_id)
    assert len(completions) == 1, completions
    assert completions[0][1]["batch_files"] >= 60
    wait_workers_gone(c, job_id, timeout=30)
    # An exiting process shows an empty command line before it turns zombie: wait for the exit.
    c.wait_until(lambda: not [p for p in workers_before if pid_alive(p)], 15, interval=0.1,
                 message="the workers from before the crash to exit")


def test_operator_and_worker_sigkill_mid_job_loses_nothing(cluster_factory):
    """The operator dies, and one worker dies while the operator is down (holding a leased
    batch that it never acks): the restarted operator finds the dead worker, its batch comes
    back, and the job completes with every item processed."""
    c = cluster_factory()
    api = deploy_batch_api(c, "bcrash2")
    items = list(range(60))
    spec = api.submit_ok({"workers": 2, "config": {"sleep_s": 0.3},
                          "item_list": {"items": items, "batch_size": 2}})
    job_id = spec["job_id"]
    api.wait_progress(job_id, 2)
    operator_pid = c.state()["operator_pid"]
    os.kill(operator_pid, signal.SIGKILL)
    c.wait_until(lambda: not pid_alive(operator_pid), 5, message="the operator to die")
    time.sleep(0.5)
    pids = worker_pids(job_id)
    assert len(pids) == 2, pids
    os.kill(pids[0], signal.SIGKILL)
    c.wait_until(lambda: not pid_alive(pids[0]), 5, message="the worker to die")

    rc, out, err = c.up(c.operator_port, c.gateway_port)
    assert rc == 0, f"cortex cluster up: {rc}\n{out}\n{err}"
    status = api.wait_terminal(job_id, timeout=60)
    assert status["status"] == "status_succeeded", status
    assert_all_processed(api, job_id, items, 30)
    assert len(api.completions(job_id)) == 1
    wait_workers_gone(c, job_id, timeout=30)


def test_cluster_down_stops_running_job_workers(cluster_factory):
    c = cluster_factory()
    api = deploy_batch_api(c, "bdown")
    spec = api.submit_ok({"workers": 2, "config": {"sleep_s": 0.5},
                          "item_list": {"items": list(range(100)), "batch_size": 1}})
    job_id = spec["job_id"]
    api.wait_progress(job_id, 1)
    pids = worker_pids(job_id)
    assert len(pids) == 2, pids
    rc, out, err = c.down()
    assert rc == 0, (out, err)
    c.wait_until(lambda: not [p for p in pids if pid_alive(p)], 10, interval=0.1,
                 message="`cortex cluster down` to stop the job's workers")


def test_job_listing_needs_the_token_and_job_status_hides_the_apis_secrets(cluster):
    """Job requests through the API's endpoint need no token (as in Cortex), so what they
    return must not carry the API's secrets; listing every job is for the cluster's owner."""
    c = cluster
    out_dir = os.path.join(c.root, "out", "secretive")
    os.makedirs(out_dir, exist_ok=True)
    yaml_text = batch_yaml("secretive", out_dir, {"db_password": "hunter2"}) + \
        "    env:\n      API_KEY: sk-live-123\n"
    c.deploy_ok({"cortex.yaml": yaml_text, "predictor.py": PREDICTOR})
    api = BatchApi(c, "secretive", out_dir)
    c.wait_until(lambda: c.http.get(api.url, timeout=5).status_code in (200, 401), 15,
                 interval=0.05, message="the gateway to route /secretive")
    job_id = api.submit_ok({"workers": 1, "item_list": {"items": [1], "batch_size": 1}})["job_id"]

    r = c.http.get(api.url, timeout=30)
    assert r.status_code == 401, r.text
    assert "operator token" in r.json()["error"], r.text
    assert job_id in [j["job_id"] for j in api.jobs()]  # with the token

    r = c.http.get(api.url, params={"jobID": job_id}, timeout=30)
    assert r.status_code == 200, r.text
    assert "hunter2" not in r.text and "sk-live-123" not in r.text, r.text
    predictor = r.json()["api_spec"]["predictor"]
    assert predictor["env"] == {"API_KEY": "<redacted>"}, predictor
    assert predictor["config"]["db_password"] == "<redacted>", predictor

    # The owner's CLI still sees the whole spec.
    rc, out, err = c.cli("get", "secretive", job_id, "-o", "json")
    assert rc == 0, err
    assert "sk-live-123" in out, out
