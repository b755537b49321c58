#!/usr/bin/python3
"""Serving benchmark: the Cortex v0.24 request path versus ours, on one machine.

Run with Debian's interpreter (the `python3` on PATH may be pyenv):

    /usr/bin/python3 bench/serving_bench.py [--duration 10] [--connections 32] [--quick]

One invocation:
  1. builds the Cortex v0.24 replica stack from Debian packages in a temp dir
     (nginx, 1 worker, least_conn over P uvicorn+FastAPI processes on Unix sockets);
  2. starts our local cluster (`cortex cluster up`) and deploys the same predictor;
  3. drives each with wrk (pinned: servers on one core, wrk on another);
  4. measures low-load (c=1) latency;
  5. prints a markdown table and writes it to bench/results/serving-<timestamp>.md.
See bench/README.md for what each case means.
"""

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = "/usr/bin/python3"
BODY = '{"payload":{"x":[1,2,3]}}'
PREDICTOR_PY = """\
class PythonPredictor:
    def __init__(self, config):
        self.config = config

    def predict(self, payload):
        return {"ok": True}
"""

# The Cortex v0.24 server (pkg/workloads/cortex/serve/serve.py), reduced to what a
# realtime Python predictor exercises: CORS middleware, the two "http" middlewares
# (request registration + payload parsing), the exception handlers, and a sync `def`
# predict route run on a ThreadPoolExecutor(threads_per_process).
#
# Cortex v0.24 pinned fastapi 0.61.1 (Starlette 0.13.6) and uvicorn 0.11.8, whose
# defaults picked uvloop + httptools. Debian ships FastAPI 0.92 / Starlette 0.26, whose
# machinery differs in two ways that matter here, so app.py restores the 0.13.6 behaviour:
#  * sync routes: 0.13.6 ran them with loop.run_in_executor(None, ...), i.e. on the default
#    executor that Cortex replaced by ThreadPoolExecutor(threads_per_process); 0.26 uses
#    anyio's thread limiter (40 threads) and ignores the default executor;
#  * @app.middleware("http"): 0.13.6's BaseHTTPMiddleware ran the inner app as a task feeding
#    an asyncio.Queue and answered with a plain StreamingResponse; 0.26's version uses anyio
#    task groups and memory streams and was measured ~4x slower for this app (1.4k vs 5.4k
#    req/s direct to one uvicorn), which would make the baseline a straw man.
# `--stock-starlette` runs the unmodified Debian machinery instead.
APP_PY = r'''
import asyncio
import importlib.util
import inspect
import json
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
import contextvars
import functools
import fastapi.routing

THREADS = int(os.environ["CORTEX_THREADS_PER_PROCESS"])
FAITHFUL = os.environ.get("BENCH_FAITHFUL") == "1"  # emulate the aws provider's per-request work
REQ_DIR = os.environ.get("BENCH_REQUESTS_DIR", "")
PREDICT_ROUTE = "/predict"

STOCK = os.environ.get("BENCH_STOCK_STARLETTE") == "1"

request_thread_pool = ThreadPoolExecutor(max_workers=THREADS)


async def run_in_default_executor(func, *args, **kwargs):
    # starlette 0.13.6 concurrency.run_in_threadpool
    loop = asyncio.get_event_loop()
    child = functools.partial(func, *args, **kwargs)
    return await loop.run_in_executor(None, contextvars.copy_context().run, child)


class Stream013(Response):
    # starlette 0.13.6 StreamingResponse.__call__: headers, then every chunk, then an empty end
    def __init__(self, status_code, raw_headers, body_iter):
        self.status_code, self.raw_headers, self.body_iterator = status_code, raw_headers, body_iter
        self.background = None

    async def __call__(self, scope, receive, send):
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class HTTPMiddleware013:
    # starlette 0.13.6 BaseHTTPMiddleware (what @app.middleware("http") built)
    def __init__(self, app, dispatch):
        self.app, self.dispatch_func = app, dispatch

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        response = await self.dispatch_func(request, self.call_next)
        await response(scope, receive, send)

    async def call_next(self, request):
        loop = asyncio.get_event_loop()
        queue = asyncio.Queue()

        async def coro():
            try:
                await self.app(request.scope, request.receive, queue.put)
            finally:
                await queue.put(None)

        task = loop.create_task(coro())
        message = await queue.get()
        if message is None:
            task.result()
            raise RuntimeError("No response returned.")
        assert message["type"] == "http.response.start"

        async def body_stream():
            while True:
                m = await queue.get()
                if m is None:
                    break
                yield m.get("body", b"")
            task.result()

        return Stream013(message["status"], message["headers"], body_stream())


app = FastAPI()
if STOCK:
    http_middleware = app.middleware("http")
else:
    fastapi.routing.run_in_threadpool = run_in_default_executor

    def http_middleware(func):
        app.add_middleware(HTTPMiddleware013, dispatch=func)
        return func

app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True,
                   allow_methods=["*"], allow_headers=["*"])

# the user's constructor runs on the request thread pool, as Cortex did
def _load():
    spec = importlib.util.spec_from_file_location("predictor", os.environ["CORTEX_PREDICTOR_PATH"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.PythonPredictor(config={})

predictor_impl = request_thread_pool.submit(_load).result()
predict_fn_args = inspect.getfullargspec(predictor_impl.predict).args
_statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if FAITHFUL else None


@app.on_event("startup")
async def _set_executor():
    # Cortex: loop.set_default_executor(ThreadPoolExecutor(threads_per_process)), the pool
    # that runs the sync routes; with stock Starlette 0.26 cap anyio's limiter instead.
    asyncio.get_running_loop().set_default_executor(request_thread_pool)
    if STOCK:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS


def is_prediction_request(request):
    return request.url.path == PREDICT_ROUTE and request.method == "POST"


@app.exception_handler(StarletteHTTPException)
async def http_exception_handler(request, e):
    return Response(content=str(e.detail), status_code=e.status_code)


@app.exception_handler(RequestValidationError)
async def validation_exception_handler(request, e):
    return Response(content=str(e), status_code=400)


@app.exception_handler(Exception)
async def uncaught_exception_handler(request, e):
    return Response(content="internal server error", status_code=500)


@http_middleware
async def register_request(request: Request, call_next):
    request.state.start_time = time.time()
    file_id = None
    response = None
    try:
        if FAITHFUL and is_prediction_request(request):
            request_id = request.headers.get("x-request-id") or uuid.uuid1()
            file_id = f"{REQ_DIR}/{request_id}"
            open(file_id, "a").close()
        response = await call_next(request)
    finally:
        if file_id is not None:
            try:
                os.remove(file_id)
            except OSError:
                pass
        if FAITHFUL and is_prediction_request(request):
            status = response.status_code if response is not None else 500
            latency = time.time() - request.state.start_time
            # stands in for the statsd/CloudWatch request metrics of the aws provider
            _statsd.sendto(f"cortex.request:{status}|c\ncortex.latency:{latency}|ms".encode(),
                           ("127.0.0.1", 9))
    return response


@http_middleware
async def parse_payload(request: Request, call_next):
    if not is_prediction_request(request) or "payload" not in predict_fn_args:
        return await call_next(request)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form") or content_type.startswith(
            "application/x-www-form-urlencoded"):
        try:
            request.state.payload = await request.form()
        except Exception as e:
            return PlainTextResponse(content=str(e), status_code=400)
    elif content_type.startswith("application/json"):
        try:
            request.state.payload = await request.json()
        except json.JSONDecodeError as e:
            return JSONResponse(content={"error": str(e)}, status_code=400)
    else:
        request.state.payload = await request.body()
    return await call_next(request)


def predict(request: Request):
    kwargs = {}
    if "payload" in predict_fn_args:
        kwargs["payload"] = request.state.payload
    if "headers" in predict_fn_args:
        kwargs["headers"] = request.headers
    if "query_params" in predict_fn_args:
        kwargs["query_params"] = request.query_params
    prediction = predictor_impl.predict(**kwargs)
    if isinstance(prediction, bytes):
        return Response(content=prediction, media_type="application/octet-stream")
    if isinstance(prediction, str):
        return Response(content=prediction, media_type="text/plain")
    if isinstance(prediction, Response):
        return prediction
    return Response(content=json.dumps(prediction), media_type="application/json")


def get_summary():
    return {"message": "make a prediction by sending a post request to this endpoint with a json payload"}


app.add_api_route(PREDICT_ROUTE, predict, methods=["POST"])
app.add_api_route(PREDICT_ROUTE, get_summary, methods=["GET"])
'''

# wrk's summary as one JSON line (a %-format template: every literal % is doubled).
WRK_DONE_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"mean_us":%%.1f,' ..
    '"max_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

POST_LUA = ("""\
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"

""" + WRK_DONE_LUA) % BODY


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def nofile_hard():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 65535 if hard == resource.RLIM_INFINITY else hard


def snapshot_binary(src, dest_dir):
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


def cpu_list(spec):
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, timeout=5.0):
    req = urllib.request.Request(url, data=BODY.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ok(url, deadline_s, what):
    end = time.time() + deadline_s
    last = None
    while time.time() < end:
        try:
            status, body = post(url, timeout=2)
            if status == 200 and json.loads(body) == {"ok": True}:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        except Exception as e:  # noqa: BLE001 - anything means "not ready yet"
            last = repr(e)
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} correctly within {deadline_s}s (last: {last})")


# ---------------------------------------------------------------- processes

def proc_children():
    """ppid -> [pid] for every process on the machine."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(roots):
    kids = proc_children()
    out, todo = [], list(roots)
    while todo:
        p = todo.pop()
        if p in out or not alive(p):
            continue
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Pinner:
    def __init__(self, cpus):
        self.cpus = cpus

    def pin(self, pids):
        """Pins every thread of pids; returns a problem string ("" when all are pinned)."""
        if not self.cpus:
            return ""
        for p in pids:
            # -a: every thread of the process, not only the main one
            subprocess.run(["taskset", "-a", "-cp", self.cpus, str(p)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        want = set(cpu_list(self.cpus))
        bad = []
        for p in pids:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
            except OSError:
                continue
            for t in tids:
                try:
                    if os.sched_getaffinity(t) != want:
                        bad.append(t)
                except OSError:
                    pass
        return f"threads not pinned: {bad}" if bad else ""


class Procs:
    """Processes this run started; each is a session (process group) leader."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, log_path, **kw):
        f = open(log_path, "ab")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        f.close()
        self.procs.append(p)
        return p

    def stop(self, procs=None):
        procs = list(self.procs if procs is None else procs)
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.time() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # also reaps stragglers left in the group
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            if p in self.procs:
                self.procs.remove(p)


# ---------------------------------------------------------------- Cortex v0.24 stack

NGINX_CONF = """\
# Cortex v0.24 pkg/workloads/cortex/serve/nginx.conf.j2, localised to a temp dir
daemon off;
{user}
{rlimit}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
thread_pool pool threads={procs};

events {{
    worker_connections 65535;
    multi_accept off;
    use epoll;
}}

http {{
    access_log off;
    client_body_temp_path {d}/tmp-body;
    proxy_temp_path {d}/tmp-proxy;
    fastcgi_temp_path {d}/tmp-fastcgi;
    uwsgi_temp_path {d}/tmp-uwsgi;
    scgi_temp_path {d}/tmp-scgi;

    client_max_body_size 0;
    tcp_nopush on;
    tcp_nodelay on;
    limit_conn_zone 1 zone=inflights:1m;
    aio threads=pool;
    proxy_read_timeout 3600s;

    upstream uvicorn {{
        least_conn;
{servers}
{keepalive}
    }}

    server {{
        listen 127.0.0.1:{port};
        underscores_in_headers on;

        location /nginx_status {{
            stub_status on;
            allow 127.0.0.1;
            deny all;
        }}

        location / {{
            deny all;
        }}

        location ~ ^/(predict/?|)$ {{
            limit_conn inflights {limit};

            add_header Access-Control-Allow-Origin "*";
            add_header Access-Control-Allow-Headers "*";
            add_header Access-Control-Allow-Methods "GET, POST";
            add_header Access-Control-Allow-Credentials "true";

            proxy_set_header HOST $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
{http11}
            proxy_redirect off;
            proxy_buffering off;

            proxy_pass http://uvicorn;
        }}
    }}
}}
"""


class CortexStack:
    def __init__(self, base, procs_n, threads, procs, faithful, stock=False):
        self.d = Path(base) / (f"cx24-p{procs_n}" + ("-faithful" if faithful else ""))
        self.d.mkdir()
        self.n, self.threads, self.procs, self.faithful = procs_n, threads, procs, faithful
        self.stock = stock
        self.started = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/predict"

    def start(self):
        d = self.d
        (d / "predictor.py").write_text(PREDICTOR_PY)
        (d / "app.py").write_text(APP_PY)
        (d / "requests").mkdir()
        env = dict(os.environ)
        for k in ("PYTHONHOME", "PYTHONPATH"):
            env.pop(k, None)
        env.update(CORTEX_PREDICTOR_PATH=str(d / "predictor.py"),
                   CORTEX_THREADS_PER_PROCESS=str(self.threads),
                   BENCH_FAITHFUL="1" if self.faithful else "0",
                   BENCH_STOCK_STARLETTE="1" if self.stock else "0",
                   BENCH_REQUESTS_DIR=str(d / "requests"), PYTHONUNBUFFERED="1")
        socks = [d / f"proc-{i}.sock" for i in range(self.n)]
        for i, s in enumerate(socks):
            cmd = [PY, "-m", "uvicorn", "app:app", "--uds", str(s), "--loop", "uvloop",
                   "--http", "httptools", "--workers", "1", "--proxy-headers",
                   "--forwarded-allow-ips", "*"]
            # Cortex logged every request at INFO (uvicorn.access to stdout); the lean
            # baseline logs warnings only, like our stack (which has no access log).
            cmd += ["--log-level", "info"] if self.faithful else ["--log-level", "warning"]
            self.started.append(self.procs.start(cmd, d / f"uvicorn-{i}.log", cwd=d, env=env))
        end = time.time() + 30
        for s in socks:
            while True:
                if any(p.poll() is not None for p in self.started):
                    raise RuntimeError(f"a uvicorn process exited; see {d}/uvicorn-*.log:\n"
                                       + tail_files(d.glob("uvicorn-*.log")))
                if s.exists():
                    try:
                        with socket.socket(socket.AF_UNIX) as c:
                            c.connect(str(s))
                        break
                    except OSError:
                        pass
                if time.time() > end:
                    raise RuntimeError(f"uvicorn socket {s} did not appear")
                time.sleep(0.05)
        conf = NGINX_CONF.format(
            d=d, procs=self.n, port=self.port, limit=self.n * self.threads + 1024,
            # v0.24 raised it to 65535; a container may not allow that (EPERM alert)
            rlimit="worker_rlimit_nofile %d;" % min(65535, nofile_hard()),
            user="user root;" if os.geteuid() == 0 else "",
            servers="\n".join(f"        server unix:{s};" for s in socks),
            # v0.24 itself proxied with HTTP/1.0 and no upstream keep-alive (a new Unix
            # connection per request); the default here pools upstream connections.
            keepalive="" if self.faithful else "        keepalive 64;\n        keepalive_timeout 4s;",
            http11="" if self.faithful else
            '            proxy_http_version 1.1;\n            proxy_set_header Connection "";')
        (d / "nginx.conf").write_text(conf)
        nginx = self.procs.start(["/usr/sbin/nginx", "-p", str(d), "-c", str(d / "nginx.conf"),
                                  "-e", str(d / "nginx-error.log")], d / "nginx.out", cwd=d)
        self.started.append(nginx)
        try:
            wait_ok(self.url, 15, "nginx")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{tail_files([d / 'nginx-error.log', d / 'nginx.out'])}")

    def pids(self):
        return tree([p.pid for p in self.started])

    def healthy(self):
        dead = [p.args[:3] for p in self.started if p.poll() is not None]
        return "" if not dead else f"exited: {dead}"

    def stop(self):
        self.procs.stop(self.started)
        self.started = []

    def log_findings(self):
        return scan_logs(list(self.d.glob("uvicorn-*.log")) + [self.d / "nginx-error.log"],
                         ignore=re.compile(r"\] INFO|^INFO:|\bstarted\b|\bstarting\b|"
                                           r"exceed open file resource limit", re.I))


# Cortex v0.24 on EKS had an ingress proxy (Istio's Envoy) in front of each pod's nginx. This
# second nginx plays that part: one worker, upstream keep-alive to the pod nginx over TCP.
INGRESS_CONF = """\
daemon off;
{user}
worker_processes 1;
pid {d}/ingress.pid;
error_log {d}/ingress-error.log warn;
events {{
    worker_connections 65535;
    use epoll;
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp-ingress-body;
    proxy_temp_path {d}/tmp-ingress-proxy;
    fastcgi_temp_path {d}/tmp-ingress-fastcgi;
    uwsgi_temp_path {d}/tmp-ingress-uwsgi;
    scgi_temp_path {d}/tmp-ingress-scgi;
    client_max_body_size 0;
    tcp_nodelay on;
    upstream pod {{
        server 127.0.0.1:{pod_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_pass http://pod;
        }}
    }}
}}
"""


class Ingress:
    """A second nginx in front of a CortexStack (the ingress of Cortex's cluster path)."""

    def __init__(self, stack):
        self.stack = stack
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/predict"

    def start(self):
        d = self.stack.d
        (d / "ingress.conf").write_text(INGRESS_CONF.format(
            d=d, port=self.port, pod_port=self.stack.port,
            user="user root;" if os.geteuid() == 0 else ""))
        self.stack.started.append(self.stack.procs.start(
            ["/usr/sbin/nginx", "-p", str(d), "-c", str(d / "ingress.conf"), "-e",
             str(d / "ingress-error.log")], d / "ingress.out", cwd=d))
        wait_ok(self.url, 15, "the ingress nginx")

    def pids(self):
        return self.stack.pids()

    def healthy(self):
        return self.stack.healthy()


# ---------------------------------------------------------------- our stack

class OurStack:
    def __init__(self, base, cortex_bin, pinner, name="ours"):
        self.cfg = Path(base) / f"cx-config-{name}"
        self.proj = Path(base) / f"project-{name}"
        self.proj.mkdir()
        (self.proj / "predictor.py").write_text(PREDICTOR_PY)
        self.bin = cortex_bin
        self.env = dict(os.environ, CORTEX_CLI_CONFIG_DIR=str(self.cfg))
        for k in ("PYTHONHOME", "PYTHONPATH"):
            self.env.pop(k, None)
        self.pinner = pinner
        self.up_called = False
        self.seen = set()
        self.gw_port = free_port()
        self.op_port = free_port()
        self.url = f"http://127.0.0.1:{self.gw_port}/noop"
        self.restarts = {}

    def cli(self, *args, timeout=60, check=True):
        r = subprocess.run([str(self.bin), *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"cortex {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def up(self):
        self.up_called = True
        self.cli("cluster", "up", "--operator-port", str(self.op_port), "--gateway-port",
                 str(self.gw_port), "--python", PY, "-y")
        self.remember()

    def roots(self):
        try:
            info = json.loads((self.cfg / "cluster" / "cluster.json").read_text())
            return [info["operator_pid"], info["gateway_pid"]]
        except (OSError, ValueError, KeyError):
            return []

    def remember(self):
        pids = tree(self.roots())
        self.seen.update(pids)
        return pids

    def get(self):
        out = self.cli("get", "noop", "-o", "json").stdout
        data = json.loads(out)
        return data[0] if isinstance(data, list) else data

    def deploy(self, procs_n, threads):
        (self.proj / "cortex.yaml").write_text(
            "- name: noop\n  kind: RealtimeAPI\n  predictor:\n    type: python\n"
            f"    path: predictor.py\n    processes_per_replica: {procs_n}\n"
            f"    threads_per_process: {threads}\n"
            # One replica, as the Cortex baseline is one pod: the load of the runs must not scale
            # it up between cases.
            "  autoscaling:\n    min_replicas: 1\n    max_replicas: 1\n")
        self.cli("deploy", str(self.proj), "-y", "--force")
        end = time.time() + 60
        last = None
        while time.time() < end:
            try:
                api = self.get()
                last = api
                reps = api.get("replicas") or []
                if (api.get("status", {}).get("status_code") == "status_live" and len(reps) == 1
                        and reps[0].get("state") == "ready" and reps[0].get("updated")
                        and api["spec"]["predictor"]["processes_per_replica"] == procs_n):
                    rep = reps[0]
                    workers = [p for p in tree([rep["pid"]]) if p != rep["pid"]]
                    if len(workers) == procs_n:
                        self.replica = rep
                        self.restarts = {rep["id"]: rep.get("restarts", 0)}
                        self.direct_url = f"http://127.0.0.1:{rep['port']}/predict"
                        wait_ok(self.url, 15, "our gateway")
                        wait_ok(self.direct_url, 15, "our replica front")
                        return
            except (RuntimeError, ValueError, KeyError, IndexError) as e:
                last = repr(e)
            time.sleep(0.25)
        raise RuntimeError(f"noop with {procs_n} process(es) did not become live: "
                           f"{json.dumps(last)[:2000] if not isinstance(last, str) else last}")

    def pids(self):
        return self.remember()

    def healthy(self):
        probs = []
        for name, pid in zip(("operator", "gateway"), self.roots()):
            if not alive(pid):
                probs.append(f"{name} (pid {pid}) died")
        try:
            for r in self.get().get("replicas") or []:
                if r.get("restarts", 0) != self.restarts.get(r["id"], 0):
                    probs.append(f"replica {r['id']} restarts={r.get('restarts')}")
                if r.get("state") != "ready":
                    probs.append(f"replica {r['id']} state={r.get('state')}")
        except (RuntimeError, ValueError) as e:
            probs.append(f"cortex get failed: {e}")
        return "; ".join(probs)

    def log_findings(self):
        logs = sorted((self.cfg / "cluster" / "logs").rglob("*.log"))
        return scan_logs(logs, ignore=None)

    def down(self):
        if not self.up_called:
            return
        self.remember()
        try:
            self.cli("cluster", "down", "-y", timeout=60, check=False)
        except Exception as e:  # noqa: BLE001 - fall through to the safety net
            log(f"cortex cluster down failed: {e!r}")
        # safety net: anything of this cluster still running gets killed
        mark = str(self.cfg)
        left = [p for p in self.seen if alive(p) and mark in cmdline(p)]
        if left:
            log(f"killing leftover cluster processes {left}")
            for p in left:
                for fn in (lambda: os.killpg(p, signal.SIGKILL), lambda: os.kill(p, signal.SIGKILL)):
                    try:
                        fn()
                    except (ProcessLookupError, PermissionError):
                        pass


# ---------------------------------------------------------------- logs

# ("timeout" alone is not: the gateway's start-up line names its request timeout.)
SUSPICIOUS = re.compile(r"error|exception|traceback|fail|crash|abort|segfault|restart|exit|"
                        r"killed|refused|reset|broken pipe|timed out|request timeout|"
                        r"504|503|502|500", re.I)


def scan_logs(paths, ignore):
    hits = []
    for p in paths:
        try:
            lines = Path(p).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for ln in lines:
            if SUSPICIOUS.search(ln) and not (ignore and ignore.search(ln)):
                hits.append(f"{Path(p).name}: {ln.strip()[:300]}")
    return hits


def tail_files(paths, n=20):
    out = []
    for p in paths:
        try:
            lines = Path(p).read_text(errors="replace").splitlines()[-n:]
        except OSError:
            continue
        out.append(f"--- {p}\n" + "\n".join(lines))
    return "\n".join(out)


# ---------------------------------------------------------------- wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def parse_wrk(text):
    r = {}
    m = re.search(r"^BENCHJSON (\{.*\})$", text, re.M)
    if m:
        j = json.loads(m.group(1))
        r["rps"] = j["requests"] / (j["duration_us"] / 1e6) if j["duration_us"] else 0.0
        r["p50"] = j["p50_us"] / 1000.0
        r["p99"] = j["p99_us"] / 1000.0
        r["requests"] = j["requests"]
        r["non2xx"] = j["status"]
        r["sock"] = {k: j[k] for k in ("connect", "read", "write", "timeout")}
    # wrk's own text output (also the fallback when the Lua hook did not print)
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        r["rps_text"] = float(m.group(1))
        r.setdefault("rps", r["rps_text"])
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if m and key not in r:
            r[key] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    r["non2xx_text"] = int(m.group(1)) if m else 0
    r.setdefault("non2xx", r["non2xx_text"])
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if "sock" not in r:
        r["sock"] = dict(zip(("connect", "read", "write", "timeout"),
                             map(int, m.groups()))) if m else {}
    return r


class Wrk:
    def __init__(self, lua, cpus, warmup):
        self.lua, self.cpus, self.warmup = lua, cpus, warmup

    def cmd(self, url, conns, secs):
        c = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency", "-s", str(self.lua), url]
        return (["taskset", "-c", self.cpus] + c) if self.cpus else c

    def run(self, url, conns, secs):
        if self.warmup > 0:
            subprocess.run(self.cmd(url, conns, self.warmup), capture_output=True, text=True,
                           timeout=self.warmup + 30)
        r = subprocess.run(self.cmd(url, conns, secs), capture_output=True, text=True,
                           timeout=secs + 30)
        if r.returncode != 0:
            raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr}{r.stdout}")
        res = parse_wrk(r.stdout)
        if "rps" not in res or "p50" not in res:
            raise RuntimeError(f"could not parse wrk output:\n{r.stdout}")
        res["raw"] = r.stdout
        return res


# ---------------------------------------------------------------- report

def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_err(r):
    parts = []
    if r.get("non2xx"):
        parts.append(f"non-2xx {r['non2xx']}")
    sock = {k: v for k, v in (r.get("sock") or {}).items() if v}
    if sock:
        parts.append("socket " + ",".join(f"{k} {v}" for k, v in sock.items()))
    if r.get("health"):
        parts.append(r["health"])
    return "; ".join(parts) or "0"


def version_of(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except Exception:  # noqa: BLE001
        return "?"


def environment_lines(args, pinned):
    la = os.getloadavg()
    try:
        mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(args.cortex_src)))
    except OSError:
        mtime = "?"
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    pyver = subprocess.run([PY, "-c", "import fastapi, starlette, uvicorn, uvloop, sys; "
                                      "print(f'python {sys.version.split()[0]}, fastapi {fastapi.__version__}, "
                                      "starlette {starlette.__version__}, uvicorn {uvicorn.__version__}, "
                                      "uvloop {uvloop.__version__}')"],
                           capture_output=True, text=True).stdout.strip()
    return [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}, host: {os.uname().nodename}, "
        f"{os.cpu_count()} CPUs, load average at start {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}",
        f"- our build: {args.cortex_src} (modified {mtime}, run from a private copy; repo {git})",
        f"- baseline: {version_of(['/usr/sbin/nginx', '-v'])}; {pyver}; httptools; {version_of(['wrk', '-v'])}",
        f"- wrk: -t1 -c{args.connections} -d{args.duration}s --latency, POST {BODY} "
        f"(Content-Type application/json), warm-up {args.warmup}s before each case, one run per case",
        f"- pinning: {pinned}",
        f"- our gateway's threads: {args.gateway_threads or 'its default (one per usable CPU)'}"
        + (f"; the \"before\" rows: {args.compare_bin}" if args.compare_bin else ""),
        "- the machine is shared and noisy: compare rows of the same run, not across runs",
    ]


def build_report(args, env_lines, rows, low, findings):
    L = ["# Serving benchmark: Cortex v0.24 request path vs ours", ""]
    L += env_lines + [""]
    L += ["## Throughput (wrk -c%d)" % args.connections, "",
          "| case | processes | req/s | p50 | p99 | errors |", "|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['case']} | {r['procs']} | {r['rps']:,.0f} | {fmt_ms(r['p50'])} | "
                 f"{fmt_ms(r['p99'])} | {fmt_err(r)} |")
    L += ["", "Ratios against the Cortex rows with the same processes: the pod alone (nginx → "
          "uvicorn/FastAPI) and, where measured, with the ingress in front (req/s: above 1 is "
          "better; p99: below 1 is better):", "",
          "| processes | case | req/s ratio | p99 ratio | req/s ratio (with ingress) | p99 ratio (with ingress) |",
          "|---|---|---|---|---|---|"]
    for p in sorted({r["procs"] for r in rows}):
        base = next((r for r in rows if r["procs"] == p and r["key"] == "cortex"), None)
        ing = next((r for r in rows if r["procs"] == p and r["key"] == "cortex-ingress"), None)
        for r in rows:
            if r["procs"] != p or r["key"].startswith("cortex") or base is None:
                continue
            with_ingress = (f"{r['rps'] / ing['rps']:.2f}x | {r['p99'] / ing['p99']:.2f}x"
                            if ing else "- | -")
            L.append(f"| {p} | {r['case']} | {r['rps'] / base['rps']:.2f}x | "
                     f"{r['p99'] / base['p99']:.2f}x | {with_ingress} |")
    if low:
        L += ["", f"## Low load (wrk -c1, processes {low[0]['procs']})", "",
              "| case | req/s | p50 | p99 | errors |", "|---|---|---|---|---|"]
        for r in low:
            L.append(f"| {r['case']} | {r['rps']:,.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {fmt_err(r)} |")
        by = {r["key"]: r for r in low}
        L.append("")
        if "gateway" in by and "direct" in by:
            L.append(f"- the gateway hop adds **{fmt_ms(by['gateway']['p50'] - by['direct']['p50'])}** "
                     f"p50 (gateway {fmt_ms(by['gateway']['p50'])} − direct front {fmt_ms(by['direct']['p50'])})")
        if "gateway" in by:
            L.append(f"- our whole stack (gateway + replica front + worker round trip) at c=1: "
                     f"**p50 {fmt_ms(by['gateway']['p50'])}**; gateway + front cannot be separated "
                     f"from the worker, so this is the \"our stack adds\" number")
        if "cortex" in by:
            L.append(f"- Cortex v0.24 path (nginx + uvicorn/FastAPI) at c=1: p50 {fmt_ms(by['cortex']['p50'])}")
    L += ["", "## Problems seen", ""]
    L += [f"- {f}" for f in findings] if findings else ["- none (no non-2xx, no socket errors, "
                                                        "no crashes or restarts, nothing suspicious in the logs)"]
    L += ["", "<details><summary>raw wrk output</summary>", ""]
    for r in rows + low:
        L += [f"### {r['case']} (processes {r['procs']}, c={r['conns']})", "", "```",
              re.sub(r"^BENCHJSON.*\n?", "", r["raw"], flags=re.M).rstrip(), "```", ""]
    L += ["</details>", ""]
    return "\n".join(L)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each case (default 2)")
    ap.add_argument("--quick", action="store_true", help="3 s runs and 1 s warm-ups")
    ap.add_argument("--processes", default="1,2", help="processes_per_replica values (default 1,2)")
    ap.add_argument("--threads", type=int, default=1, help="threads_per_process (default 1)")
    ap.add_argument("--no-low-load", action="store_true", help="skip the -c1 latency runs")
    ap.add_argument("--faithful", action="store_true",
                    help="also run the Cortex stack as v0.24 shipped it: HTTP/1.0 to uvicorn without "
                         "upstream keep-alive, uvicorn access log at INFO, aws per-request file + statsd")
    ap.add_argument("--stock-starlette", action="store_true",
                    help="run the Cortex app on Debian's unmodified Starlette 0.26 middleware and "
                         "thread-pool machinery instead of the 0.13.6 behaviour Cortex v0.24 had")
    ap.add_argument("--server-cpus", default="0", help="CPU list for every server process (default 0)")
    ap.add_argument("--client-cpus", default="1", help="CPU list for wrk (default 1)")
    ap.add_argument("--cortex-bin", default=str(ROOT / "build" / "src" / "apps" / "cortex"))
    ap.add_argument("--compare-bin", help="another build of ours (an earlier commit, say), measured "
                                          "in the same run as extra \"before\" rows")
    ap.add_argument("--gateway-threads", type=int,
                    help="our gateway's threads (CORTEX_GATEWAY_THREADS); default 1 when the "
                         "servers share one CPU (as the Cortex nginx's one worker), else the "
                         "gateway's own default (one per CPU)")
    ap.add_argument("--no-ingress", action="store_true",
                    help="skip the Cortex row with a second nginx as its ingress")
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, configs)")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.warmup = 3, 1
    procs_list = [int(x) for x in args.processes.split(",") if x]
    if args.gateway_threads is None and args.server_cpus and len(cpu_list(args.server_cpus)) == 1:
        args.gateway_threads = 1
    if args.gateway_threads is not None:
        os.environ["CORTEX_GATEWAY_THREADS"] = str(args.gateway_threads)

    for tool in ("wrk", "/usr/sbin/nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}; run CORTEX_INSTALL_BENCH=1 scripts/install-deps.sh")
    if subprocess.run([PY, "-c", "import fastapi, uvicorn, uvloop, httptools"],
                      capture_output=True).returncode != 0:
        sys.exit("missing python3-fastapi/uvicorn/uvloop/httptools; run CORTEX_INSTALL_BENCH=1 scripts/install-deps.sh")
    if not os.access(args.cortex_bin, os.X_OK):
        sys.exit(f"missing {args.cortex_bin}; build it with scripts/build.sh")

    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        args.server_cpus = args.client_cpus = ""
        pinned = "none (fewer than 2 CPUs available)"
    else:
        pinned = f"every server process (all threads) on CPU {args.server_cpus}, wrk on CPU {args.client_cpus}"

    # SIGTERM/SIGHUP must unwind through the finally blocks like Ctrl-C does
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t0 = time.time()
    base = tempfile.mkdtemp(prefix="cxbench-", dir="/tmp")
    try:
        # run a private copy: others may relink build/ while the benchmark runs (the
        # operator re-executes its own binary for replicas, so the copy is used throughout)
        args.cortex_src = args.cortex_bin
        args.cortex_bin = snapshot_binary(args.cortex_bin, Path(base) / "bin")
    except RuntimeError as e:
        shutil.rmtree(base, ignore_errors=True)
        sys.exit(str(e))
    lua = Path(base) / "post.lua"
    lua.write_text(POST_LUA)
    wrk = Wrk(lua, args.client_cpus, args.warmup)
    pinner = Pinner(args.server_cpus)
    procs = Procs()
    ours = OurStack(base, args.cortex_bin, pinner)
    before = None
    if args.compare_bin:
        before = OurStack(base, snapshot_binary(args.compare_bin, Path(base) / "bin-before"),
                          pinner, name="before")
    env_lines = environment_lines(args, pinned)
    rows, low, findings = [], [], []
    ok = False
    failed = False

    def measure(case, key, procs_n, url, conns, stack, into):
        log(f"{case}: processes {procs_n}, c={conns}, {args.duration}s")
        pin_problem = pinner.pin(stack.pids())
        if pin_problem:
            findings.append(f"{case}: {pin_problem}")
        r = wrk.run(url, conns, args.duration)
        r.update(case=case, key=key, procs=procs_n, conns=conns, health=stack.healthy())
        if r["health"]:
            findings.append(f"{case} (processes {procs_n}, c={conns}): {r['health']}")
        if r.get("non2xx") or any((r.get("sock") or {}).values()):
            findings.append(f"{case} (processes {procs_n}, c={conns}): {fmt_err(r)}")
        log(f"  {r['rps']:,.0f} req/s, p50 {fmt_ms(r['p50'])}, p99 {fmt_ms(r['p99'])}, errors {fmt_err(r)}")
        into.append(r)

    def measure_ours(stack, who, key_prefix, procs_n):
        """Our two paths at load, and (first processes value) at c=1."""
        runs = [(args.connections, rows)]
        if procs_n == procs_list[0] and not args.no_low_load:
            runs.append((1, low))
        for c, into in runs:
            measure(f"{who}: gateway → front → worker", f"{key_prefix}gateway", procs_n, stack.url,
                    c, stack, into)
            measure(f"{who}: replica front → worker (direct)", f"{key_prefix}direct", procs_n,
                    stack.direct_url, c, stack, into)

    try:
        log(f"temp dir {base}; starting our cluster")
        ours.up()
        pinner.pin(ours.pids())
        for n in procs_list:
            variants = [False] + ([True] if args.faithful else [])
            for faithful in variants:
                cx = CortexStack(base, n, args.threads, procs, faithful, args.stock_starlette)
                log(f"starting the Cortex v0.24 stack ({n} uvicorn process(es){', faithful' if faithful else ''})")
                try:
                    cx.start()
                    name = "Cortex v0.24 as shipped (nginx, no upstream keep-alive)" if faithful \
                        else "Cortex v0.24 (nginx → uvicorn/FastAPI)"
                    measure(name, "cortex-faithful" if faithful else "cortex", n, cx.url,
                            args.connections, cx, rows)
                    if n == procs_list[0] and not faithful and not args.no_low_load:
                        measure(name, "cortex", n, cx.url, 1, cx, low)
                    if not faithful and not args.no_ingress:
                        ingress = Ingress(cx)
                        ingress.start()
                        measure("Cortex v0.24 with an ingress (nginx → nginx → uvicorn/FastAPI)",
                                "cortex-ingress", n, ingress.url, args.connections, ingress, rows)
                finally:
                    findings += [f"Cortex stack log: {h}" for h in cx.log_findings()[:10]]
                    cx.stop()
            log(f"deploying noop with processes_per_replica={n}")
            ours.deploy(n, args.threads)
            pinner.pin(ours.pids())
            measure_ours(ours, "ours", "", n)
            if before:
                ours.down()  # one of our clusters at a time: same CPUs, same conditions
                log(f"the build to compare: deploying noop with processes_per_replica={n}")
                before.up()
                before.deploy(n, args.threads)
                pinner.pin(before.pids())
                measure_ours(before, "before", "before-", n)
                before.down()
                ours.up()
        ok = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        findings.append(f"benchmark interrupted ({e}); the tables are partial")
    except Exception as e:  # noqa: BLE001 - report, clean up, exit non-zero
        log(f"FAILED: {e}")
        failed = True
        findings.append(f"benchmark aborted: {e}")
    finally:
        seen = []
        try:
            seen = ours.log_findings()
            findings += [f"our cluster log: {h}" for h in seen[:30]]
        except Exception as e:  # noqa: BLE001
            findings.append(f"could not read our cluster logs: {e}")
        if not ok:
            sys.stderr.write(tail_files(sorted((ours.cfg / "cluster" / "logs").rglob("*.log"))) + "\n")
        try:
            ours.down()
        except Exception as e:  # noqa: BLE001 - keep cleaning up
            log(f"cleanup of our cluster failed: {e!r}")
        if before:
            try:
                before.down()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                log(f"cleanup of the compared cluster failed: {e!r}")
        try:
            left = collections.Counter(seen)
            new = []
            for h in ours.log_findings():
                if left[h]:
                    left[h] -= 1
                else:
                    new.append(h)
            findings += [f"our cluster log (during `cluster down`): {h}" for h in new[:10]]
        except Exception:  # noqa: BLE001
            pass
        try:
            procs.stop()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup of the Cortex stack failed: {e!r}")
        if args.keep_tmp or failed:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    if rows:
        report = build_report(args, env_lines, rows, low, findings)
        if not ok:
            report = report.replace("# Serving benchmark", "# INCOMPLETE serving benchmark", 1)
        report += f"\nTotal run time {time.time() - t0:.0f} s.\n"
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"serving-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}{'' if ok else '-incomplete'}.md"
        path.write_text(report)
        log(f"wrote {path}")
        try:
            print(report, flush=True)
        except BrokenPipeError:
            pass
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
