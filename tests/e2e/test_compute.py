"""compute on the local provider: a request that the machine cannot fit leaves the API "compute
unavailable" (other APIs keep serving); a replica over its compute.mem is killed and reported as
"error (out of memory)"."""

import re
import time

from conftest import api_yaml

PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"ok": True}
"""

HUNGRY_PREDICTOR = """
import time


class PythonPredictor:
    def __init__(self, config):
        # ~300 MB, every page touched (a zero-filled bytearray may not count in the RSS).
        self.blob = b"\\x01" * (300 * 1024 * 1024)
        print("allocated", len(self.blob) >> 20, "MiB", flush=True)
        time.sleep(2)

    def predict(self, payload):
        return {"size": len(self.blob)}
"""


def row_of(text, name):
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if name in cells:
            return cells
    return None


def test_cpu_request_larger_than_the_machine_stalls_while_others_serve(cluster):
    cluster.deploy_ok({"cortex.yaml": api_yaml("small"), "predictor.py": PREDICTOR})
    cluster.deploy_ok({"cortex.yaml": api_yaml("huge", extra="compute:\n  cpu: 64"),
                       "predictor.py": PREDICTOR})
    cluster.wait_live("small")
    cluster.wait_until(lambda: cluster.status_code("huge") == "status_stalled", 15, interval=0.1,
                       message="huge to report status_stalled")

    info = cluster.get_api("huge")
    assert info["status"]["status"] == "compute unavailable", info["status"]
    assert info["status"]["replica_counts"]["updated"]["stalled"] >= 1, info["status"]
    assert info["status"]["replica_counts"]["updated"]["ready"] == 0, info["status"]

    out = cluster.cli_ok("get")
    huge_row, small_row = row_of(out, "huge"), row_of(out, "small")
    assert huge_row and "compute unavailable" in huge_row, out
    assert small_row and "live" in small_row, out
    assert "compute unavailable" in cluster.cli_ok("get", "huge")

    # The other API is untouched and serving; the stalled one has nowhere to route to.
    r = cluster.post("small", {})
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    assert cluster.post("huge", {}).status_code == 503

    log = cluster.api_log("huge")
    assert "compute unavailable" in log and "cpu" in log, log

    # It stays stalled (it is retried every 2 s, and still does not fit).
    time.sleep(2.5)
    assert cluster.status_code("huge") == "status_stalled"
    assert cluster.status_code("small") == "status_live"


def test_memory_limit_kills_the_replica_and_reports_out_of_memory(cluster):
    name = "hungry"
    cluster.deploy_ok({"cortex.yaml": api_yaml(name, extra="compute:\n  mem: 150Mi"),
                       "predictor.py": HUNGRY_PREDICTOR})
    cluster.wait_until(lambda: cluster.status_code(name) == "status_oom", 30, interval=0.1,
                       message=f"{name} to report status_oom")
    assert cluster.get_api(name)["status"]["status"] == "error (out of memory)"

    def pretty_says_oom():
        row = row_of(cluster.cli_ok("get"), name)
        return row is not None and "error (out of memory)" in row
    cluster.wait_until(pretty_says_oom, 20, interval=0.1,
                       message="`cortex get` to show error (out of memory)")

    def limit_logged():
        log = cluster.api_log(name)
        return "150 MiB" in log and "compute.mem" in log
    cluster.wait_until(limit_logged, 10, message="the memory limit in cortex logs")
    assert cluster.status_code(name) != "status_live"
