#!/usr/bin/python3
"""Where a request's time goes on our serving path: CPU, syscalls and hot symbols per process.

Run with Debian's interpreter, as root or with perf allowed (`perf_event_paranoid` ≤ 1 for the
kernel symbols):

    /usr/bin/python3 bench/profile_path.py [--duration 5] [--connections 32] [--processes 1]

One invocation starts our local cluster, deploys the no-op predictor of `serving_bench.py`, pins
every server process to one CPU and wrk to the other (as `serving_bench.py` does), and for each
path (through the gateway, and straight to the replica front) runs wrk closed-loop while it
measures, for the gateway, the front and each Python worker:

  * CPU per request: exact from the scheduler (`/proc/<pid>/task/*/schedstat`), split into user
    and kernel from the ticks of `/proc/<pid>/stat` (all threads, over the wrk run);
  * syscalls per request, by kind, and context switches (`perf stat` on the tracepoints);
  * the hottest symbols (`perf record`, user and kernel, on a second run of the same length).

It prints a markdown report and writes it to bench/results/profile-<timestamp>.md.
"""

import argparse
import datetime
import os
import signal
import subprocess
import sys
import tempfile
import time
import shutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving_bench as sb  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def write_report(out_dir, prefix, report):
    """Prints `report` and writes it to OUT_DIR/PREFIX-<timestamp>.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{prefix}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(report)
    print(report)
    sb.log(f"wrote {path}")


def git_rev():
    r = subprocess.run(["git", "-C", str(sb.ROOT), "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


def cpu_times(pid):
    """(user, system) seconds of every thread of pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def run_ns(pid):
    """Nanoseconds every live thread of pid has run so far (the scheduler's own count, exact where
    the 10 ms ticks of /proc/<pid>/stat only sample; threads that ended are not counted)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpus_busy(cpus):
    """(busy, total) jiffies of the given CPUs so far, from /proc/stat (iowait counts as idle)."""
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            v = [int(x) for x in vals]
            total += sum(v[:8])
            busy += sum(v[:8]) - v[3] - v[4]
    return busy, total


def start_perf_stat(pid, out):
    kinds = ("epoll_wait", "epoll_ctl", "recvmsg", "sendmsg", "recvfrom", "sendto", "read",
             "write", "writev", "timerfd_settime", "accept4")
    events = ",".join(["raw_syscalls:sys_enter", "context-switches"] +
                      [f"syscalls:sys_enter_{k}" for k in kinds])
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(out), "-e", events, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_perf_stat(path):
    counts = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split(",")
        if len(parts) < 3 or not parts[0].strip().isdigit():
            continue
        counts[parts[2]] = int(parts[0])
    return counts


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()


def top_symbols(data, n):
    r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort",
                        "dso,symbol", "--percent-limit", "0.7", "-g", "none"],
                       capture_output=True, text=True, timeout=300)
    rows = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line.split()[0]:
            continue
        parts = line.split(None, 2)
        if len(parts) == 3:
            rows.append((parts[0], parts[1], parts[2].replace("[k] ", "k ").replace("[.] ", "")))
        if len(rows) >= n:
            break
    return rows


def dso_shares(data):
    r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort",
                        "dso", "-g", "none"], capture_output=True, text=True, timeout=300)
    out = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%") and not line.startswith("#"):
            out.append((parts[0], parts[1]))
    return out[:6]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--symbols", type=int, default=14, help="hot symbols shown per process")
    ap.add_argument("--gateway-threads", type=int, default=1)
    ap.add_argument("--sched-batch", action="store_true",
                    help="run every server thread under SCHED_BATCH (no wakeup preemption)")
    ap.add_argument("--cortex-bin", default=str(sb.ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--out-dir", default=str(sb.ROOT / "bench" / "results"))
    args = ap.parse_args()
    for tool in ("wrk", "perf", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}")

    os.environ["CORTEX_GATEWAY_THREADS"] = str(args.gateway_threads)
    base = tempfile.mkdtemp(prefix="cxprof-", dir="/tmp")
    cortex_bin = sb.snapshot_binary(args.cortex_bin, Path(base) / "bin")
    lua = Path(base) / "post.lua"
    lua.write_text(sb.POST_LUA)
    # No warm-up inside each run: the CPU is read around the measured run alone (a warm-up inside
    # it counted 6 s of work against 5 s of requests before 2026-12-03, 20 % too much per request).
    wrk = sb.Wrk(lua, args.client_cpus, 0)
    pinner = sb.Pinner(args.server_cpus)
    ours = sb.OurStack(base, cortex_bin, pinner)
    lines = [f"# Serving path profile ({datetime.datetime.now().isoformat(timespec='seconds')})", "",
             f"- build: {args.cortex_bin} (repo {git_rev()})",
             f"- wrk -t1 -c{args.connections} -d{args.duration}s, no-op Python predictor, "
             f"processes_per_replica {args.processes}; servers on CPU {args.server_cpus}, "
             f"wrk on CPU {args.client_cpus}" + ("; servers under SCHED_BATCH" if args.sched_batch else ""),
             f"- gateway threads {args.gateway_threads}; CPU on an untraced run, exact from the "
             "scheduler (/proc/<pid>/task/*/schedstat) and split into user and kernel from the 10 ms "
             "ticks of /proc/<pid>/stat; syscalls and context switches from perf stat tracepoints on a second "
             "run; symbols from perf record -F 2999 on a third",
             ""]
    try:
        ours.up()
        ours.deploy(args.processes, 1)
        gateway_pid = ours.roots()[1]
        front_pid = ours.replica["pid"]
        workers = [p for p in sb.tree([front_pid]) if p != front_pid]
        pinner.pin(ours.pids())
        if args.sched_batch:
            for pid in ours.pids():
                subprocess.run(["chrt", "-b", "-a", "-p", "0", str(pid)], check=True,
                               stdout=subprocess.DEVNULL)
        procs = [("gateway", gateway_pid), ("front", front_pid)] + [
            (f"worker {i}", w) for i, w in enumerate(workers)]
        for path, url, involved in (("gateway → front → worker", ours.url, procs),
                                    ("front → worker", ours.direct_url, procs[1:])):
            sb.log(f"{path}: measuring")
            wrk.run(url, args.connections, 2)  # warm-up
            # CPU on an untraced run; syscalls counted on a second one (tracing slows it).
            server_cpus = set(sb.cpu_list(args.server_cpus))
            busy0 = cpus_busy(server_cpus)
            before = {name: (cpu_times(pid), run_ns(pid)) for name, pid in involved}
            r = wrk.run(url, args.connections, args.duration)
            after = {name: (cpu_times(pid), run_ns(pid)) for name, pid in involved}
            busy1 = cpus_busy(server_cpus)
            busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
            n = r["requests"]
            stats = {name: start_perf_stat(pid, Path(base) / f"stat-{pid}.txt")
                     for name, pid in involved}
            time.sleep(0.3)
            counted = wrk.run(url, args.connections, args.duration)
            for p in stats.values():
                stop(p)
            n_counted = counted["requests"]
            lines += [f"## {path}: {r['rps']:,.0f} req/s, p50 {sb.fmt_ms(r['p50'])}, "
                      f"p99 {sb.fmt_ms(r['p99'])} ({n:,} requests, errors {sb.fmt_err(r)})", "",
                      "| process | CPU µs/req, exact | ticks: user + kernel | syscalls/req "
                      "| context switches/req | top syscalls per request |",
                      "|---|---|---|---|---|---|"]
            total = 0.0
            for name, pid in involved:
                (t0, ns0), (t1, ns1) = before[name], after[name]
                u = (t1[0] - t0[0]) * 1e6 / n
                s = (t1[1] - t0[1]) * 1e6 / n
                exact = (ns1 - ns0) / 1e3 / n
                total += exact
                c = read_perf_stat(Path(base) / f"stat-{pid}.txt")
                sys_n = c.get("raw_syscalls:sys_enter", 0) / n_counted
                cs = c.get("context-switches", 0) / n_counted
                kinds = sorted(((v, k.split("sys_enter_")[1]) for k, v in c.items()
                                if "sys_enter_" in k and v), reverse=True)[:6]
                kinds_s = ", ".join(f"{k} {v / n_counted:.2f}" for v, k in kinds)
                lines.append(f"| {name} | {exact:.1f} | {u:.1f} + {s:.1f} | {sys_n:.2f} | {cs:.2f} "
                             f"| {kinds_s} |")
            lines += ["", f"Sum of exact CPU per request: {total:.1f} µs (1 core ⇒ at most "
                          f"{1e6 / total:,.0f} req/s). Syscalls were counted on a second run, "
                          f"slowed by the tracing to {counted['rps']:,.0f} req/s. The servers' CPUs were "
                          f"{busy:.0%} busy over the run.", ""]
            sb.log(f"{path}: profiling")
            records = {}
            for name, pid in involved[:2]:
                data = Path(base) / f"perf-{pid}.data"
                records[name] = (data, subprocess.Popen(
                    ["perf", "record", "-F", "2999", "-g", "-o", str(data), "-p", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.3)
            wrk.run(url, args.connections, args.duration)
            for data, p in records.values():
                stop(p)
            for name, (data, _) in records.items():
                shares = ", ".join(f"{d} {pct}" for pct, d in dso_shares(data))
                lines += [f"### {name} ({path}): hottest symbols", "", f"By object: {shares}", "",
                          "| self | object | symbol |", "|---|---|---|"]
                for pct, dso, sym in top_symbols(data, args.symbols):
                    lines.append(f"| {pct} | {dso} | `{sym[:110]}` |")
                lines.append("")
    finally:
        try:
            ours.down()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    write_report(args.out_dir, "profile", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
