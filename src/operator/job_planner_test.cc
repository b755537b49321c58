#include "operator/job_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cortex::op {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(PlanJob, ChunksAnItemList) {
  auto plan = PlanJob(json::parse(R"({"workers": 2, "item_list": {"items": [1, 2, 3, 4, 5],
                                      "batch_size": 2}})"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->batches, (std::vector<std::string>{"[1,2]", "[3,4]", "[5]"}));
}

TEST(PlanJob, RefusesWhatCortexRefuses) {
  struct Case {
    const char* body;
    const char* error;
  } cases[] = {
      {R"([])", "must be a JSON object"},
      {R"({"item_list": {"items": [1], "batch_size": 1}})", "workers: must be specified"},
      {R"({"workers": 0, "item_list": {"items": [1], "batch_size": 1}})",
       "workers: must be an integer >= 1"},
      {R"({"workers": 1})", "exactly one of the following fields"},
      // They were stored as 0 and -2147483648.
      {R"({"workers": 4294967296, "item_list": {"items": [1], "batch_size": 1}})",
       "workers: must be at most 2147483647 (got 4294967296)"},
      {R"({"workers": 2147483648, "item_list": {"items": [1], "batch_size": 1}})",
       "workers: must be at most 2147483647"},
      {R"({"workers": -5, "item_list": {"items": [1], "batch_size": 1}})",
       "workers: must be an integer >= 1"},
      {R"({"workers": 1, "item_list": {"items": [1], "batch_size": 18446744073709551615}})",
       "item_list: batch_size: must be at most 2147483647"},
      {R"({"workers": 1, "extra": 1, "item_list": {"items": [1], "batch_size": 1}})",
       "key \"extra\" is not supported"},
      {R"({"workers": 1, "item_list": {"items": [], "batch_size": 1}})", "at least one item"},
      {R"({"workers": 1, "item_list": {"items": [1], "batch_size": 1, "size": 2}})",
       "item_list: key \"size\""},
      {R"({"workers": 1, "file_path_lister": {"s3_paths": ["relative/path"], "batch_size": 1}})",
       "must be an absolute local path"},
  };
  for (const auto& c : cases) {
    auto plan = PlanJob(json::parse(c.body));
    EXPECT_FALSE(plan.ok()) << c.body;
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(c.error)) << c.body;
  }
}

TEST(PlanJob, ABatchOverTheMessageLimitIsRefused) {
  json items = json::array();
  for (int i = 0; i < 3; ++i) items.push_back(std::string(100 * 1024, 'x'));
  auto plan = PlanJob({{"workers", 1}, {"item_list", {{"items", items}, {"batch_size", 3}}}});
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("exceeds the 262144 bytes limit"));
}

}  // namespace
}  // namespace cortex::op
