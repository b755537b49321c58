"""A/B of the servers' scheduling policy on one cluster: SCHED_OTHER against SCHED_BATCH.

Run with Debian's interpreter (root, for chrt on every thread):

    /usr/bin/python3 bench/sched_ab.py [--processes 1] [--rounds 4] [--duration 4]

It starts our local cluster once, deploys the no-op predictor of `serving_bench.py`, pins every
server thread to CPU 0 and wrk to CPU 1 (the gateway runs 1 thread, as in `serving_bench.py`;
`--server-cpus 0-1 --client-cpus 0-1 --gateway-threads 2` for its unpinned case),
then alternates the policy of every data-plane thread (`chrt -a`; the operator keeps the
default, as in the shipped build), in ABBA order, and, under each, runs wrk -c32
through the gateway and straight to the replica front, and wrk -c1 through the gateway.
Alternating on one cluster keeps the machine's drift out of the comparison. Prints each round
and the medians, and writes them as a Markdown table to `--out` (by default
bench/results/sched-ab-<date>-<processes>p.md).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving_bench as sb  # noqa: E402


def set_policy(pids, policy):
    for pid in pids:
        subprocess.run(["chrt", "-b" if policy == "batch" else "-o", "-a", "-p", "0", str(pid)],
                       check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--gateway-threads", type=int, default=1)
    ap.add_argument("--cortex-bin", default=str(sb.ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--out", help="the Markdown report (default bench/results/sched-ab-...)")
    args = ap.parse_args()
    out = Path(args.out or sb.ROOT / "bench" / "results" /
               f"sched-ab-{time.strftime('%Y%m%d')}-{args.processes}p.md")
    for tool in ("wrk", "chrt", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}")
    os.environ["CORTEX_GATEWAY_THREADS"] = str(args.gateway_threads)
    base = tempfile.mkdtemp(prefix="cxsched-", dir="/tmp")
    results = {"other": [], "batch": []}
    try:
        lua = Path(base) / "post.lua"
        lua.write_text(sb.POST_LUA)
        wrk = sb.Wrk(lua, args.client_cpus, 0)
        pinner = sb.Pinner(args.server_cpus)
        ours = sb.OurStack(base, sb.snapshot_binary(args.cortex_bin, Path(base) / "bin"), pinner)
        try:
            ours.up()
            ours.deploy(args.processes, 1)
            pinner.pin(ours.pids())
            wrk.run(ours.url, 32, 2)  # warm-up
            for i in range(args.rounds):
                # ABBA: each policy runs first in every other round.
                for policy in ("other", "batch") if i % 2 == 0 else ("batch", "other"):
                    # The data plane only, as shipped: the operator keeps the default policy.
                    operator_pid = ours.roots()[0]
                    set_policy([p for p in ours.pids() if p != operator_pid], policy)
                    g = wrk.run(ours.url, 32, args.duration)["rps"]
                    d = wrk.run(ours.direct_url, 32, args.duration)["rps"]
                    c1 = wrk.run(ours.url, 1, args.duration)["p50"]
                    results[policy].append((g, d, c1))
                    print(f"round {i + 1} {policy}: gateway {g:,.0f} req/s, front alone {d:,.0f} "
                          f"req/s, c=1 p50 {sb.fmt_ms(c1)}", flush=True)
        finally:
            ours.down()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for policy, rows in results.items():
        if rows:
            print(f"median {policy}: gateway {statistics.median(r[0] for r in rows):,.0f} req/s, "
                  f"front alone {statistics.median(r[1] for r in rows):,.0f} req/s, c=1 p50 "
                  f"{sb.fmt_ms(statistics.median(r[2] for r in rows))}")
    write_report(out, args, results)
    print(f"wrote {out}")


def write_report(out, args, results):
    lines = [f"# SCHED_OTHER against SCHED_BATCH, {time.strftime('%Y-%m-%d %H:%M')}", "",
             f"`bench/sched_ab.py --processes {args.processes} --rounds {args.rounds} "
             f"--duration {args.duration} --server-cpus {args.server_cpus} --client-cpus "
             f"{args.client_cpus} --gateway-threads {args.gateway_threads}`, on "
             f"{os.cpu_count()} CPUs; rounds in ABBA order, wrk -c32 (-c1 for the latency).", "",
             "| round | policy | through the gateway | front alone | c=1 p50 |",
             "|---|---|---|---|---|"]
    for policy, rows in results.items():
        for i, (g, d, c1) in enumerate(rows):
            lines.append(f"| {i + 1} | {policy} | {g:,.0f} req/s | {d:,.0f} req/s | "
                         f"{sb.fmt_ms(c1)} |")
    for policy, rows in results.items():
        if rows:
            lines.append(f"| median | {policy} | {statistics.median(r[0] for r in rows):,.0f} "
                         f"req/s | {statistics.median(r[1] for r in rows):,.0f} req/s | "
                         f"{sb.fmt_ms(statistics.median(r[2] for r in rows))} |")
    if results["other"] and results["batch"]:
        ratio = [statistics.median(r[k] for r in results["batch"]) /
                 statistics.median(r[k] for r in results["other"]) for k in range(3)]
        lines += ["", f"batch / other (medians): gateway {ratio[0]:.3f}, front alone "
                      f"{ratio[1]:.3f}, c=1 p50 {ratio[2]:.3f}."]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
