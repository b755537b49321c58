// A fake of the SlotSockets port for tests: slots over socket pairs, each answered by a thread
// that speaks the slot protocol (docs/worker-protocol.md).
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "net/asio.h"
#include "replica/slot_queue.h"
#include "replica/slot_sockets.h"

namespace cortex::replica::testing {

inline bool ReadExactly(int fd, char* out, size_t n) {
  while (n > 0) {
    ssize_t got = ::read(fd, out, n);
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

inline void WriteFrame(int fd, const std::string& header, const std::string& body) {
  std::string frame;
  for (uint32_t v : {static_cast<uint32_t>(4 + header.size() + body.size()),
                     static_cast<uint32_t>(header.size())}) {
    for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(v >> shift));
  }
  frame += header + body;
  // Not a failure if the other end has gone (as the Python worker, it ignores SIGPIPE).
  (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
}

inline uint32_t BigEndian(const char* p) {
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
        if (entry.find(" slow") != std::string::npos)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        WriteFrame(fd_, nlohmann::json{{"batch", heads}}.dump(), answers);
        continue;
      }
      Log(body);
      if (body == "break") {
        ::shutdown(fd_, SHUT_RDWR);
        return;
      }
      if (body == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(100));
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
  FakeSlots(net::asio::io_context& io, SlotQueue& queue, int n) : queue_(queue) {
    for (int i = 0; i < n; ++i) {
      int fds[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
      sockets_.push_back(std::make_unique<Socket>(io, net::asio::local::stream_protocol(), fds[0]));
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
    if (on_closed) on_closed(slot);
  }
  FakeWorker& worker(int slot) { return *workers_[slot]; }

  std::vector<int> closed;
  std::function<void(int)> on_closed;  // as the WorkerPool tells the slot lender

 private:
  SlotQueue& queue_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
};

}  // namespace cortex::replica::testing
