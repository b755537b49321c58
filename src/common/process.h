// Starting and stopping child processes with fork+exec. Thread-safe.
//
// Never fork a process that has loaded Python or libtorch without exec'ing right away: the
// child only runs async-signal-safe calls between fork and exec.
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cortex {

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0] is the program (PATH is searched)
  std::map<std::string, std::string> env;  // set or override in the child's environment
  std::vector<std::string> env_remove;     // removed from the child's environment
  std::string working_dir;                 // empty: inherit
  std::string output_path;                 // stdout+stderr appended here; empty: inherit
  int output_fd = -1;                      // or: stdout+stderr go to this descriptor
  enum class Group { kInherit, kNewGroup, kNewSession } group = Group::kNewGroup;
  bool die_with_parent = false;  // PR_SET_PDEATHSIG(SIGKILL)
  std::optional<mode_t> umask;   // the child's file-mode mask (default: inherit)
};

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options);

// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// Sends `signal` to the process group `pgid` (falls back to the process when no group).
void SignalGroup(pid_t pgid, int signal);

// SIGTERM to the group's leader, waits up to `grace_ms` for it to exit, then SIGKILL to the
// whole group. Reaps the leader when it is our child.
void StopGroup(pid_t pgid, int grace_ms);

// What a process of our Python runtime needs in its environment: `runtime_dir` first on
// PYTHONPATH, then the build tree's extension directory when it exists (CORTEX_BUILD_PYTHON_DIR),
// then the caller's own entries; and unbuffered output.
std::map<std::string, std::string> PythonRuntimeEnv(const std::string& runtime_dir);

// Makes the files this process (and the platform processes it starts) creates private to its
// user: umask 077. The user's own umask is kept in $CORTEX_USER_UMASK by the first process of a
// chain, so that the predictor processes started later get it back (UserUmask()).
void UsePrivateUmask();
// The umask the user started the platform with (022 when unknown).
mode_t UserUmask();

// Path of the running executable.
std::string SelfExecutable();

// `root` and every process below it by parentage (children first found through /proc; a child
// that made itself a new session or group is still there), with the resident memory of each.
struct ProcessTree {
  std::vector<pid_t> pids;  // root first (when it exists)
  int64_t rss_bytes = 0;
};
ProcessTree ProcessTreeOf(pid_t root);

// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER): a
// predictor's child that leaves its session stays below the replica, to be accounted and
// stopped with it. Its caller must reap any child (waitpid(-1)).
void AdoptOrphans();

// SIGTERM to every process below this one, SIGKILL to those left after `grace_ms`; reaps them.
void StopDescendants(int grace_ms);

// SIGKILL to each of `pids` still alive. For the rest of a tree once its root was stopped.
void KillAll(const std::vector<pid_t>& pids);

// The command line of `pid`, its arguments joined by spaces ("" when it is gone).
std::string CommandLine(pid_t pid);

// SIGTERM to every process (but this one) whose command line `match`es, SIGKILL to those left
// after `grace_ms`. Returns how many there were.
int StopProcesses(const std::function<bool(const std::string& command_line)>& match, int grace_ms);

// Puts the calling thread under SCHED_BATCH, so the threads and processes it starts from now on
// inherit it: a woken server no longer preempts the one that woke it, which lets each run
// through the work it has before the switch (measured in docs/adr/0004). "$CORTEX_SCHED_BATCH=0"
// leaves the inherited policy as it is. An error says why the kernel refused (the policy is then
// unchanged); turned off is not an error.
absl::Status UseBatchScheduling();

}  // namespace cortex
