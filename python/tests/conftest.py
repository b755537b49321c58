"""A fake replica front for the worker tests.

Each test writes a small predictor project into a temporary directory, starts the real worker
(``python3 -u -m cortex_runtime.worker ...``) against a listening Unix socket, and talks to it with
the slot protocol. Every socket operation has a timeout and every process is killed at teardown.

Tests run twice: with Starlette (when /usr/bin/python3 can import it) and with
CORTEX_RUNTIME_NO_STARLETTE=1 (the stdlib fallback classes).
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_DIR))
# The native extensions (_cortex_onnx) built by CMake; ctest passes the build tree's directory.
BUILD_PYTHON_DIR = Path(os.environ.get("CORTEX_BUILD_PYTHON_DIR")
                        or PYTHON_DIR.parent / "build" / "python")
sys.path.insert(1, str(BUILD_PYTHON_DIR))

from cortex_runtime.protocol import encode_frame  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
IO_TIMEOUT = 10.0
START_TIMEOUT = 15.0


def _starlette_available():
    probe = subprocess.run([PYTHON, "-c", "import starlette.responses"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return probe.returncode == 0


STARLETTE = _starlette_available()
MODES = ["starlette", "fallback"] if STARLETTE else ["fallback"]


class Reply:
    def __init__(self, header, body):
        self.header = header
        self.body = body
        self.status = header["status"]
        self.content_type = header["content_type"]
        self.headers = header.get("headers", [])

    def json(self):
        return json.loads(self.body)

    def header_value(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"Reply({self.header!r}, {self.body[:200]!r})"


def _recv_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock):
    n, h = struct.unpack(">II", _recv_exact(sock, 8))
    rest = _recv_exact(sock, n - 4)
    return json.loads(rest[:h]), rest[h:]


class Worker:
    """One worker process and its slot connections."""

    def __init__(self, proc, listener, slots, out_path, err_path):
        self.proc = proc
        self.listener = listener
        self.slots = slots
        self.conns = []
        self._out_path = out_path
        self._err_path = err_path

    @property
    def stdout(self):
        return Path(self._out_path).read_text(errors="replace")

    @property
    def stderr(self):
        return Path(self._err_path).read_text(errors="replace")

    def accept_slots(self, timeout=START_TIMEOUT):
        """Accepts the worker's slot connections; False if it exited first."""
        deadline = time.monotonic() + timeout
        self.listener.settimeout(0.05)
        while len(self.conns) < self.slots:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker did not connect; stderr:\n{self.stderr}")
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                if self.proc.poll() is not None:
                    return False
                continue
            conn.settimeout(IO_TIMEOUT)
            self.conns.append(conn)
        return True

    def send(self, slot=0, method="POST", body=b"", content_type="application/json",
             query="", headers=None, path="/"):
        pairs = []
        if content_type is not None:
            pairs.append(["content-type", content_type])
        pairs += [list(p) for p in (headers or [])]
        header = {"method": method, "path": path, "query": query, "headers": pairs}
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.conns[slot].sendall(encode_frame(header, body))

    def receive(self, slot=0):
        return Reply(*read_frame(self.conns[slot]))

    def request(self, slot=0, json_body=None, **kw):
        if json_body is not None:
            kw["body"] = json.dumps(json_body)
        self.send(slot, **kw)
        return self.receive(slot)

    def request_batch(self, items, slot=0):
        """Sends one batch frame of [(json body or bytes, extra header fields)] and returns its
        replies, in order."""
        heads, bodies = [], []
        for body, extra in items:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode("utf-8")
            head = {"method": "POST", "path": "/", "query": "",
                    "headers": [["content-type", "application/json"]], "length": len(body)}
            head.update(extra or {})
            heads.append(head)
            bodies.append(body)
        self.conns[slot].sendall(encode_frame({"batch": heads}, b"".join(bodies)))
        header, body = read_frame(self.conns[slot])
        replies, at = [], 0
        for head in header["batch"]:
            replies.append(Reply(head, body[at:at + head["length"]]))
            at += head["length"]
        assert at == len(body)
        return replies

    def wait(self, timeout=IO_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def close_slots(self):
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.conns = []

    def cleanup(self):
        self.close_slots()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def write_project(root, source, files=None):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "predictor.py").write_text(textwrap.dedent(source))
    for name, text in (files or {}).items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def start_worker(tmp_path, mode):
    """start_worker(source, slots=1, config=None, env=None, files=None, predictor=None,
    connect=True, spec_extra=None) -> Worker. With connect=True the slots are accepted (and
    must be). spec_extra: top-level keys added to the spec (models_manifest, compute)."""
    sock_dir = tempfile.mkdtemp(prefix="cxw", dir="/tmp")  # short path for AF_UNIX
    workers = []
    listeners = []

    def start(source, slots=1, config=None, env=None, files=None, predictor=None,
              connect=True, process_index=0, spec_extra=None):
        project = write_project(tmp_path / f"project{len(workers)}", source, files)
        sock_path = os.path.join(sock_dir, f"w{len(workers)}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock_path)
        listener.listen(64)
        listeners.append(listener)
        pred = {"type": "python", "path": "predictor.py", "config": config or {},
                "env": env or {}, "processes_per_replica": 1, "threads_per_process": slots}
        pred.update(predictor or {})
        spec = {"name": "test-api", "kind": "RealtimeAPI", "predictor": pred,
                "project_dir": str(project), "replica_id": "r0"}
        spec.update(spec_extra or {})
        spec_path = tmp_path / f"spec{len(workers)}.json"
        spec_path.write_text(json.dumps(spec))
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith("PYTHON") and k != "CORTEX_RUNTIME_NO_STARLETTE"}
        environ["PYTHONPATH"] = f"{PYTHON_DIR}:{BUILD_PYTHON_DIR}"
        if mode == "fallback":
            environ["CORTEX_RUNTIME_NO_STARLETTE"] = "1"
        out_path = tmp_path / f"stdout{len(workers)}.txt"
        err_path = tmp_path / f"stderr{len(workers)}.txt"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [PYTHON, "-u", "-m", "cortex_runtime.worker", "--socket", sock_path,
                 "--slots", str(slots), "--process-index", str(process_index),
                 "--spec", str(spec_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=environ,
                cwd=str(tmp_path))
        w = Worker(proc, listener, slots, out_path, err_path)
        workers.append(w)
        if connect:
            assert w.accept_slots(), f"worker exited early; stderr:\n{w.stderr}"
        return w

    yield start
    for w in workers:
        w.cleanup()
    for listener in listeners:
        listener.close()
    shutil.rmtree(sock_dir, ignore_errors=True)
