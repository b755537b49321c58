// KubeApi over the Kubernetes REST API with libcurl (net::Fetch), in one namespace. Transport
// failures, 429 and 5xx answers are retried with back-off (250 ms doubling, `attempts` in all;
// a watch is tried once: its watcher backs off); other answers map to the port's errors with the
// API server's own message (its Status object). Thread-safe: each call has its own handle.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "backends/kubernetes/kube_api.h"
#include "backends/kubernetes/kube_credentials.h"
#include "net/http_client.h"

namespace cortex::backends::kubernetes {

class KubeRestClient : public KubeApi {
 public:
  KubeRestClient(KubeEndpoint endpoint, std::string namespace_name, int attempts = 4,
                 long timeout_ms = 30'000);

  absl::StatusOr<nlohmann::json> Get(const Resource& resource, const std::string& name) override;
  absl::StatusOr<nlohmann::json> List(const Resource& resource,
                                      const std::string& label_selector) override;
  absl::StatusOr<nlohmann::json> Create(const Resource& resource,
                                        const nlohmann::json& object) override;
  absl::StatusOr<nlohmann::json> Replace(const Resource& resource,
                                         const nlohmann::json& object) override;
  absl::Status Scale(const Resource& resource, const std::string& name, int replicas) override;
  absl::Status Delete(const Resource& resource, const std::string& name) override;
  absl::Status Watch(const Resource& resource, const std::string& label_selector,
                     const std::string& resource_version, int timeout_seconds,
                     const std::function<bool(const WatchEvent&)>& on_event) override;
  void CancelWatches() override;
  absl::StatusOr<std::string> PodLog(const std::string& pod, const std::string& container,
                                     const std::string& since_time, int64_t limit_bytes) override;

 private:
  std::string Path(const Resource& resource, const std::string& name = "") const;
  net::HttpCall NewCall(const std::string& method, const std::string& path) const;
  // A call retried with back-off while it fails with a transport error, 429 or 5xx (`attempts`
  // in all); its 2xx answer's body (empty when on_body took it).
  absl::StatusOr<std::string> Send(net::HttpCall call, int attempts);
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const std::string& body, const std::string& content_type);

  KubeEndpoint endpoint_;
  const std::string namespace_;
  const int attempts_;
  const long timeout_ms_;
  std::atomic<uint64_t> watch_cancels_{0};  // CancelWatches calls: a Watch ends when it moves
};

// The port's error for an API server's answer: 404 NotFound, 409 AlreadyExists (reason
// AlreadyExists) or Aborted (a conflict), 410 OutOfRange (a watch's version expired), 401, 403,
// 422 InvalidArgument, 429 and 5xx Unavailable; the message is the Status object's.
absl::Status StatusFromApi(int http_status, const std::string& body);

}  // namespace cortex::backends::kubernetes
