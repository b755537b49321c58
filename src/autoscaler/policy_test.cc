#include "autoscaler/policy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace cortex::autoscaler {
namespace {

constexpr int64_t kSecondMs = 1000;
constexpr int64_t kTickMs = 10 * kSecondMs;

// One 1 s sample per second t in (from_s, to_s], all with the same in-flight count.
std::vector<Sample> Steady(double in_flight, int64_t from_s, int64_t to_s) {
  std::vector<Sample> samples;
  for (int64_t t = from_s + 1; t <= to_s; ++t) samples.push_back({t * kSecondMs, in_flight});
  return samples;
}

// The settings under test with both stabilization periods off, so request == recommendation.
Settings Immediate(Settings settings) {
  settings.downscale_stabilization_period_ms = 0;
  settings.upscale_stabilization_period_ms = 0;
  return settings;
}

// Replays a load given as one in-flight value per 10 s block (sampled every second from
// t = 1 s) with ticks at t = 0, 10, ..., 10 * blocks.size() s, starting from `init_replicas`
// (the Deployment's replicas when the autoscaler (re)starts). Each tick sees only the samples
// scraped so far. Returns the request after every tick.
std::vector<int> Replay(const Settings& settings, int init_replicas,
                        const std::vector<double>& blocks) {
  State state;
  state.current = init_replicas;
  std::vector<Sample> seen;
  std::vector<int> requests;
  for (size_t tick = 0; tick <= blocks.size(); ++tick) {
    const int64_t now_ms = static_cast<int64_t>(tick) * kTickMs;
    requests.push_back(Tick(settings, seen, now_ms, state).request);
    if (tick == blocks.size()) break;
    for (int64_t s = 1; s <= 10; ++s) seen.push_back({now_ms + s * kSecondMs, blocks[tick]});
  }
  return requests;
}

std::vector<double> Repeat(double in_flight, int blocks) {
  return std::vector<double>(blocks, in_flight);
}

// Concatenates runs of the same value: Runs({{10, 6}, {8, 6}}) is six 10s then six 8s.
std::vector<int> Runs(std::initializer_list<std::pair<int, int>> runs) {
  std::vector<int> out;
  for (const auto& [value, count] : runs) out.insert(out.end(), count, value);
  return out;
}

// --- The signal -------------------------------------------------------------------------------

TEST(AutoscalerPolicy, NoSamplesInWindowChangesNothingButStartsTheClock) {
  struct Case {
    std::string name;
    std::vector<Sample> samples;
  };
  const Settings settings{.window_ms = 60 * kSecondMs};
  const std::vector<Case> cases = {
      {"no samples at all", {}},
      {"only samples older than the window", Steady(50, 0, 40)},  // now = 100 s: (40, 100]
      {"sample exactly window ago is outside", {{40 * kSecondMs, 50}}},
      {"only samples from the future", {{101 * kSecondMs, 50}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    State state;
    state.current = 3;
    const Decision d = Tick(settings, c.samples, 100 * kSecondMs, state);
    EXPECT_FALSE(d.has_data);
    EXPECT_EQ(d.request, 3);
    EXPECT_EQ(state.current, 3);
    EXPECT_TRUE(state.recommendations.empty());
    ASSERT_TRUE(state.start_ms.has_value());
    EXPECT_EQ(*state.start_ms, 100 * kSecondMs);
  }
}

TEST(AutoscalerPolicy, AveragesSamplesInHalfOpenWindowAndSkipsMissingSeconds) {
  const Settings settings = Immediate({.window_ms = 10 * kSecondMs});
  struct Case {
    std::string name;
    std::vector<Sample> samples;
    double want_avg;
  };
  const std::vector<Case> cases = {
      {"steady", Steady(3, 90, 100), 3},
      // (90, 100]: the sample at 90 s is out, the one at 100 s in.
      {"boundaries", {{90 * kSecondMs, 100}, {95 * kSecondMs, 2}, {100 * kSecondMs, 4}}, 3},
      // A missed scrape is not a zero: the mean covers only samples that exist.
      {"gaps", {{91 * kSecondMs, 6}, {99 * kSecondMs, 2}}, 4},
      {"unsorted", {{99 * kSecondMs, 2}, {50 * kSecondMs, 70}, {91 * kSecondMs, 6}}, 4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    State state;
    const Decision d = Tick(settings, c.samples, 100 * kSecondMs, state);
    EXPECT_TRUE(d.has_data);
    EXPECT_DOUBLE_EQ(d.avg_in_flight, c.want_avg);
  }
}

// --- One recommendation -----------------------------------------------------------------------

TEST(AutoscalerPolicy, RecommendationAppliesRoundingTolerancesFactorsAndLimits) {
  struct Case {
    std::string name;
    Settings settings;  // stabilization is switched off below
    int current;
    double avg_in_flight;
    int want;
  };
  const std::vector<Case> cases = {
      // Rounding.
      {"exact", {}, 4, 4, 4},
      {"rounds up", {}, 4, 4.5, 5},
      {"target scales the load", {.target_replica_concurrency = 2.5}, 4, 10, 4},
      {"fp noise in the average is not a replica", {.downscale_tolerance = 0}, 3, 2.0000000001, 2},
      {"fp noise in avg/target (21/0.7)", {.target_replica_concurrency = 0.7}, 25, 21, 30},
      // Tolerance bands: inside keeps current; the edges themselves are outside.
      {"inside downscale band", {.downscale_tolerance = 0.2}, 10, 8.5, 10},
      {"below downscale band", {.downscale_tolerance = 0.2}, 10, 7.5, 8},
      {"at downscale band edge", {.downscale_tolerance = 0.25}, 4, 3, 3},
      {"inside upscale band", {.upscale_tolerance = 0.2}, 10, 11.5, 10},
      {"above upscale band", {.upscale_tolerance = 0.2}, 10, 12.5, 13},
      {"at upscale band edge", {.upscale_tolerance = 0.25}, 4, 5, 5},
      {"default 5% band below", {}, 40, 38.5, 40},
      {"default 5% band above", {}, 40, 41.5, 40},
      {"zero downscale tolerance", {.downscale_tolerance = 0}, 40, 38.5, 39},
      {"zero upscale tolerance", {.upscale_tolerance = 0}, 40, 41.5, 42},
      // Downscale factor (0.75 by default); dropping one replica is always allowed.
      {"downscale factor floor", {}, 10, 0, 8},
      {"downscale factor 0.5", {.max_downscale_factor = 0.5}, 10, 2, 5},
      {"downscale factor 0", {.max_downscale_factor = 0}, 10, 0, 1},
      {"drop one at 3 (ceil 2.25 = 3)", {}, 3, 0, 2},
      {"drop one at 2 (ceil 1.5 = 2)", {}, 2, 0, 1},
      {"never below one", {.min_replicas = 0}, 1, 0, 1},
      {"fp noise in downscale factor (25*0.28)", {.max_downscale_factor = 0.28}, 25, 0, 7},
      // Upscale factor (1.5 by default); adding one replica is always allowed.
      {"upscale factor ceiling", {}, 10, 100, 15},
      {"add one at 1 (ceil 1.5 = 2)", {}, 1, 100, 2},
      {"upscale factor ceiling at 2", {}, 2, 100, 3},
      {"upscale factor 3", {.max_upscale_factor = 3}, 2, 100, 6},
      {"add one with a factor of ~1", {.max_upscale_factor = 1.0000000001}, 1, 100, 2},
      {"fp noise in upscale factor (50*1.1)", {.max_upscale_factor = 1.1}, 50, 1000, 55},
      // min/max clamps, applied after the factors.
      {"min clamp", {.min_replicas = 3}, 3, 0, 3},
      {"current below min is lifted", {.min_replicas = 3}, 1, 0, 3},
      {"max clamp", {.max_replicas = 5}, 5, 100, 5},
      {"current above max is cut", {.max_replicas = 5}, 8, 8, 5},
      {"min == max", {.min_replicas = 1, .max_replicas = 1}, 1, 100, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    State state;
    state.current = c.current;
    const Settings settings = Immediate(c.settings);
    const Decision d = Tick(settings, Steady(c.avg_in_flight, 0, 60), 60 * kSecondMs, state);
    ASSERT_TRUE(d.has_data);
    EXPECT_EQ(d.recommendation, c.want);
    EXPECT_EQ(d.request, c.want);
    EXPECT_EQ(state.current, c.want);
  }
}

// Overprovisioning (production guide): with processes_per_replica * threads_per_process = 4
// a replica can serve 4 requests at once; a target of 2 keeps half of each replica idle.
TEST(AutoscalerPolicy, LowerTargetConcurrencyKeepsSpareReplicas) {
  constexpr int kSlotsPerReplica = 4;
  const auto load = Repeat(8, 6);
  const Settings full =
      Immediate({.target_replica_concurrency = kSlotsPerReplica, .window_ms = 10 * kSecondMs});
  const Settings spare = Immediate({.target_replica_concurrency = 2, .window_ms = 10 * kSecondMs});
  EXPECT_EQ(Replay(full, 1, load), (std::vector<int>{1, 2, 2, 2, 2, 2, 2}));
  EXPECT_EQ(Replay(spare, 1, load), (std::vector<int>{1, 2, 3, 4, 4, 4, 4}));
  // 4 replicas x 4 slots for 8 in flight: 8 slots spare, against none at the default target.
}

// --- Sequences of ticks -----------------------------------------------------------------------

struct SequenceCase {
  std::string name;
  Settings settings;
  int init_replicas;
  std::vector<double> blocks;  // in flight per 10 s
  std::vector<int> want;       // request after the ticks at 0, 10, 20, ... s
};

void ExpectSequences(const std::vector<SequenceCase>& cases) {
  for (const SequenceCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(Replay(c.settings, c.init_replicas, c.blocks), c.want);
  }
}

TEST(AutoscalerPolicy, StabilizationPeriods) {
  ExpectSequences({
      // Both periods 0: every tick moves by the factor rules alone. Tick 0 has no data.
      {"zero periods are immediate",
       {.window_ms = 10 * kSecondMs,
        .downscale_stabilization_period_ms = 0,
        .upscale_stabilization_period_ms = 0},
       1,
       {4, 4, 4, 4, 4, 4, 0, 0, 0, 0},
       {1, 2, 3, 4, 4, 4, 4, 3, 2, 1, 1}},
      // First upscale period: no move up before 60 s even though every recommendation says 2;
      // afterwards each step waits until the whole period recommends it (one step per 60 s).
      {"no upscale during first upscale period, then the period's minimum",
       {.window_ms = 10 * kSecondMs,
        .downscale_stabilization_period_ms = 0,
        .upscale_stabilization_period_ms = 60 * kSecondMs},
       1,
       Repeat(4, 20),
       Runs({{1, 6}, {2, 6}, {3, 6}, {4, 3}})},
      // Spiky load: every 30 s contains a low recommendation, so nothing goes up until the load
      // has stayed high for the whole period (t = 70 s), and again for the next step (100 s).
      {"upscale waits for the lowest recommendation of the period",
       {.window_ms = 10 * kSecondMs,
        .downscale_stabilization_period_ms = 0,
        .upscale_stabilization_period_ms = 30 * kSecondMs},
       2,
       {8, 2, 8, 2, 8, 8, 8, 8, 8, 8, 8, 8},
       Runs({{2, 7}, {3, 3}, {5, 3}})},
      // First downscale period: no move down before 30 s; afterwards the request stays at the
      // highest recommendation of the last 30 s (8 is recommended whenever the load is back).
      {"no downscale during first downscale period, then the period's maximum",
       {.window_ms = 10 * kSecondMs,
        .downscale_stabilization_period_ms = 30 * kSecondMs,
        .upscale_stabilization_period_ms = 0},
       8,
       {2, 8, 2, 8, 2, 2, 2, 2, 2, 2, 2, 2},
       Runs({{8, 7}, {6, 3}, {5, 3}})},
      // Recommendations of 3 held back by the first upscale period are still in the downscale
      // period when the load drops at 40 s; they keep the request at current (2), never lift it.
      {"downscale floor never raises the request above current",
       {.window_ms = 10 * kSecondMs,
        .downscale_stabilization_period_ms = 30 * kSecondMs,
        .upscale_stabilization_period_ms = 60 * kSecondMs},
       2,
       {8, 8, 8, 1, 1, 1, 1},
       {2, 2, 2, 2, 2, 2, 1, 1}},
      // The mirror image: recommendations of 6 held back by the first downscale period are
      // still in the upscale period when the load jumps at 40 s; they hold the request at 8
      // (§7 read literally would drop it to 6 under a load of 12) until they age out.
      {"upscale ceiling never lowers the request below current",
       {.window_ms = 10 * kSecondMs,
        .downscale_stabilization_period_ms = 60 * kSecondMs,
        .upscale_stabilization_period_ms = 30 * kSecondMs},
       8,
       {1, 1, 1, 12, 12, 12, 12},
       {8, 8, 8, 8, 8, 8, 12, 12}},
      // Cortex bug #1846: with §7 read literally a shorter upscale period (the defaults: 1 m vs
      // 5 m) let an idle API shrink after 1 m and then every tick (10, 8, 6, 5, 4, 3, 2 from
      // 60 s on). The downscale period holds here for its full 300 s.
      {"default downscale period holds although the upscale period is shorter",
       {.min_replicas = 2},
       10,
       Repeat(0, 40),
       Runs({{10, 30}, {8, 11}})},
  });
}

TEST(AutoscalerPolicy, ZeroTrafficShrinksStepByStepTowardMin) {
  // Each step is the factor floor (ceil(0.75 * current), or current - 1 at 2 and 3), and each
  // level is held for one downscale period (60 s) since it was recommended within it. Zero in
  // flight is data, not "no data": every replica publishes zeros.
  ExpectSequences({{"60 s periods, min 2",
                    {.min_replicas = 2,
                     .downscale_stabilization_period_ms = 60 * kSecondMs,
                     .upscale_stabilization_period_ms = 60 * kSecondMs},
                    10,
                    Repeat(0, 45),
                    Runs({{10, 6}, {8, 6}, {6, 6}, {5, 6}, {4, 6}, {3, 6}, {2, 10}})}});
}

// The benchmark: window 10 s, upscale_stabilization_period 0, target 1, a load step
// from 1x to 4x the target. Once the window holds only the new load the request grows by the
// factor rule each tick: 1 -> max(2, ceil(1.5)) = 2 -> max(3, ceil(3)) = 3 -> min(4, ceil(4.5))
// = 4, i.e. 4 replicas 30 s after the step. A step in the middle of a window gives the same
// sequence: its first tick averages 2.5 -> 3, still clamped to 2.
TEST(AutoscalerPolicy, LoadStepBenchmarkReachesFourReplicasInThreeTicks) {
  const Settings settings{.target_replica_concurrency = 1,
                          .window_ms = 10 * kSecondMs,
                          .upscale_stabilization_period_ms = 0};
  const std::vector<int> want = {1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 4};
  EXPECT_EQ(Replay(settings, 1, {1, 1, 1, 1, 1, 1, 4, 4, 4, 4, 4, 4}), want);

  State state;
  std::vector<Sample> samples = Steady(1, 0, 65);
  for (const Sample& s : Steady(4, 65, 120)) samples.push_back(s);
  std::vector<int> got;
  for (int64_t t = 0; t <= 120; t += 10) {
    got.push_back(Tick(settings, samples, t * kSecondMs, state).request);
  }
  EXPECT_EQ(got, want);
}

TEST(AutoscalerPolicy, RestartStartsTheFirstPeriodsAgain) {
  const Settings settings{.window_ms = 10 * kSecondMs,
                          .downscale_stabilization_period_ms = 60 * kSecondMs,
                          .upscale_stabilization_period_ms = 60 * kSecondMs};
  const std::vector<Sample> idle = Steady(0, 0, 1100);
  // Long after its start an idle API steps down at once (its history holds nothing higher).
  State running{.start_ms = 0, .current = 4, .recommendations = {}};
  EXPECT_EQ(Tick(settings, idle, 1000 * kSecondMs, running).request, 3);
  // An operator restart or redeploy starts afresh from the Deployment's replicas.
  State restarted;
  restarted.current = 4;
  for (int64_t t = 1000; t < 1060; t += 10) {
    EXPECT_EQ(Tick(settings, idle, t * kSecondMs, restarted).request, 4) << "t=" << t;
  }
  EXPECT_EQ(Tick(settings, idle, 1060 * kSecondMs, restarted).request, 3);
}

TEST(AutoscalerPolicy, HistoryKeepsOnlyTheLongerPeriod) {
  const Settings settings{.downscale_stabilization_period_ms = 60 * kSecondMs,
                          .upscale_stabilization_period_ms = 30 * kSecondMs};
  const std::vector<Sample> samples = Steady(5, 0, 1000);
  State state;
  for (int64_t t = 0; t <= 1000; t += 10) Tick(settings, samples, t * kSecondMs, state);
  ASSERT_EQ(state.recommendations.size(), 6u);  // 950, 960, ..., 1000 s
  EXPECT_EQ(state.recommendations.front().first, 950 * kSecondMs);
  EXPECT_EQ(state.recommendations.back().first, 1000 * kSecondMs);
}

// --- Recorded series --------------------------------------------------------------------------

struct RecordedSeries {
  std::string name;
  std::vector<int> in_flight;  // one per second from t = 1 s; -1: no sample that second
  Settings settings;
  int init_replicas;
  std::vector<int> requests;
};

// clang-format off
// BEGIN GENERATED by testdata/replay_reference.py
// RampUp: 240 s of 1 s samples, one line per 10 s; -1 = no sample.
constexpr int kRampUpInFlight[] = {
    0, 1, 1, 0, 1, 1, 0, 2, 2, 2,
    2, 1, 2, 2, 2, 1, 1, 2, 1, 2,
    0, 2, 1, 1, 2, 3, 2, 1, 3, 3,
    3, 2, 2, 3, 1, 2, 2, 2, 3, 3,
    2, 4, 2, 3, 3, 2, 4, 2, 4, 4,
    3, 3, 3, 5, 5, 3, 3, 5, 3, 4,
    3, 3, 3, 4, 5, 5, 3, 5, 6, 5,
    5, 5, 6, 5, 6, 6, 5, 6, 4, 6,
    5, 6, 6, 5, 7, 7, 5, 7, 6, 5,
    5, 7, 7, 7, 7, 5, 7, 7, 7, 8,
    7, 6, 7, 7, 8, 8, 8, 8, 8, 7,
    8, 6, 9, 9, 7, 8, 9, 9, 9, 7,
    7, 7, 7, 8, 9, 9, 9, 10, 9, 8,
    10, 9, 8, 10, 8, 9, 9, 9, 10, 8,
    9, 10, 9, 10, 9, 10, 10, 11, 9, 10,
    10, 9, 9, 10, 10, 9, 9, 10, 12, 10,
    12, 10, 10, 10, 11, 10, 11, 11, 11, 12,
    11, 10, 12, 13, 11, 11, 12, 12, 11, 13,
    11, 12, 13, 13, 11, 13, 12, 13, 12, 13,
    11, 12, 12, 12, 12, 12, 11, 13, 13, 12,
    13, 13, 11, 11, 12, 13, 13, 11, 11, 12,
    13, 12, 11, 13, 13, 11, 11, 12, 13, 12,
    13, 12, 11, 13, 13, 11, 11, 11, 11, 12,
    13, 12, 11, 13, 13, 12, 11, 12, 12, 13,
};
const RecordedSeries kRampUp{
    .name = "RampUp",
    .in_flight = {std::begin(kRampUpInFlight), std::end(kRampUpInFlight)},
    .settings = {
        .min_replicas = 1,
        .max_replicas = 10,
        .target_replica_concurrency = 2.0,
        .window_ms = 30000,
        .downscale_stabilization_period_ms = 60000,
        .upscale_stabilization_period_ms = 30000,
        .max_downscale_factor = 0.75,
        .max_upscale_factor = 1.5,
        .downscale_tolerance = 0.05,
        .upscale_tolerance = 0.05,
    },
    .init_replicas = 1,
    // The request after each tick at t = 0, 10, 20, ... s.
    .requests = {
        1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
        3, 3, 3, 4, 4, 4, 5, 5, 5, 5,
        6, 6, 6, 6, 6,
    },
};
// Spike: 300 s of 1 s samples, one line per 10 s; -1 = no sample.
constexpr int kSpikeInFlight[] = {
    2, 2, 3, 4, 4, 4, 3, 2, 2, 3,
    4, 3, 2, 4, 4, 3, 2, 2, 4, 4,
    2, 3, 4, 3, 3, 3, 2, 2, 2, 3,
    4, 3, 3, 4, 2, 4, 4, 4, 2, 3,
    4, 4, 4, 4, 2, 2, 4, 2, 2, 3,
    4, 2, 3, 4, 4, 3, 2, 3, 3, 4,
    29, 30, 29, 31, 30, 30, 29, 30, 29, 31,
    31, 30, 29, 29, 29, 29, 30, 30, 31, 30,
    29, 30, 31, 29, 31, 29, 31, 30, 30, 30,
    4, 2, 2, 4, 3, 2, 2, 4, 3, 2,
    3, 3, 3, 2, 4, 2, 2, 4, 3, 3,
    3, 3, 3, 4, 3, 4, 2, 4, 4, 2,
    2, 3, 2, 3, 3, 3, 4, 4, 2, 3,
    4, 4, 3, 4, 4, 3, 3, 2, 2, 2,
    2, 4, 4, 4, 3, 3, 2, 3, 2, 4,
    2, 2, 3, 4, 4, 2, 3, 4, 2, 3,
    3, 2, 4, 3, 3, 3, 3, 3, 2, 2,
    2, 3, 3, 2, 3, 4, 4, 4, 3, 3,
    2, 3, 4, 4, 3, 2, 4, 4, 3, 4,
    4, 4, 4, 3, 2, 3, 2, 4, 4, 4,
    3, 2, 3, 3, 4, 3, 2, 2, 4, 3,
    4, 4, 4, 3, 2, 3, 4, 4, 3, 2,
    4, 2, 4, 3, 4, 4, 4, 4, 4, 2,
    3, 4, 3, 4, 4, 3, 2, 3, 2, 3,
    2, 2, 2, 2, 3, 4, 3, 4, 2, 3,
    3, 4, 3, 2, 3, 3, 4, 2, 2, 2,
    4, 2, 2, 4, 3, 4, 4, 2, 2, 3,
    2, 4, 2, 4, 2, 2, 3, 3, 3, 3,
    2, 4, 2, 3, 4, 3, 2, 4, 4, 2,
    2, 4, 4, 4, 4, 4, 2, 4, 2, 3,
};
const RecordedSeries kSpike{
    .name = "Spike",
    .in_flight = {std::begin(kSpikeInFlight), std::end(kSpikeInFlight)},
    .settings = {
        .min_replicas = 2,
        .max_replicas = 12,
        .target_replica_concurrency = 3.0,
        .window_ms = 20000,
        .downscale_stabilization_period_ms = 60000,
        .upscale_stabilization_period_ms = 0,
        .max_downscale_factor = 0.75,
        .max_upscale_factor = 1.5,
        .downscale_tolerance = 0.05,
        .upscale_tolerance = 0.05,
    },
    .init_replicas = 2,
    // The request after each tick at t = 0, 10, 20, ... s.
    .requests = {
        2, 2, 2, 2, 2, 2, 2, 3, 5, 8,
        8, 8, 8, 8, 8, 6, 6, 6, 6, 6,
        6, 5, 5, 5, 5, 5, 5, 4, 4, 4,
        4,
    },
};
// Decay: 300 s of 1 s samples, one line per 10 s; -1 = no sample.
constexpr int kDecayInFlight[] = {
    24, 23, 23, 21, 22, 21, 22, 22, 20, 20,
    20, 20, 19, 20, 19, 18, 17, 19, 17, 17,
    17, 18, 15, 16, 16, 15, 15, 14, 16, 14,
    14, 13, 13, 13, 13, 13, 14, 14, 12, 12,
    13, 12, 13, 11, 12, 10, 12, 10, 11, 9,
    11, 9, 11, 10, 10, 9, 8, 10, 8, 8,
    10, 8, 8, 7, 7, 9, 9, 7, 8, 8,
    7, 7, 8, 6, 7, 7, 7, 6, 5, 5,
    6, 5, 7, 5, 6, 5, 7, 6, 4, 5,
    6, 4, 4, 6, 4, 4, 5, 4, 6, 6,
    3, 3, 3, 4, 3, 4, 4, 5, 5, 3,
    4, 5, 4, 3, 5, 3, 3, 2, 4, 2,
    3, 2, 4, 2, 4, 4, 2, 3, 4, 2,
    3, 2, 4, 3, 4, 2, 2, 2, 3, 3,
    2, 2, 3, 1, 3, 2, 1, 3, 3, 3,
    3, 1, 2, 3, 1, 1, 3, 3, 2, 2,
    2, 1, 3, 3, 2, 3, 0, 2, 0, 1,
    1, 1, 0, 2, 2, 2, 1, 0, 0, 1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, 2, 2, 2, 2, 2, 0, 2, 1,
    2, 2, 2, 1, 2, 0, 0, 2, 2, 1,
    0, 2, 0, 1, 1, 1, 1, 1, 2, 1,
    1, 1, 0, 0, 1, 2, 0, 2, 0, 2,
    1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
    0, 0, 1, 0, 0, 0, 0, 0, 1, 0,
    1, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 1, 1, 0, 0,
    1, 0, 0, 1, 0, 0, 1, 0, 0, 0,
    1, 1, 0, 0, 0, 0, 1, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 1, 0, 0, 1,
};
const RecordedSeries kDecay{
    .name = "Decay",
    .in_flight = {std::begin(kDecayInFlight), std::end(kDecayInFlight)},
    .settings = {
        .min_replicas = 1,
        .max_replicas = 20,
        .target_replica_concurrency = 2.0,
        .window_ms = 60000,
        .downscale_stabilization_period_ms = 30000,
        .upscale_stabilization_period_ms = 60000,
        .max_downscale_factor = 0.75,
        .max_upscale_factor = 1.5,
        .downscale_tolerance = 0.1,
        .upscale_tolerance = 0.1,
    },
    .init_replicas = 12,
    // The request after each tick at t = 0, 10, 20, ... s.
    .requests = {
        12, 12, 12, 12, 11, 10, 9, 9, 8, 7,
        7, 6, 6, 6, 5, 5, 5, 4, 4, 4,
        3, 3, 3, 2, 2, 2, 1, 1, 1, 1,
        1,
    },
};
// END GENERATED
// clang-format on

TEST(AutoscalerPolicy, RecordedSeriesReplayToReferenceRequests) {
  for (const RecordedSeries* r : {&kRampUp, &kSpike, &kDecay}) {
    SCOPED_TRACE(r->name);
    State state;
    state.current = r->init_replicas;
    std::vector<Sample> scraped;
    std::vector<int> got;
    for (int64_t now_s = 0; now_s <= static_cast<int64_t>(r->in_flight.size()); now_s += 10) {
      for (int64_t t = now_s - 9; t <= now_s; ++t) {
        if (t >= 1 && r->in_flight[t - 1] >= 0) {
          scraped.push_back({t * kSecondMs, static_cast<double>(r->in_flight[t - 1])});
        }
      }
      const Decision d = Tick(r->settings, scraped, now_s * kSecondMs, state);
      EXPECT_EQ(d.has_data, now_s > 0) << "t=" << now_s;
      got.push_back(d.request);
    }
    EXPECT_EQ(got, r->requests);
  }
}

}  // namespace
}  // namespace cortex::autoscaler
