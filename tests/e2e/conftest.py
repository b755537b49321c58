"""Fixtures for the end-to-end tests: real `cortex` clusters on loopback ports.

Every cluster lives in its own temporary CORTEX_CLI_CONFIG_DIR (short, under /tmp, because the
replica's Unix sockets live below it and socket paths are limited to 108 bytes). Teardown always
runs `cortex cluster down` and then SIGKILLs whatever process still mentions the config dir in
its command line. Every wait is bounded; all traffic goes to 127.0.0.1.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time

import pytest
import requests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORTEX_BIN = os.environ.get("CORTEX_BIN") or "/work/main/build/src/apps/cortex"
PYTHON = "/usr/bin/python3"
LOOPBACK = "127.0.0.1"

# Environment variables of the caller that would change what the CLI does.
_SCRUBBED_ENV = ("CORTEX_OPERATOR_PORT", "CORTEX_GATEWAY_PORT", "CORTEX_PYTHON_RUNTIME_DIR",
                 "CORTEX_SCHED_BATCH", "CORTEX_GATEWAY_THREADS",
                 "PYTHONHOME", "PYTHONPATH", "http_proxy", "https_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def free_ports(n):
    ports = set()
    deadline = time.monotonic() + 10
    while len(ports) < n and time.monotonic() < deadline:
        ports.add(free_port())
    assert len(ports) == n, "could not find free ports"
    return sorted(ports)


def wait_until(predicate, timeout, interval=0.1, message="condition"):
    """Polls predicate() until it returns a truthy value; returns it. Fails after timeout s.

    Exceptions raised by predicate count as "not yet" (the last one is reported on timeout)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - polling: remember and retry
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {timeout}s waiting for {message}{detail}")
        time.sleep(interval)


def pids_mentioning(text):
    """Process ids (not ours) whose command line contains `text`."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def kill_leftovers(text):
    """SIGKILLs every process whose command line mentions `text`; returns their pids."""
    victims = pids_mentioning(text)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in victims):
        time.sleep(0.05)
    return victims


def write_files(root, files):
    """Writes {relative path: text} below root (text is dedented); returns root."""
    os.makedirs(root, exist_ok=True)
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(content).lstrip("\n") if isinstance(content, str)
                    else json.dumps(content))
    return root


def api_yaml(name, predictor_path="predictor.py", predictor_extra="", extra=""):
    """A one-API cortex.yaml. predictor_extra/extra are YAML lines indented for their level."""
    text = (f"- name: {name}\n"
            f"  kind: RealtimeAPI\n"
            f"  predictor:\n"
            f"    type: python\n"
            f"    path: {predictor_path}\n")
    if predictor_extra:
        text += textwrap.indent(textwrap.dedent(predictor_extra).strip("\n"), "    ") + "\n"
    if extra:
        text += textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ") + "\n"
    return text


class Cluster:
    """One local cluster: its config dir, ports, and helpers around the CLI and the gateway."""

    def __init__(self, root, up_args=(), cluster_yaml=None):
        self.root = root
        self.up_args = [str(a) for a in up_args]  # extra `cortex cluster up` flags
        if cluster_yaml is not None:  # `cortex cluster up --config`: limits, allowed_local_paths
            path = os.path.join(root, "cluster.yaml")
            with open(path, "w") as f:
                f.write(cluster_yaml.format(root=root))
            self.up_args += ["--config", path]
        self.config_dir = os.path.join(root, "cfg")
        self.cluster_dir = os.path.join(self.config_dir, "cluster")
        self.projects_dir = os.path.join(root, "projects")
        os.makedirs(self.config_dir)
        os.makedirs(self.projects_dir)
        self.operator_port = None
        self.gateway_port = None
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        self.env["CORTEX_CLI_CONFIG_DIR"] = self.config_dir
        self.env["NO_PROXY"] = self.env["no_proxy"] = "127.0.0.1,localhost"
        self.http = requests.Session()
        self.http.trust_env = False  # never a proxy: loopback only

    # ---- CLI ------------------------------------------------------------------------------
    def cli(self, *args, timeout=30, cwd=None):
        """Runs `cortex ARGS`; returns (rc, stdout, stderr)."""
        try:
            p = subprocess.run([CORTEX_BIN, *map(str, args)], env=self.env, cwd=cwd or self.root,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"`cortex {' '.join(map(str, args))}` did not finish in {timeout}s; "
                        f"stdout={e.stdout!r} stderr={e.stderr!r}")
        return p.returncode, p.stdout, p.stderr

    def cli_ok(self, *args, timeout=30, cwd=None):
        rc, out, err = self.cli(*args, timeout=timeout, cwd=cwd)
        assert rc == 0, f"`cortex {' '.join(map(str, args))}` exited {rc}\nstdout:\n{out}\nstderr:\n{err}"
        return out

    def cli_json(self, *args, timeout=30):
        return json.loads(self.cli_ok(*args, "-o", "json", timeout=timeout))

    # ---- lifecycle --------------------------------------------------------------------------
    def up(self, operator_port=None, gateway_port=None, timeout=60):
        """`cortex cluster up` on the given (default: fresh free) ports; returns (rc, out, err)."""
        if operator_port is None or gateway_port is None:
            operator_port, gateway_port = free_ports(2)
        self.operator_port, self.gateway_port = operator_port, gateway_port
        return self.cli("cluster", "up", "--operator-port", operator_port, "--gateway-port",
                        gateway_port, "--python", PYTHON, *self.up_args, timeout=timeout)

    def start(self, attempts=3):
        """Brings a cluster up on free ports and checks that *our* daemons serve them.

        A port taken between the probe and the start makes a daemon exit; try other ports."""
        problems = []
        for _ in range(attempts):
            rc, out, err = self.up()
            if rc == 0 and self._own_daemons_healthy():
                return self
            problems.append(f"rc={rc} stdout={out!r} stderr={err!r} logs={self.daemon_logs()}")
            self.down()
            kill_leftovers(self.config_dir)
        pytest.fail("cortex cluster up failed:\n" + "\n".join(problems))

    def _own_daemons_healthy(self):
        state = self.state()
        if not state:
            return False
        # The daemons may still be starting to listen: give them a moment, then check that the
        # processes that answer are ours (alive) and that our token is accepted.
        for _ in range(20):
            if pid_alive(state["operator_pid"]) and pid_alive(state["gateway_pid"]):
                try:
                    rc, _, _ = self.cli("get", timeout=15)
                    gw = self.http.get(self.gateway_url + "/_cortex/healthz", timeout=2)
                    if rc == 0 and gw.status_code == 200:
                        return True
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        return False

    def down(self, timeout=90):
        return self.cli("cluster", "down", timeout=timeout)

    def state(self):
        """cluster.json as a dict, or None."""
        try:
            with open(os.path.join(self.cluster_dir, "cluster.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def daemon_logs(self, limit=4000):
        out = {}
        for rel in ("logs/supervisor.log", "logs/operator.log", "logs/gateway.log"):
            try:
                with open(os.path.join(self.cluster_dir, rel), errors="replace") as f:
                    out[rel] = f.read()[-limit:]
            except OSError:
                pass
        return out

    def all_logs(self, limit=6000):
        """Every log under the cluster dir (tails), for failure reports."""
        chunks = []
        logs_dir = os.path.join(self.cluster_dir, "logs")
        for dirpath, _, names in os.walk(logs_dir):
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                try:
                    with open(path, errors="replace") as f:
                        text = f.read()[-limit:]
                except OSError:
                    continue
                chunks.append(f"----- {os.path.relpath(path, self.cluster_dir)} -----\n{text}")
        return "\n".join(chunks)

    # ---- projects and APIs ------------------------------------------------------------------
    @property
    def gateway_url(self):
        return f"http://{LOOPBACK}:{self.gateway_port}"

    def url(self, endpoint):
        return self.gateway_url + "/" + endpoint.lstrip("/")

    def project(self, name, files):
        """Writes a project directory from {path: text}; returns its path."""
        return write_files(os.path.join(self.projects_dir, name), files)

    def deploy(self, target, *flags, timeout=60):
        """`cortex deploy TARGET FLAGS`; TARGET is a path or a {path: text} dict (a new project)."""
        if isinstance(target, dict):
            target = self.project(f"p{len(os.listdir(self.projects_dir))}", target)
        return self.cli("deploy", target, *flags, timeout=timeout)

    def deploy_ok(self, target, *flags, timeout=60):
        rc, out, err = self.deploy(target, *flags, timeout=timeout)
        assert rc == 0, f"deploy failed ({rc})\nstdout:\n{out}\nstderr:\n{err}"
        return out

    def get_api(self, name):
        """`cortex get NAME -o json`[0]."""
        data = self.cli_json("get", name)
        assert isinstance(data, list) and len(data) == 1, data
        return data[0]

    def list_apis(self):
        data = self.cli_json("get")
        assert isinstance(data, list) and len(data) == 1, data
        return data[0]["apis"]

    def status_code(self, name):
        rc, out, _ = self.cli("get", name, "-o", "json")
        if rc != 0:
            return None
        return json.loads(out)[0]["status"]["status_code"]

    def wait_live(self, name, timeout=30, routed=True):
        """Waits until `cortex get NAME` says status_live with a ready replica and, if routed,
        until the gateway routes the endpoint to a replica (a GET on the endpoint answers 200;
        the gateway learns routes a few ms after the operator). Returns the `get` JSON."""
        def live():
            info = self.get_api(name)
            ready = info["status"]["replica_counts"]["updated"]["ready"]
            return info if info["status"]["status_code"] == "status_live" and ready >= 1 else None
        info = self.wait_until(live, timeout, interval=0.2, message=f"{name} to be live")
        if routed:
            endpoint = info["endpoint"]
            self.wait_until(lambda: self.http.get(endpoint, timeout=5).status_code == 200, 10,
                            interval=0.05, message=f"the gateway to route {endpoint}")
        return info

    def network_stats(self, name):
        """metrics.network_stats of `cortex get NAME` with zeros for a missing one."""
        stats = self.get_api(name)["metrics"]["network_stats"]
        return stats or {"code_2xx": 0, "code_4xx": 0, "code_5xx": 0, "total": 0, "latency": None}

    def wait_until(self, predicate, timeout, interval=0.1, message="condition"):
        return wait_until(predicate, timeout, interval=interval, message=message)

    def token(self):
        """The operator token `cluster up` wrote."""
        with open(os.path.join(self.cluster_dir, "operator.token")) as f:
            return f.read().strip()

    def reconcile_passes(self):
        r = self.http.get(f"http://127.0.0.1:{self.operator_port}/healthz", timeout=5)
        return r.json()["reconcile_passes"]

    def wait_reconcile_passes(self, n=3, timeout=30):
        """Waits until the operator's control loop has made `n` whole passes from now (a pass
        in progress does not count): for tests that check that nothing happens, instead of a
        fixed sleep."""
        start = self.reconcile_passes()
        self.wait_until(lambda: self.reconcile_passes() >= start + n + 1, timeout, interval=0.05,
                        message=f"{n} reconcile passes")

    def post(self, endpoint, payload=None, timeout=30, **kwargs):
        if payload is not None:
            kwargs["json"] = payload
        return self.http.post(self.url(endpoint), timeout=timeout, **kwargs)

    def wait_serving(self, endpoint, payload=None, timeout=30):
        """Waits until a POST to endpoint answers 200; returns the response."""
        def ok():
            r = self.post(endpoint, payload if payload is not None else {}, timeout=10)
            return r if r.status_code == 200 else None
        return self.wait_until(ok, timeout, interval=0.2, message=f"{endpoint} to answer 200")

    def api_log(self, name):
        rc, out, err = self.cli("logs", name, "--no-follow")
        assert rc == 0, f"cortex logs {name} --no-follow exited {rc}: {err}"
        return out

    def close(self):
        try:
            if os.path.exists(os.path.join(self.cluster_dir, "cluster.json")):
                self.down()
        finally:
            kill_leftovers(self.config_dir)
            self.http.close()


@pytest.fixture(scope="session")
def cortex_bin():
    # A binary being relinked is briefly not executable: give a concurrent build a moment.
    deadline = time.monotonic() + 60
    while not os.access(CORTEX_BIN, os.X_OK) and time.monotonic() < deadline:
        time.sleep(1)
    if not os.access(CORTEX_BIN, os.X_OK):
        pytest.fail(f"cortex binary not found at {CORTEX_BIN} (set CORTEX_BIN or build it)")
    return CORTEX_BIN


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def cluster_factory(request, cortex_bin):
    """make(start=True, up_args=(), cluster_yaml=None) -> a new Cluster in its own config dir
    (up_args: extra `cortex cluster up` flags, e.g. ("--autoscaler-tick-ms", 1000); cluster_yaml:
    its cluster configuration, "{root}" is the cluster's directory); all are torn down afterwards."""
    made = []

    def make(start=True, up_args=(), cluster_yaml=None):
        root = tempfile.mkdtemp(prefix="cx-e2e-", dir="/tmp")
        c = Cluster(root, up_args=up_args, cluster_yaml=cluster_yaml)
        made.append(c)
        if start:
            c.start()
        return c

    yield make

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for c in made:
        if failed:
            # Shown by pytest with the failure (captured output of the teardown phase).
            print(f"\n===== logs of cluster {c.config_dir} =====\n{c.all_logs()}")
        try:
            c.close()
        except BaseException as e:  # noqa: BLE001 - tear every cluster down, report after
            problems.append(f"tearing down {c.config_dir}: {e!r}")
            kill_leftovers(c.config_dir)
        leftovers = [p for p in pids_mentioning(c.config_dir) if pid_alive(p)]
        if leftovers:
            problems.append(f"processes survived teardown of {c.config_dir}: {leftovers}")
            kill_leftovers(c.config_dir)
        if not (failed or problems or os.environ.get("CORTEX_E2E_KEEP")):
            shutil.rmtree(c.root, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def cluster(cluster_factory):
    """A running cluster on free loopback ports (fresh per test)."""
    return cluster_factory()


def _teardown_cluster(c, keep):
    """Stops a cluster and kills what survives; returns a list of problems (empty when clean)."""
    problems = []
    try:
        c.close()
    except BaseException as e:  # noqa: BLE001 - tear down, report after
        problems.append(f"tearing down {c.config_dir}: {e!r}")
        kill_leftovers(c.config_dir)
    leftovers = [p for p in pids_mentioning(c.config_dir) if pid_alive(p)]
    if leftovers:
        problems.append(f"processes survived teardown of {c.config_dir}: {leftovers}")
        kill_leftovers(c.config_dir)
    if not (keep or problems or os.environ.get("CORTEX_E2E_KEEP")):
        shutil.rmtree(c.root, ignore_errors=True)
    return problems


@pytest.fixture(scope="module")
def _module_cluster(request, cortex_bin):
    root = tempfile.mkdtemp(prefix="cx-e2e-", dir="/tmp")
    # A module's CLUSTER_YAML is its cluster's configuration ("{root}": the cluster's directory),
    # CLUSTER_UP_ARGS extra `cortex cluster up` flags, CLUSTER_ENV extra environment variables.
    c = Cluster(root, up_args=getattr(request.module, "CLUSTER_UP_ARGS", ()),
                cluster_yaml=getattr(request.module, "CLUSTER_YAML", None))
    c.env.update(getattr(request.module, "CLUSTER_ENV", {}))
    c.failed_tests = []
    try:
        c.start()
    except BaseException:
        _teardown_cluster(c, keep=True)
        raise
    yield c
    problems = _teardown_cluster(c, keep=bool(c.failed_tests))
    assert not problems, "\n".join(problems)


@pytest.fixture
def module_cluster(request, _module_cluster):
    """One running cluster shared by every test of a module that asks for it (cheaper than a
    cluster per test when a module deploys many small APIs). Tests must use API names of their
    own. A failed test prints the cluster's logs; the cluster's files are then kept."""
    yield _module_cluster
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        _module_cluster.failed_tests.append(request.node.nodeid)
        print(f"\n===== logs of cluster {_module_cluster.config_dir} =====\n"
              f"{_module_cluster.all_logs()}")
