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

}  // namespace
}  // namespace cortex::cli
