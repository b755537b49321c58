// cortex-loadgen: an open-loop HTTP load generator (wrk2's constant-rate scheduling).
//
//   cortex-loadgen --port P [--host 127.0.0.1] [--path /] [--rate 10000] [--duration 60]
//                  [--connections 64] [--body '{"payload":...}']
//
// Request i is due at start + i / rate whatever happened before it, so a slow server cannot
// slow the load down (no coordinated omission): a due request waits for a free keep-alive
// connection, and its latency counts from when it was due, not from when it was sent. Prints
// one JSON object: sent, answered, non_2xx, errors, late (requests still queued at the end),
// the achieved rate, and latency percentiles (p50, p99, p999, max) in microseconds.
#include <absl/strings/numbers.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/asio.h"

namespace {

namespace asio = cortex::net::asio;
namespace beast = cortex::net::beast;
namespace http = cortex::net::http;
using cortex::net::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/";
  double rate = 10000;
  double duration_s = 60;
  int connections = 64;
  std::string body = R"({"payload":{"x":[1,2,3]}})";
};

class LoadGenerator {
 public:
  LoadGenerator(asio::io_context& io, Options options) : io_(io), options_(std::move(options)) {}

  void Run() {
    start_ = Clock::now();
    end_ = start_ + std::chrono::microseconds(static_cast<int64_t>(options_.duration_s * 1e6));
    for (int i = 0; i < options_.connections; ++i) {
      wakes_.push_back(std::make_unique<asio::steady_timer>(io_, Clock::time_point::max()));
      asio::co_spawn(io_, Connection(*wakes_.back()), asio::detached);
    }
    asio::co_spawn(io_, Schedule(), asio::detached);
    io_.run();
  }

  nlohmann::json Report() const {
    std::vector<int64_t> sorted = latencies_us_;
    std::sort(sorted.begin(), sorted.end());
    auto pct = [&](double p) -> int64_t {
      if (sorted.empty()) return 0;
      size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
      return sorted[std::min(i, sorted.size() - 1)];
    };
    double seconds = std::chrono::duration<double>(finished_ - start_).count();
    return {
        {"rate_target", options_.rate},
        {"duration_s", seconds},
        {"sent", sent_},
        {"answered", static_cast<int64_t>(latencies_us_.size())},
        {"non_2xx", non_2xx_},
        {"errors", errors_},
        {"late", static_cast<int64_t>(due_.size())},
        {"rate_achieved", seconds > 0 ? static_cast<double>(latencies_us_.size()) / seconds : 0},
        {"p50_us", pct(50)},
        {"p99_us", pct(99)},
        {"p999_us", pct(99.9)},
        {"max_us", sorted.empty() ? 0 : sorted.back()}};
  }

 private:
  // Makes each request due at its time and wakes an idle connection for it.
  asio::awaitable<void> Schedule() {
    asio::steady_timer tick(io_);
    int64_t next = 0;
    const double interval_us = 1e6 / options_.rate;
    for (;;) {
      Clock::time_point now = Clock::now();
      Clock::time_point stop = std::min(now, end_);
      for (;;) {
        Clock::time_point due =
            start_ + std::chrono::microseconds(static_cast<int64_t>(next * interval_us));
        if (due > stop) break;
        due_.push_back(due);
        ++next;
      }
      while (!idle_.empty() && !due_.empty()) {
        idle_.back()->cancel();  // wakes that connection
        idle_.pop_back();
      }
      if (now >= end_) break;
      tick.expires_after(std::chrono::microseconds(200));
      co_await tick.async_wait(asio::use_awaitable);
    }
    // Let the requests in flight finish (at most 5 s), then stop.
    scheduling_done_ = true;
    boost::system::error_code ec;
    while ((in_flight_ > 0 || !due_.empty()) && Clock::now() < end_ + std::chrono::seconds(5)) {
      tick.expires_after(std::chrono::milliseconds(5));
      co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    finished_ = Clock::now();
    io_.stop();
  }

  asio::awaitable<void> Connection(asio::steady_timer& wake) {
    beast::tcp_stream stream(io_);
    boost::system::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(options_.host), options_.port);
    bool connected = false;
    beast::flat_buffer buffer;
    for (;;) {
      if (due_.empty()) {
        if (scheduling_done_) co_return;
        idle_.push_back(&wake);
        wake.expires_at(Clock::time_point::max());
        co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      Clock::time_point due = due_.front();
      due_.pop_front();
      if (!connected) {
        stream.expires_after(std::chrono::seconds(5));
        co_await stream.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          ++errors_;
          stream.close();
          continue;
        }
        stream.socket().set_option(tcp::no_delay(true));
        connected = true;
      }
      http::request<http::string_body> request{http::verb::post, options_.path, 11};
      request.set(http::field::host, options_.host);
      request.set(http::field::content_type, "application/json");
      request.body() = options_.body;
      request.prepare_payload();
      ++sent_;
      ++in_flight_;
      stream.expires_after(std::chrono::seconds(30));
      co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
      http::response<http::string_body> response;
      if (!ec) {
        co_await http::async_read(stream, buffer, response,
                                  asio::redirect_error(asio::use_awaitable, ec));
      }
      --in_flight_;
      if (ec) {
        ++errors_;
        stream.close();
        buffer.clear();
        connected = false;
        continue;
      }
      latencies_us_.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - due).count());
      if (response.result_int() / 100 != 2) ++non_2xx_;
      if (!response.keep_alive()) {
        stream.close();
        connected = false;
      }
    }
  }

  asio::io_context& io_;
  Options options_;
  Clock::time_point start_, end_, finished_;
  std::deque<Clock::time_point> due_;  // requests due and not yet sent
  std::vector<std::unique_ptr<asio::steady_timer>> wakes_;
  std::vector<asio::steady_timer*> idle_;  // connections waiting for a due request
  bool scheduling_done_ = false;
  int64_t in_flight_ = 0, sent_ = 0, non_2xx_ = 0, errors_ = 0;
  std::vector<int64_t> latencies_us_;
};

bool Parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    int port = 0;
    if (flag == "--host") {
      o.host = value;
    } else if (flag == "--port" && absl::SimpleAtoi(value, &port) && port > 0 && port < 65536) {
      o.port = static_cast<uint16_t>(port);
    } else if (flag == "--path") {
      o.path = value;
    } else if (flag == "--rate" && absl::SimpleAtod(value, &o.rate) && o.rate > 0) {
    } else if (flag == "--duration" && absl::SimpleAtod(value, &o.duration_s) && o.duration_s > 0 &&
               o.duration_s <= 3600) {
    } else if (flag == "--connections" && absl::SimpleAtoi(value, &o.connections) &&
               o.connections > 0 && o.connections <= 10000) {
    } else if (flag == "--body") {
      o.body = value;
    } else {
      std::cerr << "cortex-loadgen: bad flag or value: " << flag << " " << value << "\n";
      return false;
    }
  }
  if (argc % 2 == 0 || o.port == 0) {
    std::cerr << "usage: cortex-loadgen --port P [--host H] [--path /p] [--rate R] "
                 "[--duration S] [--connections C] [--body B]\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!Parse(argc, argv, options)) return 2;
  asio::io_context io(1);
  LoadGenerator generator(io, options);
  generator.Run();
  std::cout << generator.Report().dump() << std::endl;
  return 0;
}
