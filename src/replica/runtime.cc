#include "replica/runtime.h"

#include <absl/strings/str_cat.h>

#include "common/process.h"

namespace cortex::replica {
namespace {

class PythonRuntime : public Runtime {
 public:
  explicit PythonRuntime(RuntimeOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "python"; }
  RuntimeCommand Command(const std::string& socket_path, int slots,
                         int process_index) const override {
    RuntimeCommand command;
    command.argv = {options_.python,
                    "-u",
                    "-m",
                    "cortex_runtime.worker",
                    "--socket",
                    socket_path,
                    "--slots",
                    std::to_string(slots),
                    "--process-index",
                    std::to_string(process_index),
                    "--spec",
                    options_.spec_path};
    command.env = PythonRuntimeEnv(options_.runtime_dir);
    command.env_remove = {"PYTHONHOME"};
    // `python -m` puts its working directory on sys.path: make it the project, not wherever
    // the cluster happened to be started.
    command.working_dir = options_.project_dir;
    return command;
  }

 private:
  RuntimeOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Runtime>> RuntimeFor(const config::ApiConfig& api,
                                                    const RuntimeOptions& options) {
  if (!api.predictor) {
    return absl::InvalidArgumentError(absl::StrCat(api.name, " has no predictor to run"));
  }
  // The Python runtime hosts the ONNX predictor too (ONNX Runtime through _cortex_onnx).
  if (api.predictor->type == "python" || api.predictor->type == "onnx") {
    return std::make_unique<PythonRuntime>(options);
  }
  return absl::UnimplementedError(
      absl::StrCat("no runtime can run predictors of type ", api.predictor->type, " yet"));
}

}  // namespace cortex::replica
