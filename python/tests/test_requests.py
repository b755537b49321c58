"""Request handling of a running worker (spec section 3, per-request pipeline)."""

import json
import threading
import time

import pytest
from conftest import STARLETTE

ECHO = """
class PythonPredictor:
    def __init__(self, config):
        self.config = config

    def predict(self, payload):
        return {"payload": payload}
"""


def test_json_in_json_out(start_worker):
    w = start_worker(ECHO)
    r = w.request(json_body={"x": [1.0, 2.0], "name": "abc", "k": {"a": 1}})
    assert r.status == 200
    assert r.content_type == "application/json"
    assert r.json() == {"payload": {"x": [1.0, 2.0], "name": "abc", "k": {"a": 1}}}
    # Several requests on the same slot, content type with parameters and upper case.
    for i in range(5):
        r = w.request(json_body=[i], content_type="Application/JSON; charset=utf-8")
        assert r.json() == {"payload": [i]}


def test_get_returns_summary(start_worker):
    w = start_worker(ECHO)
    r = w.request(method="GET", body=b"")
    assert r.status == 200
    assert r.json() == {
        "message": "make a prediction by sending a post request to this endpoint with a json payload"
    }


def test_bad_json_is_400(start_worker):
    w = start_worker(ECHO)
    r = w.request(body=b"{not json")
    assert r.status == 400
    assert r.content_type == "application/json"
    assert "Expecting property name" in r.json()["error"]
    r = w.request(body=b"")  # empty body with a JSON content type
    assert r.status == 400
    assert "error" in r.json()
    r = w.request(body=b"\xff\xfe\xfa")  # not UTF-8
    assert r.status == 400
    assert w.request(json_body={"ok": 1}).json() == {"payload": {"ok": 1}}


def test_json_nested_deeper_than_python_can_parse_is_400_and_the_worker_lives(start_worker):
    w = start_worker(ECHO)
    r = w.request(body=b"[" * 100000 + b"]" * 100000)
    assert r.status == 400
    assert "nested too deeply" in r.json()["error"]
    assert w.request(json_body={"ok": 1}).json() == {"payload": {"ok": 1}}


def test_other_content_types_give_bytes(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return {"type": type(payload).__name__, "len": len(payload),
                        "text": payload.decode("latin-1")}
    """)
    for ct in ("text/plain", "application/octet-stream", None):
        r = w.request(body=b"hello \x00 world", content_type=ct)
        assert r.status == 200, r
        assert r.json() == {"type": "bytes", "len": 13, "text": "hello \x00 world"}
    r = w.request(body=b"", content_type=None)
    assert r.json()["len"] == 0


def test_payload_not_parsed_unless_declared(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self):
                return "no args"
    """)
    r = w.request(body=b"{bad json")  # not parsed, so no 400
    assert r.status == 200
    assert r.body == b"no args"


def test_result_types(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                kind = payload["kind"]
                if kind == "str":
                    return "héllo"
                if kind == "bytes":
                    return b"\\x00\\x01\\x02"
                if kind == "none":
                    return None
                if kind == "number":
                    return 3.5
                if kind == "tuple":
                    return (1, "a")
                if kind == "set":
                    return {1, 2}
    """)
    r = w.request(json_body={"kind": "str"})
    assert (r.status, r.body) == (200, "héllo".encode("utf-8"))
    assert r.content_type.startswith("text/plain")
    r = w.request(json_body={"kind": "bytes"})
    assert (r.status, r.content_type, r.body) == (200, "application/octet-stream", b"\x00\x01\x02")
    r = w.request(json_body={"kind": "none"})
    assert (r.status, r.content_type, r.body) == (200, "application/json", b"null")
    r = w.request(json_body={"kind": "number"})
    assert r.json() == 3.5
    r = w.request(json_body={"kind": "tuple"})
    assert r.json() == [1, "a"]
    r = w.request(json_body={"kind": "set"})
    assert r.status == 500
    assert r.content_type == "application/json"
    assert "not JSON serializable" in r.json()["error"]
    assert w.request(json_body={"kind": "number"}).status == 200


def test_response_object(start_worker):
    w = start_worker("""
        from cortex_runtime import Response, JSONResponse

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                if payload == "json":
                    return JSONResponse({"a": 1}, status_code=202)
                if payload == "empty":
                    return Response(status_code=204)
                return Response(content="a,b\\n1,2\\n", status_code=201,
                                headers={"X-Custom": "yes"}, media_type="text/csv")
    """)
    r = w.request(json_body="csv")
    assert r.status == 201
    assert r.content_type.startswith("text/csv")
    assert r.header_value("x-custom") == "yes"
    assert r.header_value("content-length") is None  # the front adds it
    assert r.body == b"a,b\n1,2\n"
    r = w.request(json_body="json")
    assert (r.status, r.content_type, r.json()) == (202, "application/json", {"a": 1})
    r = w.request(json_body="empty")
    assert (r.status, r.body) == (204, b"")


def test_starlette_response_in_both_modes(start_worker):
    """A predictor that imports Starlette directly works even when the runtime does not use it."""
    if not STARLETTE:
        pytest.skip("starlette is not importable")
    w = start_worker("""
        from starlette.responses import PlainTextResponse
        from starlette.exceptions import HTTPException

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                if payload == "raise":
                    raise HTTPException(status_code=418, detail="teapot")
                return PlainTextResponse("plain", status_code=203, headers={"x-s": "1"})
    """)
    r = w.request(json_body="go")
    assert (r.status, r.body, r.header_value("x-s")) == (203, b"plain", "1")
    assert r.content_type == "text/plain; charset=utf-8"
    r = w.request(json_body="raise")
    assert (r.status, r.body, r.header["reason"]) == (418, b"teapot", "I'm a Teapot")
    assert r.content_type == "text/plain; charset=utf-8"


def test_query_params_and_headers(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, query_params, headers, batch_id):
                return {
                    "a": query_params.get("a"),
                    "a_all": query_params.getlist("a"),
                    "b": query_params["b"],
                    "missing": query_params.get("zzz", "dflt"),
                    "keys": sorted(query_params.keys()),
                    "x_key": headers.get("X-Key"),
                    "x_key_all": headers.getlist("x-key"),
                    "ct": headers["Content-Type"],
                    "has": "x-key" in headers,
                    "batch_id": batch_id,
                }
    """)
    r = w.request(body=b"ignored", query="a=1&a=2&b=hello%20world&empty=",
                  headers=[["X-Key", "v1"], ["x-key", "v2"]])
    assert r.status == 200, r
    assert r.json() == {
        "a": "2", "a_all": ["1", "2"], "b": "hello world", "missing": "dflt",
        "keys": ["a", "b", "empty"], "x_key": "v1", "x_key_all": ["v1", "v2"],
        "ct": "application/json", "has": True, "batch_id": None,
    }


def test_form_urlencoded(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return {"items": [list(i) for i in payload.multi_items()],
                        "a": payload["a"], "all_a": payload.getlist("a")}
    """)
    r = w.request(body=b"a=1&b=x+y%21&a=3&c=", content_type="application/x-www-form-urlencoded")
    assert r.status == 200, r
    assert r.json() == {"items": [["a", "1"], ["b", "x y!"], ["a", "3"], ["c", ""]],
                        "a": "3", "all_a": ["1", "3"]}


MULTIPART_PREDICTOR = """
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        out = {}
        for key, value in payload.multi_items():
            if isinstance(value, str):
                out[key] = value
            else:
                out[key] = {"filename": value.filename, "content_type": value.content_type,
                            "data": value.file.read().decode("latin-1")}
        return out
"""


def test_form_multipart_with_file(start_worker):
    w = start_worker(MULTIPART_PREDICTOR)
    boundary = "----WebKitFormBoundaryABC123"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="text"\r\n\r\n'
        "hello wörld\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="image"; filename="pic.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode("utf-8") + b"\x89PNG\r\n\x1a\n\x00\xff--not-a-boundary\r\n" + (
        f"\r\n--{boundary}--\r\n"
    ).encode("utf-8")
    r = w.request(body=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status == 200, r
    assert r.json() == {
        "text": "hello wörld",
        "image": {"filename": "pic.png", "content_type": "image/png",
                  "data": "\x89PNG\r\n\x1a\n\x00\xff--not-a-boundary\r\n"},
    }


def test_form_parse_error_is_400_text(start_worker):
    w = start_worker(MULTIPART_PREDICTOR)
    r = w.request(body=b"whatever", content_type="multipart/form-data")  # no boundary
    assert r.status == 400
    assert r.content_type.startswith("text/plain")
    assert b"boundary" in r.body.lower()
    r = w.request(body=b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
                  content_type="multipart/form-data; boundary=xyz")
    assert r.status == 400
    assert r.content_type.startswith("text/plain")


def test_predict_exception_is_500(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                if payload == "boom":
                    raise ValueError("boom happened")
                return "fine"
    """)
    r = w.request(json_body="boom")
    assert r.status == 500
    assert r.content_type == "application/json"
    assert r.json() == {"error": "ValueError: boom happened"}
    assert w.request(json_body="ok").body == b"fine"  # the worker goes on
    err = w.stderr
    assert "Traceback (most recent call last)" in err
    assert "ValueError: boom happened" in err
    assert "predictor.py" in err


def test_http_exception(start_worker):
    w = start_worker("""
        from cortex_runtime import HTTPException

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                if payload == "default":
                    raise HTTPException(status_code=404)
                raise HTTPException(status_code=422, detail="bad input", headers={"X-Why": "x"})
    """)
    # As Starlette's handler in Cortex v0.24: the detail as plain text, the reason phrase.
    r = w.request(json_body="x")
    assert r.status == 422
    assert r.content_type == "text/plain; charset=utf-8"
    assert r.body == b"bad input"
    assert r.header["reason"] == "Unprocessable Entity"
    assert r.header_value("x-why") == "x"
    r = w.request(json_body="default")
    assert (r.status, r.body) == (404, b"Not Found")
    assert "Traceback" not in w.stderr


def test_post_predict(start_worker):
    w = start_worker("""
        import threading

        class PythonPredictor:
            def __init__(self, config):
                self.calls = []

            def predict(self, payload, query_params):
                if payload == "report":
                    return {"calls": self.calls}
                return {"echo": payload}

            def post_predict(self, response, payload, headers, query_params):
                self.calls.append({"response": response, "payload": payload,
                                   "q": query_params.get("q"), "h": headers.get("x-h"),
                                   "thread": threading.current_thread().name})
                if payload == "fail":
                    raise RuntimeError("post failed")
    """)
    assert w.request(json_body=1, query="q=7", headers=[["x-h", "hv"]]).json() == {"echo": 1}
    assert w.request(json_body="fail").json() == {"echo": "fail"}
    calls = w.request(json_body="report").json()["calls"]
    assert [c["response"] for c in calls] == [{"echo": 1}, {"echo": "fail"}]
    assert calls[0]["payload"] == 1 and calls[0]["q"] == "7" and calls[0]["h"] == "hv"
    assert calls[0]["thread"] == "MainThread"  # slot 0 is served on the constructor's thread
    assert "RuntimeError: post failed" in w.stderr


def test_post_predict_not_called_on_error(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                self.n = 0

            def predict(self, payload):
                if payload == "count":
                    return self.n
                raise ValueError("x")

            def post_predict(self):
                self.n += 1
    """)
    assert w.request(json_body="boom").status == 500
    assert w.request(json_body="count").json() == 0
    assert w.request(json_body="count").json() == 1


def test_slots_run_concurrently(start_worker):
    w = start_worker("""
        import threading, time

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                start = time.monotonic()
                time.sleep(payload)
                return {"thread": threading.get_ident(), "start": start, "end": time.monotonic()}
    """, slots=3)
    assert len(w.conns) == 3
    # No fourth connection.
    w.listener.settimeout(0.2)
    try:
        extra, _ = w.listener.accept()
        extra.close()
        raise AssertionError("worker opened more connections than slots")
    except OSError:
        pass
    begin = time.monotonic()
    for slot in range(3):
        w.send(slot, body=b"0.5")
    replies = [w.receive(slot).json() for slot in range(3)]
    elapsed = time.monotonic() - begin
    assert elapsed < 1.3, elapsed  # sequential would be >= 1.5 s
    assert len({r["thread"] for r in replies}) == 3
    latest_start = max(r["start"] for r in replies)
    earliest_end = min(r["end"] for r in replies)
    assert latest_start < earliest_end  # the three calls overlapped


def test_print_and_logging(start_worker):
    w = start_worker("""
        import logging
        logger = logging.getLogger("mine")

        class PythonPredictor:
            def __init__(self, config):
                print("constructed")
                logger.info("info from init")

            def predict(self, payload):
                print("predicting", payload)
                logger.info("info from predict %s", payload)
                return "ok"
    """)
    assert w.request(json_body=42).status == 200
    deadline = time.monotonic() + 5
    while "predicting 42" not in w.stdout and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "constructed\n" in w.stdout
    assert "predicting 42\n" in w.stdout
    err = w.stderr
    assert "info from init" in err and "info from predict 42" in err
    assert "INFO" in err


def test_worker_exits_when_front_closes(start_worker):
    w = start_worker(ECHO, slots=2)
    assert w.request(slot=1, json_body=1).status == 200
    w.conns[0].close()
    time.sleep(0.1)
    assert w.proc.poll() is None  # one slot is still open
    assert w.request(slot=1, json_body=2).json() == {"payload": 2}
    w.close_slots()
    assert w.wait() == 0


def test_bad_frame_closes_the_slot(start_worker):
    w = start_worker(ECHO)
    w.conns[0].sendall(b"\x00\x00\x00\x02\x00\x00\x00\x09")  # N < 4 + H
    assert w.wait() == 0
    assert "bad frame lengths" in w.stderr


def test_many_requests_concurrently_on_all_slots(start_worker):
    w = start_worker(ECHO, slots=4)
    errors = []

    def client(slot):
        try:
            for i in range(200):
                r = w.request(slot=slot, json_body={"slot": slot, "i": i})
                assert r.json() == {"payload": {"slot": slot, "i": i}}
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert not any(t.is_alive() for t in threads)


def test_large_body(start_worker):
    w = start_worker("""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return payload[::-1]
    """)
    data = bytes(range(256)) * 8192  # 2 MiB
    r = w.request(body=data, content_type="application/octet-stream")
    assert r.status == 200
    assert r.body == data[::-1]
    assert json.loads(w.request(method="GET").body)["message"].startswith("make a prediction")


def test_runtime_types_match_mode(start_worker, mode):
    w = start_worker("""
        import cortex_runtime

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, query_params, headers):
                return {"have": cortex_runtime.HAVE_STARLETTE,
                        "query": type(query_params).__module__,
                        "headers": type(headers).__module__,
                        "response": cortex_runtime.Response.__module__}
    """)
    r = w.request(body=b"").json()
    if mode == "starlette":
        assert r == {"have": True, "query": "starlette.datastructures",
                     "headers": "starlette.datastructures", "response": "starlette.responses"}
    else:
        assert r == {"have": False, "query": "cortex_runtime.compat",
                     "headers": "cortex_runtime.compat", "response": "cortex_runtime.compat"}
