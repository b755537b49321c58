#!/usr/bin/python3
"""Batch job throughput: a 100,000-item job through a no-op BatchAPI, and the queue alone.

    /usr/bin/python3 bench/batch_bench.py              # about 1-2 minutes
    /usr/bin/python3 bench/batch_bench.py --quick      # 20,000 items, one repeat

Starts its own local cluster (a private copy of the cortex binary, a temp config dir, loopback
ports), deploys a BatchAPI whose predict() does nothing, and:

1. **Jobs.** For each worker count W (default 1, 2, 4) submits an item_list job of N items
   (default 100,000 integers) with batch_size B (default 100, so N/B = 1,000 batches), and
   measures the wall time from just before the POST to the first GET (polled every 0.2 s) that
   shows a terminal status. Reports items/s, the job's average predict time per batch
   (batch_metrics.average_time_per_batch, measured by the worker around predict()), and

       overhead per batch = wall × W / batches − average predict time

   i.e. the worker-seconds each batch cost beyond predict(): the lease and ack round trips to
   the operator (HTTP + the SQLite transactions behind them), decoding the payload, the renewal
   thread each batch starts, and, spread over every batch, the job's start (submission parse
   and enqueue, spawning W Python workers and constructing the predictor) and end (the last
   leases, on_job_complete, the status update, up to 0.2 s of polling granularity). Idle
   workers count too: it is the cost of the machinery per batch at that W, not a latency.
   The "steady" column removes start and end: it uses only the polls between 10 % and 90 %
   of the batches done (W × Δt / Δbatches − average predict time).
2. **Queue alone.** The operator's lease+ack throughput with no Python worker in the way:
   submits a job with workers=1 whose predictor's __init__ sleeps (so the real worker never
   leases), then drives the worker protocol itself from T Python threads (default 1, 4, 8) —
   POST /v1/jobs/<job>/lease, then /ack, until the queue is empty — with the operator token
   from $CORTEX_CLI_CONFIG_DIR/cluster/operator.token. Two clients: urllib (a new connection
   per call, as the real worker does) and http.client with keep-alive (one connection per
   thread), to show how much of the cost is connection setup in the client. The client is
   Python too (GIL), so with several threads the numbers are a lower bound of what the
   operator can do.

Prints a markdown report and writes it to bench/results/batch-<timestamp>.md. Cleans up every
process it started (the cluster, its workers) and the temp dir (kept with --keep-tmp or on
failure).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = "/usr/bin/python3"
TERMINAL = {"status_succeeded", "status_completed_with_failures", "status_stopped",
            "status_timed_out", "status_worker_error", "status_worker_oom",
            "status_unexpected_error", "status_enqueue_failed"}

PREDICTOR = """\
import time


class PythonPredictor:
    def __init__(self, config, job_spec):
        time.sleep(float(config.get("init_sleep_s", 0)))

    def predict(self, payload, batch_id):
        pass
"""

CORTEX_YAML = """\
- name: noop-batch
  kind: BatchAPI
  predictor:
    type: python
    path: predictor.py
"""


def log(msg):
    print(f"[batch-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] not in "ZX"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_mentioning(mark):
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) != os.getpid() and mark in cmdline(int(d))]


def cpu_seconds(pid):
    """User + system CPU time of one process (its own, without children), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def snapshot_binary(src, dest_dir):
    """A private copy: others may relink build/ meanwhile."""
    dest_dir.mkdir()
    dest = dest_dir / "cortex"
    last = ""
    for _ in range(30):
        try:
            shutil.copy2(src, dest)
            r = subprocess.run([str(dest), "version"], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, CORTEX_CLI_CONFIG_DIR=str(dest_dir / "cfg")))
            if r.returncode == 0 or "cli" in (r.stdout + r.stderr).lower():
                return str(dest)
            last = r.stdout + r.stderr
        except (OSError, subprocess.SubprocessError) as e:
            last = repr(e)
        time.sleep(2)  # probably being relinked right now
    raise RuntimeError(f"cannot run a copy of {src}: {last}")


class Cluster:
    def __init__(self, base, cortex_bin):
        self.base = Path(base)
        self.bin = cortex_bin
        self.cfg = self.base / "cfg"
        self.cfg.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("CORTEX_OPERATOR_PORT", "CORTEX_GATEWAY_PORT", "PYTHONPATH",
                                 "PYTHONHOME", "http_proxy", "https_proxy", "HTTP_PROXY",
                                 "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}
        self.env["CORTEX_CLI_CONFIG_DIR"] = str(self.cfg)
        self.env["NO_PROXY"] = self.env["no_proxy"] = "127.0.0.1,localhost"
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def cli(self, *args, timeout=60):
        r = subprocess.run([self.bin, *map(str, args)], env=self.env, cwd=self.base,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"cortex {' '.join(map(str, args))}: {r.stdout}{r.stderr}")
        return r.stdout

    def up(self):
        self.op_port, self.gw_port = free_port(), free_port()
        self.cli("cluster", "up", "--operator-port", self.op_port, "--gateway-port",
                 self.gw_port, "--python", PY)
        self.token = (self.cfg / "cluster" / "operator.token").read_text().strip()
        self.operator = f"http://127.0.0.1:{self.op_port}"
        state = json.loads((self.cfg / "cluster" / "cluster.json").read_text())
        self.operator_pid = state["operator_pid"]
        self.gateway = f"http://127.0.0.1:{self.gw_port}"

    def down(self):
        try:
            if (self.cfg / "cluster" / "cluster.json").exists():
                self.cli("cluster", "down", timeout=120)
        finally:
            # Whatever survived (batch workers included): everything that names our temp dir.
            for pid in pids_mentioning(str(self.base)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def request(self, method, url, body=None, timeout=120):
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def deploy(self):
        project = self.base / "project"
        project.mkdir()
        (project / "cortex.yaml").write_text(CORTEX_YAML)
        (project / "predictor.py").write_text(PREDICTOR)
        self.cli("deploy", project, "-y")
        self.endpoint = f"{self.gateway}/noop-batch"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.request("GET", self.endpoint)[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("the gateway never routed /noop-batch")

    def submit(self, body):
        status, data = self.request("POST", self.endpoint, body)
        if status != 200:
            raise RuntimeError(f"submission failed: {status} {data[:300]!r}")
        return json.loads(data)

    def job(self, job_id):
        status, data = self.request("GET", f"{self.endpoint}?jobID={job_id}")
        if status != 200:
            raise RuntimeError(f"GET job {job_id}: {status} {data[:300]!r}")
        return json.loads(data)["job_status"]

    def stop(self, job_id):
        self.request("DELETE", f"{self.endpoint}?jobID={job_id}")

    def worker_pids(self, job_id):
        return [p for p in pids_mentioning("cortex_runtime.batch") if job_id in cmdline(p)]


def run_job(cluster, items, batch_size, workers, poll_s, timeout_s):
    body = json.dumps({"workers": workers,
                       "item_list": {"items": list(range(items)), "batch_size": batch_size}})
    cpu0 = cpu_seconds(cluster.operator_pid)
    t0 = time.monotonic()
    spec = cluster.submit(body.encode())
    submitted = time.monotonic() - t0
    job_id = spec["job_id"]
    total = spec["total_batch_count"]
    polls = []  # (seconds since submission, batches done)
    while True:
        status = cluster.job(job_id)
        now = time.monotonic() - t0
        m = status["batch_metrics"] or {}
        polls.append((now, m.get("succeeded", 0) + m.get("failed", 0)))
        if status["status"] in TERMINAL:
            break
        if now > timeout_s:
            cluster.stop(job_id)
            raise RuntimeError(f"job {job_id} did not finish in {timeout_s} s: {status}")
        time.sleep(poll_s)
    wall = polls[-1][0]
    cpu1 = cpu_seconds(cluster.operator_pid)
    op_cpu = (cpu1 - cpu0) / total if cpu0 is not None and cpu1 is not None else None
    if status["status"] != "status_succeeded":
        raise RuntimeError(f"job {job_id} ended {status['status']}: {status}")
    avg = status["batch_metrics"]["average_time_per_batch"] or 0.0
    # Steady state: the polls between 10 % and 90 % done.
    lo = next((p for p in polls if p[1] >= 0.1 * total), None)
    hi = next((p for p in polls if p[1] >= 0.9 * total), None)
    steady = None
    if lo and hi and hi[1] > lo[1] and hi[0] > lo[0]:
        steady = workers * (hi[0] - lo[0]) / (hi[1] - lo[1]) - avg
    first = next((p[0] for p in polls if p[1] > 0), None)
    return {"job_id": job_id, "workers": workers, "batches": total, "items": items,
            "wall_s": wall, "submit_s": submitted, "first_batch_s": first,
            "items_per_s": items / wall, "avg_predict_s": avg,
            "overhead_s": wall * workers / total - avg, "steady_overhead_s": steady,
            "operator_cpu_s": op_cpu,
            "succeeded": status["batch_metrics"]["succeeded"]}


class UrllibClient:
    """As the real worker: a new connection per call."""

    def __init__(self, base, token):
        self.base, self.token = base, token
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, path, body):
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token}"})
        with self.opener.open(req, timeout=30) as r:
            return json.loads(r.read())

    def close(self):
        pass


class KeepAliveClient:
    """One persistent HTTP/1.1 connection."""

    def __init__(self, base, token):
        host, port = base.rsplit("//", 1)[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.token = token

    def call(self, path, body):
        self.conn.request("POST", path, body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"Bearer {self.token}"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
        return json.loads(data)

    def close(self):
        self.conn.close()


def drive_queue(cluster, client_cls, threads, batches, batch_size):
    """Leases and acks every batch of a fresh job from `threads` threads; returns the numbers."""
    body = {"workers": 1, "config": {"init_sleep_s": 3600},
            "item_list": {"items": list(range(batches * batch_size)), "batch_size": batch_size}}
    spec = cluster.submit(body)
    job_id = spec["job_id"]
    prefix = f"/v1/jobs/{job_id}"
    lease_lat, ack_lat, errors = [], [], []
    done = [0]
    last_ack = [0.0]  # perf_counter of the last ack: threads that find every remaining batch
    waits = [0]       # leased elsewhere are told to wait 1 s, which must not count
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(n):
        client = client_cls(cluster.operator, cluster.token)
        me = f"{job_id}-bench{n}"
        mine_lease, mine_ack, count, mine_last, mine_waits = [], [], 0, 0.0, 0
        try:
            start.wait()
            while True:
                t = time.perf_counter()
                answer = client.call(f"{prefix}/lease", {"worker": me})
                mine_lease.append(time.perf_counter() - t)
                batch = answer.get("batch")
                if batch is None:
                    if answer.get("done"):
                        if answer.get("on_job_complete"):
                            client.call(f"{prefix}/complete", {"worker": me})
                        return
                    mine_waits += 1
                    time.sleep(float(answer.get("wait_s", 0.05)))
                    continue
                t = time.perf_counter()
                client.call(f"{prefix}/ack", {"worker": me, "batch_id": batch["id"],
                                              "seconds": 0.0})
                mine_last = time.perf_counter()
                mine_ack.append(mine_last - t)
                count += 1
        except Exception as e:  # noqa: BLE001 - reported with the results
            errors.append(repr(e))
        finally:
            client.close()
            with lock:
                lease_lat.extend(mine_lease)
                ack_lat.extend(mine_ack)
                done[0] += count
                waits[0] += mine_waits
                last_ack[0] = max(last_ack[0], mine_last)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    cpu0 = cpu_seconds(cluster.operator_pid)
    start.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join(timeout=600)
    elapsed = last_ack[0] - t0
    cpu1 = cpu_seconds(cluster.operator_pid)
    status = cluster.job(job_id)
    if status["status"] not in TERMINAL:
        cluster.stop(job_id)
    # The real worker (asleep in __init__) is stopped with the job.
    deadline = time.monotonic() + 15
    while cluster.worker_pids(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)

    def pct(xs, q):
        if not xs:
            return None
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]
    return {"client": client_cls.__name__, "threads": threads, "batches": done[0],
            "expected": spec["total_batch_count"], "elapsed_s": elapsed,
            "per_s": done[0] / elapsed if elapsed > 0 else 0.0,
            "lease_p50": pct(lease_lat, 0.5), "lease_p99": pct(lease_lat, 0.99),
            "ack_p50": pct(ack_lat, 0.5), "ack_p99": pct(ack_lat, 0.99),
            "status": status["status"], "errors": errors[:3], "waits": waits[0],
            "operator_cpu_s": (cpu1 - cpu0) / max(1, done[0])
            if cpu0 is not None and cpu1 is not None else None,
            "succeeded": status["batch_metrics"]["succeeded"]}


def ms(v):
    return "-" if v is None else f"{v * 1000:.2f} ms"


def git_rev():
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def build_report(args, jobs, raw, findings):
    out = [f"# Batch job benchmark ({time.strftime('%Y-%m-%d %H:%M:%S')})", ""]
    out += [f"- machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
            f"1-min load average {args.load_start:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end (other work on the machine skews the numbers)",
            f"- build: {args.cortex_src} (repo at {git_rev()}, run from a private copy)",
            f"- job: {args.items:,} integer items, batch_size {args.batch_size} "
            f"({args.items // args.batch_size:,} batches), no-op predict(), "
            f"{args.repeat} run(s) per worker count (the median run by wall time is shown; "
            f"min/max in the last column); status polled every {args.poll} s", ""]
    if jobs:
        out += ["## Jobs (submission → terminal status)", "",
                "| workers | wall | items/s | submit (POST) | first batch done | "
                "avg predict/batch | overhead/batch (all) | overhead/batch (steady) | "
                "operator CPU/batch | wall min–max |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for w in sorted({r["workers"] for r in jobs}):
            runs = sorted((r for r in jobs if r["workers"] == w), key=lambda r: r["wall_s"])
            r = runs[len(runs) // 2]
            first = "-" if r["first_batch_s"] is None else f"{r['first_batch_s']:.2f} s"
            out.append(f"| {w} | {r['wall_s']:.2f} s | {r['items_per_s']:,.0f} | "
                       f"{ms(r['submit_s'])} | "
                       f"{first} | "
                       f"{ms(r['avg_predict_s'])} | {ms(r['overhead_s'])} | "
                       f"{ms(r['steady_overhead_s'])} | {ms(r['operator_cpu_s'])} | "
                       f"{runs[0]['wall_s']:.2f}–{runs[-1]['wall_s']:.2f} s |")
        out += ["",
                "overhead/batch (all) = wall × workers / batches − avg predict/batch: the "
                "worker-seconds each batch cost besides predict() (lease and ack round trips, "
                "payload decoding, the renewal thread, and the job's start and end spread over "
                "every batch). overhead/batch (steady) uses only the polls between 10 % and 90 % "
                "done. operator CPU/batch is the operator process's CPU time (user + system, "
                "from /proc, 10 ms ticks) over the job divided by its batches; it includes the "
                "control loop and the status polls. \"first batch done\" is the first poll that "
                "showed a finished batch (job start: enqueueing, spawning the workers, "
                "importing and constructing the predictor; ±0.2 s).", ""]
    if raw:
        out += ["## Queue alone (the operator's lease + ack, no Python worker)", "",
                "| client | threads | batches | lease+ack pairs/s | per pair per thread | "
                "operator CPU/pair | lease p50 / p99 | ack p50 / p99 | errors |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in raw:
            per = r["threads"] / r["per_s"] if r["per_s"] else None
            client = ("urllib (new connection per call)" if r["client"] == "UrllibClient"
                      else "http.client keep-alive")
            out.append(f"| {client} | {r['threads']} | {r['batches']}/{r['expected']} | "
                       f"{r['per_s']:,.0f} | {ms(per)} | {ms(r['operator_cpu_s'])} | "
                       f"{ms(r['lease_p50'])} / "
                       f"{ms(r['lease_p99'])} | {ms(r['ack_p50'])} / {ms(r['ack_p99'])} | "
                       f"{len(r['errors'])}{': ' + r['errors'][0] if r['errors'] else ''} |")
        out += ["", "Throughput is measured from the start to the last ack (a thread that finds "
                "every remaining batch leased by others is told to wait 1 s; that wait is not "
                "counted). "
                "Each pair is one POST /v1/jobs/<job>/lease and one POST .../ack straight "
                "to the operator (each a SQLite transaction with synchronous=FULL in WAL mode). "
                "The driving client is Python threads, so with several threads the client's "
                "GIL is part of the number.", ""]
    if findings:
        out += ["## Problems seen", ""] + [f"- {f}" for f in findings] + [""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeat", type=int, default=3, help="runs per worker count (default 3)")
    ap.add_argument("--poll", type=float, default=0.2, help="status poll interval (default 0.2)")
    ap.add_argument("--raw-threads", default="1,4,8",
                    help="thread counts for the queue-alone runs ('' skips them)")
    ap.add_argument("--raw-batches", type=int, default=2000,
                    help="batches per queue-alone run (default 2000)")
    ap.add_argument("--quick", action="store_true", help="20,000 items, 1 repeat, 500 raw batches")
    ap.add_argument("--job-timeout", type=float, default=600)
    ap.add_argument("--cortex-bin", default=str(ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.items, args.repeat, args.raw_batches = 20_000, 1, 500
    args.load_start = os.getloadavg()[0]
    workers = [int(x) for x in args.workers.split(",") if x]
    raw_threads = [int(x) for x in args.raw_threads.split(",") if x]
    if not os.access(args.cortex_bin, os.X_OK):
        sys.exit(f"missing {args.cortex_bin}; build it with scripts/build.sh")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    base = tempfile.mkdtemp(prefix="cxbatch-", dir="/tmp")
    args.cortex_src = args.cortex_bin
    try:
        args.cortex_bin = snapshot_binary(args.cortex_bin, Path(base) / "bin")
    except RuntimeError as e:
        shutil.rmtree(base, ignore_errors=True)
        sys.exit(str(e))
    cluster = Cluster(base, args.cortex_bin)
    jobs, raw, findings = [], [], []
    ok = False
    try:
        log(f"temp dir {base}; starting the cluster")
        cluster.up()
        cluster.deploy()
        # A small warm-up job (page cache, Python imports).
        run_job(cluster, 1000, args.batch_size, 1, args.poll, 60)
        for rep in range(args.repeat):
            for w in workers:
                r = run_job(cluster, args.items, args.batch_size, w, args.poll, args.job_timeout)
                log(f"workers {w} (run {rep + 1}): {r['wall_s']:.2f} s, "
                    f"{r['items_per_s']:,.0f} items/s, overhead/batch {ms(r['overhead_s'])}")
                if r["succeeded"] != r["batches"]:
                    findings.append(f"job {r['job_id']}: {r['succeeded']} of {r['batches']} "
                                    "batches succeeded")
                jobs.append(r)
                deadline = time.monotonic() + 15
                while cluster.worker_pids(r["job_id"]) and time.monotonic() < deadline:
                    time.sleep(0.05)
        for client_cls in (UrllibClient, KeepAliveClient):
            for t in raw_threads:
                r = drive_queue(cluster, client_cls, t, args.raw_batches, args.batch_size)
                log(f"queue alone, {client_cls.__name__}, {t} thread(s): "
                    f"{r['per_s']:,.0f} pairs/s ({r['batches']}/{r['expected']}, "
                    f"{r['status']})")
                if r["errors"] or r["batches"] != r["expected"]:
                    findings.append(f"queue alone, {client_cls.__name__}, {t} threads: "
                                    f"{r['batches']}/{r['expected']} batches, errors "
                                    f"{r['errors']}")
                raw.append(r)
        ok = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        findings.append(f"interrupted ({e}); the tables are partial")
    except Exception as e:  # noqa: BLE001 - report, clean up
        log(f"FAILED: {e!r}")
        findings.append(f"benchmark aborted: {e!r}")
    finally:
        try:
            cluster.down()
        except Exception as e:  # noqa: BLE001
            findings.append(f"cluster down failed: {e!r}")
        left = [p for p in pids_mentioning(base) if alive(p)]
        if left:
            findings.append(f"processes left after cleanup: {left}")
        if args.keep_tmp or not ok:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    report = build_report(args, jobs, raw, findings)
    print(report)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"batch-{time.strftime('%Y%m%d-%H%M%S')}{'' if ok else '-incomplete'}.md"
    (out_dir / name).write_text(report + "\n")
    log(f"wrote {out_dir / name}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
