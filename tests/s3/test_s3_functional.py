"""Functional tests of the C++ S3 client (through cortex_s3_tool) against s3rver on loopback.

s3rver (npm, installed by scripts/install-deps.sh into build/_deps/s3rver) is a local S3 look-alike:
it stores objects on disk and speaks the REST API, but does not verify SigV4 signatures, which
src/s3/s3_client_test.cc checks against botocore instead. boto3 seeds and inspects the bucket, so
what our client reads and writes is judged by an independent client.

Environment: CORTEX_S3_TOOL (default build/src/s3/cortex_s3_tool), CORTEX_S3RVER_DIR (default
build/_deps/s3rver). All traffic goes to 127.0.0.1; every wait is bounded.
"""
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.environ.get("CORTEX_S3_TOOL") or os.path.join(REPO_ROOT, "build", "src", "s3",
                                                         "cortex_s3_tool")
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
from peers.s3rver import (ACCESS_KEY, LOOPBACK, SECRET_KEY, boto_client,  # noqa: E402
                          running_s3rver)
BUCKET = "models"

BINARY = bytes(range(256)) * 1024 + random.Random(7).randbytes(77_777)
SPACED_KEY = "dir with space/file name \u00fc+1 (final).txt"
SEED = {
    "resnet/model.onnx": BINARY,
    "resnet/labels.txt": b"cat\ndog\n",
    "iris/model.pkl": b"\x80\x04pickle",
    "iris/empty": b"",
    SPACED_KEY: "h\u00e9llo w\u00f6rld\n".encode(),
    "resnetx/other.txt": b"not under resnet/",
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3rver():
    if shutil.which("node") is None:
        pytest.skip("node is not installed; the S3 functional tests need s3rver")
    assert os.access(TOOL, os.X_OK), f"{TOOL} is not built (set CORTEX_S3_TOOL)"
    with running_s3rver() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def boto(s3rver):
    client = boto_client(s3rver)
    client.create_bucket(Bucket=BUCKET)
    for key, body in SEED.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client


def tool(endpoint, *args, access_key=ACCESS_KEY, timeout=60):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    env.pop("AWS_SESSION_TOKEN", None)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                  "ALL_PROXY"):
        env.pop(proxy, None)
    result = subprocess.run([TOOL, "--endpoint", endpoint, *args], capture_output=True,
                            env=env, timeout=timeout)
    assert result.returncode in (0, 1), (result.returncode, result.stderr.decode())
    document = json.loads(result.stdout)
    assert (result.returncode == 1) == ("error" in document), document
    return document


def boto_keys(boto, prefix):
    keys = []
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return sorted(keys)


def test_list_with_prefix_returns_only_objects_under_it(s3rver, boto):
    listed = tool(s3rver, "list", f"s3://{BUCKET}/resnet/")
    assert listed["objects"] == [
        {"key": "resnet/labels.txt", "size": 8},
        {"key": "resnet/model.onnx", "size": len(BINARY)},
    ]
    assert listed["count"] == 2


def test_list_whole_bucket_matches_boto3(s3rver, boto):
    listed = tool(s3rver, "list", f"s3://{BUCKET}")
    ours = [(o["key"], o["size"]) for o in listed["objects"]]
    assert ours == boto_keys(boto, "")
    assert (SPACED_KEY, len(SEED[SPACED_KEY])) in ours


def test_list_follows_continuation_tokens_with_small_pages(s3rver, boto):
    keys = [f"paged/{i:03d}-{'x' * (i % 5)}.bin" for i in range(23)]
    for key in keys:
        boto.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    for max_keys in ("1", "7", "23", "1000"):
        listed = tool(s3rver, "list", f"s3://{BUCKET}/paged/", "--max-keys", max_keys)
        assert [o["key"] for o in listed["objects"]] == sorted(keys), max_keys
        assert all(o["size"] == len(o["key"]) for o in listed["objects"])


def test_list_of_more_than_one_default_page(s3rver, boto):
    # 1,050 objects: more than ListObjectsV2's default page of 1,000.
    keys = [f"many/obj-{i:04d}" for i in range(1050)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: boto.put_object(Bucket=BUCKET, Key=k, Body=b"1"), keys))
    started = time.monotonic()
    listed = tool(s3rver, "list", f"s3://{BUCKET}/many/")
    assert listed["count"] == 1050
    assert [o["key"] for o in listed["objects"]] == keys
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("mode", [[], ["--stream"]], ids=["get", "stream"])
def test_get_binary_object_byte_for_byte(s3rver, boto, tmp_path, mode):
    out = tmp_path / "model.onnx"
    got = tool(s3rver, "get", f"s3://{BUCKET}/resnet/model.onnx", "--out", str(out), *mode)
    assert got == {"size": len(BINARY), "sha256": hashlib.sha256(BINARY).hexdigest()}
    assert out.read_bytes() == BINARY


def test_get_empty_object(s3rver, boto):
    assert tool(s3rver, "get", f"s3://{BUCKET}/iris/empty") == {
        "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}


def test_key_with_spaces_unicode_and_plus(s3rver, boto, tmp_path):
    out = tmp_path / "spaced"
    got = tool(s3rver, "get", f"s3://{BUCKET}/{SPACED_KEY}", "--out", str(out))
    assert got["size"] == len(SEED[SPACED_KEY])
    assert out.read_bytes() == SEED[SPACED_KEY]
    listed = tool(s3rver, "list", f"s3://{BUCKET}/dir with space/")
    assert listed["objects"] == [{"key": SPACED_KEY, "size": len(SEED[SPACED_KEY])}]


def test_put_is_readable_by_boto3(s3rver, boto, tmp_path):
    body = random.Random(3).randbytes(300_000)
    source = tmp_path / "upload.bin"
    source.write_bytes(body)
    key = "uploads/our client/\u00e9t\u00e9+1.bin"
    assert tool(s3rver, "put", f"s3://{BUCKET}/{key}", "--file", str(source))["ok"] is True
    assert boto.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    assert tool(s3rver, "put", f"s3://{BUCKET}/uploads/empty", "--data", "")["ok"] is True
    assert boto.get_object(Bucket=BUCKET, Key="uploads/empty")["Body"].read() == b""


def test_missing_key_is_not_found_naming_the_object(s3rver, boto):
    for mode in ([], ["--stream"]):
        error = tool(s3rver, "get", f"s3://{BUCKET}/resnet/missing.onnx", *mode)["error"]
        assert error["code"] == "NOT_FOUND"
        assert error["message"].startswith(f"s3://{BUCKET}/resnet/missing.onnx: NoSuchKey: ")


def test_missing_bucket_is_not_found_naming_the_bucket(s3rver, boto):
    error = tool(s3rver, "list", "s3://no-such-bucket/models/")["error"]
    assert error["code"] == "NOT_FOUND"
    assert error["message"].startswith("s3://no-such-bucket/models/: NoSuchBucket: ")
    error = tool(s3rver, "get", "s3://no-such-bucket/model.onnx")["error"]
    assert error["code"] == "NOT_FOUND"
    assert error["message"].startswith("s3://no-such-bucket/model.onnx: NoSuchBucket: ")


def test_unknown_access_key_is_permission_denied(s3rver, boto):
    error = tool(s3rver, "get", f"s3://{BUCKET}/resnet/labels.txt", access_key="NOTAKEY")["error"]
    assert error["code"] == "PERMISSION_DENIED"
    assert error["message"].startswith(f"s3://{BUCKET}/resnet/labels.txt: InvalidAccessKeyId: ")


def test_anonymous_requests_reach_the_store(s3rver, boto):
    # s3rver serves unsigned requests; this proves the unsigned path sends a well-formed request.
    assert tool(s3rver, "get", f"s3://{BUCKET}/resnet/labels.txt", "--anonymous")["size"] == 8


def test_unreachable_endpoint_is_unavailable_naming_it():
    assert os.access(TOOL, os.X_OK), f"{TOOL} is not built (set CORTEX_S3_TOOL)"
    endpoint = f"http://{LOOPBACK}:{free_port()}"
    error = tool(endpoint, "list", f"s3://{BUCKET}/x", "--timeout-ms", "3000")["error"]
    assert error["code"] == "UNAVAILABLE"
    assert f"cannot reach S3 endpoint {endpoint}" in error["message"]


def test_bad_s3_path_is_rejected():
    assert os.access(TOOL, os.X_OK), f"{TOOL} is not built (set CORTEX_S3_TOOL)"
    error = tool("http://127.0.0.1:9", "get", "http://bucket/key")["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert "'http://bucket/key'" in error["message"]
