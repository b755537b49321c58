// `cortex replica-pod` and `cortex worker-pod`: what a RealtimeAPI's pods and a batch job's
// pods run on the Kubernetes provider.
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
#include "common/instance_spec.h"
#include "common/process.h"
#include "common/status.h"
#include "common/util.h"
#include "net/http_client.h"

namespace cortex::apps {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One line on stderr, as the pod's log shows it: "replica-pod <id>: ...".
void Say(const char* role, const std::string& id, absl::string_view message) {
  std::cerr << role << " " << id << ": " << message << std::endl;
}

// GET `path` from the operator. Transport failures and 5xx are retried until `deadline`; any
// other answer but 200 is an error carrying the operator's message.
absl::StatusOr<std::string> OperatorGet(const std::string& operator_url, const std::string& token,
                                        const std::string& path,
                                        std::chrono::steady_clock::time_point deadline) {
  net::HttpCall call;
  call.url = operator_url + path;
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
          "the operator at ", operator_url, " did not answer GET ", path, ": ",
          result.ok() ? absl::StrCat("status ", result->status) : result.status().message()));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

// The pod's own name: `id`, else $POD_NAME, else the host name.
std::string PodId(const std::string& id, const char* fallback) {
  if (!id.empty()) return id;
  const char* pod = std::getenv("POD_NAME");
  char host[256] = {};
  return pod != nullptr && *pod != '\0'               ? pod
         : ::gethostname(host, sizeof(host) - 1) == 0 ? host
                                                      : fallback;
}

struct Fetched {
  json spec;  // the operator's answer
  fs::path project_dir;
  std::string token;
};

// GETs `spec_path` from the operator (an object with "api" and "project_id"), then the project
// it names into <data_dir>/projects/<id> (checked against its sha256; extracted beside its place
// and renamed, so a crash leaves no half project).
absl::StatusOr<Fetched> Fetch(const std::string& operator_url, const std::string& token_file,
                              const std::string& spec_path, const std::string& data_dir,
                              int wait_s) {
  auto token = ReadFile(token_file);
  if (!token.ok()) return Annotate(token.status(), "reading the operator's token");
  Fetched out;
  out.token = std::string(absl::StripAsciiWhitespace(*token));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  ASSIGN_OR_RETURN(std::string text, OperatorGet(operator_url, out.token, spec_path, deadline));
  out.spec = json::parse(text, nullptr, false);
  if (!out.spec.is_object() || !out.spec.contains("api") || !out.spec["api"].is_object() ||
      !out.spec.contains("project_id") || !out.spec["project_id"].is_string()) {
    return absl::InternalError("the operator's answer to GET " + spec_path + " is malformed");
  }
  std::string project_id = out.spec["project_id"];
  out.project_dir = fs::path(data_dir) / "projects" / project_id;
  if (!fs::exists(out.project_dir)) {
    ASSIGN_OR_RETURN(std::string archive,
                     OperatorGet(operator_url, out.token, "/v1/bundles/" + project_id, deadline));
    if (Sha256Hex(archive) != project_id) {
      return absl::DataLossError("the project downloaded from the operator does not match its id");
    }
    fs::path partial = out.project_dir.string() + ".partial";
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    fs::create_directories(partial);
    RETURN_IF_ERROR(bundle::ExtractBundle(archive, partial));
    fs::rename(partial, out.project_dir);
  }
  fs::create_directories(fs::path(data_dir) / "run" / "sockets");
  return out;
}

// The replica's spec file, as the local provider writes it (backends/local/replica_controller.cc).
absl::StatusOr<std::string> PrepareReplica(const ReplicaPodRoleFlags& flags,
                                           const std::string& id) {
  ASSIGN_OR_RETURN(
      Fetched fetched,
      Fetch(flags.operator_url, flags.token_file,
            absl::StrCat("/v1/apis/", net::UrlEncode(flags.api),
                         "/replica-spec?predictor_id=", net::UrlEncode(flags.predictor_id)),
            flags.data_dir, flags.wait_s));
  fs::path run = fs::path(flags.data_dir) / "run";
  // The device plugin gives the container its GPUs; the replica does not choose among them.
  json replica =
      ReplicaSpecFile(fetched.spec["api"],
                      {fetched.project_dir.string(), (fs::path(flags.data_dir) / "models").string(),
                       (run / (id + ".models.json")).string()},
                      id, /*gpu_ids=*/{});
  fs::path spec_path = run / (id + ".json");
  RETURN_IF_ERROR(WriteFileAtomic(spec_path, replica.dump()));
  Say("replica-pod", id,
      absl::StrCat("running ", flags.api, " version ", flags.predictor_id.substr(0, 12),
                   " (project ", fetched.project_dir.filename().string().substr(0, 12), ")"));
  return spec_path.string();
}

}  // namespace

int RunReplicaPod(const ReplicaPodRoleFlags& flags) {
  std::string id = PodId(flags.id, "replica");
  auto spec_path = PrepareReplica(flags, id);
  if (!spec_path.ok()) {
    Say("replica-pod", id, spec_path.status().message());
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

int RunWorkerPod(const WorkerPodRoleFlags& flags) {
  std::string id = PodId(flags.worker, "worker");
  auto fetched = Fetch(flags.operator_url, flags.token_file,
                       absl::StrCat("/v1/apis/", net::UrlEncode(flags.api), "/jobs/",
                                    net::UrlEncode(flags.job), "/worker-spec"),
                       flags.data_dir, flags.wait_s);
  if (!fetched.ok()) {
    Say("worker-pod", id, fetched.status().message());
    return 1;
  }
  // The worker's spec file, as the local provider writes it (backends/local/worker_controller.cc).
  json spec = WorkerSpecFile(
      fetched->spec["api"],
      {fetched->project_dir.string(), (fs::path(flags.data_dir) / "models").string(),
       (fs::path(flags.data_dir) / "run" / ("job-" + flags.job + ".models.json")).string()},
      fetched->spec.value("job_spec", json::object()));
  fs::path spec_path = fs::path(flags.data_dir) / "run" / ("job-" + flags.job + ".json");
  if (absl::Status st = WriteFileAtomic(spec_path, spec.dump()); !st.ok()) {
    Say("worker-pod", id, st.message());
    return 1;
  }
  // The environment and directory the local provider gives a worker (ProcessRunner::StartWorker).
  for (const auto& [key, value] : PythonRuntimeEnv(DefaultRuntimeDir())) {
    ::setenv(key.c_str(), value.c_str(), 1);
  }
  ::unsetenv("PYTHONHOME");
  ::setenv("CORTEX_OPERATOR_TOKEN", fetched->token.c_str(), 1);
  ::setenv("CORTEX_JOB_ID", flags.job.c_str(), 1);
  std::error_code ec;
  fs::current_path(fetched->project_dir, ec);
  Say("worker-pod", id, absl::StrCat("running job ", flags.job, " of ", flags.api));
  WorkerSetupRoleFlags setup;
  setup.id = id;
  setup.project_dir = fetched->project_dir.string();
  setup.python = flags.python;
  setup.data_dir = flags.data_dir;
  setup.spec = spec_path.string();
  setup.args = {"-u",
                "-m",
                "cortex_runtime.batch",
                "--spec",
                spec_path.string(),
                "--operator",
                flags.operator_url,
                "--job",
                flags.job,
                "--worker",
                id};
  return RunWorkerSetup(setup);
}

}  // namespace cortex::apps
