// The layout rules of a model directory (spec §5), as pure functions over a listing.
//
// A model directory holds either the model's files themselves (non-versioned: version 1) or only
// integer-named subdirectories (versioned: each is a version, the highest is the latest); never
// both. Per predictor type: python needs at least one file per version; onnx exactly one
// `*.onnx` file per version. Errors carry Cortex's messages, naming the path and showing what the
// directory holds.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/model_store.h"

namespace cortex::models {

struct ModelVersion {
  int64_t version = 1;
  std::string dir;               // relative to the model directory: "" (non-versioned) or "3"
  std::vector<ModelFile> files;  // paths relative to the version's directory
  int64_t timestamp = 0;         // the newest modification time among the files
};

struct ModelTree {
  std::string name;
  std::string path;                    // the model directory, as configured (resolved)
  std::vector<ModelVersion> versions;  // ascending by version
};

// Reads the versions of the model `name` at `path` from its listing, for `predictor_type`
// (python | onnx).
absl::StatusOr<ModelTree> ReadModelTree(const std::string& name, const std::string& path,
                                        const std::string& predictor_type,
                                        const std::vector<ModelFile>& listing);

// The first-level subdirectories of a `models.dir` listing: the model names, sorted.
std::vector<std::string> ModelNamesInDir(const std::vector<ModelFile>& listing);

}  // namespace cortex::models
