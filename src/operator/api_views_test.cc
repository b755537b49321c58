// The documents `cortex get` and `cortex logs` read, against the fakes.
#include "operator/api_views.h"

#include <gmock/gmock.h>

#include "operator/testing/control_plane_fixture.h"
#include "store/testing/fake_job_queue.h"

namespace cortex::op {
namespace {

using testing::ControlPlaneTest;
using ::testing::HasSubstr;
using testing::kIris;

using ApiViewsTest = ControlPlaneTest;

TEST_F(ApiViewsTest, ListsEveryApiWithItsStatusAndReplicas) {
  ASSERT_TRUE(Deploy(kIris).ok());
  reconciler_->Step();
  auto list = views_->List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0]["status"]["status"], "live");
  EXPECT_EQ((*list)[0]["status"]["replica_counts"]["requested"], 2);
  EXPECT_EQ((*list)[0]["endpoint"], "/iris");  // no gateway URL in this fixture
  auto api = views_->Get("iris");
  EXPECT_EQ((*api)["replicas"].size(), 2u);
  EXPECT_EQ((*api)["api_versions"].size(), 1u);
  EXPECT_EQ(views_->Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ApiViewsTest, LogsAreReadFromTheApisOwnFilesOnly) {
  ASSERT_TRUE(Deploy(kIris).ok());
  auto log = views_->Logs("iris", "", 0, 1 << 20);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(log->first, HasSubstr("creating iris (RealtimeAPI)"));
  EXPECT_EQ(views_->Logs("../iris", "", 0, 100).status().code(), absl::StatusCode::kNotFound);
  store::testing::FakeJobQueue queue;
  JobService jobs(BatchOptions{}, queue, *logs_, clock_);
  views_->EnableBatchJobs(&jobs);
  // A job id is a name, not a path: `cortex logs iris ../../../../tmp/x` reads nothing.
  auto escaped = views_->Logs("iris", "../../../../tmp/x", 0, 100);
  EXPECT_EQ(escaped.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cortex::op
