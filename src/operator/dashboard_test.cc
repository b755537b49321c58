#include "operator/dashboard.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace cortex::op {
namespace {

TEST(DashboardTest, NamesFindThePageAndItsFiles) {
  const EmbeddedFile* page = FindDashboardFile("");  // /dashboard and /dashboard/
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->name, "index.html");
  EXPECT_EQ(FindDashboardFile("index.html"), page);
  ASSERT_NE(FindDashboardFile("app.js"), nullptr);
  EXPECT_EQ(FindDashboardFile("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindDashboardFile("nope.js"), nullptr);
  EXPECT_EQ(FindDashboardFile("../operator.token"), nullptr);
  EXPECT_EQ(FindDashboardFile("index.html?api=iris"), nullptr);  // the route strips the query
}

TEST(DashboardTest, EveryFileThePageLoadsIsEmbedded) {
  const EmbeddedFile* page = FindDashboardFile("");
  ASSERT_NE(page, nullptr);
  std::string html(page->bytes);
  std::regex reference(R"re((?:src|href)="(/dashboard/[^"]+)")re");
  int references = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), reference);
       it != std::sregex_iterator(); ++it) {
    ++references;
    std::string path = (*it)[1].str();  // /dashboard/NAME
    EXPECT_NE(FindDashboardFile(path.substr(path.rfind('/') + 1)), nullptr) << path;
  }
  EXPECT_EQ(references, 2);  // the style sheet and the script
}

TEST(DashboardTest, TheScriptIsABundleWithChartJs) {
  const EmbeddedFile* script = FindDashboardFile("app.js");
  ASSERT_NE(script, nullptr);
  std::string_view js = script->bytes;
  // esbuild resolved every import: none is left for the browser to fetch.
  EXPECT_EQ(js.find("from\"chart.js\""), std::string_view::npos);
  EXPECT_EQ(js.find("from \"chart.js\""), std::string_view::npos);
  EXPECT_NE(js.find("Chart.js v4"), std::string_view::npos);  // its licence comment is kept
  for (const EmbeddedFile& file : EmbeddedFiles()) {
    EXPECT_FALSE(file.bytes.empty()) << file.name;
    EXPECT_EQ(file.etag.size(), 34u) << file.name;  // 32 hex digits, quoted
  }
}

}  // namespace
}  // namespace cortex::op
