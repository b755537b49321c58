#include "replica/project_setup.h"

#include <absl/strings/str_join.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/testing/temp_dir.h"

namespace cortex::replica {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Records what would run, and answers as told: the interpreter's version, and failures.
class ProjectSetupTest : public ::testing::Test {
 protected:
  ProjectSetupTest() {
    fs::create_directories(project_);
    fs::create_directories(data_);
  }

  void Write(const std::string& name, const std::string& text) {
    fs::path path = project_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  // The command without the .env wrapper, joined by spaces.
  static std::string Plain(const SetupCommand& command) {
    std::vector<std::string> argv = command.argv;
    std::vector<std::string> wrapper = WithDotenv({});
    if (argv.size() >= wrapper.size() && std::equal(wrapper.begin(), wrapper.end(), argv.begin())) {
      argv.erase(argv.begin(), argv.begin() + static_cast<long>(wrapper.size()));
    }
    return absl::StrJoin(argv, " ");
  }

  ProjectSetupOptions Options() {
    ProjectSetupOptions o;
    o.project_dir = project_.string();
    o.python = "/usr/bin/python3";
    o.data_dir = data_.string();
    o.log = [this](std::string_view line) { log_.emplace_back(line); };
    o.on_path = [this](const std::string& program) { return program == "conda" && has_conda_; };
    o.run = [this](const SetupCommand& command) {
      std::string plain = Plain(command);
      EXPECT_EQ(command.working_dir, project_.string()) << plain;
      SetupCommandResult result;
      if (plain.find("import sys") != std::string::npos) {
        result.last_lines = {version_};
        return result;
      }
      ran_.push_back(plain);
      if (plain.find(" -m venv ") != std::string::npos) {
        fs::create_directories(command.argv.back() + "/bin");  // what venv would leave
      }
      for (const auto& [needle, lines] : failures_) {
        if (plain.find(needle) != std::string::npos) {
          result.exit_code = 1;
          result.last_lines = lines;
        }
      }
      return result;
    };
    return o;
  }

  std::vector<fs::path> Venvs() const {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(data_ / "venvs")) {
      if (entry.is_directory()) out.push_back(entry.path());
    }
    return out;
  }

  testing::TempDir tmp_;
  fs::path project_ = tmp_ / "project";
  fs::path data_ = tmp_ / "data";
  std::vector<std::string> log_;
  std::vector<std::string> ran_;
  std::map<std::string, std::vector<std::string>> failures_;
  std::string version_ = "3.11.2 (main) [GCC 12.2.0]";
  bool has_conda_ = true;
};

TEST_F(ProjectSetupTest, AProjectWithoutDependencyFilesRunsNothing) {
  auto python = SetUpProject(Options());
  ASSERT_TRUE(python.ok()) << python.status();
  EXPECT_EQ(*python, "/usr/bin/python3");
  EXPECT_THAT(ran_, IsEmpty());
  EXPECT_FALSE(fs::exists(data_ / "venvs"));
}

TEST_F(ProjectSetupTest, RunsTheThreeStepsInCortexOrderAndUsesTheVenv) {
  Write("requirements.txt", "./pkgs/mytool\n");
  Write("conda-packages.txt", "numpy\n");
  Write("dependencies.sh", "echo hi\n");
  auto python = SetUpProject(Options());
  ASSERT_TRUE(python.ok()) << python.status();
  ASSERT_EQ(ran_.size(), 4u);
  EXPECT_EQ(ran_[0], "bash -e dependencies.sh");
  EXPECT_EQ(ran_[1], "conda install -y --file conda-packages.txt");
  auto venvs = Venvs();
  ASSERT_EQ(venvs.size(), 1u);
  EXPECT_EQ(ran_[2], "/usr/bin/python3 -m venv --system-site-packages " + venvs[0].string());
  EXPECT_EQ(ran_[3], (venvs[0] / "bin/python").string() +
                         " -m pip install --disable-pip-version-check --no-input -r "
                         "requirements.txt");
  EXPECT_EQ(*python, (venvs[0] / "bin/python").string());
  EXPECT_TRUE(fs::exists(venvs[0] / ".cortex-complete"));
  // The product never turns the package index off itself (tests do, through PIP_NO_INDEX).
  for (const auto& command : ran_) EXPECT_THAT(command, ::testing::Not(HasSubstr("--no-index")));
}

TEST_F(ProjectSetupTest, EveryStepSeesTheProjectsDotenv) {
  Write("requirements.txt", "x\n");
  Write("dependencies.sh", "true\n");
  std::vector<std::vector<std::string>> argvs;
  ProjectSetupOptions o = Options();
  auto fake = o.run;
  o.run = [&](const SetupCommand& command) {
    argvs.push_back(command.argv);
    return fake(command);
  };
  ASSERT_TRUE(SetUpProject(o).ok());
  ASSERT_EQ(argvs.size(), 4u);
  for (const auto& argv : argvs) {
    if (absl::StrJoin(argv, " ").find("import sys") != std::string::npos) continue;  // a probe
    ASSERT_GE(argv.size(), 3u);
    EXPECT_EQ(argv[0], "bash");
    EXPECT_THAT(argv[2], HasSubstr(". ./.env"));
  }
}

TEST_F(ProjectSetupTest, TheVenvIsBuiltOnceAndReusedWhileTheRequirementsAreTheSame) {
  Write("requirements.txt", "./pkgs/mytool\n");
  Write("pkgs/mytool/setup.py", "setup()\n");
  auto first = SetUpProject(Options());
  ASSERT_TRUE(first.ok()) << first.status();
  ran_.clear();
  // What a build leaves in the package's tree does not make it another package.
  Write("pkgs/mytool/build/lib/x.py", "");
  Write("pkgs/mytool/mytool.egg-info/PKG-INFO", "");
  auto second = SetUpProject(Options());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, *first);
  EXPECT_THAT(ran_, IsEmpty());
  EXPECT_THAT(log_.back(), HasSubstr("using the virtual environment"));

  // A changed local package, or requirements, or interpreter version: another venv.
  Write("pkgs/mytool/setup.py", "setup(name='mytool')\n");
  auto changed_package = SetUpProject(Options());
  version_ = "3.12.0";
  auto changed_version = SetUpProject(Options());
  Write("requirements.txt", "./pkgs/mytool\nother\n");
  auto changed_requirements = SetUpProject(Options());
  ASSERT_TRUE(changed_package.ok() && changed_version.ok() && changed_requirements.ok());
  EXPECT_NE(*changed_package, *first);
  EXPECT_NE(*changed_version, *changed_package);
  EXPECT_NE(*changed_requirements, *changed_version);
  EXPECT_EQ(Venvs().size(), 4u);
}

TEST_F(ProjectSetupTest, AnotherProjectWithTheSameRequirementsSharesTheVenv) {
  Write("requirements.txt", "./pkgs/mytool\n");
  Write("pkgs/mytool/setup.py", "setup()\n");
  auto first = SetUpProject(Options());
  ASSERT_TRUE(first.ok()) << first.status();
  fs::path other = tmp_ / "other-project";
  fs::copy(project_, other, fs::copy_options::recursive);
  Write("predictor.py", "changed\n");  // a change elsewhere in the project does not count
  project_ = other;
  ran_.clear();
  auto second = SetUpProject(Options());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, *first);
  EXPECT_THAT(ran_, IsEmpty());
}

TEST_F(ProjectSetupTest, AnIncompleteVenvIsRemovedAndBuiltAgain) {
  Write("requirements.txt", "x\n");
  failures_["pip install"] = {"ERROR: killed"};
  ASSERT_FALSE(SetUpProject(Options()).ok());
  EXPECT_THAT(Venvs(), IsEmpty());  // a failed build leaves nothing behind
  failures_.clear();
  auto built = SetUpProject(Options());
  ASSERT_TRUE(built.ok());
  fs::path venv = fs::path(*built).parent_path().parent_path();
  // A build that was killed: the directory is there, its mark is not.
  fs::remove(venv / ".cortex-complete");
  std::ofstream(venv / "half-written") << "x";
  ran_.clear();
  ASSERT_TRUE(SetUpProject(Options()).ok());
  EXPECT_EQ(ran_.size(), 2u);  // venv and pip again
  EXPECT_FALSE(fs::exists(venv / "half-written"));
  EXPECT_TRUE(fs::exists(venv / ".cortex-complete"));
}

TEST_F(ProjectSetupTest, AFailingStepNamesItselfAndItsFailingLineAndStopsTheRest) {
  Write("dependencies.sh", "false\n");
  Write("requirements.txt", "x\n");
  failures_["dependencies.sh"] = {"installing things", "cp: cannot stat 'x': No such file", "  "};
  auto failed = SetUpProject(Options());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(),
            "dependencies.sh failed (exit status 1): cp: cannot stat 'x': No such file");
  EXPECT_THAT(ran_, ElementsAre("bash -e dependencies.sh"));
}

TEST_F(ProjectSetupTest, AFailedPipInstallGivesPipsErrorLine) {
  Write("requirements.txt", "no-such-package-xyz\n");
  failures_["pip install"] = {
      "ERROR: Could not find a version that satisfies the requirement no-such-package-xyz "
      "(from versions: none)",
      "ERROR: No matching distribution found for no-such-package-xyz", "[notice] done"};
  auto failed = SetUpProject(Options());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(),
            "requirements.txt: pip install failed (exit status 1): ERROR: No matching "
            "distribution found for no-such-package-xyz");
}

TEST_F(ProjectSetupTest, CondaPackagesWithoutCondaIsAClearError) {
  Write("conda-packages.txt", "numpy\n");
  has_conda_ = false;
  auto failed = SetUpProject(Options());
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(),
              HasSubstr("conda-packages.txt: conda is not installed (no conda on PATH)"));
  EXPECT_THAT(ran_, IsEmpty());
}

TEST(VenvKey, DependsOnEveryPartAndNoPartCanStandForAnother) {
  std::string key = VenvKey("a\n", "", "/usr/bin/python3", "3.11");
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key, VenvKey("a\n", "", "/usr/bin/python3", "3.11"));
  EXPECT_NE(key, VenvKey("b\n", "", "/usr/bin/python3", "3.11"));
  EXPECT_NE(key, VenvKey("a\n", "dir x", "/usr/bin/python3", "3.11"));
  EXPECT_NE(key, VenvKey("a\n", "", "/opt/python3", "3.11"));
  EXPECT_NE(key, VenvKey("a\n", "", "/usr/bin/python3", "3.12"));
  EXPECT_NE(VenvKey("ab", "", "p", "v"), VenvKey("a", "b", "p", "v"));
}

TEST(LocalRequirementPaths, FindsThePathsButNotTheSpecifiers) {
  EXPECT_THAT(LocalRequirementPaths("numpy==1.2\n"
                                    "./pkgs/mytool\n"
                                    "# ./commented\n"
                                    "-e ../editable[extra]\n"
                                    "-r more.txt\n"
                                    "--constraint=pins.txt\n"
                                    "requests>=2 ; python_version > '3' # ./not\n"
                                    "/abs/wheel.whl\n"
                                    "file:///srv/pkg.tar.gz\n"
                                    "https://example.com/x.zip\n"),
              ElementsAre("./pkgs/mytool", "../editable", "more.txt", "pins.txt", "/abs/wheel.whl",
                          "/srv/pkg.tar.gz"));
}

TEST(FailingLine, PrefersPipsErrorThenAnErrorThenTheLastLine) {
  EXPECT_EQ(FailingLine({"a", "ERROR: first", "ERROR: last", "notice"}), "ERROR: last");
  EXPECT_EQ(FailingLine({"a", "bash: foo: command not found", "b"}),
            "bash: foo: command not found");
  EXPECT_EQ(FailingLine({"a", "the end", " "}), "the end");
  EXPECT_EQ(FailingLine({}), "");
}

// The real runner: output lines to the log and back, the exit status, a program that is not.
TEST(RunSetupCommand, ReportsTheOutputAndTheExitStatus) {
  std::vector<std::string> logged;
  auto log = [&](std::string_view line) { logged.emplace_back(line); };
  SetupCommandResult result =
      RunSetupCommand({{"bash", "-c", "echo one; echo two >&2; printf three; exit 3"}, "/"}, log);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.last_lines, ElementsAre("one", "two", "three"));
  EXPECT_EQ(logged, result.last_lines);
  logged.clear();
  result = RunSetupCommand({{"bash", "-c", "echo quiet"}, "/", /*echo=*/false}, log);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(logged, IsEmpty());
  result = RunSetupCommand({{"/no/such/program"}, "/"}, log);
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_THAT(FailingLine(result.last_lines), HasSubstr("/no/such/program"));
}

TEST(WithDotenv, ExportsTheDotenvToTheCommand) {
  testing::TempDir dir;
  std::ofstream(dir / ".env") << "GREETING='hello there'\n";
  SetupCommandResult result = RunSetupCommand(
      {WithDotenv({"bash", "-c", "echo \"$GREETING\" \"$0\"", "arg0"}), dir.string()}, {});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.last_lines, ElementsAre("hello there arg0"));
}

}  // namespace
}  // namespace cortex::replica
