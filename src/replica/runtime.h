// The runtime port: what the front starts as a worker process, chosen by the API's predictor
// type. A runtime is a program that connects to the worker's Unix socket once per slot and
// speaks the slot protocol (docs/worker-protocol.md); the front does not know which one it
// drives. Today: the Python runtime (python/cortex_runtime) for `type: python` and `type: onnx`.
#pragma once

#include <absl/status/statusor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/api_config.h"

namespace cortex::replica {

// How to start one worker process.
struct RuntimeCommand {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::vector<std::string> env_remove;
  std::string working_dir;
};

// What every worker of a replica shares.
struct RuntimeOptions {
  std::string python = "/usr/bin/python3";  // the API's interpreter (predictor.python)
  std::string runtime_dir;                  // holds the cortex_runtime package
  std::string spec_path;                    // the replica spec (JSON) the worker reads
  std::string project_dir;                  // the worker's working directory
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string name() const = 0;
  // Worker `process_index` of the replica, serving `slots` connections on `socket_path`.
  virtual RuntimeCommand Command(const std::string& socket_path, int slots,
                                 int process_index) const = 0;
};

// The runtime for the API's predictor type, or an error naming the type it cannot run.
absl::StatusOr<std::unique_ptr<Runtime>> RuntimeFor(const config::ApiConfig& api,
                                                    const RuntimeOptions& options);

}  // namespace cortex::replica
