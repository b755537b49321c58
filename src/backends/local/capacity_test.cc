#include "backends/local/capacity.h"

#include <gtest/gtest.h>

namespace cortex::backends::local {
namespace {

TEST(Capacity, TakesTheTypedComputeSection) {
  config::ComputeConfig compute;
  compute.cpu_milli = 1500;
  compute.mem_bytes = int64_t{1} << 30;
  compute.gpu = 1;
  auto r = Resources::FromCompute(compute);
  EXPECT_EQ(r.cpu_milli, 1500);
  EXPECT_EQ(r.mem_bytes, int64_t{1} << 30);
  EXPECT_EQ(r.gpu, 1);
  auto defaults = Resources::FromCompute(config::ComputeConfig{});
  EXPECT_EQ(defaults.cpu_milli, 200);
  EXPECT_EQ(defaults.mem_bytes, 0);
}

TEST(Capacity, ReportsTheResourceThatIsShort) {
  Resources total{2000, int64_t{4} << 30, 0};
  Resources used{1500, 0, 0};
  EXPECT_FALSE(Shortfall(used, {500, 0, 0}, total).has_value());
  auto cpu = Shortfall(used, {600, 0, 0}, total);
  ASSERT_TRUE(cpu.has_value());
  EXPECT_NE(cpu->find("cpu"), std::string::npos);
  auto mem = Shortfall({}, {0, int64_t{5} << 30, 0}, total);
  ASSERT_TRUE(mem.has_value());
  EXPECT_NE(mem->find("mem"), std::string::npos);
  auto gpu = Shortfall({}, {0, 0, 1}, total);
  ASSERT_TRUE(gpu.has_value());
  EXPECT_NE(gpu->find("gpu: 1 requested, 0 available"), std::string::npos);
}

TEST(Capacity, HandsOutWholeFreeGpus) {
  EXPECT_EQ(PickGpus({}, 2, 4), (std::vector<int>{0, 1}));
  EXPECT_EQ(PickGpus({0, 2}, 2, 4), (std::vector<int>{1, 3}));
  EXPECT_TRUE(PickGpus({0, 1, 2}, 2, 4).empty());
  EXPECT_TRUE(PickGpus({}, 1, 0).empty());
}

}  // namespace
}  // namespace cortex::backends::local
