#include "replica/in_flight_sampler.h"

#include <gtest/gtest.h>

namespace cortex::replica {
namespace {

using std::chrono::milliseconds;

TEST(InFlightSampler, EachSampleIsTheTimeWeightedAverageOfItsSecond) {
  auto t0 = InFlightSampler::Clock::time_point{};
  InFlightSampler sampler(t0);
  sampler.BeginSecond(t0);
  sampler.Change(+2, t0 + milliseconds(250));   // 2 in flight for 750 ms
  sampler.Change(-1, t0 + milliseconds(1000));  // then 1
  sampler.EndSecond(999, t0 + milliseconds(1000));
  sampler.EndSecond(1999, t0 + milliseconds(2000));
  auto samples = sampler.SamplesAfter(0);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].first, 999);
  EXPECT_DOUBLE_EQ(samples[0].second, 1.5);
  EXPECT_DOUBLE_EQ(samples[1].second, 1.0);
  EXPECT_EQ(sampler.in_flight(), 1);
  EXPECT_EQ(sampler.SamplesAfter(999).size(), 1u);
}

TEST(InFlightSampler, KeepsTenMinutes) {
  auto t = InFlightSampler::Clock::time_point{};
  InFlightSampler sampler(t);
  for (int i = 1; i <= 700; ++i) sampler.EndSecond(i * 1000, t + milliseconds(i * 1000));
  auto samples = sampler.SamplesAfter(0);
  EXPECT_EQ(samples.size(), 600u);
  EXPECT_EQ(samples.front().first, 101'000);
}

}  // namespace
}  // namespace cortex::replica
