#include "store/sqlite/sqlite_job_queue.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "store/testing/test_jobs.h"

namespace cortex::store {
namespace {

class SqliteJobQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cortex-jobs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto queue = SqliteJobQueue::Open((dir_ / "state.db").string());
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_ = std::move(*queue);
  }
  void TearDown() override {
    queue_.reset();
    std::filesystem::remove_all(dir_);
  }
  void CreateJob(const std::string& id, int batches, int max_attempts = 2) {
    ASSERT_TRUE(testing::CreateTestJob(*queue_, id, batches, max_attempts).ok());
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteJobQueue> queue_;
};

TEST_F(SqliteJobQueueTest, BatchesAreLeasedOnceInOrderAndAcked) {
  CreateJob("j", 2);
  auto first = queue_->LeaseBatch("j", "w1", 1000, 500);
  auto second = queue_->LeaseBatch("j", "w2", 1000, 500);
  auto none = queue_->LeaseBatch("j", "w3", 1000, 500);
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_TRUE(second.ok() && second->has_value());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ((*first)->payload, "[0]");
  EXPECT_EQ((*second)->index, 1);
  ASSERT_TRUE(queue_->AckBatch((*first)->batch_id, "w1", 0.5).ok());
  auto counts = queue_->Counts("j");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->succeeded, 1);
  EXPECT_EQ(counts->leased, 1);
  EXPECT_DOUBLE_EQ(counts->time_sum_s, 0.5);
}

TEST_F(SqliteJobQueueTest, ExpiredLeaseIsRetriedThenDeadLettered) {
  CreateJob("j", 1, /*max_attempts=*/2);
  ASSERT_TRUE(queue_->LeaseBatch("j", "w1", 1000, 100)->has_value());
  // The lease runs out (the worker died): the batch comes back.
  auto again = queue_->LeaseBatch("j", "w2", 1200, 100);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->attempt, 2);
  // Out of attempts: dead-lettered, not leased again.
  auto none = queue_->LeaseBatch("j", "w3", 1400, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto dead = queue_->DeadLetters("j");
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE((*dead)[0].error.find("lease expired"), std::string::npos);
}

TEST_F(SqliteJobQueueTest, FailedBatchIsRetriedUpToTheLimit) {
  CreateJob("j", 1, /*max_attempts=*/2);
  auto lease = queue_->LeaseBatch("j", "w", 0, 1000);
  ASSERT_TRUE(queue_->FailBatch((*lease)->batch_id, "w", "ValueError: bad").ok());
  EXPECT_EQ(queue_->Counts("j")->queued, 1);
  lease = queue_->LeaseBatch("j", "w", 0, 1000);
  ASSERT_TRUE(queue_->FailBatch((*lease)->batch_id, "w", "ValueError: bad again").ok());
  BatchCounts counts = *queue_->Counts("j");
  EXPECT_EQ(counts.queued, 0);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ((*queue_->DeadLetters("j"))[0].error, "ValueError: bad again");
}

TEST_F(SqliteJobQueueTest, ReleasingAWorkerRequeuesItsBatchesAtOnce) {
  CreateJob("j", 2, /*max_attempts=*/3);
  ASSERT_TRUE(queue_->LeaseBatch("j", "dead-worker", 0, 60'000)->has_value());
  ASSERT_TRUE(queue_->LeaseBatch("j", "live-worker", 0, 60'000)->has_value());
  ASSERT_TRUE(queue_->ReleaseWorker("j", "dead-worker").ok());
  BatchCounts counts = *queue_->Counts("j");
  EXPECT_EQ(counts.queued, 1);
  EXPECT_EQ(counts.leased, 1);
}

TEST_F(SqliteJobQueueTest, RenewKeepsTheLeaseOnlyForItsHolder) {
  CreateJob("j", 1);
  auto lease = queue_->LeaseBatch("j", "w", 0, 100);
  EXPECT_TRUE(*queue_->RenewLease((*lease)->batch_id, "w", 10'000));
  EXPECT_FALSE(*queue_->RenewLease((*lease)->batch_id, "other", 10'000));
  EXPECT_FALSE(queue_->LeaseBatch("j", "x", 5'000, 100)->has_value());  // still leased
}

TEST_F(SqliteJobQueueTest, OnlyOneWorkerRunsOnJobComplete) {
  CreateJob("j", 1);
  EXPECT_TRUE(*queue_->ClaimCompletion("j", "w1", 1000, 0));
  EXPECT_FALSE(*queue_->ClaimCompletion("j", "w2", 1001, 0));
  EXPECT_EQ((*queue_->GetJob("j"))->completion_worker, "w1");
  // w1 died: the claim is released and another worker takes it.
  ASSERT_TRUE(queue_->ReleaseCompletion("j").ok());
  EXPECT_TRUE(*queue_->ClaimCompletion("j", "w2", 1002, 0));
  // A claim older than the staleness limit can be taken over.
  EXPECT_TRUE(*queue_->ClaimCompletion("j", "w3", 9000, 5000));
}

TEST_F(SqliteJobQueueTest, WorkersAreKept) {
  WorkerRecord w{"w1", "j", "api", 42, "running", 7};
  ASSERT_TRUE(queue_->PutWorker(w).ok());
  auto workers = queue_->ListWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].pid, 42);
  ASSERT_TRUE(queue_->DeleteWorker("w1").ok());
  EXPECT_TRUE(queue_->ListWorkers()->empty());
}

TEST_F(SqliteJobQueueTest, JobsSurviveReopening) {
  CreateJob("j", 3);
  ASSERT_TRUE(queue_->LeaseBatch("j", "w", 0, 100)->has_value());
  queue_.reset();
  auto reopened = SqliteJobQueue::Open((dir_ / "state.db").string());
  ASSERT_TRUE(reopened.ok());
  auto job = (*reopened)->GetJob("j");
  ASSERT_TRUE(job.ok() && job->has_value());
  EXPECT_EQ((*job)->total_batches, 3);
  BatchCounts counts = *(*reopened)->Counts("j");
  EXPECT_EQ(counts.queued, 2);
  EXPECT_EQ(counts.leased, 1);
  queue_ = std::move(*reopened);
}

// A stopped job must stay stopped: a later timeout (or completion) on another thread that read
// the job before the stop must not overwrite it (it used to: UpdateJob wrote unconditionally).
TEST_F(SqliteJobQueueTest, TheFirstEndOfAJobWins) {
  CreateJob("j", 1);
  auto stopped = queue_->EndJob("j", "status_stopped", 100);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(*stopped);
  auto timed_out = queue_->EndJob("j", "status_timed_out", 200);
  ASSERT_TRUE(timed_out.ok()) << timed_out.status();
  EXPECT_FALSE(*timed_out);
  auto job = queue_->GetJob("j");
  ASSERT_TRUE(job.ok() && job->has_value());
  EXPECT_EQ((*job)->status, "status_stopped");
  EXPECT_EQ((*job)->end_time, 100);
  auto active = queue_->ListActiveJobs();
  ASSERT_TRUE(active.ok());
  EXPECT_TRUE(active->empty());
}

TEST_F(SqliteJobQueueTest, EndingAnUnknownJobChangesNothing) {
  auto ended = queue_->EndJob("missing", "status_stopped", 1);
  ASSERT_TRUE(ended.ok());
  EXPECT_FALSE(*ended);
}

}  // namespace
}  // namespace cortex::store
