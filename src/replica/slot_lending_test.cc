// Lending slots: a SlotLender over a fake of a replica's pool (socket pairs, each answered by a
// thread), and a borrower's LentSlots driven by its own Dispatcher, in one io_context.
#include "replica/slot_lending.h"

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "replica/dispatcher.h"
#include "replica/testing/fake_slots.h"

namespace cortex::replica {
namespace {

namespace asio = net::asio;
using namespace std::chrono_literals;
using testing::FakeSlots;

class SlotLendingTest : public ::testing::Test {
 protected:
  // A replica with `n` slots, `busy` of them taken by requests of its own, and a borrower.
  void SetUp(int n, int busy = 0) {
    pool_ = std::make_unique<FakeSlots>(io_, replica_queue_, n);
    for (int i = 0; i < busy; ++i) busy_.push_back(replica_queue_.TryAcquire());
    lender_ = std::make_unique<SlotLender>(
        io_, replica_queue_, *pool_, [this](const nlohmann::json& r) { reports_.push_back(r); });
    pool_->on_closed = [this](int slot) { lender_->SlotClosed(slot); };
    auto ends = LendingChannel::Pair(io_);
    ASSERT_TRUE(ends.ok()) << ends.status();
    borrower_ = std::make_unique<LentSlots>(io_, borrower_queue_, ends->second);
    dispatcher_ =
        std::make_unique<Dispatcher>(io_, borrower_queue_, *borrower_, metrics_, std::nullopt);
    asio::co_spawn(
        io_, [this]() -> asio::awaitable<void> { co_await borrower_->Run(); }, asio::detached);
    lender_->Serve(ends->first);
  }

  void TearDown() override {
    // The borrower first: its Run must end while it is alive.
    if (borrower_) {
      lender_->Close();
      RunFor(20ms);
    }
  }

  void RunFor(std::chrono::milliseconds d) {
    io_.run_for(d);
    io_.restart();
  }

  // Runs the io_context until `done` (or 5 s have passed).
  template <typename Done>
  void RunUntil(Done done) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < deadline) RunFor(5ms);
    ASSERT_TRUE(done());
  }

  // Starts a request through the borrower; its result lands in `results_[body]`.
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

  std::string BodyOf(const std::string& request) {
    const auto& result = results_.at(request);
    return result.ok() ? result->body : result.status().ToString();
  }

  asio::io_context io_{1};
  SlotQueue replica_queue_;
  SlotQueue borrower_queue_;
  std::unique_ptr<FakeSlots> pool_;
  std::vector<int> busy_;
  std::unique_ptr<SlotLender> lender_;
  std::vector<nlohmann::json> reports_;
  std::unique_ptr<LentSlots> borrower_;
  FrontMetrics metrics_{"api", "borrower"};
  std::unique_ptr<Dispatcher> dispatcher_;
  RequestHead head_{"POST", "/predict", {{"content-type", "text/plain"}}};
  net::ClientWatch client_;
  std::vector<std::unique_ptr<std::string>> bodies_;
  std::map<std::string, absl::StatusOr<WorkerResponse>> results_;
};

TEST_F(SlotLendingTest, EveryFreeSlotIsLentAndServesTheBorrowersRequests) {
  SetUp(2);
  RunUntil([&] { return borrower_->held() == 2; });
  EXPECT_EQ(lender_->lent(), 2u);
  EXPECT_EQ(replica_queue_.free_slots(), 0u);
  EXPECT_EQ(borrower_->process_of(0), 10);
  EXPECT_EQ(borrower_->process_of(1), 11);
  for (const char* body : {"a", "b", "c"}) Send(body);
  RunUntil([&] { return results_.size() == 3; });
  for (const char* body : {"a", "b", "c"}) EXPECT_EQ(BodyOf(body), std::string("ok:") + body);
  EXPECT_EQ(pool_->worker(0).log().size() + pool_->worker(1).log().size(), 3u);
  EXPECT_EQ(borrower_queue_.free_slots(), 2u);
}

TEST_F(SlotLendingTest, ASlotInUseByTheReplicaIsLentOnlyOnceItIsFree) {
  SetUp(2, /*busy=*/1);
  RunUntil([&] { return borrower_->held() == 1; });
  RunFor(20ms);
  EXPECT_EQ(borrower_->held(), 1u);
  replica_queue_.Release(busy_[0]);  // the replica's own request is done
  RunUntil([&] { return borrower_->held() == 2; });
  EXPECT_EQ(replica_queue_.free_slots(), 0u);
}

TEST_F(SlotLendingTest, ASlotWhoseProcessDiedIsRevokedFromTheBorrower) {
  SetUp(2);
  RunUntil([&] { return borrower_->held() == 2; });
  pool_->CloseSlot(0);  // as the pool does when process p10 exits
  RunUntil([&] { return borrower_->held() == 1; });
  EXPECT_EQ(lender_->lent(), 1u);
  EXPECT_EQ(borrower_queue_.free_slots(), 1u);
  Send("x");
  RunUntil([&] { return results_.size() == 1; });
  EXPECT_EQ(BodyOf("x"), "ok:x");
  EXPECT_EQ(pool_->worker(1).log(), (std::vector<std::string>{"x"}));
}

TEST_F(SlotLendingTest, ARecallTakesEachSlotBackOnceTheBorrowerIsDoneWithIt) {
  SetUp(2);
  RunUntil([&] { return borrower_->held() == 2; });
  Send("slow");  // holds one slot for 100 ms
  RunFor(20ms);
  bool recalled = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await lender_->Recall(5s);
        recalled = true;
      },
      asio::detached);
  RunUntil([&] { return borrower_->held() == 1; });  // the idle one came back at once
  EXPECT_TRUE(borrower_->recalled());
  EXPECT_EQ(replica_queue_.free_slots(), 1u);
  EXPECT_FALSE(recalled);
  RunUntil([&] { return recalled; });
  EXPECT_EQ(BodyOf("slow"), "ok:slow");  // answered before its slot went back
  EXPECT_EQ(borrower_->held(), 0u);
  EXPECT_EQ(lender_->lent(), 0u);
  EXPECT_EQ(replica_queue_.free_slots(), 2u);  // the replica's again, and not lent anew
  EXPECT_TRUE(pool_->closed.empty());
  EXPECT_FALSE(lender_->has_borrower());
}

TEST_F(SlotLendingTest, SlotsHeldByABorrowerThatWentAwayAreClosedNotReused) {
  SetUp(2);
  RunUntil([&] { return borrower_->held() == 2; });
  borrower_.reset();  // its end of the channel closes
  RunUntil([&] { return !lender_->has_borrower(); });
  EXPECT_EQ(pool_->closed.size(), 2u);
  EXPECT_EQ(lender_->lent(), 0u);
  EXPECT_EQ(replica_queue_.free_slots(), 0u);
}

TEST_F(SlotLendingTest, ASlotThatBreaksInTheBorrowerFailsWith502AndIsClosedInTheReplica) {
  SetUp(2);
  RunUntil([&] { return borrower_->held() == 2; });
  Send("break");
  RunUntil([&] { return results_.size() == 1 && pool_->closed.size() == 1; });
  ASSERT_FALSE(results_.at("break").ok());
  EXPECT_EQ(HttpStatusFor(results_.at("break").status()), 502);
  EXPECT_EQ(lender_->lent(), 1u);
  EXPECT_EQ(borrower_->held(), 1u);
}

TEST_F(SlotLendingTest, TheBorrowersReportsReachTheLender) {
  SetUp(1);
  borrower_->Report({{"in_flight", 1.5}, {"responses_2xx", 7}});
  RunUntil([&] { return reports_.size() == 1; });
  EXPECT_EQ(reports_[0]["responses_2xx"], 7);
  EXPECT_EQ(reports_[0]["in_flight"], 1.5);
}

TEST_F(SlotLendingTest, WhenTheLenderGoesTheBorrowerHoldsNothingAndItsWaitersStayQueued) {
  SetUp(1);
  RunUntil([&] { return borrower_->held() == 1; });
  Send("slow");
  RunFor(20ms);
  Send("waits");
  lender_->Close();
  RunUntil([&] { return borrower_->gone(); });
  EXPECT_EQ(borrower_->held(), 0u);
  EXPECT_EQ(borrower_queue_.waiting(), 1u);  // "waits" was never sent: its owner may go elsewhere
  RunUntil([&] { return results_.count("slow") == 1; });
  EXPECT_EQ(pool_->closed.size(), 1u);
  borrower_queue_.Close();
  RunUntil([&] { return results_.size() == 2; });
  EXPECT_EQ(HttpStatusFor(results_.at("waits").status()), 503);
  EXPECT_EQ(pool_->worker(0).log(), (std::vector<std::string>{"slow"}));
}

// The channel itself, over a real listening socket.
class LendingChannelTest : public ::testing::Test {
 protected:
  void RunUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(5ms);
      io_.restart();
    }
    ASSERT_TRUE(done());
  }

  asio::io_context io_{1};
  std::string path_ = absl::StrCat(::testing::TempDir(), "/lend-", ::getpid(), ".sock");
};

TEST_F(LendingChannelTest, OneBorrowerAtATimeAndAMalformedPacketEndsIt) {
  SlotQueue queue;
  FakeSlots pool(io_, queue, 1);
  SlotLender lender(io_, queue, pool, nullptr);
  ASSERT_TRUE(lender.Listen(path_).ok());
  auto first = LendingChannel::Connect(io_, path_);
  ASSERT_TRUE(first.ok()) << first.status();
  std::optional<absl::StatusOr<LendingPacket>> lent;
  asio::co_spawn(
      io_, [&]() -> asio::awaitable<void> { lent = co_await (*first)->Receive(); }, asio::detached);
  RunUntil([&] { return lent.has_value(); });
  ASSERT_TRUE(lent->ok()) << lent->status();
  EXPECT_EQ((*lent)->type, LendingMessage::kLend);
  EXPECT_GE((*lent)->fd, 0);
  ::close((*lent)->fd);

  auto second = LendingChannel::Connect(io_, path_);
  ASSERT_TRUE(second.ok()) << second.status();
  std::optional<absl::StatusOr<LendingPacket>> refused;
  asio::co_spawn(
      io_, [&]() -> asio::awaitable<void> { refused = co_await (*second)->Receive(); },
      asio::detached);
  RunUntil([&] { return refused.has_value(); });
  EXPECT_FALSE(refused->ok());

  // A lend packet without its connection is malformed (and a borrower never lends): the lender
  // lets the borrower go and closes the slot it held.
  ASSERT_TRUE((*first)->Post({LendingMessage::kLend, 0, 0, {}}).ok());
  RunUntil([&] { return !lender.has_borrower(); });
  EXPECT_EQ(pool.closed, (std::vector<int>{0}));
  lender.Close();
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(LendingChannelTest, APayloadTooBigIsRefusedAndPacketsKeepTheirOrder) {
  auto ends = LendingChannel::Pair(io_);
  ASSERT_TRUE(ends.ok());
  auto [a, b] = *ends;
  EXPECT_FALSE(
      a->Post({LendingMessage::kReport, -1, -1, std::string(LendingChannel::kMaxPayload + 1, 'x')})
          .ok());
  // More than the socket buffer holds: the rest waits, in order.
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(a->Post({LendingMessage::kReport, i, -1, std::string(1000, 'r')}).ok());
  }
  std::vector<int> got;
  asio::co_spawn(
      io_,
      [&, b = b]() -> asio::awaitable<void> {
        for (int i = 0; i < n; ++i) {
          auto packet = co_await b->Receive();
          if (!packet.ok()) co_return;
          got.push_back(packet->slot);
        }
      },
      asio::detached);
  RunUntil([&] { return got.size() == static_cast<size_t>(n); });
  for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], i);
}

}  // namespace
}  // namespace cortex::replica
