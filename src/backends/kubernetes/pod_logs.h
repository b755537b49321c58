// `cortex logs` on Kubernetes: the API pods' output, read through the API (pods/log) and handed
// to the operator's log files, so that following a log, the dashboard and rotation work as on
// the local provider. Each pass reads, for every pod of a RealtimeAPI or a batch job, what it
// wrote since the last pass: from the last line's second (sinceTime has whole seconds), with the
// lines already passed on skipped by their timestamps. A pod that went away is forgotten; a log
// the kubelet rotated away in between is lost (as with `kubectl logs`), and so is the rest of a
// second in which a pod wrote more than a whole answer (a line says so).
//
// Called from the operator's control-loop thread only.
#pragma once

#include <absl/time/time.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backends/kubernetes/kube_api.h"

namespace cortex::backends::kubernetes {

class PodLogs {
 public:
  // `text`: whole lines, each led by "[<pod name>] ", of the API (`job_id` empty) or the job.
  using Sink = std::function<void(const std::string& api, const std::string& job_id,
                                  const std::string& text)>;

  // The pods of an API kind (RealtimeAPI | BatchAPI) as a List answer when known without asking
  // the API server (the backend's watches); nullopt: they are listed.
  using PodSource = std::function<std::optional<nlohmann::json>(const std::string& api_kind)>;

  // At most `limit_bytes` of one pod's log per pass. The cursors are kept in `state_path` (JSON;
  // "": not kept), so that an operator that restarts does not pass the same lines on again.
  PodLogs(KubeApi& api, Sink sink, PodSource watched = {}, std::string state_path = "",
          int64_t limit_bytes = 256 * 1024);

  // One pass over the pods; errors (the API away, a pod gone) wait for the next pass.
  void Collect();

 private:
  struct Cursor {
    absl::Time last = absl::InfinitePast();  // the newest line passed on
    int at_last = 0;                         // how many lines had exactly that time
  };

  // The new whole lines of `log` (timestamps=true form) past `cursor`, without their timestamps.
  static std::string NewLines(const std::string& log, const std::string& prefix, Cursor& cursor);
  void Save() const;

  KubeApi& api_;
  const Sink sink_;
  const PodSource watched_;
  const std::string state_path_;
  const int64_t limit_bytes_;
  std::map<std::string, Cursor> cursors_;  // by pod name
};

}  // namespace cortex::backends::kubernetes
