#include "backends/kubernetes/pod_status.h"

#include <absl/strings/str_cat.h>

#include <set>

#include "backends/kubernetes/manifests.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

const json& Field(const json& object, const char* key) {
  static const json kNull;
  return object.is_object() && object.contains(key) ? object[key] : kNull;
}

std::string Str(const json& object, const char* key) {
  const json& value = Field(object, key);
  return value.is_string() ? value.get<std::string>() : "";
}

// The condition of `type`, or null.
const json& Condition(const json& pod, const std::string& type) {
  static const json kNull;
  for (const auto& c : Field(Field(pod, "status"), "conditions")) {
    if (Str(c, "type") == type) return c;
  }
  return kNull;
}

const json& MainContainer(const json& pod) {
  static const json kNull;
  const json& statuses = Field(Field(pod, "status"), "containerStatuses");
  return statuses.is_array() && !statuses.empty() ? statuses[0] : kNull;
}

bool OomKilled(const json& container) {
  for (const char* which : {"state", "lastState"}) {
    if (Str(Field(Field(container, which), "terminated"), "reason") == "OOMKilled") return true;
  }
  return false;
}

const std::set<std::string>& FailingReasons() {
  static const std::set<std::string> reasons = {
      "CrashLoopBackOff",     "ErrImagePull",      "ImagePullBackOff",          "InvalidImageName",
      "CreateContainerError", "RunContainerError", "CreateContainerConfigError"};
  return reasons;
}

}  // namespace

ReplicaStatus PodReplica(const json& pod, const std::string& predictor_id,
                         const std::string& deployment_id) {
  const json& metadata = Field(pod, "metadata");
  const json& labels = Field(metadata, "labels");
  const json& container = MainContainer(pod);
  ReplicaStatus r;
  r.id = Str(metadata, "name");
  r.updated =
      Str(labels, "predictorID") == predictor_id && Str(labels, "deploymentID") == deployment_id;
  const json& restarts = Field(container, "restartCount");
  r.restarts = restarts.is_number_integer() ? restarts.get<int>() : 0;
  std::string waiting = Str(Field(Field(container, "state"), "waiting"), "reason");
  const json& scheduled = Condition(pod, "PodScheduled");
  if (!Field(metadata, "deletionTimestamp").is_null()) {
    r.state = ReplicaState::kStopping;
  } else if (Str(Condition(pod, "Ready"), "status") == "True") {
    r.state = ReplicaState::kReady;
  } else if (OomKilled(container)) {
    r.state = ReplicaState::kOom;
  } else if (Str(Field(pod, "status"), "phase") == "Failed" || FailingReasons().count(waiting)) {
    r.state = ReplicaState::kFailed;
  } else if (Str(scheduled, "status") == "False" && Str(scheduled, "reason") == "Unschedulable") {
    r.state = ReplicaState::kStalled;
  } else {
    r.state = ReplicaState::kStarting;
  }
  if (std::string ip = Str(Field(pod, "status"), "podIP"); !ip.empty()) {
    r.endpoint = {ip, static_cast<uint16_t>(kServingPort)};
  }
  r.details = {{"pod", r.id}};
  if (std::string node = Str(Field(pod, "spec"), "nodeName"); !node.empty()) {
    r.details["node"] = node;
  }
  if (std::string problem = PodProblem(pod); !problem.empty()) r.details["problem"] = problem;
  return r;
}

std::string PodProblem(const json& pod) {
  const json& scheduled = Condition(pod, "PodScheduled");
  if (Str(scheduled, "status") == "False" && Str(scheduled, "reason") == "Unschedulable") {
    return absl::StrCat("compute unavailable: ", Str(scheduled, "message"));
  }
  const json& container = MainContainer(pod);
  if (OomKilled(container)) return "out of memory (OOMKilled)";
  const json& waiting = Field(Field(container, "state"), "waiting");
  if (FailingReasons().count(Str(waiting, "reason"))) {
    std::string message = Str(waiting, "message");
    return absl::StrCat(Str(waiting, "reason"), message.empty() ? "" : ": ", message);
  }
  const json& terminated = Field(Field(container, "state"), "terminated");
  if (terminated.is_object() && Field(terminated, "exitCode") != 0) {
    return absl::StrCat("exited with status ", Field(terminated, "exitCode").dump(),
                        Str(terminated, "reason").empty() ? "" : " (", Str(terminated, "reason"),
                        Str(terminated, "reason").empty() ? "" : ")");
  }
  return "";
}

}  // namespace cortex::backends::kubernetes
