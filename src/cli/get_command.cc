// cortex get [API] [-w] [-v]: statuses of every API (in every environment when no -e is given),
// or one API's status, endpoint and history.
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "backends/kubernetes/yaml_stream.h"
#include "cli/commands.h"
#include "cli/operator_client.h"
#include "cli/table.h"
#include "common/job_status.h"
#include "common/json_fields.h"
#include "common/util.h"
#include "net/http_client.h"

namespace cortex::cli {
namespace {

using nlohmann::json;

// `object[key]` for a const document that may lack the key (a plain operator[] would be UB).
const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string FormatLatency(const json& ms) {
  if (!ms.is_number()) return "-";
  double v = ms.get<double>();
  if (v >= 1000) return absl::StrFormat("%.6g s", v / 1000);
  return absl::StrFormat("%.6g ms", v);
}

std::string Count(const json& stats, const char* key) {
  if (!stats.is_object()) return "-";
  int64_t v = stats.value(key, int64_t{0});
  return v == 0 ? "-" : std::to_string(v);
}

// The Cortex realtime columns for one API (without env and name).
std::vector<std::string> RealtimeCells(const json& api) {
  const json& status = Field(api, "status");
  const json& counts = Field(status, "replica_counts");
  auto total_failed = [](const json& c) {
    return c.value("failed", 0) + c.value("err_image_pull", 0) + c.value("killed", 0) +
           c.value("killed_oom", 0) + c.value("stalled", 0);
  };
  const json& stats = Field(Field(api, "metrics"), "network_stats");
  return {status.value("status", "unknown"),
          std::to_string(Field(counts, "updated").value("ready", 0)),
          std::to_string(Field(counts, "stale").value("ready", 0)),
          std::to_string(counts.value("requested", 0)),
          std::to_string(total_failed(Field(counts, "updated"))),
          FormatAge(UnixSeconds() - Field(api, "spec").value("last_updated", UnixSeconds())),
          stats.is_object() ? FormatLatency(stats["latency"]) : "-",
          Count(stats, "code_2xx"),
          Count(stats, "code_4xx"),
          Count(stats, "code_5xx")};
}

std::vector<Column> RealtimeColumns() {
  return {{"status"},      {"up-to-date"},  {"stale", true}, {"requested"}, {"failed", true},
          {"last update"}, {"avg request"}, {"2XX"},         {"4XX", true}, {"5XX", true}};
}

std::string PredictionTables(const json& metrics);
std::string ModelTable(const json& info);

std::string LastUpdate(const json& api) {
  return FormatAge(UnixSeconds() - Field(api, "spec").value("last_updated", UnixSeconds()));
}

// "name:weight name:weight", at most 50 characters (spec §14).
std::string SplitterWeights(const json& spec) {
  std::string out;
  for (const auto& t : spec.value("apis", json::array())) {
    absl::StrAppend(&out, out.empty() ? "" : " ", t.value("name", ""), ":", t.value("weight", 0));
  }
  return out.size() > 50 ? out.substr(0, 47) + "..." : out;
}

std::string RunningJobs(const json& api) {
  int running = 0;
  for (const auto& job : api.value("job_statuses", json::array())) {
    running += job.value("status", "") == "status_running";
  }
  return std::to_string(running);
}

// A job's time: RFC 3339 from the operator (unix seconds from an older one); `fallback` when it
// has none (an end time while running).
int64_t JobTime(const json& job, const char* key, int64_t fallback) {
  const json& value = Field(job, key);
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) return ParseRfc3339(value.get<std::string>()).value_or(fallback);
  return fallback;
}

bool HasJobTime(const json& job, const char* key) {
  return Field(job, key).is_string() || Field(job, key).is_number_integer();
}

// Cortex's time format, in local time: "02 Jan 06 15:04:05 MST".
std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm local{};
  localtime_r(&t, &local);
  char text[64];
  return std::string(text, std::strftime(text, sizeof(text), "%d %b %y %H:%M:%S %Z", &local));
}

std::string LatestJob(const json& api) {
  const json& jobs = Field(api, "job_statuses");
  if (!jobs.is_array() || jobs.empty()) return "-";
  const json& latest = jobs[0];  // newest first
  return absl::StrCat(latest.value("job_id", ""), " (submitted ",
                      FormatAge(UnixSeconds() - JobTime(latest, "start_time", UnixSeconds())),
                      " ago)");
}

std::string Duration(const json& job) {
  int64_t now = UnixSeconds();
  return FormatAge(JobTime(job, "end_time", now) - JobTime(job, "start_time", now));
}

std::string Progress(const json& job) {
  const json& m = Field(job, "batch_metrics");
  int64_t done = m.is_object() ? m.value("succeeded", int64_t{0}) : 0;
  return absl::StrCat(done, "/", job.value("total_batch_count", int64_t{0}));
}

// `cortex get BATCHAPI`: its jobs, newest first, and the endpoint to submit more.
std::string RenderBatchApi(const json& info) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : info.value("job_statuses", json::array())) {
    const json& m = Field(job, "batch_metrics");
    rows.push_back({job.value("job_id", ""), JobStatusText(job.value("status", "")), Progress(job),
                    m.is_object() ? std::to_string(m.value("failed", int64_t{0})) : "-",
                    FormatTime(JobTime(job, "start_time", UnixSeconds())), Duration(job)});
  }
  std::string out = rows.empty() ? "no submitted batch jobs\n"
                                 : RenderTable({{"job id"},
                                                {"status"},
                                                {"progress (succeeded/total)"},
                                                {"failed", true},
                                                {"start time"},
                                                {"duration"}},
                                               rows);
  absl::StrAppend(&out, "\nendpoint: ", info.value("endpoint", ""), "\n");
  return out;
}

// `cortex get API JOB`: status, batch and worker stats, a progress bar while running.
std::string RenderJob(const json& document) {
  const json& job = Field(document, "job_status");
  std::string status = job.value("status", "");
  std::string out =
      RenderKeyValues({{"job id", job.value("job_id", "")}, {"status", JobStatusText(status)}}) +
      "\n" +
      RenderKeyValues(
          {{"start time", FormatTime(JobTime(job, "start_time", UnixSeconds()))},
           {"end time",
            HasJobTime(job, "end_time") ? FormatTime(JobTime(job, "end_time", 0)) : "-"},
           {"duration", Duration(job)}});
  const json& m = Field(job, "batch_metrics");
  int64_t total = job.value("total_batch_count", int64_t{0});
  int64_t succeeded = m.is_object() ? m.value("succeeded", int64_t{0}) : 0;
  int64_t failed = m.is_object() ? m.value("failed", int64_t{0}) : 0;
  std::string avg =
      m.is_object() && Field(m, "average_time_per_batch").is_number()
          ? absl::StrFormat("%.6g s", Field(m, "average_time_per_batch").get<double>())
          : "-";
  absl::StrAppend(&out, "\nbatch stats\n",
                  RenderTable({{"total"}, {"succeeded"}, {"failed"}, {"avg time per batch"}},
                              {{std::to_string(total), std::to_string(succeeded),
                                std::to_string(failed), avg}}));
  if (status == "status_running" && total > 0) {
    constexpr int kWidth = 40;
    int64_t done = succeeded + failed;
    int filled = static_cast<int>(kWidth * done / total);
    absl::StrAppend(&out, "\n[", std::string(filled, '#'), std::string(kWidth - filled, '.'), "] ",
                    done * 100 / total, "%");
    if (done > 0 && Field(m, "average_time_per_batch").is_number()) {
      int64_t elapsed = UnixSeconds() - JobTime(job, "start_time", UnixSeconds());
      absl::StrAppend(&out, ", about ", FormatAge(elapsed * (total - done) / done), " left");
    }
    absl::StrAppend(&out, "\n");
  }
  if (const json& w = Field(job, "worker_counts"); w.is_object()) {
    absl::StrAppend(
        &out, "\nworker stats\n",
        RenderTable(
            {{"requested"}, {"running"}, {"failed", true}, {"succeeded", true}},
            {{std::to_string(job.value("workers", 0)), std::to_string(w.value("running", 0)),
              std::to_string(w.value("failed", 0)), std::to_string(w.value("succeeded", 0))}}));
  } else {
    absl::StrAppend(&out,
                    "\nworker stats are not available because this job is not currently running\n");
  }
  if (const json& dead = Field(job, "dead_letters"); dead.is_array() && !dead.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : dead) {
      rows.push_back({std::to_string(d.value("batch_index", 0)),
                      std::to_string(d.value("attempts", 0)), d.value("error", "")});
    }
    absl::StrAppend(&out, "\ndead-lettered batches\n",
                    RenderTable({{"batch"}, {"attempts"}, {"last error"}}, rows));
  }
  absl::StrAppend(&out, "\njob endpoint: ", document.value("endpoint", ""),
                  "\n\njob configuration\n", job.value("config", json::object()).dump(2), "\n");
  return out;
}

// v0.24's history: "api id | last deployed" ("8s"), newest first.
std::string HistoryTable(const json& info) {
  std::vector<std::vector<std::string>> history;
  for (const auto& v : info.value("api_versions", json::array())) {
    history.push_back(
        {v.value("api_id", ""), FormatAge(UnixSeconds() - v.value("last_updated", int64_t{0}))});
  }
  if (history.empty()) return "";
  return "\n" + RenderTable({{"api id"}, {"last deployed"}}, history);
}

// `cortex get API -v`: the API's configuration, as YAML.
std::string Configuration(const json& info) {
  return "\nconfiguration\n" + backends::kubernetes::ToYaml(Field(info, "spec"));
}

// `cortex get SPLITTER`: one row per target API, then the endpoint and an example request.
std::string RenderSplitter(const json& splitter, const json& all_apis) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : Field(splitter, "spec").value("apis", json::array())) {
    std::string name = t.value("name", "");
    std::vector<std::string> row = {
        name, std::to_string(t.value("weight", 0)), "-", "-", "-", "-", "-", "-"};
    for (const auto& a : all_apis) {
      if (Field(a, "spec").value("name", "") != name || !Field(a, "status").is_object()) continue;
      std::vector<std::string> cells = RealtimeCells(a);  // status .. 5XX
      row = {name,     std::to_string(t.value("weight", 0)),
             cells[0], cells[3],
             cells[5], cells[6],
             cells[7], cells[9]};
    }
    rows.push_back(row);
  }
  std::string out = RenderTable({{"apis"},
                                 {"weights"},
                                 {"status"},
                                 {"requested"},
                                 {"last update"},
                                 {"avg request"},
                                 {"2XX"},
                                 {"5XX", true}},
                                rows);
  std::string endpoint = splitter.value("endpoint", "");
  absl::StrAppend(&out, "\nlast updated: ", LastUpdate(splitter), "\nendpoint: ", endpoint,
                  "\nexample curl: curl ", endpoint,
                  " -X POST -H \"Content-Type: application/json\" -d @sample.json\n");
  return out;
}

// Every API of every environment (or of `common.env` alone).
absl::StatusOr<std::string> RenderList(const CommonFlags& common) {
  std::vector<Environment> envs;
  if (common.env.empty()) {
    auto config = LoadCliConfig();
    if (!config.ok()) return config.status();
    envs = config->environments;
    if (envs.empty()) {
      auto env = ResolveEnvironment("");  // explains how to configure one
      if (!env.ok()) return env.status();
    }
  } else {
    auto env = ResolveEnvironment(common.env);
    if (!env.ok()) return env.status();
    envs.push_back(*env);
  }
  json all = json::array();
  std::vector<std::vector<std::string>> rows, splitter_rows, batch_rows;
  std::string notes;
  for (const auto& env : envs) {
    OperatorClient client(env);
    auto apis = client.CallJson("GET", "/v1/apis");
    if (!apis.ok()) {
      if (!common.env.empty()) return apis.status();
      all.push_back({{"env_name", env.name},
                     {"apis", json::array()},
                     {"error", std::string(apis.status().message())}});
      absl::StrAppend(&notes, "unable to detect apis from the ", env.name, " environment; ",
                      std::string(apis.status().message()), "\n");
      continue;
    }
    all.push_back({{"env_name", env.name}, {"apis", *apis}, {"error", nullptr}});
    for (const auto& a : *apis) {
      std::string name = Field(a, "spec").value("name", "");
      if (Field(a, "spec").value("kind", "") == "BatchAPI") {
        batch_rows.push_back({env.name, name, RunningJobs(a), LatestJob(a), LastUpdate(a)});
        continue;
      }
      if (Field(a, "spec").value("kind", "") == "TrafficSplitter") {
        splitter_rows.push_back({env.name, name, SplitterWeights(Field(a, "spec")), LastUpdate(a)});
        continue;
      }
      std::vector<std::string> row = {env.name, name};
      for (auto& cell : RealtimeCells(a)) row.push_back(cell);
      rows.push_back(row);
    }
  }
  size_t failed = std::count_if(all.begin(), all.end(),
                                [](const json& e) { return !Field(e, "error").is_null(); });
  if (failed == all.size() && failed > 0) {
    // No environment answered: that is an error, not an empty cluster.
    if (failed == 1) return absl::UnavailableError(all[0]["error"].get<std::string>());
    return absl::UnavailableError(absl::StrCat("no environment answered:\n", notes));
  }
  if (common.output == "json") return all.dump(2) + "\n";
  std::string out;
  // The env column is shown only when listing every env.
  auto without_env = [&](std::vector<Column> columns, std::vector<std::vector<std::string>> table) {
    if (!common.env.empty()) {
      columns.erase(columns.begin());
      for (auto& row : table) row.erase(row.begin());
    }
    return RenderTable(columns, table);
  };
  if (rows.empty() && splitter_rows.empty() && batch_rows.empty()) {
    out = "no apis are deployed\n";
  }
  if (!batch_rows.empty()) {  // Cortex's order: batch, realtime, splitters
    out += without_env(
        {{"env"}, {"batch api"}, {"running jobs"}, {"latest job id"}, {"last update"}}, batch_rows);
  }
  if (!rows.empty()) {
    if (!out.empty()) out += "\n";
    std::vector<Column> columns = {{"env"}, {"realtime api"}};
    for (auto& c : RealtimeColumns()) columns.push_back(c);
    out += without_env(columns, rows);
  }
  if (!splitter_rows.empty()) {
    if (!out.empty()) out += "\n";
    out += without_env({{"env"}, {"traffic splitter"}, {"apis"}, {"last update"}}, splitter_rows);
  }
  if (!notes.empty()) absl::StrAppend(&out, "\n", notes);
  return out;
}

absl::StatusOr<std::string> RenderApi(const std::string& api, bool verbose,
                                      const CommonFlags& common) {
  auto client = OperatorClient::ForEnvironment(common.env);
  if (!client.ok()) return client.status();
  auto info = client->CallJson("GET", "/v1/apis/" + api);
  if (!info.ok()) return info.status();
  if (common.output == "json") return json::array({*info}).dump(2) + "\n";
  std::string kind = (*info)["spec"].value("kind", "");
  if (kind == "BatchAPI" || kind == "TrafficSplitter") {
    std::string out;
    if (kind == "BatchAPI") {
      out = RenderBatchApi(*info);
    } else {
      auto all = client->CallJson("GET", "/v1/apis");
      if (!all.ok()) return all.status();
      out = RenderSplitter(*info, *all);
    }
    absl::StrAppend(&out, HistoryTable(*info));
    if (verbose) absl::StrAppend(&out, Configuration(*info));
    return out;
  }
  std::string out = RenderTable(RealtimeColumns(), {RealtimeCells(*info)});
  absl::StrAppend(&out, PredictionTables((*info)["metrics"]));
  if (const json& batching = Field(Field(*info, "metrics"), "batch_stats"); batching.is_object()) {
    const json& average = Field(batching, "avg_batch_size");
    absl::StrAppend(&out, "\naverage batch size: ",
                    average.is_number() ? absl::StrFormat("%.2f", average.get<double>()) : "-",
                    " (", IntField(batching, "batches"), " batches)\n");
  }
  absl::StrAppend(&out, "\nendpoint: ", (*info)["endpoint"].get<std::string>(), "\n");
  absl::StrAppend(&out, ModelTable(*info));
  absl::StrAppend(&out, HistoryTable(*info));
  if (verbose) absl::StrAppend(&out, Configuration(*info));
  return out;
}

// The models an API serves, read as Cortex did from a GET on its endpoint: "model name | model
// version | edit time", the latest version tagged. Empty for an API without models.
std::string ModelTable(const json& info) {
  const json& predictor = Field(Field(info, "spec"), "predictor");
  if (!predictor.is_object() ||
      (Field(predictor, "model_path").is_null() && Field(predictor, "models").is_null())) {
    return "";
  }
  if (Field(Field(info, "status"), "status_code") != "status_live") {
    return "\nmodels: the model table is available when the api is live\n";
  }
  net::HttpCall call;
  call.url = info.value("endpoint", "");
  call.timeout_ms = 10'000;
  absl::StatusOr<net::HttpResult> answer = net::Fetch(call);
  json summary =
      answer.ok() && answer->status == 200 ? json::parse(answer->body, nullptr, false) : json();
  const json& metadata = Field(summary, "model_metadata");
  if (!metadata.is_object()) {
    return absl::StrCat("\nmodels: cannot read them from ", call.url, " (",
                        answer.ok() ? absl::StrCat("status ", answer->status)
                                    : std::string(answer.status().message()),
                        ")\n");
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, model] : metadata.items()) {
    const json& versions = Field(model, "versions");
    const json& timestamps = Field(model, "timestamps");
    if (!versions.is_array()) continue;
    for (size_t i = 0; i < versions.size(); ++i) {
      std::string version = versions[i].is_string() ? versions[i].get<std::string>() : "";
      if (i + 1 == versions.size()) version += " (latest)";
      int64_t edited =
          timestamps.is_array() && i < timestamps.size() && timestamps[i].is_number_integer()
              ? timestamps[i].get<int64_t>()
              : 0;
      rows.push_back(
          {name, version, edited > 0 ? FormatAge(UnixSeconds() - edited) + " ago" : "-"});
    }
  }
  return absl::StrCat("\n", RenderTable({{"model name"}, {"model version"}, {"edit time"}}, rows));
}

// Prediction monitoring: "class | count" (classes sorted by name, at most 20, as v0.24) or
// "min | max | avg" (%.9g, as v0.24).
std::string PredictionTables(const json& metrics) {
  if (!metrics.is_object()) return "";
  if (const json& classes = Field(metrics, "class_distribution"); classes.is_object()) {
    if (classes.empty()) return "";
    constexpr size_t kMaxClasses = 20;
    std::vector<std::vector<std::string>> rows;
    for (const auto& [label, n] : classes.items()) {  // a JSON object: sorted by name
      if (rows.size() == kMaxClasses) break;
      rows.push_back({label, std::to_string(n.get<int64_t>())});
    }
    std::string out = "\n" + RenderTable({{"class"}, {"count"}}, rows);
    if (classes.size() > kMaxClasses) {
      absl::StrAppend(&out, "listing at most ", kMaxClasses, " classes (", classes.size(),
                      " in all); `cortex get <api> -o json` has every one\n");
    }
    return out;
  }
  if (metrics.contains("regression_stats")) {
    const json& r = Field(metrics, "regression_stats");
    auto cell = [&](const char* key) {
      return r.is_object() ? absl::StrFormat("%.9g", r.value(key, 0.0)) : std::string("-");
    };
    return "\n" +
           RenderTable({{"min"}, {"max"}, {"avg"}}, {{cell("min"), cell("max"), cell("avg")}});
  }
  return "";
}

volatile std::sig_atomic_t stop_watching = 0;

absl::StatusOr<std::string> RenderJobOf(const std::string& api, const std::string& job,
                                        const CommonFlags& common) {
  auto client = OperatorClient::ForEnvironment(common.env);
  if (!client.ok()) return client.status();
  auto document = client->CallJson("GET", absl::StrCat("/v1/apis/", api, "/jobs/", job));
  if (!document.ok()) return document.status();
  if (common.output == "json") return document->dump(2) + "\n";
  return RenderJob(*document);
}

}  // namespace

int Get(const std::string& api, const std::string& job, bool verbose, bool watch,
        const CommonFlags& common) {
  auto render = [&] {
    if (!job.empty()) return RenderJobOf(api, job, common);
    return api.empty() ? RenderList(common) : RenderApi(api, verbose, common);
  };
  if (!watch) {
    auto out = render();
    if (!out.ok()) return Fail(out.status());
    std::cout << *out;
    return 0;
  }
  std::signal(SIGINT, [](int) { stop_watching = 1; });
  while (!stop_watching) {
    auto out = render();
    std::string text =
        out.ok() ? *out : absl::StrCat("error: ", std::string(out.status().message()), "\n");
    if (::isatty(STDOUT_FILENO)) std::cout << "\033[H\033[2J";  // clear the screen
    std::cout << text << std::flush;
    for (int i = 0; i < 20 && !stop_watching; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return 0;
}

}  // namespace cortex::cli
