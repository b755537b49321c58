// The dispatcher against a fake of its port: slots over socket pairs, each answered by a thread
// that speaks the slot protocol (docs/worker-protocol.md).
#include "replica/dispatcher.h"

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace cortex::replica {
namespace {

namespace asio = net::asio;
using namespace std::chrono_literals;

bool ReadExactly(int fd, char* out, size_t n) {
  while (n > 0) {
    ssize_t got = ::read(fd, out, n);
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

void WriteFrame(int fd, const std::string& header, const std::string& body) {
  std::string frame;
  for (uint32_t v : {static_cast<uint32_t>(4 + header.size() + body.size()),
                     static_cast<uint32_t>(header.size())}) {
    for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(v >> shift));
  }
  frame += header + body;
  ASSERT_EQ(::write(fd, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
}

uint32_t BigEndian(const char* p) {
  auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

// One worker slot: answers "ok:<body>" to a request and "<i>/<n>" to each request of a batch,
// sleeps 100 ms on a body "slow" (alone or in a batch), and closes the connection without
// answering on "break". Logs what it was sent: each request's body, or "batch: <bodies>".
class FakeWorker {
 public:
  explicit FakeWorker(int fd) : fd_(fd), thread_([this] { Serve(); }) {}
  ~FakeWorker() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::vector<std::string> log() {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  void Serve() {
    while (true) {
      char lengths[8];
      if (!ReadExactly(fd_, lengths, 8)) return;
      std::string rest(BigEndian(lengths) - 4, '\0');
      if (!ReadExactly(fd_, rest.data(), rest.size())) return;
      size_t header_size = BigEndian(lengths + 4);
      auto head = nlohmann::json::parse(rest.substr(0, header_size));
      std::string body = rest.substr(header_size);
      if (head.contains("batch")) {
        std::string entry = "batch:";
        nlohmann::json heads = nlohmann::json::array();
        std::string answers;
        size_t n = head["batch"].size();
        size_t at = 0;
        for (size_t i = 0; i < n; ++i) {
          size_t length = head["batch"][i]["length"];
          entry += " " + body.substr(at, length);
          at += length;
          std::string answer = std::to_string(i) + "/" + std::to_string(n);
          heads.push_back(
              {{"status", 200}, {"content_type", "text/plain"}, {"length", answer.size()}});
          answers += answer;
        }
        Log(entry);
        if (entry.find(" slow") != std::string::npos) std::this_thread::sleep_for(100ms);
        WriteFrame(fd_, nlohmann::json{{"batch", heads}}.dump(), answers);
        continue;
      }
      Log(body);
      if (body == "break") {
        ::shutdown(fd_, SHUT_RDWR);
        return;
      }
      if (body == "slow") std::this_thread::sleep_for(100ms);
      WriteFrame(fd_, R"({"status":200,"content_type":"text/plain"})", "ok:" + body);
    }
  }
  void Log(std::string entry) {
    std::lock_guard lock(mu_);
    log_.push_back(std::move(entry));
  }

  int fd_;
  std::mutex mu_;
  std::vector<std::string> log_;
  std::thread thread_;
};

// The port's fake: `n` slots, slot i of "process" 10 + i.
class FakeSlots : public SlotSockets {
 public:
  FakeSlots(asio::io_context& io, SlotQueue& queue, int n) : queue_(queue) {
    for (int i = 0; i < n; ++i) {
      int fds[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
      sockets_.push_back(std::make_unique<Socket>(io, asio::local::stream_protocol(), fds[0]));
      workers_.push_back(std::make_unique<FakeWorker>(fds[1]));
      queue_.Add(i);
    }
  }
  Socket& socket(int slot) override { return *sockets_[slot]; }
  int process_of(int slot) const override { return 10 + slot; }
  void CloseSlot(int slot) override {
    closed.push_back(slot);
    queue_.Remove(slot);
    sockets_[slot]->close();
  }
  FakeWorker& worker(int slot) { return *workers_[slot]; }

  std::vector<int> closed;

 private:
  SlotQueue& queue_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
};

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
