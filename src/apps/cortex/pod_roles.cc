// `cortex replica-pod`: what a RealtimeAPI's pod runs on the Kubernetes provider.
#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/cortex/server_roles.h"
#include "bundle/bundle.h"
#include "common/status.h"
#include "common/util.h"
#include "net/http_client.h"

namespace cortex::apps {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void Say(const std::string& id, const std::string& message) {
  std::cerr << "replica-pod " << id << ": " << message << std::endl;
}

// GET `path` from the operator. Transport failures and 5xx are retried until `deadline`; any
// other answer but 200 is an error carrying the operator's message.
absl::StatusOr<std::string> OperatorGet(const ReplicaPodRoleFlags& flags, const std::string& token,
                                        const std::string& path,
                                        std::chrono::steady_clock::time_point deadline) {
  net::HttpCall call;
  call.url = flags.operator_url + path;
  call.headers = {{"Authorization", "Bearer " + token}};
  call.timeout_ms = 120'000;
  auto backoff = std::chrono::milliseconds(250);
  while (true) {
    auto result = net::Fetch(call);
    if (result.ok() && result->status == 200) return std::move(result->body);
    bool retry = !result.ok() || result->status >= 500;
    if (!retry) {
      json body = json::parse(result->body, nullptr, false);
      std::string message = body.is_object() && body.contains("error") && body["error"].is_string()
                                ? body["error"].get<std::string>()
                                : result->body;
      return absl::Status(
          result->status == 404   ? absl::StatusCode::kNotFound
          : result->status == 409 ? absl::StatusCode::kAborted
          : result->status == 401 ? absl::StatusCode::kUnauthenticated
                                  : absl::StatusCode::kFailedPrecondition,
          absl::StrCat("the operator answered ", result->status, " to GET ", path, ": ", message));
    }
    if (std::chrono::steady_clock::now() + backoff > deadline) {
      return absl::UnavailableError(absl::StrCat(
          "the operator at ", flags.operator_url, " did not answer GET ", path, ": ",
          result.ok() ? absl::StrCat("status ", result->status) : result.status().message()));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

// The replica's spec file, as the local provider writes it (backends/local/replica_controller.cc).
absl::StatusOr<std::string> Prepare(const ReplicaPodRoleFlags& flags, const std::string& id) {
  auto token = ReadFile(flags.token_file);
  if (!token.ok()) return Annotate(token.status(), "reading the operator's token");
  std::string bearer(absl::StripAsciiWhitespace(*token));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(flags.wait_s);
  ASSIGN_OR_RETURN(
      std::string spec_text,
      OperatorGet(flags, bearer,
                  absl::StrCat("/v1/apis/", net::UrlEncode(flags.api),
                               "/replica-spec?predictor_id=", net::UrlEncode(flags.predictor_id)),
                  deadline));
  json spec = json::parse(spec_text, nullptr, false);
  if (!spec.is_object() || !spec.contains("api") || !spec["api"].is_object() ||
      !spec.contains("project_id") || !spec["project_id"].is_string()) {
    return absl::InternalError("the operator's replica spec is malformed");
  }
  std::string project_id = spec["project_id"];
  fs::path project_dir = fs::path(flags.data_dir) / "projects" / project_id;
  if (!fs::exists(project_dir)) {
    ASSIGN_OR_RETURN(std::string archive,
                     OperatorGet(flags, bearer, "/v1/bundles/" + project_id, deadline));
    if (Sha256Hex(archive) != project_id) {
      return absl::DataLossError("the project downloaded from the operator does not match its id");
    }
    // Extracted beside its final place, then renamed: a crash leaves no half project behind.
    fs::path partial = project_dir.string() + ".partial";
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    fs::create_directories(partial);
    RETURN_IF_ERROR(bundle::ExtractBundle(archive, partial));
    fs::rename(partial, project_dir);
  }
  fs::path run = fs::path(flags.data_dir) / "run";
  fs::create_directories(run / "sockets");
  json replica = spec["api"];
  replica["project_dir"] = project_dir.string();
  replica["replica_id"] = id;
  // The device plugin gives the container its GPUs; the replica does not choose among them.
  replica["gpu_ids"] = json::array();
  replica["models_cache"] = (fs::path(flags.data_dir) / "models").string();
  replica["models_manifest"] = (run / (id + ".models.json")).string();
  fs::path spec_path = run / (id + ".json");
  RETURN_IF_ERROR(WriteFileAtomic(spec_path, replica.dump()));
  Say(id, absl::StrCat("running ", flags.api, " version ", flags.predictor_id.substr(0, 12),
                       " (project ", project_id.substr(0, 12), ")"));
  return spec_path.string();
}

}  // namespace

int RunReplicaPod(const ReplicaPodRoleFlags& flags) {
  std::string id = flags.id;
  if (id.empty()) {
    const char* pod = std::getenv("POD_NAME");
    char host[256] = {};
    id = pod != nullptr && *pod != '\0'               ? pod
         : ::gethostname(host, sizeof(host) - 1) == 0 ? host
                                                      : "replica";
  }
  auto spec_path = Prepare(flags, id);
  if (!spec_path.ok()) {
    Say(id, std::string(spec_path.status().message()));
    return 1;
  }
  ReplicaRoleFlags replica;
  replica.id = id;
  replica.spec = *spec_path;
  replica.host = flags.host;
  replica.port = flags.port;
  replica.socket_dir = (fs::path(flags.data_dir) / "run" / "sockets").string();
  replica.python = flags.python;
  replica.data_dir = flags.data_dir;
  return RunReplica(replica);
}

}  // namespace cortex::apps
