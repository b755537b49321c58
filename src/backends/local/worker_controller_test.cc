// The local provider's worker controller against a fake runner and the SQLite job queue in a
// temporary directory (the worker records live there).
#include "backends/local/worker_controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "backends/local/testing/fake_runner.h"
#include "common/testing/fake_clock.h"
#include "common/testing/temp_dir.h"
#include "store/sqlite/sqlite_job_queue.h"

namespace cortex::backends::local {
namespace {

class WorkerControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "run");
    auto queue = store::SqliteJobQueue::Open((dir_ / "state.db").string());
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_ = std::move(*queue);
    controller_ = std::make_unique<WorkerController>(WorkerControllerOptions{dir_.string()},
                                                     *queue_, runner_, clock_);
  }
  void TearDown() override {
    controller_.reset();
    queue_.reset();
  }
  static WorkerSetSpec Set(int running) {
    WorkerSetSpec set;
    set.job_id = "j1";
    set.api_name = "b";
    set.running = running;
    set.api = std::make_shared<config::ApiConfig>();
    set.job_spec = {{"job_id", "j1"}};
    set.python = "/usr/bin/python3";
    return set;
  }

  cortex::testing::TempDir dir_{"cortex-wc"};
  std::unique_ptr<store::SqliteJobQueue> queue_;
  testing::FakeRunner runner_;
  cortex::testing::FakeClock clock_;
  std::unique_ptr<WorkerController> controller_;
};

TEST_F(WorkerControllerTest, StartsTheWorkersASetAsksForAndReportsHowTheyEnd) {
  auto first = controller_->Sync({Set(2)});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].running, 2);
  EXPECT_EQ(runner_.worker_launches.size(), 2u);
  EXPECT_THAT(first[0].events, ::testing::Contains(::testing::HasSubstr("started worker j1-")));
  runner_.Exit(runner_.worker_launches[0].worker_id, 0);
  runner_.Exit(runner_.worker_launches[1].worker_id, 1);
  auto second = controller_->Sync({Set(0)});
  EXPECT_EQ(second[0].running, 0);
  EXPECT_EQ(second[0].succeeded, 1);
  EXPECT_EQ(second[0].failed, 1);
  ASSERT_EQ(second[0].exits.size(), 2u);
  // Each exit is reported once; the counts stay.
  auto third = controller_->Sync({Set(0)});
  EXPECT_TRUE(third[0].exits.empty());
  EXPECT_EQ(third[0].failed, 1);
}

TEST_F(WorkerControllerTest, ASetNoLongerWantedHasItsWorkersStoppedAndForgotten) {
  controller_->Sync({Set(2)});
  runner_.Exit(runner_.worker_launches[0].worker_id, 3);
  auto out = controller_->Sync({});
  ASSERT_EQ(out.size(), 1u);  // the death found while the set went
  EXPECT_EQ(out[0].job_id, "j1");
  ASSERT_EQ(out[0].exits.size(), 1u);
  EXPECT_EQ(out[0].exits[0].exit_code, 3);
  EXPECT_EQ(runner_.stopped.size(), 1u);
  EXPECT_TRUE(queue_->ListWorkers()->empty());
}

}  // namespace
}  // namespace cortex::backends::local
