#include "config/api_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cortex::config {
namespace {

using ::testing::HasSubstr;

enum class Env { kLocal, kKubernetes, kNoGateway, kProjectFiles };

ParseOptions OptionsFor(Env env) {
  ParseOptions options;
  switch (env) {
    case Env::kLocal:
      break;
    case Env::kKubernetes:
      options.provider = "kubernetes";
      break;
    case Env::kNoGateway:
      options.provider = "kubernetes";
      options.cluster_api_gateway = false;
      break;
    case Env::kProjectFiles:
      options.file_exists = [](const std::string& path) { return path == "p.py"; };
      options.dir_exists = [](const std::string& path) { return path == "src" || path == "a/b"; };
      break;
  }
  return options;
}

absl::StatusOr<std::vector<ApiConfig>> Parse(const std::string& yaml, Env env = Env::kLocal) {
  return ParseApiConfigs(yaml, OptionsFor(env));
}

// Parses a file that must hold exactly one valid API.
ApiConfig ParseOne(const std::string& yaml, Env env = Env::kLocal) {
  absl::StatusOr<std::vector<ApiConfig>> apis = Parse(yaml, env);
  EXPECT_TRUE(apis.ok()) << apis.status();
  if (!apis.ok() || apis->size() != 1) return ApiConfig{};
  return apis->front();
}

// A realtime python API whose predictor map gets `predictor_extra` and whose item gets `extra`.
std::string Realtime(const std::string& predictor_extra = "", const std::string& extra = "") {
  return "- {name: a, kind: RealtimeAPI, predictor: {type: python, path: p.py" + predictor_extra +
         "}" + extra + "}";
}
std::string Batch(const std::string& predictor_extra = "", const std::string& extra = "") {
  return "- {name: b, kind: BatchAPI, predictor: {type: python, path: p.py" + predictor_extra +
         "}" + extra + "}";
}
std::string Tensorflow(const std::string& predictor_extra = "", const std::string& extra = "") {
  return "- {name: t, kind: RealtimeAPI, predictor: {type: tensorflow, path: p.py, model_path: m" +
         predictor_extra + "}" + extra + "}";
}
std::string Splitter(const std::string& apis, const std::string& extra = "") {
  return "- {name: s, kind: TrafficSplitter, apis: " + apis + extra + "}";
}

struct Case {
  std::string name;
  std::string yaml;
  std::string error;  // expected substring of the error; empty: the file is valid
  Env env = Env::kLocal;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ParseApiConfigsTable : public ::testing::TestWithParam<Case> {};

TEST_P(ParseApiConfigsTable, ReportsTheFirstErrorOrAccepts) {
  const Case& c = GetParam();
  absl::StatusOr<std::vector<ApiConfig>> apis = Parse(c.yaml, c.env);
  if (c.error.empty()) {
    EXPECT_TRUE(apis.ok()) << apis.status();
  } else {
    ASSERT_FALSE(apis.ok()) << "expected: " << c.error;
    EXPECT_EQ(apis.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(apis.status().message()), HasSubstr(c.error));
  }
}

const std::string kHex64(64, 'a');

const Case kCases[] = {
    // The file.
    {"EmptyFile", "", "cortex.yaml: at least one API must be configured"},
    {"EmptyList", "[]", "cortex.yaml: at least one API must be configured"},
    {"NotAList", "a: b",
     "cortex.yaml: cortex YAML configuration files must contain a list of maps"},
    {"ItemNotAMap", "- 3", "cortex.yaml: api at index 0: must be a map"},
    {"InvalidYaml", "- {name: a", "cortex.yaml: invalid yaml:"},
    {"DuplicateKey", "- {name: a, name: b, kind: RealtimeAPI}",
     "api at index 0: key \"name\" is defined more than once"},
    {"NonStringKey", "- {1: a}", "api at index 0: non string key found: 1"},
    {"TwoValidApis", Realtime() + "\n" + Batch(), ""},

    // name and kind.
    {"MissingName", "- {kind: RealtimeAPI}",
     "cortex.yaml: api at index 0: key \"name\" must be specified"},
    {"SecondItemLabel", Realtime() + "\n- {kind: BatchAPI}", "cortex.yaml: api at index 1: key"},
    {"NameNotString", "- {name: 5, kind: RealtimeAPI}", "api at index 0: name: must be a string"},
    {"NameEmpty", "- {name: '', kind: RealtimeAPI}", "name: cannot be empty"},
    {"NameUpperCase", "- {name: Api, kind: RealtimeAPI}",
     "name: \"Api\" must contain only lower case letters, numbers, and dashes, start with a "
     "letter, and cannot end with a dash"},
    {"NameUnderscore", "- {name: my_api, kind: RealtimeAPI}", "must contain only lower case"},
    {"NameTrailingDash", "- {name: api-, kind: RealtimeAPI}", "cannot end with a dash"},
    {"NameLeadingDigit", "- {name: 1api, kind: RealtimeAPI}", "start with a letter"},
    {"NameTooLong", "- {name: " + std::string(43, 'a') + ", kind: RealtimeAPI}",
     "must be no more than 42 characters"},
    {"NameMaxLength",
     "- {name: " + std::string(42, 'a') +
         ", kind: RealtimeAPI, predictor: {type: python, path: "
         "p.py}}",
     ""},
    {"MissingKind", "- {name: a}", "cortex.yaml: a: key \"kind\" must be specified"},
    {"UnknownKind", "- {name: a, kind: AsyncAPI}",
     "cortex.yaml: a: kind: invalid value (got \"AsyncAPI\", must be \"RealtimeAPI\", "
     "\"BatchAPI\", or \"TrafficSplitter\")"},
    {"UnknownTopLevelKey", Realtime("", ", foo: 1"),
     "cortex.yaml: a (RealtimeAPI): key \"foo\" is not supported"},
    {"DuplicateNames", Realtime() + "\n" + Realtime("", ", networking: {endpoint: other}"),
     "a (RealtimeAPI): name \"a\" must be unique across apis"},
    {"DuplicateEndpoints", Realtime() + "\n" + Batch("", ", networking: {endpoint: /a}"),
     "cortex.yaml: b (BatchAPI): networking: endpoint: endpoint is already being used by a"},
    {"DuplicateLocalPorts",
     Realtime("", ", networking: {local_port: 9000}") + "\n" +
         Tensorflow("", ", networking: {local_port: 9000}"),
     "t (RealtimeAPI): networking: local_port: port 9000 is already being used by a"},
    {"BatchAndSplitterOnLocal", Batch() + "\n" + Splitter("[{name: a, weight: 100}]"), ""},

    // predictor.
    {"MissingPredictor", "- {name: a, kind: RealtimeAPI}",
     "cortex.yaml: a (RealtimeAPI): key \"predictor\" must be specified"},
    {"PredictorNotMap", "- {name: a, kind: RealtimeAPI, predictor: python}",
     "a (RealtimeAPI): predictor: must be a map"},
    {"MissingType", "- {name: a, kind: RealtimeAPI, predictor: {path: p.py}}",
     "a (RealtimeAPI): predictor: key \"type\" must be specified"},
    {"UnknownType", "- {name: a, kind: RealtimeAPI, predictor: {type: torch, path: p.py}}",
     "predictor: type: invalid value (got \"torch\", must be \"python\", \"tensorflow\", or "
     "\"onnx\")"},
    {"MissingPath", "- {name: a, kind: RealtimeAPI, predictor: {type: python}}",
     "predictor: key \"path\" must be specified"},
    {"UnknownPredictorKey", Realtime(", log_level: info"),
     "predictor: key \"log_level\" is not supported"},
    {"AbsolutePath", "- {name: a, kind: RealtimeAPI, predictor: {type: python, path: /p.py}}",
     "predictor: path: /p.py: must be a relative path"},
    {"PathOutsideProject",
     "- {name: a, kind: RealtimeAPI, predictor: {type: python, path: ../p.py}}",
     "predictor: path: ../p.py: must be inside the project directory"},
    {"PathMissingFromProject",
     "- {name: a, kind: RealtimeAPI, predictor: {type: python, path: q.py}}",
     "predictor: path: q.py: file does not exist", Env::kProjectFiles},
    {"PathInProject", Realtime(), "", Env::kProjectFiles},
    {"ProcessesTooMany", Realtime(", processes_per_replica: 101"),
     "cortex.yaml: a (RealtimeAPI): predictor: processes_per_replica: must be less than or equal "
     "to 100"},
    {"ProcessesZero", Realtime(", processes_per_replica: 0"),
     "predictor: processes_per_replica: must be greater than or equal to 1"},
    {"ProcessesQuoted", Realtime(", processes_per_replica: '2'"),
     "predictor: processes_per_replica: must be an integer"},
    {"ProcessesFloat", Realtime(", processes_per_replica: 1.5"), "must be an integer"},
    {"ThreadsZero", Realtime(", threads_per_process: 0"),
     "predictor: threads_per_process: must be greater than or equal to 1"},
    {"TensorflowWithoutModel",
     "- {name: t, kind: RealtimeAPI, predictor: {type: tensorflow, path: p.py}}",
     "predictor: at least one model must be specified for the tensorflow predictor type"},
    {"OnnxWithoutModel", "- {name: o, kind: RealtimeAPI, predictor: {type: onnx, path: p.py}}",
     "at least one model must be specified for the onnx predictor type"},
    {"OnnxWithModel",
     "- {name: o, kind: RealtimeAPI, predictor: {type: onnx, path: p.py, model_path: m.onnx}}", ""},
    {"ModelPathEmpty", Realtime(", model_path: ''"), "predictor: model_path: cannot be empty"},
    {"ModelPathAndModels", Realtime(", model_path: m, models: {dir: d}"),
     "predictor: please specify either the model_path or models field (both cannot be specified "
     "at the same time)"},
    {"SignatureKeyOnPython", Realtime(", signature_key: serve"),
     "predictor: signature_key is not a supported field for the python predictor type"},
    {"SignatureKeyOnTensorflow", Tensorflow(", signature_key: serve"), ""},
    {"ModelsNotMap", Realtime(", models: [a]"), "predictor: models: must be a map"},
    {"ModelsPathsAndDir", Realtime(", models: {dir: d, paths: [{name: m, model_path: x}]}"),
     "predictor: models: please specify either the paths or dir field"},
    {"ModelsEmpty", Realtime(", models: {}"),
     "predictor: models: please specify either the paths field or dir field"},
    {"ModelsUnknownKey", Realtime(", models: {dir: d, path: x}"),
     "predictor: models: key \"path\" is not supported"},
    {"ModelsDir",
     "- {name: t, kind: RealtimeAPI, predictor: {type: tensorflow, path: p.py, models: {dir: "
     "s3://b/models, signature_key: serve}}}",
     ""},
    {"ModelsPathsNotList", Realtime(", models: {paths: x}"),
     "predictor: models: paths: must be a list"},
    {"ModelsPathsEmpty", Realtime(", models: {paths: []}"),
     "predictor: models: paths: must contain at least 1 element"},
    {"ModelPathsMissingName", Realtime(", models: {paths: [{model_path: x}]}"),
     "predictor: models: paths: 0: key \"name\" must be specified"},
    {"ModelPathsBadName", Realtime(", models: {paths: [{name: 'a b', model_path: x}]}"),
     "paths: 0: name: \"a b\" must contain only letters, numbers, underscores, and dashes"},
    {"ModelPathsReservedName",
     Realtime(", models: {paths: [{name: _cortex_default, model_path: x}]}"),
     "_cortex_default: is a reserved name"},
    {"ModelPathsDuplicateName",
     Realtime(", models: {paths: [{name: m, model_path: x}, {name: m, model_path: y}]}"),
     "predictor: models: paths: m: name: cannot have multiple models with the same name (m)"},
    {"ModelPathsMissingModelPath", Realtime(", models: {paths: [{name: m}]}"),
     "paths: m: key \"model_path\" must be specified"},
    {"ModelPathsSignatureKeyOnPython",
     Realtime(", models: {paths: [{name: m, model_path: x, signature_key: s}]}"),
     "paths: m: signature_key is not a supported field for the python predictor type"},
    {"ModelsSignatureKeyOnOnnx",
     "- {name: o, kind: RealtimeAPI, predictor: {type: onnx, path: p.py, models: {dir: d, "
     "signature_key: s}}}",
     "predictor: models: signature_key is not a supported field for the onnx predictor type"},
    {"ModelsCacheSizeAlone", Realtime(", models: {dir: d, cache_size: 2}"),
     "predictor: models: please specify both \"cache_size\" and \"disk_cache_size\" or neither"},
    {"ModelsCacheSizeZero", Realtime(", models: {dir: d, cache_size: 0, disk_cache_size: 2}"),
     "predictor: models: cache_size: must be greater than or equal to 1"},
    {"ModelsCacheLargerThanDisk", Realtime(", models: {dir: d, cache_size: 3, disk_cache_size: 2}"),
     "cache_size (3) cannot be greater than disk_cache_size (2)"},
    {"ModelsCacheWithProcesses",
     Realtime(", processes_per_replica: 2, models: {dir: d, cache_size: 1, disk_cache_size: 2}"),
     "processes_per_replica must be 1, while currently it's set to 2"},
    {"ModelsCacheOnBatch", Batch(", models: {dir: d, cache_size: 1, disk_cache_size: 2}"),
     "b (BatchAPI): predictor: models: cache_size key is not supported for BatchAPI kind"},
    {"ModelsCache", Realtime(", models: {dir: d, cache_size: 1, disk_cache_size: 2}"), ""},
    // python and onnx batches take one slot: Cortex's TensorFlow limits do not apply.
    {"BatchingOnPython",
     Realtime(", server_side_batching: {max_batch_size: 32, batch_interval: 10ms}"), ""},
    {"BatchingOnPythonMissingInterval", Realtime(", server_side_batching: {max_batch_size: 2}"),
     "server_side_batching: key \"batch_interval\" must be specified"},
    {"BatchingOnBatchApi",
     Batch(", server_side_batching: {max_batch_size: 2, batch_interval: 10ms}"),
     "b (BatchAPI): predictor: server_side_batching key is not supported for BatchAPI kind"},
    {"BatchingMissingSize", Tensorflow(", server_side_batching: {batch_interval: 1s}"),
     "predictor: server_side_batching: key \"max_batch_size\" must be specified"},
    {"BatchingSizeTooSmall",
     Tensorflow(", server_side_batching: {max_batch_size: 1, batch_interval: 1s}"),
     "server_side_batching: max_batch_size: must be greater than or equal to 2"},
    {"BatchingSizeTooLarge",
     Tensorflow(", server_side_batching: {max_batch_size: 1025, batch_interval: 1s}"),
     "max_batch_size: must be less than or equal to 1024"},
    {"BatchingMissingInterval", Tensorflow(", server_side_batching: {max_batch_size: 2}"),
     "server_side_batching: key \"batch_interval\" must be specified"},
    {"BatchingBadInterval",
     Tensorflow(", server_side_batching: {max_batch_size: 2, batch_interval: soon}"),
     "server_side_batching: batch_interval: invalid duration \"soon\""},
    {"BatchingZeroInterval",
     Tensorflow(", server_side_batching: {max_batch_size: 2, batch_interval: 0s}"),
     "batch_interval: must be greater than 0s"},
    {"BatchingBeyondConcurrency",
     Tensorflow(", threads_per_process: 4, server_side_batching: {max_batch_size: 8, "
                "batch_interval: 100ms}"),
     "server_side_batching: max_batch_size (8) must be less than or equal to "
     "processes_per_replica * threads_per_process (1 * 4 = 4)"},
    {"BatchingWithinConcurrency",
     Tensorflow(", processes_per_replica: 2, threads_per_process: 4, server_side_batching: "
                "{max_batch_size: 8, batch_interval: 100ms}"),
     ""},
    {"BatchingWithInfBeyondThreads",
     Tensorflow(", processes_per_replica: 2, threads_per_process: 4, server_side_batching: "
                "{max_batch_size: 8, batch_interval: 0.1s}",
                ", compute: {inf: 1}"),
     "max_batch_size (8) must be less than or equal to threads_per_process (4)", Env::kKubernetes},
    {"ConfigNotMap", Realtime(", config: [1, 2]"), "predictor: config: must be a map"},
    {"ConfigNonStringKey", Realtime(", config: {1: a}"),
     "predictor: config: non string key found: 1"},
    {"ConfigNested", Realtime(", config: {a: {b: [1, x]}}"), ""},
    {"ConfigAliasBomb",
     "- name: a\n"
     "  kind: RealtimeAPI\n"
     "  predictor:\n"
     "    type: python\n"
     "    path: p.py\n"
     "    config:\n"
     "      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "      e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
     "a (RealtimeAPI): predictor: config: e: is too large (more than 100000 values"},
    {"PythonPathDot", Realtime(", python_path: ."),
     "predictor: python_path: .: is an invalid path"},
    {"PythonPathDotSlash", Realtime(", python_path: ./"), "python_path: ./: is an invalid path"},
    {"PythonPathAbsolute", Realtime(", python_path: /usr/lib"),
     "python_path: /usr/lib: must be a relative path"},
    {"PythonPathMissing", Realtime(", python_path: lib"),
     "predictor: python_path: lib: path does not exist, or has been excluded from your project "
     "directory",
     Env::kProjectFiles},
    {"PythonPathPresent", Realtime(", python_path: ./a/b/"), "", Env::kProjectFiles},
    {"ImageInvalid", Realtime(", image: 'Not An Image'"),
     "predictor: image: \"Not An Image\" is not a valid docker image path"},
    {"ImageUpperCase", Realtime(", image: repo/Image"), "is not a valid docker image path"},
    {"ImageCortexWrongTag", Realtime(", image: quay.io/cortexlabs/python-predictor-cpu:0.23.0"),
     "predictor: image: the specified image (quay.io/cortexlabs/python-predictor-cpu:0.23.0) has "
     "a tag (0.23.0) which does not match your Cortex version (0.24.0)"},
    {"ImageCortexNoTag", Realtime(", image: cortexlabs/python-predictor-cpu"),
     "has a tag (latest) which does not match"},
    {"ImageCortexCustomTag", Realtime(", image: quay.io/cortexlabs/python-predictor-cpu:0.24.0-x"),
     ""},
    {"ImageCustom", Realtime(", image: my-org/my_image:1.0"), ""},
    {"ImageRegistryWithPort", Realtime(", image: 'localhost:5000/a/b-c:tag'"), ""},
    {"ImageDigest", Realtime(", image: 'ubuntu@sha256:" + kHex64 + "'"), ""},
    {"ServingImageOnPython", Realtime(", tensorflow_serving_image: tensorflow/serving:2.3.0"),
     "predictor: tensorflow_serving_image is not a supported field for the python predictor type"},
    {"ServingImageWrongCortexTag",
     Tensorflow(", tensorflow_serving_image: quay.io/cortexlabs/tensorflow-serving-cpu:0.20.0"),
     "predictor: tensorflow_serving_image: the specified image"},
    {"EnvNotMap", Realtime(", env: [A]"), "predictor: env: must be a map"},
    {"EnvValueNotString", Realtime(", env: {A: 1}"), "predictor: env: A: must be a string"},
    {"EnvCortexPrefix", Realtime(", env: {CORTEX_X: y}"),
     "predictor: env: CORTEX_X: environment variables starting with CORTEX_ are reserved"},
    {"EnvOk", Realtime(", env: {A: '1', B: x}"), ""},
    {"PythonOnLocal", Realtime(", python: /venv/bin/python"), ""},
    {"PythonOnKubernetes", Realtime(", python: /venv/bin/python"),
     "predictor: python is not supported on kubernetes provider", Env::kKubernetes},
    {"PythonEmpty", Realtime(", python: ''"), "predictor: python: cannot be empty"},
    {"BatchProcesses", Batch(", processes_per_replica: 2"),
     "b (BatchAPI): predictor: processes_per_replica: must be 1 for BatchAPI kind"},
    {"BatchThreads", Batch(", threads_per_process: 2"),
     "predictor: threads_per_process: must be 1 for BatchAPI kind"},

    // networking.
    {"NetworkingNotMap", Realtime("", ", networking: /x"), "networking: must be a map"},
    {"NetworkingUnknownKey", Realtime("", ", networking: {path: /x}"),
     "networking: key \"path\" is not supported"},
    {"EndpointNotString", Realtime("", ", networking: {endpoint: 5}"),
     "networking: endpoint: must be a string"},
    {"EndpointBadCharacter", Realtime("", ", networking: {endpoint: '/a b'}"),
     "networking: endpoint: \"/a b\" is not a valid endpoint"},
    {"EndpointQuery", Realtime("", ", networking: {endpoint: '/a?b'}"), "is not a valid endpoint"},
    {"EndpointDoubleSlash", Realtime("", ", networking: {endpoint: /a//b}"),
     "networking: endpoint: \"/a//b\" is not a valid endpoint (it contains \"//\")"},
    {"EndpointRoot", Realtime("", ", networking: {endpoint: /}"),
     "networking: endpoint: cannot be \"/\""},
    {"EndpointEmpty", Realtime("", ", networking: {endpoint: ''}"),
     "networking: endpoint: cannot be empty"},
    {"EndpointReserved", Realtime("", ", networking: {endpoint: /_cortex/healthz}"),
     "networking: endpoint: \"/_cortex/healthz\" is reserved for the platform's own endpoints"},
    {"EndpointReservedRoot", Realtime("", ", networking: {endpoint: _cortex/}"),
     "networking: endpoint: \"/_cortex\" is reserved"},
    {"EndpointTooLong", Realtime("", ", networking: {endpoint: /" + std::string(1000, 'e') + "}"),
     "networking: endpoint: must be no more than 1000 characters"},
    {"EndpointMaxLength", Realtime("", ", networking: {endpoint: /" + std::string(999, 'e') + "}"),
     ""},
    {"ApiGatewayUnknown", Realtime("", ", networking: {api_gateway: private}"),
     "networking: api_gateway: invalid value (got \"private\", must be \"public\" or \"none\")"},
    {"ApiGatewayPublicWhenClusterHasNone", Realtime("", ", networking: {api_gateway: public}"),
     "networking: api_gateway: \"public\" is not allowed because the api gateway is disabled "
     "cluster-wide",
     Env::kNoGateway},
    {"ApiGatewayNoneWhenClusterHasNone", Realtime("", ", networking: {api_gateway: none}"), "",
     Env::kNoGateway},
    {"LocalPortZero", Realtime("", ", networking: {local_port: 0}"),
     "networking: local_port: must be greater than or equal to 1"},
    {"LocalPortTooLarge", Realtime("", ", networking: {local_port: 65536}"),
     "networking: local_port: must be less than or equal to 65535"},
    {"LocalPortOnBatch", Batch("", ", networking: {local_port: 9000}"),
     "b (BatchAPI): networking: key \"local_port\" is not supported for BatchAPI kind"},

    // compute.
    {"ComputeNotMap", Realtime("", ", compute: 1"), "compute: must be a map"},
    {"ComputeUnknownKey", Realtime("", ", compute: {memory: 1Gi}"),
     "compute: key \"memory\" is not supported"},
    {"CpuGarbage", Realtime("", ", compute: {cpu: lots}"),
     "a (RealtimeAPI): compute: cpu: \"lots\" is not a valid quantity"},
    {"CpuTooSmall", Realtime("", ", compute: {cpu: 10m}"),
     "compute: cpu: must be greater than or equal to 20m"},
    {"CpuList", Realtime("", ", compute: {cpu: [1]}"),
     "compute: cpu: must be a string or a number"},
    {"CpuForms", Realtime("", ", compute: {cpu: 0.5}") + "\n" + Batch("", ", compute: {cpu: 2}"),
     ""},
    {"MemGarbage", Realtime("", ", compute: {mem: 1GB}"), "compute: mem: \"1GB\" is not a valid"},
    {"MemTooSmall", Realtime("", ", compute: {mem: 10Mi}"),
     "compute: mem: must be greater than or equal to 20Mi"},
    {"MemForms", Realtime("", ", compute: {mem: 500M}") + "\n" + Batch("", ", compute: {mem: 1Gi}"),
     ""},
    {"GpuNegative", Realtime("", ", compute: {gpu: -1}"),
     "compute: gpu: must be greater than or equal to 0"},
    {"GpuQuoted", Realtime("", ", compute: {gpu: '1'}"), "compute: gpu: must be an integer"},
    {"GpuOnLocal", Realtime("", ", compute: {gpu: 1}"), ""},
    {"InfOnLocal", Realtime("", ", compute: {inf: 1}"),
     "compute: inf is not supported on local provider"},
    {"InfWithGpu", Realtime("", ", compute: {inf: 1, gpu: 1}"),
     "compute: gpu and inf resources cannot be used together", Env::kKubernetes},
    {"InfMoreThanOne", Realtime("", ", compute: {inf: 2}"), "compute: cannot request 2 Infs",
     Env::kKubernetes},
    {"InfWithOnnx",
     "- {name: o, kind: RealtimeAPI, predictor: {type: onnx, path: p.py, model_path: m}, "
     "compute: {inf: 1}}",
     "o (RealtimeAPI): compute: inf is not supported for the onnx predictor type",
     Env::kKubernetes},
    {"InfUnevenProcesses", Realtime(", processes_per_replica: 3", ", compute: {inf: 1}"),
     "compute: cannot evenly distribute 1 Inferentia ASIC(s) (4 NeuronCores total) over 3 "
     "processes - acceptable numbers of processes are 1, 2, 4",
     Env::kKubernetes},
    {"InfOnKubernetes", Realtime(", processes_per_replica: 2", ", compute: {inf: 1}"), "",
     Env::kKubernetes},

    // autoscaling.
    {"AutoscalingNotMap", Realtime("", ", autoscaling: 3"), "autoscaling: must be a map"},
    {"AutoscalingUnknownKey", Realtime("", ", autoscaling: {target: 1}"),
     "autoscaling: key \"target\" is not supported"},
    {"MinReplicasZero", Realtime("", ", autoscaling: {min_replicas: 0}"),
     "autoscaling: min_replicas: must be greater than or equal to 1"},
    {"MaxReplicasZero", Realtime("", ", autoscaling: {max_replicas: 0}"),
     "autoscaling: max_replicas: must be greater than or equal to 1"},
    {"InitReplicasZero", Realtime("", ", autoscaling: {init_replicas: 0}"),
     "autoscaling: init_replicas: must be greater than or equal to 1"},
    // The cluster's limit (1000 by default): a million replicas hung the operator.
    {"MinReplicasOverTheClusterLimit",
     Realtime("", ", autoscaling: {min_replicas: 1000000, max_replicas: 1000000}"),
     "autoscaling: min_replicas: must be less than or equal to 1000 (the most replicas this "
     "cluster runs per api, limits: replicas_per_api)"},
    {"MaxReplicasOverTheClusterLimit", Realtime("", ", autoscaling: {max_replicas: 1001}"),
     "autoscaling: max_replicas: must be less than or equal to 1000"},
    {"MaxReplicasAtTheClusterLimit", Realtime("", ", autoscaling: {max_replicas: 1000}"), ""},
    {"MinAboveMax", Realtime("", ", autoscaling: {min_replicas: 5, max_replicas: 3}"),
     "a (RealtimeAPI): autoscaling: min_replicas cannot be greater than max_replicas (5 > 3)"},
    {"InitAboveMax", Realtime("", ", autoscaling: {init_replicas: 10, max_replicas: 5}"),
     "autoscaling: init_replicas cannot be greater than max_replicas (10 > 5)"},
    {"InitBelowMin", Realtime("", ", autoscaling: {min_replicas: 3, init_replicas: 2}"),
     "autoscaling: init_replicas cannot be less than min_replicas (2 < 3)"},
    {"TargetZero", Realtime("", ", autoscaling: {target_replica_concurrency: 0}"),
     "autoscaling: target_replica_concurrency: must be greater than 0"},
    {"TargetNotNumber", Realtime("", ", autoscaling: {target_replica_concurrency: many}"),
     "autoscaling: target_replica_concurrency: must be a number"},
    {"TargetAboveMaxConcurrency",
     Realtime("", ", autoscaling: {target_replica_concurrency: 11, max_replica_concurrency: 10}"),
     "autoscaling: target_replica_concurrency (11) cannot be greater than max_replica_concurrency "
     "(10)"},
    {"DefaultTargetAboveMaxConcurrency",
     Realtime(", processes_per_replica: 100, threads_per_process: 20"),
     "target_replica_concurrency (2000) cannot be greater than max_replica_concurrency (1024)"},
    {"MaxConcurrencyZero", Realtime("", ", autoscaling: {max_replica_concurrency: 0}"),
     "autoscaling: max_replica_concurrency: must be greater than or equal to 1"},
    {"MaxConcurrencyTooLarge", Realtime("", ", autoscaling: {max_replica_concurrency: 30001}"),
     "autoscaling: max_replica_concurrency: must be less than or equal to 30000"},
    {"WindowTooShort", Realtime("", ", autoscaling: {window: 5s}"),
     "autoscaling: window: must be greater than or equal to 10s"},
    {"WindowNotMultiple", Realtime("", ", autoscaling: {window: 15s}"),
     "autoscaling: window: must be a multiple of 10s"},
    {"WindowMissingUnit", Realtime("", ", autoscaling: {window: 60}"),
     "autoscaling: window: missing unit in duration \"60\""},
    {"WindowGarbage", Realtime("", ", autoscaling: {window: soon}"),
     "autoscaling: window: invalid duration \"soon\""},
    {"WindowFractional", Realtime("", ", autoscaling: {window: 10.5s}"),
     "must be a whole number of seconds"},
    {"WindowUnknownUnit", Realtime("", ", autoscaling: {window: 1d}"), "unknown unit \"d\""},
    {"DownscalePeriodNegative",
     Realtime("", ", autoscaling: {downscale_stabilization_period: -1m}"),
     "autoscaling: downscale_stabilization_period: must be greater than or equal to 0s"},
    {"UpscalePeriodNegative", Realtime("", ", autoscaling: {upscale_stabilization_period: -1s}"),
     "autoscaling: upscale_stabilization_period: must be greater than or equal to 0s"},
    {"MaxDownscaleFactorOne", Realtime("", ", autoscaling: {max_downscale_factor: 1}"),
     "autoscaling: max_downscale_factor: must be less than 1"},
    {"MaxDownscaleFactorNegative", Realtime("", ", autoscaling: {max_downscale_factor: -0.1}"),
     "autoscaling: max_downscale_factor: must be greater than or equal to 0"},
    {"MaxUpscaleFactorOne", Realtime("", ", autoscaling: {max_upscale_factor: 1}"),
     "autoscaling: max_upscale_factor: must be greater than 1"},
    {"DownscaleToleranceOne", Realtime("", ", autoscaling: {downscale_tolerance: 1.0}"),
     "autoscaling: downscale_tolerance: must be less than 1"},
    {"UpscaleToleranceNegative", Realtime("", ", autoscaling: {upscale_tolerance: -1}"),
     "autoscaling: upscale_tolerance: must be greater than or equal to 0"},
    {"AutoscalingAllFields",
     Realtime("",
              ", autoscaling: {min_replicas: 2, max_replicas: 8, init_replicas: 3, "
              "target_replica_concurrency: 2.5, max_replica_concurrency: 100, window: 1m30s, "
              "downscale_stabilization_period: 0s, upscale_stabilization_period: 0, "
              "max_downscale_factor: 0, max_upscale_factor: 3, downscale_tolerance: 0, "
              "upscale_tolerance: 2}"),
     ""},
    {"AutoscalingOnBatch", Batch("", ", autoscaling: {min_replicas: 1}"),
     "b (BatchAPI): key \"autoscaling\" is not supported for BatchAPI kind"},

    // update_strategy.
    {"SurgeTooLargePercent", Realtime("", ", update_strategy: {max_surge: 150%}"),
     "update_strategy: max_surge: \"150%\" is not a valid value - must be an integer percentage"},
    {"SurgeGarbage", Realtime("", ", update_strategy: {max_surge: some}"),
     "update_strategy: max_surge: \"some\" is not a valid value"},
    {"UnavailableNegative", Realtime("", ", update_strategy: {max_unavailable: -1}"),
     "update_strategy: max_unavailable: \"-1\" is not a valid value"},
    {"SurgeFractionalPercent", Realtime("", ", update_strategy: {max_surge: 2.5%}"),
     "is not a valid value"},
    {"BothZero", Realtime("", ", update_strategy: {max_surge: 0, max_unavailable: 0%}"),
     "a (RealtimeAPI): update_strategy: max_surge and max_unavailable cannot both be zero"},
    {"SurgeZeroOnly", Realtime("", ", update_strategy: {max_surge: 0}"), ""},
    {"UpdateStrategyUnknownKey", Realtime("", ", update_strategy: {type: Recreate}"),
     "update_strategy: key \"type\" is not supported"},
    {"UpdateStrategyOnBatch", Batch("", ", update_strategy: {max_surge: 1}"),
     "key \"update_strategy\" is not supported for BatchAPI kind"},

    // monitoring.
    {"MonitoringModelType", Realtime("", ", monitoring: {model_type: ranking}"),
     "monitoring: model_type: invalid value (got \"ranking\", must be \"classification\" or "
     "\"regression\")"},
    {"MonitoringKeyNotString", Realtime("", ", monitoring: {key: [a]}"),
     "monitoring: key: must be a string"},
    {"MonitoringUnknownKey", Realtime("", ", monitoring: {type: regression}"),
     "monitoring: key \"type\" is not supported"},
    {"MonitoringOk", Realtime("", ", monitoring: {model_type: regression, key: score}"), ""},
    {"MonitoringOnBatch", Batch("", ", monitoring: {model_type: regression}"),
     "key \"monitoring\" is not supported for BatchAPI kind"},

    // TrafficSplitter.
    {"SplitterOk", Splitter("[{name: a, weight: 30}, {name: b, weight: 70}]"), ""},
    {"SplitterMissingApis", "- {name: s, kind: TrafficSplitter}",
     "cortex.yaml: s (TrafficSplitter): key \"apis\" must be specified"},
    {"SplitterApisNotList", Splitter("{name: a}"), "s (TrafficSplitter): apis: must be a list"},
    {"SplitterApisEmpty", Splitter("[]"), "apis: must contain at least 1 element"},
    {"SplitterItemNotMap", Splitter("[a]"), "apis: 0: must be a map"},
    {"SplitterMissingWeight", Splitter("[{name: a}]"), "apis: 0: key \"weight\" must be specified"},
    {"SplitterMissingName", Splitter("[{weight: 100}]"), "apis: 0: key \"name\" must be specified"},
    {"SplitterEmptyName", Splitter("[{name: '', weight: 100}]"), "apis: 0: name: cannot be empty"},
    {"SplitterWeightTooLarge", Splitter("[{name: a, weight: 101}]"),
     "apis: 0: weight: must be less than or equal to 100"},
    {"SplitterWeightNegative", Splitter("[{name: a, weight: -1}, {name: b, weight: 101}]"),
     "apis: 0: weight: must be greater than or equal to 0"},
    {"SplitterWeightFloat", Splitter("[{name: a, weight: 50.5}]"),
     "apis: 0: weight: must be an integer"},
    {"SplitterUnknownItemKey", Splitter("[{name: a, weight: 100, shadow: true}]"),
     "apis: 0: key \"shadow\" is not supported"},
    {"SplitterDuplicateApi", Splitter("[{name: a, weight: 50}, {name: a, weight: 50}]"),
     "apis: 1: name: api \"a\" is listed more than once"},
    {"SplitterWeightsSum", Splitter("[{name: a, weight: 30}, {name: b, weight: 60}]"),
     "s (TrafficSplitter): apis: expected weights to sum to 100 but found 90"},
    {"SplitterZeroWeight", Splitter("[{name: a, weight: 0}, {name: b, weight: 100}]"), ""},
    {"SplitterPredictor", Splitter("[{name: a, weight: 100}]", ", predictor: {type: python}"),
     "s (TrafficSplitter): key \"predictor\" is not supported for TrafficSplitter kind"},
    {"SplitterCompute", Splitter("[{name: a, weight: 100}]", ", compute: {cpu: 1}"),
     "key \"compute\" is not supported for TrafficSplitter kind"},
    {"SplitterLocalPort", Splitter("[{name: a, weight: 100}]", ", networking: {local_port: 9000}"),
     "networking: key \"local_port\" is not supported for TrafficSplitter kind"},
    {"SplitterEndpoint", Splitter("[{name: a, weight: 100}]", ", networking: {endpoint: /v1}"), ""},
    {"SplitterEndpointClash",
     Realtime() + "\n" + Splitter("[{name: a, weight: 100}]", ", networking: {endpoint: a/}"),
     "s (TrafficSplitter): networking: endpoint: endpoint is already being used by a"},
};

INSTANTIATE_TEST_SUITE_P(Rules, ParseApiConfigsTable, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(ParseApiConfigs, AppliesRealtimeDefaults) {
  ApiConfig api = ParseOne(Realtime());
  EXPECT_EQ(api.name, "a");
  EXPECT_EQ(api.kind, Kind::kRealtimeAPI);
  ASSERT_TRUE(api.predictor.has_value());
  const PredictorConfig& p = *api.predictor;
  EXPECT_EQ(p.type, "python");
  EXPECT_EQ(p.path, "p.py");
  EXPECT_FALSE(p.model_path.has_value());
  EXPECT_TRUE(p.models.is_null());
  EXPECT_FALSE(p.signature_key.has_value());
  EXPECT_FALSE(p.server_side_batching.has_value());
  EXPECT_EQ(p.processes_per_replica, 1);
  EXPECT_EQ(p.threads_per_process, 1);
  EXPECT_EQ(p.config, nlohmann::json::object());
  EXPECT_FALSE(p.python_path.has_value());
  EXPECT_EQ(p.image, "quay.io/cortexlabs/python-predictor-cpu:0.24.0");
  EXPECT_FALSE(p.tensorflow_serving_image.has_value());
  EXPECT_TRUE(p.env.empty());
  EXPECT_FALSE(p.python.has_value());

  EXPECT_EQ(api.networking.endpoint, "/a");
  EXPECT_EQ(api.networking.api_gateway, "public");
  EXPECT_FALSE(api.networking.local_port.has_value());
  EXPECT_EQ(api.compute.cpu_milli, 200);
  EXPECT_FALSE(api.compute.mem_bytes.has_value());
  EXPECT_EQ(api.compute.gpu, 0);
  EXPECT_EQ(api.compute.inf, 0);

  const AutoscalingConfig& a = api.autoscaling;
  EXPECT_EQ(a.min_replicas, 1);
  EXPECT_EQ(a.max_replicas, 100);
  EXPECT_EQ(a.init_replicas, 1);
  EXPECT_EQ(a.target_replica_concurrency, 1.0);
  EXPECT_EQ(a.max_replica_concurrency, 1024);
  EXPECT_EQ(a.window_s, 60);
  EXPECT_EQ(a.downscale_stabilization_period_s, 300);
  EXPECT_EQ(a.upscale_stabilization_period_s, 60);
  EXPECT_EQ(a.max_downscale_factor, 0.75);
  EXPECT_EQ(a.max_upscale_factor, 1.5);
  EXPECT_EQ(a.downscale_tolerance, 0.05);
  EXPECT_EQ(a.upscale_tolerance, 0.05);
  EXPECT_EQ(api.update_strategy.max_surge, "25%");
  EXPECT_EQ(api.update_strategy.max_unavailable, "25%");
  EXPECT_FALSE(api.monitoring.has_value());
  EXPECT_TRUE(api.apis.empty());
}

TEST(ParseApiConfigs, DerivedDefaultsFollowOtherFields) {
  ApiConfig api = ParseOne(Realtime(", processes_per_replica: 2, threads_per_process: 3",
                                    ", autoscaling: {min_replicas: 4, max_replicas: 9}"));
  EXPECT_EQ(api.autoscaling.init_replicas, 4);
  EXPECT_EQ(api.autoscaling.target_replica_concurrency, 6.0);

  ParseOptions no_gateway;
  no_gateway.cluster_api_gateway = false;
  absl::StatusOr<std::vector<ApiConfig>> apis = ParseApiConfigs(Realtime(), no_gateway);
  ASSERT_TRUE(apis.ok()) << apis.status();
  EXPECT_EQ(apis->front().networking.api_gateway, "none");
}

TEST(ParseApiConfigs, PicksDefaultImagesFromTypeAndCompute) {
  struct ImageCase {
    std::string yaml;
    std::string image;
    std::string serving_image;  // empty: none
  };
  const ImageCase cases[] = {
      {Realtime("", ", compute: {gpu: 1}"), "quay.io/cortexlabs/python-predictor-gpu:0.24.0", ""},
      {Realtime("", ", compute: {inf: 1}"), "quay.io/cortexlabs/python-predictor-inf:0.24.0", ""},
      {Tensorflow(), "quay.io/cortexlabs/tensorflow-predictor:0.24.0",
       "quay.io/cortexlabs/tensorflow-serving-cpu:0.24.0"},
      {Tensorflow("", ", compute: {gpu: 2}"), "quay.io/cortexlabs/tensorflow-predictor:0.24.0",
       "quay.io/cortexlabs/tensorflow-serving-gpu:0.24.0"},
      {Tensorflow("", ", compute: {inf: 1}"), "quay.io/cortexlabs/tensorflow-predictor:0.24.0",
       "quay.io/cortexlabs/tensorflow-serving-inf:0.24.0"},
      {Tensorflow(", tensorflow_serving_image: my/tfs:1"),
       "quay.io/cortexlabs/tensorflow-predictor:0.24.0", "my/tfs:1"},
      {"- {name: o, kind: RealtimeAPI, predictor: {type: onnx, path: p.py, model_path: m}}",
       "quay.io/cortexlabs/onnx-predictor-cpu:0.24.0", ""},
      {"- {name: o, kind: RealtimeAPI, predictor: {type: onnx, path: p.py, model_path: m}, "
       "compute: {gpu: 1}}",
       "quay.io/cortexlabs/onnx-predictor-gpu:0.24.0", ""},
      {Realtime(", image: my/image:2"), "my/image:2", ""},
  };
  for (const ImageCase& c : cases) {
    SCOPED_TRACE(c.yaml);
    ApiConfig api = ParseOne(c.yaml, Env::kKubernetes);
    ASSERT_TRUE(api.predictor.has_value());
    EXPECT_EQ(api.predictor->image, c.image);
    EXPECT_EQ(api.predictor->tensorflow_serving_image.value_or(""), c.serving_image);
  }
}

TEST(ParseApiConfigs, NormalisesValues) {
  ApiConfig api =
      ParseOne(Realtime(", python_path: ./src/",
                        ", networking: {endpoint: 'v1/predict/'}, compute: {cpu: '0.5', mem: 1Gi}, "
                        "update_strategy: {max_surge: 2, max_unavailable: 050%}"),
               Env::kProjectFiles);
  EXPECT_EQ(api.predictor->python_path, "src");
  EXPECT_EQ(api.networking.endpoint, "/v1/predict");
  EXPECT_EQ(api.compute.cpu_milli, 500);
  EXPECT_EQ(api.compute.mem_bytes, int64_t{1} << 30);
  EXPECT_EQ(api.update_strategy.max_surge, "2");
  EXPECT_EQ(api.update_strategy.max_unavailable, "50%");

  ApiConfig integer_cpu = ParseOne(Realtime("", ", compute: {cpu: 2, mem: 1073741824}"));
  EXPECT_EQ(integer_cpu.compute.cpu_milli, 2000);
  EXPECT_EQ(integer_cpu.compute.mem_bytes, int64_t{1} << 30);
}

TEST(ParseApiConfigs, KeepsConfigModelsAndBatchingAsJson) {
  ApiConfig api = ParseOne(
      "- name: a\n"
      "  kind: RealtimeAPI\n"
      "  predictor:\n"
      "    type: python\n"
      "    path: p.py\n"
      "    models: {paths: [{name: m1, model_path: s3://b/m1}], cache_size: 1,\n"
      "             disk_cache_size: 2}\n"
      "    config:\n"
      "      int: 3\n"
      "      float: 0.5\n"
      "      flag: true\n"
      "      quoted: '3'\n"
      "      nothing: ~\n"
      "      list: [a, 1]\n"
      "    env: {A: x}\n");
  const PredictorConfig& p = *api.predictor;
  EXPECT_EQ(p.models,
            nlohmann::json::parse(R"({"paths": [{"name": "m1", "model_path": "s3://b/m1"}],
                                                "cache_size": 1, "disk_cache_size": 2})"));
  EXPECT_EQ(p.config, nlohmann::json::parse(R"({"int": 3, "float": 0.5, "flag": true,
                                                "quoted": "3", "nothing": null,
                                                "list": ["a", 1]})"));
  EXPECT_EQ(p.env, (std::map<std::string, std::string>{{"A", "x"}}));

  ApiConfig null_config = ParseOne(Realtime(", config: null"));
  EXPECT_EQ(null_config.predictor->config, nlohmann::json::object());

  ApiConfig tf = ParseOne(Tensorflow(
      ", threads_per_process: 4, server_side_batching: {max_batch_size: 4, batch_interval: 0.1s}"));
  EXPECT_EQ(tf.predictor->server_side_batching, (BatchingConfig{4, "0.1s", 100'000'000}));
  EXPECT_EQ(tf.ToJson()["predictor"]["server_side_batching"],
            nlohmann::json::parse(R"({"max_batch_size": 4, "batch_interval": "0.1s"})"));
}

TEST(ParseApiConfigs, KeepsFileOrderAndReadsSplitters) {
  absl::StatusOr<std::vector<ApiConfig>> apis =
      Parse(Splitter("[{name: a, weight: 25}, {name: b, weight: 75}]") + "\n" + Realtime());
  ASSERT_TRUE(apis.ok()) << apis.status();
  ASSERT_EQ(apis->size(), 2u);
  EXPECT_EQ((*apis)[0].kind, Kind::kTrafficSplitter);
  EXPECT_FALSE((*apis)[0].predictor.has_value());
  EXPECT_EQ((*apis)[0].networking.endpoint, "/s");
  ASSERT_EQ((*apis)[0].apis.size(), 2u);
  EXPECT_EQ((*apis)[0].apis[1].name, "b");
  EXPECT_EQ((*apis)[0].apis[1].weight, 75);
  EXPECT_EQ((*apis)[1].name, "a");
}

TEST(ParseApiConfigs, ReportsLineNumbersAndFileName) {
  ParseOptions options;
  options.file_name = "apis/prod.yaml";
  absl::StatusOr<std::vector<ApiConfig>> apis = ParseApiConfigs(
      "- name: my-api\n"
      "  kind: RealtimeAPI\n"
      "  predictor:\n"
      "    type: python\n"
      "    path: p.py\n"
      "    processes_per_replica: 150\n",
      options);
  ASSERT_FALSE(apis.ok());
  EXPECT_EQ(apis.status().message(),
            "apis/prod.yaml: my-api (RealtimeAPI): predictor: processes_per_replica: must be less "
            "than or equal to 100 (line 6)");

  apis = ParseApiConfigs("- name: a\n  kind: RealtimeAPI\n  bogus: 1\n", options);
  ASSERT_FALSE(apis.ok());
  EXPECT_EQ(apis.status().message(),
            "apis/prod.yaml: a (RealtimeAPI): key \"bogus\" is not supported (line 3)");

  apis = ParseApiConfigs("- name: a\n  kind: [RealtimeAPI\n", options);
  ASSERT_FALSE(apis.ok());
  EXPECT_THAT(std::string(apis.status().message()), HasSubstr("apis/prod.yaml: invalid yaml: "));
  EXPECT_THAT(std::string(apis.status().message()), HasSubstr("(line "));
}

TEST(ParseApiConfigs, RejectsUnknownProvider) {
  ParseOptions options;
  options.provider = "aws";
  EXPECT_FALSE(ParseApiConfigs(Realtime(), options).ok());
}

TEST(ParseApiConfigs, ChecksProjectFilesWithTheWrittenPath) {
  std::vector<std::string> files;
  std::vector<std::string> dirs;
  ParseOptions options;
  options.file_exists = [&](const std::string& path) {
    files.push_back(path);
    return true;
  };
  options.dir_exists = [&](const std::string& path) {
    dirs.push_back(path);
    return true;
  };
  absl::StatusOr<std::vector<ApiConfig>> apis = ParseApiConfigs(
      "- {name: a, kind: RealtimeAPI, predictor: {type: python, path: src/p.py, python_path: "
      "lib/}}",
      options);
  ASSERT_TRUE(apis.ok()) << apis.status();
  EXPECT_EQ(files, std::vector<std::string>{"src/p.py"});
  EXPECT_EQ(dirs, std::vector<std::string>{"lib"});
}

// --- JSON ------------------------------------------------------------------------------------

void ExpectRoundTrip(const ApiConfig& api) {
  nlohmann::json json = api.ToJson();
  // Through text too, as the operator stores it.
  absl::StatusOr<ApiConfig> back = ApiConfig::FromJson(nlohmann::json::parse(json.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), json);
  EXPECT_EQ(back->name, api.name);
  EXPECT_EQ(back->kind, api.kind);
  EXPECT_EQ(back->compute.cpu_milli, api.compute.cpu_milli);
  EXPECT_EQ(back->compute.mem_bytes, api.compute.mem_bytes);
  EXPECT_EQ(back->autoscaling.window_s, api.autoscaling.window_s);
  EXPECT_EQ(back->autoscaling.target_replica_concurrency,
            api.autoscaling.target_replica_concurrency);
  EXPECT_EQ(back->networking.local_port, api.networking.local_port);
  EXPECT_EQ(back->predictor.has_value(), api.predictor.has_value());
  if (api.predictor && back->predictor) {
    EXPECT_EQ(back->predictor->env, api.predictor->env);
    EXPECT_EQ(back->predictor->python_path, api.predictor->python_path);
    EXPECT_EQ(back->predictor->models, api.predictor->models);
    EXPECT_EQ(back->predictor->server_side_batching, api.predictor->server_side_batching);
  }
}

TEST(ApiConfigJson, RoundTripsEveryKind) {
  const std::string yamls[] = {
      Realtime(),
      Realtime(", processes_per_replica: 1, threads_per_process: 7, config: {a: [1, {b: c}]}, "
               "python_path: lib, env: {X: y}, python: /venv/bin/python, image: my/img:1, "
               "models: {dir: s3://b/m, cache_size: 1, disk_cache_size: 3}, "
               "server_side_batching: {max_batch_size: 8, batch_interval: 5ms}",
               ", networking: {endpoint: /v2/x, api_gateway: none, local_port: 8890}, "
               "compute: {cpu: 1500m, mem: 500M, gpu: 1}, autoscaling: {min_replicas: 2, "
               "max_replicas: 5, init_replicas: 3, target_replica_concurrency: 0.3, "
               "max_replica_concurrency: 17, window: 1h10s, downscale_stabilization_period: 0s, "
               "upscale_stabilization_period: 90s, max_downscale_factor: 0.1, "
               "max_upscale_factor: 2.25, downscale_tolerance: 0.3, upscale_tolerance: 7}, "
               "update_strategy: {max_surge: 0, max_unavailable: 3}, "
               "monitoring: {model_type: classification, key: label}"),
      Realtime("", ", monitoring: {}, compute: {mem: 123456789}"),
      Tensorflow(", signature_key: serve, threads_per_process: 2, server_side_batching: "
                 "{max_batch_size: 2, batch_interval: 250ms}"),
      Batch(", config: {k: v}", ", networking: {endpoint: jobs}, compute: {cpu: 3, mem: 2Gi}"),
      Splitter("[{name: a, weight: 10}, {name: b, weight: 90}]",
               ", networking: {api_gateway: none}"),
  };
  for (const std::string& yaml : yamls) {
    SCOPED_TRACE(yaml);
    ExpectRoundTrip(ParseOne(yaml));
  }
}

TEST(ApiConfigJson, ShowsTheDefaultedRealtimeConfig) {
  nlohmann::json json = ParseOne(Realtime()).ToJson();
  EXPECT_EQ(json, nlohmann::json::parse(R"({
    "name": "a",
    "kind": "RealtimeAPI",
    "predictor": {
      "type": "python", "path": "p.py", "model_path": null, "models": null,
      "signature_key": null, "server_side_batching": null, "processes_per_replica": 1,
      "threads_per_process": 1, "config": {}, "python_path": null,
      "image": "quay.io/cortexlabs/python-predictor-cpu:0.24.0",
      "tensorflow_serving_image": null, "env": {}, "python": null
    },
    "networking": {"endpoint": "/a", "api_gateway": "public", "local_port": null},
    "compute": {"cpu": "200m", "mem": null, "gpu": 0, "inf": 0},
    "autoscaling": {
      "min_replicas": 1, "max_replicas": 100, "init_replicas": 1,
      "target_replica_concurrency": 1.0, "max_replica_concurrency": 1024, "window": "1m0s",
      "downscale_stabilization_period": "5m0s", "upscale_stabilization_period": "1m0s",
      "max_downscale_factor": 0.75, "max_upscale_factor": 1.5, "downscale_tolerance": 0.05,
      "upscale_tolerance": 0.05
    },
    "update_strategy": {"max_surge": "25%", "max_unavailable": "25%"},
    "monitoring": null
  })"));
}

TEST(ApiConfigJson, OmitsFieldsOtherKindsDoNotHave) {
  nlohmann::json batch = ParseOne(Batch("", ", compute: {cpu: 1, mem: 1Gi}")).ToJson();
  EXPECT_FALSE(batch.contains("autoscaling"));
  EXPECT_FALSE(batch.contains("update_strategy"));
  EXPECT_FALSE(batch.contains("monitoring"));
  EXPECT_FALSE(batch.contains("apis"));
  EXPECT_FALSE(batch["networking"].contains("local_port"));
  EXPECT_EQ(batch["compute"]["cpu"], "1");
  EXPECT_EQ(batch["compute"]["mem"], "1Gi");

  nlohmann::json splitter = ParseOne(Splitter("[{name: a, weight: 100}]")).ToJson();
  EXPECT_EQ(splitter, nlohmann::json::parse(R"({
    "name": "s", "kind": "TrafficSplitter",
    "networking": {"endpoint": "/s", "api_gateway": "public"},
    "apis": [{"name": "a", "weight": 100}]
  })"));
}

TEST(ApiConfigJson, FromJsonRejectsMalformedDocuments) {
  nlohmann::json good = ParseOne(Realtime()).ToJson();
  struct Bad {
    std::string pointer;
    nlohmann::json value;
  };
  const Bad cases[] = {
      {"/kind", "AsyncAPI"},
      {"/name", 3},
      {"/compute/cpu", "lots"},
      {"/autoscaling/window", "soon"},
      {"/predictor", nullptr},
      // Not ints: a float past int's range was undefined behaviour (found by config_fuzzer).
      {"/compute/gpu", 1e30},
      {"/autoscaling/max_replicas", 4294967297},
      {"/predictor/processes_per_replica", true},
      {"/networking/local_port", 80.5},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.pointer);
    nlohmann::json bad = good;
    bad[nlohmann::json::json_pointer(c.pointer)] = c.value;
    absl::StatusOr<ApiConfig> api = ApiConfig::FromJson(bad);
    EXPECT_FALSE(api.ok());
    EXPECT_EQ(api.status().code(), absl::StatusCode::kInvalidArgument);
  }
  nlohmann::json missing = good;
  missing.erase("networking");
  EXPECT_FALSE(ApiConfig::FromJson(missing).ok());
  EXPECT_FALSE(ApiConfig::FromJson(nlohmann::json::array()).ok());
}

// --- Kinds, quantities and durations ---------------------------------------------------------

TEST(Kind, NamesRoundTrip) {
  for (Kind kind : {Kind::kRealtimeAPI, Kind::kBatchAPI, Kind::kTrafficSplitter}) {
    EXPECT_EQ(ParseKind(KindName(kind)), kind);
  }
  EXPECT_EQ(KindName(Kind::kBatchAPI), "BatchAPI");
  EXPECT_FALSE(ParseKind("realtimeapi").has_value());
}

TEST(Quantity, ParsesCpu) {
  const std::pair<std::string, int64_t> cases[] = {
      {"200m", 200}, {"1", 1000},     {"0.5", 500},  {"2.25", 2250},   {"1500m", 1500},
      {".1", 100},   {"1k", 1000000}, {"0.0001", 1}, {"1e3", 1000000}, {"3e-1", 300},
      {"+2", 2000},  {"0", 0},        {" 4 ", 4000}, {"100u", 1},      {"1.", 1000},
  };
  for (const auto& [text, milli] : cases) {
    absl::StatusOr<int64_t> parsed = ParseCpuMilli(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(*parsed, milli) << text;
  }
  for (const char* bad : {"", "m", "abc", "1mm", "1.2.3", "1 m", "--1", "1x", "1e", "Ki"}) {
    EXPECT_FALSE(ParseCpuMilli(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseCpuMilli("99999999999999999").ok());  // milli overflows int64
}

TEST(Quantity, ParsesMemory) {
  const std::pair<std::string, int64_t> cases[] = {
      {"1024", 1024},
      {"1Ki", 1024},
      {"20Mi", 20 * 1024 * 1024},
      {"1Gi", int64_t{1} << 30},
      {"2Ti", int64_t{2} << 40},
      {"1Pi", int64_t{1} << 50},
      {"1Ei", int64_t{1} << 60},
      {"2E", 2000000000000000000},
      {"1E-2", 1},
      {"1.5Gi", int64_t{3} << 29},
      {"500M", 500000000},
      {"1k", 1000},
      {"1K", 1000},
      {"2G", 2000000000},
      {"1T", 1000000000000},
      {"1e3", 1000},
      {"0.5", 1},  // rounds up, as Kubernetes does
      {"1.5Ki", 1536},
      {"0.000123456789012345678Ei", 142335986942044},
  };
  for (const auto& [text, bytes] : cases) {
    absl::StatusOr<int64_t> parsed = ParseMemBytes(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(*parsed, bytes) << text;
  }
  for (const char* bad : {"1GB", "1gi", "one", "1 Gi", "Mi", "16Ei", "1e", "1E+", "1e2x"}) {
    EXPECT_FALSE(ParseMemBytes(bad).ok()) << bad;
  }
}

TEST(Duration, ParsesGoSyntax) {
  const std::pair<std::string, int64_t> cases[] = {
      {"10s", 10}, {"1m30s", 90}, {"5m", 300},         {"1h", 3600},     {"0", 0},
      {"0s", 0},   {"1.5m", 90},  {"2000ms", 2},       {"1h1m1s", 3661}, {"-1m", -60},
      {"90s", 90}, {".5m", 30},   {"1000000000ns", 1}, {"2h0m", 7200},
  };
  for (const auto& [text, seconds] : cases) {
    absl::StatusOr<int64_t> parsed = ParseDurationSeconds(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(*parsed, seconds) << text;
  }
  for (const char* bad : {"", "10", "1d", "abc", "s", "1.5s", "500ms", "1m 30s", "--1s", ".s"}) {
    EXPECT_FALSE(ParseDurationSeconds(bad).ok()) << bad;
  }
  EXPECT_THAT(std::string(ParseDurationSeconds("60").status().message()),
              HasSubstr("missing unit in duration \"60\""));
  EXPECT_FALSE(ParseDurationSeconds("9999999999999h").ok());
}

TEST(Duration, FormatsLikeGo) {
  const std::pair<int64_t, std::string> cases[] = {
      {0, "0s"},     {10, "10s"},      {59, "59s"},      {60, "1m0s"},    {90, "1m30s"},
      {300, "5m0s"}, {3600, "1h0m0s"}, {3661, "1h1m1s"}, {-90, "-1m30s"}, {86400, "24h0m0s"},
  };
  for (const auto& [seconds, text] : cases) {
    EXPECT_EQ(FormatDuration(seconds), text);
    EXPECT_EQ(ParseDurationSeconds(text).value_or(-12345), seconds) << text;
  }
}

TEST(ParseApiConfigs, AFileOverTheClusterLimitIsNotParsed) {
  ParseOptions options;
  options.max_config_bytes = 1024;
  std::string yaml = Realtime() + "\n#" + std::string(2000, 'x') + "\n";
  auto apis = ParseApiConfigs(yaml, options);
  EXPECT_THAT(std::string(apis.status().message()),
              HasSubstr("cortex.yaml: is " + std::to_string(yaml.size()) +
                        " bytes, more than this cluster takes (1024 bytes, limits: config)"));
  options.max_config_bytes = yaml.size();
  EXPECT_TRUE(ParseApiConfigs(yaml, options).ok());
}

}  // namespace
}  // namespace cortex::config
