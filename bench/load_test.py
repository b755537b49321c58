#!/usr/bin/python3
"""Load-test one API endpoint: closed-loop (--concurrency) or open-loop (--rate).

    /usr/bin/python3 bench/load_test.py --api hello --concurrency 8 --duration 30
    /usr/bin/python3 bench/load_test.py --url http://127.0.0.1:8888/hello --rate 200 \\
        --duration 60 --payload '{"name": "x"}' --timeline timeline.csv

Prints throughput, the errors by status (HTTP codes and socket errors) and the latency
percentiles p50/p90/p99/max. See bench/README.md ("Load-testing an API").

Closed loop (--concurrency C): C threads, each with one keep-alive connection, send the next
request as soon as the previous one is answered.
Open loop (--rate R): requests are due at fixed times start + i/R whatever the server does; a pool
of --connections threads (one keep-alive connection each) sends them. A request that is due while
every connection is busy waits at the client, and that wait counts in its latency (latency is
measured from the time it was due, so a slow server cannot hide behind a slow client).

Only the standard library (threads + http.client); Python's GIL caps what one process can drive
(see bench/README.md for the measured ceiling, and use wrk above it).
"""

import argparse
import collections
import http.client
import json
import math
import os
import itertools
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- recording

class Recorder:
    """Thread-safe record of every finished request, with per-second buckets."""

    def __init__(self, start, measure_from=None, measure_to=None):
        self.lock = threading.Lock()
        self.start = start                      # time.monotonic() of t = 0
        self.measure_from = start if measure_from is None else measure_from
        self.measure_to = math.inf if measure_to is None else measure_to
        self.latencies = []                     # seconds, measured requests only
        self.outcomes = collections.Counter()   # "200", "503", "ConnectionRefusedError", ...
        self.ok = 0
        self.errors = 0
        self.in_flight = 0                      # sent, not answered yet
        self.started = 0
        self.finished = 0
        self.per_second = collections.defaultdict(lambda: [0, 0, []])  # sec -> [n, errors, lats]
        self.first_done = None
        self.last_done = None

    def begin(self):
        with self.lock:
            self.in_flight += 1
            self.started += 1

    def finish(self, due, done, outcome, ok):
        lat = done - due
        with self.lock:
            self.in_flight -= 1
            self.finished += 1
            sec = int(done - self.start)
            b = self.per_second[sec]
            b[0] += 1
            if not ok:
                b[1] += 1
            b[2].append(lat)
            if not self.measure_from <= due < self.measure_to:
                return  # warm-up, or sent after the end
            self.outcomes[outcome] += 1
            if ok:
                self.ok += 1
            else:
                self.errors += 1
            self.latencies.append(lat)
            if self.first_done is None:
                self.first_done = done
            self.last_done = done


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[min(k, len(sorted_vals)) - 1]


# ---------------------------------------------------------------- one request

class Target:
    def __init__(self, url, method, body, content_type, timeout, headers=()):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL {url!r} (http:// or https://)")
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.method = method
        self.body = body if method in ("POST", "PUT", "PATCH") else None
        self.headers = {"Host": u.netloc}
        if self.body is not None:
            self.headers["Content-Type"] = content_type
        self.headers.update(dict(headers))
        self.timeout = timeout

    def connection(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)


class Client:
    """One keep-alive connection; reconnects after errors and `Connection: close`."""

    def __init__(self, target):
        self.t = target
        self.conn = target.connection()
        self.backoff = False

    def send(self):
        """Returns (outcome, ok): the HTTP status as a string, or the exception's name."""
        t = self.t
        try:
            self.conn.request(t.method, t.path, body=t.body, headers=t.headers)
            r = self.conn.getresponse()
            r.read()
            if r.will_close:
                self.conn.close()
            return str(r.status), 200 <= r.status < 300
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()  # the next request opens a new connection
            name = type(e).__name__
            # do not spin on a dead server (the caller pauses after recording the latency)
            self.backoff = isinstance(e, (TimeoutError, ConnectionRefusedError))
            return name, False

    def pause_after_error(self, stop_event):
        if self.backoff:
            self.backoff = False
            stop_event.wait(0.01)

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- load shapes

class ClosedLoop:
    """`n` threads, each one request at a time. The number of active clients can change while
    it runs (set_active); threads beyond it idle. Used by autoscale_bench.py too."""

    def __init__(self, target, recorder, n, active=None):
        self.target, self.rec = target, recorder
        self.n = n
        self.active = n if active is None else active
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]

    def client_in_flight(self):
        return self.rec.in_flight

    def set_active(self, k):
        self.active = max(0, min(self.n, k))

    def start(self):
        for th in self.threads:
            th.start()

    def stop(self, join_s=10.0):
        self.stop_event.set()
        end = time.monotonic() + join_s
        for th in self.threads:
            th.join(max(0.0, end - time.monotonic()))

    def _run(self, i):
        client = Client(self.target)
        try:
            while not self.stop_event.is_set():
                if i >= self.active:
                    self.stop_event.wait(0.02)
                    continue
                t0 = time.monotonic()
                self.rec.begin()
                outcome, ok = client.send()
                self.rec.finish(t0, time.monotonic(), outcome, ok)
                client.pause_after_error(self.stop_event)
        finally:
            client.close()


class OpenLoop:
    """Request k is due at start + k/rate (k < rate × (end - start)). Each of `connections`
    threads takes the next k, waits until it is due and sends it; when every thread is busy,
    due requests wait for one, and their latency counts from the time they were due."""

    def __init__(self, target, recorder, rate, connections, start, end):
        self.target, self.rec = target, recorder
        self.rate, self.start_t = rate, start
        self.total = int(rate * (end - start))
        self.next_k = itertools.count()  # next() is atomic under the GIL
        self.stop_event = threading.Event()
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(connections)]

    def start(self):
        for th in self.workers:
            th.start()

    def due_by(self, t):
        return max(0, min(self.total, math.floor((t - self.start_t) * self.rate) + 1))

    def client_in_flight(self):
        """Requests that are due and not answered yet (waiting for a connection, or sent)."""
        return max(0, self.due_by(time.monotonic()) - self.rec.finished)

    def _work(self):
        client = Client(self.target)
        try:
            while not self.stop_event.is_set():
                k = next(self.next_k)
                if k >= self.total:
                    break
                due = self.start_t + k / self.rate
                wait = due - time.monotonic()
                if wait > 0 and self.stop_event.wait(wait):
                    break
                self.rec.begin()
                outcome, ok = client.send()
                self.rec.finish(due, time.monotonic(), outcome, ok)
                client.pause_after_error(self.stop_event)
        finally:
            client.close()

    def stop(self, join_s=10.0):
        self.stop_event.set()
        end = time.monotonic() + join_s
        for th in self.workers:
            th.join(max(0.0, end - time.monotonic()))


# ---------------------------------------------------------------- helpers

def resolve_api(name, env_name=None, cortex=None):
    """The endpoint of a deployed API, from `cortex get NAME -o json`."""
    exe = cortex or shutil.which("cortex") or str(ROOT / "build" / "src" / "apps" / "cortex")
    cmd = [exe, "get", name, "-o", "json"] + (["-e", env_name] if env_name else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()}")
    data = json.loads(r.stdout)
    api = data[0] if isinstance(data, list) else data
    endpoint = api.get("endpoint")
    if not endpoint:
        raise RuntimeError(f"`cortex get {name}` shows no endpoint (is it a RealtimeAPI?)")
    return endpoint


def read_payload(arg):
    """--payload: '@FILE', an existing file, or the literal body."""
    if arg is None:
        return b"{}"
    if arg.startswith("@"):
        return Path(arg[1:]).read_bytes()
    if os.path.isfile(arg):
        return Path(arg).read_bytes()
    return arg.encode()


def fmt_lat(v):
    if v is None:
        return "-"
    return f"{v * 1e6:.0f} µs" if v < 1e-3 else (f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s")


def summarize(rec, wall_s):
    lats = sorted(rec.latencies)
    n = len(lats)
    return {
        "requests": n,
        "ok": rec.ok,
        "errors": rec.errors,
        "duration_s": wall_s,
        "throughput_rps": n / wall_s if wall_s > 0 else 0.0,
        "ok_rps": rec.ok / wall_s if wall_s > 0 else 0.0,
        "outcomes": dict(sorted(rec.outcomes.items())),
        "latency_s": {"p50": percentile(lats, 50), "p90": percentile(lats, 90),
                      "p99": percentile(lats, 99), "max": lats[-1] if lats else None,
                      "mean": sum(lats) / n if n else None},
    }


def write_timeline(path, rec, samples, seconds):
    """Per second: t, requests finished, errors, client in-flight (at the second's end), p50."""
    last = max(0, math.ceil(seconds) - 1)
    inflight = dict(samples)
    with open(path, "w") as f:
        f.write("time_s,requests,errors,in_flight,p50_ms\n")
        for s in range(0, last + 1):
            n, e, lats = rec.per_second.get(s, (0, 0, []))
            p50 = percentile(sorted(lats), 50)
            f.write(f"{s},{n},{e},{inflight.get(s, '')},"
                    f"{'' if p50 is None else f'{p50 * 1e3:.3f}'}\n")


def print_report(target_url, mode, res, out=sys.stdout):
    L = res["latency_s"]
    print(f"target:      {target_url}", file=out)
    print(f"load:        {mode}", file=out)
    print(f"duration:    {res['duration_s']:.1f} s", file=out)
    print(f"requests:    {res['requests']} ({res['throughput_rps']:.1f} req/s; "
          f"{res['ok_rps']:.1f} req/s 2xx)", file=out)
    errs = {k: v for k, v in res["outcomes"].items() if not k.startswith("2")}
    print(f"errors:      {res['errors']}" + (
        "  (" + ", ".join(f"{k}: {v}" for k, v in errs.items()) + ")" if errs else ""), file=out)
    print("by status:   " + (", ".join(f"{k}: {v}" for k, v in res["outcomes"].items()) or "-"),
          file=out)
    print(f"latency:     p50 {fmt_lat(L['p50'])}   p90 {fmt_lat(L['p90'])}   "
          f"p99 {fmt_lat(L['p99'])}   max {fmt_lat(L['max'])}", file=out)


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the endpoint, e.g. http://127.0.0.1:8888/hello")
    where.add_argument("--api", help="an API name; its endpoint comes from `cortex get NAME -o json`")
    ap.add_argument("-e", "--env", help="with --api: the CLI environment to ask")
    ap.add_argument("--cortex", help="with --api: the cortex executable (default: cortex on PATH, "
                                     "else build/src/apps/cortex)")
    shape = ap.add_mutually_exclusive_group()
    shape.add_argument("-c", "--concurrency", type=int,
                       help="closed loop: this many clients, each with one request at a time "
                            "(default 1)")
    shape.add_argument("-r", "--rate", type=float,
                       help="open loop: this many requests per second, due at fixed times")
    ap.add_argument("--connections", type=int, default=64,
                    help="open loop: connections (threads) that send the due requests (default 64)")
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="seconds (default 10)")
    ap.add_argument("--warmup", type=float, default=0.0,
                    help="seconds of load before the measured part, not counted (default 0)")
    ap.add_argument("--payload", help="request body: '@FILE', a file path, or literal text "
                                      "(default '{}')")
    ap.add_argument("--content-type", default="application/json",
                    help="Content-Type of the body (default application/json)")
    ap.add_argument("--method", default="POST", choices=["POST", "GET", "PUT", "PATCH", "DELETE"])
    ap.add_argument("-H", "--header", action="append", default=[],
                    help="extra header 'Name: value' (repeatable)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="per-request socket timeout in seconds (default 30)")
    ap.add_argument("--timeline", metavar="CSV",
                    help="write per-second time_s,requests,errors,in_flight,p50_ms to CSV")
    ap.add_argument("--json", metavar="FILE", help="also write the summary as JSON ('-' for stdout)")
    args = ap.parse_args(argv)

    if args.duration <= 0 or args.duration > 24 * 3600:
        ap.error("--duration must be in (0, 86400]")
    if args.rate is not None and args.rate <= 0:
        ap.error("--rate must be > 0")
    conc = args.concurrency if args.concurrency is not None else (None if args.rate else 1)
    if conc is not None and not 1 <= conc <= 4096:
        ap.error("--concurrency must be in [1, 4096]")
    if not 1 <= args.connections <= 4096:
        ap.error("--connections must be in [1, 4096]")
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            ap.error(f"bad --header {h!r} (expected 'Name: value')")
        headers.append((name.strip(), value.strip()))

    url = args.url
    if args.api:
        try:
            url = resolve_api(args.api, args.env, args.cortex)
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
            sys.exit(f"error: {e}")
    try:
        target = Target(url, args.method, read_payload(args.payload), args.content_type,
                        args.timeout, headers)
    except (ValueError, OSError) as e:
        sys.exit(f"error: {e}")

    start = time.monotonic()
    measure_from = start + args.warmup
    end = measure_from + args.duration
    rec = Recorder(start, measure_from, end)
    if conc is not None:
        load = ClosedLoop(target, rec, conc)
        mode = f"closed loop, {conc} concurrent client(s)"
    else:
        load = OpenLoop(target, rec, args.rate, args.connections, start, end)
        mode = f"open loop, {args.rate:g} req/s over up to {args.connections} connections"
    if args.warmup:
        mode += f", {args.warmup:g} s warm-up not counted"

    samples = []  # (second, client in-flight at its end)
    interrupted = False
    load.start()
    try:
        sec = 1
        while True:
            now = time.monotonic()
            if now >= end:
                break
            nxt = min(end, start + sec)
            time.sleep(max(0.0, nxt - now))
            if time.monotonic() >= start + sec:
                samples.append((sec - 1, load.client_in_flight()))
                sec += 1
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop_at = time.monotonic()
        load.stop(join_s=min(args.timeout, 30.0) + 1.0)
    wall = max(1e-9, min(stop_at, end) - measure_from)
    res = summarize(rec, wall)
    unsent = 0
    if isinstance(load, OpenLoop):
        unsent = max(0, load.due_by(min(stop_at, end) - 1e-9) - rec.started)
    res.update(url=url, mode=mode, interrupted=interrupted, unfinished=rec.in_flight,
               unsent=unsent)
    print_report(url, mode, res)
    if rec.in_flight:
        print(f"unfinished:  {rec.in_flight} request(s) still open at the end (not counted)")
    if unsent:
        print(f"unsent:      {unsent} request(s) were due but never sent: every connection was "
              f"busy (the server, or this client, cannot keep up with --rate)")
    if interrupted:
        print("interrupted: the numbers cover the time until Ctrl-C")
    if args.timeline:
        write_timeline(args.timeline, rec, samples, min(stop_at, end) - start)
        print(f"timeline:    {args.timeline}")
    if args.json:
        text = json.dumps(res, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if res["ok"] and not interrupted else 1


if __name__ == "__main__":
    sys.exit(main())
