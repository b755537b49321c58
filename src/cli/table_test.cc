#include "cli/table.h"

#include <gtest/gtest.h>

namespace cortex::cli {
namespace {

TEST(Table, PadsColumnsAndHidesEmptyOptionalOnes) {
  std::string out = RenderTable({{"api"}, {"status"}, {"5XX", true}},
                                {{"iris", "live", "-"}, {"text-generator", "updating", "-"}});
  EXPECT_EQ(out,
            "api              status\n"
            "iris             live\n"
            "text-generator   updating\n");
}

TEST(Table, KeepsOptionalColumnWithValues) {
  std::string out = RenderTable({{"a"}, {"b", true}}, {{"x", "3"}});
  EXPECT_EQ(out, "a   b\nx   3\n");
}

// v0.24's `cortex env list` block and deploy hints (delimiter "", two spaces).
TEST(KeyValues, AlignsValuesAtOneColumn) {
  EXPECT_EQ(RenderKeyValues({{"name", "local (default)"}, {"operator endpoint", "http://a"}}),
            "name:              local (default)\n"
            "operator endpoint: http://a\n");
  EXPECT_EQ(
      RenderKeyValues(
          {{"cortex get", "(show api statuses)"}, {"cortex get iris", "(show api info)"}}, "", 2),
      "cortex get       (show api statuses)\n"
      "cortex get iris  (show api info)\n");
}

}  // namespace
}  // namespace cortex::cli
