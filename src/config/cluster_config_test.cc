#include "config/cluster_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cortex::config {
namespace {

using ::testing::HasSubstr;

TEST(ClusterConfig, AnEmptyFileIsTheDefaults) {
  auto config = ClusterConfig::FromYaml("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->limits.api_gateway_body_bytes, 32u << 20);
  EXPECT_EQ(config->limits.workers_per_job, 16);
  EXPECT_TRUE(config->allowed_local_paths.empty());
}

TEST(ClusterConfig, ReadsLimitsAndLocalPaths) {
  auto config = ClusterConfig::FromYaml(R"(
limits:
  api_gateway_body: 1Mi
  header: 16Ki
  workers_per_job: 4
  replicas_per_api: 50
  log_file: 10Mi
allowed_local_paths: [/data/batch, /srv/in/../jobs]
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->limits.api_gateway_body_bytes, 1u << 20);
  EXPECT_EQ(config->limits.header_bytes, 16u << 10);
  EXPECT_EQ(config->limits.workers_per_job, 4);
  EXPECT_EQ(config->limits.replicas_per_api, 50);
  EXPECT_EQ(config->limits.log_file_bytes, 10u << 20);
  EXPECT_EQ(config->allowed_local_paths,
            (std::vector<std::filesystem::path>{"/data/batch", "/srv/jobs"}));

  auto back = ClusterConfig::FromJson(config->ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), config->ToJson());
}

TEST(ClusterConfig, RefusesWhatItCannotUse) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"limit: {}", "limit is not a cluster setting"},
      {"limits: {max_body: 1Mi}", "limits: max_body is not a known limit"},
      {"limits: {workers_per_job: 0}", "limits: workers_per_job: 0 is out of range (1 to 10000)"},
      {"limits: {workers_per_job: lots}", "\"lots\" is not an integer"},
      {"limits: {api_gateway_body: 1Qi}", "is not a valid quantity"},
      {"limits: {header: 1Ti}", "limits: header: 1099511627776 is out of range"},
      {"allowed_local_paths: [data]", "\"data\" must be an absolute path"},
      {"allowed_local_paths: /data", "must be a list of directories"},
      {"[1, 2]", "must be a map of settings"},
      {"limits: [", "cluster configuration:"},
  };
  for (const auto& c : cases) {
    auto config = ClusterConfig::FromYaml(c.yaml);
    EXPECT_FALSE(config.ok()) << c.yaml;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(c.error)) << c.yaml;
  }
}

TEST(ClusterConfig, ANonexistentFileLoadsAsTheDefaults) {
  auto config = ClusterConfig::Load("/nonexistent/cluster-config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ToJson(), ClusterConfig().ToJson());
}

}  // namespace
}  // namespace cortex::config
