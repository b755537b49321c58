#include "common/util.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/histogram.h"
#include "common/process.h"
#include "common/status.h"

namespace cortex {
namespace {

TEST(Util, Sha256MatchesKnownDigest) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Util, FormatAgeUsesCortexUnits) {
  EXPECT_EQ(FormatAge(45), "45s");
  EXPECT_EQ(FormatAge(192), "3m12s");
  EXPECT_EQ(FormatAge(2 * 3600 + 5 * 60), "2h5m");
  EXPECT_EQ(FormatAge(3 * 86400 + 4 * 3600), "3d4h");
}

TEST(Histogram, QuantilesInterpolateWithinTheirBucket) {
  LatencyHistogram h;
  EXPECT_LT(LatencyHistogram::Quantile(h.buckets(), 0.5), 0);  // nothing observed
  for (int i = 0; i < 90; ++i) h.Observe(0.0007);              // (0.5 ms, 1 ms]
  for (int i = 0; i < 10; ++i) h.Observe(0.2);                 // (100 ms, 250 ms]
  EXPECT_DOUBLE_EQ(LatencyHistogram::Quantile(h.buckets(), 0.5), 0.0005 + 0.0005 * 50.0 / 90.0);
  EXPECT_DOUBLE_EQ(LatencyHistogram::Quantile(h.buckets(), 0.99), 0.1 + 0.15 * 9.0 / 10.0);
  h.Observe(60);  // over the largest bound
  EXPECT_DOUBLE_EQ(LatencyHistogram::Quantile(h.buckets(), 0.999), 10);
}

TEST(Util, Rfc3339RoundTrips) {
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339(1796221854), "2026-12-02T14:30:54Z");
  EXPECT_EQ(ParseRfc3339("2026-12-02T14:30:54Z"), 1796221854);
  EXPECT_EQ(ParseRfc3339("2026-12-02T15:30:54.25+01:00"), 1796221854);
  EXPECT_EQ(ParseRfc3339("02 Dec 26 14:30 UTC"), std::nullopt);
  EXPECT_EQ(ParseRfc3339(""), std::nullopt);
}

TEST(Util, DecreasingIdsSortNewestFirst) {
  std::string older = DecreasingHexId();
  std::string newer = DecreasingHexId();
  EXPECT_GE(older, newer);
  EXPECT_EQ(older.size(), 16u);
}

TEST(Process, SpawnReportsMissingProgram) {
  SpawnOptions options;
  options.argv = {"/nonexistent/program"};
  auto pid = Spawn(options);
  EXPECT_FALSE(pid.ok());
}

TEST(Process, PythonRuntimeEnvPutsTheRuntimeThenTheBuiltExtensionsFirst) {
  ::unsetenv("PYTHONPATH");
  auto env = PythonRuntimeEnv("/runtime");
  std::string expected = "/runtime";
  if (std::filesystem::is_directory(CORTEX_BUILD_PYTHON_DIR)) {
    expected += ":" CORTEX_BUILD_PYTHON_DIR;
  }
  EXPECT_EQ(env["PYTHONPATH"], expected);
  EXPECT_EQ(env["PYTHONUNBUFFERED"], "1");
  ::setenv("PYTHONPATH", "/mine", 1);
  EXPECT_EQ(PythonRuntimeEnv("/runtime")["PYTHONPATH"], expected + ":/mine");
  ::unsetenv("PYTHONPATH");
}

TEST(Status, HttpMappingIsStable) {
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusFor(absl::DeadlineExceededError("x")), 504);
}

}  // namespace
}  // namespace cortex

#include "common/histogram.h"

namespace cortex {
namespace {

TEST(LatencyHistogram, CountsCumulativelyPerBucket) {
  LatencyHistogram h;
  h.Observe(0.0004);
  h.Observe(0.003);
  h.Observe(20);
  EXPECT_EQ(h.count(), 3);
  std::string text = h.Prometheus("x", "api=\"a\"");
  EXPECT_NE(text.find("x_bucket{api=\"a\",le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x_bucket{api=\"a\",le=\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_bucket{api=\"a\",le=\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_bucket{api=\"a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_count{api=\"a\"} 3\n"), std::string::npos);
}

}  // namespace
}  // namespace cortex

#include "common/glob.h"
#include "common/network_json.h"

namespace cortex {
namespace {

// "**a**a...**c" against a long run of a's took time exponential in the stars (7.7 s with 9 of
// them, 4x per extra one): with 16 this test would not finish.
TEST(NetworkJson, DeepDocumentsAreRefusedBeforeParsing) {
  EXPECT_EQ(JsonNestingDepth(R"({"a": [1, {"b": "[[[["}]})"), 3);
  EXPECT_EQ(JsonNestingDepth(R"("\"[")"), 0);
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto refused = ParseNetworkJson(deep, "the job submission");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "the job submission is nested more than 128 levels deep");
  EXPECT_FALSE(ParseNetworkJson("{nope", "x").ok());
  auto fine = ParseNetworkJson(std::string(128, '[') + std::string(128, ']'), "x");
  EXPECT_TRUE(fine.ok());
}

TEST(Glob, ManyDoubleStarsTakePolynomialTime) {
  std::string pattern;
  for (int i = 0; i < 16; ++i) pattern += "**a";
  pattern += "**c";
  std::string path = "/" + std::string(300, 'a');
  EXPECT_FALSE(GlobMatch(pattern, path));
  EXPECT_TRUE(GlobMatch(pattern, path + "c"));
}

TEST(Glob, StarStaysInASegmentDoubleStarCrosses) {
  EXPECT_TRUE(GlobMatch("s3://b/dir/*.json", "s3://b/dir/a.json"));
  EXPECT_FALSE(GlobMatch("s3://b/dir/*.json", "s3://b/dir/sub/a.json"));
  EXPECT_TRUE(GlobMatch("s3://b/dir/**.json", "s3://b/dir/sub/a.json"));
  EXPECT_TRUE(GlobMatch("**.json", "/data/x/y.json"));
  EXPECT_TRUE(GlobMatch("s3://b/**/x.csv", "s3://b/a/b/x.csv"));
  EXPECT_FALSE(GlobMatch("s3://b/?.csv", "s3://b//.csv"));
  EXPECT_TRUE(GlobMatch("/d/part-[0-9].csv", "/d/part-7.csv"));
  EXPECT_FALSE(GlobMatch("/d/part-[!0-9].csv", "/d/part-7.csv"));
  EXPECT_FALSE(GlobMatch("*.json", "a.jsonl"));
}

}  // namespace
}  // namespace cortex

namespace cortex {
namespace {

TEST(Util, FormatBytesUsesTheLargestExactUnit) {
  EXPECT_EQ(FormatBytes(10 << 20), "10 MiB");
  EXPECT_EQ(FormatBytes(64 << 10), "64 KiB");
  EXPECT_EQ(FormatBytes(1000), "1000 bytes");
  EXPECT_EQ(FormatBytes((10 << 20) + 1), "10485761 bytes");
  EXPECT_EQ(FormatBytes(0), "0 bytes");
}

}  // namespace
}  // namespace cortex

namespace cortex {
namespace {

// On its own thread: the policy is per thread, and the test runner's own must not change. The
// runner may itself have been started under SCHED_BATCH: "turned off" then keeps that.
TEST(Process, BatchSchedulingIsInheritedAndCanBeTurnedOff) {
  const int runner = ::sched_getscheduler(0);
  std::thread([runner] {
    ASSERT_EQ(::sched_getscheduler(0), runner);
    ::setenv("CORTEX_SCHED_BATCH", "0", 1);
    EXPECT_TRUE(UseBatchScheduling().ok());
    EXPECT_EQ(::sched_getscheduler(0), runner);
    ::unsetenv("CORTEX_SCHED_BATCH");
    EXPECT_TRUE(UseBatchScheduling().ok());
    EXPECT_EQ(::sched_getscheduler(0), SCHED_BATCH);
    int inherited = -1;
    std::thread([&inherited] { inherited = ::sched_getscheduler(0); }).join();
    EXPECT_EQ(inherited, SCHED_BATCH);
  }).join();
  EXPECT_EQ(::sched_getscheduler(0), runner);
}

}  // namespace
}  // namespace cortex
