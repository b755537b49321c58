#include "models/model_layout.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <algorithm>
#include <map>
#include <set>

namespace cortex::models {
namespace {

constexpr size_t kShownPaths = 50;

std::string CasedType(const std::string& type) { return type == "onnx" ? "ONNX" : "Python"; }

std::string ExpectedLayouts(const std::string& type, const std::string& path) {
  std::string files =
      type == "onnx" ? "<model-name>.onnx // ONNX-exported file"
                     : "* // Model-specific files (i.e. model.h5, model.pkl, labels.json, etc)";
  return absl::StrCat("\n  ", path, "\n  ├── 1523423423/ (Version prefix)\n  |   └── ", files,
                      "\n  └── 2434389194/ (Version prefix)\n      └── ", files,
                      "\n\nor like\n\n  ", path, "\n  └── ", files, "\n");
}

// Cortex's "invalid <Type> model path" message, with the directory's current structure.
absl::Status InvalidModelPath(const std::string& type, const std::string& path,
                              const std::vector<ModelFile>& listing, const std::string& why) {
  std::string message =
      absl::StrCat(path, ": invalid ", CasedType(type), " model path", why.empty() ? "" : " (", why,
                   why.empty() ? "" : ")", ".  For models provided for the ", type,
                   " predictor type, the path must be a directory with one of the following "
                   "structures:\n",
                   ExpectedLayouts(type, path));
  if (listing.empty()) {
    absl::StrAppend(&message, "\nbut its current directory is empty");
  } else {
    absl::StrAppend(&message, "\nbut its current structure is (limited to ", kShownPaths,
                    " sub-paths)\n\n");
    for (size_t i = 0; i < listing.size() && i < kShownPaths; ++i) {
      absl::StrAppend(&message, "  ", listing[i].path, "\n");
    }
    if (listing.size() > kShownPaths) absl::StrAppend(&message, "  ...\n");
  }
  return absl::InvalidArgumentError(message);
}

// The version number of a first-level directory name, if it is one.
std::optional<int64_t> VersionOf(const std::string& part) {
  int64_t version = 0;
  if (part.empty() || !std::all_of(part.begin(), part.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(part, &version)) {
    return std::nullopt;
  }
  return version;
}

absl::Status CheckVersion(const std::string& type, const std::string& path,
                          const std::vector<ModelFile>& listing, const ModelVersion& version) {
  if (type != "onnx") return absl::OkStatus();
  size_t onnx_files =
      std::count_if(version.files.begin(), version.files.end(),
                    [](const ModelFile& f) { return absl::EndsWith(f.path, ".onnx"); });
  if (onnx_files == 1) return absl::OkStatus();
  std::string where = version.dir.empty() ? "" : absl::StrCat("version ", version.dir, " ");
  return InvalidModelPath(
      type, path, listing,
      absl::StrCat(where, "has ", onnx_files, " *.onnx files; exactly one is needed"));
}

}  // namespace

absl::StatusOr<ModelTree> ReadModelTree(const std::string& name, const std::string& path,
                                        const std::string& predictor_type,
                                        const std::vector<ModelFile>& listing) {
  ModelTree tree;
  tree.name = name;
  tree.path = path;
  if (listing.empty()) return InvalidModelPath(predictor_type, path, listing, "");

  std::map<int64_t, ModelVersion> versions;
  std::set<int64_t> duplicated;  // "1" and "01" name the same version
  std::map<int64_t, std::string> dir_of;
  bool has_plain_entries = false;
  for (const ModelFile& file : listing) {
    size_t slash = file.path.find('/');
    std::optional<int64_t> version =
        slash == std::string::npos ? std::nullopt : VersionOf(file.path.substr(0, slash));
    if (!version) {
      has_plain_entries = true;
      continue;
    }
    std::string dir = file.path.substr(0, slash);
    auto [it, inserted] = dir_of.emplace(*version, dir);
    if (!inserted && it->second != dir) duplicated.insert(*version);
    ModelVersion& v = versions[*version];
    v.version = *version;
    v.dir = dir;
    ModelFile inner = file;
    inner.path = file.path.substr(slash + 1);
    v.timestamp = std::max(v.timestamp, file.modified_s);
    v.files.push_back(std::move(inner));
  }
  if (has_plain_entries && !versions.empty()) {
    return InvalidModelPath(predictor_type, path, listing,
                            "version directories and other files are mixed");
  }
  if (!duplicated.empty()) {
    return InvalidModelPath(predictor_type, path, listing,
                            absl::StrCat("two directories name version ", *duplicated.begin()));
  }
  if (versions.empty()) {
    ModelVersion only;
    only.version = 1;
    only.files = listing;
    for (const ModelFile& f : listing) only.timestamp = std::max(only.timestamp, f.modified_s);
    versions.emplace(1, std::move(only));
  }
  for (auto& [number, version] : versions) {
    absl::Status checked = CheckVersion(predictor_type, path, listing, version);
    if (!checked.ok()) return checked;
    tree.versions.push_back(std::move(version));
  }
  return tree;
}

std::vector<std::string> ModelNamesInDir(const std::vector<ModelFile>& listing) {
  std::set<std::string> names;
  for (const ModelFile& file : listing) {
    size_t slash = file.path.find('/');
    if (slash != std::string::npos) names.insert(file.path.substr(0, slash));
  }
  return {names.begin(), names.end()};
}

}  // namespace cortex::models
