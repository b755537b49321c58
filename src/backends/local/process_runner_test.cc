#include "backends/local/process_runner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "common/process.h"
#include "common/util.h"

namespace cortex::backends::local {
namespace {

namespace fs = std::filesystem;

class ProcessRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("process_runner_test_" + RandomId(8));
    runner_ = std::make_unique<ProcessRunner>(ProcessRunnerOptions{dir_.string(), "", "", "", 0});
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::unique_ptr<ProcessRunner> runner_;
};

TEST_F(ProcessRunnerTest, ARunningChildIsAliveWhateverItsCommandLineSays) {
  // `cortex worker-setup` execs the interpreter: for an instant the command line names
  // neither (and before the exec, it names the setup). A child of ours is still the instance.
  SpawnOptions spawn;
  spawn.argv = {"sleep", "30"};
  auto pid = Spawn(spawn);
  ASSERT_TRUE(pid.ok()) << pid.status();
  InstanceProbe probe = runner_->Probe("job-worker-abcde", *pid, 0);
  EXPECT_TRUE(probe.alive) << probe.reason;
  ::kill(*pid, SIGKILL);
  for (int i = 0; i < 200 && probe.alive; ++i) {
    probe = runner_->Probe("job-worker-abcde", *pid, 0);
    if (probe.alive) ::usleep(10'000);
  }
  EXPECT_FALSE(probe.alive);
  EXPECT_EQ(probe.reason, "was killed by signal 9");
}

TEST_F(ProcessRunnerTest, AProcessThatIsNotOursMustRunTheInstance) {
  // pid 1 is alive but is not our child and runs no instance of ours (a reused pid).
  InstanceProbe probe = runner_->Probe("job-worker-abcde", 1, 0);
  EXPECT_FALSE(probe.alive);
  EXPECT_EQ(probe.reason, "is gone");
}

}  // namespace
}  // namespace cortex::backends::local
