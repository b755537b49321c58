#!/usr/bin/python3
"""Batching benchmark: server-side batching and the Open Inference Protocol (KServe v2) endpoints.

    /usr/bin/python3 bench/batching_bench.py [--quick] [--out FILE] [--cortex-bin PATH]

On loopback, in a temp dir removed at the end: exports an MLP 784-512-512-10, a wide MLP
784-4096-4096-10 (80 MB of weights) and resnet18 (weights=None) as ONNX with a dynamic batch axis,
starts a local cluster and, per model, deploys two ONNXPredictor APIs (compute.cpu 1, 1 process x
2 threads, so 1 intra-op thread), one without and one with server_side_batching (MLPs 16 / 2ms,
ResNet18 8 / 5ms); then measures
  1. throughput and latency through the gateway with wrk, both APIs at each concurrency (MLP JSON
     and wide MLP raw float32 at c = 1, 8, 32; ResNet18 raw float32 at c = 1, 8), and each run's
     average batch size;
  2. wire formats for one 224x224x3 FP32 input to the ResNet18 API without batching: Cortex JSON,
     raw bytes, v2 JSON and v2 binary tensors (bytes, client CPU, replica CPU per request).
Prints a markdown report (and writes it to --out). `--quick`: MLP only, short runs (~30-60 s);
section 2 then uses the MLP API and its 1x784 input.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import models_bench as mb  # noqa: E402 - cluster, predictor, wrk Lua, CPU accounting
import serving_bench as sb  # noqa: E402 - process helpers, the binary snapshot, wrk parsing

EXPORT_PY = r'''
import os, sys
import torch, torchvision
torch.set_num_threads(1)
out, with_resnet = sys.argv[1], sys.argv[2] == "1"
torch.manual_seed(1)
mlp = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                          torch.nn.ReLU(), torch.nn.Linear(512, 10)).eval()
wide = torch.nn.Sequential(torch.nn.Linear(784, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096),
                           torch.nn.ReLU(), torch.nn.Linear(4096, 10)).eval()
nets = [("mlp", mlp, torch.zeros(1, 784)), ("mlp-wide", wide, torch.zeros(1, 784))]
if with_resnet:
    nets.append(("resnet18", torchvision.models.resnet18(weights=None).eval(),
                 torch.zeros(1, 3, 224, 224)))
for name, net, x in nets:
    os.makedirs(f"{out}/{name}/1")
    torch.onnx.export(net, x, f"{out}/{name}/1/{name}.onnx", opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
'''

# models_bench's body/content-type script, plus the p95 that the shared summary lacks.
WRK_LUA = mb.WRK_LUA + """
local summary_done = done
done = function(summary, latency, requests)
  summary_done(summary, latency, requests)
  io.write(string.format("BENCHP95 %%d\\n", latency:percentile(95)))
end
"""

MODELS = {  # key: (label, batching, concurrencies, body form, content type, model input shape)
    "mlp": ("MLP 784-512-512-10", (16, "2ms"), (1, 8, 32), "JSON", "application/json", [1, 784]),
    # 80 MB of weights: one request reads them all, a batch of 16 shares the reads.
    "mlp-wide": ("MLP 784-4096-4096-10", (16, "2ms"), (1, 8, 32), "raw float32",
                 "application/octet-stream", [1, 784]),
    "resnet18": ("ResNet18", (8, "5ms"), (1, 8), "raw float32", "application/octet-stream",
                 [1, 3, 224, 224]),
}


def log(msg):
    print(f"[batching-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Wrk(sb.Wrk):
    def cmd(self, url, conns, secs):  # a 60 s timeout (wrk's 2 s would cut slow ResNet queues)
        c = super().cmd(url, conns, secs)
        return c[:-1] + ["--timeout", "60s", c[-1]]


class Cluster(mb.Cluster):
    def deploy_api(self, name, model_path, batching, shape, timeout=180):
        proj = self.base / "projects" / name
        proj.mkdir(parents=True)
        (proj / "predictor.py").write_text(mb.PREDICTOR_PY)
        yaml = (f"- name: {name}\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n"
                f"    path: predictor.py\n    model_path: {model_path}\n"
                f"    processes_per_replica: 1\n    threads_per_process: 2\n"
                f"    config: {json.dumps({'shape': shape})}\n")
        if batching:
            yaml += (f"    server_side_batching:\n      max_batch_size: {batching[0]}\n"
                     f"      batch_interval: {batching[1]}\n")
        (proj / "cortex.yaml").write_text(yaml + "  compute:\n    cpu: 1\n")
        self.cli("deploy", proj, "-y")
        end, last = time.time() + timeout, None
        while time.time() < end:
            try:
                st = self.get(name)["status"]
                if st["status_code"] == "status_live" and st["replica_counts"]["updated"]["ready"]:
                    self.remember()
                    return
                last = st
            except (RuntimeError, ValueError, KeyError, TypeError) as e:
                last = repr(e)
            time.sleep(0.25)
        raise RuntimeError(f"{name} did not become live in {timeout}s: {last}\n"
                           + sb.tail_files(sorted((self.cfg / "cluster" / "logs").rglob("*.log"))))

    def get(self, name):
        data = json.loads(self.cli("get", name, "-o", "json").stdout)
        return data[0] if isinstance(data, list) else data

    def batch_counts(self, name):
        """(batches, batched requests) so far, from metrics.batch_stats; None without batching."""
        bs = (self.get(name).get("metrics") or {}).get("batch_stats")
        return (bs["batches"], bs["batched_requests"]) if bs else None

    def replica_pids(self, name):
        """The API's replica fronts (`cortex replica --id ID`) and their worker processes."""
        ids = [r["id"] for r in self.get(name).get("replicas") or []]
        every = {p for kids in sb.proc_children().values() for p in kids}
        fronts = [p for p in every if " replica " in sb.cmdline(p)
                  and any(f"--id {i} " in sb.cmdline(p) for i in ids)]
        return sb.tree(fronts)


def exchange(conn, method, path, body=None, headers=None):
    """One request on a keep-alive http.client connection; (response, body), 200 or an error."""
    conn.request(method, path, body, headers or {})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {r.status} {data[:300]!r}")
    return r, data


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


class Bench:
    def __init__(self, args, base):
        self.args, self.base = args, Path(base)
        self.runs = {}       # key -> [row], one row per (api, c)
        self.wire = None     # {"model", "n", "shape", "rows"}
        self.findings = []
        self.cpu = None

    def export(self, with_resnet):
        t0 = time.time()
        r = subprocess.run([mb.PY, "-c", EXPORT_PY, str(self.base / "models"),
                            "1" if with_resnet else "0"], capture_output=True, text=True,
                           timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
        if r.returncode != 0:
            raise RuntimeError(f"model export failed:\n{r.stdout}{r.stderr[-3000:]}")
        log(f"models exported in {time.time() - t0:.1f}s")

    # -- throughput and latency, with and without batching
    def throughput(self, cluster, key):
        label, batching, conns, form, ctype, shape = MODELS[key]
        a = self.args
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        body = self.base / f"{key}.body"
        body.write_bytes(x.tobytes() if ctype == "application/octet-stream"
                         else json.dumps({"input": x.tolist()}).encode())
        apis = {f"{key}-plain": None, f"{key}-batched": batching}
        answers = {}
        for name, b in apis.items():
            log(f"{label}: deploying {name} (batching {b})")
            cluster.deploy_api(name, self.base / "models" / key, b, shape)

            def keep(j, name=name):
                answers[name] = np.asarray(j["output"], dtype=np.float32)
                assert answers[name].shape[0] == 1 and np.isfinite(answers[name]).all()
            mb.wait_answer(cluster.gw_port, f"/{name}", body.read_bytes(), ctype, keep)
        if not np.allclose(*answers.values(), atol=1e-4, rtol=1e-3):
            self.findings.append(f"{label}: the batched and unbatched APIs answer differently")
        lua = self.base / f"{key}.lua"
        lua.write_text(WRK_LUA % {"body": body, "ctype": ctype})
        wrk = Wrk(lua, None, 0)
        rows = self.runs.setdefault(key, [])
        for c in conns:
            for name, b in apis.items():  # interleaved: both see about the same background load
                url = f"http://127.0.0.1:{cluster.gw_port}/{name}"
                wrk.run(url, c, a.warmup)
                before, t_a = cluster.batch_counts(name), time.monotonic()
                r = wrk.run(url, c, a.secs)
                t_b, after = time.monotonic(), cluster.batch_counts(name)
                m = re.search(r"^BENCHP95 (\d+)$", r["raw"], re.M)
                r["p95"] = int(m.group(1)) / 1000.0 if m else None
                r["errors"] = (r.get("non2xx") or 0) + sum((r.get("sock") or {}).values())
                r["others"] = self.cpu.others(t_a, t_b)
                r["avg_batch"] = ((after[1] - before[1]) / (after[0] - before[0])
                                  if before and after and after[0] > before[0] else None)
                r.update(api=name, batched=b is not None, c=c)
                rows.append(r)
                log(f"  {name} c={c}: {r['rps']:,.1f} req/s, p50 {sb.fmt_ms(r['p50'])}, p95 "
                    f"{mb.fmt_ms(r['p95'])}, p99 {sb.fmt_ms(r['p99'])}, errors {r['errors']}, "
                    f"avg batch {r['avg_batch'] and round(r['avg_batch'], 2)}")
                if r["errors"]:
                    self.findings.append(f"{name} c={c}: {r['errors']} failed requests "
                                         f"(non-2xx {r.get('non2xx')}, socket {r.get('sock')})")
        return apis

    # -- wire formats: Cortex JSON, raw bytes, v2 JSON, v2 binary
    def wire_formats(self, cluster, api, shape):
        n, conn = self.args.n, http.client.HTTPConnection("127.0.0.1", cluster.gw_port, timeout=120)
        meta = json.loads(exchange(conn, "GET", f"/v2/models/{api}")[1])
        inp, out_name = meta["inputs"][0], meta["outputs"][0]["name"]
        if [d if d > 0 else 1 for d in inp["shape"]] != shape:
            raise RuntimeError(f"{api} metadata gives input shape {inp['shape']}, not {shape}")
        src = [224, 224, 3] if shape == [1, 3, 224, 224] else shape  # the image, as an app has it
        img = np.random.default_rng(2).random(src, dtype=np.float32)
        v2, js, octets = f"/v2/models/{api}/infer", "application/json", "application/octet-stream"

        def v2_binary():
            data = img.reshape(shape).tobytes()
            head = json.dumps({"inputs": [{"name": inp["name"], "shape": shape, "datatype": "FP32",
                                           "parameters": {"binary_data_size": len(data)}}],
                               "outputs": [{"name": out_name, "parameters": {"binary_data": True}}]
                               }).encode()
            return v2, head + data, {"Content-Type": octets,
                                     "Inference-Header-Content-Length": str(len(head))}

        def decode_cortex(_r, data):
            return np.asarray(json.loads(data)["output"], dtype=np.float32)

        def decode_v2(r, data):
            k = int(r.getheader("Inference-Header-Content-Length") or len(data))
            o = json.loads(data[:k])["outputs"][0]
            if "data" in o:
                return np.asarray(o["data"], dtype=np.float32).reshape(o["shape"])
            return np.frombuffer(data[k:k + o["parameters"]["binary_data_size"]],
                                 dtype="<f4").reshape(o["shape"])

        forms = [  # (label, encode() -> (path, body, headers), decode(response, body) -> array)
            ("Cortex JSON (nested lists)", lambda: (f"/{api}", json.dumps(
                {"input": img.reshape(shape).tolist()}).encode(), {"Content-Type": js}), decode_cortex),
            ("Cortex raw float32 bytes (JSON answer)", lambda: (
                f"/{api}", img.reshape(shape).tobytes(), {"Content-Type": octets}), decode_cortex),
            ("v2 JSON tensors", lambda: (v2, json.dumps({"inputs": [
                {"name": inp["name"], "shape": shape, "datatype": "FP32",
                 "data": img.ravel().tolist()}]}).encode(), {"Content-Type": js}), decode_v2),
            ("v2 binary tensors (binary output)", v2_binary, decode_v2)]
        pids = cluster.replica_pids(api)
        if len(pids) < 2:
            self.findings.append(f"{api}: found only the processes {pids} for its replica; the "
                                 f"replica CPU column may miss its worker")
        rows, ref = [], None
        for label, encode, decode in forms:
            log(f"wire formats: {label}, {n} requests")
            cpu = wall = nbytes = 0.0
            for i in range(n + 2):  # the first two warm the path and are not counted
                if i == 2:
                    j0 = sum(mb._proc_jiffies(p) for p in pids)
                c0 = time.process_time()
                path, body, headers = encode()
                c1, t0 = time.process_time(), time.perf_counter()
                r, data = exchange(conn, "POST", path, body, headers)
                t1, c2 = time.perf_counter(), time.process_time()
                y = decode(r, data)
                if i >= 2:
                    cpu += (c1 - c0) + (time.process_time() - c2)
                    wall, nbytes = wall + (t1 - t0), nbytes + len(body) + len(data)
            j1 = sum(mb._proc_jiffies(p) for p in pids)
            ref = y if ref is None else ref
            if y.shape != ref.shape or not np.allclose(y, ref, atol=1e-4, rtol=1e-3):
                self.findings.append(f"wire formats: {label} answers differently from {forms[0][0]}")
            rows.append({"form": label, "bytes": nbytes / n, "req_bytes": len(body),
                         "client_ms": cpu / n * 1e3, "server_ms": (j1 - j0) / mb.HZ / n * 1e3,
                         "wall_ms": wall / n * 1e3})
        conn.close()
        self.wire = {"api": api, "n": n, "shape": shape, "src": src, "rows": rows,
                     "input": inp["name"], "pids": len(pids)}


    # -- report
    def report(self, env_lines, total_s, ok):
        a = self.args
        L = ["# Batching benchmark: server-side batching and the v2 protocol" +
             ("" if ok else " (INCOMPLETE)"), ""] + env_lines + [
            "- APIs: ONNXPredictor, compute.cpu 1, processes_per_replica 1, threads_per_process 2 "
            "(1 intra-op thread); batching: " + "; ".join(
                f"{MODELS[k][0]} max_batch_size {MODELS[k][1][0]}, batch_interval {MODELS[k][1][1]}"
                for k in self.runs),
            f"- throughput: wrk -t1 -cC -d{a.secs}s --latency --timeout 60s after a {a.warmup}s "
            f"warm-up, one run per case, the two APIs interleaved at each c",
            "- the machine is shared: compare ratios within this run, not absolute numbers across runs",
            ""]
        for key, rows in self.runs.items():
            label, _, conns, form, *_ = MODELS[key]
            L += [f"## {label}: throughput and latency through the gateway ({form} body)", "",
                  "| API | c | req/s | p50 | p95 | p99 | errors | avg batch size | other jobs' CPU |",
                  "|---|---|---|---|---|---|---|---|---|"]
            for r in rows:
                ab = "-" if r["avg_batch"] is None else f"{r['avg_batch']:.2f}"
                L.append(f"| {r['api']} | {r['c']} | {r['rps']:,.1f} | {sb.fmt_ms(r['p50'])} | "
                         f"{mb.fmt_ms(r['p95'])} | {sb.fmt_ms(r['p99'])} | {r['errors']} | {ab} | "
                         f"{mb.fmt_cores(r['others'])} |")
            plain = [r for r in rows if not r["batched"]]
            batched = [r for r in rows if r["batched"]]
            L += ["", "| c | req/s batched / unbatched | p50 batched / unbatched | "
                  "p95 batched / unbatched |", "|---|---|---|---|"]
            for c in conns:
                p = next((r for r in plain if r["c"] == c), None)
                b = next((r for r in batched if r["c"] == c), None)
                if p and b:
                    L.append(f"| {c} | **{ratio(b['rps'], p['rps'])}** | {ratio(b['p50'], p['p50'])} | "
                             f"{ratio(b['p95'], p['p95'])} |")
            if plain and batched:
                best = max(plain, key=lambda r: r["rps"])
                fit = [r for r in batched if r["p95"] is not None and best["p95"] is not None
                       and r["p95"] <= best["p95"]]
                L += ["", f"Throughput at equal p95: the unbatched API's best throughput is "
                      f"{best['rps']:,.1f} req/s (c={best['c']}), with p95 {mb.fmt_ms(best['p95'])}. "
                      f"Among the batched runs whose p95 is at most that, the highest throughput is "]
                if fit:
                    top = max(fit, key=lambda r: r["rps"])
                    L[-1] += (f"{top['rps']:,.1f} req/s (c={top['c']}, p95 {mb.fmt_ms(top['p95'])}): "
                              f"**{ratio(top['rps'], best['rps'])}** the unbatched best.")
                else:
                    L[-1] += "undefined: no batched run had a p95 that low."
            L.append("")
        if self.wire:
            w = self.wire
            L += [f"## Wire formats: one {'x'.join(map(str, w['src']))} FP32 input to "
                  f"{w['api']} (sent as the model's {w['shape']}, input `{w['input']}`)", "",
                  "| form | request body | bytes on the wire / request | client encode+decode CPU | "
                  "replica CPU | wall time |", "|---|---|---|---|---|---|"]
            res = 1e3 / mb.HZ / w["n"]  # the replica CPU's resolution per request
            for r in w["rows"]:
                srv = f"{r['server_ms']:.1f} ms" if r["server_ms"] else f"< {res:.1f} ms"
                L.append(f"| {r['form']} | {r['req_bytes']:,} B | {r['bytes']:,.0f} B | "
                         f"{r['client_ms']:.2f} ms | {srv} | {r['wall_ms']:.1f} ms |")
            b = w["rows"][-1]
            L += [""] + [f"- {r['form']} / v2 binary: bytes {ratio(r['bytes'], b['bytes'])}, client "
                         f"CPU {ratio(r['client_ms'], b['client_ms'])}, replica CPU "
                         f"{ratio(r['server_ms'], b['server_ms'])}" for r in w["rows"][:-1]]
            L.append("")
        L += ["## How measured", "",
              "Throughput: wrk (one thread, C keep-alive connections, closed loop) posts the same body "
              "to the gateway; p50/p95/p99 are wrk's latency percentiles, errors are non-2xx answers "
              "plus socket errors. The average batch size of a run is the growth of "
              "`metrics.batch_stats.batched_requests` over that of `batches` (`cortex get API -o json`) "
              "across the measured run (the warm-up excluded). Throughput at equal p95: take the "
              "unbatched run with the highest req/s and its p95; among the batched runs (every c) "
              "whose p95 is <= that p95, take the highest req/s; the ratio is that over the unbatched "
              "best. Other jobs' CPU: cores used by processes that are not this benchmark's (of "
              f"{os.cpu_count()}). Wire formats: {self.args.n} sequential requests per form after 2 "
              "unmeasured ones, one keep-alive http.client connection through the gateway, to the API "
              "without batching; bytes are request body + response body (no HTTP headers); client CPU "
              "is time.process_time of this process around building the body (json.dumps of the "
              "nested list, or the header + raw bytes) and around parsing the answer into a float32 "
              "array; replica CPU is the growth of utime+stime (/proc/PID/stat) of the replica's front "
              f"and worker processes ({self.wire['pids'] if self.wire else '?'} processes) over the "
              f"measured requests, divided by their number (resolution 1/{mb.HZ} s in total). Every "
              "form's answer is checked against the first form's.", "", "## Problems seen", ""]
        L += [f"- {f}" for f in self.findings] or ["- none (no failed request, no wrong answer)"]
        L += ["", f"Total run time {total_s:.0f} s.", ""]
        return "\n".join(L)


class _AnyArgs:  # models_bench.environment_lines formats its own settings; we keep its first lines
    def __getattr__(self, _name):
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: MLP only, short runs")
    ap.add_argument("--cortex-bin", default=str(ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, models)")
    args = ap.parse_args()
    args.secs, args.warmup, args.n = (3, 1, 5) if args.quick else (10, 2, 30)
    if not shutil.which("wrk"):
        sys.exit("missing wrk; run CORTEX_INSTALL_BENCH=1 scripts/install-deps.sh")
    if not os.access(args.cortex_bin, os.X_OK):
        sys.exit(f"missing {args.cortex_bin}; build it with scripts/build.sh")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t0 = time.time()
    base = tempfile.mkdtemp(prefix="cxbatch-", dir="/tmp")  # short: replica sockets live below
    env_lines = mb.environment_lines(_AnyArgs(), args.cortex_bin)[:2]
    bench = Bench(args, base)
    keys = ["mlp"] if args.quick else ["mlp", "mlp-wide", "resnet18"]

    def prepare():
        log(f"temp dir {base}; exporting {', '.join(keys)}")
        bench.export("resnet18" in keys)

    def steps(cluster):
        for key in keys:
            apis = bench.throughput(cluster, key)
            if key == keys[-1]:  # ResNet18 (MLP in --quick)
                bench.wire_formats(cluster, f"{key}-plain", MODELS[key][5])
            for name in apis:
                cluster.delete(name)  # frees the cpu for the next pair

    ok = mb.run_in_cluster(bench, base, args.cortex_bin, args.keep_tmp, Cluster, prepare, steps)
    report = bench.report(env_lines, time.time() - t0, ok)
    if args.out:
        Path(args.out).write_text(report)
    print(report, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
