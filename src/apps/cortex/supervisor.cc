#include "apps/cortex/supervisor.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/cluster_plan.h"
#include "common/process.h"
#include "common/util.h"
#include "net/http_client.h"

namespace cortex::apps {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop = true; }

void Log(std::string_view message) { std::cout << "[supervisor] " << message << std::endl; }

std::string DescribeExit(int status) {
  return WIFSIGNALED(status) ? absl::StrCat("was killed by signal ", WTERMSIG(status))
                             : absl::StrCat("exited with status ", WEXITSTATUS(status));
}

struct Daemon {
  cli::SupervisedDaemon spec;
  pid_t pid = 0;
  int restarts = 0;  // in a row
  SteadyClock::time_point started, restart_at, last_healthy;
};

class Supervisor {
 public:
  Supervisor(const SupervisorFlags& flags, cli::ClusterPlan plan)
      : cluster_dir_(flags.cluster_dir),
        wedged_after_(std::chrono::seconds(flags.wedged_after_s)),
        plan_(std::move(plan)) {
    for (const auto& spec : plan_.daemons) {
      Daemon daemon;
      daemon.spec = spec;
      daemons_.push_back(std::move(daemon));
    }
  }

  int Run() {
    for (auto& daemon : daemons_) {
      if (!Start(daemon) || !AwaitFirstHealth(daemon)) {
        Stop();
        return 1;
      }
    }
    WriteState();
    Log("the cluster is up");
    auto next_probe = SteadyClock::now();
    while (!g_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      Reap();
      auto now = SteadyClock::now();
      for (auto& daemon : daemons_) {
        if (daemon.pid == 0 && now >= daemon.restart_at && !g_stop) {
          if (Start(daemon)) {
            WriteState();
          } else {
            Backoff(daemon);
          }
        }
      }
      if (now >= next_probe) {
        for (auto& daemon : daemons_) Probe(daemon);
        next_probe = now + std::chrono::seconds(2);
      }
    }
    Stop();
    return 0;
  }

 private:
  bool Start(Daemon& daemon) {
    SpawnOptions spawn;
    spawn.argv = {SelfExecutable(), daemon.spec.role};
    spawn.argv.insert(spawn.argv.end(), daemon.spec.args.begin(), daemon.spec.args.end());
    spawn.output_path = (cluster_dir_ / "logs" / (daemon.spec.role + ".log")).string();
    spawn.group = SpawnOptions::Group::kNewGroup;  // outlives us: a supervisor crash is no outage
    auto pid = Spawn(spawn);
    if (!pid.ok()) {
      Log(absl::StrCat("starting the ", daemon.spec.role, ": ", pid.status().message()));
      return false;
    }
    daemon.pid = *pid;
    daemon.started = daemon.last_healthy = SteadyClock::now();
    Log(absl::StrCat("started the ", daemon.spec.role, " (pid ", daemon.pid, ")"));
    return true;
  }

  bool AwaitFirstHealth(Daemon& daemon) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(60);
    while (SteadyClock::now() < deadline && !g_stop) {
      if (Healthy(daemon)) return true;
      int status = 0;
      if (::waitpid(daemon.pid, &status, WNOHANG) == daemon.pid) {
        Log(absl::StrCat("the ", daemon.spec.role, " ", DescribeExit(status),
                         " before it was healthy; see logs/", daemon.spec.role, ".log"));
        daemon.pid = 0;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Log(absl::StrCat("the ", daemon.spec.role, " did not become healthy"));
    return false;
  }

  static bool Healthy(const Daemon& daemon) {
    return cli::AnswersAsItself(daemon.spec.health_url, daemon.pid);
  }

  void Backoff(Daemon& daemon) {
    auto now = SteadyClock::now();
    if (now - daemon.started > std::chrono::seconds(60)) daemon.restarts = 0;
    int delay_ms = daemon.restarts == 0 ? 0 : std::min(10'000, 250 << std::min(daemon.restarts, 6));
    ++daemon.restarts;
    daemon.restart_at = now + std::chrono::milliseconds(delay_ms);
    Log(absl::StrCat("restarting the ", daemon.spec.role, " in ", delay_ms, " ms"));
  }

  void Reap() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& daemon : daemons_) {
        if (daemon.pid != pid) continue;
        daemon.pid = 0;
        Log(absl::StrCat("the ", daemon.spec.role, " (pid ", pid, ") ", DescribeExit(status)));
        // What it left of its process group (not the replicas: they have groups of their own).
        SignalGroup(pid, SIGKILL);
        if (!g_stop) Backoff(daemon);
      }
    }
  }

  // Alive but not answering (stopped, deadlocked): killed, then restarted by Reap.
  void Probe(Daemon& daemon) {
    if (daemon.pid == 0) return;
    auto now = SteadyClock::now();
    if (Healthy(daemon)) {
      daemon.last_healthy = now;
    } else if (now - daemon.last_healthy > wedged_after_) {
      Log(absl::StrCat("the ", daemon.spec.role, " has not answered its health check for ",
                       std::chrono::duration_cast<std::chrono::seconds>(wedged_after_).count(),
                       " s; killing it"));
      SignalGroup(daemon.pid, SIGKILL);
      daemon.last_healthy = now;
    }
  }

  void WriteState() const {
    json state = plan_.state;
    state["supervisor_pid"] = ::getpid();
    for (const auto& daemon : daemons_) state[daemon.spec.role + "_pid"] = daemon.pid;
    state["started_at"] = UnixSeconds();
    if (absl::Status st = WriteFileAtomic(cluster_dir_ / "cluster.json", state.dump(2)); !st.ok()) {
      Log(absl::StrCat("writing cluster.json: ", st.message()));
    }
  }

  bool WaitExit(Daemon& daemon, std::chrono::milliseconds grace) {
    auto deadline = SteadyClock::now() + grace;
    while (daemon.pid != 0 && SteadyClock::now() < deadline) {
      int status = 0;
      if (::waitpid(daemon.pid, &status, WNOHANG) == daemon.pid || !ProcessAlive(daemon.pid)) {
        SignalGroup(daemon.pid, SIGKILL);
        daemon.pid = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return daemon.pid == 0;
  }

  // The gateway stops taking requests; the operator stops every replica, then itself.
  void Stop() {
    for (auto& daemon : daemons_) {
      if (daemon.pid != 0 && daemon.spec.role != "operator") ::kill(daemon.pid, SIGTERM);
    }
    for (auto& daemon : daemons_) {
      if (daemon.pid == 0 || daemon.spec.role != "operator") continue;
      auto token = ReadFile(plan_.token_file);
      net::HttpCall call;
      call.method = "POST";
      call.url = plan_.operator_url + "/v1/shutdown";
      call.headers = {{"Authorization",
                       "Bearer " + std::string(absl::StripAsciiWhitespace(token.value_or("")))}};
      call.timeout_ms = 5000;
      auto answer = net::Fetch(call);
      if (!answer.ok() || answer->status != 200) ::kill(daemon.pid, SIGTERM);
      if (!WaitExit(daemon, std::chrono::seconds(60))) {
        Log("the operator did not stop in 60 s; killing it");
        StopGroup(daemon.pid, 0);
        daemon.pid = 0;
      }
    }
    for (auto& daemon : daemons_) {
      if (!WaitExit(daemon, std::chrono::seconds(5))) {
        StopGroup(daemon.pid, 0);
        daemon.pid = 0;
      }
    }
    Log("stopped");
  }

  const fs::path cluster_dir_;
  const SteadyClock::duration wedged_after_;
  const cli::ClusterPlan plan_;
  std::vector<Daemon> daemons_;
};

}  // namespace

int RunSupervisor(const SupervisorFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction stop {};
  stop.sa_handler = OnStopSignal;
  ::sigaction(SIGTERM, &stop, nullptr);
  ::sigaction(SIGINT, &stop, nullptr);
  auto text = ReadFile(fs::path(flags.cluster_dir) / "supervisor.json");
  if (!text.ok()) {
    Log(std::string(text.status().message()));
    return 1;
  }
  cli::ClusterPlan plan;
  try {
    plan = cli::ClusterPlan::FromJson(json::parse(*text));
  } catch (const json::exception& e) {
    Log(absl::StrCat("supervisor.json: ", e.what()));
    return 1;
  }
  return Supervisor(flags, std::move(plan)).Run();
}

}  // namespace cortex::apps
