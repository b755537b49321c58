#include "backends/kubernetes/pod_logs.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include <set>

#include "common/util.h"

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

PodLogs::PodLogs(KubeApi& api, Sink sink, PodSource watched, std::string state_path,
                 int64_t limit_bytes)
    : api_(api),
      sink_(std::move(sink)),
      watched_(std::move(watched)),
      state_path_(std::move(state_path)),
      limit_bytes_(limit_bytes) {
  if (state_path_.empty()) return;
  auto text = ReadFile(state_path_);
  json state = text.ok() ? json::parse(*text, nullptr, false) : json();
  if (!state.is_object()) return;
  for (const auto& [pod, saved] : state.items()) {
    absl::Time last;
    std::string error;
    if (saved.is_object() && saved["last"].is_string() && saved["at_last"].is_number_integer() &&
        absl::ParseTime(absl::RFC3339_full, saved["last"].get<std::string>(), &last, &error)) {
      cursors_[pod] = {last, saved["at_last"].get<int>()};
    }
  }
}

void PodLogs::Save() const {
  if (state_path_.empty()) return;
  json state = json::object();
  for (const auto& [pod, cursor] : cursors_) {
    if (cursor.last == absl::InfinitePast()) continue;
    state[pod] = {{"last", absl::FormatTime(absl::RFC3339_full, cursor.last, absl::UTCTimeZone())},
                  {"at_last", cursor.at_last}};
  }
  (void)WriteFileAtomic(state_path_, state.dump());  // lost: lines come again after a restart
}

std::string PodLogs::NewLines(const std::string& log, const std::string& prefix, Cursor& cursor) {
  std::string out;
  int seen_at_last = 0;  // lines of this answer at exactly cursor.last (already passed on)
  // Whole lines only: limitBytes may cut the last one, which comes whole next time.
  size_t last_newline = log.rfind('\n');
  absl::string_view whole(log.data(), last_newline == std::string::npos ? 0 : last_newline);
  for (absl::string_view line : absl::StrSplit(whole, '\n', absl::SkipEmpty())) {
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
  bool listed_all = true;
  bool changed = false;
  for (const PodKind& kind : kPodKinds) {
    std::optional<json> known = watched_ ? watched_(kind.api_kind) : std::nullopt;
    auto pods = known ? absl::StatusOr<json>(std::move(*known))
                      : api_.List(kPods, absl::StrCat("apiKind=", kind.api_kind));
    if (!pods.ok()) {  // its pods' cursors stay: the next pass goes on from them
      listed_all = false;
      continue;
    }
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
      std::string prefix = absl::StrCat("[", name, "] ");
      Cursor before = cursor;
      std::string text = NewLines(*log, prefix, cursor);
      if (text.empty() && static_cast<int64_t>(log->size()) >= limit_bytes_ &&
          before.last != absl::InfinitePast()) {
        // More than a whole answer within one second: every read would start at the same place.
        // The rest of that second is skipped, and said.
        cursor.last = absl::FromUnixSeconds(absl::ToUnixSeconds(before.last) + 1);
        cursor.at_last = 0;
        text = absl::StrCat(prefix, "(log lines skipped: over ", limit_bytes_ / 1024,
                            " KiB in one second)\n");
      }
      if (!text.empty()) {
        sink_(api, labels.value("jobID", ""), text);
        changed = true;
      }
    }
  }
  for (auto it = cursors_.begin(); listed_all && it != cursors_.end();) {
    if (present.count(it->first)) {
      ++it;
    } else {
      it = cursors_.erase(it);
      changed = true;
    }
  }
  if (changed) Save();
}

}  // namespace cortex::backends::kubernetes
