#include "backends/kubernetes/pod_logs.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include <set>

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

// The container each kind's pods run their server in (manifests.cc).
struct PodKind {
  const char* api_kind;
  const char* container;
};
constexpr PodKind kPodKinds[] = {{"RealtimeAPI", "api"}, {"BatchAPI", "worker"}};

}  // namespace

PodLogs::PodLogs(KubeApi& api, Sink sink, PodSource watched, int64_t limit_bytes)
    : api_(api), sink_(std::move(sink)), watched_(std::move(watched)), limit_bytes_(limit_bytes) {}

std::string PodLogs::NewLines(const std::string& log, const std::string& prefix, Cursor& cursor) {
  std::string out;
  int seen_at_last = 0;  // lines of this answer at exactly cursor.last (already passed on)
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    size_t space = line.find(' ');
    absl::Time stamp;
    std::string error;
    if (space == absl::string_view::npos ||
        !absl::ParseTime(absl::RFC3339_full, std::string(line.substr(0, space)), &stamp, &error)) {
      continue;  // not a timestamped line (a truncated last line, say)
    }
    if (stamp < cursor.last) continue;
    if (stamp == cursor.last) {
      if (++seen_at_last <= cursor.at_last) continue;
      ++cursor.at_last;
    } else {
      cursor.last = stamp;
      cursor.at_last = 1;
      seen_at_last = 1;
    }
    absl::StrAppend(&out, prefix, line.substr(space + 1), "\n");
  }
  return out;
}

void PodLogs::Collect() {
  std::set<std::string> present;
  for (const PodKind& kind : kPodKinds) {
    std::optional<json> known = watched_ ? watched_(kind.api_kind) : std::nullopt;
    auto pods = known ? absl::StatusOr<json>(std::move(*known))
                      : api_.List(kPods, absl::StrCat("apiKind=", kind.api_kind));
    if (!pods.ok()) return;  // keep the cursors: the next pass goes on from them
    for (const auto& pod : pods->value("items", json::array())) {
      const json meta = pod.value("metadata", json::object());
      const json labels = meta.value("labels", json::object());
      std::string name = meta.value("name", "");
      std::string api = labels.value("apiName", "");
      if (name.empty() || api.empty()) continue;
      present.insert(name);
      // A pod still waiting to start has no log yet.
      const json status = pod.value("status", json::object());
      if (status.value("phase", "Pending") == "Pending" && !status.contains("startTime")) continue;
      Cursor& cursor = cursors_[name];
      std::string since;
      if (cursor.last != absl::InfinitePast()) {
        since = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", cursor.last, absl::UTCTimeZone());
      }
      auto log = api_.PodLog(name, kind.container, since, limit_bytes_);
      if (!log.ok()) continue;
      std::string text = NewLines(*log, absl::StrCat("[", name, "] "), cursor);
      if (!text.empty()) sink_(api, labels.value("jobID", ""), text);
    }
  }
  for (auto it = cursors_.begin(); it != cursors_.end();) {
    it = present.count(it->first) ? std::next(it) : cursors_.erase(it);
  }
}

}  // namespace cortex::backends::kubernetes
