"""A worker process of a replica: runs the user's predictor behind the slot protocol.

    python3 -u -m cortex_runtime.worker --socket PATH --slots T --process-index I --spec SPEC_JSON

See docs/worker-protocol.md. Start-up errors print "failed to start api" and a traceback to
stderr and exit 1. Then the worker opens T connections to PATH, one thread per connection (the
main thread serves the first, so with T=1 the constructor and every predict call run on the same
thread, as in Cortex). It exits 0 when all connections have closed.
"""

import argparse
import http
import json
import logging
import os
import socket
import sys
import threading
import traceback
from functools import partial

from . import compat
from . import forms
from . import loader
from . import models
from .protocol import FrameReader, ProtocolError, write_frame

API_SUMMARY_MESSAGE = (
    "make a prediction by sending a post request to this endpoint with a json payload"
)
NOT_SERIALIZABLE_HINT = (
    "please return an object that is JSON serializable (including its nested fields), a bytes "
    "object, a string, or a starlette.response.Response object"
)

_loads = json.loads


def _json_default(obj):
    """numpy arrays and scalars become lists and Python numbers (numpy is never imported)."""
    if type(obj).__module__ == "numpy":
        tolist = getattr(obj, "tolist", None)
        if tolist is not None:
            return tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_dumps = json.dumps
_encode_result = json.JSONEncoder(default=_json_default).encode


def _reason(status):
    """The status's reason phrase ("I'm a Teapot" for 418), or "" for an unknown status."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _response_header(status, content_type, headers=()):
    header = {"status": status, "content_type": content_type, "headers": list(headers)}
    if status != 200:
        # The front writes it: Beast knows no phrase for some statuses (418 among them).
        header["reason"] = _reason(status)
    return _dumps(header, separators=(",", ":")).encode("utf-8")


HDR_JSON_200 = _response_header(200, "application/json")
HDR_TEXT_200 = _response_header(200, "text/plain; charset=utf-8")
HDR_BYTES_200 = _response_header(200, "application/octet-stream")
HDR_JSON_400 = _response_header(400, "application/json")
HDR_TEXT_400 = _response_header(400, "text/plain; charset=utf-8")
HDR_JSON_500 = _response_header(500, "application/json")
HDR_JSON_404 = _response_header(404, "application/json")
HDR_JSON_405 = _response_header(405, "application/json")
V2_PREFIX = "/v2/"
SUMMARY_BODY = _dumps({"message": API_SUMMARY_MESSAGE}).encode("utf-8")


def log_error(message, with_traceback=True):
    """One write to stderr (a message and, inside an except block, the traceback)."""
    text = message + "\n"
    if with_traceback:
        text += traceback.format_exc()
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        pass


def _error_body(message):
    return _dumps({"error": message}).encode("utf-8")


def _exception_message(e):
    return f"{type(e).__name__}: {e}"


def _is_http_exception(e):
    if isinstance(e, compat.HTTP_EXCEPTION_TYPES):
        return True
    # Starlette's (or FastAPI's) HTTPException when the runtime runs without Starlette.
    return (type(e).__name__ == "HTTPException" and isinstance(getattr(e, "status_code", None), int)
            and hasattr(e, "detail"))


def _is_response(obj):
    if isinstance(obj, compat.RESPONSE_TYPES):
        return True
    return isinstance(getattr(obj, "status_code", None), int) and hasattr(obj, "raw_headers")


def _run_coroutine(coro):
    import asyncio
    return asyncio.run(coro)


def _response_body(resp):
    body = getattr(resp, "body", None)
    if body is not None:
        return bytes(body)
    path = getattr(resp, "path", None)  # starlette FileResponse
    if path is not None:
        with open(path, "rb") as f:
            return f.read()
    iterator = getattr(resp, "body_iterator", None)  # starlette StreamingResponse
    if iterator is not None:
        def to_bytes(chunk):
            return chunk if isinstance(chunk, bytes) else chunk.encode(getattr(resp, "charset", "utf-8"))
        if hasattr(iterator, "__aiter__"):
            async def collect():
                return b"".join([to_bytes(c) async for c in iterator])
            return _run_coroutine(collect())
        return b"".join(to_bytes(c) for c in iterator)
    return b""


def encode_response_object(resp):
    """(header bytes, body) for a Response object returned by predict."""
    body = _response_body(resp)
    content_type = ""
    headers = []
    for key, value in resp.raw_headers:
        k = key.decode("latin-1").lower() if isinstance(key, bytes) else str(key).lower()
        v = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if k == "content-length":
            continue
        if k == "content-type":
            content_type = v
            continue
        headers.append([k, v])
    if not content_type:
        media_type = getattr(resp, "media_type", None)
        if media_type:
            content_type = media_type
    return _response_header(int(resp.status_code), content_type, headers), body


def encode_http_exception(e):
    """As Starlette's handler in Cortex v0.24: the status with its reason phrase, the detail as
    plain text, and the exception's headers."""
    detail = getattr(e, "detail", None)
    if detail is None:
        detail = _reason(int(e.status_code))
    body = (detail if isinstance(detail, str) else str(detail)).encode("utf-8")
    headers = [[str(k).lower(), str(v)] for k, v in (getattr(e, "headers", None) or {}).items()]
    return _response_header(int(e.status_code), "text/plain; charset=utf-8", headers), body


class BatchResultError(Exception):
    """predict did not return one result for each request of its batch."""


class RequestHandler:
    """Turns request frames into response frames for one predictor instance.

    The keyword arguments of ``predict`` and ``post_predict`` are decided once, here.
    """

    def __init__(self, predictor, signatures, monitoring=None, model_metadata=None,
                 batching=None, concurrent_batches=False, v2_handler=None):
        self.predictor = predictor
        self.v2 = v2_handler  # a v2.V2Handler, or None when the API does not serve the protocol
        # Server-side batching: the spec's {max_batch_size, batch_interval}, or None. With
        # concurrent_batches (ONNX) each request of a batch runs predict on a thread of its own.
        self.max_batch_size = int((batching or {}).get("max_batch_size") or 1)
        self.concurrent_batches = concurrent_batches
        self._local = threading.local()  # each slot thread's pool for concurrent batches
        # With models: a callable that returns the GET route's model_metadata.
        self.model_metadata = model_metadata
        # Prediction monitoring (spec §10): the value is sent to the front in the response
        # header ("monitor"), which aggregates it per replica.
        self.monitor_key = None
        self.monitor_type = None
        if isinstance(monitoring, dict):
            self.monitor_type = monitoring.get("model_type") or "classification"
            self.monitor_key = monitoring.get("key")
        self.predict = predictor.predict
        predict_args = set(signatures["predict"])
        self.post_predict = None
        post_args = set()
        if "post_predict" in signatures:
            self.post_predict = predictor.post_predict
            post_args = set(signatures["post_predict"])
        self.predict_args = predict_args
        self.post_args = post_args
        self.need_payload = "payload" in predict_args or "payload" in post_args
        self.need_headers = "headers" in predict_args or "headers" in post_args
        self.need_query = "query_params" in predict_args or "query_params" in post_args
        self.pass_payload = "payload" in predict_args
        self.pass_headers = "headers" in predict_args
        self.pass_query = "query_params" in predict_args
        self.pass_batch_id = "batch_id" in predict_args
        self.build_args = (self.need_payload or self.need_headers or self.need_query
                           or self.pass_batch_id)

    def handle(self, header, body):
        """Returns (response header bytes, response body, callables to run after replying).

        The third element is None, or a list of callables (post_predict, a Response's
        background task) to run on this thread once the response has been written.
        """
        method = header.get("method", "POST")
        if header.get("path", "").startswith(V2_PREFIX):
            return self.handle_v2(header, body)
        if method != "POST":
            if method in ("GET", "HEAD"):
                if self.model_metadata is not None:
                    return self.summary_with_models()
                return HDR_JSON_200, SUMMARY_BODY, None
            return HDR_JSON_405, _error_body("method not allowed"), None
        parsed, error = self.parse(header, body)
        if error is not None:
            return error
        kwargs, payload, query, headers = parsed
        try:
            result = self.predict(**kwargs)
        except Exception as e:
            if _is_http_exception(e):
                return (*encode_http_exception(e), None)
            log_error("error: exception in predict")
            return HDR_JSON_500, _error_body(_exception_message(e)), None
        out = self.encode(result)
        after = None
        if self.post_predict is not None and out[0] is not HDR_JSON_500:
            after = [partial(self.run_post_predict, self.post_kwargs(result, payload, query,
                                                                     headers))]
        if out[0] is not HDR_JSON_200 and getattr(result, "background", None) is not None \
                and _is_response(result):
            after = (after or []) + [partial(self.run_background, result)]
        return out[0], out[1], after

    def parse(self, header, body):
        """((kwargs of predict, payload, query_params, headers), None) for a POST request, or
        (None, the error response) when its payload cannot be parsed."""
        kwargs = {}
        payload = headers = query = None
        if not self.build_args:
            return (kwargs, payload, query, headers), None
        if self.need_payload:
            content_type = ""
            for pair in header.get("headers") or ():
                if pair[0].lower() == "content-type":
                    content_type = pair[1]
                    break
            ct = content_type.lower()
            if ct.startswith("application/json"):
                try:
                    payload = _loads(body)
                except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
                    return None, (HDR_JSON_400, _error_body(str(e)), None)
                except RecursionError:  # '[' * 1000: deeper than Python can parse
                    return None, (HDR_JSON_400,
                                  _error_body("the JSON payload is nested too deeply"), None)
            elif ct.startswith("multipart/form") or ct.startswith(
                    "application/x-www-form-urlencoded"):
                try:
                    payload = forms.parse_form(body, ct, content_type)
                except Exception as e:
                    return None, (HDR_TEXT_400, str(e).encode("utf-8"), None)
            else:
                payload = body
            if self.pass_payload:
                kwargs["payload"] = payload
        if self.need_headers:
            headers = compat.make_headers(header.get("headers") or ())
            if self.pass_headers:
                kwargs["headers"] = headers
        if self.need_query:
            query = compat.QueryParams(header.get("query") or "")
            if self.pass_query:
                kwargs["query_params"] = query
        if self.pass_batch_id:
            kwargs["batch_id"] = None
        return (kwargs, payload, query, headers), None

    def encode(self, result):
        """(response header bytes, body) for a value predict returned."""
        try:
            cls = type(result)
            if cls is dict or cls is list:
                out = HDR_JSON_200, _encode_result(result).encode("utf-8")
            elif cls is bytes:
                out = HDR_BYTES_200, result
            elif cls is str:
                out = HDR_TEXT_200, result.encode("utf-8")
            elif isinstance(result, (bytes, bytearray, memoryview)):
                out = HDR_BYTES_200, bytes(result)
            elif isinstance(result, str):
                out = HDR_TEXT_200, str(result).encode("utf-8")
            elif _is_response(result):
                out = encode_response_object(result)
            else:
                out = HDR_JSON_200, _encode_result(result).encode("utf-8")
        except (TypeError, ValueError) as e:
            # Not serialisable, at the top level or anywhere inside a dict or list.
            log_error("error: the predict return value is not JSON serializable")
            out = HDR_JSON_500, _error_body(f"{_exception_message(e)}: {NOT_SERIALIZABLE_HINT}")
        if self.monitor_type is not None and out[0] in (HDR_JSON_200, HDR_TEXT_200):
            out = self.with_monitor(out, result)
        return out

    def post_kwargs(self, result, payload, query, headers):
        post = {}
        post_args = self.post_args
        if "response" in post_args:
            post["response"] = result
        if "payload" in post_args:
            post["payload"] = payload
        if "query_params" in post_args:
            post["query_params"] = query
        if "headers" in post_args:
            post["headers"] = headers
        return post

    # -- server-side batching (docs/batching.md) ------------------------------------------------

    def handle_batch(self, items):
        """Responses [(header bytes, body)] for a batch [(request header, body)], and the
        callables to run after replying (or None)."""
        if self.concurrent_batches:
            return self.handle_batch_concurrently(items)
        responses = [None] * len(items)
        after = []
        batch = []  # (index, parsed) of the requests predict gets
        for i, (header, body) in enumerate(items):
            if header.get("method", "POST") != "POST" or header.get("path", "").startswith(
                    V2_PREFIX):
                out = self.handle(header, body)
            else:
                parsed, out = self.parse(header, body)
                if parsed is not None:
                    batch.append((i, parsed))
                    continue
            responses[i] = out[:2]
            if out[2]:
                after += out[2]
        if batch:
            after += self.predict_batch(batch, responses)
        return responses, after or None

    def predict_batch(self, batch, responses):
        """Calls predict once with the lists of the batch's arguments; fills ``responses``."""
        n = len(batch)
        kwargs = {}
        for key in batch[0][1][0]:
            kwargs[key] = None if key == "batch_id" else [p[0][key] for _, p in batch]
        try:
            results = self.predict(**kwargs)
            if not isinstance(results, (list, tuple)) or len(results) != n:
                got = (f"a {type(results).__name__} of {len(results)} items"
                       if isinstance(results, (list, tuple)) else f"a {type(results).__name__}")
                raise BatchResultError(f"predict must return a list of {n} results (one for "
                                       f"each request of the batch), but it returned {got}")
        except Exception as e:
            if _is_http_exception(e):
                out = encode_http_exception(e)
            else:
                if not isinstance(e, BatchResultError):
                    log_error("error: exception in predict")
                else:
                    log_error(f"error: {e}", with_traceback=False)
                out = HDR_JSON_500, _error_body(_exception_message(e))
            for i, _ in batch:
                responses[i] = out
            return []
        failed = False
        after = []
        for (i, _), result in zip(batch, results):
            responses[i] = out = self.encode(result)
            failed = failed or out[0] is HDR_JSON_500
            if out[0] is not HDR_JSON_200 and getattr(result, "background", None) is not None \
                    and _is_response(result):
                after.append(partial(self.run_background, result))
        if self.post_predict is not None and not failed:
            columns = [[p[j] for _, p in batch] for j in (1, 2, 3)]
            after.insert(0, partial(self.run_post_predict,
                                    self.post_kwargs(list(results), *columns)))
        return after

    def handle_batch_concurrently(self, items):
        """ONNX: every request runs the one-request predict on a thread of its own, and their
        onnx_client.predict calls are stacked into one run of the model (onnx_batching.py)."""
        from . import onnx_batching
        batch_run = onnx_batching.BatchRun(len(items))
        pool = getattr(self._local, "pool", None)
        if pool is None and len(items) > 1:
            from concurrent.futures import ThreadPoolExecutor
            pool = self._local.pool = ThreadPoolExecutor(
                max_workers=self.max_batch_size,
                thread_name_prefix=f"{threading.current_thread().name}-batch")

        def item(header, body):
            models.set_batch_run(batch_run)
            try:
                return self.handle(header, body)
            finally:
                models.set_batch_run(None)

        outs = onnx_batching.run_items(
            batch_run, [partial(item, header, body) for header, body in items], pool)
        responses, after = [], []
        for out in outs:
            if isinstance(out, BaseException):
                raise out  # SystemExit or KeyboardInterrupt from user code (handle catches the rest)
            responses.append(out[:2])
            if out[2]:
                after += out[2]
        return responses, after or None

    def handle_v2(self, header, body):
        """The Open Inference Protocol's model endpoints (v2.py; docs/v2-protocol.md)."""
        if self.v2 is None:
            return HDR_JSON_404, _error_body(
                "this API does not serve the Open Inference Protocol: ONNX predictors do, and "
                "Python predictors that define v2_metadata and v2_infer"), None
        status, content_type, headers, out = self.v2.handle(
            header.get("method", "POST"), header.get("path", ""), header.get("query") or "",
            header.get("headers") or (), body)
        return _response_header(status, content_type, headers), out, None

    def summary_with_models(self):
        try:
            meta = self.model_metadata()
            body = _encode_result({"message": API_SUMMARY_MESSAGE, "model_metadata": meta})
        except Exception as e:
            log_error("error: reading the model metadata")
            return HDR_JSON_500, _error_body(_exception_message(e)), None
        return HDR_JSON_200, body.encode("utf-8"), None

    def with_monitor(self, out, result):
        """Adds the monitored value of `result` to the response header (warns when missing)."""
        value = result
        if self.monitor_key is not None:
            if not isinstance(result, dict) or self.monitor_key not in result:
                log_error(f"warning: monitoring: the prediction is not a dict with key "
                          f"{self.monitor_key!r}", with_traceback=False)
                return out
            value = result[self.monitor_key]
        if self.monitor_type == "regression":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (str, int)) and not isinstance(value, bool)
            value = str(value) if ok else value
        if not ok:
            log_error(f"warning: monitoring: {type(value).__name__} is not a valid "
                      f"{self.monitor_type} value", with_traceback=False)
            return out
        header = json.loads(out[0])
        header["monitor"] = value
        return _dumps(header, separators=(",", ":")).encode("utf-8"), out[1]

    def run_post_predict(self, kwargs):
        try:
            self.post_predict(**kwargs)
        except Exception:
            log_error("error: exception in post_predict")

    @staticmethod
    def run_background(resp):
        background = getattr(resp, "background", None)
        if background is None:
            return
        try:
            result = background()
            if hasattr(result, "__await__"):
                _run_coroutine(result)
        except Exception:
            log_error("error: exception in a response background task")


def split_batch(heads, body):
    """[(request header, body)] of a batch frame (its header's "batch" list and its body)."""
    if not isinstance(heads, list) or not heads:
        raise ValueError("the batch is not a non-empty list")
    items = []
    at = 0
    for head in heads:
        length = head.get("length") if isinstance(head, dict) else None
        if not isinstance(length, int) or length < 0 or at + length > len(body):
            raise ValueError("a request of the batch has a bad length")
        items.append((head, body[at:at + length]))
        at += length
    if at != len(body):
        raise ValueError("the batch's bodies do not fill its frame")
    return items


def encode_batch(responses):
    """A batch response frame's header and body from [(header bytes, body)]."""
    heads = []
    for header, body in responses:
        # Each header is a JSON object: its length goes in before the closing brace.
        heads.append(header[:-1] + b',"length":%d}' % len(body))
    return b'{"batch":[' + b",".join(heads) + b"]}", b"".join(body for _, body in responses)


def serve_connection(sock, handler):
    """The slot loop: one request at a time until the front closes the connection."""
    reader = FrameReader(sock)
    handle = handler.handle
    try:
        while True:
            try:
                frame = reader.read_raw()
            except (OSError, ProtocolError) as e:
                log_error(f"error: slot connection: {e}", with_traceback=False)
                return
            if frame is None:
                return
            raw_header, body = frame
            try:
                header = _loads(raw_header) if raw_header else {}
                if not isinstance(header, dict):
                    raise ValueError("the request header is not a JSON object")
            except ValueError as e:
                log_error(f"error: bad request frame header: {e}", with_traceback=False)
                return
            batch = header.get("batch")
            if batch is not None:
                try:
                    items = split_batch(batch, body)
                except ValueError as e:
                    log_error(f"error: bad batch frame: {e}", with_traceback=False)
                    return
                responses, after = handler.handle_batch(items)
                resp_header, resp_body = encode_batch(responses)
            else:
                resp_header, resp_body, after = handle(header, body)
            try:
                write_frame(sock, resp_header, resp_body)
            except OSError as e:
                log_error(f"error: slot connection: {e}", with_traceback=False)
                return
            if after is not None:
                for fn in after:
                    fn()
    except BaseException:
        # SystemExit/KeyboardInterrupt from user code: the process cannot go on serving.
        log_error("error: fatal exception in a slot thread")
        _flush_and_exit(1)
    finally:
        try:
            reader.close()
        except Exception:
            pass
        try:
            sock.close()
        except Exception:
            pass


def _flush_and_exit(code):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _configure_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass


def _configure_logging():
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="cortex_runtime.worker")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--slots", type=int, required=True)
    parser.add_argument("--process-index", type=int, default=0)
    parser.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    return args


def start(args):
    """Steps 1-2: environment, module, predictor. Returns the RequestHandler."""
    spec = loader.load_spec(os.path.abspath(args.spec))
    os.environ["CORTEX_PROCESS_INDEX"] = str(args.process_index)
    project_dir = loader.prepare_environment(spec)
    cls = loader.load_predictor_class(spec, project_dir)
    _configure_logging()
    signatures = loader.validate_predictor_class(cls, spec)
    predictor, registry, clients = construct_with_models(cls, signatures, spec, watch=True)
    metadata = None
    if registry is not None:
        metadata = partial(models.model_metadata, registry, clients.get("onnx_client"))
    predictor_spec = spec.get("predictor") or {}
    return RequestHandler(predictor, signatures, spec.get("monitoring"), metadata,
                          batching=predictor_spec.get("server_side_batching"),
                          concurrent_batches=predictor_spec.get("type") == "onnx",
                          v2_handler=v2_handler_for(spec, predictor, registry))


def v2_handler_for(spec, predictor, registry):
    """The API's Open Inference Protocol handler: ONNX models, or a Python predictor's hook."""
    from . import v2
    name = spec.get("name", "")
    if (spec.get("predictor") or {}).get("type") == "onnx" and registry is not None:
        return v2.V2Handler(name, v2.OnnxBackend(registry, spec, run=models.run_session))
    if v2.PythonHookBackend.supports(predictor):
        return v2.V2Handler(name, v2.PythonHookBackend(predictor))
    return None


def construct_with_models(cls, signatures, spec, watch=True):
    """Builds the model registry and clients (when models are configured), then the predictor.

    Returns (predictor, registry or None, clients).
    """
    registry, clients = models.build_clients(spec, watch=watch)
    predictor = loader.construct_predictor(cls, signatures["__init__"], spec, clients)
    if "python_client" in clients:
        registry.load_fn = predictor.load_model
    return predictor, registry, clients


def connect_slots(path, count):
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    return socks


def main(argv=None):
    _configure_output()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    socket_path = os.path.abspath(args.socket)
    try:
        handler = start(args)
    except BaseException:
        log_error("failed to start api")
        _flush_and_exit(1)

    try:
        socks = connect_slots(socket_path, args.slots)
    except OSError:
        log_error(f"failed to start api: cannot connect to {socket_path}")
        _flush_and_exit(1)

    threads = []
    for i, s in enumerate(socks[1:], start=1):
        t = threading.Thread(target=serve_connection, args=(s, handler),
                             name=f"slot-{i}", daemon=True)
        t.start()
        threads.append(t)
    serve_connection(socks[0], handler)
    for t in threads:
        t.join()
    _flush_and_exit(0)


if __name__ == "__main__":
    main()
