#include "models/model_sources.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>

#include <filesystem>

#include "common/status.h"

namespace cortex::models {
namespace {

namespace fs = std::filesystem;

std::string Resolve(const std::string& path, const std::string& project_dir) {
  if (IsS3Path(path)) return std::string(absl::StripSuffix(path, "/"));
  std::string local = path;
  if (absl::StartsWith(local, "~/")) {
    if (const char* home = std::getenv("HOME"); home && *home) local = home + local.substr(1);
  }
  fs::path resolved =
      fs::path(local).is_absolute() ? fs::path(local) : fs::path(project_dir) / local;
  std::string text = resolved.lexically_normal().generic_string();
  while (text.size() > 1 && absl::EndsWith(text, "/")) text.pop_back();
  return text;
}

ModelSource SourceFor(const std::string& name, const std::string& path, const std::string& type,
                      const std::string& field, const std::string& project_dir) {
  ModelSource source{name, Resolve(path, project_dir), "", field};
  if (type == "onnx" && absl::EndsWith(source.dir, ".onnx")) {
    size_t slash = source.dir.rfind('/');
    source.only_file = source.dir.substr(slash + 1);
    source.dir = source.dir.substr(0, slash);
  }
  return source;
}

absl::Status InField(const std::string& field, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

}  // namespace

ModelsConfig ModelsOf(const config::PredictorConfig& predictor, const std::string& project_dir) {
  ModelsConfig models;
  models.predictor_type = predictor.type;
  if (predictor.model_path) {
    models.sources.push_back(SourceFor(kDefaultModelName, *predictor.model_path, predictor.type,
                                       "model_path", project_dir));
    return models;
  }
  const nlohmann::json& m = predictor.models;
  if (!m.is_object()) return models;
  if (m.contains("paths") && m["paths"].is_array()) {
    for (const auto& path : m["paths"]) {
      std::string name = path.value("name", "");
      models.sources.push_back(SourceFor(name, path.value("model_path", ""), predictor.type,
                                         absl::StrCat("models: paths: ", name), project_dir));
    }
  }
  if (m.contains("dir") && m["dir"].is_string()) {
    models.dir = Resolve(m["dir"].get<std::string>(), project_dir);
  }
  models.cache_size = m.value("cache_size", 0);
  models.disk_cache_size = m.value("disk_cache_size", 0);
  return models;
}

absl::StatusOr<ModelTree> ReadModel(const ModelsConfig& models, const ModelSource& source,
                                    const ModelStore& store) {
  absl::StatusOr<std::vector<ModelFile>> listing = store.List(source.dir);
  if (!listing.ok()) return InField(source.field, listing.status());
  std::string shown = source.dir;
  if (!source.only_file.empty()) {
    shown = absl::StrCat(source.dir, "/", source.only_file);
    std::vector<ModelFile> only;
    for (ModelFile& file : *listing) {
      if (file.path == source.only_file) only.push_back(std::move(file));
    }
    if (only.empty()) {
      return absl::NotFoundError(
          absl::StrCat(source.field, ": ", shown, ": file not found or insufficient permissions"));
    }
    *listing = std::move(only);
  }
  absl::StatusOr<ModelTree> tree =
      ReadModelTree(source.name, source.dir, models.predictor_type, *listing);
  if (!tree.ok()) return InField(source.field, tree.status());
  return tree;
}

absl::StatusOr<std::vector<ModelSource>> ListSources(const ModelsConfig& models,
                                                     const ModelStore& store) {
  std::vector<ModelSource> sources = models.sources;
  if (!models.dir) return sources;
  absl::StatusOr<std::vector<ModelFile>> listing = store.List(*models.dir);
  if (!listing.ok()) return InField("models: dir", listing.status());
  std::vector<std::string> names = ModelNamesInDir(*listing);
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "models: dir: ", *models.dir, ": no models found (each model must be a directory in it)"));
  }
  for (const std::string& name : names) {
    sources.push_back(
        {name, absl::StrCat(*models.dir, "/", name), "", absl::StrCat("models: dir: ", name)});
  }
  return sources;
}

absl::StatusOr<std::vector<ModelTree>> ReadModels(const ModelsConfig& models,
                                                  const ModelStore& store) {
  ASSIGN_OR_RETURN(std::vector<ModelSource> sources, ListSources(models, store));
  std::vector<ModelTree> trees;
  for (const ModelSource& source : sources) {
    ASSIGN_OR_RETURN(ModelTree tree, ReadModel(models, source, store));
    trees.push_back(std::move(tree));
  }
  return trees;
}

}  // namespace cortex::models
