// The replica front against a fake runtime: a small Python program that speaks the slot
// protocol (docs/worker-protocol.md) and does what each request's body says (sleep, exit).
#include "replica/front.h"

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "replica/dispatcher.h"
#include "replica/slot_lending.h"

namespace cortex::replica {
namespace {

namespace asio = net::asio;
namespace beast = net::beast;
namespace http = net::http;
using net::tcp;

constexpr const char* kFakeWorker = R"PY(
import json, os, socket, struct, sys, threading, time
path, slots = sys.argv[1], int(sys.argv[2])

def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def serve(conn):
    while True:
        total, header_length = struct.unpack(">II", read_exactly(conn, 8))
        rest = read_exactly(conn, total - 4)
        head = json.loads(rest[:header_length])
        if "batch" in head:  # server-side batching: one answer per request, "<index>/<size>"
            n = len(head["batch"])
            at = header_length
            for h in head["batch"]:  # each request's order: the longest sleep, any exit
                order = json.loads(rest[at:at + h["length"]] or b"{}")
                at += h["length"]
                time.sleep(order.get("sleep", 0.05))
                if order.get("exit"):
                    os._exit(3)
            heads, bodies = [], []
            for i, h in enumerate(head["batch"]):
                body = f"{i}/{n}".encode()
                heads.append({"status": 200, "content_type": "text/plain", "length": len(body)})
                bodies.append(body)
            header = json.dumps({"batch": heads}).encode()
            body = b"".join(bodies)
            conn.sendall(struct.pack(">II", 4 + len(header) + len(body), len(header)) + header + body)
            continue
        order = json.loads(rest[header_length:] or b"{}")
        time.sleep(order.get("sleep", 0))
        if order.get("exit"):
            os._exit(3)
        header = json.dumps({"status": 200, "content_type": "text/plain"}).encode()
        body = f"pid {os.getpid()}".encode()
        if "size" in order:  # an answer of that size: the request body's length, then padding
            body = f"{total - 4 - header_length}:".encode()
            body += b"r" * (order["size"] - len(body))
        frame = struct.pack(">II", 4 + len(header) + len(body), len(header)) + header + body
        if order.get("split"):  # in pieces: part of the lengths, the rest of them, then halves
            half = (len(frame) + 10) // 2
            for piece in (frame[:3], frame[3:10], frame[10:half], frame[half:]):
                conn.sendall(piece)
                time.sleep(0.02)
            continue
        conn.sendall(frame)

conns = []
for _ in range(slots):
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    conns.append(c)
threads = [threading.Thread(target=serve, args=(c,), daemon=True) for c in conns]
for t in threads:
    t.start()
for t in threads:
    t.join()
)PY";

class FakeRuntime : public Runtime {
 public:
  explicit FakeRuntime(std::string script) : script_(std::move(script)) {}
  std::string name() const override { return "fake"; }
  RuntimeCommand Command(const std::string& socket_path, int slots, int) const override {
    return {{"/usr/bin/python3", script_, socket_path, std::to_string(slots)}, {}, {}, ""};
  }

 private:
  std::string script_;
};

class FrontTest : public ::testing::Test {
 protected:
  void Start(int processes, int threads, int max_concurrency,
             std::chrono::milliseconds healthy_after = std::chrono::seconds(60),
             std::optional<config::BatchingConfig> batching = std::nullopt) {
    std::ofstream(dir_ / "worker.py") << kFakeWorker;
    FrontOptions options;
    options.replica_id = "r1";
    options.api.name = "a";
    options.api.predictor = config::PredictorConfig{};
    options.api.predictor->type = "python";
    options.api.predictor->processes_per_replica = processes;
    options.api.predictor->threads_per_process = threads;
    options.api.predictor->server_side_batching = batching;
    options.api.autoscaling.max_replica_concurrency = max_concurrency;
    options.socket_dir = (dir_ / "sockets").string();
    options.worker_healthy_after = healthy_after;
    options.lending_socket = lending_socket_;
    std::string script = (dir_ / "worker.py").string();
    options.runtime_for = [script](
                              const config::ApiConfig&,
                              const RuntimeOptions&) -> absl::StatusOr<std::unique_ptr<Runtime>> {
      return std::make_unique<FakeRuntime>(script);
    };
    auto front = Front::Create(io_, options);
    ASSERT_TRUE(front.ok()) << front.status();
    front_ = std::move(*front);
    ASSERT_TRUE(front_->Start().ok());
    for (int i = 0; i < 200 && Send(http::verb::get, "/_cortex/ready").result_int() != 200; ++i) {
      Wait(std::chrono::milliseconds(25));
    }
    ASSERT_EQ(Send(http::verb::get, "/_cortex/ready").result_int(), 200);
  }
  void TearDown() override {
    if (!front_) return;
    bool done = false;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { co_await front_->Shutdown(1000); },
        [&](std::exception_ptr) { done = true; });
    Run([&] { return done; });
  }

  asio::awaitable<net::Response> Request(http::verb method, std::string target, std::string body) {
    beast::tcp_stream stream(io_);
    stream.expires_after(std::chrono::seconds(10));
    co_await stream.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), front_->port()), asio::use_awaitable);
    net::Request request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.body() = std::move(body);
    request.prepare_payload();
    co_await http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    net::Response response;
    co_await http::async_read(stream, buffer, response, asio::use_awaitable);
    co_return response;
  }
  // Several requests at once; their responses in the order given.
  std::vector<net::Response> SendAll(const std::vector<std::string>& bodies) {
    std::vector<net::Response> responses(bodies.size());
    size_t done = 0;
    for (size_t i = 0; i < bodies.size(); ++i) {
      asio::co_spawn(
          io_,
          [this, &responses, &bodies, i]() -> asio::awaitable<void> {
            responses[i] = co_await Request(http::verb::post, "/predict", bodies[i]);
          },
          [&](std::exception_ptr e) {
            ++done;
            if (e) ADD_FAILURE() << "request failed";
          });
      Wait(std::chrono::milliseconds(30));  // they arrive in this order
    }
    Run([&] { return done == bodies.size(); });
    return responses;
  }
  net::Response Send(http::verb method, const std::string& target, const std::string& body = "") {
    net::Response response;
    bool done = false;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { response = co_await Request(method, target, body); },
        [&](std::exception_ptr e) {
          done = true;
          if (e) ADD_FAILURE() << "request failed";
        });
    Run([&] { return done; });
    return response;
  }
  void Wait(std::chrono::milliseconds ms) {
    bool done = false;
    asio::steady_timer timer(io_, ms);
    timer.async_wait([&](auto) { done = true; });
    Run([&] { return done; });
  }
  template <typename Done>
  void Run(Done done) {
    io_.restart();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(done()) << "timed out";
  }

  // A request whose client closed while it waited is never run (it would kill the worker).
  void ExpectAGoneClientIsNotRun(std::optional<config::BatchingConfig> batching = std::nullopt);

  cortex::testing::TempDir dir_{"cortex-front"};
  std::string lending_socket_;  // set before Start() to have the front lend its slots
  asio::io_context io_;
  std::unique_ptr<Front> front_;
};

TEST_F(FrontTest, AdmitsUpToMaxReplicaConcurrencyThenAnswers503WithRetryAfter) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/2);
  auto responses = SendAll({R"({"sleep": 0.4})", R"({"sleep": 0.1})", "{}"});
  EXPECT_EQ(responses[0].result_int(), 200);
  EXPECT_EQ(responses[1].result_int(), 200);  // queued behind the first
  EXPECT_EQ(responses[2].result_int(), 503);
  EXPECT_EQ(responses[2][http::field::retry_after], "1");
  EXPECT_NE(responses[2].body().find("max_replica_concurrency is 2"), std::string::npos);
  EXPECT_EQ(Send(http::verb::post, "/predict", "{}").result_int(), 200);  // room again
}

TEST_F(FrontTest, BatchesFormFromTheQueueAndEachRequestGetsItsOwnAnswer) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/16, std::chrono::seconds(60),
        config::BatchingConfig{3, "200ms", 200'000'000});
  // A lone request waits for company for batch_interval, then goes alone.
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(Send(http::verb::post, "/predict", "{}").body(), "0/1");
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(150));
  // Five at once (30 ms apart): a full batch of three leaves at once, then the other two.
  auto responses = SendAll({"{}", "{}", "{}", "{}", "{}"});
  std::vector<std::string> bodies;
  for (const auto& r : responses) {
    EXPECT_EQ(r.result_int(), 200);
    bodies.push_back(r.body());
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"0/3", "1/3", "2/3", "0/2", "1/2"}));
  auto stats = nlohmann::json::parse(Send(http::verb::get, "/_cortex/stats").body());
  EXPECT_EQ(stats["batches"], 3);
  EXPECT_EQ(stats["batched_requests"], 6);
  std::string metrics = Send(http::verb::get, "/metrics").body();
  EXPECT_NE(metrics.find(R"(cortex_replica_batch_size_bucket{api="a",replica="r1",le="2"} 2)"),
            std::string::npos)
      << metrics;
}

// max_replica_concurrency counts requests, not batches: requests waiting to be batched count.
TEST_F(FrontTest, WithBatchingMaxReplicaConcurrencyCountsRequests) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/2, std::chrono::seconds(60),
        config::BatchingConfig{4, "300ms", 300'000'000});
  auto responses = SendAll({"{}", "{}", "{}"});
  EXPECT_EQ(responses[0].body(), "0/2");
  EXPECT_EQ(responses[1].body(), "1/2");
  EXPECT_EQ(responses[2].result_int(), 503);
  EXPECT_NE(responses[2].body().find("max_replica_concurrency is 2"), std::string::npos);
}

TEST_F(FrontTest, AWorkerThatDiesMidRequestCostsThatRequestAndItsSlotIsNotReused) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/8);
  std::string before = Send(http::verb::post, "/predict", "{}").body();
  net::Response died = Send(http::verb::post, "/predict", R"({"exit": true})");
  EXPECT_EQ(died.result_int(), 502);
  EXPECT_NE(died.body().find("exited while handling the request"), std::string::npos);
  // The next request waits for the restarted worker's slot instead of the dead one.
  net::Response after = Send(http::verb::post, "/predict", "{}");
  EXPECT_EQ(after.result_int(), 200);
  EXPECT_NE(after.body(), before);  // another process
}

// While its only worker process is down (restarting after a back-off), the replica is not
// ready: the gateway sends it nothing, and `cortex get` does not say live.
TEST_F(FrontTest, AReplicaWithNoLiveWorkerIsNotReadyUntilOneIsBack) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/8);
  EXPECT_EQ(Send(http::verb::post, "/predict", R"({"exit": true})").result_int(), 502);
  bool seen_unready = false;
  for (int i = 0; i < 40 && !seen_unready; ++i) {
    seen_unready = Send(http::verb::get, "/_cortex/ready").result_int() == 503;
    if (!seen_unready) Wait(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(seen_unready) << "the replica stayed ready with no worker process";
  bool ready_again = false;
  for (int i = 0; i < 200 && !ready_again; ++i) {
    ready_again = Send(http::verb::get, "/_cortex/ready").result_int() == 200;
    if (!ready_again) Wait(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(ready_again) << "the restarted worker did not make the replica ready again";
  EXPECT_EQ(Send(http::verb::post, "/predict", "{}").result_int(), 200);
}

// Every crash of a worker's life made its back-off longer (10 s after 6), even after a minute of
// health: crashes in a row count, a healthy run starts the count anew.
TEST_F(FrontTest, AWorkersRestartBackOffStartsAnewAfterItRanHealthy) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/8,
        /*healthy_after=*/std::chrono::milliseconds(1500));
  auto ready = [&] { return Send(http::verb::get, "/_cortex/ready").result_int() == 200; };
  // Kills the worker, then waits for the replica to go unready (the exit was seen, and the
  // restart scheduled) and ready again (the new process is up).
  auto crash_and_wait = [&] {
    EXPECT_EQ(Send(http::verb::post, "/predict", R"({"exit": true})").result_int(), 502);
    for (int i = 0; i < 400 && ready(); ++i) Wait(std::chrono::milliseconds(5));
    for (int i = 0; i < 400 && !ready(); ++i) Wait(std::chrono::milliseconds(10));
  };
  ::testing::internal::CaptureStdout();
  crash_and_wait();                       // 1st in a row: 500 ms
  crash_and_wait();                       // 2nd in a row: 1000 ms
  Wait(std::chrono::milliseconds(1600));  // healthy for longer than healthy_after
  crash_and_wait();                       // the count starts anew: 500 ms again
  std::string out = ::testing::internal::GetCapturedStdout();
  std::vector<std::string> delays;
  for (size_t at = out.find("restarting it in "); at != std::string::npos;
       at = out.find("restarting it in ", at + 1)) {
    delays.push_back(out.substr(at + 17, out.find(' ', at + 17) - at - 17));
  }
  EXPECT_EQ(delays, (std::vector<std::string>{"500", "1000", "500"})) << out;
}

// Queued requests whose client had gone were still run (20 of them kept an API busy for
// minutes): a request whose client closed before its turn gives its slot to the next one.
TEST_F(FrontTest, AQueuedRequestWhoseClientLeftIsNotRun) { ExpectAGoneClientIsNotRun(); }

// With server-side batching it does not take a place in a batch either.
TEST_F(FrontTest, ARequestWhoseClientLeftTakesNoPlaceInABatch) {
  ExpectAGoneClientIsNotRun(config::BatchingConfig{4, "50ms", 50'000'000});
}

void FrontTest::ExpectAGoneClientIsNotRun(std::optional<config::BatchingConfig> batching) {
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/8, std::chrono::seconds(60), batching);
  bool slow_done = false;
  net::Response slow;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        slow = co_await Request(http::verb::post, "/predict", R"({"sleep": 0.5})");
      },
      [&](std::exception_ptr) { slow_done = true; });
  Wait(std::chrono::milliseconds(100));  // the slow one holds the only slot
  bool left = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        beast::tcp_stream stream(io_);
        co_await stream.async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), front_->port()),
            asio::use_awaitable);
        net::Request request{http::verb::post, "/predict", 11};
        request.set(http::field::host, "127.0.0.1");
        request.body() = R"({"exit": true})";  // would kill the worker if it ran
        request.prepare_payload();
        co_await http::async_write(stream, request, asio::use_awaitable);
        stream.socket().close();  // and leave
      },
      [&](std::exception_ptr) { left = true; });
  Run([&] { return left && slow_done; });
  EXPECT_EQ(slow.result_int(), 200);
  Wait(std::chrono::milliseconds(100));
  nlohmann::json stats = nlohmann::json::parse(Send(http::verb::get, "/_cortex/stats").body());
  EXPECT_EQ(stats["abandoned"], 1) << stats.dump();
  // The worker never ran it: it is alive, and the next request is served by it.
  EXPECT_EQ(Send(http::verb::post, "/predict", "{}").result_int(), 200);
  EXPECT_EQ(stats["code_5xx"], 0) << stats.dump();
}

TEST_F(FrontTest, LargeAndFragmentedFramesArriveWhole) {
  Start(1, 1, 10);
  // A worker's answer in pieces (the front's first read gets 3 bytes of the lengths).
  std::string order = R"({"size": 40, "split": true})";
  net::Response small = Send(http::verb::post, "/predict", order);
  EXPECT_EQ(small.result_int(), 200);
  EXPECT_EQ(small.body(), absl::StrCat(order.size(), ":", std::string(40 - 3, 'r')));
  // 8 MiB each way, more than a socket buffer holds: the writes to the worker and to the
  // client finish asynchronously, and the answer arrives in pieces.
  constexpr size_t kSize = 8 << 20;
  order = absl::StrCat(R"({"size": )", kSize, R"(, "split": true, "pad": ")",
                       std::string(kSize, 'p'), R"("})");
  net::Response large = Send(http::verb::post, "/predict", order);
  EXPECT_EQ(large.result_int(), 200);
  std::string prefix = absl::StrCat(order.size(), ":");
  ASSERT_EQ(large.body().size(), kSize);
  EXPECT_TRUE(large.body().starts_with(prefix)) << large.body().substr(0, 40);
  EXPECT_EQ(large.body().find_first_not_of('r', prefix.size()), std::string::npos);
  // The slot is whole afterwards.
  EXPECT_EQ(Send(http::verb::post, "/predict", "{}").result_int(), 200);
}

TEST_F(FrontTest, OnlyPostPredicts) {
  Start(1, 1, 8);
  EXPECT_EQ(Send(http::verb::get, "/predict").result_int(), 200);
  EXPECT_EQ(Send(http::verb::put, "/predict").result_int(), 405);
  EXPECT_EQ(Send(http::verb::get, "/nope").result_int(), 404);
}

// A borrower of a real front's slots (ADR 0005): it drives them with its own dispatcher, sees
// a slot revoked when its worker dies and the restarted worker's slot lent in its place, and
// gives everything back when the front shuts down.
TEST_F(FrontTest, LentSlotsSurviveAWorkerRestartAndComeBackAtShutdown) {
  lending_socket_ = (dir_ / "lend.sock").string();
  Start(/*processes=*/1, /*threads=*/1, /*max_concurrency=*/8);
  auto channel = LendingChannel::Connect(io_, lending_socket_);
  ASSERT_TRUE(channel.ok()) << channel.status();
  SlotQueue queue;
  FrontMetrics metrics("a", "borrower");
  LentSlots borrower(io_, queue, *channel);
  Dispatcher dispatcher(io_, queue, borrower, metrics, std::nullopt);
  bool borrower_done = false;
  asio::co_spawn(
      io_, [&]() -> asio::awaitable<void> { co_await borrower.Run(); },
      [&](std::exception_ptr) { borrower_done = true; });
  Run([&] { return borrower.held() == 1; });

  RequestHead head{"POST", "/predict", {{"content-type", "application/json"}}};
  net::ClientWatch client;
  auto predict = [&](const std::string& body) {
    std::optional<absl::StatusOr<WorkerResponse>> result;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          result = co_await dispatcher.Run(head, body, client, Dispatcher::Clock::now());
        },
        asio::detached);
    Run([&] { return result.has_value(); });
    return *result;
  };
  absl::StatusOr<WorkerResponse> before = predict("{}");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->body.rfind("pid ", 0), 0u) << before->body;

  absl::StatusOr<WorkerResponse> died = predict(R"({"exit": true})");
  ASSERT_FALSE(died.ok());
  EXPECT_EQ(HttpStatusFor(died.status()), 502);
  EXPECT_EQ(borrower.held(), 0u);
  Run([&] { return borrower.held() == 1; });  // the restarted worker's slot, lent anew
  absl::StatusOr<WorkerResponse> after = predict("{}");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(after->body, before->body);  // another process

  bool shut_down = false;
  asio::co_spawn(
      io_, [&]() -> asio::awaitable<void> { co_await front_->Shutdown(2000); },
      [&](std::exception_ptr) { shut_down = true; });
  Run([&] { return shut_down && borrower_done; });
  EXPECT_TRUE(borrower.recalled());
  EXPECT_EQ(borrower.held(), 0u);
  front_.reset();
}

}  // namespace
}  // namespace cortex::replica
