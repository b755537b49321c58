#include "operator/traffic_history.h"

#include <gtest/gtest.h>

namespace cortex::op {
namespace {

using nlohmann::json;

// The gateway's stats for one API after `ok` 2XX answers of ~0.7 ms and `slow` 5XX of ~200 ms.
json Stats(const std::string& key, int64_t ok, int64_t slow) {
  LatencyHistogram h;
  for (int64_t i = 0; i < ok; ++i) h.Observe(0.0007);
  for (int64_t i = 0; i < slow; ++i) h.Observe(0.2);
  return {{"iris",
           {{"metrics_key", key},
            {"code_2xx", ok},
            {"code_4xx", 0},
            {"code_5xx", slow},
            {"count", ok + slow},
            {"latency_buckets", h.buckets()}}}};
}

TEST(TrafficHistory, IntervalsCarryRateCodesAndQuantilesOfTheirOwnRequests) {
  TrafficHistory history;
  history.Record(1'000, Stats("k1", 0, 0));
  history.Record(3'000, Stats("k1", 90, 10));  // 100 requests in 2 s
  history.Record(5'000, Stats("k1", 90, 10));  // none
  json series = history.Series("iris");
  ASSERT_EQ(series.size(), 2u) << series;
  EXPECT_EQ(series[0]["time"], 3'000);
  EXPECT_DOUBLE_EQ(series[0]["requests_per_second"].get<double>(), 50);
  EXPECT_EQ(series[0]["code_2xx"], 90);
  EXPECT_EQ(series[0]["code_5xx"], 10);
  EXPECT_NEAR(series[0]["p50_ms"].get<double>(), 0.5 + 0.5 * 50 / 90.0, 1e-9);
  EXPECT_NEAR(series[0]["p99_ms"].get<double>(), 100 + 150 * 0.9, 1e-9);
  EXPECT_DOUBLE_EQ(series[1]["requests_per_second"].get<double>(), 0);
  EXPECT_TRUE(series[1]["p50_ms"].is_null());
  EXPECT_EQ(history.Series("other"), json::array());
}

TEST(TrafficHistory, ARestartedCounterStartsANewSeriesAndOldSnapshotsAge) {
  TrafficHistory history(/*window_ms=*/10'000);
  history.Record(0, Stats("k1", 50, 0));
  history.Record(2'000, Stats("k2", 5, 0));  // a new deployment: counters from 0
  history.Record(4'000, Stats("k2", 15, 0));
  json series = history.Series("iris");
  ASSERT_EQ(series.size(), 1u) << series;
  EXPECT_EQ(series[0]["code_2xx"], 10);
  history.Record(13'000, Stats("k2", 15, 0));  // the first two snapshots are older than 10 s
  EXPECT_EQ(history.Series("iris").size(), 1u);
  history.Record(14'000, json::object());  // the API is gone from the gateway
  EXPECT_EQ(history.Series("iris"), json::array());
  history.Record(15'000, nullptr);  // the gateway did not answer: nothing changes
}

}  // namespace
}  // namespace cortex::op
