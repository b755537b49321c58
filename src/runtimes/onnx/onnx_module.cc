// _cortex_onnx: the ONNX predictor's inference session, a pybind11 module over ONNX Runtime's
// C++ API. The runtime library is loaded with dlopen on first use (ort_library.h), so importing
// the module never fails for want of it; Session() and version() raise RuntimeError instead.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtimes/onnx/ort_library.h"

#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

namespace py = pybind11;
using namespace pybind11::literals;

namespace cortex::onnx {
namespace {

struct ElementType {
  ONNXTensorElementDataType ort;
  const char* name;   // as in onnxruntime-python's "tensor(NAME)"
  const char* numpy;  // numpy dtype; nullptr when numpy has none
};

constexpr ElementType kElementTypes[] = {
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, "float", "float32"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, "double", "float64"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, "float16", "float16"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, "int8", "int8"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, "uint8", "uint8"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, "int16", "int16"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, "uint16", "uint16"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, "int32", "int32"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, "uint32", "uint32"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, "int64", "int64"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, "uint64", "uint64"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, "bool", "bool"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, "string", "object"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64, "complex64", "complex64"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128, "complex128", "complex128"},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, "bfloat16", nullptr},
};

const ElementType* FindElementType(ONNXTensorElementDataType type) {
  for (const ElementType& e : kElementTypes) {
    if (e.ort == type) return &e;
  }
  return nullptr;
}

std::string ElementName(ONNXTensorElementDataType type) {
  const ElementType* e = FindElementType(type);
  return e ? e->name : "unknown(" + std::to_string(static_cast<int>(type)) + ")";
}

// onnxruntime-python's spelling: tensor(float), seq(map(int64,tensor(float))), ...
std::string TypeString(const Ort::ConstTypeInfo& info) {
  switch (info.GetONNXType()) {
    case ONNX_TYPE_TENSOR:
      return "tensor(" + ElementName(info.GetTensorTypeAndShapeInfo().GetElementType()) + ")";
    case ONNX_TYPE_SPARSETENSOR:
      return "sparse_tensor(" + ElementName(info.GetTensorTypeAndShapeInfo().GetElementType()) +
             ")";
    case ONNX_TYPE_SEQUENCE:
      return "seq(" + TypeString(info.GetSequenceTypeInfo().GetSequenceElementType().GetConst()) +
             ")";
    case ONNX_TYPE_MAP: {
      auto map = info.GetMapTypeInfo();
      return "map(" + ElementName(map.GetMapKeyType()) + "," +
             TypeString(map.GetMapValueType().GetConst()) + ")";
    }
    case ONNX_TYPE_OPTIONAL:
      return "optional(" +
             TypeString(info.GetOptionalTypeInfo().GetOptionalElementType().GetConst()) + ")";
    default:
      return "unknown";
  }
}

// One input or output of the model.
struct Port {
  std::string name;
  std::string type;
  bool is_tensor = false;
  ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;  // -1 where the dimension is unknown or symbolic

  py::dict Describe() const {
    py::list dims;
    for (int64_t d : shape) {
      if (d < 0) {
        dims.append(py::none());
      } else {
        dims.append(py::int_(d));
      }
    }
    py::dict out;
    out["name"] = name;
    out["shape"] = dims;
    out["type"] = type;
    return out;
  }
};

Port DescribePort(std::string name, const Ort::TypeInfo& info) {
  Port port;
  port.name = std::move(name);
  port.type = TypeString(info.GetConst());
  if (info.GetONNXType() == ONNX_TYPE_TENSOR) {
    auto tensor = info.GetTensorTypeAndShapeInfo();
    port.is_tensor = true;
    port.element = tensor.GetElementType();
    port.shape = tensor.GetShape();
  }
  return port;
}

Ort::Env& Environment() {
  // Never destroyed: sessions owned by Python objects may outlive static destructors.
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "cortex");
  return *env;
}

void RequireLibrary() {
  if (const std::string& error = EnsureLoaded(); !error.empty()) throw std::runtime_error(error);
}

std::string Names(const std::vector<Port>& ports) {
  std::string out;
  for (const Port& p : ports) out += (out.empty() ? "'" : ", '") + p.name + "'";
  return out;
}

// Converts a result to Python: tensors to numpy arrays (copied), sequences to lists, maps to
// dicts of Python scalars (as onnxruntime-python does).
py::object ToPython(const Ort::Value& value, const std::string& name) {
  if (value.IsTensor()) {
    auto info = value.GetTensorTypeAndShapeInfo();
    std::vector<int64_t> shape = info.GetShape();
    std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    const size_t count = info.GetElementCount();
    ONNXTensorElementDataType element = info.GetElementType();
    if (element == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
      py::list strings;
      for (size_t i = 0; i < count; ++i) {
        std::string s = value.GetStringTensorElement(i);
        strings.append(py::reinterpret_steal<py::object>(
            PyUnicode_DecodeUTF8(s.data(), static_cast<py::ssize_t>(s.size()), "replace")));
      }
      py::array flat = py::module_::import("numpy").attr("array")(strings, "dtype"_a = "object");
      return flat.attr("reshape")(py::cast(dims));
    }
    const ElementType* type = FindElementType(element);
    if (type == nullptr || type->numpy == nullptr) {
      throw py::type_error("output '" + name + "' has type tensor(" + ElementName(element) +
                           "), which numpy cannot represent");
    }
    py::array out(py::dtype(type->numpy), dims);
    if (count > 0) {
      std::memcpy(out.mutable_data(), value.GetTensorRawData(),
                  count * static_cast<size_t>(out.itemsize()));
    }
    return out;
  }
  Ort::AllocatorWithDefaultOptions allocator;
  ONNXType kind = value.GetTypeInfo().GetONNXType();
  if (kind == ONNX_TYPE_SEQUENCE) {
    py::list items;
    const size_t n = value.GetCount();
    for (size_t i = 0; i < n; ++i) {
      items.append(ToPython(value.GetValue(static_cast<int>(i), allocator), name));
    }
    return items;
  }
  if (kind == ONNX_TYPE_MAP) {
    py::object keys = ToPython(value.GetValue(0, allocator), name).attr("tolist")();
    py::object values = ToPython(value.GetValue(1, allocator), name).attr("tolist")();
    return py::module_::import("builtins")
        .attr("dict")(py::module_::import("builtins").attr("zip")(keys, values));
  }
  throw py::type_error("output '" + name + "' is of a kind this binding cannot convert");
}

}  // namespace

class Session {
 public:
  Session(const std::filesystem::path& path, int intra_op_threads) {
    RequireLibrary();
    if (intra_op_threads < 0) throw py::value_error("intra_op_threads must be >= 0");
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(intra_op_threads);
    options.SetInterOpNumThreads(1);
    options.SetExecutionMode(ORT_SEQUENTIAL);
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    {
      py::gil_scoped_release release;
      session_ = std::make_unique<Ort::Session>(Environment(), path.c_str(), options);
    }
    Ort::AllocatorWithDefaultOptions allocator;
    for (size_t i = 0; i < session_->GetInputCount(); ++i) {
      inputs_.push_back(DescribePort(session_->GetInputNameAllocated(i, allocator).get(),
                                     session_->GetInputTypeInfo(i)));
    }
    for (size_t i = 0; i < session_->GetOutputCount(); ++i) {
      outputs_.push_back(DescribePort(session_->GetOutputNameAllocated(i, allocator).get(),
                                      session_->GetOutputTypeInfo(i)));
    }
  }

  py::list Inputs() const { return Describe(inputs_); }
  py::list Outputs() const { return Describe(outputs_); }

  py::list Run(const py::object& output_names, const py::dict& feeds) const {
    // Output names: None or an empty list selects every output (as onnxruntime-python does).
    std::vector<std::string> out_names;
    if (!output_names.is_none()) {
      if (py::isinstance<py::str>(output_names)) {
        throw py::type_error("output_names must be a list of names or None");
      }
      for (py::handle n : output_names) out_names.push_back(py::cast<std::string>(n));
    }
    if (out_names.empty()) {
      for (const Port& p : outputs_) out_names.push_back(p.name);
    }

    std::vector<std::string> in_names;
    std::vector<py::array> keep;  // the arrays the input tensors point into
    std::vector<Ort::Value> in_values;
    Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    Ort::AllocatorWithDefaultOptions allocator;
    for (auto [key, item] : feeds) {
      std::string name = py::cast<std::string>(key);
      const Port* port = nullptr;
      for (const Port& p : inputs_) {
        if (p.name == name) port = &p;
      }
      if (port == nullptr) {
        throw py::value_error("the model has no input named '" + name +
                              "' (its inputs: " + Names(inputs_) + ")");
      }
      in_values.push_back(ToTensor(*port, item, cpu, allocator, keep));
      in_names.push_back(std::move(name));
    }
    for (const Port& p : inputs_) {
      if (std::find(in_names.begin(), in_names.end(), p.name) == in_names.end()) {
        throw py::value_error("missing input '" + p.name +
                              "' (the model's inputs: " + Names(inputs_) + ")");
      }
    }

    std::vector<const char*> in_ptrs, out_ptrs;
    for (const std::string& n : in_names) in_ptrs.push_back(n.c_str());
    for (const std::string& n : out_names) out_ptrs.push_back(n.c_str());
    std::vector<Ort::Value> results;
    {
      py::gil_scoped_release release;
      results = session_->Run(Ort::RunOptions{nullptr}, in_ptrs.data(), in_values.data(),
                              in_values.size(), out_ptrs.data(), out_ptrs.size());
    }
    py::list out;
    for (size_t i = 0; i < results.size(); ++i) out.append(ToPython(results[i], out_names[i]));
    return out;
  }

 private:
  static py::list Describe(const std::vector<Port>& ports) {
    py::list out;
    for (const Port& p : ports) out.append(p.Describe());
    return out;
  }

  // A tensor over the array's memory (numbers) or a copy of its strings. The caller converts
  // dtypes (cortex_runtime.onnx_inputs); a mismatch is an error, not a silent cast.
  static Ort::Value ToTensor(const Port& port, py::handle item, const Ort::MemoryInfo& cpu,
                             OrtAllocator* allocator, std::vector<py::array>& keep) {
    if (!port.is_tensor) {
      throw py::type_error("input '" + port.name + "' has type " + port.type +
                           ", which this binding cannot feed (tensors only)");
    }
    if (!py::isinstance<py::array>(item)) {
      throw py::type_error("input '" + port.name + "' must be a numpy array, not " +
                           std::string(py::str(item.get_type().attr("__name__"))));
    }
    py::array array = py::reinterpret_borrow<py::array>(item);
    std::vector<int64_t> shape(array.shape(), array.shape() + array.ndim());
    if (port.element == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
      char kind = array.dtype().kind();
      if (kind != 'U' && kind != 'S' && kind != 'O') {
        throw py::type_error("input '" + port.name + "' expects " + port.type +
                             " (a numpy array of str), got dtype " +
                             std::string(py::str(array.dtype())));
      }
      std::vector<std::string> strings;
      for (py::handle s : array.attr("ravel")()) {
        if (py::isinstance<py::bytes>(s)) {
          strings.push_back(py::cast<std::string>(s));
        } else if (py::isinstance<py::str>(s)) {
          strings.push_back(py::cast<std::string>(s));
        } else {
          throw py::type_error("input '" + port.name + "' holds a " +
                               std::string(py::str(s.get_type().attr("__name__"))) +
                               " where a string is expected");
        }
      }
      std::vector<const char*> ptrs;
      for (const std::string& s : strings) ptrs.push_back(s.c_str());
      Ort::Value tensor = Ort::Value::CreateTensor(allocator, shape.data(), shape.size(),
                                                   ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
      tensor.FillStringTensor(ptrs.data(), ptrs.size());
      return tensor;
    }
    const ElementType* type = FindElementType(port.element);
    if (type == nullptr || type->numpy == nullptr) {
      throw py::type_error("input '" + port.name + "' has type " + port.type +
                           ", which numpy cannot represent");
    }
    py::dtype expected(type->numpy);
    if (!array.dtype().equal(expected)) {
      throw py::type_error("input '" + port.name + "' expects " + port.type + " (numpy " +
                           type->numpy + "), got dtype " + std::string(py::str(array.dtype())));
    }
    array = py::array::ensure(array, py::array::c_style);
    if (!array) throw py::error_already_set();
    keep.push_back(array);
    return Ort::Value::CreateTensor(cpu, const_cast<void*>(array.data()),
                                    static_cast<size_t>(array.nbytes()), shape.data(), shape.size(),
                                    port.element);
  }

  std::unique_ptr<Ort::Session> session_;
  std::vector<Port> inputs_;
  std::vector<Port> outputs_;
};

}  // namespace cortex::onnx

PYBIND11_MODULE(_cortex_onnx, m) {
  namespace py = pybind11;
  using cortex::onnx::Session;
  m.doc() =
      "ONNX Runtime inference sessions for the ONNX predictor.\n\n"
      "The runtime library is loaded on first use from $CORTEX_ONNXRUNTIME_LIB, else a\n"
      "libonnxruntime.so beside this module, else the build tree's copy (library_path()).";
  py::class_<Session>(
      m, "Session",
      "Session(path, intra_op_threads=1): loads an .onnx model (inter-op threads 1,\n"
      "sequential execution). Errors raise RuntimeError with ONNX Runtime's\n"
      "message. run() may be called from several threads at once.")
      .def(py::init<const std::filesystem::path&, int>(), py::arg("path"),
           py::arg("intra_op_threads") = 1)
      .def("inputs", &Session::Inputs,
           "[{'name', 'shape', 'type'}] per input. Dimensions are ints when fixed and None when\n"
           "unknown or symbolic (onnxruntime-python reported symbolic ones by name); type is\n"
           "onnxruntime-python's string, e.g. 'tensor(float)'.")
      .def("outputs", &Session::Outputs, "As inputs(), for the outputs.")
      .def("run", &Session::Run, py::arg("output_names"), py::arg("feeds"),
           "run(output_names or None, {input name: numpy array}) -> [results]. Arrays must have\n"
           "the input's dtype exactly (TypeError otherwise). None or [] selects every output.\n"
           "The GIL is released while the model runs.");
  m.def(
      "version",
      [] {
        if (const std::string& error = cortex::onnx::EnsureLoaded(); !error.empty()) {
          throw std::runtime_error(error);
        }
        return cortex::onnx::LoadedVersion();
      },
      "The version of the loaded ONNX Runtime library.");
  m.def("library_path", &cortex::onnx::LibraryPath,
        "The ONNX Runtime library this process loads (or would load).");
  m.attr("API_VERSION") = ORT_API_VERSION;
}
