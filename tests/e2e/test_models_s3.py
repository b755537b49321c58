"""Models from S3 (s3rver on loopback): the layout checked at deploy, versions fetched before the
replica serves, and a version uploaded while the API runs served within two polls.

The cluster reaches s3rver through CORTEX_S3_ENDPOINT and s3rver's credentials, as batch jobs do.
"""
import os
import sys
import time

import pytest

from conftest import REPO_ROOT, api_yaml
from test_models import TEXT_MODEL_PREDICTOR as PREDICTOR

sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
from peers.s3rver import ACCESS_KEY, SECRET_KEY, boto_client, running_s3rver  # noqa: E402

BUCKET = "models"
POLL_S = 0.5


@pytest.fixture(scope="module")
def s3():
    with running_s3rver() as endpoint:
        client = boto_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client


@pytest.fixture
def s3_cluster(cluster_factory, s3):
    endpoint, _ = s3
    c = cluster_factory(start=False)
    c.env.update({"CORTEX_S3_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                  "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "CORTEX_MODEL_POLL_S": str(POLL_S),
                  "CORTEX_MODEL_WATCH_S": "0.1"})
    return c.start()


def put(client, key, body):
    client.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def test_s3_models_are_served_and_a_new_version_is_picked_up(s3_cluster, s3):
    _, client = s3
    put(client, "text/1/value.txt", "one")
    put(client, "named/a/value.txt", "a-plain")
    name = "s3-models"
    project = s3_cluster.project(name, {
        "cortex.yaml": api_yaml(name, predictor_extra=f"""
            models:
              paths:
                - {{name: text, model_path: s3://{BUCKET}/text}}
                - {{name: a, model_path: s3://{BUCKET}/named/a/}}
            """),
        "predictor.py": PREDICTOR,
    })
    s3_cluster.deploy_ok(project)
    s3_cluster.wait_live(name, timeout=60)
    assert s3_cluster.post(name, {"model": "text"}).json() == {"value": "one"}
    assert s3_cluster.post(name, {"model": "a"}).json() == {"value": "a-plain"}

    uploaded = time.monotonic()
    put(client, "text/2/value.txt", "two")
    s3_cluster.wait_until(
        lambda: s3_cluster.post(name, {"model": "text"}).json() == {"value": "two"},
        timeout=20, interval=0.05, message="version 2 from S3 answering")
    assert time.monotonic() - uploaded < 2 * POLL_S + 2.0
    assert s3_cluster.post(name, {"model": "text", "version": "1"}).json() == {"value": "one"}
    log = s3_cluster.api_log(name)
    assert "model text version 2 downloaded" in log


def test_s3_layout_errors_fail_the_deploy(s3_cluster, s3):
    _, client = s3
    put(client, "mixed/1/value.txt", "v")
    put(client, "mixed/extra.txt", "x")
    for path, expected in ((f"s3://{BUCKET}/mixed", "version directories and other files are mixed"),
                           (f"s3://{BUCKET}/nothing-here",
                            "dir not found or insufficient permissions")):
        project = s3_cluster.project("s3-bad", {
            "cortex.yaml": api_yaml("s3-bad", predictor_extra=f"model_path: {path}"),
            "predictor.py": PREDICTOR,
        })
        rc, out, err = s3_cluster.deploy(project)
        assert rc != 0
        assert f"s3-bad (RealtimeAPI): predictor: model_path: {path}" in out + err
        assert expected in out + err
    assert s3_cluster.list_apis() == []
