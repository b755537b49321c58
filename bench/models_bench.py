#!/usr/bin/python3
"""Models benchmark: the ONNX predictor through the gateway, live reloads, upload → first answer.

Run with Debian's interpreter (torch and torchvision export the models):

    /usr/bin/python3 bench/models_bench.py [--quick] [--cortex-bin build/src/apps/cortex]

One invocation, on loopback only, in a temp dir that is removed at the end:
  0. exports the models with torch.onnx.export (opset 13, dynamic batch axis): an MLP
     784-512-512-10 (one weight set per version, seeds 1..7) and torchvision's resnet18
     (weights=None); starts a local cluster (`cortex cluster up`) whose replicas poll their model
     sources every CORTEX_MODEL_POLL_S=1 s (workers watch their manifest at the default 1 s);
  1. efficiency, for each model at batch 1:
     baseline: the same .onnx in a loop in this process through `_cortex_onnx.Session` with
       the API's intra-op thread count (1), one loop (c=1) and two threads sharing the session
       (c=2; Run releases the GIL);
     gateway: an ONNXPredictor API (compute.cpu 1, processes_per_replica 1, threads_per_process
       2, so ONNX Runtime gets 1 intra-op thread) driven closed-loop by wrk with c=1 and c=2.
       MLP: JSON {"input": [[784 floats]]}. ResNet18: JSON {"input": 1x3x224x224 nested lists}
       (about 1.2 MB) and also the raw float32 bytes (application/octet-stream: the worker hands
       the predictor the body as bytes and the predictor calls np.frombuffer); the JSON encode and
       decode costs of the ResNet input are measured in-process beside them;
  2. live reload: c=2 closed-loop traffic (Python threads, http.client) against the MLP API for
     a steady window, then again while version 2 is written aside and renamed into the model
     directory; p50/p99/max of each and of the reload window (upload → first v2 answer + 1 s),
     every failed request;
  3. upload → first answer of the new version (the answer's outputs identify the weight set),
     c=1 traffic, repeated 5 times (versions 3..7).
Prints a markdown report (and writes it to --out when given). `--quick` is a smoke run (~1 min).
"""

import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = "/usr/bin/python3"
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "build" / "python"))

import serving_bench as sb  # noqa: E402 - process helpers, the binary snapshot, wrk parsing

POLL_S = 1
MLP_VERSIONS = 7

EXPORT_PY = r'''
import os, sys, time
import torch, torchvision
torch.set_num_threads(1)
out, versions = sys.argv[1], int(sys.argv[2])
t = time.time()
for v in range(1, versions + 1):
    torch.manual_seed(v)
    mlp = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                              torch.nn.ReLU(), torch.nn.Linear(512, 10)).eval()
    os.makedirs(f"{out}/mlp-v{v}")
    torch.onnx.export(mlp, torch.zeros(1, 784), f"{out}/mlp-v{v}/mlp.onnx", opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
for v in (1, 2):
    torch.manual_seed(v)
    net = torchvision.models.resnet18(weights=None).eval()
    os.makedirs(f"{out}/resnet18-v{v}")
    torch.onnx.export(net, torch.zeros(1, 3, 224, 224), f"{out}/resnet18-v{v}/resnet18.onnx",
                      opset_version=13, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
print(f"exported in {time.time() - t:.1f}s")
'''

PREDICTOR_PY = """\
import numpy as np


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client
        self.shape = config.get("shape")

    def predict(self, payload):
        if isinstance(payload, (bytes, bytearray)):  # raw float32 (application/octet-stream)
            model_input = np.frombuffer(payload, dtype=np.float32).reshape(self.shape)
        else:
            model_input = payload["input"]
        return {"output": self.client.predict(model_input)[0].tolist()}
"""

# The same work through a PythonPredictor (used when the replica refuses type onnx): the model
# registry loads each version with load_model, which opens an ONNX Runtime session as the onnx
# type's loader does (1 intra-op thread, the value compute.cpu 1 gives), and predict does what
# onnx_client.predict does (Cortex's input handling, then session.run).
PYTHON_ONNX_PREDICTOR_PY = """\
import os

import numpy as np

import _cortex_onnx
from cortex_runtime.onnx_inputs import prepare_feeds


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client
        self.shape = config.get("shape")

    def load_model(self, model_path):
        found = sorted(os.path.join(d, f) for d, _, files in os.walk(model_path)
                       for f in files if f.endswith(".onnx"))
        session = _cortex_onnx.Session(found[0], intra_op_threads=1)
        return {"session": session,
                "input_signatures": {s["name"]: {"shape": list(s["shape"]), "type": s["type"]}
                                     for s in session.inputs()}}

    def predict(self, payload):
        model = self.client.get_model()
        if isinstance(payload, (bytes, bytearray)):  # raw float32 (application/octet-stream)
            model_input = np.frombuffer(payload, dtype=np.float32).reshape(self.shape)
        else:
            model_input = payload["input"]
        feeds = prepare_feeds(model["input_signatures"], model_input, "_cortex_default")
        return {"output": model["session"].run(None, feeds)[0].tolist()}
"""

ONNX_REFUSED = "no runtime can run predictors of type onnx"


class OnnxRefused(RuntimeError):
    pass

WRK_LUA = """\
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "%(ctype)s"

""" + sb.WRK_DONE_LUA


def log(msg):
    print(f"[models-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def fmt_ms(v):
    return "-" if v is None else sb.fmt_ms(v)


def summarize(lats_s, wall_s):
    lats = sorted(x * 1000.0 for x in lats_s)
    return {"n": len(lats), "rps": len(lats) / wall_s if wall_s > 0 else 0.0,
            "p50": pct(lats, 50), "p99": pct(lats, 99), "max": lats[-1] if lats else None}


# ---------------------------------------------------------------- baseline (in process)

def baseline_loop(session, feeds, threads, secs):
    """Runs session.run(None, feeds) in `threads` threads for secs; latencies in seconds."""
    lats = [[] for _ in range(threads)]
    stop_at = [0.0]
    barrier = threading.Barrier(threads + 1)

    def work(out):
        barrier.wait()
        end = stop_at[0]
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            session.run(None, feeds)
            out.append(time.perf_counter() - t0)

    ts = [threading.Thread(target=work, args=(lats[i],), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    start = time.perf_counter()
    stop_at[0] = start + secs
    barrier.wait()
    for t in ts:
        t.join()
    wall = time.perf_counter() - start
    return summarize([x for part in lats for x in part], wall)


def time_calls(fn, secs, at_least=3):
    """Median seconds of fn() over repeated calls for about secs."""
    out = []
    end = time.perf_counter() + secs
    while time.perf_counter() < end or len(out) < at_least:
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


# ---------------------------------------------------------------- HTTP client (Python)

class Traffic:
    """Closed-loop traffic: `conns` threads, one keep-alive http.client connection each.

    Every answer is recorded as (t_sent, t_answered, status, tag), tag = classify(body) for
    200s; times are time.monotonic()."""

    def __init__(self, port, path, body, ctype, conns, classify):
        self.port, self.path, self.body, self.ctype = port, path, body, ctype
        self.conns, self.classify = conns, classify
        self.records = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = []

    def _run(self):
        conn = None
        headers = {"Content-Type": self.ctype}
        while not self.stop_ev.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            t0 = time.monotonic()
            try:
                conn.request("POST", self.path, self.body, headers)
                r = conn.getresponse()
                data = r.read()
                t1 = time.monotonic()
                status = r.status
                tag = self.classify(data) if status == 200 else data[:200].decode(errors="replace")
            except Exception as e:  # noqa: BLE001 - a failed request, recorded as such
                t1 = time.monotonic()
                status, tag = type(e).__name__, str(e)[:200]
                conn.close()
                conn = None
            with self.lock:
                self.records.append((t0, t1, status, tag))
        if conn is not None:
            conn.close()

    def start(self):
        for _ in range(self.conns):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=60)

    def snapshot(self):
        with self.lock:
            return list(self.records)


# ---------------------------------------------------------------- CPU accounting

HZ = os.sysconf("SC_CLK_TCK")


def _proc_jiffies(pid, children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # fields[0] is the state: utime, stime, cutime, cstime are fields 14-17 of stat
    j = int(fields[11]) + int(fields[12])
    return j + (int(fields[13]) + int(fields[14]) if children else 0)


class CpuSampler:
    """Every 0.2 s: the machine's busy CPU and this benchmark's (this process, its waited-for
    children such as wrk, and the cluster's process tree), so each window can say how much CPU
    other jobs of the machine took meanwhile."""

    def __init__(self, roots_fn):
        self.roots_fn = roots_fn
        self.samples = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        busy = sum(cpu) - cpu[3] - (cpu[4] if len(cpu) > 4 else 0)  # minus idle and iowait
        ours = {p: _proc_jiffies(p) for p in sb.tree(self.roots_fn())}
        ours[-1] = _proc_jiffies(os.getpid(), children=True)  # this process and waited children
        return (time.monotonic(), busy, ours)

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                self.samples.append(self.sample())
            except (OSError, ValueError):
                pass
            self.stop_ev.wait(0.2)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=5)

    def others(self, t_from, t_to):
        """Cores used by other processes of the machine in [t_from, t_to] (None if unknown).

        Per process: a process of the cluster that started in the window counts whole, one
        that exited in it is left out (its last moments count as others')."""
        inside = [x for x in self.samples if t_from - 0.2 <= x[0] <= t_to + 0.2]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        dt = b[0] - a[0]
        if dt <= 0:
            return None
        ours = sum(j - a[2].get(p, 0) for p, j in b[2].items())
        return max(0.0, ((b[1] - a[1]) - ours) / HZ / dt)


def fmt_cores(v):
    return "-" if v is None else f"{v:.2f}"


def window_stats(records, t_from, t_to):
    """Stats of the requests answered in [t_from, t_to)."""
    sel = [r for r in records if t_from <= r[1] < t_to]
    ok = [r[1] - r[0] for r in sel if r[2] == 200]
    s = summarize(ok, t_to - t_from)
    s["failed"] = [(r[2], r[3]) for r in sel if r[2] != 200]
    return s


# ---------------------------------------------------------------- cluster

class Cluster:
    def __init__(self, base, cortex_bin):
        self.base = Path(base)
        self.cfg = self.base / "cx-config"
        self.bin = cortex_bin
        self.env = dict(os.environ, CORTEX_CLI_CONFIG_DIR=str(self.cfg),
                        CORTEX_MODEL_POLL_S=str(POLL_S), NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
        for k in ("PYTHONHOME", "PYTHONPATH", "CORTEX_MODEL_WATCH_S", "http_proxy", "HTTP_PROXY",
                  "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            self.env.pop(k, None)
        self.gw_port = sb.free_port()
        self.op_port = sb.free_port()
        self.up_called = False
        self.seen = set()

    def cli(self, *args, timeout=60, check=True):
        r = subprocess.run([str(self.bin), *map(str, args)], env=self.env, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"cortex {' '.join(map(str, args))} failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}")
        return r

    def up(self):
        self.up_called = True
        self.cli("cluster", "up", "--operator-port", self.op_port, "--gateway-port", self.gw_port,
                 "--python", PY, "-y", timeout=90)
        self.remember()

    def roots(self):
        try:
            info = json.loads((self.cfg / "cluster" / "cluster.json").read_text())
            return [info["operator_pid"], info["gateway_pid"]]
        except (OSError, ValueError, KeyError):
            return []

    def remember(self):
        self.seen.update(sb.tree(self.roots()))

    def deploy(self, name, model_path, cfg=None, ptype="onnx", timeout=120):
        proj = self.base / "projects" / f"{name}-{ptype}"
        proj.mkdir(parents=True)
        (proj / "predictor.py").write_text(PREDICTOR_PY if ptype == "onnx" else
                                           PYTHON_ONNX_PREDICTOR_PY)
        yaml = (f"- name: {name}\n  kind: RealtimeAPI\n  predictor:\n    type: {ptype}\n"
                f"    path: predictor.py\n    model_path: {model_path}\n"
                f"    processes_per_replica: 1\n    threads_per_process: 2\n")
        if cfg:
            yaml += f"    config: {json.dumps(cfg)}\n"
        yaml += "  compute:\n    cpu: 1\n"
        (proj / "cortex.yaml").write_text(yaml)
        self.cli("deploy", proj, "-y")
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                data = json.loads(self.cli("get", name, "-o", "json").stdout)
                api = data[0] if isinstance(data, list) else data
                last = api.get("status")
                ready = api["status"]["replica_counts"]["updated"]["ready"]
                if api["status"]["status_code"] == "status_live" and ready >= 1:
                    self.remember()
                    return
                if ONNX_REFUSED in self.api_log(name):
                    raise OnnxRefused(next(ln for ln in self.api_log(name).splitlines()
                                           if ONNX_REFUSED in ln).strip())
            except OnnxRefused:
                raise
            except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as e:
                last = repr(e)
            time.sleep(0.25)
        raise RuntimeError(f"{name} did not become live in {timeout}s: {last}\n"
                           + sb.tail_files(sorted((self.cfg / "cluster" / "logs").rglob("*.log"))))

    def delete(self, name):
        self.cli("delete", name, "-f", check=False)
        end = time.time() + 30
        while time.time() < end:
            data = json.loads(self.cli("get", "-o", "json").stdout or "[]")
            if not [a for a in (data or []) if a.get("name") == name or
                    (a.get("spec") or {}).get("name") == name]:
                return
            time.sleep(0.25)

    def api_log(self, name):
        out = []
        for p in sorted((self.cfg / "cluster" / "logs").rglob("*.log")):
            if name in str(p.relative_to(self.cfg)):
                out.append(p.read_text(errors="replace"))
        return "\n".join(out)

    def down(self):
        if not self.up_called:
            return
        self.remember()
        try:
            self.cli("cluster", "down", "-y", timeout=90, check=False)
        except Exception as e:  # noqa: BLE001 - fall through to the safety net
            log(f"cortex cluster down failed: {e!r}")
        mark = str(self.cfg)
        left = [p for p in self.seen if sb.alive(p) and mark in sb.cmdline(p)]
        if left:
            log(f"killing leftover cluster processes {left}")
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def post_once(port, path, body, ctype, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": ctype})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_answer(port, path, body, ctype, check, secs=90):
    end = time.time() + secs
    last = None
    while time.time() < end:
        try:
            status, data = post_once(port, path, body, ctype)
            if status == 200:
                check(json.loads(data))
                return
            last = f"HTTP {status}: {data[:300]!r}"
        except (OSError, http.client.HTTPException, ValueError, AssertionError) as e:
            last = repr(e)
        time.sleep(0.2)
    raise RuntimeError(f"POST {path} never answered correctly: {last}")


def wrk_run(lua, port, path, conns, secs, warmup):
    url = f"http://127.0.0.1:{port}{path}"
    cmd = ["wrk", "-t1", f"-c{conns}", "--latency", "--timeout", "60s", "-s", str(lua)]
    if warmup > 0:
        subprocess.run(cmd + [f"-d{warmup}s", url], capture_output=True, timeout=warmup + 90)
    r = subprocess.run(cmd + [f"-d{secs}s", url], capture_output=True, text=True, timeout=secs + 90)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr}{r.stdout}")
    res = sb.parse_wrk(r.stdout)
    if "rps" not in res or "p50" not in res:
        raise RuntimeError(f"could not parse wrk output:\n{r.stdout}")
    res["errors"] = (res.get("non2xx") or 0) + sum((res.get("sock") or {}).values())
    return res


# ---------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, args, base):
        self.args = args
        self.base = Path(base)
        self.eff = []        # efficiency rows
        self.json_cost = {}  # ResNet JSON costs
        self.loads = {}      # session creation times
        self.reloads = []
        self.expected = {}   # model -> {version: output for the benchmark's input}
        self.ttfa = []
        self.findings = []
        self.cpu = None
        self.ptype = "onnx"  # becomes "python" when the replica refuses type onnx

    # -- models
    def export(self):
        built = self.base / "built"
        t0 = time.time()
        r = subprocess.run([PY, "-c", EXPORT_PY, str(built), str(MLP_VERSIONS)], capture_output=True,
                           text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
        if r.returncode != 0:
            raise RuntimeError(f"model export failed:\n{r.stdout}{r.stderr[-3000:]}")
        log(f"models exported in {time.time() - t0:.1f}s")
        self.built = built
        self.models = self.base / "models"
        (self.models / "mlp").mkdir(parents=True)
        shutil.copytree(built / "mlp-v1", self.models / "mlp" / "1")
        (self.models / "resnet18").mkdir(parents=True)
        shutil.copytree(built / "resnet18-v1", self.models / "resnet18" / "1")

    def upload(self, key, version):
        """Writes version `version` of model `key` aside (same file system) and renames it into
        the model dir; returns the monotonic time of the rename."""
        staging = self.base / "staging" / f"{key}-{version}"
        shutil.copytree(self.built / f"{key}-v{version}", staging)
        t = time.monotonic()
        os.rename(staging, self.models / key / str(version))
        return t

    def expect_versions(self, key, versions, x):
        """What each version answers to x: an answer then names its version."""
        import _cortex_onnx
        self.expected[key] = {}
        for v in versions:
            sess = _cortex_onnx.Session(str(self.built / f"{key}-v{v}" / f"{key}.onnx"),
                                        intra_op_threads=1)
            self.expected[key][v] = sess.run(None, {"input": x})[0][0]

    def classifier(self, key):
        expected = self.expected[key]

        def classify(data):
            try:
                got = np.asarray(json.loads(data)["output"][0], dtype=np.float32)
            except (ValueError, KeyError, IndexError, TypeError):
                return "unparsable"
            for v, out in expected.items():
                if got.shape == out.shape and np.allclose(got, out, atol=1e-3, rtol=1e-3):
                    return v
            return "unknown output"
        return classify

    def deploy(self, cluster, key, cfg):
        """Deploys the API as type onnx (an ONNXPredictor); when the replica refuses that type,
        as the same ONNX Runtime work in a PythonPredictor (recorded in the report)."""
        if self.ptype == "onnx":
            log(f"{key}: deploying an ONNXPredictor API")
            try:
                cluster.deploy(key, self.models / key, cfg, "onnx")
                return
            except OnnxRefused as e:
                self.findings.append(
                    f"type onnx could not be served: the replica exits with \"{e}\" "
                    f"(src/replica/runtime.cc RuntimeFor only knows \"python\"), so every "
                    f"gateway row ran the same ONNX Runtime session in a PythonPredictor "
                    f"(load_model opens the session with 1 intra-op thread; predict runs "
                    f"onnx_inputs.prepare_feeds and session.run, as onnx_client.predict does)")
                log(f"type onnx refused ({e}); using a PythonPredictor over _cortex_onnx")
                cluster.delete(key)
                self.ptype = "python"
        log(f"{key}: deploying a PythonPredictor API over _cortex_onnx")
        cluster.deploy(key, self.models / key, cfg, "python")

    # -- efficiency
    def efficiency(self, cluster, key, label, path_onnx, payloads, cfg=None):
        import _cortex_onnx
        a = self.args
        t0 = time.perf_counter()
        session = _cortex_onnx.Session(str(path_onnx), intra_op_threads=1)
        self.loads[key] = time.perf_counter() - t0
        x = payloads["x"]
        expect = session.run(None, {"input": x})[0][0]
        for _ in range(3):
            session.run(None, {"input": x})

        def baselines(when):
            out = {}
            for c in (1, 2):
                log(f"{label}: baseline in process ({when}), {c} thread(s), {a.base_secs}s")
                t_a = time.monotonic()
                out[c] = baseline_loop(session, {"input": x}, c, a.base_secs)
                out[c]["others"] = self.cpu.others(t_a, time.monotonic())
                log(f"  {out[c]['rps']:,.1f} req/s, p50 {fmt_ms(out[c]['p50'])}, "
                    f"p99 {fmt_ms(out[c]['p99'])}, other jobs {fmt_cores(out[c]['others'])} cores")
            return out

        before = baselines("before")
        first_row = len(self.eff)
        self.deploy(cluster, key, cfg)
        path = f"/{key}"

        def check(j):
            got = np.asarray(j["output"], dtype=np.float32)[0]
            assert got.shape == expect.shape, got.shape
            assert np.allclose(got, expect, atol=1e-3, rtol=1e-3), (got[:4], expect[:4])

        for form, (body_path, ctype) in payloads["bodies"].items():
            wait_answer(cluster.gw_port, path, body_path.read_bytes(), ctype, check)
            lua = self.base / f"{key}-{form}.lua"
            lua.write_text(WRK_LUA % {"body": body_path, "ctype": ctype})
            for c in (1, 2):
                log(f"{label} ({form}): gateway, wrk c={c}, {a.gw_secs}s")
                r = wrk_run(lua, cluster.gw_port, path, c, a.gw_secs, a.warmup)
                r["others"] = self.cpu.others(time.monotonic() - a.gw_secs, time.monotonic())
                log(f"  {r['rps']:,.1f} req/s, p50 {fmt_ms(r['p50'])}, p99 {fmt_ms(r['p99'])}, "
                    f"errors {r['errors']}")
                if r["errors"]:
                    self.findings.append(f"{label} ({form}) c={c}: {r['errors']} failed requests "
                                         f"(non-2xx {r.get('non2xx')}, socket {r.get('sock')})")
                self.eff.append({"model": label, "form": form, "c": c, "gw": r,
                                 "body_bytes": body_path.stat().st_size})
        # The baseline again after the gateway runs; each row is compared with the baseline run
        # that other jobs disturbed least (the machine is shared).
        after = baselines("after")
        for row in self.eff[first_row:]:
            runs = (before[row["c"]], after[row["c"]])
            row["base"] = min(runs, key=lambda b: (b["others"] if b["others"] is not None else 9,
                                                   -b["rps"]))
            row["base_rps"] = [b["rps"] for b in runs]

    def resnet(self, cluster):
        from cortex_runtime.onnx_inputs import prepare_feeds
        rng = np.random.default_rng(0)
        x64 = rng.normal(size=(1, 3, 224, 224)).round(4)  # 4 decimals: short JSON numbers
        x = x64.astype(np.float32)
        json_body = json.dumps({"input": x64.tolist()}).encode()
        raw = x.tobytes()
        jb, rb = self.base / "resnet.json", self.base / "resnet.bin"
        jb.write_bytes(json_body)
        rb.write_bytes(raw)
        sigs = {"input": {"shape": [None, 3, 224, 224], "type": "tensor(float)"}}
        secs = 1.0 if self.args.quick else 3.0
        nested = x64.tolist()
        self.json_cost = {
            "bytes": len(json_body),
            "encode": time_calls(lambda: json.dumps({"input": x64.tolist()}).encode(), secs),
            "decode": time_calls(lambda: prepare_feeds(sigs, json.loads(json_body)["input"],
                                                       "_cortex_default"), secs),
            "loads": time_calls(lambda: json.loads(json_body), secs),
            "to_numpy": time_calls(lambda: prepare_feeds(sigs, nested, "_cortex_default"), secs),
            "raw": time_calls(lambda: prepare_feeds(
                sigs, np.frombuffer(raw, dtype=np.float32).reshape(1, 3, 224, 224),
                "_cortex_default"), secs),
        }
        log("ResNet18 JSON input: " + ", ".join(
            f"{k} {v * 1000:.1f} ms" for k, v in self.json_cost.items() if k != "bytes"))
        self.efficiency(cluster, "resnet18", "ResNet18", self.models / "resnet18" / "1" /
                        "resnet18.onnx",
                        {"x": x, "bodies": {"JSON": (jb, "application/json"),
                                            "raw float32": (rb, "application/octet-stream")}},
                        cfg={"shape": [1, 3, 224, 224]})
        self.expect_versions("resnet18", (1, 2), x)
        self.live_reload(cluster, "resnet18", "ResNet18 (raw float32)", raw,
                         "application/octet-stream")
        cluster.delete("resnet18")  # frees its cpu for the MLP API

    def mlp(self, cluster):
        rng = np.random.default_rng(1)
        x64 = rng.normal(size=(1, 784)).round(4)
        body = self.base / "mlp.json"
        body.write_bytes(json.dumps({"input": x64.tolist()}).encode())
        self.mlp_body = body.read_bytes()
        self.efficiency(cluster, "mlp", "MLP 784-512-512-10",
                        self.models / "mlp" / "1" / "mlp.onnx",
                        {"x": x64.astype(np.float32), "bodies": {"JSON": (body, "application/json")}})
        self.expect_versions("mlp", range(1, MLP_VERSIONS + 1), x64.astype(np.float32))
        self.live_reload(cluster, "mlp", "MLP (JSON)", self.mlp_body, "application/json")

    # -- live reload
    def live_reload(self, cluster, key, label, body, ctype):
        a = self.args
        traffic = Traffic(cluster.gw_port, f"/{key}", body, ctype, 2,
                          self.classifier(key)).start()
        try:
            time.sleep(1.0)  # warm
            s0 = time.monotonic()
            log(f"live reload {label}: steady state, c=2, {a.steady_secs}s")
            time.sleep(a.steady_secs)
            s1 = time.monotonic()
            time.sleep(a.pre_upload_secs)
            log(f"live reload {label}: uploading version 2")
            up = self.upload(key, 2)
            first_v2 = None
            end = up + 30
            while time.monotonic() < end:
                recs = traffic.snapshot()
                v2 = [r for r in recs if r[1] >= up and r[2] == 200 and r[3] == 2]
                if v2:
                    first_v2 = min(r[1] for r in v2)
                    break
                time.sleep(0.02)
            if first_v2 is None:
                raise RuntimeError("version 2 never answered within 30 s of its upload")
            after = max(0.0, a.reload_secs - (time.monotonic() - (up - a.pre_upload_secs)))
            time.sleep(after)
            r1 = time.monotonic()
        finally:
            traffic.stop()
        recs = traffic.snapshot()
        steady = window_stats(recs, s0, s1)
        run = window_stats(recs, s1, r1)
        win = window_stats(recs, up, first_v2 + 1.0)
        after = window_stats(recs, first_v2 + 1.0, r1)
        for st, (t_a, t_b) in ((steady, (s0, s1)), (run, (s1, r1)), (win, (up, first_v2 + 1.0)),
                               (after, (first_v2 + 1.0, r1))):
            st["others"] = self.cpu.others(t_a, t_b)
        late_v1 = sum(1 for r in recs if r[0] > first_v2 and r[2] == 200 and r[3] == 1)
        wrong = [r for r in recs if r[2] == 200 and r[3] not in (1, 2)]
        self.reloads.append({"label": label, "steady": steady, "run": run, "window": win,
                             "after": after,
                             "switch_s": first_v2 - up, "late_v1": late_v1, "wrong": len(wrong),
                             "window_len": first_v2 + 1.0 - up})
        log(f"  steady p50 {fmt_ms(steady['p50'])} p99 {fmt_ms(steady['p99'])}; reload window "
            f"p50 {fmt_ms(win['p50'])} p99 {fmt_ms(win['p99'])} max {fmt_ms(win['max'])}; "
            f"v2 first answered {first_v2 - up:.2f}s after the upload; failed "
            f"{len(steady['failed']) + len(run['failed'])}")
        for what, s in (("steady", steady), ("reload run", run)):
            if s["failed"]:
                self.findings.append(f"live reload {label} ({what}): {len(s['failed'])} failed requests, "
                                     f"first {s['failed'][:3]}")
        if late_v1:
            self.findings.append(f"live reload {label}: {late_v1} requests sent after the first v2 answer "
                                 f"were answered by v1")
        if wrong:
            self.findings.append(f"live reload {label}: {len(wrong)} answers matched no version: {wrong[:2]}")

    # -- upload -> first answer
    def time_to_first_answer(self, cluster):
        traffic = Traffic(cluster.gw_port, "/mlp", self.mlp_body, "application/json", 1,
                          self.classifier("mlp")).start()
        rnd = random.Random(42)
        try:
            for v in range(3, 3 + self.args.ttfa_reps):
                time.sleep(1.0 + rnd.random() * POLL_S)  # a random phase against the poll
                up = self.upload("mlp", v)
                first = None
                end = up + 30
                while time.monotonic() < end:
                    hits = [r[1] for r in traffic.snapshot()
                            if r[1] >= up and r[2] == 200 and r[3] == v]
                    if hits:
                        first = min(hits)
                        break
                    time.sleep(0.01)
                if first is None:
                    raise RuntimeError(f"version {v} never answered within 30 s of its upload")
                self.ttfa.append(first - up)
                log(f"  version {v}: first answer {first - up:.3f}s after the upload")
        finally:
            traffic.stop()
        failed = [r for r in traffic.snapshot() if r[2] != 200]
        if failed:
            self.findings.append(f"upload → first answer: {len(failed)} failed requests, "
                                 f"first {[(r[2], r[3]) for r in failed[:3]]}")

    # -- report
    def report(self, env_lines, total_s, ok):
        L = ["# Models benchmark: ONNX through the gateway, live reloads" +
             ("" if ok else " (INCOMPLETE)"), ""]
        L += env_lines
        L += ["- predictor: " + ("ONNXPredictor (type onnx), onnx_client.predict" if self.ptype == "onnx"
                                else "PythonPredictor over _cortex_onnx (type onnx was refused; "
                                     "see Problems seen)"), ""]
        if self.eff:
            L += ["## Efficiency at batch 1 (gateway vs the same model in a loop in one process)",
                  "",
                  "| model | input | c | baseline req/s (before / after) | baseline p50 / p99 | gateway req/s | "
                  "gateway p50 / p99 | req/s ratio | p50 ratio | errors | other jobs' CPU "
                  "(baseline / gateway) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
            for e in self.eff:
                b, g = e["base"], e["gw"]
                L.append(f"| {e['model']} | {e['form']} ({e['body_bytes'] / 1024:,.0f} KiB) | "
                         f"{e['c']} | **{b['rps']:,.1f}** ({e['base_rps'][0]:,.1f} / "
                         f"{e['base_rps'][1]:,.1f}) | {fmt_ms(b['p50'])} / {fmt_ms(b['p99'])} | "
                         f"{g['rps']:,.1f} | {fmt_ms(g['p50'])} / {fmt_ms(g['p99'])} | "
                         f"{g['rps'] / b['rps']:.3f} | {g['p50'] / b['p50']:.2f}x | "
                         f"{e['gw']['errors']} | {fmt_cores(b.get('others'))} / "
                         f"{fmt_cores(g.get('others'))} |")
            L += ["", "req/s ratio = gateway / baseline (1 is the model's own speed); p50 ratio = "
                  "gateway p50 / baseline p50. Baseline c=2: two threads sharing one session. The baseline "
                  "ran before and after the gateway runs of its model; the ratios use the run that "
                  "other jobs disturbed least (in bold). "
                  "Other jobs' CPU: cores used by processes of the machine that are not this "
                  "benchmark's during the measured run (of 2)."]
        if self.json_cost:
            j = self.json_cost
            L += ["", f"ResNet18 input as JSON ({j['bytes'] / 1e6:.2f} MB): client encode "
                  f"(json.dumps of the nested list) {j['encode'] * 1000:.1f} ms; server decode "
                  f"{j['decode'] * 1000:.1f} ms (json.loads {j['loads'] * 1000:.1f} ms + "
                  f"nested list → float32 array {j['to_numpy'] * 1000:.1f} ms); raw float32 bytes → "
                  f"array {j['raw'] * 1000:.3f} ms (medians, in this process)."]
        if self.loads:
            L += ["", "Session creation (load) in this process: " + ", ".join(
                f"{k} {v * 1000:.0f} ms" for k, v in self.loads.items()) + "."]
        if self.reloads:
            L += ["", "## Live reload (version 2 uploaded under c=2 closed-loop traffic, Python "
                  "http.client)", "",
                  "| API | window | requests | req/s | p50 | p99 | max | failed | other jobs' CPU |",
                  "|---|---|---|---|---|---|---|---|---|"]
            for r in self.reloads:
                for name, st in (("steady state", r["steady"]),
                                 ("whole run with the upload", r["run"]),
                                 (f"reload window (upload → first v2 answer + 1 s, "
                                  f"{r['window_len']:.1f} s)", r["window"]),
                                 ("after the reload window", r["after"])):
                    L.append(f"| {r['label']} | {name} | {st['n']:,} | {st['rps']:,.1f} | "
                             f"{fmt_ms(st['p50'])} | {fmt_ms(st['p99'])} | {fmt_ms(st['max'])} | "
                             f"{len(st['failed'])} | {fmt_cores(st.get('others'))} |")
            L.append("")
            for r in self.reloads:
                st, w = r["steady"], r["window"]
                if st["p99"] and w["p99"]:
                    L.append(f"- {r['label']}: p99 in the reload window / steady p99 "
                             f"**{w['p99'] / st['p99']:.2f}x** (max {w['max'] / st['max']:.2f}x); "
                             f"version 2 first answered {r['switch_s']:.2f} s after the upload; "
                             f"requests sent after that and answered by v1: {r['late_v1']}; "
                             f"answers matching no version: {r['wrong']}")
        if self.ttfa:
            t = sorted(self.ttfa)
            med = statistics.median(t)
            L += ["", f"## Upload → first answer of the new version (CORTEX_MODEL_POLL_S={POLL_S}, "
                  f"worker manifest watch 1 s, c=1)", "",
                  "| repetitions | min | median | max | each |", "|---|---|---|---|---|",
                  f"| {len(t)} | {t[0]:.2f} s | {med:.2f} s | {t[-1]:.2f} s | "
                  f"{', '.join(f'{x:.2f}' for x in self.ttfa)} |", "",
                  f"Expected on average ≈ poll/2 + watch/2 + fetch + load = {POLL_S / 2:.1f} + 0.5 + "
                  f"fetch + load. With the default poll of 10 s the same path would take about "
                  f"{med - POLL_S / 2 + 5:.1f} s on average (median here − {POLL_S / 2:.1f} + 5; "
                  f"not measured), at worst about {t[-1] + 10 - POLL_S:.1f} s (slowest here + 10 − {POLL_S})."]
        L += ["", "## Problems seen", ""]
        L += [f"- {f}" for f in self.findings] if self.findings else [
            "- none (no failed request, no wrong answer)"]
        L += ["", f"Total run time {total_s:.0f} s.", ""]
        return "\n".join(L)


def environment_lines(args, cortex_src):
    la = os.getloadavg()
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    try:
        mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(cortex_src)))
    except OSError:
        mtime = "?"
    try:
        import _cortex_onnx
        ort = _cortex_onnx.version()
    except Exception as e:  # noqa: BLE001
        ort = f"? ({e})"
    return [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} CPUs, "
        f"load average at start {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}; nothing pinned",
        f"- build: {cortex_src} (modified {mtime}, run from a private copy; repo {git}); "
        f"ONNX Runtime {ort}",
        "- APIs: compute.cpu 1, processes_per_replica 1, threads_per_process 2 "
        "(1 intra-op thread); baseline sessions: intra_op_threads=1",
        f"- efficiency: baseline {args.base_secs}s per case, before and after the gateway runs; gateway: wrk -t1 -cC -d{args.gw_secs}s "
        f"--latency after a {args.warmup}s warm-up, one run per case",
        f"- live reload: {args.steady_secs}s steady, then {args.reload_secs}s with an upload "
        f"{args.pre_upload_secs}s in; upload → first answer: {args.ttfa_reps} repetitions",
        "- the machine is shared: compare ratios within this run, not absolute numbers across runs",
    ]


def run_in_cluster(bench, base, cortex_src, keep_tmp, make_cluster, prepare, steps):
    """The run every benchmark with a cluster shares; returns whether `steps` completed.

    Snapshots the binary, calls prepare(), starts make_cluster(base, binary) and a CpuSampler
    (bench.cpu), runs steps(cluster), and always cleans up: the sampler, the cluster (its logs
    on stderr when something failed) and `base` (kept on failure or with keep_tmp). An
    interruption or an error becomes one of bench.findings.
    """
    cluster, ok, failed = None, False, False
    try:
        cortex_bin = sb.snapshot_binary(cortex_src, Path(base) / "bin")
        prepare()
        cluster = make_cluster(base, cortex_bin)
        log("starting the cluster")
        cluster.up()
        bench.cpu = CpuSampler(cluster.roots).start()
        steps(cluster)
        ok = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        bench.findings.append(f"benchmark interrupted ({e}); the tables are partial")
    except Exception as e:  # noqa: BLE001 - report, clean up, exit non-zero
        log(f"FAILED: {e}")
        failed = True
        bench.findings.append(f"benchmark aborted: {e}")
    finally:
        if bench.cpu is not None:
            bench.cpu.stop()
        if cluster is not None:
            if not ok:
                sys.stderr.write(sb.tail_files(
                    sorted((cluster.cfg / "cluster" / "logs").rglob("*.log"))) + "\n")
            try:
                cluster.down()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup of the cluster failed: {e!r}")
        if keep_tmp or failed:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short durations (a smoke run, ~1 min)")
    ap.add_argument("--cortex-bin", default=str(ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, models)")
    args = ap.parse_args()
    if args.quick:
        args.base_secs, args.gw_secs, args.warmup = 1.0, 2, 1
        args.steady_secs, args.reload_secs, args.pre_upload_secs, args.ttfa_reps = 3, 4, 1, 2
    else:
        args.base_secs, args.gw_secs, args.warmup = 5.0, 10, 2
        args.steady_secs, args.reload_secs, args.pre_upload_secs, args.ttfa_reps = 10, 10, 2, 5

    if not shutil.which("wrk"):
        sys.exit("missing wrk; run CORTEX_INSTALL_BENCH=1 scripts/install-deps.sh")
    if not os.access(args.cortex_bin, os.X_OK):
        sys.exit(f"missing {args.cortex_bin}; build it with scripts/build.sh")
    try:
        import _cortex_onnx
        _cortex_onnx.version()
    except Exception as e:  # noqa: BLE001
        sys.exit(f"cannot use _cortex_onnx from {ROOT / 'build' / 'python'}: {e}")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t0 = time.time()
    base = tempfile.mkdtemp(prefix="cxmodels-", dir="/tmp")  # short: replica sockets live below
    cortex_src = args.cortex_bin
    src_mtime = os.path.getmtime(cortex_src)
    bench = Bench(args, base)
    env_lines = environment_lines(args, cortex_src)

    def prepare():
        log(f"temp dir {base}; exporting the models")
        bench.export()

    def steps(cluster):
        bench.resnet(cluster)
        bench.mlp(cluster)
        log(f"upload → first answer, {args.ttfa_reps} repetitions")
        bench.time_to_first_answer(cluster)

    ok = run_in_cluster(bench, base, cortex_src, args.keep_tmp, Cluster, prepare, steps)
    try:
        if os.path.getmtime(cortex_src) != src_mtime:
            bench.findings.append(f"{cortex_src} was rebuilt during the run; every number is of "
                                  f"the copy taken at the start")
    except OSError:
        pass
    report = bench.report(env_lines, time.time() - t0, ok)
    if args.out:
        Path(args.out).write_text(report)
    print(report, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
