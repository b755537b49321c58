#include "backends/local/process_runner.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <signal.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>

#include "common/process.h"
#include "common/status.h"
#include "common/util.h"
#include "net/http_client.h"

namespace cortex::backends::local {
namespace {

// True when `pid` runs the instance `id` (guards against a reused process id).
bool RunsInstance(pid_t pid, const std::string& id) {
  return CommandLine(pid).find(id) != std::string::npos;
}

}  // namespace

ProcessRunner::ProcessRunner(ProcessRunnerOptions options) : options_(std::move(options)) {
  std::filesystem::create_directories(std::filesystem::path(options_.data_dir) / "logs" / "apis");
  std::filesystem::create_directories(std::filesystem::path(options_.data_dir) / "run" / "sockets");
}

std::string ProcessRunner::LogPath(const std::string& api_name) const {
  return absl::StrCat(options_.data_dir, "/logs/apis/", api_name, ".log");
}

std::string ProcessRunner::PortFile(const std::string& replica_id) const {
  return absl::StrCat(options_.data_dir, "/run/", replica_id, ".port");
}

std::string ProcessRunner::UnixSocket(const std::string& replica_id) const {
  std::string path = absl::StrCat(options_.data_dir, "/run/sockets/", replica_id, ".sock");
  // A path longer than sun_path holds (with its NUL) means TCP only.
  return path.size() < sizeof(sockaddr_un::sun_path) ? path : "";
}

absl::StatusOr<pid_t> ProcessRunner::StartReplica(const ReplicaLaunch& launch) {
  std::filesystem::remove(PortFile(launch.replica_id));
  SpawnOptions spawn;
  spawn.argv = {options_.executable,
                "replica",
                "--id",
                launch.replica_id,
                "--spec",
                launch.spec_path,
                "--host",
                options_.host,
                "--port-file",
                PortFile(launch.replica_id),
                "--socket-dir",
                absl::StrCat(options_.data_dir, "/run/sockets"),
                "--runtime-dir",
                options_.runtime_dir,
                "--python",
                launch.python,
                "--data-dir",
                options_.data_dir,
                "--max-log-line",
                std::to_string(options_.log_line_bytes)};
  if (std::string unix_socket = UnixSocket(launch.replica_id); !unix_socket.empty()) {
    spawn.argv.insert(spawn.argv.end(), {"--unix-socket", unix_socket});
  }
  spawn.output_path = LogPath(launch.api_name);
  spawn.env = launch.env;
  spawn.group = SpawnOptions::Group::kNewGroup;
  auto pid = Spawn(spawn);
  if (!pid.ok())
    return Annotate(pid.status(), absl::StrCat("starting replica ", launch.replica_id));
  return pid;
}

absl::StatusOr<pid_t> ProcessRunner::StartWorker(const WorkerLaunch& launch) {
  SpawnOptions spawn;
  // The project's dependency files first (`cortex worker-setup`), then the batch runtime on the
  // interpreter they leave (the venv's when there is a requirements.txt).
  spawn.argv = {options_.executable,
                "worker-setup",
                "--id",
                launch.worker_id,
                "--project-dir",
                launch.working_dir,
                "--python",
                launch.python,
                "--data-dir",
                options_.data_dir,
                "--spec",
                launch.spec_path,
                "--",
                "-u",
                "-m",
                "cortex_runtime.batch",
                "--spec",
                launch.spec_path,
                "--operator",
                launch.operator_url,
                "--job",
                launch.job_id,
                "--worker",
                launch.worker_id};
  spawn.env = PythonRuntimeEnv(options_.runtime_dir);
  for (const auto& [key, value] : launch.env) spawn.env[key] = value;
  spawn.env_remove = {"PYTHONHOME"};
  spawn.working_dir = launch.working_dir;
  spawn.output_path = launch.log_path;
  spawn.umask = UserUmask();  // the predictor writes files as the user would
  spawn.group = SpawnOptions::Group::kNewGroup;
  auto pid = Spawn(spawn);
  if (!pid.ok()) return Annotate(pid.status(), absl::StrCat("starting worker ", launch.worker_id));
  return pid;
}

InstanceProbe ProcessRunner::Probe(const std::string& id, pid_t pid, int64_t mem_limit_bytes) {
  InstanceProbe probe;
  if (pid <= 0) return probe;
  // Our child (started by this operator process): its exit status is known.
  bool running_child = false;
  auto reaped = [&](InstanceProbe& out) {
    int status = 0;
    pid_t waited = ::waitpid(pid, &status, WNOHANG);
    running_child = waited == 0;
    if (waited != pid) return false;
    out.alive = false;
    out.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    out.reason = WIFSIGNALED(status) ? absl::StrCat("was killed by signal ", WTERMSIG(status))
                                     : absl::StrCat("exited with status ", WEXITSTATUS(status));
    return true;
  };
  if (reaped(probe)) return probe;
  // A running child of ours is the instance, whatever its command line says at this instant
  // (between fork and exec, or while `cortex worker-setup` execs the interpreter, it names
  // something else). One adopted after an operator restart must still run the instance: its
  // pid may have been reused.
  probe.alive = running_child || (ProcessAlive(pid) && RunsInstance(pid, id));
  if (!probe.alive) {
    // It may have exited between the two checks: then its status is there now.
    if (reaped(probe)) return probe;
    probe.exit_code = 1;
    probe.reason = "is gone";
    return probe;
  }
  if (mem_limit_bytes > 0) {
    // Every process below the instance counts, also one that left its process group.
    ProcessTree tree = ProcessTreeOf(pid);
    int64_t rss = tree.rss_bytes;
    if (rss > mem_limit_bytes) {
      StopGroup(pid, 0);
      KillAll(tree.pids);
      probe.alive = false;
      probe.oom = true;
      probe.exit_code = 137;
      probe.reason = absl::StrFormat(
          "used %.1f MiB of memory, over its limit of %s (compute.mem), "
          "and was killed",
          static_cast<double>(rss) / (1 << 20),
          mem_limit_bytes % 1024 == 0
              ? FormatBytes(mem_limit_bytes)
              : absl::StrFormat("%.1f MiB", static_cast<double>(mem_limit_bytes) / (1 << 20)));
      return probe;
    }
  }
  auto port_text = ReadFile(PortFile(id));
  uint32_t port = 0;
  if (port_text.ok() && absl::SimpleAtoi(*port_text, &port) && port > 0 && port < 65536) {
    probe.port = static_cast<uint16_t>(port);
    net::HttpCall call;
    call.url = absl::StrCat("http://", options_.host, ":", port, "/_cortex/ready");
    call.timeout_ms = 1000;
    call.connect_timeout_ms = 500;
    auto result = net::Fetch(call);
    probe.ready = result.ok() && result->status == 200;
  }
  return probe;
}

void ProcessRunner::Stop(const std::string& id, pid_t pid, int grace_ms) {
  if (pid > 0 && (ProcessAlive(pid) && RunsInstance(pid, id))) {
    ProcessTree tree = ProcessTreeOf(pid);  // before: what leaves the group goes with it too
    StopGroup(pid, grace_ms);
    KillAll(tree.pids);
  }
  ::waitpid(pid, nullptr, WNOHANG);
  std::error_code ec;
  std::filesystem::remove(PortFile(id), ec);
  // The worker sockets of a replica that was killed (a front that stops removes its own).
  std::string prefix = id + "-p";
  for (const auto& entry : std::filesystem::directory_iterator(
           std::filesystem::path(options_.data_dir) / "run" / "sockets", ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".sock")) std::filesystem::remove(entry, ec);
  }
}

}  // namespace cortex::backends::local
