"""Server-side batching for ONNX predictors, done at the onnx client.

Cortex v0.24 batched TensorFlow APIs in TF Serving: concurrent requests' tensors were stacked
along dimension 0, run once, and the outputs split back. Here the replica front hands a worker
slot a batch of N requests; the worker runs the user's (unchanged, one-request) ONNXPredictor
``predict`` N times concurrently, one thread per item, and each ``onnx_client.predict`` calls
``BatchRun.run`` instead of ``session.run``. ``run`` is a rendezvous: it waits until every item
still running has either called ``run`` or finished (``item_done``), then the waiting calls form
a *round*:

- Calls are grouped by model (identity), model name and version, input names, and each input's
  dtype and shape[1:]. A call runs alone when an input has rank 0, its inputs disagree on dim 0,
  or the model's input signature fixes dim 0 (only dynamic, ``None``, batch dims are stacked).
- A group of several calls is concatenated along axis 0 (each call keeps its own dim-0 size),
  run once, and every output is split back by those sizes. When an output cannot be split that
  way (dim 0 != the total, not an array or list, or the session's output signature fixes dim 0)
  nothing is guessed: each call of the group runs alone. Groups run in parallel, each on the
  thread of its first call.
- If a batched run raises, each call of the group is retried alone, so one bad input fails only
  its own request; every caller gets its own result or exception, raised in its own thread.

A predictor that runs the model twice takes part in a second round once the first round's results
are back. ``max_wait_s`` is a straggler guard, not a batching window: if a round is not complete
that long after its first call (an item waiting on I/O, or a predictor that serializes items under
its own lock, which would otherwise deadlock), the waiting calls run without the stragglers.

Returned arrays of a batched run are ``np.split`` views of one output array; the views do not
overlap, so one request's result cannot change another's (each keeps the whole output alive).
A BatchRun serves one batch; it has no global state. A batch of one calls the session directly.
"""

import threading
import time

import numpy as np

__all__ = ["DEFAULT_MAX_WAIT_S", "BatchRun", "run_items"]

DEFAULT_MAX_WAIT_S = 1.0


def _dynamic(dim):
    """A batch dimension as onnx_inputs sees it: None, a symbolic name or negative is dynamic."""
    return not isinstance(dim, int) or isinstance(dim, bool) or dim < 0


class _Call:
    __slots__ = ("model", "feeds", "key", "rows", "outputs", "error", "work", "done", "round")

    def __init__(self, model, model_name, version, feeds):
        self.model, self.feeds = model, feeds
        self.outputs = self.error = self.work = None
        self.done = False
        self.round = -1
        self.rows = None
        self.key = self._stack_key(model_name, version)

    def _stack_key(self, model_name, version):
        """The group key, or None when this call must run alone; sets ``rows`` (its dim 0)."""
        try:
            signatures = self.model["input_signatures"]
            parts = []
            for name in sorted(self.feeds):
                array = self.feeds[name]
                if not isinstance(array, np.ndarray) or array.ndim < 1:
                    return None
                if not _dynamic(list(signatures[name]["shape"])[0]):
                    return None
                if self.rows is not None and array.shape[0] != self.rows:
                    return None
                self.rows = array.shape[0]
                parts.append((name, array.dtype, array.shape[1:]))
        except (KeyError, IndexError, TypeError):
            return None
        if not parts:
            return None
        return (id(self.model), model_name, version, tuple(parts))

    def run_alone(self):
        try:
            self.outputs = self.model["session"].run(None, self.feeds)
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller's thread
            self.error = e


def _outputs_split_by_rows(session):
    """False when the session's output signature fixes some output's dim 0."""
    outputs = getattr(session, "outputs", None)
    if not callable(outputs):
        return True
    for sig in outputs():
        shape = list(sig.get("shape") or [])
        if shape and not _dynamic(shape[0]):
            return False
    return True


def _run_stacked(calls):
    """Per-call output lists of one concatenated run, or None when the outputs don't split."""
    session = calls[0].model["session"]
    if not _outputs_split_by_rows(session):
        return None
    sizes = [c.rows for c in calls]
    total = sum(sizes)
    ends = np.cumsum(sizes)
    starts = ends - np.asarray(sizes)
    feeds = {name: np.concatenate([c.feeds[name] for c in calls], axis=0)
             for name in calls[0].feeds}
    per_call = [[] for _ in calls]
    for out in session.run(None, feeds):
        if isinstance(out, np.ndarray) and out.ndim >= 1 and out.shape[0] == total:
            pieces = np.split(out, ends[:-1], axis=0)
        elif isinstance(out, list) and len(out) == total:  # e.g. ZipMap: one map per row
            pieces = [out[a:b] for a, b in zip(starts, ends)]
        else:
            return None
        for outputs, piece in zip(per_call, pieces):
            outputs.append(piece)
    return per_call


def _run_group(calls):
    if len(calls) > 1:
        try:
            per_call = _run_stacked(calls)
        except Exception:  # noqa: BLE001 -- retried alone below; each call gets its own error
            per_call = None
        if per_call is not None:
            for call, outputs in zip(calls, per_call):
                call.outputs = outputs
            return
    for call in calls:
        call.run_alone()


class BatchRun:
    """One batch's rendezvous: ``size`` items, each item's predict running on its own thread.

    Each item calls ``run`` (any number of times) in place of ``model["session"].run(None,
    feeds)`` and ``item_done`` exactly once when its predict returns or raises.
    """

    def __init__(self, size, max_wait_s=DEFAULT_MAX_WAIT_S):
        if size < 1:
            raise ValueError("a batch has at least one item")
        self.size = size
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._live = size  # items that have not called item_done
        self._pending = []  # calls waiting for the current round
        self._round = 0  # the current round's number
        self._round_started = 0.0

    def run(self, model, model_name, version, feeds):
        """This call's outputs (the session's list). Blocks until the round is complete."""
        if self.size == 1:
            return model["session"].run(None, feeds)
        call = _Call(model, model_name, version, feeds)
        with self._cond:
            if not self._pending and self._live <= 1:
                call.work = [call]  # nobody else can join: run at once
            else:
                if not self._pending:
                    self._round_started = time.monotonic()
                call.round = self._round
                self._pending.append(call)
                self._wait(call)
        if call.work is not None:
            self._execute(call.work)
        if call.error is not None:
            raise call.error
        return call.outputs

    def item_done(self):
        """An item's predict returned or raised: it will not call ``run`` again."""
        with self._cond:
            self._live -= 1
            if self._pending and len(self._pending) >= self._live:
                self._start_round()

    def _wait(self, call):
        """With the lock held: until ``call`` has a group to run or has its result."""
        while not call.done and call.work is None:
            timeout = None
            if call.round == self._round:  # its round has not started
                if len(self._pending) >= self._live:
                    self._start_round()
                    continue
                if self.max_wait_s is not None:
                    timeout = self._round_started + self.max_wait_s - time.monotonic()
                    if timeout <= 0:
                        self._start_round()
                        continue
            self._cond.wait(timeout)

    def _start_round(self):
        """With the lock held: groups the pending calls; each group goes to its first call."""
        calls, self._pending = self._pending, []
        self._round += 1
        groups = {}
        for call in calls:
            groups.setdefault(call.key if call.key is not None else id(call), []).append(call)
        for group in groups.values():
            group[0].work = group
        self._cond.notify_all()

    def _execute(self, group):
        try:
            _run_group(group)
        except BaseException as e:  # noqa: BLE001 -- never leave a caller waiting
            for call in group:
                if call.outputs is None and call.error is None:
                    call.error = e
        finally:
            with self._cond:
                for call in group:
                    call.done = True
                self._cond.notify_all()


def run_items(batch_run, item_fns, pool=None):
    """Runs each fn of a batch on its own thread (``pool``: an Executor with at least
    ``len(item_fns)`` free workers, else one thread each), calling ``batch_run.item_done`` after
    each. Returns, in order, each fn's return value or the exception it raised."""
    if len(item_fns) != batch_run.size:
        raise ValueError(f"{len(item_fns)} items for a BatchRun of {batch_run.size}")
    results = [None] * len(item_fns)

    def item(i):
        try:
            results[i] = item_fns[i]()
        except BaseException as e:  # noqa: BLE001 -- the caller reports it
            results[i] = e
        finally:
            batch_run.item_done()

    if len(item_fns) == 1:
        item(0)
    elif pool is not None:
        for future in [pool.submit(item, i) for i in range(len(item_fns))]:
            future.result()
    else:
        threads = [threading.Thread(target=item, args=(i,), daemon=True)
                   for i in range(len(item_fns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results
