// The pods matching one label selector, kept current by a watch instead of a list every pass: a
// List (the items and its resourceVersion), then Watch calls from the last version seen, each
// event applied (ADDED and MODIFIED replace the pod by name, DELETED erases it, a BOOKMARK only
// moves the version). A version the API server no longer keeps (410 Gone: OutOfRange) is listed
// again; any other error makes the cache unknown (Snapshot is empty: the caller lists, as without
// a watch) until a list after back-off (250 ms doubling to 5 s) succeeds.
//
// Its own thread watches (the REST client is thread-safe); stopping ends a Watch blocked on a
// silent server through KubeApi::CancelWatches (a List in progress keeps the client's own
// timeout: lists answer at once, watches wait by design). With start_thread false nothing runs
// until the owner calls Step: deterministic, single-threaded tests over FakeKubeApi. Thread-safe:
// all state is under one std::mutex (not absl::Mutex, which ThreadSanitizer cannot see).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "backends/kubernetes/kube_api.h"

namespace cortex::backends::kubernetes {

struct PodWatchOptions {
  bool start_thread = true;  // false: the owner calls Step
  int timeout_seconds = 60;  // asked of the server per Watch
  // Between Watch calls that ended without an event (a fake's Watch returns at once).
  std::chrono::milliseconds idle_wait{200};
  std::chrono::milliseconds min_backoff{250};
  std::chrono::milliseconds max_backoff{5000};
};

class PodWatch {
 public:
  PodWatch(KubeApi& api, std::string label_selector, PodWatchOptions options = {});
  ~PodWatch();  // Stop
  PodWatch(const PodWatch&) = delete;
  PodWatch& operator=(const PodWatch&) = delete;

  // The pods as a List answer ({"kind": "PodList", "metadata": {"resourceVersion"}, "items"}),
  // sorted by name; nullopt until the first list, and after an error until the next.
  std::optional<nlohmann::json> Snapshot() const;
  // The lists after the first (an expired version or an error started the watch over).
  int relists() const;

  // One round: a list when one is needed, otherwise one Watch call. Returns how long to wait
  // before the next round (the thread does; a test need not).
  std::chrono::milliseconds Step();

  // Ends the thread (promptly, also while a Watch waits on the server) and joins it. Idempotent;
  // called from the owner's thread.
  void Stop();

 private:
  void Run();
  // Applies one event; false once stopping (ends the Watch).
  bool Apply(const WatchEvent& event);

  KubeApi& api_;
  const std::string selector_;
  const PodWatchOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, nlohmann::json> pods_;  // by name
  std::string version_;                         // the last resourceVersion seen
  bool synced_ = false;                         // pods_ is what the server has as of version_
  bool need_list_ = true;
  int lists_ = 0;
  std::chrono::milliseconds backoff_;
  bool stop_ = false;
  bool done_ = false;  // Run returned
  std::thread thread_;
};

}  // namespace cortex::backends::kubernetes
