#include "cli/completion.h"

#include <gtest/gtest.h>

namespace cortex::cli {
namespace {

void Tree(CLI::App& app) {
  auto* cluster = app.add_subcommand("cluster", "");
  cluster->add_subcommand("up", "")->add_option("--gateway-port", "");
  cluster->add_subcommand("down", "");
  app.add_subcommand("get", "")->add_option("-e,--env", "");
  app.add_subcommand("operator", "")->group("");  // a server role: hidden
}

TEST(Completion, BashCompletesEveryVisibleCommandAndFlag) {
  CLI::App app{"test", "cortex"};
  Tree(app);
  absl::StatusOr<std::string> script = CompletionScript(app, "bash");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_NE(script->find(R"(    "") words="cluster get --help -h" ;;)"), std::string::npos)
      << *script;
  EXPECT_NE(script->find(R"(    " cluster") words="up down --help -h" ;;)"), std::string::npos);
  EXPECT_NE(script->find(R"(    " cluster up") words="--help -h --gateway-port" ;;)"),
            std::string::npos)
      << *script;
  EXPECT_NE(script->find(R"(    " get") words="--help -h --env -e" ;;)"), std::string::npos)
      << *script;
  EXPECT_EQ(script->find("operator"), std::string::npos);
  EXPECT_NE(script->find("complete -o default -F _cortex cx"), std::string::npos);
  EXPECT_NE(script->find("alias cx=cortex"), std::string::npos);
}

TEST(Completion, ZshUsesTheBashFunctionThroughBashcompinit) {
  CLI::App app{"test", "cortex"};
  Tree(app);
  absl::StatusOr<std::string> script = CompletionScript(app, "zsh");
  ASSERT_TRUE(script.ok());
  EXPECT_NE(script->find("bashcompinit"), std::string::npos);
  EXPECT_NE(script->find("_cortex()"), std::string::npos);
}

TEST(Completion, OtherShellsAreRefused) {
  CLI::App app{"test", "cortex"};
  Tree(app);
  absl::StatusOr<std::string> script = CompletionScript(app, "fish");
  ASSERT_FALSE(script.ok());
  EXPECT_EQ(script.status().message(), "unsupported shell \"fish\": use bash or zsh");
}

}  // namespace
}  // namespace cortex::cli
