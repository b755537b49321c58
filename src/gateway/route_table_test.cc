#include "gateway/route_table.h"

#include <gtest/gtest.h>

#include <map>

namespace cortex::gateway {
namespace {

nlohmann::json TwoApis() {
  return nlohmann::json::parse(R"({"version": 3, "apis": [
    {"name": "a", "endpoint": "/a", "replicas": [{"id": "a-1", "host": "127.0.0.1", "port": 9001}]},
    {"name": "b", "endpoint": "/team/b", "api_gateway": "none", "replicas": [
      {"id": "b-1", "host": "127.0.0.1", "port": 9002, "unix_socket": "/run/b-1.sock"}]}]})");
}

TEST(RouteTable, FindsExactEndpointOnly) {
  auto table = RouteTable::FromJson(TwoApis());
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->version(), 3);
  ASSERT_NE((*table)->Find("/a"), nullptr);
  EXPECT_EQ((*table)->Find("/a")->replicas.size(), 1u);
  EXPECT_NE((*table)->Find("/a/"), nullptr);
  EXPECT_EQ((*table)->Find("/a/b"), nullptr);
  EXPECT_EQ((*table)->Find("/team"), nullptr);
  EXPECT_EQ((*table)->Find("/team/b")->api_gateway, "none");
  EXPECT_EQ((*table)->Find("/"), nullptr);
}

TEST(RouteTable, RoundTripsThroughJson) {
  auto table = RouteTable::FromJson(TwoApis());
  ASSERT_TRUE(table.ok());
  auto again = RouteTable::FromJson((*table)->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->ToJson(), (*table)->ToJson());
  EXPECT_EQ((*again)->FindByName("b")->replicas[0].unix_socket, "/run/b-1.sock");
  EXPECT_EQ((*again)->FindByName("a")->replicas[0].unix_socket, "");
}

TEST(RouteTable, RejectsDuplicateEndpointsAndMalformedInput) {
  auto dup = nlohmann::json::parse(
      R"({"apis": [{"name": "a", "endpoint": "/x"}, {"name": "b", "endpoint": "/x"}]})");
  EXPECT_FALSE(RouteTable::FromJson(dup).ok());
  auto bad = nlohmann::json::parse(R"({"apis": [{"endpoint": "/x"}]})");
  EXPECT_FALSE(RouteTable::FromJson(bad).ok());
}

// Found by reading after fuzzing the frame codec: a float weight was undefined behaviour, a port
// past 65535 was truncated to another port.
TEST(RouteTable, RefusesWeightsAndPortsThatAreNotIntegersInRange) {
  for (
      const char* text : {
          R"({"apis": [{"name": "s", "endpoint": "/s", "targets": [{"api": "a", "weight": 1e30}]}]})",
          R"({"apis": [{"name": "s", "endpoint": "/s", "targets": [{"api": "a", "weight": 4294967297}]}]})",
          R"({"apis": [{"name": "s", "endpoint": "/s", "targets": [{"api": "a", "weight": true}]}]})",
          R"({"apis": [{"name": "a", "endpoint": "/a", "replicas": [{"id": "r", "host": "h", "port": 70000}]}]})",
          R"({"apis": [{"name": "a", "endpoint": "/a", "replicas": [{"id": "r", "host": "h", "port": -1}]}]})",
      }) {
    auto table = RouteTable::FromJson(nlohmann::json::parse(text));
    EXPECT_FALSE(table.ok()) << text;
    EXPECT_NE(table.status().message().find("must be an integer from"), std::string::npos)
        << table.status();
  }
}

TEST(RouteTable, KeepsSplitterTargetsAndFindsApisByName) {
  auto json = nlohmann::json::parse(R"({"apis": [
    {"name": "a", "endpoint": "/a", "replicas": []},
    {"name": "split", "endpoint": "/split", "targets": [{"api": "a", "weight": 100}]}]})");
  auto table = RouteTable::FromJson(json);
  ASSERT_TRUE(table.ok()) << table.status();
  const ApiRoute* split = (*table)->Find("/split");
  ASSERT_NE(split, nullptr);
  EXPECT_TRUE(split->is_splitter());
  EXPECT_EQ(split->targets[0].api, "a");
  EXPECT_EQ((*table)->FindByName("a")->endpoint, "/a");
  EXPECT_EQ((*table)->FindByName("zzz"), nullptr);
  EXPECT_EQ(RouteTable::FromJson((*table)->ToJson()).value()->ToJson(), (*table)->ToJson());
  auto zero = nlohmann::json::parse(
      R"({"apis": [{"name": "s", "endpoint": "/s", "targets": [{"api": "a", "weight": 0}]}]})");
  EXPECT_FALSE(RouteTable::FromJson(zero).ok());
}

TEST(Balancer, WeightedChoiceFollowsTheWeights) {
  std::mt19937_64 rng(7);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 100000; ++i) ++counts[PickWeighted({20, 0, 80}, rng)];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0], 20000, 800);
  EXPECT_NEAR(counts[2], 80000, 800);
}

TEST(Balancer, PicksTheLeastLoadedReplica) {
  std::mt19937_64 rng(1);
  EXPECT_EQ(PickLeastOutstanding({3, 1, 2}, rng), 1u);
  EXPECT_EQ(PickLeastOutstanding({0}, rng), 0u);
}

TEST(Balancer, SpreadsTiesEvenly) {
  std::mt19937_64 rng(42);
  std::map<size_t, int> counts;
  for (int i = 0; i < 30000; ++i) ++counts[PickLeastOutstanding({2, 5, 2, 2}, rng)];
  EXPECT_EQ(counts.count(1), 0u);
  for (size_t i : {0u, 2u, 3u}) {
    EXPECT_NEAR(counts[i], 10000, 600) << "replica " << i;
  }
}

}  // namespace
}  // namespace cortex::gateway
