"""In-process tests of the runtime's helpers (no worker process)."""

import io
import json
import socket
import threading

import pytest

from cortex_runtime import compat, forms, loader, protocol


def test_parse_options_header():
    assert forms.parse_options_header('form-data; name="a"; filename="b c.txt"') == (
        "form-data", {"name": "a", "filename": "b c.txt"})
    assert forms.parse_options_header("multipart/form-data; boundary=XyZ") == (
        "multipart/form-data", {"boundary": "XyZ"})
    assert forms.parse_options_header('form-data; name="x\\"y;z"; flag') == (
        "form-data", {"name": 'x"y;z', "flag": ""})
    assert forms.parse_options_header("Text/Plain") == ("text/plain", {})


def test_multipart_edge_cases():
    ct = "multipart/form-data; boundary=b"
    body = (b"preamble\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\n"
            b"\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n\r\n--b--")
    form = forms.parse_form(body, ct.lower(), ct)
    f = form["f"]
    assert f.filename == "" and f.file.read() == b"" and f.content_type is None
    assert form["t"] == ""
    for bad in (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",  # no name
                b"--b\r\nX: y\r\n\r\nx\r\n--b--",  # no disposition
                b"nothing here"):
        with pytest.raises(forms.FormError):
            forms.parse_form(bad, ct, ct)


def test_parse_dotenv():
    text = "\n".join([
        "# comment", "A=1", " B = two ", 'C="quoted # not comment"', "D='single'",
        "export E=exported", "F=x # comment", "G=", "bad line", "1X=no", "H=a=b",
        'I="line\\nbreak"',
    ])
    assert loader.parse_dotenv(text) == {
        "A": "1", "B": "two", "C": "quoted # not comment", "D": "single", "E": "exported",
        "F": "x", "G": "", "H": "a=b", "I": "line\nbreak",
    }


def test_construct_predictor_deep_copies_config():
    spec = {"predictor": {"config": {"a": {"b": [1]}}}, "job_spec": None}

    class P:
        def __init__(self, config):
            config["a"]["b"].append(2)
            self.config = config

    p = loader.construct_predictor(P, ["self", "config"], spec)
    assert p.config == {"a": {"b": [1, 2]}}
    assert spec["predictor"]["config"] == {"a": {"b": [1]}}


def test_construct_predictor_merges_job_config():
    spec = {"predictor": {"config": {"a": {"b": 1, "c": 2}, "d": 3}},
            "job_spec": {"job_id": "j", "config": {"a": {"b": 10}, "e": 5}}}

    class P:
        def __init__(self, config, job_spec):
            self.config, self.job_spec = config, job_spec

    p = loader.construct_predictor(P, ["self", "config", "job_spec"], spec)
    assert p.config == {"a": {"b": 10, "c": 2}, "d": 3, "e": 5}
    assert p.job_spec["job_id"] == "j"


def test_validate_collects_declared_arguments():
    class P:
        def __init__(self, config):
            pass

        def predict(self, headers, *, payload):
            pass

        def post_predict(self, response):
            pass

    sigs = loader.validate_predictor_class(P, {"predictor": {"path": "p.py"}})
    assert sigs["predict"] == ["self", "headers", "payload"]
    assert sigs["post_predict"] == ["self", "response"]
    assert "load_model" not in sigs


def test_frames_roundtrip():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    big = b"x" * (200 * 1024)

    def write():
        protocol.write_frame(a, b'{"k":1}', b"body")
        protocol.write_frame(a, b'{}', big)
        a.sendall(protocol.encode_frame({"empty": True}))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        reader = protocol.FrameReader(b)
        assert reader.read() == ({"k": 1}, b"body")
        assert reader.read() == ({}, big)
        assert reader.read() == ({"empty": True}, b"")
        writer.join(timeout=5)
        a.sendall(b"\x00\x00\x00\x10\x00\x00")
        a.close()
        with pytest.raises(protocol.ProtocolError):
            reader.read()
    finally:
        a.close()
        b.close()


def test_fallback_headers_and_query_params():
    h = compat._Headers(raw=[(b"Content-Type", b"text/plain"), (b"x-a", b"1"), (b"X-A", b"2")])
    assert h["content-type"] == "text/plain"
    assert h.get("X-a") == "1" and h.getlist("x-a") == ["1", "2"]
    assert "X-A" in h and "nope" not in h and h.get("nope") is None
    assert len(h) == 3 and h.keys() == ["content-type", "x-a", "x-a"]
    q = compat._QueryParams("a=1&a=2&b=&c=%20x")
    assert q["a"] == "2" and q.getlist("a") == ["1", "2"] and q["b"] == "" and q["c"] == " x"
    assert dict(q.items()) == {"a": "2", "b": "", "c": " x"}
    assert str(q) == "a=1&a=2&b=&c=+x"
    with pytest.raises(KeyError):
        q["zz"]


def test_fallback_response_and_upload_file():
    r = compat._Response("héllo", status_code=201, headers={"X-Y": "z"}, media_type="text/html")
    assert r.body == "héllo".encode()
    assert dict(r.raw_headers) == {b"x-y": b"z", b"content-length": b"6",
                                   b"content-type": b"text/html; charset=utf-8"}
    assert r.headers["X-Y"] == "z"
    j = compat._JSONResponse({"a": [1]})
    assert json.loads(j.body) == {"a": [1]} and j.media_type == "application/json"
    u = compat._UploadFile(io.BytesIO(b"data"), filename="f.bin",
                           headers=compat._Headers(raw=[(b"content-type", b"image/png")]))
    assert u.content_type == "image/png" and u.read() == b"data"
    u.seek(0)
    assert u.file.read() == b"data"
    e = compat._HTTPException(404)
    assert e.detail == "Not Found" and e.status_code == 404


def test_response_object_encoding_and_background():
    from cortex_runtime import worker

    seen = []
    r = compat._Response(b"x", status_code=207, headers={"Set-Cookie": "a=1"},
                         background=lambda: seen.append("bg"))
    header, body = worker.encode_response_object(r)
    assert json.loads(header) == {"status": 207, "content_type": "", "reason": "Multi-Status",
                                  "headers": [["set-cookie", "a=1"]]}
    assert body == b"x"
    worker.RequestHandler.run_background(r)
    assert seen == ["bg"]
