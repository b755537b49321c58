"""The ONNX predictor's pieces: the _cortex_onnx extension (against real models built with
onnx.helper and torch.onnx.export, compared with torch) and cortex_runtime.onnx_inputs.

_cortex_onnx is built by CMake into build/python (conftest.py puts it on sys.path; ctest passes
CORTEX_BUILD_PYTHON_DIR). Its absence is a failure, not a skip: scripts/install-deps.sh installs
ONNX Runtime and the build always makes the module.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import BUILD_PYTHON_DIR, PYTHON, PYTHON_DIR
from cortex_runtime.onnx_inputs import ONNX_TYPES, InputError, prepare_feeds, to_numpy

onnx = pytest.importorskip("onnx")  # python3-onnx (scripts/install-deps.sh)
from onnx import TensorProto, helper  # noqa: E402


@pytest.fixture(scope="module")
def ort():
    try:
        import _cortex_onnx
    except ImportError as e:
        pytest.fail(f"_cortex_onnx is not importable from {BUILD_PYTHON_DIR} ({e}); "
                    "run scripts/install-deps.sh and build", pytrace=False)
    return _cortex_onnx


def save(model, path, ir_version=8):
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def graph_model(nodes, inputs, outputs, opset=17, ir_version=8, path=None):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return save(model, path, ir_version)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    out = {}
    # Two float inputs, a symbolic batch dimension, opset 13 / IR 7.
    out["add"] = graph_model(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 4])],
        opset=13, ir_version=7, path=d / "add.onnx")
    # One Identity per element type: int64, double, int32, uint8, bool, string (opset 17, IR 8).
    for key, proto in [("int64", TensorProto.INT64), ("double", TensorProto.DOUBLE),
                       ("int32", TensorProto.INT32), ("uint8", TensorProto.UINT8),
                       ("bool", TensorProto.BOOL), ("string", TensorProto.STRING)]:
        out[key] = graph_model(
            [helper.make_node("Identity", ["x"], ["y"])],
            [helper.make_tensor_value_info("x", proto, [None, 2])],
            [helper.make_tensor_value_info("y", proto, [None, 2])],
            path=d / f"{key}.onnx")
    # Two outputs of different types, a fixed shape.
    out["two_outputs"] = graph_model(
        [helper.make_node("ArgMax", ["x"], ["index"], axis=1, keepdims=0),
         helper.make_node("Neg", ["x"], ["negated"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("index", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("negated", TensorProto.FLOAT, [2, 3])],
        path=d / "two_outputs.onnx")
    corrupt = d / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not an onnx model" * 10)
    out["corrupt"] = str(corrupt)
    return out


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """An MLP (784-512-512-10) exported by torch with a dynamic batch axis, and the torch model."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 10)).eval()
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    torch.onnx.export(net, torch.zeros(1, 784), str(path), opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})

    def reference(x):
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return str(path), reference


# --- the extension ---------------------------------------------------------------------------


def test_version(ort):
    assert ort.version().split(".")[0] == "1"
    assert int(ort.version().split(".")[1]) >= ort.API_VERSION
    assert os.path.exists(ort.library_path())


def test_mlp_matches_torch(ort, mlp):
    path, reference = mlp
    s = ort.Session(path)
    assert s.inputs() == [{"name": "input", "shape": [None, 784], "type": "tensor(float)"}]
    assert s.outputs() == [{"name": "output", "shape": [None, 10], "type": "tensor(float)"}]
    rng = np.random.default_rng(1)
    for batch in (1, 32):
        x = rng.standard_normal((batch, 784), dtype=np.float32)
        (y,) = s.run(None, {"input": x})
        assert y.dtype == np.float32 and y.shape == (batch, 10)
        np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-5)
    # More intra-op threads give the same answer.
    x = rng.standard_normal((8, 784), dtype=np.float32)
    (y2,) = ort.Session(path, intra_op_threads=2).run(["output"], {"input": x})
    np.testing.assert_allclose(y2, reference(x), rtol=1e-5, atol=1e-5)


def test_metadata_and_multiple_inputs(ort, models):
    s = ort.Session(models["add"])
    assert s.inputs() == [{"name": "a", "shape": [None, 4], "type": "tensor(float)"},
                          {"name": "b", "shape": [None, 4], "type": "tensor(float)"}]
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones((3, 4), dtype=np.float32)
    (y,) = s.run([], {"a": a, "b": b})
    np.testing.assert_array_equal(y, a + b)


def test_two_outputs_and_selection(ort, models):
    s = ort.Session(models["two_outputs"])
    assert s.outputs() == [{"name": "index", "shape": [2], "type": "tensor(int64)"},
                           {"name": "negated", "shape": [2, 3], "type": "tensor(float)"}]
    x = np.array([[1, 5, 2], [9, 0, 3]], dtype=np.float32)
    index, negated = s.run(None, {"x": x})
    assert index.dtype == np.int64
    np.testing.assert_array_equal(index, [1, 0])
    np.testing.assert_array_equal(negated, -x)
    (only,) = s.run(["negated"], {"x": x})
    np.testing.assert_array_equal(only, -x)


@pytest.mark.parametrize("key,value", [
    ("int64", np.array([[1, -2], [3, 2**40]], dtype=np.int64)),
    ("double", np.array([[0.1, -2.5]], dtype=np.float64)),
    ("int32", np.array([[7, -8]], dtype=np.int32)),
    ("uint8", np.array([[0, 255]], dtype=np.uint8)),
    ("bool", np.array([[True, False], [False, True]])),
    ("string", np.array([["a", "héllo"], ["", "z"]], dtype=object)),
])
def test_element_types(ort, models, key, value):
    s = ort.Session(models[key])
    expected = "tensor(float)" if key == "float" else f"tensor({key})"
    assert s.inputs()[0]["type"] == expected
    assert s.outputs()[0]["type"] == expected
    (y,) = s.run(None, {"x": value})
    assert y.dtype == ONNX_TYPES[expected]
    assert y.shape == value.shape
    assert y.tolist() == value.tolist()


def test_strings_from_unicode_and_bytes_arrays(ort, models):
    s = ort.Session(models["string"])
    (y,) = s.run(None, {"x": np.array([["ab", "cd"]])})
    assert y.tolist() == [["ab", "cd"]]
    (y,) = s.run(None, {"x": np.array([[b"ab", b"cd"]])})
    assert y.tolist() == [["ab", "cd"]]


def test_non_contiguous_input(ort, models):
    s = ort.Session(models["add"])
    a = np.arange(32, dtype=np.float32).reshape(4, 8)[:, ::2]  # a strided view
    b = np.asfortranarray(np.arange(16, dtype=np.float32).reshape(4, 4))
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    (y,) = s.run(None, {"a": a, "b": b})
    np.testing.assert_array_equal(y, a + b)


def test_sequence_of_maps_output(ort, tmp_path):
    """A ZipMap output (what sklearn-onnx classifiers give): a list of {label: probability}."""
    map_type = onnx.TypeProto()
    map_type.map_type.key_type = TensorProto.INT64
    map_type.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    out_type = onnx.TypeProto()
    out_type.sequence_type.elem_type.CopyFrom(map_type)
    graph = helper.make_graph(
        [helper.make_node("ZipMap", ["x"], ["probabilities"], domain="ai.onnx.ml",
                          classlabels_int64s=[10, 20])],
        "zipmap", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_value_info("probabilities", out_type)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    s = ort.Session(save(model, tmp_path / "zipmap.onnx"))
    assert s.outputs() == [{"name": "probabilities", "shape": [],
                            "type": "seq(map(int64,tensor(float)))"}]
    (y,) = s.run(None, {"x": np.array([[0.25, 0.75], [1, 0]], dtype=np.float32)})
    assert y == [{10: 0.25, 20: 0.75}, {10: 1.0, 20: 0.0}]


def test_load_errors(ort, models, tmp_path):
    with pytest.raises(RuntimeError, match="doesn't exist|No such file"):
        ort.Session(str(tmp_path / "missing.onnx"))
    with pytest.raises(RuntimeError, match="(?i)protobuf|parse|load model"):
        ort.Session(models["corrupt"])
    with pytest.raises(RuntimeError):
        ort.Session(str(tmp_path))  # a directory
    with pytest.raises(ValueError):
        ort.Session(models["add"], intra_op_threads=-1)


def test_run_errors_raise_and_leave_the_session_usable(ort, models):
    s = ort.Session(models["add"])
    ok = {"a": np.ones((1, 4), np.float32), "b": np.ones((1, 4), np.float32)}
    with pytest.raises(TypeError, match=r"input 'a' expects tensor\(float\).*float64"):
        s.run(None, {"a": np.ones((1, 4)), "b": ok["b"]})
    with pytest.raises(TypeError, match="must be a numpy array, not list"):
        s.run(None, {"a": [[1, 2, 3, 4]], "b": ok["b"]})
    with pytest.raises(ValueError, match="missing input 'b'"):
        s.run(None, {"a": ok["a"]})
    with pytest.raises(ValueError, match="no input named 'c'"):
        s.run(None, dict(ok, c=ok["a"]))
    with pytest.raises(RuntimeError, match="(?i)rank"):
        s.run(None, {"a": np.ones(4, np.float32), "b": ok["b"]})
    with pytest.raises(RuntimeError, match="(?i)dimension|shape|broadcast"):
        s.run(None, {"a": np.ones((1, 5), np.float32), "b": ok["b"]})
    with pytest.raises(RuntimeError, match="(?i)invalid output name"):
        s.run(["nope"], ok)
    with pytest.raises(TypeError):
        s.run("sum", ok)
    with pytest.raises(TypeError):
        s.run(None, [ok["a"], ok["b"]])
    (y,) = s.run(None, ok)
    np.testing.assert_array_equal(y, np.full((1, 4), 2, np.float32))
    strings = ort.Session(models["string"])
    with pytest.raises(TypeError, match="str"):
        strings.run(None, {"x": np.zeros((1, 2))})
    with pytest.raises(TypeError, match="int"):
        strings.run(None, {"x": np.array([["a", 1]], dtype=object)})


def test_concurrent_runs_from_four_threads(ort, mlp):
    path, reference = mlp
    s = ort.Session(path)
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((b, 784), dtype=np.float32) for b in (1, 3, 8, 32)]
    expected = [reference(x) for x in inputs]
    errors = []
    barrier = threading.Barrier(4)

    def work(i):
        try:
            barrier.wait(timeout=30)
            for _ in range(40):
                (y,) = s.run(None, {"input": inputs[i]})
                np.testing.assert_allclose(y, expected[i], rtol=1e-5, atol=1e-5)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_missing_library_is_a_clear_runtime_error(ort, models):
    code = ("import _cortex_onnx, sys\n"
            "for f in (lambda: _cortex_onnx.Session(sys.argv[1]), _cortex_onnx.version):\n"
            "    try:\n"
            "        f()\n"
            "    except RuntimeError as e:\n"
            "        print(e)\n")
    env = dict(os.environ, CORTEX_ONNXRUNTIME_LIB="/nonexistent/libonnxruntime.so",
               PYTHONPATH=f"{BUILD_PYTHON_DIR}:{PYTHON_DIR}")
    out = subprocess.run([PYTHON, "-c", code, models["add"]], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("ONNX Runtime is not installed: ")
        assert "/nonexistent/libonnxruntime.so" in line
        assert "scripts/install-deps.sh" in line


def test_feeds_from_onnx_inputs_run(ort, mlp):
    path, reference = mlp
    s = ort.Session(path)
    sample = np.linspace(-1, 1, 784).tolist()  # a bare JSON-like list, no batch dimension
    feeds = prepare_feeds(s.inputs(), sample, "mlp")
    assert feeds["input"].shape == (1, 784) and feeds["input"].dtype == np.float32
    (y,) = s.run([], feeds)
    np.testing.assert_allclose(y, reference(np.array([sample], np.float32)), rtol=1e-5,
                               atol=1e-5)


# --- onnx_inputs -----------------------------------------------------------------------------

SINGLE = [{"name": "input", "shape": [None, 4], "type": "tensor(float)"}]
MULTI = [{"name": "a", "shape": [None, 2], "type": "tensor(int64)"},
         {"name": "b", "shape": [3], "type": "tensor(double)"}]


def test_types_table():
    assert ONNX_TYPES["tensor(float)"] == np.float32
    assert ONNX_TYPES["tensor(int64)"] == np.int64
    assert ONNX_TYPES["tensor(double)"] == np.float64
    assert ONNX_TYPES["tensor(bool)"] == np.bool_
    assert ONNX_TYPES["tensor(string)"] == np.object_


def test_single_input_bare_value_is_converted_and_reshaped():
    feeds = prepare_feeds(SINGLE, [1, 2, 3, 4], "m")
    assert list(feeds) == ["input"]
    assert feeds["input"].dtype == np.float32 and feeds["input"].shape == (1, 4)
    feeds = prepare_feeds(SINGLE, [[1, 2, 3, 4], [5, 6, 7, 8]], "m")
    assert feeds["input"].shape == (2, 4)


def test_single_input_dict_form():
    feeds = prepare_feeds(SINGLE, {"input": [0, 0, 0, 1]}, "m")
    np.testing.assert_array_equal(feeds["input"], [[0, 0, 0, 1]])


def test_single_input_missing_key():
    with pytest.raises(InputError) as e:
        prepare_feeds(SINGLE, {"other": [1, 2, 3, 4]}, "m")
    assert str(e.value) == "missing key 'input' for model 'm'"
    with pytest.raises(InputError, match="missing key 'input'"):
        prepare_feeds(SINGLE, {"input": None}, "m")


def test_conversion_failure_message():
    with pytest.raises(InputError) as e:
        prepare_feeds(SINGLE, [1, 2, 3], "m")  # 3 values cannot take the shape (-1, 4)
    msg = str(e.value)
    assert msg.startswith("key 'input' for model 'm': "
                          "failed to convert to numpy array for model 'm': ")
    assert "reshape" in msg
    with pytest.raises(InputError, match="failed to convert to numpy array for model 'm'"):
        prepare_feeds(SINGLE, ["a", "b", "c", "d"], "m")


def test_multi_input_needs_a_dict_with_every_key():
    with pytest.raises(InputError) as e:
        prepare_feeds(MULTI, [1, 2], "m")
    assert str(e.value) == ("expected model_input to be a dictionary with keys "
                            "'\"a\", \"b\"' for model 'm'")
    with pytest.raises(InputError) as e:
        prepare_feeds(MULTI, {"a": [1, 2]}, "m")
    assert str(e.value) == "missing key 'b' for model 'm'"
    feeds = prepare_feeds(MULTI, {"a": [[1, 2], [3, 4]], "b": [1, 2, 3], "extra": 1}, "m")
    assert sorted(feeds) == ["a", "b"]
    assert feeds["a"].dtype == np.int64 and feeds["a"].shape == (2, 2)
    assert feeds["b"].dtype == np.float64 and feeds["b"].shape == (3,)
    with pytest.raises(InputError) as e:
        prepare_feeds(MULTI, {"a": [1, 2], "b": [1, 2]}, "m")
    assert str(e.value).startswith("key 'b' for model 'm': failed to convert")


def test_numpy_arrays_are_cast_between_numeric_types():
    x = np.array([[1.7, 2, 3, 4]], dtype=np.float64)
    feeds = prepare_feeds(SINGLE, x, "m")
    assert feeds["input"].dtype == np.float32
    ints = prepare_feeds(MULTI, {"a": np.array([1.9, 2.1]), "b": np.arange(3)}, "m")
    assert ints["a"].dtype == np.int64 and ints["a"].tolist() == [[1, 2]]
    same = np.zeros((2, 4), np.float32)
    assert np.shares_memory(prepare_feeds(SINGLE, same, "m")["input"], same)  # no copy


def test_numeric_array_for_a_non_numeric_input_is_an_error():
    sig = [{"name": "flags", "shape": [2], "type": "tensor(bool)"}]
    with pytest.raises(InputError) as e:
        prepare_feeds(sig, np.array([1.0, 0.0]), "m")
    assert "expected dtype 'bool' but found 'float64' for model 'm'" in str(e.value)
    assert prepare_feeds(sig, [True, False], "m")["flags"].dtype == np.bool_


def test_reshape_only_with_at_most_one_unknown_dimension():
    sig = [{"name": "x", "shape": [None, None, 2], "type": "tensor(float)"}]
    assert prepare_feeds(sig, [1, 2, 3, 4], "m")["x"].shape == (4,)  # left as given
    sig = {"x": {"shape": ["batch", 2, 2], "type": "tensor(float)"}}  # the get_model form
    assert prepare_feeds(sig, [1, 2, 3, 4], "m")["x"].shape == (1, 2, 2)
    scalar = [{"name": "x", "shape": [], "type": "tensor(int32)"}]
    assert prepare_feeds(scalar, 5, "m")["x"].shape == ()


def test_strings():
    sig = [{"name": "text", "shape": [None], "type": "tensor(string)"}]
    feeds = prepare_feeds(sig, ["a", "bc"], "m")
    assert feeds["text"].dtype == np.object_ and feeds["text"].tolist() == ["a", "bc"]
    assert prepare_feeds(sig, np.array(["x"]), "m")["text"].dtype == np.object_


def test_unsupported_type():
    with pytest.raises(InputError, match=r"input type seq\(tensor\(float\)\) of model 'm'"):
        to_numpy([1], [], "seq(tensor(float))", "m")
