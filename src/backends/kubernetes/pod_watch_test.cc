// PodWatch over the in-memory API, stepped by hand (deterministic), and the backend learning its
// pods through it: events instead of lists, a deleted pod, an expired version listed again, an
// error that falls back to listing. One test runs the real thread against a locked fake.
#include "backends/kubernetes/pod_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/kubernetes/kubernetes_backend.h"
#include "backends/kubernetes/testing/fake_kube_api.h"
#include "backends/kubernetes/testing/replica_sets.h"
#include "config/cluster_config.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

json Pod(const std::string& name, bool ready, const std::string& kind = "RealtimeAPI") {
  json conditions = {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}};
  return {{"metadata",
           {{"name", name},
            {"labels",
             {{"apiName", "iris"},
              {"apiKind", kind},
              {"predictorID", "p1"},
              {"deploymentID", "d1"},
              {"jobID", "j1"}}}}},
          {"status", {{"phase", "Running"}, {"podIP", "10.0.0.1"}, {"conditions", conditions}}}};
}

std::vector<std::string> Names(const std::optional<json>& list) {
  std::vector<std::string> out;
  if (list) {
    for (const auto& item : (*list)["items"]) out.push_back(item["metadata"]["name"]);
  }
  return out;
}

// The calls that list pods (what the watch replaces).
std::vector<std::string> PodLists(const testing::FakeKubeApi& api) {
  std::vector<std::string> out;
  for (const auto& c : api.calls) {
    if (c.starts_with("list pods")) out.push_back(c);
  }
  return out;
}

PodWatchOptions Manual() {
  PodWatchOptions options;
  options.start_thread = false;
  return options;
}

TEST(PodWatch, ListsOnceThenAppliesTheChanges) {
  testing::FakeKubeApi api;
  api.Put(kPods, Pod("a", false));
  api.Put(kPods, Pod("other", true, "BatchAPI"));
  PodWatch watch(api, "apiKind=RealtimeAPI", Manual());
  EXPECT_EQ(watch.Snapshot(), std::nullopt);  // nothing listed yet
  EXPECT_EQ(watch.Step(), milliseconds(0));
  EXPECT_THAT(Names(watch.Snapshot()), ElementsAre("a"));
  api.Put(kPods, Pod("b", false));
  api.Put(kPods, Pod("a", true));
  ASSERT_TRUE(api.Delete(kPods, "b").ok());
  api.Put(kPods, Pod("c", false));
  EXPECT_EQ(watch.Step(), milliseconds(0));  // events: watch again at once
  auto snapshot = watch.Snapshot();
  EXPECT_THAT(Names(snapshot), ElementsAre("a", "c"));
  EXPECT_EQ((*snapshot)["items"][0]["status"]["conditions"][0]["status"], "True");
  EXPECT_EQ((*snapshot)["metadata"]["resourceVersion"], std::to_string(api.version()));
  EXPECT_EQ(watch.Step(), milliseconds(200));  // nothing new: the idle wait
  EXPECT_THAT(api.calls, ElementsAre("list pods?apiKind=RealtimeAPI", "delete pods/b",
                                     "watch pods@2", "watch pods@6"));
  EXPECT_EQ(watch.relists(), 0);
}

TEST(PodWatch, AnExpiredVersionIsListedAgain) {
  testing::FakeKubeApi api;
  api.Put(kPods, Pod("a", false));
  PodWatch watch(api, "apiKind=RealtimeAPI", Manual());
  watch.Step();
  api.Put(kPods, Pod("b", false));
  api.Compact();  // the change to b is forgotten: a watch from before it is refused
  ASSERT_TRUE(api.Delete(kPods, "a").ok());
  watch.Step();                                            // OutOfRange
  EXPECT_THAT(Names(watch.Snapshot()), ElementsAre("a"));  // what was known stands meanwhile
  watch.Step();                                            // the list
  EXPECT_THAT(Names(watch.Snapshot()), ElementsAre("b"));
  EXPECT_EQ(watch.relists(), 1);
  api.Put(kPods, Pod("c", false));
  watch.Step();  // and the watch goes on from the new list's version
  EXPECT_THAT(Names(watch.Snapshot()), ElementsAre("b", "c"));
  EXPECT_THAT(PodLists(api),
              ElementsAre("list pods?apiKind=RealtimeAPI", "list pods?apiKind=RealtimeAPI"));
}

TEST(PodWatch, AnErrorMakesThePodsUnknownUntilAListSucceeds) {
  testing::FakeKubeApi api;
  api.Put(kPods, Pod("a", false));
  PodWatch watch(api, "apiKind=RealtimeAPI", Manual());
  watch.Step();
  api.watch_error = absl::UnavailableError("connection refused");
  api.list_error = absl::UnavailableError("connection refused");
  EXPECT_EQ(watch.Step(), milliseconds(250));
  EXPECT_EQ(watch.Snapshot(), std::nullopt);
  EXPECT_EQ(watch.Step(), milliseconds(500));  // the list fails too: the back-off doubles
  for (int i = 0; i < 5; ++i) watch.Step();
  EXPECT_EQ(watch.Step(), milliseconds(5000));  // at most
  api.list_error = absl::OkStatus();
  api.watch_error = absl::OkStatus();
  api.Put(kPods, Pod("b", false));
  EXPECT_EQ(watch.Step(), milliseconds(0));
  EXPECT_THAT(Names(watch.Snapshot()), ElementsAre("a", "b"));
}

// The fake, safe for the watch's thread and the test's.
class LockedKubeApi : public testing::FakeKubeApi {
 public:
  absl::StatusOr<json> List(const Resource& r, const std::string& selector) override {
    std::lock_guard lock(mu);
    return FakeKubeApi::List(r, selector);
  }
  absl::Status Watch(const Resource& r, const std::string& selector, const std::string& version,
                     int timeout, const std::function<bool(const WatchEvent&)>& on_event) override {
    std::lock_guard lock(mu);
    return FakeKubeApi::Watch(r, selector, version, timeout, on_event);
  }
  std::mutex mu;
};

TEST(PodWatch, ItsThreadFollowsTheChangesAndStops) {
  LockedKubeApi api;
  PodWatchOptions options;
  options.idle_wait = milliseconds(5);
  PodWatch watch(api, "apiKind=RealtimeAPI", options);
  {
    std::lock_guard lock(api.mu);
    api.Put(kPods, Pod("a", true));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Names(watch.Snapshot()) != std::vector<std::string>{"a"} &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_THAT(Names(watch.Snapshot()), ElementsAre("a"));
  watch.Stop();
  std::lock_guard lock(api.mu);
  EXPECT_THAT(PodLists(api), ElementsAre("list pods?apiKind=RealtimeAPI"));
}

// ---- the backend over the watch ----

class WatchingBackendTest : public ::testing::Test {
 protected:
  std::vector<ReplicaState> States() {
    std::vector<ReplicaState> out;
    // The statuses outlive the loop (a temporary's member would not).
    std::vector<ReplicaSetStatus> sets = backend_.SyncReplicaSets({testing::IrisReplicaSet(1)});
    for (const auto& r : sets[0].replicas) out.push_back(r.state);
    return out;
  }
  // What the watch's thread would have done by the next pass.
  void Watch() {
    backend_.realtime_pods()->Step();
    backend_.batch_pods()->Step();
  }

  testing::FakeKubeApi api_;
  KubernetesBackend backend_{api_, config::KubernetesConfig(),
                             KubernetesBackendOptions{true, Manual()}};
};

TEST_F(WatchingBackendTest, PodsComeFromTheWatchNotAListPerPass) {
  backend_.SyncReplicaSets(
      {testing::IrisReplicaSet(1)});  // before the first list: listed as without a watch
  EXPECT_THAT(PodLists(api_), Contains("list pods?apiKind=RealtimeAPI"));
  Watch();
  api_.Put(kPods, Pod("api-iris-1", false));
  Watch();
  api_.calls.clear();
  EXPECT_THAT(States(), ElementsAre(ReplicaState::kStarting));
  api_.Put(kPods, Pod("api-iris-1", true));  // the pod becomes ready
  Watch();
  EXPECT_THAT(States(), ElementsAre(ReplicaState::kReady));
  EXPECT_THAT(PodLists(api_), IsEmpty());
  EXPECT_THAT(api_.calls, Contains("watch pods@3"));
}

TEST_F(WatchingBackendTest, ADeletedPodIsNoLongerAReplica) {
  Watch();
  api_.Put(kPods, Pod("api-iris-1", true));
  api_.Put(kPods, Pod("api-iris-2", true));
  Watch();
  EXPECT_EQ(States().size(), 2u);
  ASSERT_TRUE(api_.Delete(kPods, "api-iris-1").ok());
  Watch();
  EXPECT_THAT(States(), ElementsAre(ReplicaState::kReady));
}

TEST_F(WatchingBackendTest, AnExpiredWatchListsAgain) {
  Watch();
  api_.Put(kPods, Pod("api-iris-1", true));
  api_.Compact();
  api_.Put(kPods, Pod("api-iris-2", false));
  Watch();  // OutOfRange
  Watch();  // the list
  EXPECT_THAT(States(), ElementsAre(ReplicaState::kReady, ReplicaState::kStarting));
  EXPECT_EQ(backend_.realtime_pods()->relists(), 1);
}

TEST_F(WatchingBackendTest, AWatchErrorFallsBackToListing) {
  Watch();
  api_.Put(kPods, Pod("api-iris-1", true));
  api_.watch_error = absl::UnavailableError("connection reset");
  Watch();
  EXPECT_EQ(backend_.realtime_pods()->Snapshot(), std::nullopt);
  api_.calls.clear();
  EXPECT_THAT(States(), ElementsAre(ReplicaState::kReady));
  EXPECT_THAT(PodLists(api_), ElementsAre("list pods?apiKind=RealtimeAPI"));
}

TEST_F(WatchingBackendTest, AJobsWorkersComeFromTheWatch) {
  WorkerSetSpec set;
  set.job_id = "j1";
  set.running = 2;
  Watch();
  api_.Put(kPods, Pod("w-1", true, "BatchAPI"));
  api_.Put(kPods, Pod("api-iris-1", true));  // not a worker
  Watch();
  api_.calls.clear();
  auto status = backend_.SyncWorkerSets({set});
  EXPECT_EQ(status[0].running, 1);
  EXPECT_THAT(PodLists(api_), IsEmpty());  // not one list per job
}

}  // namespace
}  // namespace cortex::backends::kubernetes
