#include "operator/rest_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace cortex::op {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

struct Case {
  const char* method;
  const char* path;
  std::optional<Endpoint> endpoint;  // nullopt: no route
  net::PathParams params;
};

class OperatorRoutesTest : public ::testing::TestWithParam<Case> {};

TEST_P(OperatorRoutesTest, Routes) {
  const Case& c = GetParam();
  auto match = OperatorRoutes().Find(c.method, c.path);
  if (!c.endpoint) {
    EXPECT_EQ(match.handler, nullptr) << c.method << " " << c.path;
    return;
  }
  ASSERT_NE(match.handler, nullptr) << c.method << " " << c.path;
  EXPECT_EQ(*match.handler, *c.endpoint) << c.method << " " << c.path;
  EXPECT_EQ(match.params, c.params) << c.method << " " << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Table, OperatorRoutesTest,
    ::testing::Values(
        Case{"GET", "/healthz", Endpoint::kHealth, {}},
        Case{"GET", "/v1/apis", Endpoint::kListApis, {}},
        Case{"GET", "/v1/apis/", Endpoint::kListApis, {}},
        Case{"GET", "/v1/apis/iris", Endpoint::kGetApi, {{"api", "iris"}}},
        Case{"GET", "/v1/apis/iris/history", Endpoint::kApiHistory, {{"api", "iris"}}},
        // An API may be called "jobs", or start with it: these were job routes (and a 500).
        Case{"GET", "/v1/apis/jobs", Endpoint::kGetApi, {{"api", "jobs"}}},
        Case{"DELETE",
             "/v1/apis/jobs-classifier",
             Endpoint::kDeleteApi,
             {{"api", "jobs-classifier"}}},
        Case{"POST", "/v1/apis/jobsfoo/refresh", Endpoint::kRefresh, {{"api", "jobsfoo"}}},
        Case{"POST", "/v1/apis/jobs/refresh", Endpoint::kRefresh, {{"api", "jobs"}}},
        Case{"GET", "/v1/apis/jobs/jobs", Endpoint::kListJobs, {{"api", "jobs"}}},
        Case{"GET", "/v1/apis/b/jobs", Endpoint::kListJobs, {{"api", "b"}}},
        Case{"GET", "/v1/apis/b/jobs/69a1", Endpoint::kGetJob, {{"api", "b"}, {"job", "69a1"}}},
        Case{"DELETE", "/v1/apis/b/jobs/69a1", Endpoint::kStopJob, {{"api", "b"}, {"job", "69a1"}}},
        Case{"GET", "/v1/apis/b/jobs?x=1", Endpoint::kListJobs, {{"api", "b"}}},
        Case{"POST",
             "/v1/jobs/j1/lease",
             Endpoint::kWorkerCall,
             {{"job", "j1"}, {"action", "lease"}}},
        Case{"POST", "/v1/jobs/j1", std::nullopt, {}},
        Case{"POST", "/v1/batch/b", Endpoint::kBatchJobs, {{"api", "b"}}},
        Case{"GET", "/v1/batch/b/j", Endpoint::kBatchJobs, {{"api", "b"}, {"job", "j"}}},
        Case{"GET", "/v1/logs/iris?offset=-100", Endpoint::kLogs, {{"api", "iris"}}},
        Case{"HEAD", "/v1/bundles/ab", Endpoint::kHasBundle, {{"id", "ab"}}},
        Case{"PUT", "/v1/bundles/ab", Endpoint::kPutBundle, {{"id", "ab"}}},
        Case{"GET", "/v1/bundles/ab", Endpoint::kGetBundle, {{"id", "ab"}}},
        Case{"GET",
             "/v1/apis/b/jobs/69a1/worker-spec",
             Endpoint::kWorkerSpec,
             {{"api", "b"}, {"job", "69a1"}}},
        Case{"GET",
             "/v1/apis/iris/replica-spec?predictor_id=p1",
             Endpoint::kReplicaSpec,
             {{"api", "iris"}}},
        Case{"GET", "/v1/apis//refresh", std::nullopt, {}},
        Case{"GET", "/v1/apis/a/b/c/d/e", std::nullopt, {}},
        Case{"GET", "/dashboard", Endpoint::kDashboard, {}},
        Case{"GET", "/dashboard/?api=iris", Endpoint::kDashboard, {}},
        Case{"GET", "/dashboard/app.js", Endpoint::kDashboard, {{"file", "app.js"}}},
        Case{"GET", "/dashboard/a/b", std::nullopt, {}}, Case{"GET", "/nope", std::nullopt, {}}));

TEST(RouterTest, OtherMethodsAreReportedForA405) {
  auto match = OperatorRoutes().Find("PUT", "/v1/apis/iris");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_THAT(match.allowed, UnorderedElementsAre("GET", "DELETE"));
  EXPECT_TRUE(OperatorRoutes().Find("PUT", "/nope").allowed.empty());
}

TEST(RouterTest, LiteralSegmentsBeatCaptures) {
  net::Router<int> router;
  router.Add("GET", "/a/{x}", 1).Add("GET", "/a/b", 2);
  EXPECT_EQ(*router.Find("GET", "/a/b").handler, 2);
  EXPECT_EQ(*router.Find("GET", "/a/c").handler, 1);
}

TEST(RouterTest, PathSegments) {
  EXPECT_THAT(net::PathSegments("/v1/apis/x/"), ElementsAre("v1", "apis", "x"));
  EXPECT_THAT(net::PathSegments("/a//b"), ElementsAre("a", "", "b"));
  EXPECT_TRUE(net::PathSegments("/").empty());
}

TEST(RestRoutesTest, OnlyHealthBatchJobsAndTheDashboardsFilesAreOpen) {
  EXPECT_TRUE(IsOpen(Endpoint::kHealth));
  EXPECT_TRUE(IsOpen(Endpoint::kBatchJobs));
  EXPECT_TRUE(IsOpen(Endpoint::kDashboard));  // static files: the data behind them is not open
  EXPECT_FALSE(IsOpen(Endpoint::kApiHistory));
  EXPECT_FALSE(IsOpen(Endpoint::kListApis));
  EXPECT_FALSE(IsOpen(Endpoint::kLogs));
  EXPECT_FALSE(IsOpen(Endpoint::kWorkerCall));
  EXPECT_FALSE(IsOpen(Endpoint::kDeploy));
}

}  // namespace
}  // namespace cortex::op
