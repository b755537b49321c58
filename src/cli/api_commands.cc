// cortex deploy | get | logs | delete | predict | version.
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bundle/bundle.h"
#include "cli/commands.h"
#include "cli/operator_client.h"
#include "cli/table.h"
#include "common/util.h"
#include "config/api_config.h"

namespace cortex::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::StatusOr<OperatorClient> Client(const CommonFlags& common) {
  return OperatorClient::ForEnvironment(common.env);
}

volatile std::sig_atomic_t interrupted = 0;

// The project size prompts of Cortex (spec §1): a file over 10 MiB may be left out; a project
// of 1000 files or more, or over 10 MiB in all, needs a confirmation. `yes` skips both.
bool ConfirmProjectSize(std::vector<bundle::BundleFile>& files, bool yes) {
  constexpr uint64_t kLargeFile = 10 * 1024 * 1024;
  constexpr uint64_t kLargeProject = 10 * 1024 * 1024;
  constexpr size_t kManyFiles = 1000;
  if (yes) return true;
  std::erase_if(files, [&](const bundle::BundleFile& f) {
    return f.size > kLargeFile &&
           !Confirm(absl::StrFormat("%s is %.1f MiB; upload it?", f.path, f.size / 1048576.0),
                    WithoutTerminal::kYes);
  });
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  if (files.size() >= kManyFiles || total > kLargeProject) {
    return Confirm(
        absl::StrFormat(
            "your project has %d files (%.1f MiB in all) and will be uploaded whole; continue?",
            files.size(), total / 1048576.0),
        WithoutTerminal::kYes);
  }
  return true;
}

}  // namespace

int Fail(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return 1;
}

bool Confirm(const std::string& question, WithoutTerminal without_terminal) {
  if (!::isatty(STDIN_FILENO)) {
    if (without_terminal == WithoutTerminal::kYes) {
      std::cerr << "note: " << question << " (no terminal to ask: yes)\n";
      return true;
    }
    std::cerr << "error: " << question << ": pass --yes to confirm (no terminal to ask)\n";
    return false;
  }
  std::cout << question << " (y/n): " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "yes";
}

absl::StatusOr<ProjectConfig> ReadProjectConfig(const std::string& config) {
  fs::path config_path = config.empty() ? fs::path("cortex.yaml") : fs::path(config);
  if (fs::is_directory(config_path)) config_path /= "cortex.yaml";
  if (!fs::exists(config_path)) {
    return absl::NotFoundError(absl::StrCat(config_path.string(), ": file does not exist"));
  }
  config_path = fs::absolute(config_path).lexically_normal();
  auto yaml = ReadFile(config_path);
  if (!yaml.ok()) return yaml.status();
  return ProjectConfig{config_path, config_path.parent_path(), std::move(*yaml)};
}

config::ParseOptions ProjectConfig::ParseOptions() const {
  config::ParseOptions parse;
  parse.file_name = file.filename().string();
  parse.file_exists = [root = root](const std::string& p) { return fs::is_regular_file(root / p); };
  parse.dir_exists = [root = root](const std::string& p) { return fs::is_directory(root / p); };
  return parse;
}

int Deploy(const DeployFlags& flags, const CommonFlags& common) {
  if (flags.dry_run) return DeployDryRun(flags);
  auto project = ReadProjectConfig(flags.config);
  if (!project.ok()) return Fail(project.status());
  const fs::path& config_path = project->file;
  const fs::path& root = project->root;

  // Validate everything before anything is uploaded.
  auto apis = config::ParseApiConfigs(project->yaml, project->ParseOptions());
  if (!apis.ok()) return Fail(apis.status());

  auto files = bundle::ListProjectFiles(root, config_path.filename().string());
  if (!files.ok()) return Fail(files.status());
  if (!ConfirmProjectSize(*files, flags.yes)) {
    std::cerr << "deployment cancelled\n";
    return 1;
  }
  auto archive = bundle::CreateBundle(root, *files);
  if (!archive.ok()) return Fail(archive.status());
  std::string project_id = Sha256Hex(*archive);

  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  auto has = client->Call("HEAD", "/v1/bundles/" + project_id, "", 30'000);
  if (!has.ok() && has.status().code() != absl::StatusCode::kNotFound) return Fail(has.status());
  if (!has.ok()) {
    auto put = client->Call("PUT", "/v1/bundles/" + project_id, *archive);
    if (!put.ok()) return Fail(put.status());
  }
  json request = {{"config", project->yaml},
                  {"config_file_name", config_path.filename().string()},
                  {"project_id", project_id},
                  {"force", flags.force}};
  auto results = client->CallJson("POST", "/v1/deploy", request.dump());
  if (!results.ok()) return Fail(results.status());
  return PrintDeployResults(*results, common, /*hints=*/true);
}

int Patch(const DeployFlags& flags, const CommonFlags& common) {
  auto project = ReadProjectConfig(flags.config);
  if (!project.ok()) return Fail(project.status());
  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  json request = {{"config", project->yaml},
                  {"config_file_name", project->file.filename().string()},
                  {"force", flags.force}};
  auto results = client->CallJson("POST", "/v1/patch", request.dump());
  if (!results.ok()) return Fail(results.status());
  return PrintDeployResults(*results, common, /*hints=*/false);
}

int Refresh(const std::string& api, bool force, const CommonFlags& common) {
  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  auto result = client->CallJson(
      "POST", absl::StrCat("/v1/apis/", api, "/refresh", force ? "?force=true" : ""));
  if (!result.ok()) return Fail(result.status());
  if (common.output == "json") {
    std::cout << result->dump(2) << "\n";
  } else {
    std::cout << (*result)["message"].get<std::string>() << "\n";
  }
  return 0;
}

std::string DeployHints(const json& results, const std::string& env) {
  std::string name = results.size() == 1 ? results[0]["api"].value("name", "") : "<api_name>";
  std::string env_arg;
  auto config = LoadCliConfig();
  if (!env.empty() && config.ok() && env != config->default_environment) env_arg = " --env " + env;
  std::vector<std::pair<std::string, std::string>> hints = {
      {"cortex get" + env_arg, "(show api statuses)"},
      {absl::StrCat("cortex get ", name, env_arg), "(show api info)"}};
  for (const json& r : results) {  // batch APIs have job logs, not API logs
    if (r.value("error", "").empty() && r["api"].value("kind", "") == "RealtimeAPI") {
      hints.emplace_back(absl::StrCat("cortex logs ", name, env_arg), "(stream api logs)");
      break;
    }
  }
  return RenderKeyValues(hints, "", 2);
}

int PrintDeployResults(const json& results, const CommonFlags& common, bool hints) {
  bool failed = false;
  if (common.output == "json") {
    std::cout << results.dump(2) << "\n";
    for (const auto& r : results) failed = failed || !r.value("error", "").empty();
    return failed ? 1 : 0;
  }
  for (const auto& r : results) {
    if (!r.value("error", "").empty()) {
      std::cerr << "error: " << r["error"].get<std::string>() << "\n";
      failed = true;
    } else {
      std::cout << r["message"].get<std::string>() << "\n";
    }
  }
  bool any_deployed = std::any_of(results.begin(), results.end(),
                                  [](const json& r) { return r.value("error", "").empty(); });
  if (hints && any_deployed) std::cout << "\n" << DeployHints(results, common.env);
  return failed ? 1 : 0;
}

int Logs(const std::string& api, const std::string& job, bool follow, const CommonFlags& common) {
  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  std::signal(SIGINT, [](int) { interrupted = 1; });
  int64_t offset = 0;
  while (!interrupted) {
    auto result = client->Call("GET",
                               absl::StrCat("/v1/logs/", api, "?offset=", offset,
                                            job.empty() ? "" : absl::StrCat("&job=", job)),
                               "", 30'000);
    if (!result.ok()) return Fail(result.status());
    std::cout << result->body << std::flush;
    auto next = result->headers.find("x-cortex-next-offset");
    if (next == result->headers.end() || !absl::SimpleAtoi(next->second, &offset)) {
      return Fail(absl::DataLossError("the operator's answer has no X-Cortex-Next-Offset"));
    }
    // The operator sends at most 1 MiB at a time: without --follow, read up to the end that was
    // there (a shorter chunk), not just the first MiB.
    constexpr size_t kChunkBytes = 1 << 20;
    if (!follow && result->body.size() < kChunkBytes) break;
    if (result->body.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return 0;
}

int Delete(const std::string& api, const std::string& job, bool force, const CommonFlags& common) {
  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  if (!job.empty()) {  // stop one batch job
    auto result = client->CallJson("DELETE", absl::StrCat("/v1/apis/", api, "/jobs/", job));
    if (!result.ok()) return Fail(result.status());
    std::cout << (common.output == "json" ? result->dump(2)
                                          : (*result)["message"].get<std::string>())
              << "\n";
    return 0;
  }
  if (!force && ::isatty(STDIN_FILENO)) {
    auto info = client->CallJson("GET", "/v1/apis/" + api);
    if (!info.ok()) return Fail(info.status());
    const json& status = (*info)["status"];
    int ready = status.is_object() ? status["replica_counts"]["updated"].value("ready", 0) : 0;
    if (ready > 2) {
      std::cout << "are you sure you want to delete " << api << " (which has " << ready
                << " live replicas)? (y/n): " << std::flush;
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "yes") return 1;
    }
  }
  auto result = client->CallJson("DELETE", "/v1/apis/" + api);
  if (!result.ok()) return Fail(result.status());
  if (common.output == "json") {
    std::cout << result->dump(2) << "\n";
  } else {
    std::cout << (*result)["message"].get<std::string>() << "\n";
  }
  return 0;
}

int Predict(const std::string& api, const std::string& json_file, const CommonFlags& common) {
  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  auto info = client->CallJson("GET", "/v1/apis/" + api);
  if (!info.ok()) return Fail(info.status());
  std::string kind = (*info)["spec"].value("kind", "");
  if (kind == "BatchAPI") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(api, " is a BatchAPI: submit a job with a POST to ",
                     (*info).value("endpoint", ""), " (see docs/batch.md)")));
  }
  const json& status = (*info)["status"];
  if (kind == "RealtimeAPI" && status.is_object() &&
      status["replica_counts"]["updated"].value("ready", 0) +
              status["replica_counts"]["stale"].value("ready", 0) ==
          0) {
    return Fail(absl::UnavailableError(
        absl::StrCat(api, " is not ready yet (no replica is live); check `cortex get ", api, "`")));
  }
  auto payload = ReadFile(json_file);
  if (!payload.ok()) return Fail(payload.status());
  net::HttpCall call;
  call.method = "POST";
  call.url = (*info)["endpoint"].get<std::string>();
  call.body = *payload;
  call.headers = {{"Content-Type", "application/json"}};
  auto result = net::Fetch(call);
  if (!result.ok()) return Fail(result.status());
  // As Cortex v0.24: the answer as JSON, a text answer as a JSON string ("setosa", quoted).
  json body = json::parse(result->body, nullptr, false);
  if (body.is_discarded()) body = result->body;
  std::cout << body.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  return result->status < 400 ? 0 : 1;
}

int Version(const CommonFlags& common) {
  std::cout << "cli version: " << kCortexVersion << "\n";
  auto client = Client(common);
  if (!client.ok()) return 0;
  auto info = client->CallJson("GET", "/v1/info");
  if (info.ok()) std::cout << "cluster version: " << info->value("version", "unknown") << "\n";
  return 0;
}

int Dashboard(const CommonFlags& common) {
  auto client = Client(common);
  if (!client.ok()) return Fail(client.status());
  // The token goes in the fragment, which the browser keeps to itself: the page reads it, keeps
  // it for the tab and takes it out of the address bar (docs/dashboard.md).
  std::string url =
      absl::StrCat(client->env().operator_endpoint,
                   "/dashboard/#token=", net::UrlEncode(client->env().operator_token));
  auto info = client->CallJson("GET", "/v1/info");
  if (common.output == "json") {
    std::cout << json{{"url", url}, {"reachable", info.ok()}}.dump(2) << "\n";
  } else {
    std::cout << "open the dashboard of environment " << client->env().name << " at\n\n  " << url
              << "\n\nthe link holds the operator's token: share it as you would the token\n";
  }
  if (!info.ok()) return Fail(info.status());
  return 0;
}

}  // namespace cortex::cli
