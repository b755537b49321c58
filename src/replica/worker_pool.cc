#include "replica/worker_pool.h"

#include <absl/strings/str_cat.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "common/process.h"

namespace cortex::replica {

namespace asio = net::asio;
using local_stream = asio::local::stream_protocol;

struct WorkerPool::Slot {
  int id = 0;
  int worker = 0;
  local_stream::socket socket;
  explicit Slot(asio::io_context& io) : socket(io) {}
};

struct WorkerPool::Worker {
  int index = 0;
  pid_t pid = 0;
  std::string socket_path;
  std::unique_ptr<local_stream::acceptor> acceptor;
  int connected = 0;  // slots currently connected
  bool ever_ready = false;
  int restarts = 0;  // in a row: a process that ran a while before it died starts the count anew
  std::chrono::steady_clock::time_point started;
  std::vector<int> slot_ids;
};

WorkerPool::WorkerPool(asio::io_context& io, WorkerPoolOptions options,
                       std::unique_ptr<Runtime> runtime, SlotQueue& queue)
    : io_(io),
      options_(std::move(options)),
      runtime_(std::move(runtime)),
      queue_(queue),
      child_signals_(io, SIGCHLD) {}

WorkerPool::~WorkerPool() {
  for (auto& worker : workers_) {
    if (worker->pid > 0) ::kill(worker->pid, SIGKILL);
  }
}

absl::Status WorkerPool::Start(std::function<void()> on_failed) {
  on_failed_ = std::move(on_failed);
  std::filesystem::create_directories(options_.socket_dir);
  asio::co_spawn(io_, WatchChildren(), asio::detached);
  for (int i = 0; i < options_.processes; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->index = i;
    worker->socket_path =
        absl::StrCat(options_.socket_dir, "/", options_.replica_id, "-p", i, ".sock");
    ::unlink(worker->socket_path.c_str());
    worker->acceptor = std::make_unique<local_stream::acceptor>(io_);
    boost::system::error_code ec;
    worker->acceptor->open(local_stream(), ec);
    if (!ec) worker->acceptor->bind(local_stream::endpoint(worker->socket_path), ec);
    if (!ec) worker->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("listening on ", worker->socket_path, ": ", ec.message()));
    }
    workers_.push_back(std::move(worker));
  }
  for (auto& worker : workers_) {
    if (absl::Status st = Spawn(*worker); !st.ok()) return st;
    asio::co_spawn(io_, AcceptSlots(*worker), asio::detached);
  }
  return absl::OkStatus();
}

absl::Status WorkerPool::Spawn(Worker& worker) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  RuntimeCommand command = runtime_->Command(worker.socket_path, options_.threads, worker.index);
  SpawnOptions spawn;
  spawn.argv = std::move(command.argv);
  spawn.env = std::move(command.env);
  spawn.env["CORTEX_REPLICA_ID"] = options_.replica_id;
  spawn.env["CORTEX_PROCESS_INDEX"] = std::to_string(worker.index);
  spawn.env_remove = std::move(command.env_remove);
  spawn.working_dir = std::move(command.working_dir);
  spawn.output_fd = pipe_fds[1];
  spawn.group = SpawnOptions::Group::kInherit;  // one process group per replica
  spawn.die_with_parent = true;
  spawn.umask = UserUmask();  // the predictor writes files as the user would
  auto pid = cortex::Spawn(spawn);
  ::close(pipe_fds[1]);
  if (!pid.ok()) {
    ::close(pipe_fds[0]);
    return pid.status();
  }
  worker.pid = *pid;
  worker.started = std::chrono::steady_clock::now();
  asio::co_spawn(io_, PumpOutput(worker, pipe_fds[0]), asio::detached);
  return absl::OkStatus();
}

asio::awaitable<void> WorkerPool::PumpOutput(Worker& worker, int fd) {
  asio::posix::stream_descriptor pipe(io_, fd);
  std::string buffer;
  const std::string prefix = absl::StrCat("[", options_.replica_id, " p", worker.index, "] ");
  for (;;) {
    boost::system::error_code ec;
    size_t n = co_await asio::async_read_until(
        pipe, asio::dynamic_buffer(buffer, std::max<size_t>(options_.max_line_bytes, 256)), '\n',
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::not_found) {  // no newline within the limit: this piece is a line
      std::string piece = absl::StrCat(prefix, buffer, "\n");
      buffer.clear();
      (void)!::write(STDOUT_FILENO, piece.data(), piece.size());
      continue;
    }
    if (ec) {
      if (!buffer.empty()) std::cout << prefix << buffer << std::endl;
      co_return;
    }
    std::string line = prefix + buffer.substr(0, n);
    buffer.erase(0, n);
    // One write per line keeps lines whole in the shared, O_APPEND log file.
    (void)!::write(STDOUT_FILENO, line.data(), line.size());
  }
}

asio::awaitable<void> WorkerPool::AcceptSlots(Worker& worker) {
  while (worker.acceptor->is_open()) {
    auto slot = std::make_unique<Slot>(io_);
    boost::system::error_code ec;
    co_await worker.acceptor->async_accept(slot->socket,
                                           asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    slot->id = static_cast<int>(slots_.size());
    slot->worker = worker.index;
    worker.slot_ids.push_back(slot->id);
    ++worker.connected;
    if (worker.connected >= options_.threads && !worker.ever_ready) {
      worker.ever_ready = true;
      std::cout << "replica " << options_.replica_id << ": worker p" << worker.index << " is ready"
                << std::endl;
      if (Ready()) std::cout << "replica " << options_.replica_id << " is ready" << std::endl;
    }
    int id = slot->id;
    slots_.push_back(std::move(slot));
    queue_.Add(id);
  }
}

bool WorkerPool::Ready() const {
  if (stopping_) return false;
  bool serving = false;
  for (const auto& worker : workers_) {
    if (!worker->ever_ready) return false;
    serving = serving || worker->connected > 0;
  }
  return serving;
}

WorkerPool::Socket& WorkerPool::socket(int slot) { return slots_[slot]->socket; }

int WorkerPool::process_of(int slot) const { return slots_[slot]->worker; }

void WorkerPool::CloseSlot(int slot) {
  boost::system::error_code ignored;
  slots_[slot]->socket.close(ignored);
  queue_.Remove(slot);
  if (on_slot_closed_) on_slot_closed_(slot);
}

asio::awaitable<void> WorkerPool::WatchChildren() {
  for (;;) {
    boost::system::error_code ec;
    co_await child_signals_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& worker : workers_) {
        if (worker->pid == pid) OnExit(*worker, status);
      }
    }
  }
}

void WorkerPool::OnExit(Worker& worker, int wait_status) {
  worker.pid = 0;
  std::string how = WIFSIGNALED(wait_status)
                        ? absl::StrCat("was killed by signal ", WTERMSIG(wait_status))
                        : absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  for (int id : worker.slot_ids) CloseSlot(id);
  worker.slot_ids.clear();
  worker.connected = 0;
  if (stopping_) return;
  if (!worker.ever_ready) {
    // The predictor could not start: the replica fails as a whole (the operator restarts it).
    std::cout << "replica " << options_.replica_id << ": worker p" << worker.index << " " << how
              << " before it was ready; failed to start api" << std::endl;
    if (on_failed_) on_failed_();
    return;
  }
  // Back-off grows with crashes in a row; a process that lived a minute was healthy.
  if (std::chrono::steady_clock::now() - worker.started > options_.healthy_after) {
    worker.restarts = 0;
  }
  ++worker.restarts;
  int delay_ms = std::min(10'000, 250 << std::min(worker.restarts, 6));
  std::cout << "replica " << options_.replica_id << ": worker p" << worker.index << " " << how
            << "; restarting it in " << delay_ms << " ms" << std::endl;
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
  timer->async_wait([this, timer, &worker](auto) {
    if (stopping_) return;
    worker.ever_ready = true;  // it was ready once: the replica stays ready with fewer slots
    if (absl::Status st = Spawn(worker); !st.ok()) {
      std::cout << "replica " << options_.replica_id << ": " << st.message() << std::endl;
    }
  });
}

void WorkerPool::Stop() {
  stopping_ = true;
  queue_.Close();
  for (auto& worker : workers_) {
    if (worker->pid > 0) ::kill(worker->pid, SIGTERM);
    boost::system::error_code ignored;
    worker->acceptor->close(ignored);
    ::unlink(worker->socket_path.c_str());
  }
  for (auto& slot : slots_) {
    boost::system::error_code ignored;
    slot->socket.close(ignored);
  }
  child_signals_.cancel();
}

}  // namespace cortex::replica
