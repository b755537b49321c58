"""Dependency files at a replica's and a batch worker's start (spec §1): dependencies.sh, then
conda-packages.txt, then requirements.txt into a venv of the API's own under the cluster dir,
shared by every replica and worker with the same requirements.

Everything installs offline: requirements name a package shipped in the project (./pkgs/mytool),
and the cluster's environment turns the package index and build isolation off as an air-gapped
user would (PIP_NO_INDEX=1, PIP_NO_BUILD_ISOLATION=0); the product passes neither itself.
"""

import json
import os
import shutil

import pytest

from conftest import api_yaml

OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

TERMINAL = {"status_succeeded", "status_completed_with_failures", "status_stopped",
            "status_timed_out", "status_worker_error", "status_worker_oom",
            "status_unexpected_error", "status_enqueue_failed"}

MYTOOL = {
    "pkgs/mytool/pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mytool"
        version = "0.1"
    """,
    "pkgs/mytool/mytool/__init__.py": """
        def greet(name):
            return f"mytool greets {name}"
    """,
}

# Waits (bounded) for the test's go-file, named in .env, then leaves a marker for the predictor.
DEPENDENCIES_SH = """
    echo "dependencies.sh sees GREETING=$GREETING"
    for i in $(seq 600); do
      [ -f "$GO_FILE" ] && break
      sleep 0.1
    done
    echo "$GREETING from dependencies.sh" > marker.txt
"""

PREDICTOR = """
import os
import sys

import mytool


class PythonPredictor:
    def __init__(self, config):
        with open("marker.txt") as f:
            self.marker = f.read().strip()

    def predict(self, payload):
        return {"greeting": mytool.greet(payload.get("name", "x")), "marker": self.marker,
                "python": sys.executable, "replica": os.environ.get("CORTEX_REPLICA_ID")}
"""

BATCH_PREDICTOR = """
import json
import os

import mytool


class PythonPredictor:
    def __init__(self, config, job_spec):
        self.out = os.path.join(config["out_dir"], job_spec["job_id"])
        os.makedirs(self.out, exist_ok=True)

    def predict(self, payload, batch_id):
        with open(os.path.join(self.out, f"batch-{batch_id}.json"), "w") as f:
            json.dump([mytool.greet(str(x)) for x in payload], f)
"""


CLUSTER_ENV = OFFLINE_PIP  # the module's cluster installs offline


@pytest.fixture
def oc(module_cluster):
    """The module's cluster (offline pip)."""
    return module_cluster


def venvs(c):
    path = os.path.join(c.cluster_dir, "venvs")
    if not os.path.isdir(path):
        return []
    return sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n)))


def test_requirements_dependencies_sh_and_dotenv_with_two_replicas_sharing_one_venv(oc):
    name = "deps-rt"
    go_file = os.path.join(oc.root, "go")
    project = oc.project("deps-rt", {
        "cortex.yaml": api_yaml(name, extra="autoscaling:\n  min_replicas: 2\n  max_replicas: 2"),
        "predictor.py": PREDICTOR,
        "requirements.txt": "./pkgs/mytool\n",
        "dependencies.sh": DEPENDENCIES_SH,
        ".env": f"GREETING=hello-from-dotenv\nGO_FILE={go_file}\n",
        **MYTOOL,
    })
    before = venvs(oc)
    oc.deploy_ok(project)

    # dependencies.sh is waiting: the API stays updating, its replicas are not restarted.
    oc.wait_until(lambda: oc.api_log(name).count("dependencies.sh sees GREETING="
                                                 "hello-from-dotenv") == 2,
                  30, interval=0.2, message="both replicas to run dependencies.sh")
    oc.wait_reconcile_passes(3)
    info = oc.get_api(name)
    assert info["status"]["status_code"] == "status_updating", info["status"]
    assert info["status"]["replica_counts"]["updated"]["initializing"] == 2, info["status"]
    open(go_file, "w").close()

    oc.wait_live(name, timeout=90)
    oc.wait_until(lambda: oc.get_api(name)["status"]["replica_counts"]["updated"]["ready"] == 2,
                  60, interval=0.2, message="both replicas to be ready")
    answers = {}
    for _ in range(40):
        r = oc.post(name, {"name": "ada"})
        assert r.status_code == 200, r.text
        answers[r.json()["replica"]] = r.json()
        if len(answers) == 2:
            break
    assert len(answers) == 2, answers  # both replicas answer
    new_venvs = [v for v in venvs(oc) if v not in before]
    assert len(new_venvs) == 1, venvs(oc)
    venv_python = os.path.join(oc.cluster_dir, "venvs", new_venvs[0], "bin", "python")
    for answer in answers.values():
        assert answer["greeting"] == "mytool greets ada"
        assert answer["marker"] == "hello-from-dotenv from dependencies.sh"
        assert answer["python"] == venv_python

    # Built once; the other replica waited for it and used it.
    log = oc.api_log(name)
    assert log.count("Successfully installed mytool") == 1, log
    assert log.count("requirements.txt: creating the virtual environment") == 1, log
    assert "requirements.txt: using the virtual environment" in log, log
    assert log.index("dependencies.sh: bash -e dependencies.sh") < log.index(
        "requirements.txt: creating the virtual environment"), log
    oc.cli_ok("delete", name, "-f")


def test_a_failing_requirement_puts_the_api_in_error_with_the_failing_line(oc):
    name = "deps-bad"
    oc.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": PREDICTOR,
                  "requirements.txt": "./pkgs/mytool\nno-such-package-cortex-e2e==1.0\n",
                  **MYTOOL})
    oc.wait_until(lambda: oc.status_code(name) == "status_error", 60, interval=0.2,
                  message=f"{name} to report status_error")
    log = oc.api_log(name)
    assert ("requirements.txt: pip install failed (exit status 1): ERROR: No matching "
            "distribution found for no-such-package-cortex-e2e==1.0; failed to start api") in log, log
    oc.cli_ok("delete", name, "-f")


@pytest.mark.skipif(shutil.which("conda") is not None, reason="conda is installed here")
def test_conda_packages_without_conda_is_a_clear_error(oc):
    name = "deps-conda"
    oc.deploy_ok({"cortex.yaml": api_yaml(name), "predictor.py": PREDICTOR,
                  "conda-packages.txt": "numpy\n"})
    oc.wait_until(lambda: oc.status_code(name) == "status_error", 60, interval=0.2,
                  message=f"{name} to report status_error")
    assert "conda-packages.txt: conda is not installed" in oc.api_log(name)
    oc.cli_ok("delete", name, "-f")


def test_a_batch_job_whose_predictor_needs_the_requirement_succeeds(oc):
    name = "deps-batch"
    out_dir = os.path.join(oc.root, "out")
    os.makedirs(out_dir, exist_ok=True)
    cortex_yaml = (f"- name: {name}\n"
                   f"  kind: BatchAPI\n"
                   f"  predictor:\n"
                   f"    type: python\n"
                   f"    path: predictor.py\n"
                   f"    config: {json.dumps({'out_dir': out_dir})}\n")
    oc.deploy_ok({"cortex.yaml": cortex_yaml, "predictor.py": BATCH_PREDICTOR,
                  "requirements.txt": "./pkgs/mytool\n", **MYTOOL})
    url = oc.url(name)
    oc.wait_until(lambda: oc.http.get(url, timeout=5).status_code == 401, 15, interval=0.05,
                  message=f"the gateway to route /{name}")
    r = oc.http.post(url, json={"workers": 2, "item_list": {"items": [1, 2, 3, 4],
                                                            "batch_size": 2}}, timeout=60)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]

    def terminal():
        status = oc.http.get(url, params={"jobID": job_id}, timeout=30).json()["job_status"]
        return status if status["status"] in TERMINAL else None

    status = oc.wait_until(terminal, 120, interval=0.2, message=f"job {job_id} to end")
    rc, log, err = oc.cli("logs", name, job_id, "--no-follow")
    assert status["status"] == "status_succeeded", (status, log, err)
    results = []
    for n in sorted(os.listdir(os.path.join(out_dir, job_id))):
        with open(os.path.join(out_dir, job_id, n)) as f:
            results.extend(json.load(f))
    assert sorted(results) == [f"mytool greets {x}" for x in (1, 2, 3, 4)], results
    # The worker's setup output is in the job's log (the venv: built here or reused).
    assert "requirements.txt:" in log and "setup]" in log, log
    oc.cli_ok("delete", name, "-f")
