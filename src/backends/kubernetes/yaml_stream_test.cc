#include "backends/kubernetes/yaml_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(YamlStream, QuotesStringsAYaml11ReaderWouldRetype) {
  json object = {{"annotations",
                  {{"count", "1"},
                   {"flag", "true"},
                   {"yes", "yes"},
                   {"off", "Off"},
                   {"null", "null"},
                   {"empty", ""},
                   {"float", ".5"},
                   {"negative", "-1"},
                   {"percent", "25%"},
                   {"flag-arg", "--port"},
                   {"word", "cortex"}}},
                 {"replicas", 3},
                 {"ready", true}};
  std::string text = ToYaml(object);
  EXPECT_THAT(text, HasSubstr("count: \"1\""));
  EXPECT_THAT(text, HasSubstr("flag: \"true\""));
  EXPECT_THAT(text, HasSubstr("\"yes\": \"yes\""));
  EXPECT_THAT(text, HasSubstr("\"off\": \"Off\""));
  EXPECT_THAT(text, HasSubstr("\"null\": \"null\""));
  EXPECT_THAT(text, HasSubstr("empty: \"\""));
  EXPECT_THAT(text, HasSubstr("float: \".5\""));
  EXPECT_THAT(text, HasSubstr("negative: \"-1\""));
  EXPECT_THAT(text, HasSubstr("percent: \"25%\""));
  EXPECT_THAT(text, HasSubstr("flag-arg: --port"));
  EXPECT_THAT(text, HasSubstr("word: cortex"));
  EXPECT_THAT(text, HasSubstr("replicas: 3"));
  EXPECT_THAT(text, HasSubstr("ready: true"));
}

// Reads YAML back into JSON with YAML 1.1's types for plain scalars, as Kubernetes does.
json Read(const YAML::Node& node) {
  if (node.IsMap()) {
    json out = json::object();
    for (const auto& e : node) out[e.first.as<std::string>()] = Read(e.second);
    return out;
  }
  if (node.IsSequence()) {
    json out = json::array();
    for (const auto& e : node) out.push_back(Read(e));
    return out;
  }
  if (node.IsNull()) return nullptr;
  if (node.Tag() == "!") return node.Scalar();  // quoted
  int64_t i = 0;
  double d = 0;
  bool b = false;
  if (YAML::convert<int64_t>::decode(node, i)) return i;
  if (YAML::convert<double>::decode(node, d)) return d;
  if (YAML::convert<bool>::decode(node, b)) return b;
  return node.Scalar();
}

TEST(YamlStream, RoundTripsThroughAYamlReader) {
  json object = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "x"}, {"labels", json::object()}}},
                 {"data", {{"cluster.json", "{\n  \"a\": 1\n}"}, {"port", "8888"}}},
                 {"list", json::array({"a", "on", 1, 2.5, false})},
                 {"empty", json::array()}};
  YAML::Node node = YAML::Load(ToYaml(object));
  EXPECT_EQ(Read(node), object);
}

TEST(YamlStream, SeparatesDocumentsAndWritesComments) {
  std::string text = ToYamlStream({json{{"a", 1}}, json{{"b", 2}}}, {"first\nsecond", ""});
  EXPECT_EQ(text, "---\n# first\n# second\na: 1\n---\nb: 2\n");
  EXPECT_EQ(YAML::LoadAll(text).size(), 2u);
}

}  // namespace
}  // namespace cortex::backends::kubernetes
