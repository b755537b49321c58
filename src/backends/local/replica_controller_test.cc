// The local provider's replica controller against fakes: no processes, an in-memory store and a
// clock the test moves.
#include "backends/local/replica_controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "backends/local/testing/fake_runner.h"
#include "common/testing/fake_clock.h"
#include "common/testing/temp_dir.h"
#include "store/testing/fake_state_store.h"

namespace cortex::backends::local {
namespace {

using ::testing::HasSubstr;

class ReplicaControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart(); }

  // A new controller over the same records and processes: an operator restart.
  void Restart(Resources capacity = {4000, int64_t{8} << 30, 0}) {
    ReplicaControllerOptions options;
    options.data_dir = dir_.string();
    options.capacity = capacity;
    controller_ = std::make_unique<ReplicaController>(options, store_, runner_, clock_);
  }

  static ReplicaSetSpec Set(int replicas, const std::string& deployment = "d1",
                            int64_t cpu_milli = 200) {
    auto api = std::make_shared<config::ApiConfig>();
    api->name = "a";
    api->compute.cpu_milli = cpu_milli;
    ReplicaSetSpec set;
    set.api_name = "a";
    set.predictor_id = "p1";
    set.deployment_id = deployment;
    set.replicas = replicas;
    set.api = api;
    set.python = "/usr/bin/python3";
    return set;
  }

  ReplicaSetStatus Sync(const ReplicaSetSpec& set) {
    auto out = controller_->Sync({set});
    EXPECT_EQ(out.size(), 1u);
    for (const auto& e : out.at(0).events) events_.push_back(e);
    return out.at(0);
  }
  static int Count(const ReplicaSetStatus& s, ReplicaState state, bool updated = true) {
    int n = 0;
    for (const auto& r : s.replicas) n += r.state == state && r.updated == updated;
    return n;
  }
  void MakeAllReady() {
    for (const auto& id : runner_.Alive()) runner_.MakeReady(id);
  }

  cortex::testing::TempDir dir_{"cortex-rc"};
  store::testing::FakeStateStore store_;
  testing::FakeRunner runner_;
  cortex::testing::FakeClock clock_;
  std::unique_ptr<ReplicaController> controller_;
  std::vector<std::string> events_;
};

TEST_F(ReplicaControllerTest, CreatesTheReplicasAndReportsThemReadyWithTheirEndpoints) {
  ReplicaSetStatus first = Sync(Set(2));
  EXPECT_EQ(runner_.replica_launches.size(), 2u);
  EXPECT_EQ(Count(first, ReplicaState::kStarting), 2);
  EXPECT_EQ(runner_.replica_launches[0].python, "/usr/bin/python3");
  EXPECT_TRUE(std::filesystem::exists(runner_.replica_launches[0].spec_path));
  MakeAllReady();
  ReplicaSetStatus second = Sync(Set(2));
  EXPECT_EQ(Count(second, ReplicaState::kReady), 2);
  for (const auto& r : second.replicas) {
    EXPECT_EQ(r.endpoint.host, "127.0.0.1");
    EXPECT_GT(r.endpoint.port, 0);
    EXPECT_GT(r.details.value("pid", 0), 0);
  }
  EXPECT_EQ(runner_.replica_launches.size(), 2u);  // nothing more to do
  EXPECT_THAT(events_, ::testing::Contains(HasSubstr("starting replica a-d1-")));
}

TEST_F(ReplicaControllerTest, RollsToANewVersionWithinTheUpdateStrategy) {
  Sync(Set(4));
  MakeAllReady();
  Sync(Set(4));
  // 25% of 4: at most 1 extra replica, at most 1 unavailable.
  for (int pass = 0; pass < 40; ++pass) {
    ReplicaSetStatus s = Sync(Set(4, "d2"));
    int ready = Count(s, ReplicaState::kReady, true) + Count(s, ReplicaState::kReady, false);
    EXPECT_GE(ready, 3) << "pass " << pass;
    int active = static_cast<int>(s.replicas.size()) - Count(s, ReplicaState::kStopping, false) -
                 Count(s, ReplicaState::kStopping, true);
    EXPECT_LE(active, 5) << "pass " << pass;  // draining replicas do not count (as in k8s)
    if (Count(s, ReplicaState::kReady, true) == 4 && s.replicas.size() == 4) break;
    MakeAllReady();
    clock_.Advance(1000);  // drained replicas are stopped after the drain delay
  }
  ReplicaSetStatus done = Sync(Set(4, "d2"));
  EXPECT_EQ(Count(done, ReplicaState::kReady, true), 4);
  EXPECT_EQ(done.replicas.size(), 4u);
  EXPECT_EQ(runner_.stopped.size(), 4u);
}

TEST_F(ReplicaControllerTest, ReadoptsItsReplicasAfterAnOperatorRestart) {
  Sync(Set(1));
  MakeAllReady();
  ASSERT_EQ(Count(Sync(Set(1)), ReplicaState::kReady), 1);
  Restart();
  ReplicaSetStatus after = Sync(Set(1));
  EXPECT_EQ(Count(after, ReplicaState::kReady), 1);
  EXPECT_EQ(runner_.replica_launches.size(), 1u);  // the running process was kept
  EXPECT_TRUE(runner_.stopped.empty());
}

TEST_F(ReplicaControllerTest, ACrashLoopBacksOffBeforeEachRestart) {
  Sync(Set(1));
  std::string id = runner_.replica_launches.at(0).replica_id;
  runner_.Exit(id, 1);
  ReplicaSetStatus failed = Sync(Set(1));
  EXPECT_EQ(Count(failed, ReplicaState::kFailed), 1);
  EXPECT_THAT(events_.back(), HasSubstr("exited with status 1; restarting it in 1s"));
  Sync(Set(1));
  EXPECT_EQ(runner_.replica_launches.size(), 1u);  // 1 s back-off
  clock_.Advance(1001);
  Sync(Set(1));
  EXPECT_EQ(runner_.replica_launches.size(), 2u);
  runner_.Exit(id, 1);
  Sync(Set(1));
  clock_.Advance(1001);
  Sync(Set(1));
  EXPECT_EQ(runner_.replica_launches.size(), 2u);  // now 2 s
  clock_.Advance(1000);
  ReplicaSetStatus restarted = Sync(Set(1));
  EXPECT_EQ(runner_.replica_launches.size(), 3u);
  EXPECT_EQ(restarted.replicas.at(0).restarts, 2);
}

TEST_F(ReplicaControllerTest, AReplicaOverItsMemoryLimitIsReportedOom) {
  ReplicaSetSpec set = Set(1);
  auto api = std::make_shared<config::ApiConfig>(*set.api);
  api->compute.mem_bytes = 64 << 20;
  set.api = api;
  controller_->Sync({set});
  controller_->Sync({set});
  EXPECT_EQ(runner_.last_mem_limit, 64 << 20);
  runner_.Exit(runner_.replica_launches.at(0).replica_id, 137, /*oom=*/true);
  auto out = controller_->Sync({set});
  EXPECT_EQ(Count(out.at(0), ReplicaState::kOom), 1);
}

TEST_F(ReplicaControllerTest, AReplicaThatDoesNotFitIsStalledNotStarted) {
  Restart({1000, int64_t{8} << 30, 0});
  ReplicaSetStatus s = Sync(Set(1, "d1", /*cpu_milli=*/2000));
  EXPECT_EQ(Count(s, ReplicaState::kStalled), 1);
  EXPECT_TRUE(runner_.replica_launches.empty());
  EXPECT_THAT(events_.back(), HasSubstr("cannot start: compute unavailable (cpu: 2000m requested"));
  clock_.Advance(5000);
  Sync(Set(1, "d1", 2000));
  EXPECT_TRUE(runner_.replica_launches.empty());
  // It fits once it asks for less (a redeploy with a new version).
  ReplicaSetStatus fits = Sync(Set(1, "d2", 500));
  EXPECT_EQ(runner_.replica_launches.size(), 1u);
  EXPECT_EQ(Count(fits, ReplicaState::kStarting), 1);
}

TEST_F(ReplicaControllerTest, TheReplicasOfARemovedSetAreStoppedAndForgotten) {
  Sync(Set(2));
  MakeAllReady();
  Sync(Set(2));
  EXPECT_TRUE(controller_->Sync({}).empty());
  EXPECT_EQ(runner_.stopped.size(), 2u);
  EXPECT_TRUE(store_.ListReplicas()->empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "run"));
}

TEST_F(ReplicaControllerTest, AFailedStartIsRetriedWithBackOff) {
  runner_.fail_starts = true;
  ReplicaSetStatus s = Sync(Set(1));
  EXPECT_EQ(Count(s, ReplicaState::kFailed), 1);
  EXPECT_THAT(events_.back(), HasSubstr("no"));
  runner_.fail_starts = false;
  clock_.Advance(1001);
  EXPECT_EQ(Count(Sync(Set(1)), ReplicaState::kStarting), 1);
}

// A SIGSTOPped (or hung) replica stayed "updating" for ever.
TEST_F(ReplicaControllerTest, AReplicaThatStopsAnsweringIsRestarted) {
  Sync(Set(1));
  MakeAllReady();
  ReplicaSetStatus ready = Sync(Set(1));
  ASSERT_EQ(Count(ready, ReplicaState::kReady), 1);
  std::string id = ready.replicas.at(0).id;
  runner_.instances[id].ready = false;  // alive, not answering
  Sync(Set(1));
  clock_.Advance(29'000);
  EXPECT_EQ(Count(Sync(Set(1)), ReplicaState::kStarting), 1);  // not yet
  EXPECT_TRUE(runner_.stopped.empty());
  clock_.Advance(2'000);
  ReplicaSetStatus restarted = Sync(Set(1));
  EXPECT_THAT(runner_.stopped, ::testing::ElementsAre(id));
  EXPECT_THAT(events_.back(), HasSubstr("has not been ready for 30 s"));
  EXPECT_EQ(restarted.replicas.at(0).restarts, 1);
}

// A restarted replica may take long to start (its dependency files run again): not hung.
TEST_F(ReplicaControllerTest, ARestartedReplicaIsNotStoppedWhileItStarts) {
  Sync(Set(1));
  MakeAllReady();
  ReplicaSetStatus ready = Sync(Set(1));
  std::string id = ready.replicas.at(0).id;
  runner_.Exit(id, 1);  // it crashed
  ASSERT_EQ(Count(Sync(Set(1)), ReplicaState::kFailed), 1);
  clock_.Advance(2'000);                                       // the back-off
  ASSERT_EQ(Count(Sync(Set(1)), ReplicaState::kStarting), 1);  // restarted, setting up
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(30'000);
    EXPECT_EQ(Count(Sync(Set(1)), ReplicaState::kStarting), 1);
  }
  EXPECT_TRUE(runner_.stopped.empty());
}

}  // namespace
}  // namespace cortex::backends::local
