#include "operator/batch_jobs.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "common/glob.h"
#include "common/status.h"
#include "common/util.h"
#include "config/api_config.h"
#include "s3/s3_client.h"

namespace cortex::op {

namespace fs = std::filesystem;
using nlohmann::json;
using store::JobRecord;

namespace {

constexpr size_t kMaxItemBytes = 256 * 1024;         // per item and per batch (spec §11)
constexpr size_t kMaxSubmissionBytes = 10 << 20;     // per request
constexpr int64_t kStaleCompletionMs = 10 * 60'000;  // a claim older than this is taken over
constexpr int kMaxWorkerFailuresPerWorker = 5;       // then the job fails (a crash loop)

int64_t NowMs() { return UnixNanos() / 1'000'000; }

bool Terminal(const std::string& status) {
  return status != "status_running" && status != "status_enqueuing";
}

absl::StatusOr<int> PositiveInt(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be specified"));
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be an integer >= 1"));
  }
  return it->get<int>();
}

// Groups JSON values into JSON-array batches of `size`, each within the message limit.
absl::StatusOr<std::vector<std::string>> Chunk(const std::vector<std::string>& items, int size) {
  std::vector<std::string> batches;
  for (size_t i = 0; i < items.size(); i += static_cast<size_t>(size)) {
    std::string batch = "[";
    for (size_t j = i; j < std::min(items.size(), i + size); ++j) {
      if (j > i) batch += ",";
      batch += items[j];
    }
    batch += "]";
    if (batch.size() > kMaxItemBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot enqueue message because its size (", batch.size(),
                       " bytes) exceeds the 262144 bytes limit; use a smaller batch_size"));
    }
    batches.push_back(std::move(batch));
  }
  return batches;
}

// The files a lister names: local paths (absolute or file://), directories walked recursively,
// filtered by the includes and excludes globs (matched against the path as written).
absl::StatusOr<std::vector<std::string>> ListFiles(const json& lister, const std::string& where) {
  auto paths = lister.find("s3_paths");
  if (paths == lister.end() || !paths->is_array() || paths->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "s3_paths: must be a list with at least one path"));
  }
  auto globs = [&](const char* key) -> absl::StatusOr<std::vector<std::string>> {
    std::vector<std::string> out;
    auto it = lister.find(key);
    if (it == lister.end() || it->is_null()) return out;
    if (!it->is_array())
      return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be a list"));
    for (const auto& g : *it) {
      if (!g.is_string())
        return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be strings"));
      out.push_back(g.get<std::string>());
    }
    return out;
  };
  ASSIGN_OR_RETURN(std::vector<std::string> includes, globs("includes"));
  ASSIGN_OR_RETURN(std::vector<std::string> excludes, globs("excludes"));
  std::vector<std::string> files;
  for (const auto& p : *paths) {
    if (!p.is_string())
      return absl::InvalidArgumentError(absl::StrCat(where, "s3_paths: must be strings"));
    std::string path = p.get<std::string>();
    auto keep = [&](const std::string& shown) {
      auto matches = [&](const std::string& glob) { return GlobMatch(glob, shown); };
      if (!includes.empty() && std::none_of(includes.begin(), includes.end(), matches)) return;
      if (std::any_of(excludes.begin(), excludes.end(), matches)) return;
      files.push_back(shown);
    };
    if (absl::StartsWith(path, "s3://")) {
      auto location = s3::ParseS3Path(path);
      if (!location.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "s3_paths: ", std::string(location.status().message())));
      }
      auto objects = S3FromEnvironment().List(location->bucket, location->key);
      if (!objects.ok()) {
        return absl::Status(
            objects.status().code(),
            absl::StrCat(where, "s3_paths: ", path, ": ", std::string(objects.status().message())));
      }
      for (const auto& object : *objects) {
        keep(absl::StrCat("s3://", location->bucket, "/", object.key));
      }
      continue;
    }
    bool scheme = absl::StartsWith(path, "file://");
    std::string local = scheme ? path.substr(7) : path;
    if (local.empty() || local[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "s3_paths: ", path,
                       ": must be an absolute local path or a file:// url (or s3://)"));
    }
    std::error_code ec;
    std::vector<std::string> found;
    if (fs::is_directory(local, ec)) {
      for (auto it = fs::recursive_directory_iterator(local, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) found.push_back(it->path().string());
      }
    } else if (fs::is_regular_file(local, ec)) {
      found.push_back(local);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, "s3_paths: ", path, ": not found"));
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) keep(scheme ? "file://" + f : f);
  }
  if (files.empty()) return absl::InvalidArgumentError("no s3 files match search criteria");
  return files;
}

// The JSON values of a file, one per line (JSON lines; blank lines are skipped).
absl::Status ReadJsonValues(const std::string& shown_path, std::vector<std::string>& out) {
  std::string content;
  if (absl::StartsWith(shown_path, "s3://")) {
    auto location = s3::ParseS3Path(shown_path);
    if (!location.ok()) return location.status();
    auto object = S3FromEnvironment().Get(location->bucket, location->key);
    if (!object.ok()) return object.status();
    content = std::move(*object);
  } else {
    std::string path = absl::StartsWith(shown_path, "file://") ? shown_path.substr(7) : shown_path;
    auto text = ReadFile(path);
    if (!text.ok()) return absl::NotFoundError(absl::StrCat(shown_path, ": cannot open file"));
    content = std::move(*text);
  }
  std::istringstream in(content);
  std::string line;
  int64_t index = 0;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json value = json::parse(line, nullptr, false);
    if (value.is_discarded()) {
      return absl::InvalidArgumentError(
          absl::StrCat(shown_path, ": item ", index, " is not valid JSON (one value per line)"));
    }
    std::string item = value.dump();
    if (item.size() > kMaxItemBytes) {
      return absl::InvalidArgumentError(absl::StrCat(shown_path, ": item ", index, " has size ",
                                                     item.size(),
                                                     " bytes which exceeds the limit (262144 "
                                                     "bytes)"));
    }
    out.push_back(std::move(item));
    ++index;
  }
  return absl::OkStatus();
}

}  // namespace

s3::Client S3FromEnvironment() {
  s3::ClientOptions options;
  if (const char* region = std::getenv("AWS_REGION"); region && *region) options.region = region;
  if (const char* endpoint = std::getenv("CORTEX_S3_ENDPOINT"); endpoint && *endpoint) {
    options.endpoint = endpoint;
  }
  options.credentials = s3::CredentialsFromEnvironment();
  return s3::Client(options);
}

absl::StatusOr<JobPlan> PlanJob(const json& submission) {
  if (!submission.is_object()) {
    return absl::InvalidArgumentError("the job submission must be a JSON object");
  }
  for (const auto& [key, value] : submission.items()) {
    static const char* kKeys[] = {"workers",          "config",          "item_list",
                                  "file_path_lister", "delimited_files", "timeout"};
    if (std::none_of(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return key == k; })) {
      return absl::InvalidArgumentError(absl::StrCat("key \"", key, "\" is not supported"));
    }
  }
  RETURN_IF_ERROR(PositiveInt(submission, "workers", "").status());
  if (submission.contains("config") && !submission["config"].is_object() &&
      !submission["config"].is_null()) {
    return absl::InvalidArgumentError("config: must be a map");
  }
  int sources = submission.contains("item_list") + submission.contains("file_path_lister") +
                submission.contains("delimited_files");
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "please specify exactly one of the following fields: item_list, file_path_lister, "
        "delimited_files");
  }
  // Unknown keys inside a source are errors too (a typo like "include" must not pass silently).
  auto check_keys = [](const json& section, const char* name,
                       std::initializer_list<const char*> allowed) -> absl::Status {
    if (!section.is_object())
      return absl::InvalidArgumentError(absl::StrCat(name, ": must be a map"));
    for (const auto& [key, value] : section.items()) {
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* k) { return key == k; })) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": key \"", key, "\" is not supported"));
      }
    }
    return absl::OkStatus();
  };
  JobPlan plan;
  if (submission.contains("item_list")) {
    const json& list = submission["item_list"];
    RETURN_IF_ERROR(check_keys(list, "item_list", {"items", "batch_size"}));
    ASSIGN_OR_RETURN(int batch_size, PositiveInt(list, "batch_size", "item_list: "));
    auto items = list.find("items");
    if (items == list.end() || !items->is_array() || items->empty()) {
      return absl::InvalidArgumentError("item_list: items: must be a list with at least one item");
    }
    std::vector<std::string> encoded;
    for (size_t i = 0; i < items->size(); ++i) {
      std::string item = (*items)[i].dump();
      if (item.size() > kMaxItemBytes) {
        return absl::InvalidArgumentError(absl::StrCat("item ", i, " has size ", item.size(),
                                                       " bytes which exceeds the limit (262144 "
                                                       "bytes)"));
      }
      encoded.push_back(std::move(item));
    }
    ASSIGN_OR_RETURN(plan.batches, Chunk(encoded, batch_size));
    return plan;
  }
  bool delimited = submission.contains("delimited_files");
  const char* key = delimited ? "delimited_files" : "file_path_lister";
  const json& lister = submission[key];
  RETURN_IF_ERROR(check_keys(lister, key, {"s3_paths", "includes", "excludes", "batch_size"}));
  std::string where = absl::StrCat(key, ": ");
  ASSIGN_OR_RETURN(int batch_size, PositiveInt(lister, "batch_size", where));
  ASSIGN_OR_RETURN(plan.listed, ListFiles(lister, where));
  std::vector<std::string> items;
  if (delimited) {
    for (const auto& file : plan.listed) RETURN_IF_ERROR(ReadJsonValues(file, items));
    if (items.empty()) {
      return absl::InvalidArgumentError("unable to enqueue batches because no data was found");
    }
  } else {
    for (const auto& file : plan.listed) items.push_back(json(file).dump());
  }
  ASSIGN_OR_RETURN(plan.batches, Chunk(items, batch_size));
  return plan;
}

BatchJobs::BatchJobs(BatchOptions options, std::unique_ptr<store::JobQueue> queue,
                     backends::Backend& backend)
    : options_(std::move(options)), queue_(std::move(queue)), backend_(backend) {}

std::string BatchJobs::JobLogPath(const std::string& api_name, const std::string& job_id) const {
  return absl::StrCat(options_.data_dir, "/logs/jobs/", api_name, "/", job_id, ".log");
}

void BatchJobs::JobLog(const JobRecord& job, const std::string& line) const {
  std::ofstream out(JobLogPath(job.api_name, job.id), std::ios::app);
  out << "[operator] " << line << "\n";
}

absl::StatusOr<json> BatchJobs::Submit(const store::ApiRecord& api, const std::string& body,
                                       bool dry_run, std::string* dry_run_text) {
  if (body.size() > kMaxSubmissionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the job submission is ", body.size(), " bytes; the limit is 10 MiB"));
  }
  json submission = json::parse(body, nullptr, false);
  if (submission.is_discarded()) {
    return absl::InvalidArgumentError("the job submission is not valid JSON");
  }
  ASSIGN_OR_RETURN(JobPlan plan, PlanJob(submission));
  int64_t timeout_s = 0;
  if (auto t = submission.find("timeout"); t != submission.end() && !t->is_null()) {
    if (t->is_number_integer() && t->get<int64_t>() > 0) {
      timeout_s = t->get<int64_t>();
    } else if (t->is_string()) {
      auto parsed = config::ParseDurationSeconds(t->get<std::string>());
      timeout_s = parsed.ok() ? *parsed : 0;
    }
    if (timeout_s <= 0) {
      return absl::InvalidArgumentError(
          "timeout: must be a positive number of seconds or a duration like \"30m\"");
    }
  }
  if (dry_run) {
    std::string text;
    for (const auto& f : plan.listed) absl::StrAppend(&text, f, "\n");
    absl::StrAppend(&text, "validations passed\n");
    *dry_run_text = text;
    return json::object();
  }
  JobRecord job;
  job.id = DecreasingHexId();
  job.api_name = api.name;
  job.api_id = api.api_id;
  job.workers = submission["workers"].get<int>();
  job.total_batches = static_cast<int64_t>(plan.batches.size());
  job.start_time = UnixSeconds();
  job.timeout_s = timeout_s;
  job.max_attempts = options_.max_attempts;
  json spec = {{"job_id", job.id},
               {"api_name", api.name},
               {"workers", job.workers},
               {"config", submission.value("config", json::object())},
               {"api_id", api.api_id},
               {"spec_id", api.spec_id},
               {"predictor_id", api.predictor_id},
               {"sqs_url", nullptr},
               {"total_batch_count", job.total_batches},
               {"start_time", job.start_time},
               {"timeout", timeout_s > 0 ? json(timeout_s) : json()},
               {"max_attempts", job.max_attempts}};
  if (spec["config"].is_null()) spec["config"] = json::object();
  job.spec_json = spec.dump();
  fs::create_directories(fs::path(JobLogPath(api.name, job.id)).parent_path());
  RETURN_IF_ERROR(queue_->CreateJob(job, plan.batches));
  JobLog(job, absl::StrCat("job ", job.id, " submitted: ", job.total_batches, " batches, ",
                           job.workers, " worker(s)"));
  return spec;
}

json BatchJobs::JobStatus(const JobRecord& job) {
  json status = json::parse(job.spec_json);
  status["status"] = job.status;
  status["end_time"] = job.end_time > 0 ? json(job.end_time) : json();
  auto counts = queue_->Counts(job.id);
  if (counts.ok()) {
    status["batches_in_queue"] =
        Terminal(job.status) ? json() : json(counts->queued + counts->leased);
    status["batch_metrics"] = {
        {"succeeded", counts->succeeded},
        {"failed", counts->dead},
        {"average_time_per_batch",
         counts->succeeded > 0 ? json(counts->time_sum_s / counts->succeeded) : json()}};
  }
  auto dead = queue_->DeadLetters(job.id);
  if (dead.ok()) {
    json letters = json::array();
    for (const auto& d : *dead) {
      letters.push_back({{"batch_index", d.index}, {"attempts", d.attempts}, {"error", d.error}});
    }
    status["dead_letters"] = letters;
  }
  json workers = {{"pending", 0}, {"initializing", 0}, {"running", 0}, {"succeeded", 0},
                  {"failed", 0},  {"stalled", 0},      {"unknown", 0}};
  if (auto list = queue_->ListWorkers(); list.ok()) {
    for (const auto& w : *list) {
      if (w.job_id != job.id) continue;
      std::string key = w.state == "running"     ? "running"
                        : w.state == "succeeded" ? "succeeded"
                                                 : "failed";
      workers[key] = workers[key].get<int>() + 1;
    }
  }
  status["worker_counts"] = Terminal(job.status) ? json() : workers;
  return status;
}

absl::StatusOr<json> BatchJobs::Describe(const store::ApiRecord& api, const std::string& job_id,
                                         const std::string& endpoint) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, queue_->GetJob(job_id));
  if (!job || job->api_name != api.name) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " was not found for ", api.name));
  }
  json spec = json::parse(api.spec_json);
  spec.erase("project_dir");
  return json{{"job_status", JobStatus(*job)},
              {"api_spec", spec},
              {"endpoint", absl::StrCat(endpoint, "/", job_id)}};
}

absl::StatusOr<json> BatchJobs::List(const store::ApiRecord& api) {
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, queue_->ListJobs(api.name));
  json out = json::array();
  for (const auto& job : jobs) out.push_back(JobStatus(job));
  return out;
}

absl::StatusOr<json> BatchJobs::Stop(const std::string& api_name, const std::string& job_id) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, queue_->GetJob(job_id));
  if (!job || job->api_name != api_name) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " was not found for ", api_name));
  }
  if (Terminal(job->status)) {
    return absl::FailedPreconditionError("cannot stop batch job because it is not in progress");
  }
  job->status = "status_stopped";
  job->end_time = UnixSeconds();
  RETURN_IF_ERROR(queue_->UpdateJob(*job));
  JobLog(*job, "job stopped by the user");
  return json{{"message", absl::StrCat("stopped job ", job_id)}};
}

absl::Status BatchJobs::DeleteApi(const std::string& api_name) {
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, queue_->ListJobs(api_name));
  for (auto job : jobs) {
    if (Terminal(job.status)) continue;
    job.status = "status_stopped";
    job.end_time = UnixSeconds();
    RETURN_IF_ERROR(queue_->UpdateJob(job));
  }
  // Worker records stay until the control loop has stopped their processes.
  return queue_->DeleteJobs(api_name);
}

absl::StatusOr<json> BatchJobs::WorkerCall(const std::string& job_id, const std::string& action,
                                           const json& body) {
  std::string worker = body.value("worker", std::string());
  if (worker.empty()) return absl::InvalidArgumentError("worker must be given");
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, queue_->GetJob(job_id));
  if (!job) return json{{"done", true}};  // deleted: the worker exits
  int64_t now = NowMs();
  int64_t batch_id = body.value("batch_id", int64_t{0});
  if (action == "lease") {
    if (Terminal(job->status)) return json{{"done", true}};
    ASSIGN_OR_RETURN(std::optional<store::Lease> lease,
                     queue_->LeaseBatch(job_id, worker, now, options_.lease_ms));
    if (lease) {
      return json{{"batch",
                   {{"id", lease->batch_id},
                    {"index", lease->index},
                    {"attempt", lease->attempt},
                    {"payload", json::parse(lease->payload)}}}};
    }
    ASSIGN_OR_RETURN(store::BatchCounts counts, queue_->Counts(job_id));
    if (counts.queued + counts.leased > 0) return json{{"wait_s", 1}};
    // Every batch is done: exactly one worker runs on_job_complete.
    ASSIGN_OR_RETURN(bool claimed,
                     queue_->ClaimCompletion(job_id, worker, now, now - kStaleCompletionMs));
    return json{{"done", true}, {"on_job_complete", claimed}};
  }
  if (action == "renew") {
    ASSIGN_OR_RETURN(bool renewed, queue_->RenewLease(batch_id, worker, now + options_.lease_ms));
    return json{{"renewed", renewed}};
  }
  if (action == "ack") {
    RETURN_IF_ERROR(queue_->AckBatch(batch_id, worker, body.value("seconds", 0.0)));
    return json{{"ok", true}};
  }
  if (action == "fail") {
    std::string error = body.value("error", std::string("unknown error"));
    RETURN_IF_ERROR(queue_->FailBatch(batch_id, worker, error));
    return json{{"ok", true}};
  }
  if (action == "complete") {
    if (job->completion_worker != worker || Terminal(job->status)) return json{{"ok", true}};
    ASSIGN_OR_RETURN(store::BatchCounts counts, queue_->Counts(job_id));
    job->status = counts.dead > 0 ? "status_completed_with_failures" : "status_succeeded";
    job->end_time = UnixSeconds();
    RETURN_IF_ERROR(queue_->UpdateJob(*job));
    JobLog(*job, absl::StrCat("job ", JobStatusText(job->status), ": ", counts.succeeded,
                              " batches succeeded, ", counts.dead, " failed"));
    return json{{"ok", true}};
  }
  return absl::NotFoundError(absl::StrCat("unknown worker action ", action));
}

absl::Status BatchJobs::StartWorker(const JobRecord& job, const store::ApiRecord& api) {
  json spec = json::parse(api.spec_json);
  spec["job_spec"] = json::parse(job.spec_json);
  std::string spec_path = absl::StrCat(options_.data_dir, "/run/job-", job.id, ".json");
  RETURN_IF_ERROR(WriteFileAtomic(spec_path, spec.dump()));
  store::WorkerRecord worker;
  worker.id = absl::StrCat(job.id, "-", RandomId(5));
  worker.job_id = job.id;
  worker.api_name = job.api_name;
  worker.started_at = UnixSeconds();
  backends::WorkerLaunch launch;
  launch.worker_id = worker.id;
  launch.job_id = job.id;
  launch.spec_path = spec_path;
  auto python = spec["predictor"].find("python");
  launch.python = python != spec["predictor"].end() && python->is_string()
                      ? python->get<std::string>()
                      : options_.default_python;
  launch.operator_url = options_.operator_url;
  launch.log_path = JobLogPath(job.api_name, job.id);
  launch.working_dir = spec.value("project_dir", std::string());
  launch.env["CORTEX_OPERATOR_TOKEN"] = options_.token;
  launch.env["CORTEX_JOB_ID"] = job.id;
  ASSIGN_OR_RETURN(worker.pid, backend_.StartWorker(launch));
  JobLog(job, absl::StrCat("started worker ", worker.id));
  return queue_->PutWorker(worker);
}

void BatchJobs::StopAllWorkers() {
  auto workers = queue_->ListWorkers();
  if (!workers.ok()) return;
  for (const auto& w : *workers) {
    store::ReplicaRecord as_replica;
    as_replica.id = w.id;
    as_replica.pid = w.pid;
    if (w.state == "running") backend_.StopReplica(as_replica, 5'000);
    (void)queue_->ReleaseWorker(w.job_id, w.id);
    (void)queue_->DeleteWorker(w.id);
  }
}

void BatchJobs::Reconcile(
    const std::function<std::optional<store::ApiRecord>(const std::string&)>& api_of) {
  auto workers = queue_->ListWorkers();
  if (!workers.ok()) return;
  std::map<std::string, int> running, failures;
  for (auto& w : *workers) {
    auto job = queue_->GetJob(w.job_id);
    bool job_live = job.ok() && job->has_value() && !Terminal((*job)->status);
    store::ReplicaRecord as_replica;
    as_replica.id = w.id;
    as_replica.pid = w.pid;
    backends::ReplicaProbe probe;
    if (w.state == "running") probe = backend_.Probe(as_replica, 0);
    if (!job_live) {
      // The job ended or was deleted: its workers go (a death is still worth a log line).
      if (w.state == "running" && !probe.alive && probe.exit_code != 0 && job.ok() &&
          job->has_value()) {
        JobLog(**job, absl::StrCat("worker ", w.id, " ", probe.reason));
      }
      if (probe.alive) backend_.StopReplica(as_replica, 5'000);
      (void)queue_->DeleteWorker(w.id);
      continue;
    }
    if (w.state != "running") {
      failures[w.job_id] += w.state == "failed";
      continue;
    }
    if (probe.alive) {
      ++running[w.job_id];
      continue;
    }
    w.state = probe.exit_code == 0 ? "succeeded" : "failed";
    (void)queue_->PutWorker(w);
    if (w.state == "failed") {
      ++failures[w.job_id];
      // Its batches return to the queue now, not when their leases run out.
      (void)queue_->ReleaseWorker(w.job_id, w.id);
      if ((*job)->completion_worker == w.id) (void)queue_->ReleaseCompletion(w.job_id);
      JobLog(**job, absl::StrCat("worker ", w.id, " ", probe.reason));
    }
  }
  // Every running job: its timeout, crash loops, and enough workers.
  auto jobs = queue_->ListActiveJobs();
  if (!jobs.ok()) return;
  for (auto job : *jobs) {
    if (job.timeout_s > 0 && UnixSeconds() - job.start_time > job.timeout_s) {
      job.status = "status_timed_out";
      job.end_time = UnixSeconds();
      (void)queue_->UpdateJob(job);
      JobLog(job, absl::StrCat("job timed out after ", job.timeout_s, " s; stopping its workers"));
      continue;
    }
    if (failures[job.id] >= kMaxWorkerFailuresPerWorker * job.workers) {
      job.status = "status_worker_error";
      job.end_time = UnixSeconds();
      (void)queue_->UpdateJob(job);
      JobLog(job, absl::StrCat("job failed: its workers failed ", failures[job.id],
                               " times (see the traceback above)"));
      continue;
    }
    auto counts = queue_->Counts(job.id);
    if (!counts.ok()) continue;
    int64_t remaining = counts->queued + counts->leased;
    // Workers are needed while batches remain, or to run on_job_complete.
    int wanted = remaining > 0 ? static_cast<int>(std::min<int64_t>(job.workers, remaining))
                               : (running[job.id] == 0 ? 1 : 0);
    std::optional<store::ApiRecord> api = api_of(job.api_name);
    if (!api) continue;
    for (int i = running[job.id]; i < wanted; ++i) {
      if (absl::Status st = StartWorker(job, *api); !st.ok()) {
        JobLog(job, std::string(st.message()));
        break;
      }
    }
  }
}

}  // namespace cortex::op
