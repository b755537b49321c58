// The dispatcher against a fake of its port: slots over socket pairs, each answered by a thread
// that speaks the slot protocol (docs/worker-protocol.md).
#include "replica/dispatcher.h"

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "replica/testing/fake_slots.h"

namespace cortex::replica {
namespace {

namespace asio = net::asio;
using namespace std::chrono_literals;

using testing::FakeSlots;

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp(int slots, std::optional<BatchingOptions> batching = std::nullopt) {
    slots_ = std::make_unique<FakeSlots>(io_, queue_, slots);
    dispatcher_ = std::make_unique<Dispatcher>(io_, queue_, *slots_, metrics_, batching);
    dispatcher_->Start();
  }

  // Starts one request; its result lands in `results_[body]`.
  void Send(const std::string& body) {
    bodies_.push_back(std::make_unique<std::string>(body));
    asio::co_spawn(
        io_,
        [this, body = bodies_.back().get()]() -> asio::awaitable<void> {
          absl::StatusOr<WorkerResponse> result =
              co_await dispatcher_->Run(head_, *body, client_, Dispatcher::Clock::now());
          results_.emplace(*body, std::move(result));
        },
        asio::detached);
  }

  // Runs the io_context until `n` results are in (or 5 s have passed).
  void RunUntil(size_t n) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (results_.size() < n && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(10ms);
      io_.restart();
    }
    ASSERT_EQ(results_.size(), n);
  }

  std::string BodyOf(const std::string& request) {
    const auto& result = results_.at(request);
    return result.ok() ? result->body : result.status().ToString();
  }

  asio::io_context io_{1};
  SlotQueue queue_;
  FrontMetrics metrics_{"api", "replica"};
  std::unique_ptr<FakeSlots> slots_;
  std::unique_ptr<Dispatcher> dispatcher_;
  RequestHead head_{"POST", "/predict", {{"content-type", "text/plain"}}};
  net::ClientWatch client_;
  std::vector<std::unique_ptr<std::string>> bodies_;
  std::map<std::string, absl::StatusOr<WorkerResponse>> results_;
};

TEST_F(DispatcherTest, OneSlotServesItsQueueInArrivalOrder) {
  SetUp(1);
  for (const char* body : {"slow", "b", "c", "d"}) Send(body);
  RunUntil(4);
  EXPECT_EQ(slots_->worker(0).log(), (std::vector<std::string>{"slow", "b", "c", "d"}));
  for (const char* body : {"slow", "b", "c", "d"})
    EXPECT_EQ(BodyOf(body), std::string("ok:") + body);
  EXPECT_EQ(dispatcher_->running(), 0);
  EXPECT_EQ(queue_.waiting(), 0u);
  EXPECT_EQ(queue_.free_slots(), 1u);
}

TEST_F(DispatcherTest, ASlotThatBreaksMidRequestFailsItWith502AndLeavesThePool) {
  SetUp(2);
  Send("break");
  RunUntil(1);
  const auto& failed = results_.at("break");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(HttpStatusFor(failed.status()), 502);
  ASSERT_EQ(slots_->closed.size(), 1u);
  int broken = slots_->closed[0];
  EXPECT_NE(failed.status().message().find(absl::StrCat("worker process p", 10 + broken,
                                                        " exited while handling the request")),
            std::string::npos)
      << failed.status();
  // The other slot serves on; the broken one is not handed out again.
  for (const char* body : {"x", "y"}) Send(body);
  RunUntil(3);
  EXPECT_EQ(BodyOf("x"), "ok:x");
  EXPECT_EQ(BodyOf("y"), "ok:y");
  EXPECT_EQ(slots_->worker(1 - broken).log(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(queue_.free_slots(), 1u);
}

TEST_F(DispatcherTest, WithBatchingTheRequestsThatWaitedForTheSlotLeaveAsOneBatch) {
  SetUp(1, BatchingOptions{4, std::chrono::milliseconds(1)});
  Send("slow");
  io_.run_for(30ms);  // its batch has left, alone, and holds the only slot for 100 ms
  io_.restart();
  for (const char* body : {"a", "b", "c"}) Send(body);
  RunUntil(4);
  EXPECT_EQ(BodyOf("slow"), "0/1");
  EXPECT_EQ(BodyOf("a"), "0/3");
  EXPECT_EQ(BodyOf("b"), "1/3");
  EXPECT_EQ(BodyOf("c"), "2/3");
  EXPECT_EQ(slots_->worker(0).log(), (std::vector<std::string>{"batch: slow", "batch: a b c"}));
  EXPECT_EQ(dispatcher_->running(), 0);
}

}  // namespace
}  // namespace cortex::replica
