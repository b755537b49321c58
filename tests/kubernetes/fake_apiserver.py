"""A fake Kubernetes API server on 127.0.0.1 for the operator's end-to-end tests.

It keeps objects of any kind in memory with the API server's REST paths and verbs (namespaced,
and namespaces, which are cluster-scoped and take what they hold with them; list with
labelSelector, get, create, replace with resourceVersion checks, merge-patch of the scale
subresource, delete, pods' logs from `logs`), keeps a Secret's stringData as base64 data, answers
errors as Status objects with the same codes (404, 409 AlreadyExists / Conflict, 401), and
requires a bearer token. No controllers run: the tests create the pods a Deployment would have,
with the status a kubelet would report.
"""
import base64
import copy
import json
import textwrap
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeApiServer:
    def __init__(self, token="fake-token"):
        self.token = token
        self.objects = {}  # (namespace, plural, name) -> object
        self.version = 0
        self.requests = []
        self.logs = {}  # (namespace, pod) -> log text, each line led by an RFC 3339 timestamp
        self.history = []  # (version, namespace, plural, event) of each change, for watches
        self.compacted = 0  # a watch from an older version gets 410 Gone (see compact)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, code, body):
                text = isinstance(body, str)  # a pod's log
                data = body.encode() if text else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with server.lock:
                    code, answer = server.handle(self.command, self.path,
                                                 self.headers.get("Authorization"), body)
                if isinstance(answer, tuple):  # a watch: streamed without the lock
                    server._watch(self, *answer)
                    return
                self._answer(code, answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- what tests read and write directly ----
    def write_kubeconfig(self, path):
        """A kubeconfig whose current context is this server, with its token."""
        path.write_text(textwrap.dedent(f"""
            apiVersion: v1
            kind: Config
            current-context: fake
            contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]
            clusters: [{{name: fake, cluster: {{server: "{self.url}"}}}}]
            users: [{{name: fake, user: {{token: {self.token}}}}}]
            """))
        return path

    def get(self, namespace, plural, name):
        with self.lock:
            return self.objects.get((namespace, plural, name))

    def names(self, namespace, plural):
        with self.lock:
            return sorted(n for (ns, p, n) in self.objects if ns == namespace and p == plural)

    def put(self, namespace, plural, obj):
        with self.lock:
            self._store(namespace, plural, obj)

    def compact(self):
        """Forgets the changes so far, as etcd does: a watch from before now gets 410 Gone."""
        with self.lock:
            self.compacted = self.version
            self.history.clear()

    # ---- the API ----
    def _store(self, namespace, plural, obj):
        if plural == "secrets" and "stringData" in obj:  # the API server keeps data, in base64
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(v.encode()).decode()
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        obj["metadata"]["namespace"] = namespace
        key = (namespace, plural, obj["metadata"]["name"])
        event = {"type": "MODIFIED" if key in self.objects else "ADDED",
                 "object": copy.deepcopy(obj)}
        self.history.append((self.version, namespace, plural, event))
        self.objects[key] = obj
        return obj

    def _watch(self, handler, namespace, plural, wanted, since, timeout):
        """Streams the changes after version `since`, one JSON event a line, for `timeout` s."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")  # HTTP/1.0: the stream ends at the close
        handler.end_headers()
        deadline = time.monotonic() + timeout
        expired = False
        while not expired:
            with self.lock:
                if since < self.compacted:
                    expired = True
                    events = [{"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": f"too old resource version: {since} ({self.compacted})",
                        "reason": "Expired", "code": 410}}]
                else:
                    events = [e for (version, ns, p, e) in self.history
                              if version > since and ns == namespace and p == plural
                              and all(e["object"]["metadata"].get("labels", {}).get(k) == v
                                      for k, v in wanted.items())]
                    since = self.version
            try:
                for e in events:
                    handler.wfile.write((json.dumps(e) + "\n").encode())
                handler.wfile.flush()
            except OSError:  # the client went
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    @staticmethod
    def _status(code, reason, message):
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": message, "reason": reason, "code": code}

    def handle(self, method, target, authorization, body):
        self.requests.append(f"{method} {target}")
        if authorization != f"Bearer {self.token}":
            return self._status(401, "Unauthorized", "Unauthorized")
        url = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [p for p in url.path.split("/") if p]
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            # Namespaces are cluster-scoped: kept under namespace "".
            namespace, plural, name, sub = "", "namespaces", (parts[3:] or [None])[0], None
        elif "namespaces" not in parts or len(parts) < parts.index("namespaces") + 3:
            return self._status(404, "NotFound", "the server could not find the requested resource")
        else:
            i = parts.index("namespaces")
            namespace, plural = parts[i + 1], parts[i + 2]
            name = parts[i + 3] if len(parts) > i + 3 else None
            sub = parts[i + 4] if len(parts) > i + 4 else None
        key = (namespace, plural, name)
        if method == "GET" and plural == "pods" and sub == "log":
            if key not in self.objects:
                return self._status(404, "NotFound", f'pods "{name}" not found')
            since = query.get("sinceTime", "")
            lines = [line for line in self.logs.get((namespace, name), "").splitlines(True)
                     if line[:19] >= since[:19]]
            return 200, "".join(lines)[:int(query.get("limitBytes", 1 << 30))]
        if method == "GET" and name is None and query.get("watch") == "true":
            # Tests keep watches short: at most 2 s each.
            selector = query.get("labelSelector", "")
            wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
            return 200, (namespace, plural, wanted, int(query.get("resourceVersion") or 0),
                         min(int(query.get("timeoutSeconds") or 2), 2))
        if method == "GET" and name is None:
            selector = dict(urllib.parse.parse_qsl(url.query)).get("labelSelector", "")
            wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
            items = [o for (ns, p, _), o in sorted(self.objects.items())
                     if ns == namespace and p == plural
                     and all(o["metadata"].get("labels", {}).get(k) == v
                             for k, v in wanted.items())]
            return 200, {"kind": "List", "metadata": {"resourceVersion": str(self.version)},
                         "items": items}
        if method == "POST" and name is None:
            if (namespace, plural, body["metadata"]["name"]) in self.objects:
                return self._status(409, "AlreadyExists",
                                    f'{plural} "{body["metadata"]["name"]}" already exists')
            return 201, self._store(namespace, plural, body)
        if key not in self.objects:
            return self._status(404, "NotFound", f'{plural} "{name}" not found')
        current = self.objects[key]
        if method == "GET":
            return 200, current
        if method == "PUT":
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return self._status(409, "Conflict", f'Operation cannot be fulfilled on {plural} '
                                    f'"{name}": the object has been modified')
            return 200, self._store(namespace, plural, body)
        if method == "PATCH" and sub == "scale":
            current["spec"]["replicas"] = body["spec"]["replicas"]
            self._store(namespace, plural, current)
            return 200, {"kind": "Scale", "spec": {"replicas": body["spec"]["replicas"]}}
        if method == "DELETE":
            del self.objects[key]
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = str(self.version + 1)
            self.history.append((self.version + 1, namespace, plural,
                                 {"type": "DELETED", "object": gone}))
            if plural == "namespaces":  # what it holds goes with it
                for k in [k for k in self.objects if k[0] == name]:
                    del self.objects[k]
            self.version += 1
            return 200, {"kind": "Status", "status": "Success"}
        return self._status(405, "MethodNotAllowed", "method not allowed")
