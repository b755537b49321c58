#include "replica/batcher.h"

#include <gtest/gtest.h>

namespace cortex::replica {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const auto kNever = [](int) { return false; };

TEST(Batcher, ALoneRequestLeavesWhenTheIntervalHasPassed) {
  Batcher<int> batcher(4, 10ms);
  Clock::time_point t0 = Clock::now();
  EXPECT_FALSE(batcher.Deadline().has_value());
  EXPECT_FALSE(batcher.Ready(t0));
  batcher.Push(1, t0);
  EXPECT_EQ(*batcher.Deadline(), t0 + 10ms);
  EXPECT_FALSE(batcher.Ready(t0 + 9ms));
  EXPECT_TRUE(batcher.Ready(t0 + 10ms));
  std::vector<int> dropped;
  EXPECT_EQ(batcher.Take(kNever, dropped), std::vector<int>{1});
  EXPECT_TRUE(batcher.empty());
}

TEST(Batcher, AFullBatchLeavesAtOnce) {
  Batcher<int> batcher(3, 1s);
  Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) batcher.Push(i, t0);
  EXPECT_TRUE(batcher.full());
  EXPECT_TRUE(batcher.Ready(t0));
}

TEST(Batcher, ABacklogLeavesInFullBatchesOldestFirst) {
  Batcher<int> batcher(2, 1s);
  Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 5; ++i) batcher.Push(i, t0 + std::chrono::milliseconds(i));
  std::vector<int> dropped;
  EXPECT_EQ(batcher.Take(kNever, dropped), (std::vector<int>{0, 1}));
  // The deadline follows the oldest request still waiting.
  EXPECT_EQ(*batcher.Deadline(), t0 + 2ms + 1s);
  EXPECT_EQ(batcher.Take(kNever, dropped), (std::vector<int>{2, 3}));
  EXPECT_FALSE(batcher.Ready(t0 + 5ms));
  EXPECT_EQ(batcher.Take(kNever, dropped), (std::vector<int>{4}));
  EXPECT_TRUE(dropped.empty());
}

TEST(Batcher, RequestsWhoseClientLeftTakeNoPlace) {
  Batcher<int> batcher(2, 1s);
  Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 5; ++i) batcher.Push(i, t0);
  std::vector<int> dropped;
  auto odd_gone = [](int i) { return i % 2 == 1; };
  EXPECT_EQ(batcher.Take(odd_gone, dropped), (std::vector<int>{0, 2}));
  EXPECT_EQ(dropped, std::vector<int>{1});  // 3 and 4 wait for the next batch
  EXPECT_EQ(batcher.size(), 2u);
}

TEST(Batcher, TakeAllEmptiesTheQueue) {
  Batcher<int> batcher(2, 1s);
  for (int i = 0; i < 3; ++i) batcher.Push(i, Clock::now());
  EXPECT_EQ(batcher.TakeAll(), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(batcher.empty());
}

}  // namespace
}  // namespace cortex::replica
