#!/usr/bin/python3
"""How long the operator takes to answer while a replica is frozen (SIGSTOP).

A frozen replica answers no probe: an operator that probes on the thread that serves its REST
API makes every call wait for the probe's timeout. For each binary given (a baseline and a
candidate, in this one invocation), this starts a local cluster in a temp dir, deploys a no-op
API with one replica, then measures GET /healthz, GET /v1/apis and GET /v1/apis/<api> (N calls
each, spaced out so they sample every phase of the control loop) first with the replica running,
then with it frozen. Prints a markdown table
with the medians and the candidate/baseline ratios.

  /usr/bin/python3 bench/operator_responsiveness.py --baseline OLD_CORTEX --candidate build/src/apps/cortex
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

PREDICTOR = "class PythonPredictor:\n    def __init__(self, config):\n        pass\n\n" \
            "    def predict(self, payload):\n        return {'ok': True}\n"
CONFIG = "- name: frozen\n  kind: RealtimeAPI\n  predictor:\n    type: python\n" \
         "    path: predictor.py\n"


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, binary, root):
        self.binary = os.path.abspath(binary)
        self.root = root
        self.env = dict(os.environ, CORTEX_CLI_CONFIG_DIR=os.path.join(root, "cfg"),
                        NO_PROXY="127.0.0.1")
        self.op_port, self.gw_port = free_ports(2)

    def cli(self, *args, timeout=120):
        return subprocess.run([self.binary, *args], env=self.env, cwd=self.root, timeout=timeout,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)

    def up(self):
        p = self.cli("cluster", "up", "--operator-port", str(self.op_port), "--gateway-port",
                     str(self.gw_port))
        assert p.returncode == 0, p.stderr
        with open(os.path.join(self.root, "cfg", "cluster", "operator.token")) as f:
            self.token = f.read().strip()

    def call(self, path, timeout=30):
        req = urllib.request.Request(f"http://127.0.0.1:{self.op_port}{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return time.perf_counter() - start, body

    def deploy(self):
        project = os.path.join(self.root, "project")
        os.makedirs(project)
        for name, text in (("predictor.py", PREDICTOR), ("cortex.yaml", CONFIG)):
            with open(os.path.join(project, name), "w") as f:
                f.write(text)
        p = self.cli("deploy", project, "-y")
        assert p.returncode == 0, p.stderr
        deadline = time.time() + 60
        while time.time() < deadline:
            _, body = self.call("/v1/apis/frozen")
            api = json.loads(body)
            if api["status"] and api["status"]["status_code"] == "status_live":
                return api["replicas"][0]["pid"]
            time.sleep(0.2)
        raise RuntimeError("the api did not become live")

    def down(self):
        self.cli("cluster", "down", "-y", timeout=60)


def measure(cluster, n, spacing_s):
    """Median and worst of `n` calls per endpoint, one every `spacing_s` (calls made back to back
    would all land in the same gap between two control-loop passes)."""
    out = {}
    for path in ("/healthz", "/v1/apis", "/v1/apis/frozen"):
        times = []
        for _ in range(n):
            times.append(cluster.call(path)[0])
            time.sleep(spacing_s)
        out[path] = (statistics.median(times), max(times))
    # /healthz while another client keeps listing APIs: shows whether a waiting handler holds
    # up the thread that serves everyone else.
    stop = threading.Event()

    def lister():
        while not stop.is_set():
            cluster.call("/v1/apis")
    other = threading.Thread(target=lister, daemon=True)
    other.start()
    times = []
    for _ in range(n):
        times.append(cluster.call("/healthz")[0])
        time.sleep(spacing_s)
    stop.set()
    other.join(timeout=30)
    out["/healthz (while another client lists)"] = (statistics.median(times), max(times))
    return out


def run(binary, n, spacing_s):
    root = tempfile.mkdtemp(prefix="cortex-resp-")
    cluster = Cluster(binary, root)
    try:
        cluster.up()
        pid = cluster.deploy()
        running = measure(cluster, n, spacing_s)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(1.5)  # a few control-loop passes against the frozen replica
            frozen = measure(cluster, n, spacing_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        return running, frozen
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="the cortex binary to compare against")
    parser.add_argument("--candidate", default="build/src/apps/cortex")
    parser.add_argument("-n", type=int, default=20, help="calls per endpoint and state")
    parser.add_argument("--spacing", type=float, default=0.13, help="seconds between calls")
    args = parser.parse_args()
    results = {name: run(binary, args.n, args.spacing)
               for name, binary in (("baseline", args.baseline), ("candidate", args.candidate))}
    print(f"Operator latency over {args.n} calls per row, {args.spacing} s apart, with the API's "
          "one replica running or frozen by SIGSTOP (median / worst, ms)\n")
    print("| call | replica | baseline | candidate | candidate / baseline (median) |")
    print("|---|---|---|---|---|")
    for state, index in (("running", 0), ("frozen", 1)):
        for path in results["baseline"][index]:
            b_med, b_max = (x * 1000 for x in results["baseline"][index][path])
            c_med, c_max = (x * 1000 for x in results["candidate"][index][path])
            print(f"| GET {path} | {state} | {b_med:.2f} / {b_max:.1f} | {c_med:.2f} / "
                  f"{c_max:.1f} | {c_med / b_med:.3f} |")


if __name__ == "__main__":
    main()
