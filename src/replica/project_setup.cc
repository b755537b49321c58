#include "replica/project_setup.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <absl/strings/strip.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>

#include "common/process.h"
#include "common/status.h"
#include "common/util.h"

namespace cortex::replica {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCompleteMark = ".cortex-complete";
constexpr size_t kMaxLineBytes = 64 << 10;

bool Exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// What setup.py/pyproject builds leave in a source tree: not part of what was asked for.
bool IsBuildOutput(const fs::path& name) {
  std::string n = name.filename().string();
  return n == "build" || n == "dist" || n == ".eggs" || n == "__pycache__" ||
         n.ends_with(".egg-info");
}

// The bytes of local requirement `name` at `path` (a file, or every file below a directory,
// with its relative path), for the venv key: the same in every copy of the project. A path
// that does not exist adds nothing: pip reports it.
void AppendContents(const std::string& name, const fs::path& path, std::string& out) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    auto bytes = ReadFile(path);
    absl::StrAppend(&out, "file ", name, " ", bytes.ok() ? Sha256Hex(*bytes) : "", "\n");
    return;
  }
  if (!fs::is_directory(path, ec)) return;
  std::vector<std::pair<std::string, std::string>> files;
  for (auto it = fs::recursive_directory_iterator(path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (IsBuildOutput(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    auto bytes = ReadFile(it->path());
    files.emplace_back(fs::relative(it->path(), path, ec).string(),
                       bytes.ok() ? Sha256Hex(*bytes) : "");
  }
  std::sort(files.begin(), files.end());
  absl::StrAppend(&out, "dir ", name, "\n");
  for (const auto& [name, hash] : files) absl::StrAppend(&out, "  ", name, " ", hash, "\n");
}

std::string StepError(std::string_view step, const SetupCommandResult& result) {
  std::string line = FailingLine(result.last_lines);
  return absl::StrCat(std::string(step), " failed (exit status ", result.exit_code, ")",
                      line.empty() ? "" : ": ", line);
}

// An open, exclusively locked file; unlocked when it goes.
class FileLock {
 public:
  static absl::StatusOr<FileLock> Take(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("opening ", path.string(), ": ", strerror(errno)));
    }
    int rc;
    do {
      rc = ::flock(fd, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("locking ", path.string(), ": ", strerror(err)));
    }
    return FileLock(fd);
  }
  static bool Busy(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // closing drops the lock this probe may have taken
    return busy;
  }
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// The venv for the project's requirements.txt: reused when complete, else built at its final
// path. Returns its python.
absl::StatusOr<std::string> RequirementsVenv(const ProjectSetupOptions& o,
                                             const std::string& requirements) {
  const auto& log = o.log;
  SetupCommandResult version = o.run({{o.python, "-c", "import sys; print(sys.version)"},
                                      o.project_dir,
                                      /*echo=*/false});
  if (version.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("requirements.txt: the API's interpreter ", o.python,
                     " does not run (exit status ", version.exit_code, ")",
                     version.last_lines.empty() ? "" : ": " + FailingLine(version.last_lines)));
  }
  std::string python_version =
      version.last_lines.empty() ? "" : absl::StrJoin(version.last_lines, "\n");
  std::string local;
  for (const std::string& path : LocalRequirementPaths(requirements)) {
    AppendContents(path, fs::path(o.project_dir) / path, local);
  }
  // An editable install points into the project directory itself.
  for (absl::string_view line : absl::StrSplit(requirements, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(line, "-e") || absl::StartsWith(line, "--editable")) {
      absl::StrAppend(&local, "editable in ", o.project_dir, "\n");
      break;
    }
  }
  std::string key = VenvKey(requirements, local, o.python, python_version);
  fs::path venvs = fs::path(o.data_dir) / "venvs";
  fs::path venv = venvs / key;
  std::string venv_python = (venv / "bin" / "python").string();
  std::error_code ec;
  fs::create_directories(venvs, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("requirements.txt: creating ", venvs.string(), ": ", ec.message()));
  }
  if (Exists(venv / kCompleteMark)) {
    log(absl::StrCat("requirements.txt: using the virtual environment ", venv.string(),
                     " (built before for the same requirements)"));
    return venv_python;
  }
  fs::path lock_path = venvs / (key + ".lock");
  if (FileLock::Busy(lock_path)) {
    log("requirements.txt: another replica or worker is building its virtual environment; "
        "waiting for it");
  }
  auto lock = FileLock::Take(lock_path);
  if (!lock.ok()) return Annotate(lock.status(), "requirements.txt");
  if (Exists(venv / kCompleteMark)) {
    log(absl::StrCat("requirements.txt: using the virtual environment ", venv.string(),
                     " (built meanwhile for the same requirements)"));
    return venv_python;
  }
  if (Exists(venv)) {
    log(absl::StrCat("requirements.txt: removing the incomplete virtual environment ",
                     venv.string()));
    fs::remove_all(venv, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("requirements.txt: removing ", venv.string(), ": ", ec.message()));
    }
  }
  log(absl::StrCat("requirements.txt: creating the virtual environment ", venv.string(), " (",
                   o.python, " -m venv --system-site-packages)"));
  SetupCommandResult created =
      o.run({WithDotenv({o.python, "-m", "venv", "--system-site-packages", venv.string()}),
             o.project_dir});
  if (created.exit_code != 0) {
    fs::remove_all(venv, ec);
    return absl::FailedPreconditionError(StepError("requirements.txt: python -m venv", created));
  }
  log("requirements.txt: pip install -r requirements.txt");
  SetupCommandResult installed =
      o.run({WithDotenv({venv_python, "-m", "pip", "install", "--disable-pip-version-check",
                         "--no-input", "-r", "requirements.txt"}),
             o.project_dir});
  if (installed.exit_code != 0) {
    fs::remove_all(venv, ec);
    return absl::FailedPreconditionError(StepError("requirements.txt: pip install", installed));
  }
  if (absl::Status st = WriteFileAtomic(venv / kCompleteMark, requirements); !st.ok()) {
    return Annotate(st, "requirements.txt");
  }
  log(absl::StrCat("requirements.txt: installed into ", venv.string()));
  return venv_python;
}

}  // namespace

absl::StatusOr<std::string> SetUpProject(const ProjectSetupOptions& options) {
  ProjectSetupOptions o = options;
  if (!o.log) o.log = [](std::string_view) {};
  if (!o.run) o.run = [log = o.log](const SetupCommand& c) { return RunSetupCommand(c, log); };
  if (!o.on_path) o.on_path = OnPath;
  fs::path dir(o.project_dir);
  bool has_script = Exists(dir / "dependencies.sh");
  bool has_conda = Exists(dir / "conda-packages.txt");
  bool has_requirements = Exists(dir / "requirements.txt");
  if (!has_script && !has_conda && !has_requirements) return o.python;

  if (has_script) {
    o.log("dependencies.sh: bash -e dependencies.sh");
    SetupCommandResult result =
        o.run({WithDotenv({"bash", "-e", "dependencies.sh"}), o.project_dir});
    if (result.exit_code != 0) {
      return absl::FailedPreconditionError(StepError("dependencies.sh", result));
    }
  }
  if (has_conda) {
    if (!o.on_path("conda")) {
      return absl::FailedPreconditionError(
          "conda-packages.txt: conda is not installed (no conda on PATH); install conda, or "
          "list the packages in requirements.txt instead");
    }
    o.log("conda-packages.txt: conda install -y --file conda-packages.txt");
    SetupCommandResult result = o.run(
        {WithDotenv({"conda", "install", "-y", "--file", "conda-packages.txt"}), o.project_dir});
    if (result.exit_code != 0) {
      return absl::FailedPreconditionError(StepError("conda-packages.txt: conda install", result));
    }
  }
  if (!has_requirements) return o.python;
  auto requirements = ReadFile(dir / "requirements.txt");
  if (!requirements.ok()) return Annotate(requirements.status(), "requirements.txt");
  if (o.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "requirements.txt: no cluster data directory to keep the virtual environment in");
  }
  return RequirementsVenv(o, *requirements);
}

SetupCommandResult RunSetupCommand(const SetupCommand& command,
                                   const std::function<void(std::string_view)>& log) {
  SetupCommandResult result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.exit_code = 127;
    result.last_lines = {absl::StrCat("error: pipe: ", strerror(errno))};
    return result;
  }
  SpawnOptions spawn;
  spawn.argv = command.argv;
  spawn.working_dir = command.working_dir;
  spawn.output_fd = pipe_fds[1];
  spawn.group = SpawnOptions::Group::kInherit;  // stopped with the replica or worker
  spawn.die_with_parent = true;
  spawn.umask = UserUmask();  // what it installs or writes, it writes as the user would
  auto pid = Spawn(spawn);
  ::close(pipe_fds[1]);
  if (!pid.ok()) {
    ::close(pipe_fds[0]);
    result.exit_code = 127;
    result.last_lines = {absl::StrCat("error: ", pid.status().message())};
    return result;
  }
  std::deque<std::string> kept;
  auto emit = [&](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (command.echo && log) log(line);
    kept.push_back(std::move(line));
    if (kept.size() > kKeptLines) kept.pop_front();
  };
  std::string buffer;
  char chunk[8192];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(buffer.substr(start, nl - start));
    }
    buffer.erase(0, start);
    if (buffer.size() >= kMaxLineBytes) {  // no newline within the limit: this piece is a line
      emit(std::move(buffer));
      buffer.clear();
    }
  }
  if (!buffer.empty()) emit(std::move(buffer));
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  result.last_lines.assign(kept.begin(), kept.end());
  return result;
}

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string VenvKey(std::string_view requirements, std::string_view local_contents,
                    std::string_view python, std::string_view python_version) {
  // Length-prefixed, so that no two different inputs hash the same bytes.
  std::string material;
  for (std::string_view part : {requirements, local_contents, python, python_version}) {
    absl::StrAppend(&material, part.size(), ":", std::string(part), ";");
  }
  return Sha256Hex(material).substr(0, 32);
}

std::vector<std::string> LocalRequirementPaths(std::string_view requirements) {
  std::vector<std::string> paths;
  for (absl::string_view line : absl::StrSplit(std::string(requirements), '\n')) {
    // A comment starts at a " #" or at the line's start (pip's rule).
    if (size_t hash = line.find(" #"); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    // The options that name a path: -r/-c (another file), -e (an editable project).
    for (absl::string_view option :
         {"--requirement", "--constraint", "--editable", "-r", "-c", "-e"}) {
      if (absl::ConsumePrefix(&line, option)) {
        absl::ConsumePrefix(&line, "=");
        line = absl::StripLeadingAsciiWhitespace(line);
        break;
      }
    }
    absl::string_view target = line.substr(0, line.find_first_of(" \t;"));
    if (target.empty()) continue;
    if (absl::StrContains(target, "://") && !absl::StartsWith(target, "file:")) continue;  // a URL
    // A path, not a requirement specifier or a URL: starts with . or /, or names a file here.
    bool path_like = target.front() == '.' || target.front() == '/' ||
                     absl::StartsWith(target, "file:") || absl::EndsWith(target, ".txt") ||
                     absl::EndsWith(target, ".whl") || absl::EndsWith(target, ".tar.gz") ||
                     absl::EndsWith(target, ".zip");
    if (!path_like) continue;
    absl::ConsumePrefix(&target, "file://");
    absl::ConsumePrefix(&target, "file:");
    // An extras suffix (./pkg[extra]) is not part of the path.
    if (size_t bracket = target.find('['); bracket != absl::string_view::npos) {
      target = target.substr(0, bracket);
    }
    if (!target.empty()) paths.emplace_back(target);
  }
  return paths;
}

std::string FailingLine(const std::vector<std::string>& lines) {
  auto last = [&](auto predicate) -> std::string {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      std::string line(absl::StripAsciiWhitespace(*it));
      if (!line.empty() && predicate(line)) return line;
    }
    return "";
  };
  if (std::string line = last([](const std::string& l) { return l.starts_with("ERROR:"); });
      !line.empty()) {
    return line;
  }
  if (std::string line = last([](const std::string& l) {
        std::string lower = absl::AsciiStrToLower(l);
        for (const char* word : {"error", "not found", "no such file", "cannot", "failed"}) {
          if (absl::StrContains(lower, word)) return true;
        }
        return false;
      });
      !line.empty()) {
    return line;
  }
  return last([](const std::string&) { return true; });
}

std::vector<std::string> WithDotenv(std::vector<std::string> argv) {
  // `set -a` exports what .env assigns; the command then replaces this shell.
  std::vector<std::string> wrapped = {
      "bash", "-c", "set -a; if [ -f ./.env ]; then . ./.env; fi; set +a; exec \"$@\"",
      "cortex-setup"};
  wrapped.insert(wrapped.end(), std::make_move_iterator(argv.begin()),
                 std::make_move_iterator(argv.end()));
  return wrapped;
}

}  // namespace cortex::replica
