"""The Kubernetes objects the platform can produce, checked against the official schemas.

Drives the real `cortex` binary (no cluster is needed or touched): `cortex cluster up --provider
kubernetes --dry-run` for several cluster.yaml files, and `cortex deploy --dry-run --provider
kubernetes` for every example and for projects that cover each workload kind and placement
(spot, GPU, Inferentia, a custom image, a batch Job). Every object goes through two checks:
validate_manifests.mjs (npm kubernetes-models: types, required fields, formats) and
known_fields.py (python3-kubernetes' models: no field the API does not know). The golden files of
the unit tests (src/backends/kubernetes/testdata) are checked the same way.
"""
import glob
import os
import subprocess
import tempfile
import textwrap

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CORTEX_BIN = os.environ.get("CORTEX_BIN") or os.path.join(REPO_ROOT, "build/src/apps/cortex")
GOLDEN = sorted(glob.glob(os.path.join(REPO_ROOT, "src/backends/kubernetes/testdata/*.yaml")))
EXAMPLES = sorted(glob.glob(os.path.join(REPO_ROOT, "examples/*/cortex.yaml")))

SPOT_CLUSTER = """
cluster_name: prod
namespace: ml
node_groups:
  - name: cpu-spot
    node_labels: {eks.amazonaws.com/capacityType: SPOT}
    spot: true
    tolerations: [{key: spot, value: "true", effect: NoSchedule}]
  - name: cpu
    node_labels: {eks.amazonaws.com/capacityType: ON_DEMAND}
  - name: gpu
    node_labels: {node.kubernetes.io/instance-type: g4dn.xlarge}
    accelerator: nvidia
    tolerations: [{key: nvidia.com/gpu, effect: NoSchedule}]
  - name: inf
    node_labels: {node.kubernetes.io/instance-type: inf1.xlarge}
    accelerator: inferentia
"""

WORKLOADS = """
- name: cpu-api
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, env: {A: "1"}}
  compute: {cpu: 1, mem: 1Gi}
  update_strategy: {max_surge: 2, max_unavailable: 10%}
- name: gpu-api
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  compute: {gpu: 1, mem: 8Gi}
- name: inf-api
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  compute: {inf: 1}
- name: custom-image
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, image: registry.example.com/team/iris:3}
- name: batch-api
  kind: BatchAPI
  predictor: {type: python, path: predictor.py}
- name: splitter
  kind: TrafficSplitter
  apis: [{name: cpu-api, weight: 50}, {name: custom-image, weight: 50}]
"""

PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return payload
"""


def cortex(*args, cwd=None):
    env = dict(os.environ, CORTEX_CLI_CONFIG_DIR=tempfile.mkdtemp(prefix="cx-k8s-"))
    return subprocess.run([CORTEX_BIN, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=env)


def validate(path):
    """Both checks on one YAML file; returns their combined output (asserts they passed)."""
    schema = subprocess.run(["node", os.path.join(HERE, "validate_manifests.mjs"), path],
                            capture_output=True, text=True, timeout=120)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    fields = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "known_fields.py"), path],
                            capture_output=True, text=True, timeout=120)
    assert fields.returncode == 0, fields.stdout + fields.stderr
    return schema.stdout


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def rendered(tmp_path, result):
    assert result.returncode == 0, result.stderr
    path = tmp_path / "out.yaml"
    path.write_text(result.stdout)
    return str(path), [d for d in yaml.safe_load_all(result.stdout) if d is not None]


@pytest.fixture
def project(tmp_path):
    directory = tmp_path / "project"
    directory.mkdir()
    write(directory, "predictor.py", PREDICTOR)
    write(directory, "cortex.yaml", WORKLOADS)
    write(directory, "cluster.yaml", SPOT_CLUSTER)
    return directory


@pytest.mark.parametrize("path", GOLDEN, ids=os.path.basename)
def test_golden_files_are_valid(path):
    assert validate(path).count("\nok ") + 1 == len(
        [d for d in yaml.safe_load_all(open(path)) if d is not None])


@pytest.mark.parametrize("cluster_yaml,flags", [
    ("", []),
    (SPOT_CLUSTER + "api_gateway: none\nstorage_class: gp3\noperator_service_type: ClusterIP\n",
     ["--namespace", "serving"]),
    ("image: registry.example.com/cortex:1\ngateway_replicas: 3\n", ["--api-gateway", "none"]),
], ids=["defaults", "custom", "flags"])
def test_cluster_install_is_valid(tmp_path, cluster_yaml, flags):
    config = write(tmp_path, "cluster.yaml", cluster_yaml)
    path, docs = rendered(tmp_path, cortex("cluster", "up", "--provider", "kubernetes",
                                           "--dry-run", "--config", config, *flags))
    validate(path)
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap",
                     "PersistentVolumeClaim", "Deployment", "Service", "Deployment", "Service"]
    if "--namespace" in flags:
        assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs} == {"serving"}
    gateway_ports = [p["name"] for p in docs[10]["spec"]["ports"]]
    if "none" in flags or "api_gateway: none" in cluster_yaml:
        assert gateway_ports == ["load-balancer"]
    else:
        assert sorted(gateway_ports) == ["api-gateway", "load-balancer"]
    # A fresh token each time, never an empty one.
    assert len(docs[4]["stringData"]["token"]) >= 32


def test_every_workload_kind_and_placement_is_valid(tmp_path, project):
    path, docs = rendered(tmp_path, cortex("deploy", "--dry-run", "--provider", "kubernetes",
                                           "--cluster-config", str(project / "cluster.yaml"),
                                           cwd=project))
    validate(path)
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert set(by_name) == {("Deployment", "api-cpu-api"), ("Service", "api-cpu-api"),
                            ("Deployment", "api-gpu-api"), ("Service", "api-gpu-api"),
                            ("Deployment", "api-inf-api"), ("Service", "api-inf-api"),
                            ("Deployment", "api-custom-image"), ("Service", "api-custom-image"),
                            ("Job", next(n for k, n in by_name if k == "Job"))}
    assert all(d["metadata"]["namespace"] == "ml" for d in docs)
    assert "# splitter (TrafficSplitter): routed by the gateway" in open(path).read()

    def pod(name):
        return by_name[("Deployment", name)]["spec"]["template"]["spec"]

    cpu = by_name[("Deployment", "api-cpu-api")]
    assert cpu["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": "10%"}
    assert len(cpu["metadata"]["labels"]["predictorID"]) == 63
    terms = pod("api-cpu-api")["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [t["matchExpressions"][0]["values"] for t in terms] == [["SPOT"], ["ON_DEMAND"]]
    assert pod("api-gpu-api")["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod("api-inf-api")["containers"][0]["resources"]["limits"][
        "aws.amazon.com/neuron"] == "1"
    assert pod("api-custom-image")["containers"][0]["image"] == "registry.example.com/team/iris:3"
    assert pod("api-cpu-api")["containers"][0]["image"] == "cortex:0.24.0"
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["metadata"]["name"].startswith("batch-api-")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_every_example_renders_valid_objects(tmp_path, config):
    path, docs = rendered(tmp_path, cortex("deploy", os.path.dirname(config), "--dry-run",
                                           "--provider", "kubernetes"))
    validate(path)
    assert any(d["kind"] in ("Deployment", "Job") for d in docs)


def test_the_ids_are_the_operators(tmp_path, project):
    """The same project and file give the same predictorID (the operator's hash), twice."""
    ids = []
    for _ in range(2):
        _, docs = rendered(tmp_path, cortex("deploy", "--dry-run", "--provider", "kubernetes",
                                            cwd=project))
        ids.append([d["metadata"]["labels"].get("predictorID") for d in docs
                    if d["kind"] == "Deployment"])
    assert ids[0] == ids[1] and all(ids[0])
    (project / "predictor.py").write_text(PREDICTOR + "\n# changed\n")
    _, docs = rendered(tmp_path, cortex("deploy", "--dry-run", "--provider", "kubernetes",
                                        cwd=project))
    changed = [d["metadata"]["labels"]["predictorID"] for d in docs if d["kind"] == "Deployment"]
    assert all(a != b for a, b in zip(changed, ids[0]))


@pytest.mark.parametrize("args,cluster_yaml,message", [
    (["deploy", "--dry-run"], None,
     "--dry-run prints the Kubernetes objects of the APIs: add --provider kubernetes"),
    (["cluster", "up", "--provider", "kubernetes", "--kubeconfig", "missing-kubeconfig"], None,
     "kubeconfig: missing-kubeconfig: cannot open file"),
    (["cluster", "up", "--dry-run"], None, "add --provider kubernetes"),
    (["deploy", "--dry-run", "--provider", "kubernetes", "--cluster-config", "cluster.yaml"],
     "node_groups: [{name: cpu, node_labels: {a: b}}]\n",
     "cortex.yaml: gpu-api (RealtimeAPI): compute: gpu: no node group of the cluster has NVIDIA"),
    (["deploy", "--dry-run", "--provider", "kubernetes", "--cluster-config", "cluster.yaml"],
     "namespace: Bad_Name\n", "cluster.yaml: namespace: \"Bad_Name\" must be"),
    (["cluster", "up", "--provider", "kubernetes", "--dry-run", "--namespace", "-x"], None,
     "--namespace: \"-x\" must be"),
], ids=["dry-run-needs-provider", "no-kubeconfig", "local-dry-run", "placement",
        "bad-cluster-yaml", "bad-namespace"])
def test_errors_say_what_is_wrong(project, args, cluster_yaml, message):
    if cluster_yaml is not None:
        write(project, "cluster.yaml", cluster_yaml)
    result = cortex(*args, cwd=project)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def test_the_checks_catch_bad_objects(tmp_path):
    """Both checks fail on what they are there to catch (so a pass above means something)."""
    bad_type = write(tmp_path, "bad-type.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: x}
        spec:
          replicas: "2"
          selector: {matchLabels: {a: b}}
          template: {spec: {containers: [{name: c, image: i}]}}
        """)
    with pytest.raises(AssertionError, match="replicas must be integer"):
        validate(bad_type)
    misspelt = write(tmp_path, "misspelt.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: x}
        spec: {selectr: {a: b}, ports: [{port: 80}]}
        """)
    with pytest.raises(AssertionError, match="spec.selectr is not a field of V1ServiceSpec"):
        validate(misspelt)


def test_the_rendered_replica_command_is_one_the_binary_runs(tmp_path, project):
    """The pod's args, with the operator pointed at a closed port: the binary accepts every flag
    and fails only for want of an operator."""
    _, docs = rendered(tmp_path, cortex("deploy", "--dry-run", "--provider", "kubernetes",
                                        cwd=project))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["cortex"]
    args = list(container["args"])
    token = tmp_path / "token"
    token.write_text("t")
    args[args.index("--operator") + 1] = "http://127.0.0.1:9"  # the discard port: refused
    args[args.index("--token-file") + 1] = str(token)
    args[args.index("--data-dir") + 1] = str(tmp_path / "data")
    result = cortex(*args, "--wait-s", "1")
    assert result.returncode == 1, result.stderr
    assert "did not answer GET /v1/apis/cpu-api/replica-spec" in result.stderr, result.stderr
