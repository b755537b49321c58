// Batch jobs against fakes: the lease protocol and the supervisor, over the in-memory job queue
// and state store, the fake backend and a fake clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/testing/fake_backend.h"
#include "common/testing/fake_clock.h"
#include "common/testing/temp_dir.h"
#include "common/util.h"
#include "operator/job_supervisor.h"
#include "operator/lease_service.h"
#include "store/testing/fake_job_queue.h"
#include "store/testing/fake_state_store.h"

namespace cortex::op {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<ApiLogs>(dir_.string());
    config::ApiConfig api;
    api.name = "b";
    api.kind = config::Kind::kBatchAPI;
    api.predictor = config::PredictorConfig{};
    api.predictor->type = "python";
    api.predictor->path = "predictor.py";
    api.networking.endpoint = "/b";
    api.networking.api_gateway = "public";
    store::ApiRecord record;
    record.name = "b";
    record.kind = "BatchAPI";
    record.api_id = "id1";
    record.spec_json = EncodeSpec(api, "/srv/project");
    ASSERT_TRUE(store_.PutApi(record).ok());
    leases_ = std::make_unique<LeaseService>(*queue_, *logs_, clock_, 30'000);
    supervisor_ = std::make_unique<JobSupervisor>(BatchOptions{}, *queue_, store_, specs_, backend_,
                                                  *logs_, clock_);
  }
  void CreateJob(int workers, int batches, int64_t timeout_s = 0) {
    store::JobRecord job;
    job.id = "j1";
    job.api_name = "b";
    job.workers = workers;
    job.total_batches = batches;
    job.start_time = clock_.NowSeconds();
    job.timeout_s = timeout_s;
    job.spec_json = R"({"job_id": "j1"})";
    std::vector<std::string> payloads(batches, "[1]");
    ASSERT_TRUE(queue_->CreateJob(job, payloads).ok());
  }
  std::string Status() { return (*queue_->GetJob("j1"))->status; }
  json Call(const std::string& action, json body) {
    auto result = leases_->Call("j1", action, body);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : json();
  }
  std::string JobLog() {
    auto text = ReadFile(logs_->JobLogPath("b", "j1"));
    return text.ok() ? *text : "";
  }

  cortex::testing::TempDir dir_{"cortex-batch"};
  std::unique_ptr<store::JobQueue> queue_ = std::make_unique<store::testing::FakeJobQueue>();
  store::testing::FakeStateStore store_;
  SpecCache specs_;
  backends::testing::FakeBackend backend_;
  cortex::testing::FakeClock clock_;
  std::unique_ptr<ApiLogs> logs_;
  std::unique_ptr<LeaseService> leases_;
  std::unique_ptr<JobSupervisor> supervisor_;
};

TEST_F(BatchTest, WorkersLeaseAckAndExactlyOneRunsOnJobComplete) {
  CreateJob(2, 1);
  json lease = Call("lease", {{"worker", "w1"}});
  ASSERT_TRUE(lease.contains("batch")) << lease;
  EXPECT_EQ(Call("lease", {{"worker", "w2"}})["wait_s"], 1);  // the last batch is leased
  Call("ack", {{"worker", "w1"}, {"batch_id", lease["batch"]["id"]}, {"seconds", 0.5}});
  json first = Call("lease", {{"worker", "w1"}});
  json second = Call("lease", {{"worker", "w2"}});
  EXPECT_TRUE(first["done"]);
  EXPECT_TRUE(first["on_job_complete"]);
  EXPECT_FALSE(second["on_job_complete"]);
  Call("complete", {{"worker", "w1"}});
  EXPECT_EQ(Status(), "status_succeeded");
}

TEST_F(BatchTest, AWorkerCallWithWrongTypesIsAnErrorNotACrash) {
  CreateJob(1, 1);
  EXPECT_FALSE(leases_->Call("j1", "lease", {{"worker", 7}}).ok());
  EXPECT_NO_THROW((void)leases_->Call("j1", "ack", {{"worker", "w"}, {"batch_id", "x"}}));
  EXPECT_NO_THROW((void)leases_->Call("j1", "fail", {{"worker", "w"}, {"error", 3}}));
  EXPECT_EQ(leases_->Call("j1", "dance", {{"worker", "w"}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BatchTest, TheSupervisorAsksForWorkersWhileBatchesRemainThenOneForCompletion) {
  CreateJob(3, 2);
  supervisor_->Step();
  ASSERT_EQ(backend_.worker_calls.back().size(), 1u);
  const backends::WorkerSetSpec& set = backend_.worker_calls.back()[0];
  EXPECT_EQ(set.running, 2);  // no more workers than batches
  EXPECT_EQ(set.max_failures, 15);
  EXPECT_EQ(set.project_dir, "/srv/project");
  EXPECT_EQ(set.env.at("CORTEX_JOB_ID"), "j1");
  for (int i = 0; i < 2; ++i) {
    json lease = Call("lease", {{"worker", "w1"}});
    Call("ack", {{"worker", "w1"}, {"batch_id", lease["batch"]["id"]}});
  }
  supervisor_->Step();
  EXPECT_EQ(backend_.worker_calls.back()[0].running, 1);
}

TEST_F(BatchTest, ADeadWorkersBatchesGoBackToTheQueueAtOnce) {
  CreateJob(1, 2);
  json lease = Call("lease", {{"worker", "w1"}});
  ASSERT_TRUE(lease.contains("batch"));
  backends::WorkerSetStatus status;
  status.exits.push_back({"w1", 1, "exited with status 1"});
  status.failed = 1;
  backend_.worker_status["j1"] = status;
  supervisor_->Step();
  auto counts = queue_->Counts("j1");
  EXPECT_EQ(counts->leased, 0);
  EXPECT_EQ(counts->queued, 2);
  EXPECT_THAT(JobLog(), HasSubstr("worker w1 exited with status 1"));
  EXPECT_EQ(Status(), "status_running");
}

TEST_F(BatchTest, ACrashLoopEndsTheJobAsWorkerError) {
  CreateJob(1, 2);
  backends::WorkerSetStatus status;
  status.failed = 5;
  backend_.worker_status["j1"] = status;
  supervisor_->Step();
  EXPECT_EQ(Status(), "status_worker_error");
  supervisor_->Step();
  EXPECT_TRUE(backend_.worker_calls.back().empty());  // its workers go
}

TEST_F(BatchTest, AJobPastItsTimeoutEndsAndKeepsThatStatus) {
  CreateJob(1, 2, /*timeout_s=*/10);
  supervisor_->Step();
  EXPECT_EQ(backend_.worker_calls.back().size(), 1u);
  clock_.Advance(11'000);
  supervisor_->Step();
  EXPECT_EQ(Status(), "status_timed_out");
  EXPECT_TRUE(backend_.worker_calls.back().empty());
  EXPECT_THAT(JobLog(), HasSubstr("job timed out after 10 s"));
  // A late completion does not turn it into a success.
  Call("complete", {{"worker", "w1"}});
  EXPECT_EQ(Status(), "status_timed_out");
}

}  // namespace
}  // namespace cortex::op
