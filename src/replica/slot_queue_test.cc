#include "replica/slot_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace cortex::replica {
namespace {

TEST(SlotQueue, FreeSlotIsGivenAtOnce) {
  SlotQueue queue;
  queue.Add(7);
  int got = -2;
  queue.Acquire([&](int slot) { got = slot; });
  EXPECT_EQ(got, 7);
  EXPECT_EQ(queue.free_slots(), 0u);
}

TEST(SlotQueue, TryAcquireTakesOnlyAnUncontendedSlot) {
  SlotQueue queue;
  EXPECT_EQ(queue.TryAcquire(), -1);
  queue.Add(3);
  EXPECT_EQ(queue.TryAcquire(), 3);
  EXPECT_EQ(queue.TryAcquire(), -1);
}

TEST(SlotQueue, WaitersAreServedInArrivalOrder) {
  SlotQueue queue;
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) queue.Acquire([&order, i](int) { order.push_back(i); });
  EXPECT_EQ(queue.waiting(), 3u);
  queue.Add(1);
  queue.Add(2);
  queue.Add(3);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(queue.waiting(), 0u);
  EXPECT_EQ(queue.free_slots(), 0u);
}

TEST(SlotQueue, ReleaseWithoutWaitersReturnsSlotToPool) {
  SlotQueue queue;
  queue.Add(4);
  EXPECT_EQ(queue.TryAcquire(), 4);
  EXPECT_EQ(queue.free_slots(), 0u);
  queue.Release(4);
  EXPECT_EQ(queue.free_slots(), 1u);
  queue.Remove(4);
  EXPECT_EQ(queue.free_slots(), 0u);
}

// A worker dies while one of its slots is serving a request: the front removes the slot (its
// socket is closed). When that request's coroutine finishes it releases the slot; the dead slot
// must not go back to the pool, or the next request would be written to a closed socket.
TEST(SlotQueue, ASlotRemovedWhileInUseIsNotReturnedByRelease) {
  SlotQueue queue;
  queue.Add(0);
  queue.Add(1);
  int taken = queue.TryAcquire();
  ASSERT_GE(taken, 0);
  queue.Remove(taken);
  queue.Release(taken);
  EXPECT_EQ(queue.free_slots(), 1u);
  int next = queue.TryAcquire();
  EXPECT_NE(next, taken);
  EXPECT_EQ(queue.TryAcquire(), -1);
  int waited = -2;
  queue.Acquire([&](int slot) { waited = slot; });
  queue.Release(taken);
  EXPECT_EQ(waited, -2);  // still waiting: the dead slot was not handed over
  queue.Release(next);
  EXPECT_EQ(waited, next);
}

TEST(SlotQueue, CloseFailsWaitersAndLaterAcquires) {
  SlotQueue queue;
  int first = 0, second = 0;
  queue.Acquire([&](int slot) { first = slot; });
  queue.Close();
  queue.Acquire([&](int slot) { second = slot; });
  EXPECT_EQ(first, -1);
  EXPECT_EQ(second, -1);
}

}  // namespace
}  // namespace cortex::replica
