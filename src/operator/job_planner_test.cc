#include "operator/job_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/testing/temp_dir.h"

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

json Lister(const std::string& form, const std::string& path, int batch_size = 1) {
  return {{"workers", 1}, {form, {{"s3_paths", {path}}, {"batch_size", batch_size}}}};
}

void Write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(PlanJob, LocalPathsAreRefusedUnlessTheClusterAllowsThem) {
  testing::TempDir dir;
  Write(dir / "in/a.json", "{}");
  auto plan = PlanJob(Lister("file_path_lister", (dir / "in").string()));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("this cluster reads no local paths"));

  PlanLimits limits;
  limits.allowed_local_paths = {dir / "in"};
  plan = PlanJob(Lister("file_path_lister", (dir / "in").string()), limits);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->listed, std::vector<std::string>{(dir / "in/a.json").string()});

  // Outside the allowed directory, by name or by `..`.
  for (const std::string& path :
       {std::string("/etc/passwd"), (dir / "in/../secret").string(), std::string("file:///root")}) {
    plan = PlanJob(Lister("delimited_files", path), limits);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied) << path;
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr("is outside the directories"))
        << path;
  }
}

TEST(PlanJob, SymbolicLinksCannotLeadOutOfAnAllowedDirectory) {
  testing::TempDir dir;
  Write(dir / "secret/key.json", "{\"password\": \"hunter2\"}\n");
  Write(dir / "in/ok.json", "{\"a\": 1}\n");
  std::filesystem::create_symlink(dir / "secret/key.json", dir / "in/link.json");
  std::filesystem::create_directory_symlink(dir / "secret", dir / "in/linked-dir");
  PlanLimits limits;
  limits.allowed_local_paths = {dir / "in"};
  // Named directly: refused.
  auto plan = PlanJob(Lister("delimited_files", (dir / "in/link.json").string()), limits);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
  plan = PlanJob(Lister("delimited_files", (dir / "in/linked-dir").string()), limits);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
  // Found in a walk: left out.
  plan = PlanJob(Lister("delimited_files", (dir / "in").string()), limits);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->listed, std::vector<std::string>{(dir / "in/ok.json").string()});
  EXPECT_EQ(plan->batches, std::vector<std::string>{R"([{"a":1}])"});
}

TEST(PlanJob, DelimitedFilesAreReadALineAtATime) {
  testing::TempDir dir;
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "{\"i\": " + std::to_string(i) + "}\n";
  text += "\n7";  // a blank line, and a last line without a newline
  Write(dir / "in/rows.jsonl", text);
  PlanLimits limits;
  limits.allowed_local_paths = {dir / "in"};
  auto plan = PlanJob(Lister("delimited_files", (dir / "in").string(), 300), limits);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->batches.size(), 4u);
  EXPECT_THAT(plan->batches[3], ::testing::EndsWith(R"({"i":999},7])"));

  // A line with no end in sight is refused once it passes 1 MiB, not read whole.
  Write(dir / "in/rows.jsonl", std::string(3 << 20, ' '));
  plan = PlanJob(Lister("delimited_files", (dir / "in").string()), limits);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("a line is longer than 1048576"));
}

TEST(PlanJob, BatchesAndWorkersPerJobAreBounded) {
  PlanLimits limits;
  limits.max_batches = 10;
  limits.max_workers = 4;
  json items = json::array();
  for (int i = 0; i < 11; ++i) items.push_back(i);
  auto plan =
      PlanJob({{"workers", 1}, {"item_list", {{"items", items}, {"batch_size", 1}}}}, limits);
  EXPECT_THAT(std::string(plan.status().message()),
              HasSubstr("the job would have more than 10 batches"));
  plan = PlanJob({{"workers", 1}, {"item_list", {{"items", items}, {"batch_size", 2}}}}, limits);
  EXPECT_TRUE(plan.ok()) << plan.status();
  plan = PlanJob({{"workers", 5}, {"item_list", {{"items", items}, {"batch_size", 2}}}}, limits);
  EXPECT_THAT(
      std::string(plan.status().message()),
      HasSubstr("workers: 5 is more than this cluster allows (4, limits: workers_per_job)"));
}

}  // namespace
}  // namespace cortex::op
