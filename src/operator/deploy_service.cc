#include "operator/deploy_service.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "common/json_fields.h"
#include "common/status.h"
#include "common/util.h"
#include "models/model_sources.h"
#include "operator/deploy_plan.h"
#include "operator/job_service.h"

namespace cortex::op {

namespace fs = std::filesystem;
using nlohmann::json;
using store::ApiRecord;

namespace {

constexpr char kTensorFlowRefusal[] =
    "tensorflow predictors cannot run on this platform: no TensorFlow runtime can be installed "
    "from its package sources (Debian and npm have none); export the model to ONNX (for "
    "example with tf2onnx: python -m tf2onnx.convert --saved-model DIR --output model.onnx) "
    "and deploy it with type: onnx and an ONNXPredictor (see docs/models.md)";

}  // namespace

DeployService::DeployService(DeployOptions options, store::StateStore& store, SpecCache& specs,
                             BundleStore& bundles, const ApiLogs& logs,
                             const Reconciler& reconciler, const Clock& clock)
    : options_(std::move(options)),
      store_(store),
      specs_(specs),
      bundles_(bundles),
      logs_(logs),
      reconciler_(reconciler),
      clock_(clock) {}

bool DeployService::Updating(const ApiSpec& api) const {
  if (api.kind() != config::Kind::kRealtimeAPI) return false;
  backends::ReplicaSetStatus replicas = reconciler_.observed()->For(api.record);
  return IsUpdating(api.config->autoscaling.min_replicas, &replicas);
}

absl::StatusOr<json> DeployService::Deploy(const json& request) {
  absl::MutexLock lock(&mu_);
  return DeployLocked(request);
}

absl::StatusOr<json> DeployService::DeployLocked(const json& request) {
  std::string yaml = StringField(request, "config", "");
  std::string file_name = StringField(request, "config_file_name", "cortex.yaml");
  std::string project_id = StringField(request, "project_id", "");
  bool force = BoolField(request, "force");
  ASSIGN_OR_RETURN(std::string project_dir, bundles_.ProjectDir(project_id));

  config::ParseOptions parse;
  parse.file_name = file_name;
  parse.provider = options_.provider;
  parse.cluster_api_gateway = options_.cluster_api_gateway;
  parse.max_replicas = options_.max_replicas;
  parse.max_config_bytes = options_.max_config_bytes;
  parse.file_exists = [&](const std::string& p) {
    return fs::is_regular_file(fs::path(project_dir) / p);
  };
  parse.dir_exists = [&](const std::string& p) {
    return fs::is_directory(fs::path(project_dir) / p);
  };
  ASSIGN_OR_RETURN(std::vector<config::ApiConfig> apis, config::ParseApiConfigs(yaml, parse));
  // Splitters go last, so that the APIs they point at exist first (spec §1).
  std::stable_partition(apis.begin(), apis.end(), [](const config::ApiConfig& api) {
    return api.kind != config::Kind::kTrafficSplitter;
  });

  ASSIGN_OR_RETURN(std::vector<ApiSpecPtr> deployed, specs_.List(store_));
  // Cluster checks before anything changes: all-or-nothing.
  for (const auto& api : apis) {
    std::string kind(config::KindName(api.kind));
    std::string prefix = absl::StrCat(file_name, ": ", api.name, " (", kind, ")");
    if (api.kind == config::Kind::kBatchAPI && jobs_ == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": ", kind, " kind is not supported by this operator"));
    }
    if (api.networking.local_port) {
      // v0.24's local mode served each API on its own port; here every API is served by the
      // gateway, so a port that would be silently ignored is refused instead.
      return absl::InvalidArgumentError(absl::StrCat(
          prefix,
          ": networking: local_port: is not supported: every API is served by the "
          "cluster's gateway at its endpoint (networking.endpoint); remove local_port"));
    }
    for (const auto& target : api.apis) {
      bool in_file = std::any_of(apis.begin(), apis.end(), [&](const config::ApiConfig& a) {
        return a.name == target.name && a.kind == config::Kind::kRealtimeAPI;
      });
      bool is_deployed = std::any_of(deployed.begin(), deployed.end(), [&](const ApiSpecPtr& a) {
        return a->name() == target.name && a->kind() == config::Kind::kRealtimeAPI;
      });
      if (!in_file && !is_deployed) {
        return absl::InvalidArgumentError(absl::StrCat(
            prefix, ": apis: api ", target.name, " was either not found or is not a RealtimeAPI"));
      }
    }
    if (api.predictor && api.predictor->type == "tensorflow") {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": predictor: type: ", kTensorFlowRefusal));
    }
    if (api.predictor && api.predictor->HasModels()) {
      if (model_store_ == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, ": predictor: models are not supported by this operator"));
      }
      absl::StatusOr<std::vector<models::ModelTree>> trees =
          models::ReadModels(models::ModelsOf(*api.predictor, project_dir), *model_store_);
      if (!trees.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, ": predictor: ", trees.status().message()));
      }
    }
    for (const auto& other : deployed) {
      if (other->name() != api.name &&
          other->config->networking.endpoint == api.networking.endpoint) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, ": networking: endpoint: endpoint ", api.networking.endpoint,
                         " is already being used by ", other->name()));
      }
    }
  }

  json results = json::array();
  int64_t now = clock_.NowSeconds();
  for (const auto& api : apis) {
    std::string kind(config::KindName(api.kind));
    VersionIds ids = ComputeVersionIds(api.name, kind, api.ToJson(), project_id);
    ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> existing, specs_.Find(store_, api.name));
    const ApiRecord* existing_record = existing ? &(*existing)->record : nullptr;
    bool updating = existing && Updating(**existing);
    DeployDecision decision = DecideDeploy(api.name, kind, ids, existing_record, updating, force);
    json result = {{"api", {{"name", api.name}, {"kind", kind}}}, {"message", ""}, {"error", ""}};
    result[decision.action == DeployDecision::Action::kReject ? "error" : "message"] =
        decision.message;
    results.push_back(result);
    if (decision.action != DeployDecision::Action::kCreate &&
        decision.action != DeployDecision::Action::kUpdate) {
      continue;
    }
    ApiRecord record;
    if (existing_record) {
      record = *existing_record;
    } else {
      record.name = api.name;
      record.kind = kind;
      record.deployment_id = RandomId(10);
      record.created_at = now;
    }
    record.spec_id = ids.spec_id;
    record.predictor_id = ids.predictor_id;
    record.project_id = project_id;
    record.api_id = absl::StrCat(DecreasingHexId(), "-", record.deployment_id, "-", ids.spec_id);
    record.last_updated = now;
    record.desired_replicas =
        api.kind == config::Kind::kRealtimeAPI
            ? DesiredReplicas(api.autoscaling,
                              existing_record ? existing_record->desired_replicas : 0)
            : 0;
    record.spec_json = EncodeSpec(api, project_dir);
    RETURN_IF_ERROR(store_.PutApi(record));
    logs_.Append(api.name, decision.message);
  }
  return results;
}

absl::StatusOr<json> DeployService::Patch(const json& request) {
  config::ParseOptions parse;
  parse.file_name = StringField(request, "config_file_name", "cortex.yaml");
  parse.provider = options_.provider;
  parse.max_replicas = options_.max_replicas;
  parse.max_config_bytes = options_.max_config_bytes;
  // Names first (without project checks); the deploy validates fully against the stored project.
  ASSIGN_OR_RETURN(std::vector<config::ApiConfig> apis,
                   config::ParseApiConfigs(StringField(request, "config", ""), parse));
  absl::MutexLock lock(&mu_);
  std::string project_id;
  for (const auto& api : apis) {
    ASSIGN_OR_RETURN(std::optional<ApiRecord> existing, store_.GetApi(api.name));
    if (!existing) {
      return absl::NotFoundError(absl::StrCat(
          api.name,
          " is not deployed; `cortex patch` updates deployed apis (use `cortex deploy`)"));
    }
    if (!project_id.empty() && existing->project_id != project_id) {
      return absl::InvalidArgumentError(
          "the apis in this file were deployed from different projects; patch them one by one");
    }
    project_id = existing->project_id;
  }
  json deploy = request;
  deploy["project_id"] = project_id;
  return DeployLocked(deploy);
}

absl::StatusOr<json> DeployService::Refresh(const std::string& name, bool force) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> api, specs_.Find(store_, name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  if ((*api)->kind() != config::Kind::kRealtimeAPI) {
    return absl::InvalidArgumentError(
        absl::StrCat("refresh is only supported for RealtimeAPI kind, and ", name, " is a ",
                     (*api)->record.kind));
  }
  if (Updating(**api) && !force) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is updating (override with --force)"));
  }
  ApiRecord record = (*api)->record;
  record.deployment_id = RandomId(10);
  record.last_updated = clock_.NowSeconds();
  record.api_id = absl::StrCat(DecreasingHexId(), "-", record.deployment_id, "-", record.spec_id);
  RETURN_IF_ERROR(store_.PutApi(record));
  std::string message = absl::StrCat("updating ", name);
  logs_.Append(name, message + " (refresh)");
  return json{{"message", message}};
}

absl::StatusOr<json> DeployService::Delete(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> api, specs_.Find(store_, name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  ASSIGN_OR_RETURN(std::vector<ApiSpecPtr> all, specs_.List(store_));
  std::vector<std::string> users;
  for (const auto& other : all) {
    for (const auto& target : other->config->apis) {
      if (target.name == name) users.push_back(other->name());
    }
  }
  if (!users.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot delete api because it is used by the following TrafficSplitter(s): ",
                     absl::StrJoin(users, ", ")));
  }
  if ((*api)->kind() == config::Kind::kBatchAPI && jobs_ != nullptr) {
    RETURN_IF_ERROR(jobs_->DeleteApi(name));
  }
  // The reconciler takes the API out of the route table, then stops its replicas.
  RETURN_IF_ERROR(store_.DeleteApi(name));
  logs_.Remove(name);
  return json{{"message", absl::StrCat("deleting ", name)}};
}

void DeployService::SetDesiredReplicas(const std::string& name, const std::string& api_id, int from,
                                       int to) {
  absl::MutexLock lock(&mu_);
  auto api = store_.GetApi(name);
  if (!api.ok() || !api->has_value() || (*api)->api_id != api_id) return;
  ApiRecord record = **api;
  record.desired_replicas = to;
  // Not a new version: the history keeps the same api id.
  if (absl::Status st = store_.PutApi(record); !st.ok()) {
    std::cerr << "autoscaling " << name << ": " << st << std::endl;
    return;
  }
  logs_.Append(name, absl::StrCat(name, " autoscaling event: ", from, " -> ", to));
  std::cout << "[autoscaler] " << name << " autoscaling event: " << from << " -> " << to
            << std::endl;
}

}  // namespace cortex::op
