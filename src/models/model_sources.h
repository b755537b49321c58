// Which models an API serves and where they come from (spec §5): `predictor.model_path` is one
// model named `_cortex_default`; `models.paths` names each model; `models.dir` makes every
// first-level subdirectory a model named after it. Paths are `s3://` prefixes or local
// directories (relative ones are in the project directory). An onnx `model_path` may also name
// one `.onnx` file.
#pragma once

#include <absl/status/statusor.h>

#include <optional>
#include <string>
#include <vector>

#include "config/api_config.h"
#include "models/model_layout.h"
#include "models/model_store.h"

namespace cortex::models {

inline constexpr char kDefaultModelName[] = "_cortex_default";

struct ModelSource {
  std::string name;
  std::string dir;        // the model's directory
  std::string only_file;  // set when the model is this one file of `dir`
  std::string field;      // where it is configured, for errors: "model_path", "models: paths: m"
};

struct ModelsConfig {
  std::string predictor_type;        // python | onnx
  std::vector<ModelSource> sources;  // model_path or models.paths
  std::optional<std::string> dir;    // models.dir
  int cache_size = 0;                // 0: no caching (every model is kept loaded)
  int disk_cache_size = 0;
};

// The models of `predictor`, with relative local paths resolved in `project_dir`.
ModelsConfig ModelsOf(const config::PredictorConfig& predictor, const std::string& project_dir);

// Every model with its versions, read from `store` and checked against the layout rules. Errors
// start with the configuration field ("model_path: ", "models: paths: m: ", "models: dir: ").
absl::StatusOr<std::vector<ModelTree>> ReadModels(const ModelsConfig& models,
                                                  const ModelStore& store);

// models.sources, and a source for each model of models.dir (listed from `store`).
absl::StatusOr<std::vector<ModelSource>> ListSources(const ModelsConfig& models,
                                                     const ModelStore& store);

// One model of ListSources, read and checked.
absl::StatusOr<ModelTree> ReadModel(const ModelsConfig& models, const ModelSource& source,
                                    const ModelStore& store);

}  // namespace cortex::models
