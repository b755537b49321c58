// The pods' logs copied to the operator's: each line once, across passes that overlap in the
// same second, per API and per job, and nothing from a pod that has not started.
#include "backends/kubernetes/pod_logs.h"

#include <absl/strings/str_cat.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <optional>
#include <vector>

#include "backends/kubernetes/testing/fake_kube_api.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Written {
  std::string api, job, text;
  bool operator==(const Written&) const = default;
};

json Pod(const std::string& name, json labels, const std::string& phase = "Running") {
  json status = {{"phase", phase}};
  if (phase != "Pending") status["startTime"] = "2026-12-03T07:00:00Z";
  return {{"metadata", {{"name", name}, {"labels", labels}}}, {"status", status}};
}

class PodLogsTest : public ::testing::Test {
 protected:
  PodLogsTest()
      : logs_(api_, [this](const std::string& a, const std::string& j, const std::string& t) {
          written_.push_back({a, j, t});
        }) {}

  testing::FakeKubeApi api_;
  std::vector<Written> written_;
  PodLogs logs_;
};

TEST_F(PodLogsTest, PassesEachLineOnOnceAcrossPassesInTheSameSecond) {
  api_.Put(kPods, Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}));
  api_.logs["api-iris-1"] =
      "2026-12-03T07:00:01.100000000Z loading\n"
      "2026-12-03T07:00:01.2Z ready\n";
  logs_.Collect();
  // Two more lines in the same second, one with the same time as the last one passed on.
  api_.logs["api-iris-1"] +=
      "2026-12-03T07:00:01.2Z again at .2\n"
      "2026-12-03T07:00:01.9Z request 1\n";
  logs_.Collect();
  logs_.Collect();  // nothing new
  EXPECT_THAT(
      written_,
      ElementsAre(Written{"iris", "", "[api-iris-1] loading\n[api-iris-1] ready\n"},
                  Written{"iris", "", "[api-iris-1] again at .2\n[api-iris-1] request 1\n"}));
  // The second read asked from the last line's second, in the container the API runs in.
  EXPECT_THAT(api_.calls, Contains("log api-iris-1/api since 2026-12-03T07:00:01Z"));
}

TEST_F(PodLogsTest, JobPodsGoToTheJobsLogAndPendingPodsAreNotRead) {
  api_.Put(kPods,
           Pod("sum-j1-abc", {{"apiName", "sum"}, {"apiKind", "BatchAPI"}, {"jobID", "j1"}}));
  api_.Put(kPods, Pod("api-iris-2", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}, "Pending"));
  api_.logs["sum-j1-abc"] = "2026-12-03T07:00:02Z batch 1 done\n";
  api_.logs["api-iris-2"] = "2026-12-03T07:00:02Z never read\n";
  logs_.Collect();
  EXPECT_THAT(written_, ElementsAre(Written{"sum", "j1", "[sum-j1-abc] batch 1 done\n"}));
  for (const auto& call : api_.calls) EXPECT_NE(call.rfind("log api-iris-2", 0), 0u) << call;
}

TEST_F(PodLogsTest, AnApiThatIsAwayLosesNothing) {
  api_.Put(kPods, Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}));
  api_.logs["api-iris-1"] = "2026-12-03T07:00:01Z one\n";
  logs_.Collect();
  api_.list_error = absl::UnavailableError("connection refused");
  api_.logs["api-iris-1"] += "2026-12-03T07:00:05Z two\n";
  logs_.Collect();
  ASSERT_EQ(written_.size(), 1u);
  api_.list_error = absl::OkStatus();
  logs_.Collect();
  ASSERT_EQ(written_.size(), 2u);
  EXPECT_EQ(written_[1].text, "[api-iris-1] two\n");
}

TEST_F(PodLogsTest, UnstampedAndForeignPodsAreSkipped) {
  api_.Put(kPods, Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}));
  api_.Put(kPods, Pod("someone-else", {{"app", "x"}}));
  api_.logs["api-iris-1"] = "no stamp here\n2026-12-03T07:00:01Z stamped\n2026-12-03T07:0";
  logs_.Collect();
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_EQ(written_[0].text, "[api-iris-1] stamped\n");
  EXPECT_THAT(written_[0].job, IsEmpty());
}

TEST_F(PodLogsTest, ALineCutByTheLimitComesWholeNextTime) {
  api_.Put(kPods, Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}));
  api_.logs["api-iris-1"] = "2026-12-03T07:00:01Z one\n2026-12-03T07:00:01.5Z tw";
  logs_.Collect();
  api_.logs["api-iris-1"] = "2026-12-03T07:00:01Z one\n2026-12-03T07:00:01.5Z two\n";
  logs_.Collect();
  EXPECT_THAT(written_, ElementsAre(Written{"iris", "", "[api-iris-1] one\n"},
                                    Written{"iris", "", "[api-iris-1] two\n"}));
}

TEST_F(PodLogsTest, MoreThanAnAnswerInOneSecondIsSkippedAndSaid) {
  PodLogs small(
      api_,
      [this](const std::string& a, const std::string& j, const std::string& t) {
        written_.push_back({a, j, t});
      },
      {}, "", /*limit_bytes=*/64);
  api_.Put(kPods, Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}));
  std::string log;
  for (int i = 0; i < 10; ++i) log += absl::StrCat("2026-12-03T07:00:01.", i, "Z line ", i, "\n");
  log += "2026-12-03T07:00:02Z next second\n";
  api_.logs["api-iris-1"] = log;
  small.Collect();  // what fits in 64 bytes
  small.Collect();  // the same 64 bytes again: the rest of the second is skipped
  small.Collect();  // from the next second
  ASSERT_EQ(written_.size(), 3u);
  EXPECT_EQ(written_[0].text, "[api-iris-1] line 0\n[api-iris-1] line 1\n");
  EXPECT_EQ(written_[1].text, "[api-iris-1] (log lines skipped: over 0 KiB in one second)\n");
  EXPECT_EQ(written_[2].text, "[api-iris-1] next second\n");
}

TEST_F(PodLogsTest, AnOperatorThatRestartsGoesOnFromItsCursors) {
  std::string state = ::testing::TempDir() + "/pod-log-cursors.json";
  std::remove(state.c_str());
  auto sink = [this](const std::string& a, const std::string& j, const std::string& t) {
    written_.push_back({a, j, t});
  };
  api_.Put(kPods, Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}}));
  api_.logs["api-iris-1"] = "2026-12-03T07:00:01.25Z one\n";
  PodLogs(api_, sink, {}, state).Collect();
  api_.logs["api-iris-1"] += "2026-12-03T07:00:01.75Z two\n";
  PodLogs(api_, sink, {}, state).Collect();  // a new operator
  EXPECT_THAT(written_, ElementsAre(Written{"iris", "", "[api-iris-1] one\n"},
                                    Written{"iris", "", "[api-iris-1] two\n"}));
}

TEST_F(PodLogsTest, CursorsAreKeptWhenOnlySomePodsCouldBeListed) {
  std::string state = ::testing::TempDir() + "/pod-log-cursors-partial.json";
  std::remove(state.c_str());
  auto sink = [this](const std::string& a, const std::string& j, const std::string& t) {
    written_.push_back({a, j, t});
  };
  json realtime = {
      {"items", {Pod("api-iris-1", {{"apiName", "iris"}, {"apiKind", "RealtimeAPI"}})}}};
  // The realtime pods come from a watch; the batch pods' list fails.
  auto watched = [&](const std::string& kind) -> std::optional<json> {
    return kind == "RealtimeAPI" ? std::optional<json>(realtime) : std::nullopt;
  };
  api_.list_error = absl::UnavailableError("connection refused");
  api_.logs["api-iris-1"] = "2026-12-03T07:00:01Z one\n";
  PodLogs(api_, sink, watched, state).Collect();
  PodLogs(api_, sink, watched, state).Collect();  // a new operator: "one" is not copied again
  EXPECT_THAT(written_, ElementsAre(Written{"iris", "", "[api-iris-1] one\n"}));
}

}  // namespace
}  // namespace cortex::backends::kubernetes
