"""cortex_runtime.onnx_batching: a batch's concurrent session.run calls merged along dim 0.

Most tests use a fake session that records the shapes it was run with; one runs a tiny real
ONNX model (MatMul + Add, dynamic batch) through _cortex_onnx when onnx and the extension are
importable (conftest.py puts build/python on sys.path), and skips otherwise.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cortex_runtime.onnx_batching import BatchRun, run_items
from cortex_runtime.onnx_inputs import prepare_feeds

JOIN_S = 5.0


class FakeSession:
    """Runs ``fn(feeds)`` (default: [x + x]) and records each run's {input: shape}."""

    def __init__(self, fn=None, outputs=None):
        self.fn = fn or (lambda feeds: [feeds["x"] + feeds["x"]])
        self.runs = []
        self._lock = threading.Lock()
        if outputs is not None:
            self.outputs = lambda: outputs

    def run(self, names, feeds):
        assert names is None
        with self._lock:
            self.runs.append({k: v.shape for k, v in feeds.items()})
        return self.fn(feeds)

    def shapes(self, name="x"):
        with self._lock:
            return [r[name] for r in self.runs]


def fake_model(session=None, dim0=None, inputs=("x",)):
    return {"session": session or FakeSession(),
            "input_signatures": {n: {"shape": [dim0, 4], "type": "tensor(float)"}
                                 for n in inputs}}


def row(value, rows=1, width=4, dtype=np.float32):
    return np.full((rows, width), value, dtype=dtype)


def predict_with(model, x, version="latest", name=None):
    """An item that runs the model once on {"x": x}."""
    return lambda br: br.run(model, name, version, {"x": x})


def batch(fns, **kw):
    """Runs the items (functions of the BatchRun) as one batch; fails instead of hanging."""
    br = BatchRun(len(fns), **kw)
    out = {}
    items = [lambda f=f: f(br) for f in fns]
    t = threading.Thread(target=lambda: out.setdefault("results", run_items(br, items)),
                         daemon=True)
    t.start()
    t.join(JOIN_S)
    assert not t.is_alive(), "the batch did not finish"
    return out["results"]


def test_eight_items_run_once_and_outputs_split_back():
    model = fake_model()
    results = batch([predict_with(model, row(i)) for i in range(8)])
    assert model["session"].shapes() == [(8, 4)]
    for i, (y,) in enumerate(results):
        np.testing.assert_array_equal(y, row(2 * i))
    # Views of one output that do not overlap: writing one result leaves the others alone.
    results[0][0][:] = -1
    np.testing.assert_array_equal(results[1][0], row(2))
    assert not np.shares_memory(results[0][0], results[1][0])


def test_items_keep_their_own_dim0():
    model = fake_model()
    sizes = [1, 3, 2, 0]
    results = batch([predict_with(model, row(i, rows=n)) for i, n in enumerate(sizes)])
    assert model["session"].shapes() == [(6, 4)]
    for i, n in enumerate(sizes):
        np.testing.assert_array_equal(results[i][0], row(2 * i, rows=n))


def test_mixed_shapes_dtypes_and_ranks_run_in_separate_groups():
    model = fake_model()
    xs = [row(1), row(2), row(3), row(4, width=3), row(5, width=3),
          row(6, dtype=np.float64), row(7, dtype=np.float64), np.array(8, np.float32)]
    results = batch([predict_with(model, x) for x in xs])
    assert sorted(model["session"].shapes()) == [(), (2, 3), (2, 4), (3, 4)]
    for x, (y,) in zip(xs, results):
        assert y.dtype == x.dtype and y.shape == x.shape
        np.testing.assert_array_equal(y, x + x)


def test_models_and_versions_are_not_mixed():
    session = FakeSession()
    a, b = fake_model(session), fake_model(session)  # two model objects, one session
    fns = [predict_with(a, row(1)), predict_with(a, row(2)), predict_with(b, row(3)),
           predict_with(a, row(4), version="2"), predict_with(a, row(5), name="other")]
    results = batch(fns)
    assert sorted(session.shapes()) == [(1, 4), (1, 4), (1, 4), (2, 4)]
    for i, (y,) in enumerate(results):
        np.testing.assert_array_equal(y, row(2 * (i + 1)))


def test_fixed_dim0_signature_runs_each_alone():
    model = fake_model(dim0=1)
    results = batch([predict_with(model, row(i)) for i in range(6)])
    assert model["session"].shapes() == [(1, 4)] * 6
    assert [y[0, 0] for (y,) in results] == [2 * i for i in range(6)]


def test_inputs_that_disagree_on_dim0_run_alone():
    session = FakeSession(lambda feeds: [feeds["a"].sum(0) + feeds["b"].sum(0)])
    model = fake_model(session, inputs=("a", "b"))
    fns = [lambda br, i=i: br.run(model, None, "latest", {"a": row(i), "b": row(i, rows=2)})
           for i in range(3)]
    results = batch(fns)
    assert session.shapes("a") == [(1, 4)] * 3
    assert [y[0] for (y,) in results] == [3 * i for i in range(3)]


def test_multiple_inputs_stack_together():
    session = FakeSession(lambda feeds: [feeds["a"] - feeds["b"], feeds["a"][:, :1]])
    model = fake_model(session, inputs=("a", "b"))
    fns = [lambda br, i=i: br.run(model, None, "latest", {"a": row(i), "b": row(1)})
           for i in range(4)]
    results = batch(fns)
    assert session.runs == [{"a": (4, 4), "b": (4, 4)}]
    for i, (diff, first) in enumerate(results):
        np.testing.assert_array_equal(diff, row(i - 1))
        assert first.shape == (1, 1) and first[0, 0] == i


def test_output_that_does_not_split_runs_each_alone():
    session = FakeSession(lambda feeds: [feeds["x"].sum(axis=0, keepdims=True)])
    model = fake_model(session)
    results = batch([predict_with(model, row(i, rows=2)) for i in range(4)])
    assert session.shapes() == [(8, 4)] + [(2, 4)] * 4  # tried once, then each alone
    for i, (y,) in enumerate(results):
        np.testing.assert_array_equal(y, row(2 * i))


def test_fixed_dim0_output_signature_is_not_batched():
    session = FakeSession(lambda feeds: [feeds["x"].sum(axis=0, keepdims=True)],
                          outputs=[{"name": "y", "shape": [1, 4], "type": "tensor(float)"}])
    model = fake_model(session)
    results = batch([predict_with(model, row(i)) for i in range(4)])
    assert session.shapes() == [(1, 4)] * 4
    assert [y[0, 0] for (y,) in results] == [0, 1, 2, 3]


def test_list_outputs_split_by_rows():
    session = FakeSession(lambda feeds: [[{"v": float(r[0])} for r in feeds["x"]]])
    model = fake_model(session)
    results = batch([predict_with(model, row(i, rows=i + 1)) for i in range(3)])
    assert session.shapes() == [(6, 4)]
    assert [y for (y,) in results] == [[{"v": 0.0}], [{"v": 1.0}] * 2, [{"v": 2.0}] * 3]


def test_a_bad_input_fails_only_its_own_item():
    def fn(feeds):
        x = feeds["x"]
        if (x < 0).any():
            raise RuntimeError(f"negative input {x.min()}")
        return [x * 2]

    session = FakeSession(fn)
    model = fake_model(session)
    values = [0, 1, -2, 3, 4, -5, 6, 7]
    results = batch([predict_with(model, row(v)) for v in values])
    assert session.shapes() == [(8, 4)] + [(1, 4)] * 8
    for v, result in zip(values, results):
        if v < 0:
            assert isinstance(result, RuntimeError)
            assert str(result) == f"negative input {float(v)}"
        else:
            np.testing.assert_array_equal(result[0], row(2 * v))
    assert results[2] is not results[5]


def test_item_that_raises_before_run():
    model = fake_model()

    def bad(br):
        raise ValueError("before run")

    results = batch([bad] + [predict_with(model, row(i)) for i in range(1, 8)])
    assert isinstance(results[0], ValueError)
    assert model["session"].shapes() == [(7, 4)]
    assert [y[0, 0] for (y,) in results[1:]] == [2 * i for i in range(1, 8)]


def test_items_that_never_run_or_finish_late_are_waited_for():
    model = fake_model()

    def no_model(br):
        time.sleep(0.05)
        return "no model"

    def late(br):
        time.sleep(0.1)
        return br.run(model, None, "latest", {"x": row(9)})

    results = batch([no_model, predict_with(model, row(1)), late, predict_with(model, row(2))])
    assert results[0] == "no model"
    assert model["session"].shapes() == [(3, 4)]
    assert [results[i][0][0, 0] for i in (1, 2, 3)] == [2, 18, 4]


def test_item_running_the_model_twice_takes_a_second_round():
    model = fake_model()

    def twice(br, x):
        (y,) = br.run(model, None, "latest", {"x": x})
        return br.run(model, None, "latest", {"x": y + 1})

    results = batch([lambda br: twice(br, row(1))] +
                    [predict_with(model, row(i)) for i in range(2, 5)])
    assert model["session"].shapes() == [(4, 4), (1, 4)]
    assert [y[0, 0] for (y,) in results] == [6, 4, 6, 8]

    model = fake_model()
    staggered = [lambda br, i=i: (time.sleep(0.01 * i), twice(br, row(i)))[1] for i in range(4)]
    results = batch(staggered)
    assert model["session"].shapes() == [(4, 4), (4, 4)]
    assert [y[0, 0] for (y,) in results] == [(2 * i + 1) * 2 for i in range(4)]


def test_size_one_runs_directly():
    model = fake_model()
    br = BatchRun(1)
    (y,) = br.run(model, None, "latest", {"x": row(3)})  # no thread, no item_done needed
    np.testing.assert_array_equal(y, row(6))
    caller = []
    results = run_items(BatchRun(1), [lambda: caller.append(threading.get_ident()) or "ok"])
    assert results == ["ok"] and caller == [threading.get_ident()]
    assert model["session"].shapes() == [(1, 4)]


def test_last_live_item_runs_at_once():
    model = fake_model()
    br = BatchRun(3)
    br.item_done()
    br.item_done()
    (y,) = br.run(model, None, "latest", {"x": row(1)})  # the other two are done
    np.testing.assert_array_equal(y, row(2))


def test_straggler_guard_ends_a_predictor_that_serializes_items():
    model = fake_model()
    lock = threading.Lock()

    def serialized(br, i):
        with lock:  # a predictor guarding itself: the others cannot reach run()
            return br.run(model, None, "latest", {"x": row(i)})

    start = time.monotonic()
    results = batch([lambda br, i=i: serialized(br, i) for i in range(4)], max_wait_s=0.02)
    assert time.monotonic() - start < 1.0
    assert model["session"].shapes() == [(1, 4)] * 4
    assert sorted(y[0, 0] for (y,) in results) == [0, 2, 4, 6]


def test_run_items_with_a_pool_keeps_order():
    model = fake_model()
    br = BatchRun(5)

    def fn(i):
        if i == 3:
            raise KeyError(i)
        return br.run(model, None, "latest", {"x": row(i)})[0][0, 0]

    with ThreadPoolExecutor(5) as pool:
        results = run_items(br, [lambda i=i: fn(i) for i in range(5)], pool)
    assert results[:3] == [0, 2, 4] and results[4] == 8
    assert isinstance(results[3], KeyError)
    assert model["session"].shapes() == [(4, 4)]
    with pytest.raises(ValueError):
        run_items(BatchRun(2), [lambda: 1])


def test_real_onnx_model_batched_matches_unbatched(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("_cortex_onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]),
         helper.make_node("Add", ["xw", "b"], ["y"])], "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 7
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp_path / "affine.onnx"))
    session = ort.Session(str(tmp_path / "affine.onnx"))

    class Recording:
        def __init__(self):
            self.shapes = []

        def outputs(self):
            return session.outputs()

        def run(self, names, feeds):
            self.shapes.append(feeds["x"].shape)
            return session.run(names, feeds)

    signatures = {s["name"]: {"shape": s["shape"], "type": s["type"]} for s in session.inputs()}
    model = {"session": Recording(), "input_signatures": signatures}
    payloads = [rng.standard_normal((n, 3)).tolist() for n in (1, 2, 1, 3, 1, 1, 2, 1)]
    feeds = [prepare_feeds(signatures, p, "affine") for p in payloads]
    results = batch([lambda br, f=f: br.run(model, None, "latest", f) for f in feeds])
    assert model["session"].shapes == [(12, 3)]
    for f, (y,) in zip(feeds, results):
        (alone,) = session.run(None, f)
        assert y.shape == alone.shape
        np.testing.assert_allclose(y, alone, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(y, f["x"] @ w + b, rtol=1e-5, atol=1e-5)
