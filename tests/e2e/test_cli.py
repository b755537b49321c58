"""The CLI around deploy and get: one invalid configuration per validation rule family, the
ways to name the configuration, the refusal to deploy a home directory, `get -v`, `get -w`,
and what network_stats counts."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import CORTEX_BIN, api_yaml

PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        self.config = config

    def predict(self, payload):
        return {"config": self.config}
"""

NAME = "bad-api"


def api(name=NAME, predictor_extra="", extra="", kind="RealtimeAPI"):
    return api_yaml(name, predictor_extra=predictor_extra, extra=extra).replace(
        "kind: RealtimeAPI", f"kind: {kind}")


# (case id, cortex.yaml, substrings of the error; the API name is checked when it is known)
BAD_CONFIGS = [
    ("name-too-long", api(name="a" * 43),
     ['"' + "a" * 43 + '" must be no more than 42 characters']),
    ("name-bad-characters", api(name="Bad_Name"),
     ['"Bad_Name" must contain only lower case letters, numbers, and dashes']),
    ("unknown-kind", api(kind="StreamingAPI"),
     ['kind: invalid value (got "StreamingAPI", must be "RealtimeAPI", "BatchAPI", or '
      '"TrafficSplitter")']),
    ("unknown-key", api(extra="replicas: 3"),
     ['key "replicas" is not supported']),
    ("wrong-type", api(predictor_extra="threads_per_process: many"),
     ["predictor: threads_per_process: must be an integer"]),
    ("processes-0", api(predictor_extra="processes_per_replica: 0"),
     ["predictor: processes_per_replica: must be greater than or equal to 1"]),
    ("processes-101", api(predictor_extra="processes_per_replica: 101"),
     ["predictor: processes_per_replica: must be less than or equal to 100"]),
    ("window-not-multiple-of-10s", api(extra="autoscaling:\n  window: 15s"),
     ["autoscaling: window: must be a multiple of 10s"]),
    ("min-greater-than-max", api(extra="autoscaling:\n  min_replicas: 5\n  max_replicas: 2"),
     ["min_replicas cannot be greater than max_replicas (5 > 2)"]),
    ("init-less-than-min", api(extra="autoscaling:\n  min_replicas: 3\n  init_replicas: 2"),
     ["init_replicas cannot be less than min_replicas (2 < 3)"]),
    ("target-over-max-concurrency",
     api(extra="autoscaling:\n  target_replica_concurrency: 20\n  max_replica_concurrency: 10"),
     ["target_replica_concurrency (20) cannot be greater than max_replica_concurrency (10)"]),
    ("bad-endpoint", api(extra="networking:\n  endpoint: /bad endpoint!"),
     ["networking: endpoint:", "is not a valid endpoint"]),
    ("double-slash-endpoint", api(extra="networking:\n  endpoint: /a//b"),
     ["networking: endpoint:", 'it contains "//"']),
    ("duplicate-names", api() + api(),
     [f'name "{NAME}" must be unique across apis']),
    ("duplicate-endpoints", api() + api(name="other-api", extra=f"networking:\n  endpoint: {NAME}"),
     [f"endpoint is already being used by {NAME}"]),
    ("bad-max-surge", api(extra="update_strategy:\n  max_surge: 150%"),
     ['update_strategy: max_surge: "150%" is not a valid value']),
    ("surge-and-unavailable-zero",
     api(extra="update_strategy:\n  max_surge: 0\n  max_unavailable: 0%"),
     ["max_surge and max_unavailable cannot both be zero"]),
    ("cortex-env-key", api(predictor_extra="env:\n  CORTEX_TOKEN: x"),
     ["predictor: env: CORTEX_TOKEN: environment variables starting with CORTEX_ are reserved"]),
    ("python-path-dot", api(predictor_extra="python_path: ."),
     ["predictor: python_path:", "is an invalid path (the project directory is already on the "
      "python path)"]),
    ("python-path-missing", api(predictor_extra="python_path: nowhere"),
     ["predictor: python_path:", "nowhere: path does not exist"]),
    ("cpu-too-small", api(extra="compute:\n  cpu: 10m"),
     ["compute: cpu: must be greater than or equal to 20m"]),
    ("bad-monitoring-type", api(extra="monitoring:\n  model_type: clustering"),
     ['monitoring: model_type: invalid value (got "clustering"']),
    ("bad-cortexlabs-image", api(predictor_extra="image: cortexlabs/python-predictor-cpu:0.23.0"),
     ["has a tag (0.23.0) which does not match your Cortex version (0.24.0)"]),
    ("not-a-list", "name: bad-api\nkind: RealtimeAPI\n",
     ["must contain a list of maps"]),
]


@pytest.mark.parametrize("case,yaml_text,expected", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_invalid_configuration_is_rejected(module_cluster, case, yaml_text, expected):
    c = module_cluster
    project = c.project(f"invalid-{case}", {"cortex.yaml": yaml_text, "predictor.py": PREDICTOR,
                                            "lib/module.py": ""})
    rc, out, err = c.deploy(project)
    assert rc != 0, f"deploy succeeded: stdout={out!r} stderr={err!r}"
    message = err.strip()
    assert message.startswith("error: cortex.yaml: "), message
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    if case not in ("name-too-long", "name-bad-characters", "not-a-list"):
        assert NAME in message, message
    assert len(message.splitlines()) == 1, message
    assert "creating" not in out and "updating" not in out, out
    assert c.list_apis() == [], "an API was deployed from an invalid configuration"


def test_deploy_directory_config_path_and_cwd(cluster):
    # A directory: its cortex.yaml.
    d1 = cluster.project("by-dir", {"cortex.yaml": api_yaml("by-dir"), "predictor.py": PREDICTOR})
    out = cluster.deploy_ok(d1)
    assert "creating by-dir (RealtimeAPI)" in out, out

    # A configuration file of another name (and another file in the same project).
    d2 = cluster.project("by-path", {
        "prod.yaml": api_yaml("by-path", predictor_extra="config:\n  flavour: prod"),
        "cortex.yaml": api_yaml("not-this-one"),
        "predictor.py": PREDICTOR,
    })
    out = cluster.deploy_ok(os.path.join(d2, "prod.yaml"))
    assert "creating by-path (RealtimeAPI)" in out and "not-this-one" not in out, out

    # No argument: ./cortex.yaml of the working directory.
    d3 = cluster.project("by-cwd", {"cortex.yaml": api_yaml("by-cwd"), "predictor.py": PREDICTOR})
    out = cluster.cli_ok("deploy", cwd=d3)
    assert "creating by-cwd (RealtimeAPI)" in out, out

    for name in ("by-dir", "by-path", "by-cwd"):
        cluster.wait_live(name)
    assert cluster.post("by-path", {}).json() == {"config": {"flavour": "prod"}}
    assert sorted(a["spec"]["name"] for a in cluster.list_apis()) == ["by-cwd", "by-dir",
                                                                      "by-path"]

    # A directory without cortex.yaml, and a missing file.
    empty = cluster.project("empty", {"predictor.py": PREDICTOR})
    rc, out, err = cluster.deploy(empty)
    assert rc != 0 and "cortex.yaml" in err and "does not exist" in err, err
    rc, out, err = cluster.deploy(os.path.join(d1, "missing.yaml"))
    assert rc != 0 and "missing.yaml" in err and "does not exist" in err, err


def test_deploy_from_the_home_directory_is_refused(cluster):
    home = cluster.project("home", {"cortex.yaml": api_yaml("from-home"),
                                    "predictor.py": PREDICTOR})
    env = dict(cluster.env, HOME=home)
    for args, cwd in ((["deploy", home], cluster.root),
                      (["deploy", os.path.join(home, "cortex.yaml")], cluster.root),
                      (["deploy"], home)):
        p = subprocess.run([CORTEX_BIN, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (args, p.stdout)
        assert "cannot deploy from your home directory" in p.stderr, (args, p.stderr)
        assert "creating" not in p.stdout, p.stdout
    assert cluster.list_apis() == []

    # The same project deploys once HOME is elsewhere.
    out = cluster.deploy_ok(home)
    assert "creating from-home (RealtimeAPI)" in out, out


def test_get_verbose_shows_the_configuration(cluster):
    name = "verbose"
    cluster.deploy_ok({
        "cortex.yaml": api_yaml(name, predictor_extra="threads_per_process: 3\n"
                                                      "config:\n  marker: conf-marker-77",
                                extra="autoscaling:\n  max_replica_concurrency: 77"),
        "predictor.py": PREDICTOR,
    })
    cluster.wait_live(name)
    plain = cluster.cli_ok("get", name)
    assert "conf-marker-77" not in plain, plain
    out = cluster.cli_ok("get", name, "-v")
    assert out.startswith(plain.rstrip("\n")) or plain.splitlines()[0] in out, (plain, out)
    assert "configuration" in out, out
    config_text = out[out.index("configuration"):]
    for text in ("marker: conf-marker-77", "threads_per_process: 3", "max_replica_concurrency: 77",
                 "path: predictor.py", f"endpoint: /{name}"):  # YAML, as v0.24 prints it
        assert text in config_text, (text, out)


def run_watch(cluster, args, wanted_renders=2, timeout=8):
    """Runs `cortex get -w ARGS` until it has printed `wanted_renders` times (or timeout), then
    SIGINTs it; returns (exit status, output, seconds it ran)."""
    path = os.path.join(cluster.root, f"watch-{time.monotonic_ns()}.out")
    with open(path, "w") as out:
        started = time.monotonic()
        p = subprocess.Popen([CORTEX_BIN, "get", "-w", *args], env=cluster.env,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            while time.monotonic() - started < timeout:
                with open(path) as f:
                    if f.read().count("realtime api" if not args else "endpoint:") >= \
                            wanted_renders:
                        break
                if p.poll() is not None:
                    break
                time.sleep(0.1)
            ran = time.monotonic() - started
            p.send_signal(signal.SIGINT)
            rc = p.wait(timeout=5)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    with open(path) as f:
        return rc, f.read(), ran


def test_get_watch_prints_repeatedly_until_interrupted(cluster):
    name = "watched"
    cluster.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": PREDICTOR})
    cluster.wait_live(name)

    rc, out, ran = run_watch(cluster, [])
    assert out.count("realtime api") >= 2, out
    assert out.count(name) >= 2, out
    assert ran >= 1.5, (ran, out)  # every 2 seconds, not continuously
    assert rc == 0, (rc, out)

    rc, out, ran = run_watch(cluster, [name])
    assert out.count(f"endpoint: {cluster.gateway_url}/{name}") >= 2, out
    assert rc == 0, (rc, out)


def test_get_requests_are_not_counted_in_network_stats(cluster):
    """Cortex records status codes and latency for predict POSTs only (spec §3 per-request
    pipeline, §10): a GET on the endpoint answers the summary message and is not a request."""
    name = "counted"
    cluster.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": PREDICTOR})
    cluster.wait_live(name)
    before = cluster.network_stats(name)
    for _ in range(3):
        r = cluster.http.get(cluster.url(name), timeout=10)
        assert r.status_code == 200 and "make a prediction" in r.json()["message"], r.text
    assert cluster.post(name, {}).status_code == 200
    cluster.wait_until(lambda: cluster.network_stats(name)["total"] > before["total"], 10,
                       message="the POST to be counted")
    after = cluster.network_stats(name)
    delta = {k: after[k] - before[k] for k in ("code_2xx", "code_4xx", "code_5xx", "total")}
    assert delta == {"code_2xx": 1, "code_4xx": 0, "code_5xx": 0, "total": 1}, (before, after)
    print(json.dumps(after))


def test_logs_no_follow_prints_the_whole_log_not_its_first_mebibyte(cluster):
    """The operator sends a log 1 MiB at a time; `cortex logs --no-follow` printed only the first
    chunk, silently."""
    c = cluster
    predictor = (
        "import sys\n\n\n"
        "class PythonPredictor:\n"
        "    def __init__(self, config):\n"
        "        for i in range(3000):\n"
        "            print(f'line {i:05d} ' + 'x' * 500)\n"
        "        print('the last line of the constructor')\n"
        "        sys.stdout.flush()\n\n"
        "    def predict(self, payload):\n"
        "        return {'ok': True}\n")
    c.deploy_ok({"cortex.yaml": api_yaml("chatty"), "predictor.py": predictor})
    c.wait_live("chatty")
    c.wait_until(lambda: "the last line of the constructor" in c.api_log("chatty"), 20,
                 interval=0.2, message="the constructor's output in the log")
    out = c.api_log("chatty")
    assert len(out) > 1.5 * (1 << 20), len(out)
    assert "line 00000 " in out and "line 02999 " in out


def complete(words):
    """COMPREPLY of the completion function for `words` (the last one being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    probe = (f"source <({CORTEX_BIN} completion bash)\n"
             f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _cortex\n"
             "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_completion_scripts_complete_commands_and_flags():
    assert complete(["cortex", "de"]) == ["deploy", "delete"]
    assert complete(["cortex", "cluster", ""]) == ["up", "down", "info", "--help", "-h"]
    assert "--gateway-port" in complete(["cortex", "cluster", "up", "--gat"])
    assert complete(["cortex", "env", "def"]) == ["default"]
    assert "operator" not in complete(["cortex", ""])  # server roles stay hidden
    zsh = subprocess.run([CORTEX_BIN, "completion", "zsh"], capture_output=True, text=True,
                         timeout=10)
    assert zsh.returncode == 0 and "bashcompinit" in zsh.stdout and "alias cx=cortex" in zsh.stdout
    bad = subprocess.run([CORTEX_BIN, "completion", "fish"], capture_output=True, text=True,
                         timeout=10)
    assert bad.returncode == 1
    assert "unsupported shell \"fish\": use bash or zsh" in bad.stderr


def test_cluster_info_debug_writes_an_archive_without_the_token(cluster, tmp_path):
    name = "debugged"
    cluster.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": PREDICTOR})
    cluster.wait_live(name)
    out = cluster.cli_ok("cluster", "info", "--debug", cwd=str(tmp_path))
    assert "status:   running" in out, out
    archives = list(tmp_path.glob("cortex-debug-*.tar"))
    assert len(archives) == 1 and f"wrote {archives[0]}" in out, (archives, out)
    import tarfile
    with tarfile.open(archives[0]) as tar:
        names = tar.getnames()
        info = json.load(tar.extractfile("cluster-info.json"))
        apis = json.load(tar.extractfile("apis.json"))
        log = tar.extractfile(f"logs/apis/{name}.log").read().decode()
        everything = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert info["status"] == "running", info
    assert [a["spec"]["name"] for a in apis] == [name], apis
    assert f"creating {name} (RealtimeAPI)" in log, log
    assert {"cluster.json", "logs/operator.log", "logs/gateway.log"} <= set(names), names
    assert not any("token" in n or n.endswith(".db") for n in names), names
    assert cluster.token().encode() not in everything  # the token is in no file either
