"""The shipped examples (examples/*) deploy as shipped and answer their sample requests; prediction
monitoring (classification counts, regression min/max/avg, monitoring.key) shows in `cortex get`."""

import io
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import PYTHON, REPO_ROOT, api_yaml

EXAMPLES = os.path.join(REPO_ROOT, "examples")


def copy_example(cluster, name):
    """A copy of examples/NAME in the cluster's projects dir (the repository stays untouched)."""
    project = os.path.join(cluster.projects_dir, name)
    shutil.copytree(os.path.join(EXAMPLES, name), project,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return project


def build_example_models(project, script):
    """Runs an example's model-building script in its copy (it writes next to itself)."""
    for generated in ("model", "models"):  # whatever a local run left in the repository
        shutil.rmtree(os.path.join(project, generated), ignore_errors=True)
    p = subprocess.run([PYTHON, script], cwd=project, capture_output=True, text=True,
                       timeout=180, stdin=subprocess.DEVNULL)  # torch: ~30 s idle, 60+ on a busy VM
    assert p.returncode == 0, f"{script} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def deploy_example(cluster, name, timeout=40):
    project = copy_example(cluster, name)
    out = cluster.deploy_ok(project)
    assert f"creating {name} (RealtimeAPI)" in out, out
    cluster.wait_live(name, timeout=timeout)
    return project


def table_rows(text):
    """The rows of the pretty tables in `text`, each split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["iris-classifier", "image-info", "form-upload", "text-reverser",
                                  "onnx-mlp", "python-models"])
def test_example_is_complete(name):
    """Each example has its configuration, predictor, README (with a deploy command and a curl
    sample) and a sample request."""
    root = os.path.join(EXAMPLES, name)
    files = set(os.listdir(root))
    assert {"cortex.yaml", "predictor.py", "README.md"} <= files, files
    assert any(f.startswith("sample.") for f in files), files
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    assert f"cortex deploy examples/{name}" in readme
    assert "curl " in readme or "cortex predict" in readme
    with open(os.path.join(root, "cortex.yaml")) as f:
        assert f"name: {name}" in f.read()


def test_iris_classifier_predicts_and_counts_classes(cluster):
    name = "iris-classifier"
    project = deploy_example(cluster, name)
    before = cluster.network_stats(name)

    # cortex predict with the shipped sample prints the class name (a text/plain answer) as a
    # JSON string, as v0.24 did.
    rc, out, err = cluster.cli("predict", name, os.path.join(project, "sample.json"))
    assert rc == 0, err
    assert out.strip() == '"setosa"', out

    virginica = {"sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1}
    versicolor = {"sepal_length": 5.9, "sepal_width": 2.8, "petal_length": 4.2, "petal_width": 1.3}
    for payload, expected in ((virginica, "virginica"), (virginica, "virginica"),
                              (versicolor, "versicolor")):
        r = cluster.post(name, payload)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers
        assert r.text == expected

    # Bad input: a 400 with the reason, and not counted as a prediction.
    r = cluster.post(name, {"sepal_length": 1})
    assert r.status_code == 400, r.text
    assert "missing field" in r.text, r.text  # an HTTPException: its detail as text

    expected = {"setosa": 1, "virginica": 2, "versicolor": 1}

    def counted():
        metrics = cluster.get_api(name)["metrics"]
        return metrics if metrics.get("class_distribution") == expected else None
    metrics = cluster.wait_until(counted, 10, interval=0.2,
                                 message="metrics.class_distribution to count the predictions")
    stats = metrics["network_stats"]
    assert stats["code_2xx"] - before["code_2xx"] == 4, (before, stats)
    assert stats["code_4xx"] - before["code_4xx"] == 1, (before, stats)

    out = cluster.cli_ok("get", name)
    rows = table_rows(out)
    assert ["class", "count"] in rows, out
    start = rows.index(["class", "count"])
    # Sorted by class name, as v0.24 (sort.Strings).
    assert rows[start + 1:start + 4] == [["setosa", "1"], ["versicolor", "1"],
                                         ["virginica", "2"]], out

    log = cluster.api_log(name)
    assert "trained LogisticRegression on 150 samples" in log, log


def test_image_info_describes_images_and_makes_thumbnails(cluster):
    from PIL import Image  # the example's own dependency

    name = "image-info"
    project = deploy_example(cluster, name)
    with open(os.path.join(project, "sample.png"), "rb") as f:
        png = f.read()
    assert len(png) < 10 * 1024
    with Image.open(io.BytesIO(png)) as img:
        width, height, mode = img.width, img.height, img.mode

    r = cluster.post(name, data=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    info = r.json()
    assert info == {"format": "PNG", "width": width, "height": height, "mode": mode,
                    "grayscale_average": 141.84}, info

    # The same bytes as application/octet-stream, thumbnail variant: PNG bytes back.
    r = cluster.post(f"{name}?thumbnail=true&size=48", data=png,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream", r.headers
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert max(thumb.size) == 48 and thumb.size == (48, 32), thumb.size

    r = cluster.post(f"{name}?thumbnail=true", data=png,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert max(thumb.size) == 32, thumb.size

    r = cluster.post(name, data=b"definitely not an image",
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 400, r.text
    assert "not an image" in r.text, r.text


def test_form_upload_counts_words_of_files_and_fields(cluster):
    name = "form-upload"
    project = deploy_example(cluster, name)
    with open(os.path.join(project, "sample.txt"), "rb") as f:
        sample = f.read()

    r = cluster.post(name, files={"file": ("sample.txt", sample, "text/plain")},
                     data={"lang": "en"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "filename": "sample.txt", "lang": "en", "lines": 4, "words": 40,
        "top_words": [{"word": "dog", "count": 4}, {"word": "fox", "count": 4},
                      {"word": "quick", "count": 3}, {"word": "forest", "count": 2},
                      {"word": "lazy", "count": 2}]}, r.text

    r = cluster.post(name, data={"text": "El perro y el gato. El perro duerme.", "lang": "es"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "filename": None, "lang": "es", "lines": 1, "words": 8,
        "top_words": [{"word": "perro", "count": 2}, {"word": "duerme", "count": 1},
                      {"word": "gato", "count": 1}]}, r.text

    r = cluster.post(name, {"text": "json is not a form"})
    assert r.status_code == 415, r.text
    r = cluster.post(name, data={"text": "x", "lang": "xx"})
    assert r.status_code == 400 and "unsupported lang" in r.text, r.text


def test_text_reverser_plain_text_headers_and_post_predict(cluster):
    name = "text-reverser"
    project = deploy_example(cluster, name)
    with open(os.path.join(project, "sample.txt"), "rb") as f:
        sample = f.read()

    r = cluster.post(name, data=sample, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    assert r.text == "!xetroC ,olleH"

    # Header names in any case.
    r = cluster.post(name, data=b"make predictions at scale",
                     headers={"Content-Type": "text/plain", "X-UPPERCASE": "True",
                              "x-reverse": "words", "User-Agent": "e2e-marker-5d1"})
    assert r.status_code == 200, r.text
    assert r.text == "SCALE AT PREDICTIONS MAKE"

    r = cluster.post(name, data="héllo".encode("latin-1"),
                     headers={"Content-Type": "text/plain; charset=latin-1"})
    assert r.status_code == 200 and r.text == "olléh", r.text

    # post_predict logged each answer after it was sent.
    def logged():
        log = cluster.api_log(name)
        return ("reversed 14 characters (request 1" in log
                and "reversed 25 characters (request 2, user agent e2e-marker-5d1)" in log)
    cluster.wait_until(logged, 10, message="post_predict's log lines in cortex logs")


def test_onnx_mlp_builds_its_model_and_classifies(cluster):
    name = "onnx-mlp"
    project = copy_example(cluster, name)
    out = build_example_models(project, "build_model.py")
    assert "training accuracy" in out, out
    assert os.path.isfile(os.path.join(project, "model", "1", "model.onnx"))
    assert f"creating {name} (RealtimeAPI)" in cluster.deploy_ok(project)
    cluster.wait_live(name, timeout=60)

    # The README's command, from the example's own directory, with the shipped sample.
    rc, out, err = cluster.cli("predict", name, "sample.json", cwd=project)
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["label"] == "setosa", answer
    assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-3), answer

    virginica = {"sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1}
    versicolor = {"sepal_length": 5.9, "sepal_width": 2.8, "petal_length": 4.2, "petal_width": 1.3}
    r = cluster.post(name, [virginica, versicolor])
    assert r.status_code == 200, r.text
    assert [a["label"] for a in r.json()] == ["virginica", "versicolor"], r.text
    r = cluster.post(name, {"sepal_length": 1})
    assert r.status_code == 400, r.text

    meta = cluster.http.get(cluster.url(name), timeout=10).json()["model_metadata"]
    assert meta["_cortex_default"]["versions"] == ["1"], meta
    assert meta["_cortex_default"]["input_signatures"] == {
        "1": {"input": {"shape": [None, 4], "type": "tensor(float)"}}}, meta


def test_python_models_chooses_its_model_by_name(cluster):
    name = "python-models"
    project = copy_example(cluster, name)
    out = build_example_models(project, "build_models.py")
    assert "logistic: LogisticRegression" in out and "tree: DecisionTreeClassifier" in out, out
    assert f"creating {name} (RealtimeAPI)" in cluster.deploy_ok(project)
    cluster.wait_live(name, timeout=60)

    rc, out, err = cluster.cli("predict", name, "sample.json", cwd=project)
    assert rc == 0, err
    assert json.loads(out) == {"model": "logistic", "version": "latest", "label": "virginica"}

    setosa = {"sepal_length": 5.2, "sepal_width": 3.6, "petal_length": 1.4, "petal_width": 0.3}
    r = cluster.post(f"{name}?model=tree&version=1", setosa)
    assert r.status_code == 200, r.text
    assert r.json() == {"model": "tree", "version": "1", "label": "setosa"}
    r = cluster.post(name, dict(setosa, model="tree"))
    assert r.json() == {"model": "tree", "version": "latest", "label": "setosa"}, r.text
    r = cluster.post(f"{name}?model=forest", setosa)
    assert r.status_code >= 400, r.text
    assert "'forest' model wasn't found in the list of available models" in r.text
    r = cluster.post(f"{name}?model=tree&version=7", setosa)
    assert r.status_code >= 400 and "model tree of version 7 wasn't found" in r.text, r.text

    meta = cluster.http.get(cluster.url(name), timeout=10).json()["model_metadata"]
    assert {m: meta[m]["versions"] for m in meta} == {"logistic": ["1"], "tree": ["1"]}, meta
    log = cluster.api_log(name)
    assert "loaded DecisionTreeClassifier from" in log and "loaded LogisticRegression" in log, log


REGRESSION_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        self.scale = config["scale"]

    def predict(self, payload):
        return payload["x"] * self.scale
"""


def test_regression_monitoring_min_max_avg(cluster):
    name = "regressor"
    cluster.deploy_ok({
        "cortex.yaml": api_yaml(name, predictor_extra="config:\n  scale: 2",
                                extra="monitoring:\n  model_type: regression"),
        "predictor.py": REGRESSION_PREDICTOR,
    })
    cluster.wait_live(name)

    # Nothing predicted yet: no statistics, and the pretty table shows dashes.
    metrics = cluster.get_api(name)["metrics"]
    assert "regression_stats" in metrics and metrics["regression_stats"] is None, metrics

    for x in (1, 2.5, 6):
        r = cluster.post(name, {"x": x})
        assert r.status_code == 200, r.text
    expected = {"min": 2, "max": 12, "sample_count": 3}

    def recorded():
        stats = cluster.get_api(name)["metrics"]["regression_stats"]
        return stats if stats and all(stats.get(k) == v for k, v in expected.items()) else None
    stats = cluster.wait_until(recorded, 10, interval=0.2,
                               message="metrics.regression_stats for 3 predictions")
    assert stats["avg"] == pytest.approx(19 / 3), stats
    assert "class_distribution" not in cluster.get_api(name)["metrics"]

    out = cluster.cli_ok("get", name)
    rows = table_rows(out)
    assert ["min", "max", "avg"] in rows, out
    i = rows.index(["min", "max", "avg"])
    assert rows[i + 1] == ["2", "12", "6.33333333"], out  # %.9g, as v0.24
    assert "class" not in out.split(), out


KEYED_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        if "label" not in payload:
            return {"score": 0.5}
        return {"label": payload["label"], "score": 0.9}
"""


def test_monitoring_key_selects_the_monitored_value(cluster):
    name = "keyed"
    cluster.deploy_ok({
        "cortex.yaml": api_yaml(name, extra="monitoring:\n  model_type: classification\n"
                                            "  key: label"),
        "predictor.py": KEYED_PREDICTOR,
    })
    cluster.wait_live(name)
    for label in ("cat", "dog", "cat", 7):
        r = cluster.post(name, {"label": label})
        assert r.status_code == 200, r.text
        assert r.json() == {"label": label, "score": 0.9}
    # A prediction without the key is answered, logged as a warning and not counted.
    r = cluster.post(name, {})
    assert r.status_code == 200 and r.json() == {"score": 0.5}, r.text

    expected = {"cat": 2, "dog": 1, "7": 1}
    cluster.wait_until(
        lambda: cluster.get_api(name)["metrics"].get("class_distribution") == expected, 10,
        interval=0.2, message=f"class_distribution == {expected}")
    rows = table_rows(cluster.cli_ok("get", name))
    assert ["cat", "2"] in rows and ["dog", "1"] in rows and ["7", "1"] in rows, rows
    cluster.wait_until(lambda: "label" in cluster.api_log(name)
                       and "warning: monitoring" in cluster.api_log(name), 10,
                       message="the monitoring warning in cortex logs")
    assert json.loads(cluster.cli_ok("get", name, "-o", "json"))[0]["spec"]["monitoring"] == \
        {"model_type": "classification", "key": "label"}
