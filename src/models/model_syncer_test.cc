#include "models/model_syncer.h"

#include <absl/strings/str_cat.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/util.h"
#include "models/testing/fake_model_store.h"

namespace cortex::models {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

class ModelSyncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("syncer_test_" + RandomId(8));
    fs::create_directories(root_);
    store_.Put("s3://b/m/1/model.onnx", "one", 100);
  }
  void TearDown() override { fs::remove_all(root_); }

  SyncerOptions Options() {
    SyncerOptions options;
    options.models.predictor_type = "onnx";
    options.models.sources.push_back({"m", "s3://b/m", "", "model_path"});
    options.cache_root = root_ / "models";
    options.manifest_path = root_ / "manifest.json";
    options.log = [this](const std::string& line) { log_.push_back(line); };
    return options;
  }
  json Manifest() { return json::parse(*ReadFile(root_ / "manifest.json")); }

  fs::path root_;
  FakeModelStore store_;
  std::vector<std::string> log_;
};

TEST_F(ModelSyncerTest, TheFirstPassFetchesEveryVersionAndWritesTheManifest) {
  ModelSyncer syncer(Options(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  json manifest = Manifest();
  EXPECT_EQ(manifest["generation"], 1);
  json version = manifest["models"]["m"]["versions"]["1"];
  EXPECT_EQ(version["timestamp"], 100);
  fs::path dir = version["path"].get<std::string>();
  EXPECT_EQ(dir.parent_path(), root_ / "models");
  EXPECT_EQ(*ReadFile(dir / "model.onnx"), "one");
  EXPECT_THAT(log_, ::testing::ElementsAre(HasSubstr("model m version 1 downloaded (1 file")));
}

TEST_F(ModelSyncerTest, TheFirstPassFailsWhenAModelIsMissingOrInvalid) {
  store_.Remove("s3://b/m/1/model.onnx");
  store_.Put("s3://b/m/1/weights.bin", "x");
  ModelSyncer syncer(Options(), store_);
  absl::Status synced = syncer.Sync();
  EXPECT_THAT(synced.message(), HasSubstr("model_path: s3://b/m: invalid ONNX model path"));
  EXPECT_FALSE(fs::exists(root_ / "manifest.json"));
}

TEST_F(ModelSyncerTest, AnUnchangedSourceIsNeitherFetchedNorRewritten) {
  ModelSyncer syncer(Options(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  int fetches = store_.fetches();
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(store_.fetches(), fetches);
  EXPECT_EQ(syncer.generation(), 1);
  // A second replica sharing the cache fetches nothing either.
  SyncerOptions other = Options();
  other.manifest_path = root_ / "other.json";
  ModelSyncer second(other, store_);
  ASSERT_TRUE(second.Sync().ok());
  EXPECT_EQ(store_.fetches(), fetches);
}

TEST_F(ModelSyncerTest, NewChangedAndRemovedVersionsReachTheManifest) {
  ModelSyncer syncer(Options(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  std::string first_path = Manifest()["models"]["m"]["versions"]["1"]["path"];

  store_.Put("s3://b/m/2/model.onnx", "two", 200);
  ASSERT_TRUE(syncer.Sync().ok());
  json manifest = Manifest();
  EXPECT_EQ(manifest["generation"], 2);
  EXPECT_EQ(manifest["models"]["m"]["versions"].size(), 2u);
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("model m version 2 is available")));

  store_.Put("s3://b/m/1/model.onnx", "one, again", 300);  // re-uploaded: a new ETag
  ASSERT_TRUE(syncer.Sync().ok());
  std::string again_path = Manifest()["models"]["m"]["versions"]["1"]["path"];
  EXPECT_NE(again_path, first_path);
  EXPECT_EQ(*ReadFile(fs::path(again_path) / "model.onnx"), "one, again");
  EXPECT_EQ(*ReadFile(fs::path(first_path) / "model.onnx"), "one");  // readers of the old keep it
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("model m version 1 was updated")));

  store_.Remove("s3://b/m/1/model.onnx");
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_FALSE(Manifest()["models"]["m"]["versions"].contains("1"));
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("model m version 1 was removed upstream")));
}

TEST_F(ModelSyncerTest, AnUnreadableOrBrokenSourceKeepsWhatTheModelHad) {
  ModelSyncer syncer(Options(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  store_.FailWith(absl::UnavailableError("s3://b/m: connection refused"));
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(syncer.generation(), 1);
  EXPECT_THAT(log_.back(), HasSubstr("connection refused; keeping the versions it had"));
  store_.FailWith(absl::PermissionDeniedError(
      "s3://b/m: dir not found or insufficient permissions"));  // expired credentials
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(Manifest()["models"]["m"]["versions"].size(), 1u);
  store_.FailWith(absl::OkStatus());

  store_.Put("s3://b/m/stray.txt", "mixes versions and files");
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(Manifest()["models"]["m"]["versions"].size(), 1u);
  EXPECT_THAT(log_.back(), HasSubstr("invalid ONNX model path"));
}

TEST_F(ModelSyncerTest, AModelRemovedUpstreamLeavesTheManifest) {
  SyncerOptions options = Options();
  options.models.sources.clear();
  options.models.dir = "s3://b/all";
  store_.Put("s3://b/all/a/a.onnx", "a");
  store_.Put("s3://b/all/b/b.onnx", "b");
  ModelSyncer syncer(options, store_);
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(Manifest()["models"].size(), 2u);
  store_.RemoveDir("s3://b/all/b");
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(Manifest()["models"].size(), 1u);
  EXPECT_THAT(log_.back(), HasSubstr("model b was removed upstream"));
}

TEST_F(ModelSyncerTest, ABadModelOfADirIsLeftOutOfTheFirstPassToo) {
  SyncerOptions options = Options();
  options.models.sources.clear();
  options.models.dir = "s3://b/all";
  store_.Put("s3://b/all/good/good.onnx", "g");
  store_.Put("s3://b/all/uploading/notes.txt", "no onnx yet");
  ModelSyncer syncer(options, store_);
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(Manifest()["models"].size(), 1u);
  EXPECT_TRUE(Manifest()["models"].contains("good"));
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("model uploading: models: dir: uploading")));
}

TEST_F(ModelSyncerTest, APollerPicksUpANewVersionAndStops) {
  ModelSyncer syncer(Options(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  syncer.Start(std::chrono::milliseconds(10));
  store_.Put("s3://b/m/3/model.onnx", "three", 300);
  for (int i = 0; i < 500 && syncer.generation() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  syncer.Stop();
  EXPECT_EQ(syncer.generation(), 2);
  EXPECT_TRUE(Manifest()["models"]["m"]["versions"].contains("3"));
  for (const auto& entry : fs::directory_iterator(root_ / "models")) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr(".tmp-")));
  }
}

TEST_F(ModelSyncerTest, AFileThatWouldLandOutsideTheCacheIsRefused) {
  store_.Put("s3://b/p//tmp/escaped.bin", "x");  // an S3 key with an empty part
  SyncerOptions options = Options();
  options.models.predictor_type = "python";
  options.models.sources = {{"p", "s3://b/p", "", "model_path"}};
  ModelSyncer syncer(options, store_);
  absl::Status synced = syncer.Sync();
  EXPECT_THAT(synced.message(), HasSubstr("is not a path inside the model"));
  EXPECT_FALSE(fs::exists("/tmp/escaped.bin"));
}

TEST_F(ModelSyncerTest, PruneRemovesOnlyOldVersionsNoManifestNames) {
  ModelSyncer syncer(Options(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  store_.Put("s3://b/m/1/model.onnx", "re-uploaded", 200);
  ASSERT_TRUE(syncer.Sync().ok());
  std::string current = Manifest()["models"]["m"]["versions"]["1"]["path"];
  std::set<std::string> keep = {fs::path(current).filename().string()};
  fs::create_directories(root_ / "models" / "replicas" / "r1");
  EXPECT_EQ(ModelCache::Prune(root_ / "models", keep, 3600), 0);  // the old one is young yet
  for (const auto& entry : fs::directory_iterator(root_ / "models")) {
    fs::last_write_time(entry.path(), fs::file_time_type::clock::now() - std::chrono::hours(2));
  }
  EXPECT_EQ(ModelCache::Prune(root_ / "models", keep, 3600), 1);
  EXPECT_TRUE(fs::exists(current));
  EXPECT_TRUE(fs::exists(root_ / "models" / "replicas" / "r1"));
  int left = 0;
  for (const auto& entry : fs::directory_iterator(root_ / "models")) left += entry.is_directory();
  EXPECT_EQ(left, 2);  // the current version and the replicas' directory
}

class CachingSyncerTest : public ModelSyncerTest {
 protected:
  SyncerOptions CachingOptions() {
    SyncerOptions options = Options();
    options.models.sources = {{"a", "s3://b/a", "", "models: paths: a"},
                              {"b", "s3://b/b", "", "models: paths: b"},
                              {"c", "s3://b/c", "", "models: paths: c"}};
    options.models.cache_size = 1;
    options.models.disk_cache_size = 2;
    for (const char* name : {"a", "b", "c"}) {
      store_.Put(absl::StrCat("s3://b/", name, "/model.onnx"), name);
    }
    return options;
  }
  // `wants` as [[name, version], ...], most recently used first.
  void Want(int seq, const std::vector<std::pair<std::string, std::string>>& wants) {
    json list = json::array();
    for (const auto& [name, version] : wants) list.push_back(json::array({name, version}));
    json doc = {{"seq", seq}, {"wants", list}};
    ASSERT_TRUE(WriteFileAtomic(root_ / "manifest.json.wants", doc.dump()).ok());
  }
  int OnDisk() {
    int dirs = 0;
    for (const auto& entry : fs::directory_iterator(root_ / "models")) dirs += entry.is_directory();
    return dirs;
  }
};

TEST_F(CachingSyncerTest, ListsEveryVersionButFetchesOnlyWhatIsWanted) {
  ModelSyncer syncer(CachingOptions(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  EXPECT_EQ(store_.fetches(), 0);
  json manifest = Manifest();
  EXPECT_EQ(manifest["models"].size(), 3u);
  EXPECT_TRUE(manifest["models"]["a"]["versions"]["1"]["path"].is_null());

  Want(1, {{"b", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  manifest = Manifest();
  EXPECT_EQ(manifest["wants_seq"], 1);
  std::string b = manifest["models"]["b"]["versions"]["1"]["path"];
  EXPECT_EQ(*ReadFile(fs::path(b) / "model.onnx"), "b");
  EXPECT_TRUE(manifest["models"]["a"]["versions"]["1"]["path"].is_null());
}

TEST_F(CachingSyncerTest, EvictsTheLeastRecentlyWantedBeforeFetchingSoTheDiskLimitHolds) {
  ModelSyncer syncer(CachingOptions(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  fs::create_directories(root_ / "models");
  int most_on_disk = 0;
  store_.OnFetch([&] { most_on_disk = std::max(most_on_disk, OnDisk()); });
  Want(1, {{"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  Want(2, {{"b", "1"}, {"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  EXPECT_EQ(OnDisk(), 2);
  Want(3, {{"c", "1"}, {"b", "1"}, {"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  json manifest = Manifest();
  EXPECT_TRUE(manifest["models"]["a"]["versions"]["1"]["path"].is_null());
  EXPECT_FALSE(manifest["models"]["b"]["versions"]["1"]["path"].is_null());
  EXPECT_FALSE(manifest["models"]["c"]["versions"]["1"]["path"].is_null());
  EXPECT_EQ(OnDisk(), 2);
  // While c was fetched, a was already gone: one directory (b) plus the one being filled.
  EXPECT_LE(most_on_disk, 2);
  EXPECT_THAT(log_,
              ::testing::Contains(HasSubstr("model a version 1 evicted from the disk cache")));
}

TEST_F(CachingSyncerTest, AWantsFileIsServedByItsSeqNotItsTime) {
  ModelSyncer syncer(CachingOptions(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  Want(2, {{"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  int64_t generation = syncer.generation();
  ASSERT_TRUE(syncer.ServeWants().ok());  // the same seq: nothing to do
  EXPECT_EQ(syncer.generation(), generation);
  Want(1, {{"b", "1"}});  // an older writer's list, replaced in late: ignored
  ASSERT_TRUE(syncer.ServeWants().ok());
  EXPECT_TRUE(Manifest()["models"]["b"]["versions"]["1"]["path"].is_null());
  EXPECT_EQ(Manifest()["wants_seq"], 2);
  Want(3, {{"b", "1"}, {"a", "1"}});  // within the same clock tick as the last write
  ASSERT_TRUE(syncer.ServeWants().ok());
  EXPECT_FALSE(Manifest()["models"]["b"]["versions"]["1"]["path"].is_null());
  EXPECT_EQ(Manifest()["wants_seq"], 3);
}

TEST_F(CachingSyncerTest, AnEvictionIsPublishedBeforeTheNextFetch) {
  ModelSyncer syncer(CachingOptions(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  Want(1, {{"b", "1"}, {"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  json during;
  store_.OnFetch([&] { during = Manifest(); });
  Want(2, {{"c", "1"}, {"b", "1"}, {"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  // While c was being fetched, the manifest no longer named a's deleted directory.
  ASSERT_TRUE(during.is_object());
  EXPECT_TRUE(during["models"]["a"]["versions"]["1"]["path"].is_null());
  EXPECT_FALSE(during["models"]["b"]["versions"]["1"]["path"].is_null());
}

TEST_F(CachingSyncerTest, TwoModelsOfOneSourceShareADirectoryThatStaysWhileEitherIsKept) {
  SyncerOptions options = CachingOptions();
  options.models.sources[1].dir = "s3://b/a";  // b is a's source too
  options.models.disk_cache_size = 1;
  ModelSyncer syncer(options, store_);
  ASSERT_TRUE(syncer.Sync().ok());
  Want(1, {{"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  ASSERT_TRUE(syncer.Sync().ok());  // a poll: b's version is on disk too (a's directory)
  EXPECT_FALSE(Manifest()["models"]["b"]["versions"]["1"]["path"].is_null());
  int fetches = store_.fetches();
  Want(2, {{"b", "1"}});  // evicts a, whose directory b uses
  ASSERT_TRUE(syncer.ServeWants().ok());
  EXPECT_EQ(store_.fetches(), fetches);  // nothing was deleted, so nothing was fetched again
  json manifest = Manifest();
  std::string b = manifest["models"]["b"]["versions"]["1"]["path"];
  EXPECT_EQ(*ReadFile(fs::path(b) / "model.onnx"), "a");
  EXPECT_TRUE(manifest["models"]["a"]["versions"]["1"]["path"].is_null());
}

TEST_F(CachingSyncerTest, AFailedFetchIsReportedInTheManifest) {
  ModelSyncer syncer(CachingOptions(), store_);
  ASSERT_TRUE(syncer.Sync().ok());
  store_.FailWith(absl::UnavailableError("s3://b/a: connection refused"));
  Want(1, {{"a", "1"}});
  ASSERT_TRUE(syncer.ServeWants().ok());
  json version = Manifest()["models"]["a"]["versions"]["1"];
  EXPECT_TRUE(version["path"].is_null());
  EXPECT_THAT(version["error"].get<std::string>(), HasSubstr("connection refused"));
  EXPECT_EQ(Manifest()["wants_seq"], 1);
}

}  // namespace
}  // namespace cortex::models
