// The hints `cortex deploy` prints after its messages, in v0.24's words and layout.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/env_config.h"

namespace cortex::cli {
namespace {

using nlohmann::json;

json Result(const std::string& name, const std::string& kind, const std::string& error = "") {
  return {{"api", {{"name", name}, {"kind", kind}}}, {"message", ""}, {"error", error}};
}

class DeployHintsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cx-hints-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    setenv("CORTEX_CLI_CONFIG_DIR", dir_.c_str(), 1);
    CliConfig config;
    config.environments = {{"local", "local", "http://127.0.0.1:1", "t"},
                           {"staging", "local", "http://127.0.0.1:2", "t"}};
    ASSERT_TRUE(SaveCliConfig(config).ok());
  }
  void TearDown() override {
    unsetenv("CORTEX_CLI_CONFIG_DIR");
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(DeployHintsTest, OneRealtimeApiNamesItAndItsLogs) {
  EXPECT_EQ(DeployHints(json::array({Result("iris", "RealtimeAPI")}), ""),
            "cortex get        (show api statuses)\n"
            "cortex get iris   (show api info)\n"
            "cortex logs iris  (stream api logs)\n");
}

TEST_F(DeployHintsTest, SeveralApisNameApiNameAndABatchApiHasNoLogsHint) {
  EXPECT_EQ(DeployHints(json::array({Result("a", "BatchAPI"), Result("b", "TrafficSplitter")}), ""),
            "cortex get             (show api statuses)\n"
            "cortex get <api_name>  (show api info)\n");
  // A RealtimeAPI that failed does not bring the logs hint either.
  EXPECT_EQ(
      DeployHints(json::array({Result("a", "BatchAPI"), Result("r", "RealtimeAPI", "x")}), ""),
      "cortex get             (show api statuses)\n"
      "cortex get <api_name>  (show api info)\n");
}

TEST_F(DeployHintsTest, AnEnvironmentOtherThanTheDefaultIsNamed) {
  EXPECT_EQ(DeployHints(json::array({Result("iris", "RealtimeAPI")}), "staging"),
            "cortex get --env staging        (show api statuses)\n"
            "cortex get iris --env staging   (show api info)\n"
            "cortex logs iris --env staging  (stream api logs)\n");
  EXPECT_EQ(DeployHints(json::array({Result("iris", "BatchAPI")}), "local"),
            "cortex get       (show api statuses)\n"
            "cortex get iris  (show api info)\n");
}

}  // namespace
}  // namespace cortex::cli
