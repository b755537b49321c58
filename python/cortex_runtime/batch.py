"""A batch worker: runs the user's predictor over the batches of one job.

    python3 -u -m cortex_runtime.batch --spec SPEC_JSON --operator URL --job JOB_ID --worker ID

The spec holds the API configuration, "project_dir" and "job_spec" (the job's config is
deep-merged over predictor.config). The worker leases batches from the operator over HTTP
(bearer token in $CORTEX_OPERATOR_TOKEN), calls ``predict(payload=<batch>, batch_id=<id>)``,
renews its lease while predict runs, and acks or fails each batch. When the operator says every
batch is done, the one worker it chooses runs ``on_job_complete()`` (once per job) and reports it.
A worker that cannot reach the operator keeps retrying for a while (the operator may be
restarting), then exits 1; its batches come back to the queue when their lease runs out.
"""

import argparse
import json
import os
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

from . import loader, orphans
from .worker import (_configure_logging, _configure_output, _exception_message, _flush_and_exit,
                     construct_with_models)

RENEW_EVERY_S = 10
OPERATOR_PATIENCE_S = 180


class Operator:
    """The operator's job endpoints, with retries while it is unreachable."""

    def __init__(self, url, job, worker, token):
        self.base = f"{url.rstrip('/')}/v1/jobs/{job}"
        self.worker = worker
        self.token = token

    def call(self, action, body=None, patient=True):
        data = json.dumps(dict(body or {}, worker=self.worker)).encode("utf-8")
        deadline = time.monotonic() + OPERATOR_PATIENCE_S
        delay = 0.2
        while True:
            request = urllib.request.Request(
                f"{self.base}/{action}", data=data, method="POST",
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")
                if e.code < 500:
                    raise RuntimeError(f"operator refused {action}: {e.code} {detail}")
            except (urllib.error.URLError, OSError, TimeoutError):
                pass
            if not patient or time.monotonic() > deadline:
                raise RuntimeError(f"cannot reach the operator at {self.base}")
            time.sleep(delay)
            delay = min(delay * 2, 5)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="cortex_runtime.batch")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--operator", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--worker", required=True)
    return parser.parse_args(argv)


def renew_while(operator, batch_id, done):
    while not done.wait(RENEW_EVERY_S):
        try:
            operator.call("renew", {"batch_id": batch_id}, patient=False)
        except Exception:
            pass  # the lease may lapse; the batch is then retried elsewhere


def run(args):
    spec = loader.load_spec(os.path.abspath(args.spec))
    project_dir = loader.prepare_environment(spec)
    cls = loader.load_predictor_class(spec, project_dir)
    _configure_logging()
    signatures = loader.validate_predictor_class(cls, spec)
    # Cortex stops reloading models after the first pass for BatchAPI: no watcher.
    predictor, _, _ = construct_with_models(cls, signatures, spec, watch=False)
    predict_args = set(signatures["predict"])
    operator = Operator(args.operator, args.job, args.worker,
                        os.environ.get("CORTEX_OPERATOR_TOKEN", ""))
    print(f"worker {args.worker} is ready", flush=True)

    while True:
        answer = operator.call("lease")
        batch = answer.get("batch")
        if batch is None:
            if answer.get("done"):
                if answer.get("on_job_complete"):
                    if "on_job_complete" in signatures:
                        print("running on_job_complete", flush=True)
                        try:
                            predictor.on_job_complete()
                        except Exception:
                            # Once per job: an error is logged, not retried by other workers.
                            sys.stderr.write("on_job_complete failed\n" + traceback.format_exc())
                    operator.call("complete")
                return 0
            time.sleep(float(answer.get("wait_s", 1)))
            continue
        kwargs = {}
        if "payload" in predict_args:
            kwargs["payload"] = batch["payload"]
        if "batch_id" in predict_args:
            kwargs["batch_id"] = str(batch["id"])
        for name in ("query_params", "headers"):
            if name in predict_args:
                kwargs[name] = None
        done = threading.Event()
        renewer = threading.Thread(target=renew_while, args=(operator, batch["id"], done),
                                   daemon=True)
        renewer.start()
        started = time.monotonic()
        try:
            predictor.predict(**kwargs)
        except Exception as e:
            done.set()
            sys.stderr.write(f"batch {batch['index']} failed (attempt {batch['attempt']})\n"
                             f"{traceback.format_exc()}")
            operator.call("fail", {"batch_id": batch["id"], "error": _exception_message(e)})
            continue
        done.set()
        operator.call("ack", {"batch_id": batch["id"], "seconds": time.monotonic() - started})


def main(argv=None):
    _configure_output()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    orphans.adopt_orphans()
    try:
        code = run(args)
    except BaseException:
        sys.stderr.write("batch worker failed\n" + traceback.format_exc())
        code = 1
    orphans.stop_children()
    _flush_and_exit(code)


if __name__ == "__main__":
    main()
