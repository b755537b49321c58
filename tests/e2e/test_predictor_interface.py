"""The PythonPredictor interface through the real gateway (spec §3, §4; docs/worker-protocol.md):
payload types, response types, headers and query params, errors, post_predict, python_path,
environment variables, predictor.python and predictor.image.

One "kitchen" API, deployed once on a cluster shared by this module, answers by `?mode=`."""

import importlib.util
import json
import os
import tempfile
import time

import pytest

from conftest import PYTHON, api_yaml

HAVE_STARLETTE = importlib.util.find_spec("starlette") is not None  # same interpreter as replicas

KITCHEN_PREDICTOR = r'''
import json
import os
import sys

import helper_module  # found through predictor.python_path (lib/)
from cortex_runtime import HTTPException, Response


def describe(payload):
    """A JSON-friendly description of the payload the runtime built."""
    if isinstance(payload, bytes):
        return {"type": "bytes", "text": payload.decode("latin-1")}
    if isinstance(payload, (dict, list, str, int, float, bool)) or payload is None:
        return {"type": "json", "value": payload}
    if hasattr(payload, "multi_items"):
        items = []
        for key, value in payload.multi_items():
            if isinstance(value, str):
                items.append([key, value])
            else:  # an upload file
                items.append([key, {"filename": value.filename,
                                    "content_type": value.content_type,
                                    "data": value.file.read().decode("utf-8")}])
        return {"type": "form", "class": type(payload).__name__, "items": items}
    return {"type": type(payload).__name__}


class PythonPredictor:
    def __init__(self, config):
        self.out_dir = config["out_dir"]
        self.count = 0

    def predict(self, payload, query_params, headers):
        mode = query_params.get("mode", "describe")
        if mode == "describe":
            return {"payload": describe(payload)}
        if mode == "dict":
            return {"kind": "dict", "nested": {"list": [1, 2.5, None, True]}}
        if mode == "list":
            return [1, "two", {"three": 3}]
        if mode == "none":
            return None
        if mode == "str":
            return "plain text ü"
        if mode == "bytes":
            return b"\x00\x01binary\xff"
        if mode == "response":
            return Response(content=b"a,b\n1,2\n", status_code=201, media_type="text/csv",
                            headers={"X-Custom-Header": "custom-value"})
        if mode == "starlette":
            from starlette.responses import JSONResponse
            return JSONResponse({"made_by": "starlette"}, status_code=202,
                                headers={"X-Starlette": "yes"})
        if mode == "headers":
            return {
                "lower": headers.get("x-test-header"),
                "upper": headers.get("X-TEST-HEADER"),
                "mixed_item": headers["X-Test-Header"],
                "contains": "x-TEST-header" in headers,
                "multi": headers.getlist("x-multi"),
                "content_type": headers.get("content-type"),
            }
        if mode == "query":
            return {
                "tags": query_params.getlist("tag"),
                "single": query_params.get("single"),
                "missing": query_params.get("missing", "default"),
                "keys": sorted(set(query_params.keys())),
            }
        if mode == "raise":
            raise ValueError("kitchen exploded: marker-91c2")
        if mode == "http":
            raise HTTPException(status_code=418, detail="teapot-marker-44")
        if mode == "starlette_http":
            from starlette.exceptions import HTTPException as StarletteHTTPException
            raise StarletteHTTPException(status_code=409, detail="conflict-marker-12")
        if mode == "unserializable":
            return {"value": object()}
        if mode == "env":
            return {
                "helper": helper_module.VALUE,
                "sys_path_0": sys.path[0],
                "pythonpath": os.environ.get("PYTHONPATH", ""),
                "executable": sys.executable,
                "cwd": os.getcwd(),
                "env": {k: os.environ.get(k) for k in
                        ("FROM_YAML", "FROM_DOTENV", "QUOTED", "EXPORTED", "SHARED",
                         "CORTEX_PROCESS_INDEX")},
            }
        raise HTTPException(status_code=400, detail=f"unknown mode {mode}")

    def post_predict(self, response, payload, query_params, headers):
        tag = headers.get("x-request-tag")
        if not tag:
            return
        self.count += 1
        record = {
            "response": response if isinstance(response, (dict, list, str)) else repr(response),
            "payload": describe(payload),
            "mode": query_params.get("mode", "describe"),
            "count": self.count,
        }
        path = os.path.join(self.out_dir, f"post-{tag}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
'''

KITCHEN = "kitchen"
CUSTOM_IMAGE = "registry.example.com:5000/team/python-predictor:1.2.3"


@pytest.fixture(scope="module")
def kitchen_out_dir():
    path = tempfile.mkdtemp(prefix="cx-e2e-kitchen-", dir="/tmp")
    yield path
    for name in os.listdir(path):
        os.remove(os.path.join(path, name))
    os.rmdir(path)


@pytest.fixture
def kitchen(module_cluster, kitchen_out_dir):
    """The kitchen API on the module's cluster (deployed by the first test that needs it)."""
    c = module_cluster
    if not getattr(c, "kitchen_deployed", False):
        predictor_extra = f"""
            python_path: lib
            python: {PYTHON}
            image: {CUSTOM_IMAGE}
            config:
              out_dir: {kitchen_out_dir}
            env:
              FROM_YAML: yaml-value
              SHARED: from-yaml
        """
        project = c.project(KITCHEN, {
            "cortex.yaml": api_yaml(KITCHEN, predictor_extra=predictor_extra),
            "predictor.py": KITCHEN_PREDICTOR,
            "lib/helper_module.py": 'VALUE = "from-lib"\n',
            ".env": ("# variables for the predictor\n"
                     "FROM_DOTENV=dotenv-value\n"
                     "QUOTED=\"quoted value\"\n"
                     "export EXPORTED=exported-value\n"
                     "SHARED=from-dotenv\n"),
        })
        out = c.deploy_ok(project)
        assert f"creating {KITCHEN} (RealtimeAPI)" in out, out
        c.kitchen_deployed = True
    c.wait_live(KITCHEN, timeout=30)
    return c


def call(c, mode, **kwargs):
    kwargs.setdefault("timeout", 15)
    if "json" not in kwargs and "data" not in kwargs and "files" not in kwargs:
        kwargs["json"] = {}
    return c.http.post(c.url(f"{KITCHEN}?mode={mode}"), **kwargs)


# ---- payloads -----------------------------------------------------------------------------------

def test_json_payload(kitchen):
    r = call(kitchen, "describe", json={"a": [1, 2], "b": {"c": None}})
    assert r.status_code == 200, r.text
    assert r.json() == {"payload": {"type": "json", "value": {"a": [1, 2], "b": {"c": None}}}}
    # application/json with parameters is still JSON.
    r = call(kitchen, "describe", data=b'["x"]',
             headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.json() == {"payload": {"type": "json", "value": ["x"]}}, r.text


def test_form_urlencoded_payload(kitchen):
    r = call(kitchen, "describe", data={"name": "ada", "tag": ["a", "b"]})
    assert r.status_code == 200, r.text
    payload = r.json()["payload"]
    assert payload["type"] == "form", payload
    assert payload["items"] == [["name", "ada"], ["tag", "a"], ["tag", "b"]], payload


def test_multipart_payload_with_a_file(kitchen):
    r = call(kitchen, "describe",
             files={"upload": ("notes.txt", b"line one\nline two\n", "text/plain")},
             data={"lang": "en"})
    assert r.status_code == 200, r.text
    payload = r.json()["payload"]
    assert payload["type"] == "form", payload
    items = dict((k, v) for k, v in payload["items"])
    assert items["lang"] == "en", payload
    assert items["upload"] == {"filename": "notes.txt", "content_type": "text/plain",
                               "data": "line one\nline two\n"}, payload


def test_raw_bytes_payload(kitchen):
    body = bytes(range(256))
    for content_type in ("application/octet-stream", "image/png", "text/plain"):
        r = call(kitchen, "describe", data=body, headers={"Content-Type": content_type})
        assert r.status_code == 200, r.text
        assert r.json() == {"payload": {"type": "bytes", "text": body.decode("latin-1")}}, \
            (content_type, r.text)
    # No content type at all: raw bytes too.
    r = kitchen.http.post(kitchen.url(f"{KITCHEN}?mode=describe"), data=b"raw", timeout=15,
                          headers={"Content-Type": ""})
    assert r.status_code == 200, r.text
    assert r.json() == {"payload": {"type": "bytes", "text": "raw"}}, r.text


def test_malformed_json_and_form_are_400(kitchen):
    r = call(kitchen, "describe", data=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json(), r.text
    r = call(kitchen, "describe", data=b"--x\r\n",
             headers={"Content-Type": "multipart/form-data"})  # no boundary
    assert r.status_code == 400, r.text


# ---- responses ----------------------------------------------------------------------------------

def test_dict_list_and_none_are_json(kitchen):
    for mode, expected in (("dict", {"kind": "dict", "nested": {"list": [1, 2.5, None, True]}}),
                           ("list", [1, "two", {"three": 3}]),
                           ("none", None)):
        r = call(kitchen, mode)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/json", (mode, r.headers)
        assert r.json() == expected, (mode, r.text)


def test_str_is_text_plain(kitchen):
    r = call(kitchen, "str")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    assert "utf-8" in r.headers["Content-Type"].lower(), r.headers
    assert r.content.decode("utf-8") == "plain text ü"


def test_bytes_are_octet_stream(kitchen):
    r = call(kitchen, "bytes")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream", r.headers
    assert r.content == b"\x00\x01binary\xff"


def test_response_object_keeps_status_media_type_and_headers(kitchen):
    r = call(kitchen, "response")
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("text/csv"), r.headers
    assert r.headers["X-Custom-Header"] == "custom-value", r.headers
    assert r.content == b"a,b\n1,2\n"


@pytest.mark.skipif(not HAVE_STARLETTE, reason="starlette is not importable")
def test_starlette_response_and_http_exception(kitchen):
    r = call(kitchen, "starlette")
    assert r.status_code == 202, r.text
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.headers["X-Starlette"] == "yes", r.headers
    assert r.json() == {"made_by": "starlette"}

    r = call(kitchen, "starlette_http")
    assert r.status_code == 409, r.text
    assert r.text == "conflict-marker-12"  # plain text, as Starlette's handler in v0.24


# ---- headers and query params -------------------------------------------------------------------

def test_headers_are_case_insensitive(kitchen):
    r = call(kitchen, "headers", headers={"X-Test-Header": "value-1", "X-Multi": "m1"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["lower"] == got["upper"] == got["mixed_item"] == "value-1", got
    assert got["contains"] is True, got
    assert got["multi"] == ["m1"], got
    assert got["content_type"] == "application/json", got


def test_query_params_are_multi_valued(kitchen):
    r = kitchen.http.post(kitchen.url(f"{KITCHEN}?mode=query&tag=a&single=s1&tag=b&tag=c%20d"),
                          json={}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.json() == {"tags": ["a", "b", "c d"], "single": "s1", "missing": "default",
                        "keys": ["mode", "single", "tag"]}, r.text


# ---- errors -------------------------------------------------------------------------------------

def test_exception_in_predict_is_a_500_with_type_and_message_and_a_logged_traceback(kitchen):
    r = call(kitchen, "raise")
    assert r.status_code == 500, r.text
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json() == {"error": "ValueError: kitchen exploded: marker-91c2"}, r.text

    def traceback_logged():
        log = kitchen.api_log(KITCHEN)
        return "Traceback" in log and "ValueError: kitchen exploded: marker-91c2" in log
    kitchen.wait_until(traceback_logged, 10, message="the predict traceback in cortex logs")
    log = kitchen.api_log(KITCHEN)
    assert 'in predict' in log, log

    # The replica keeps serving.
    assert call(kitchen, "dict").status_code == 200


def test_http_exception_sets_its_status(kitchen):
    r = call(kitchen, "http")
    assert r.status_code == 418, r.text
    assert r.text == "teapot-marker-44"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.reason == "I'm a Teapot"  # the reason phrase, through the gateway
    r = call(kitchen, "no-such-mode")
    assert r.status_code == 400 and r.text == "unknown mode no-such-mode", r.text
    assert r.reason == "Bad Request"


def test_unserializable_return_is_a_500(kitchen):
    r = call(kitchen, "unserializable")
    assert r.status_code == 500, r.text
    assert "TypeError" in r.json()["error"], r.text


# ---- post_predict -------------------------------------------------------------------------------

def read_json(path):
    with open(path) as f:
        return json.load(f)


def test_post_predict_gets_the_response_and_the_request(kitchen, kitchen_out_dir):
    r = call(kitchen, "dict", json={"question": 42}, headers={"X-Request-Tag": "ok-1"})
    assert r.status_code == 200, r.text
    path = os.path.join(kitchen_out_dir, "post-ok-1.json")
    kitchen.wait_until(lambda: os.path.exists(path), 10, interval=0.05,
                       message="post_predict to write its file")
    record = read_json(path)
    assert record["response"] == {"kind": "dict", "nested": {"list": [1, 2.5, None, True]}}
    assert record["payload"] == {"type": "json", "value": {"question": 42}}
    assert record["mode"] == "dict"

    # Not called when predict failed. One process with one thread: post_predict of a request
    # runs before the next request is read, so once a later request's file is there, the failed
    # request's file would be there too.
    r = call(kitchen, "raise", headers={"X-Request-Tag": "failed-2"})
    assert r.status_code == 500
    r = call(kitchen, "http", headers={"X-Request-Tag": "failed-3"})
    assert r.status_code == 418
    r = call(kitchen, "str", headers={"X-Request-Tag": "ok-4"})
    assert r.status_code == 200
    later = os.path.join(kitchen_out_dir, "post-ok-4.json")
    kitchen.wait_until(lambda: os.path.exists(later), 10, interval=0.05,
                       message="post_predict of the later request")
    assert read_json(later)["response"] == "plain text ü"
    assert not os.path.exists(os.path.join(kitchen_out_dir, "post-failed-2.json"))
    assert not os.path.exists(os.path.join(kitchen_out_dir, "post-failed-3.json"))
    assert read_json(later)["count"] == record["count"] + 1


# ---- project environment ------------------------------------------------------------------------

def test_python_path_env_dotenv_and_interpreter(kitchen):
    r = call(kitchen, "env")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["helper"] == "from-lib", got
    assert got["sys_path_0"].endswith("/lib"), got
    assert os.path.basename(got["cwd"]) != "lib" and got["sys_path_0"] == got["cwd"] + "/lib", got
    assert got["pythonpath"].split(":")[0] == got["sys_path_0"], got
    assert got["executable"] == PYTHON, got
    assert got["env"] == {
        "FROM_YAML": "yaml-value",
        "FROM_DOTENV": "dotenv-value",
        "QUOTED": "quoted value",
        "EXPORTED": "exported-value",
        "SHARED": "from-yaml",  # predictor.env wins over .env
        "CORTEX_PROCESS_INDEX": "0",
    }, got


def test_custom_image_is_accepted_and_recorded(kitchen):
    spec = kitchen.get_api(KITCHEN)["spec"]["predictor"]
    assert spec["image"] == CUSTOM_IMAGE, spec
    assert spec["python"] == PYTHON, spec
    assert spec["python_path"] == "lib", spec


SIMPLE_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"ok": True}
"""


def test_cortex_env_keys_are_rejected_at_deploy(module_cluster):
    c = module_cluster
    rc, out, err = c.deploy({
        "cortex.yaml": api_yaml("reserved-env", predictor_extra="env:\n  CORTEX_SECRET: x"),
        "predictor.py": SIMPLE_PREDICTOR,
    })
    assert rc != 0, out
    assert "environment variables starting with CORTEX_ are reserved" in err, err
    assert "reserved-env" in err and "CORTEX_SECRET" in err, err
    assert "reserved-env" not in [a["spec"]["name"] for a in c.list_apis()]


def test_bad_cortexlabs_image_tag_is_rejected(module_cluster):
    c = module_cluster
    rc, out, err = c.deploy({
        "cortex.yaml": api_yaml("old-image", predictor_extra=(
            "image: quay.io/cortexlabs/python-predictor-cpu:0.23.0")),
        "predictor.py": SIMPLE_PREDICTOR,
    })
    assert rc != 0, out
    assert "does not match your Cortex version (0.24.0)" in err, err
    assert "old-image" not in [a["spec"]["name"] for a in c.list_apis()]


def test_nonexistent_interpreter_puts_the_api_in_error(module_cluster):
    c = module_cluster
    name = "no-python"
    missing = "/nonexistent/cortex-e2e/bin/python3"
    out = c.deploy_ok({
        "cortex.yaml": api_yaml(name, predictor_extra=f"python: {missing}"),
        "predictor.py": SIMPLE_PREDICTOR,
    })
    assert f"creating {name}" in out, out
    c.wait_until(lambda: c.status_code(name) == "status_error", 20, interval=0.1,
                 message=f"{name} to report status_error")
    assert c.get_api(name)["spec"]["predictor"]["python"] == missing
    c.wait_until(lambda: missing in c.api_log(name), 10,
                 message="the missing interpreter's path in cortex logs")
    c.wait_reconcile_passes(2)
    assert c.status_code(name) != "status_live"
    rc, _, err = c.cli("delete", name, "-f")
    assert rc == 0, err
