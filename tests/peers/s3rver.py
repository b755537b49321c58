"""s3rver (npm, installed by scripts/install-deps.sh into build/_deps/s3rver) on a free loopback
port, and a boto3 client for it. s3rver stores objects on disk and speaks S3's REST API (it does
not verify SigV4 signatures; src/s3/s3_client_test.cc checks those against botocore).

Environment: CORTEX_S3RVER_DIR (default build/_deps/s3rver). Every wait is bounded.
"""
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S3RVER_DIR = os.environ.get("CORTEX_S3RVER_DIR") or os.path.join(REPO_ROOT, "build", "_deps",
                                                                  "s3rver")
LOOPBACK = "127.0.0.1"
ACCESS_KEY = SECRET_KEY = "S3RVER"  # s3rver's built-in account


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_s3rver():
    """Yields the endpoint URL of a fresh s3rver; stops it and removes its data afterwards."""
    node = shutil.which("node")
    assert node is not None, "node is not installed: run scripts/install-deps.sh"
    script = os.path.join(S3RVER_DIR, "node_modules", "s3rver", "bin", "s3rver.js")
    assert os.path.exists(script), (
        f"s3rver is not installed at {S3RVER_DIR}: run scripts/install-deps.sh")
    data = tempfile.mkdtemp(prefix="cortex-s3rver-")
    port = _free_port()
    # s3rver's continuation tokens use DES, which Node 17+ (OpenSSL 3) only has in the legacy
    # provider; without it every truncated listing is an InternalError.
    process = subprocess.Popen(
        [node, "--openssl-legacy-provider", script, "-d", data, "-a", LOOPBACK, "-p", str(port),
         "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"s3rver exited: {process.stderr.read().decode()}"
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "s3rver did not start listening in 20 s"
                time.sleep(0.1)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


def boto_client(endpoint):
    """A boto3 S3 client for `endpoint` (path-style, SigV4, no retries)."""
    try:
        import boto3
    except ImportError:
        raise AssertionError("python3-boto3 is missing: run scripts/install-deps.sh")
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}, max_pool_connections=16))
