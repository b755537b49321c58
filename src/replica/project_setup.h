// A project's dependency files, run when a replica or a batch worker starts, in Cortex's order
// (spec §1 "Container start-up order"), in the project directory, with the project's .env
// exported as Cortex's bootloader did (`set -a; source .env`):
//
//   1. dependencies.sh      `bash -e dependencies.sh`
//   2. conda-packages.txt   `conda install -y --file conda-packages.txt` (conda must exist)
//   3. requirements.txt     `pip install -r requirements.txt` into a virtual environment of the
//                           API's own: `<python> -m venv --system-site-packages`, under
//                           <data_dir>/venvs/<key>, shared by every replica and worker whose
//                           requirements (and the local packages they name) and interpreter
//                           are the same, and reused while they are.
//
// A venv is not relocatable, so it is built at its final path, under an exclusive lock on
// <key>.lock, and marked complete by a file written last; one without the mark (a build that
// was killed) is removed and built again. A project without any of the three files runs
// nothing. Every line the steps print goes to the log sink.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cortex::replica {

// One command of a step.
struct SetupCommand {
  std::vector<std::string> argv;
  std::string working_dir;
  bool echo = true;  // its output lines go to the log (false: only returned)
};

struct SetupCommandResult {
  int exit_code = 0;  // 128+N when killed by signal N; 127 when it could not start
  std::vector<std::string> last_lines;  // the last lines it printed (at most kKeptLines)
};

struct ProjectSetupOptions {
  std::string project_dir;
  std::string python = "/usr/bin/python3";         // the API's interpreter
  std::string data_dir;                            // the cluster's: venvs/ goes below it
  std::function<void(std::string_view line)> log;  // empty: the output is dropped
  // Runs one command to its end (stdin /dev/null, stdout and stderr merged). Empty: the real
  // one (RunSetupCommand); tests give fakes.
  std::function<SetupCommandResult(const SetupCommand&)> run;
  // Whether a program is on PATH (for conda). Empty: OnPath.
  std::function<bool(const std::string& program)> on_path;
};

// Runs the steps; the interpreter the project's processes must use: the venv's python when
// there is a requirements.txt, else the API's. A failure names the step and the line of its
// output that says why.
absl::StatusOr<std::string> SetUpProject(const ProjectSetupOptions& options);

// The real runners.
SetupCommandResult RunSetupCommand(const SetupCommand& command,
                                   const std::function<void(std::string_view)>& log);
bool OnPath(const std::string& program);

// ---- the pure parts (exposed for tests) ----------------------------------------------------

inline constexpr size_t kKeptLines = 20;

// The venv's directory name: sha256 over the requirements, the local paths they name (and
// their contents, as `local_contents` gives them), the interpreter and its version.
std::string VenvKey(std::string_view requirements, std::string_view local_contents,
                    std::string_view python, std::string_view python_version);

// The local paths a requirements file names (`./pkgs/x`, `-e ../y`, `-r more.txt`, `/abs/z`),
// as written.
std::vector<std::string> LocalRequirementPaths(std::string_view requirements);

// The line of a failed step's output that says why: pip's last "ERROR:" line, else the last
// line mentioning an error, else the last line that is not blank ("" when none).
std::string FailingLine(const std::vector<std::string>& lines);

// `argv` run by bash after exporting the project's .env (when there is one) into its
// environment, as Cortex's bootloader did.
std::vector<std::string> WithDotenv(std::vector<std::string> argv);

}  // namespace cortex::replica
