// The behaviour every JobQueue must have, run against the SQLite adapter and the in-memory fake,
// so that tests written against the fake hold for the real queue.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "common/testing/temp_dir.h"
#include "store/sqlite/sqlite_job_queue.h"
#include "store/testing/fake_job_queue.h"
#include "store/testing/test_jobs.h"

namespace cortex::store {
namespace {

struct Adapter {
  const char* name;
  std::function<std::unique_ptr<JobQueue>(const std::string& dir)> open;
};

class JobQueueContract : public ::testing::TestWithParam<Adapter> {
 protected:
  void SetUp() override { queue_ = GetParam().open(dir_.string()); }
  void Create(const std::string& id, int batches, int max_attempts = 2) {
    ASSERT_TRUE(testing::CreateTestJob(*queue_, id, batches, max_attempts).ok());
  }
  cortex::testing::TempDir dir_{"cortex-jq"};
  std::unique_ptr<JobQueue> queue_;
};

TEST_P(JobQueueContract, LeasesInOrderAndCountsAcks) {
  Create("j", 2);
  auto a = queue_->LeaseBatch("j", "w1", 0, 1000);
  auto b = queue_->LeaseBatch("j", "w2", 0, 1000);
  ASSERT_TRUE(a.ok() && a->has_value() && b.ok() && b->has_value());
  EXPECT_EQ((*a)->index, 0);
  EXPECT_EQ((*b)->index, 1);
  EXPECT_EQ((*a)->payload, "[0]");
  EXPECT_FALSE(queue_->LeaseBatch("j", "w3", 0, 1000)->has_value());
  ASSERT_TRUE(queue_->AckBatch((*a)->batch_id, "w1", 0.5).ok());
  auto counts = queue_->Counts("j");
  EXPECT_EQ(counts->succeeded, 1);
  EXPECT_EQ(counts->leased, 1);
  EXPECT_DOUBLE_EQ(counts->time_sum_s, 0.5);
}

TEST_P(JobQueueContract, AnExpiredLeaseIsRetriedThenDeadLettered) {
  Create("j", 1, /*max_attempts=*/2);
  ASSERT_TRUE(queue_->LeaseBatch("j", "w1", 0, 100)->has_value());
  auto second = queue_->LeaseBatch("j", "w2", 200, 100);  // the first lease expired
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->attempt, 2);
  EXPECT_FALSE(queue_->LeaseBatch("j", "w3", 400, 100)->has_value());  // dead now
  auto dead = queue_->DeadLetters("j");
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].attempts, 2);
  EXPECT_EQ((*dead)[0].error, "lease expired (the worker died or took too long)");
}

TEST_P(JobQueueContract, FailingAndReleasingRequeueOnlyTheWorkersOwnBatches) {
  Create("j", 2, 3);
  auto a = queue_->LeaseBatch("j", "w1", 0, 1000);
  auto b = queue_->LeaseBatch("j", "w2", 0, 1000);
  ASSERT_TRUE(queue_->FailBatch((*a)->batch_id, "w2", "not mine").ok());
  EXPECT_EQ(queue_->Counts("j")->leased, 2);
  ASSERT_TRUE(queue_->FailBatch((*a)->batch_id, "w1", "boom").ok());
  ASSERT_TRUE(queue_->ReleaseWorker("j", "w2").ok());
  EXPECT_EQ(queue_->Counts("j")->queued, 2);
  EXPECT_FALSE(*queue_->RenewLease((*b)->batch_id, "w2", 5000));
}

TEST_P(JobQueueContract, OneWorkerClaimsCompletionUntilItGoesStale) {
  Create("j", 1);
  EXPECT_TRUE(*queue_->ClaimCompletion("j", "w1", 1000, 0));
  EXPECT_FALSE(*queue_->ClaimCompletion("j", "w2", 1100, 0));
  EXPECT_TRUE(*queue_->ClaimCompletion("j", "w2", 5000, 2000));  // w1's claim is stale
  EXPECT_EQ((*queue_->GetJob("j"))->completion_worker, "w2");
  ASSERT_TRUE(queue_->ReleaseCompletion("j").ok());
  EXPECT_TRUE(*queue_->ClaimCompletion("j", "w3", 5100, 0));
}

TEST_P(JobQueueContract, TheFirstEndWinsAndEndedJobsAreNotActive) {
  Create("j", 1);
  EXPECT_TRUE(*queue_->EndJob("j", "status_stopped", 10));
  EXPECT_FALSE(*queue_->EndJob("j", "status_timed_out", 20));
  EXPECT_EQ((*queue_->GetJob("j"))->status, "status_stopped");
  EXPECT_TRUE(queue_->ListActiveJobs()->empty());
  ASSERT_TRUE(queue_->DeleteJobs("api").ok());
  EXPECT_FALSE(queue_->GetJob("j")->has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Adapters, JobQueueContract,
    ::testing::Values(Adapter{"sqlite",
                              [](const std::string& dir) -> std::unique_ptr<JobQueue> {
                                return std::move(*SqliteJobQueue::Open(dir + "/state.db"));
                              }},
                      Adapter{"fake",
                              [](const std::string&) -> std::unique_ptr<JobQueue> {
                                return std::make_unique<testing::FakeJobQueue>();
                              }}),
    [](const ::testing::TestParamInfo<Adapter>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cortex::store
