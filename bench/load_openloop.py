#!/usr/bin/python3
"""Open-loop load through the gateway: a constant request rate for a fixed time, no matter how
the server keeps up (wrk2-style scheduling, by our own generator `cortex-loadgen`, built with the
project; see bench/loadgen/loadgen.cc).

    /usr/bin/python3 bench/load_openloop.py [--rate 10000] [--duration 60] [--processes 2]
                                            [--connections 64]

Starts our local cluster in a temp dir, deploys the no-op Python predictor of serving_bench.py,
runs cortex-loadgen against the gateway (unpinned: servers and generator share the machine's
CPUs), and reports the achieved rate, errors, p50/p99/p999 latency (counted from when each
request was due) and the servers' CPU per request (gateway, front, workers; exact from
/proc/<pid>/task/*/schedstat, split into user and kernel from the ticks of /proc/<pid>/stat).
Writes bench/results/openloop-<timestamp>.md.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving_bench as sb  # noqa: E402
from profile_path import cpu_times, git_rev, run_ns, write_report  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--cortex-bin", default=str(sb.ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--loadgen", default=str(sb.ROOT / "build" / "src" / "apps" / "cortex-loadgen"))
    ap.add_argument("--out-dir", default=str(sb.ROOT / "bench" / "results"))
    args = ap.parse_args()
    if not os.access(args.loadgen, os.X_OK):
        sys.exit(f"missing {args.loadgen}; build it with scripts/build.sh")

    base = tempfile.mkdtemp(prefix="cxopen-", dir="/tmp")
    ours = sb.OurStack(base, sb.snapshot_binary(args.cortex_bin, Path(base) / "bin"),
                       sb.Pinner(""))
    try:
        ours.up()
        ours.deploy(args.processes, 1)
        gateway = ours.roots()[1]
        front = ours.replica["pid"]
        procs = [("gateway", gateway), ("front", front)] + [
            (f"worker {i}", w) for i, w in enumerate(p for p in sb.tree([front]) if p != front)]
        port = int(ours.url.split(":")[2].split("/")[0])
        sb.log(f"{args.rate:.0f} req/s for {args.duration:.0f} s, {args.connections} connections")
        before = {name: (cpu_times(pid), run_ns(pid)) for name, pid in procs}
        r = subprocess.run([args.loadgen, "--port", str(port), "--path", "/noop", "--rate",
                            str(args.rate), "--duration", str(args.duration), "--connections",
                            str(args.connections)], capture_output=True, text=True,
                           timeout=args.duration + 60)
        after = {name: (cpu_times(pid), run_ns(pid)) for name, pid in procs}
        if r.returncode != 0:
            raise RuntimeError(f"cortex-loadgen failed ({r.returncode}): {r.stderr}")
        result = json.loads(r.stdout)
        health = ours.healthy()
    finally:
        try:
            ours.down()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    n = max(result["answered"], 1)
    cpu_rows = []
    total = 0.0
    for name, _ in procs:
        (t0, ns0), (t1, ns1) = before[name], after[name]
        u = (t1[0] - t0[0]) * 1e6 / n
        s = (t1[1] - t0[1]) * 1e6 / n
        exact = (ns1 - ns0) / 1e3 / n
        total += exact
        cpu_rows.append(f"| {name} | {exact:.1f} | {u:.1f} + {s:.1f} |")
    lines = [
        f"# Open-loop load through the gateway ({datetime.datetime.now().isoformat(timespec='seconds')})",
        "",
        f"- build: {args.cortex_bin} (repo {git_rev()}); generator: cortex-loadgen (constant rate, "
        f"latency from each request's due time), {args.connections} keep-alive connections",
        f"- no-op Python predictor, processes_per_replica {args.processes}; unpinned on "
        f"{os.cpu_count()} CPUs shared by the servers and the generator",
        "",
        "| target req/s | achieved req/s | seconds | answered | non-2xx | errors | left unsent "
        "| p50 | p99 | p99.9 | max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {result['rate_target']:,.0f} | {result['rate_achieved']:,.0f} | "
        f"{result['duration_s']:.1f} | {result['answered']:,} | {result['non_2xx']} | "
        f"{result['errors']} | {result['late']} | {sb.fmt_ms(result['p50_us'] / 1000)} | "
        f"{sb.fmt_ms(result['p99_us'] / 1000)} | {sb.fmt_ms(result['p999_us'] / 1000)} | "
        f"{sb.fmt_ms(result['max_us'] / 1000)} |",
        "",
        "Server CPU per request (µs):",
        "",
        "| process | exact (scheduler) | ticks: user + kernel |", "|---|---|---|", *cpu_rows,
        f"| all | {total:.1f} | |",
        "",
        f"Health after the run: {health or 'all processes up, no replica restarted'}.",
    ]
    write_report(args.out_dir, "openloop", "\n".join(lines) + "\n")
    ok = result["errors"] == 0 and result["non_2xx"] == 0 and result["late"] == 0 and not health
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
