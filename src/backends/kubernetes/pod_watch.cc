#include "backends/kubernetes/pod_watch.h"

#include <algorithm>
#include <iostream>
#include <utility>

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;
using std::chrono::milliseconds;

std::string MetadataField(const json& object, const char* field) {
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) {
    return "";
  }
  const json& value = object["metadata"].value(field, json());
  return value.is_string() ? value.get<std::string>() : "";
}

}  // namespace

PodWatch::PodWatch(KubeApi& api, std::string label_selector, PodWatchOptions options)
    : api_(api),
      selector_(std::move(label_selector)),
      options_(options),
      backoff_(options.min_backoff) {
  if (options_.start_thread) thread_ = std::thread([this] { Run(); });
}

PodWatch::~PodWatch() { Stop(); }

std::optional<json> PodWatch::Snapshot() const {
  std::lock_guard lock(mu_);
  if (!synced_) return std::nullopt;
  json items = json::array();
  for (const auto& [name, pod] : pods_) items.push_back(pod);
  return json{{"kind", "PodList"},
              {"metadata", {{"resourceVersion", version_}}},
              {"items", std::move(items)}};
}

int PodWatch::relists() const {
  std::lock_guard lock(mu_);
  return std::max(lists_ - 1, 0);
}

milliseconds PodWatch::Step() {
  std::string version;
  bool list;
  {
    std::lock_guard lock(mu_);
    if (stop_) return milliseconds(0);
    list = need_list_;
    version = version_;
  }
  // The API calls run without the lock: a Watch lasts up to timeout_seconds.
  auto failed = [this](const absl::Status& status) {  // under mu_
    if (synced_) std::cerr << "kubernetes: watching pods " << selector_ << ": " << status << "\n";
    synced_ = false;
    need_list_ = true;
    milliseconds wait = backoff_;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    return wait;
  };
  if (list) {
    auto listed = api_.List(kPods, selector_);
    std::lock_guard lock(mu_);
    if (!listed.ok()) return failed(listed.status());
    pods_.clear();
    for (const auto& pod : listed->value("items", json::array())) {
      pods_[MetadataField(pod, "name")] = pod;
    }
    version_ = MetadataField(*listed, "resourceVersion");
    synced_ = true;
    need_list_ = false;
    ++lists_;
    backoff_ = options_.min_backoff;
    return milliseconds(0);
  }
  bool any = false;
  absl::Status watched =
      api_.Watch(kPods, selector_, version, options_.timeout_seconds, [&](const WatchEvent& e) {
        any = true;
        return Apply(e);
      });
  std::lock_guard lock(mu_);
  if (watched.ok() || stop_) {
    backoff_ = options_.min_backoff;
    return any ? milliseconds(0) : options_.idle_wait;
  }
  if (absl::IsOutOfRange(watched)) {  // the version expired: what changed since is listed
    need_list_ = true;
    return milliseconds(0);
  }
  // Another watcher on the same client stopping ended this Watch too: resume from the version.
  if (absl::IsCancelled(watched)) return options_.idle_wait;
  return failed(watched);
}

bool PodWatch::Apply(const WatchEvent& event) {
  std::lock_guard lock(mu_);
  if (stop_) return false;
  if (std::string version = MetadataField(event.object, "resourceVersion"); !version.empty()) {
    version_ = std::move(version);
  }
  std::string name = MetadataField(event.object, "name");
  if (event.type == "ADDED" || event.type == "MODIFIED") {
    if (!name.empty()) pods_[name] = event.object;
  } else if (event.type == "DELETED") {
    pods_.erase(name);
  }
  return true;
}

void PodWatch::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    milliseconds wait = Step();
    lock.lock();
    cv_.wait_for(lock, wait, [this] { return stop_; });
  }
  done_ = true;
  cv_.notify_all();
}

void PodWatch::Stop() {
  std::unique_lock lock(mu_);
  stop_ = true;
  cv_.notify_all();
  if (!thread_.joinable()) return;
  // A Watch may be starting as stop_ is set, after an earlier cancel: cancel until Run returns.
  while (!done_) {
    lock.unlock();
    api_.CancelWatches();
    lock.lock();
    cv_.wait_for(lock, milliseconds(50), [this] { return done_; });
  }
  lock.unlock();
  thread_.join();
}

}  // namespace cortex::backends::kubernetes
