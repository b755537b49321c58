"""The client of one environment's operator: its REST API, called directly."""

import codecs
import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from cortex import predictor_shipping, project
from cortex.exceptions import CortexException

_CONFIG_FILE_NAME = "cortex.yaml"  # the name the operator's messages give the config


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The token is for the operator alone: a redirect is an error, never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirected to {newurl}", headers, fp)


# As the CLI: no proxy (the operator is usually on loopback, and the token must not go to a
# proxy) and no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


class Client:
    """Deploys and inspects APIs through the operator of environment ``env`` (a dict with
    ``name``, ``provider``, ``operator_endpoint`` and ``operator_token``, as in cli.yaml)."""

    def __init__(self, env, timeout=600):
        self.env = dict(env)
        self.env_name = self.env["name"]
        self._timeout = timeout

    def __repr__(self):
        return f"cortex.Client(env={self.env_name!r})"

    # ---- the operator's REST API -------------------------------------------------------------
    def _call(self, method, path, body=None, timeout=None, raw=False):
        endpoint = self.env.get("operator_endpoint", "")
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            request = urllib.request.Request(endpoint.rstrip("/") + path, data=data,
                                             method=method, headers={
                "Authorization": "Bearer " + self.env.get("operator_token", ""),
                "Content-Type": "application/json"})
        except (TypeError, ValueError) as e:  # a spec that is not JSON, a malformed endpoint
            raise CortexException(f"cannot send {method} {path} to {endpoint!r} "
                                  f"(environment {self.env_name}): {e}") from None
        try:
            with _OPENER.open(request, timeout=timeout or self._timeout) as response:
                payload = response.read()
                headers = dict(response.headers)
        except urllib.error.HTTPError as e:
            try:
                text = e.read()
            except (OSError, http.client.HTTPException):
                text = b""
            if e.code == 401 and not text:  # a HEAD's answer has no body to say it
                text = (f"the operator refused the token of environment {self.env_name} "
                        "(see `cortex env list`)").encode()
            raise CortexException(_error_message(text, e.reason), status=e.code) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            hint = ("start the local cluster with `cortex cluster up`"
                    if self.env.get("provider") == "local" else
                    "check that the cluster is running and the endpoint is right "
                    "(`cortex env list`)")
            if isinstance(e, (BrokenPipeError, ConnectionResetError)) and data:
                hint = ("the operator closed the connection during the upload: the project may "
                        "be over the cluster's bundle limit (docs/security.md#limits); " + hint)
            reason = getattr(e, "reason", e)
            raise CortexException(
                f"unable to connect to the operator at {endpoint} "
                f"(environment {self.env_name}): {reason}; {hint}") from None
        if raw:
            return payload, headers
        try:
            return json.loads(payload) if payload else None
        except ValueError:
            raise CortexException(f"the operator sent a malformed response to {method} "
                                  f"{path}") from None

    def _upload(self, archive, project_id):
        try:
            self._call("HEAD", f"/v1/bundles/{project_id}", timeout=30, raw=True)
        except CortexException as e:
            if e.status != 404:
                raise
            self._call("PUT", f"/v1/bundles/{project_id}", archive)

    # ---- APIs ----------------------------------------------------------------------------------
    def create_api(self, api_spec, predictor=None, requirements=[], conda_packages=[],
                   project_dir=None, force=True, wait=False):
        """Deploys one API and returns its deploy result ``{"api": {"spec", "endpoint", ...},
        "message", "error"}``.

        ``predictor`` is a predictor class (shipped as predictor_shipping describes, its type
        taken from its name) and ``project_dir`` a project directory: give one of them, or
        neither for a TrafficSplitter. ``requirements`` and ``conda_packages`` (lists of lines)
        become requirements.txt and conda-packages.txt beside a predictor class. ``wait``
        prints the API's logs until it is live (and raises if it fails)."""
        if not isinstance(api_spec, dict) or not api_spec.get("name"):
            raise CortexException("api_spec must be a dict with a name")
        if predictor is not None and project_dir is not None:
            raise CortexException("`predictor` and `project_dir` parameters cannot be specified "
                                  "at the same time, please choose one")
        for name, lines in (("requirements", requirements), ("conda_packages", conda_packages)):
            if isinstance(lines, str):
                raise CortexException(f"{name} must be a list of lines, not a string")
        try:
            spec = json.loads(json.dumps(api_spec))  # a copy; the caller's dict stays as it was
        except (TypeError, ValueError) as e:
            raise CortexException(f"api_spec must hold JSON values only: {e}") from None
        extra = {}
        if predictor is not None:
            spec.setdefault("predictor", {})
            spec["predictor"]["type"] = predictor_shipping.predictor_type(predictor)
            spec["predictor"]["path"] = predictor_shipping.PICKLE_PATH
            extra = predictor_shipping.ship(predictor)
            if requirements:
                extra["requirements.txt"] = ("\n".join(requirements) + "\n").encode()
            if conda_packages:
                extra["conda-packages.txt"] = ("\n".join(conda_packages) + "\n").encode()
        elif project_dir is None and spec.get("kind") != "TrafficSplitter":
            raise CortexException("either `predictor` or `project_dir` must be specified")
        archive, project_id = project.pack(project_dir, extra)
        self._upload(archive, project_id)
        results = self._call("POST", "/v1/deploy", {
            "config": yaml.safe_dump([spec], sort_keys=False),
            "config_file_name": _CONFIG_FILE_NAME, "project_id": project_id, "force": force})
        if not results:
            raise CortexException("the operator deployed nothing (an empty answer)")
        result = results[0]
        if result.get("error"):
            raise CortexException(result["error"])
        if wait and spec.get("kind", "RealtimeAPI") == "RealtimeAPI":
            self._wait_live(spec["name"])
        return result

    def _wait_live(self, name, poll_s=0.5):
        offset = 0
        while True:
            offset = self._print_logs(f"/v1/logs/{name}", offset)
            status = (self.get_api(name).get("status") or {}).get("status_code")
            if status == "status_live":
                self._print_logs(f"/v1/logs/{name}", offset)
                return
            # "compute unavailable" (status_stalled) may resolve: keep waiting, as v0.24 did.
            if status not in (None, "status_updating", "status_stalled"):
                raise CortexException(f"{name} did not become live: {status}")
            time.sleep(poll_s)

    def get_api(self, api_name):
        """The API's description (spec, status, metrics, endpoint, api_versions, replicas)."""
        return self._call("GET", f"/v1/apis/{_quote(api_name)}")

    def list_apis(self):
        return self._call("GET", "/v1/apis")

    def get_job(self, api_name, job_id):
        return self._call("GET", f"/v1/apis/{_quote(api_name)}/jobs/{_quote(job_id)}")

    def refresh(self, api_name, force=False):
        """Replaces every replica of the API (a rolling restart); returns the message."""
        suffix = "?force=true" if force else ""
        return self._call("POST", f"/v1/apis/{_quote(api_name)}/refresh{suffix}")["message"]

    def patch(self, api_spec, force=False):
        """Applies a changed spec to a deployed API without uploading a project."""
        try:
            api_spec = json.loads(json.dumps(api_spec))
        except (TypeError, ValueError) as e:
            raise CortexException(f"api_spec must hold JSON values only: {e}") from None
        results = self._call("POST", "/v1/patch", {
            "config": yaml.safe_dump([api_spec], sort_keys=False),
            "config_file_name": _CONFIG_FILE_NAME, "force": force})
        if results and results[0].get("error"):
            raise CortexException(results[0]["error"])
        return results[0] if results else None

    def delete_api(self, api_name, keep_cache=False):
        """Deletes the API (no confirmation is asked). ``keep_cache`` is accepted for v0.24's
        signature: the operator keeps no per-API cache to keep."""
        return self._call("DELETE", f"/v1/apis/{_quote(api_name)}")["message"]

    def stop_job(self, api_name, job_id, keep_cache=False):
        return self._call("DELETE",
                          f"/v1/apis/{_quote(api_name)}/jobs/{_quote(job_id)}")["message"]

    # ---- logs ----------------------------------------------------------------------------------
    def stream_api_logs(self, api_name, follow=True, out=None):
        """Prints the API's log and, with ``follow``, what comes next until Ctrl-C."""
        self._stream(f"/v1/logs/{_quote(api_name)}", follow, out)

    def stream_job_logs(self, api_name, job_id, follow=True, out=None):
        self._stream(f"/v1/logs/{_quote(api_name)}?job={_quote(job_id)}", follow, out)

    def _stream(self, path, follow, out):
        offset = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                before = offset
                offset = self._print_logs(path, offset, out, decoder)
                if not follow and offset - before < _LOG_CHUNK_BYTES:
                    return
                if offset == before:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            return

    def _print_logs(self, path, offset, out=None, decoder=None):
        """Prints the log from `offset` (a character split between two reads is kept for the
        next one by `decoder`); returns the next offset."""
        sep = "&" if "?" in path else "?"
        body, headers = self._call("GET", f"{path}{sep}offset={offset}", timeout=30, raw=True)
        (out or sys.stdout).write(decoder.decode(body) if decoder else
                                  body.decode(errors="replace"))
        (out or sys.stdout).flush()
        try:
            return int({k.lower(): v for k, v in headers.items()}["x-cortex-next-offset"])
        except (KeyError, ValueError):
            raise CortexException("the operator's answer has no X-Cortex-Next-Offset") from None


_LOG_CHUNK_BYTES = 1 << 20  # the operator's largest answer


def _quote(segment):
    return urllib.parse.quote(str(segment), safe="")


def _error_message(body, reason):
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and (parsed.get("message") or parsed.get("error")):
            return parsed.get("message") or parsed["error"]
    except ValueError:
        pass
    text = body.decode(errors="replace").strip() if body else ""
    return text or str(reason)
