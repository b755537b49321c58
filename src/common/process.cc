#include "common/process.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/util.h"

extern char** environ;

namespace cortex {

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");

  // Everything the child needs is prepared before fork.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string key(entry.substr(0, entry.find('=')));
    bool drop = options.env.count(key) > 0;
    for (const auto& r : options.env_remove) drop = drop || r == key;
    if (!drop) env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int out_fd = options.output_fd;
  bool close_out = false;
  if (!options.output_path.empty()) {
    out_fd = ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      return absl::InternalError(
          absl::StrCat("opening ", options.output_path, ": ", std::strerror(errno)));
    }
    close_out = true;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // A pipe that closes on exec tells the parent whether exec succeeded.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) return absl::InternalError("spawn: pipe failed");
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    if (close_out) ::close(out_fd);
    ::close(null_fd);
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    ::close(exec_pipe[0]);
    if (options.group == SpawnOptions::Group::kNewSession) ::setsid();
    if (options.group == SpawnOptions::Group::kNewGroup) ::setpgid(0, 0);
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    // Undo signal state the parent may have set.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (out_fd >= 0) {
      ::dup2(out_fd, 1);
      ::dup2(out_fd, 2);
    }
    // Nothing else crosses exec: an inherited listening socket would keep the parent's port
    // bound (and unanswered) after the parent dies. Keep only the exec-status pipe.
    if (exec_pipe[1] > 3) ::close_range(3, exec_pipe[1] - 1, 0);
    ::close_range(exec_pipe[1] + 1, ~0U, 0);
    if (options.umask) ::umask(*options.umask);
    if (!options.working_dir.empty() && ::chdir(options.working_dir.c_str()) != 0) {
      int err = errno;
      (void)!::write(exec_pipe[1], &err, sizeof(err));
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    int err = errno;
    (void)!::write(exec_pipe[1], &err, sizeof(err));
    ::_exit(127);
  }
  ::close(exec_pipe[1]);
  if (close_out) ::close(out_fd);
  ::close(null_fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n > 0) {
    ::waitpid(pid, nullptr, 0);
    return absl::InternalError(
        absl::StrCat("starting ", options.argv[0], ": ", std::strerror(child_errno)));
  }
  return pid;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return true;
  return line[close_paren + 2] != 'Z';
}

void SignalGroup(pid_t pgid, int signal) {
  if (pgid <= 0) return;
  if (::kill(-pgid, signal) != 0) ::kill(pgid, signal);
}

void StopGroup(pid_t pgid, int grace_ms) {
  if (pgid <= 0) return;
  // Only the leader is asked: it stops its own children in order (a replica front drains its
  // queue before it stops its workers). Whatever is left of the group is killed afterwards.
  ::kill(pgid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    ::waitpid(pgid, nullptr, WNOHANG);
    if (!ProcessAlive(pgid)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  SignalGroup(pgid, SIGKILL);
  ::waitpid(pgid, nullptr, WNOHANG);
}

ProcessTree ProcessTreeOf(pid_t root) {
  static const int64_t kPageSize = ::sysconf(_SC_PAGESIZE);
  struct Entry {
    pid_t pid, ppid;
    int64_t rss_pages;
  };
  std::vector<Entry> table;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    // The fields after the command (which may hold spaces) start after the last ')'.
    size_t close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) continue;
    std::istringstream fields(line.substr(close + 2));
    std::string state;
    int64_t ppid = 0, skip = 0, rss_pages = 0;
    fields >> state >> ppid;
    if (state == "Z" || state == "X") continue;
    // stat fields 5..23, then rss (field 24).
    for (int i = 0; i < 19 && fields >> skip; ++i) {
    }
    fields >> rss_pages;
    table.push_back({pid, static_cast<pid_t>(ppid), rss_pages});
  }
  ProcessTree tree;
  std::vector<pid_t> frontier = {root};
  while (!frontier.empty()) {
    pid_t parent = frontier.back();
    frontier.pop_back();
    for (const auto& e : table) {
      if (e.pid == parent) {
        tree.pids.push_back(e.pid);
        tree.rss_bytes += e.rss_pages * kPageSize;
      }
      if (e.ppid == parent && e.pid != parent) frontier.push_back(e.pid);
    }
  }
  return tree;
}

void AdoptOrphans() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }

void StopDescendants(int grace_ms) {
  std::vector<pid_t> below = ProcessTreeOf(::getpid()).pids;
  std::erase(below, ::getpid());
  for (pid_t pid : below) ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  auto any_alive = [&] {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    return std::any_of(below.begin(), below.end(), [](pid_t p) { return ProcessAlive(p); });
  };
  while (any_alive() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  KillAll(below);
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

void KillAll(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    if (pid > 0 && ProcessAlive(pid)) ::kill(pid, SIGKILL);
  }
}

std::string CommandLine(pid_t pid) {
  auto text = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!text.ok()) return "";
  std::string line = std::move(*text);
  std::replace(line.begin(), line.end(), '\0', ' ');
  return line;
}

int StopProcesses(const std::function<bool(const std::string& command_line)>& match, int grace_ms) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == ::getpid()) continue;
    if (std::string line = CommandLine(pid); !line.empty() && match(line)) found.push_back(pid);
  }
  for (pid_t pid : found) ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  auto alive = [&] {
    return std::count_if(found.begin(), found.end(), [](pid_t p) { return ProcessAlive(p); });
  };
  while (alive() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t pid : found) {
    if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
  }
  return static_cast<int>(found.size());
}

std::string SelfExecutable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("cortex") : path.string();
}

std::map<std::string, std::string> PythonRuntimeEnv(const std::string& runtime_dir) {
  std::string path = runtime_dir;
  // The native extensions (_cortex_onnx) of a build tree; an installed layout has them in
  // runtime_dir itself.
  std::error_code ec;
  if (std::filesystem::is_directory(CORTEX_BUILD_PYTHON_DIR, ec) &&
      runtime_dir != CORTEX_BUILD_PYTHON_DIR) {
    path += ":" CORTEX_BUILD_PYTHON_DIR;
  }
  const char* existing = std::getenv("PYTHONPATH");
  if (existing && *existing) path += std::string(":") + existing;
  return {{"PYTHONPATH", path}, {"PYTHONUNBUFFERED", "1"}};
}

void UsePrivateUmask() {
  mode_t user = ::umask(077);
  if (const char* kept = std::getenv("CORTEX_USER_UMASK"); kept == nullptr || *kept == '\0') {
    ::setenv("CORTEX_USER_UMASK", absl::StrFormat("%03o", user).c_str(), 1);
  }
}

mode_t UserUmask() {
  const char* kept = std::getenv("CORTEX_USER_UMASK");
  if (kept == nullptr || *kept == '\0') return 022;
  char* end = nullptr;
  long value = std::strtol(kept, &end, 8);
  return end != nullptr && *end == '\0' && value >= 0 && value <= 0777 ? static_cast<mode_t>(value)
                                                                       : 022;
}

absl::Status UseBatchScheduling() {
  if (const char* env = std::getenv("CORTEX_SCHED_BATCH");
      env != nullptr && std::strcmp(env, "0") == 0) {
    return absl::OkStatus();
  }
  sched_param param{};  // SCHED_BATCH has only priority 0; any process may choose it
  if (::sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
    return absl::ErrnoToStatus(errno,
                               "could not run under SCHED_BATCH (sched_setscheduler), so "
                               "the inherited scheduling policy stays");
  }
  return absl::OkStatus();
}

}  // namespace cortex
