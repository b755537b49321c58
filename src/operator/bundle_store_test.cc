// Uploaded projects are kept while something may run from them, and removed an hour after their
// last use otherwise (they were never cleaned up).
#include "operator/bundle_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "bundle/bundle.h"
#include "common/testing/temp_dir.h"
#include "common/util.h"

namespace cortex::op {
namespace {

namespace fs = std::filesystem;

class BundleStoreTest : public ::testing::Test {
 protected:
  // Uploads (and extracts) a one-file project; returns its id.
  std::string Upload(const std::string& text) {
    fs::path src = dir_ / ("src-" + text);
    fs::create_directories(src);
    std::ofstream(src / "predictor.py") << text;
    auto files = bundle::ListProjectFiles(src, "");
    EXPECT_TRUE(files.ok()) << files.status();
    auto bytes = bundle::CreateBundle(src, *files);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    std::string id = Sha256Hex(*bytes);
    EXPECT_TRUE(store_.Put(id, *bytes).ok());
    EXPECT_TRUE(store_.ProjectDir(id).ok());
    return id;
  }
  void Age(const std::string& id, std::chrono::seconds by) {
    auto then = fs::file_time_type::clock::now() - by;
    fs::last_write_time(dir_ / "data" / "bundles" / (id + ".tar"), then);
    fs::last_write_time(dir_ / "data" / "projects" / id, then);
  }
  bool Present(const std::string& id) {
    return fs::exists(dir_ / "data" / "bundles" / (id + ".tar")) ||
           fs::exists(dir_ / "data" / "projects" / id);
  }

  cortex::testing::TempDir dir_{"cortex-bundles"};
  BundleStore store_{(dir_ / "data").string()};
};

TEST_F(BundleStoreTest, PrunesOnlyOldProjectsThatNothingUses) {
  std::string used = Upload("used"), old_unused = Upload("old"), young_unused = Upload("young");
  Age(used, std::chrono::hours(2));
  Age(old_unused, std::chrono::hours(2));
  EXPECT_EQ(store_.Prune({used}, 3600), 1);
  EXPECT_TRUE(Present(used));
  EXPECT_FALSE(Present(old_unused));
  EXPECT_TRUE(Present(young_unused));
}

TEST_F(BundleStoreTest, AskingForABundleMakesItYoungAgain) {
  std::string id = Upload("again");
  Age(id, std::chrono::hours(2));
  EXPECT_TRUE(store_.Has(id));  // the CLI is about to deploy it without uploading
  EXPECT_EQ(store_.Prune({}, 3600), 0);
  EXPECT_TRUE(store_.ProjectDir(id).ok());
}

}  // namespace
}  // namespace cortex::op
