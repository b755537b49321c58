#include "models/model_sources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/util.h"
#include "models/testing/fake_model_store.h"

namespace cortex::models {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

config::PredictorConfig Predictor(const std::string& type) {
  config::PredictorConfig p;
  p.type = type;
  p.path = "predictor.py";
  return p;
}

TEST(ModelsOf, ModelPathIsTheDefaultModelResolvedInTheProject) {
  config::PredictorConfig p = Predictor("python");
  p.model_path = "./models/iris/";
  ModelsConfig models = ModelsOf(p, "/srv/project");
  ASSERT_EQ(models.sources.size(), 1u);
  EXPECT_EQ(models.sources[0].name, kDefaultModelName);
  EXPECT_EQ(models.sources[0].dir, "/srv/project/models/iris");
  EXPECT_EQ(models.sources[0].field, "model_path");
  EXPECT_FALSE(models.dir);
}

TEST(ModelsOf, AnOnnxFileIsTheOnlyFileOfItsDirectory) {
  config::PredictorConfig p = Predictor("onnx");
  p.model_path = "s3://bucket/models/resnet.onnx";
  ModelsConfig models = ModelsOf(p, "/srv/project");
  ASSERT_EQ(models.sources.size(), 1u);
  EXPECT_EQ(models.sources[0].dir, "s3://bucket/models");
  EXPECT_EQ(models.sources[0].only_file, "resnet.onnx");
}

TEST(ModelsOf, PathsDirAndCacheSizes) {
  config::PredictorConfig p = Predictor("python");
  p.models = {
      {"paths", {{{"name", "a"}, {"model_path", "/abs/a"}}, {{"name", "b"}, {"model_path", "b"}}}},
      {"cache_size", 1},
      {"disk_cache_size", 2}};
  ModelsConfig models = ModelsOf(p, "/p");
  ASSERT_EQ(models.sources.size(), 2u);
  EXPECT_EQ(models.sources[0].dir, "/abs/a");
  EXPECT_EQ(models.sources[1].dir, "/p/b");
  EXPECT_EQ(models.sources[1].field, "models: paths: b");
  EXPECT_EQ(models.cache_size, 1);
  EXPECT_EQ(models.disk_cache_size, 2);

  config::PredictorConfig d = Predictor("onnx");
  d.models = {{"dir", "s3://b/all/"}};
  EXPECT_EQ(ModelsOf(d, "/p").dir, "s3://b/all");
}

TEST(ReadModels, EveryModelOfADirAndErrorsNamingTheField) {
  FakeModelStore store;
  store.Put("s3://b/all/resnet/1/model.onnx", "x");
  store.Put("s3://b/all/resnet/2/model.onnx", "y");
  store.Put("s3://b/all/mlp/mlp.onnx", "z");
  ModelsConfig models;
  models.predictor_type = "onnx";
  models.dir = "s3://b/all";
  auto trees = ReadModels(models, store);
  ASSERT_TRUE(trees.ok()) << trees.status();
  ASSERT_EQ(trees->size(), 2u);
  EXPECT_EQ((*trees)[0].name, "mlp");
  EXPECT_EQ((*trees)[0].path, "s3://b/all/mlp");
  EXPECT_EQ((*trees)[1].name, "resnet");
  EXPECT_EQ((*trees)[1].versions.size(), 2u);

  store.Put("s3://b/all/bad/notes.txt", "n");
  auto bad = ReadModels(models, store);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("models: dir: bad: s3://b/all/bad: invalid ONNX model path"));

  ModelsConfig missing;
  missing.predictor_type = "python";
  missing.sources.push_back({"m", "s3://b/none", "", "models: paths: m"});
  auto gone = ReadModels(missing, store);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().message(),
            "models: paths: m: s3://b/none: dir not found or insufficient permissions");
}

TEST(ReadModels, AMissingOnnxFile) {
  FakeModelStore store;
  store.Put("/m/other.onnx", "x");
  ModelsConfig models;
  models.predictor_type = "onnx";
  models.sources.push_back({kDefaultModelName, "/m", "model.onnx", "model_path"});
  auto trees = ReadModels(models, store);
  ASSERT_FALSE(trees.ok());
  EXPECT_EQ(trees.status().message(),
            "model_path: /m/model.onnx: file not found or insufficient permissions");
  models.sources[0].only_file = "other.onnx";
  trees = ReadModels(models, store);
  ASSERT_TRUE(trees.ok()) << trees.status();
  ASSERT_EQ((*trees)[0].versions.size(), 1u);
  EXPECT_EQ((*trees)[0].versions[0].files[0].path, "other.onnx");
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("models_test_" + RandomId(8));
    fs::create_directories(root_ / "m" / "1" / "sub");
    fs::create_directories(root_ / "m" / ".git");
    std::ofstream(root_ / "m" / "1" / "sub" / "w.bin") << "12345";
    std::ofstream(root_ / "m" / "1" / ".hidden") << "h";
    std::ofstream(root_ / "m" / ".git" / "HEAD") << "h";
    std::ofstream(root_ / "file") << "f";
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(LocalStoreTest, ListsFilesRecursivelyWithoutHiddenOnes) {
  auto store = LocalModelStore();
  auto files = store->List((root_ / "m").string());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "1/sub/w.bin");
  EXPECT_EQ((*files)[0].size, 5u);
  EXPECT_GT((*files)[0].modified_s, 1'600'000'000);
  EXPECT_FALSE((*files)[0].etag.empty());

  fs::path dest = root_ / "copy";
  ASSERT_TRUE(store->Fetch((root_ / "m").string(), "1/sub/w.bin", dest).ok());
  EXPECT_EQ(*ReadFile(dest), "12345");
}

TEST_F(LocalStoreTest, SymbolicLinksKeepTheirOwnNames) {
  fs::create_directories(root_ / "blobs");
  std::ofstream(root_ / "blobs" / "abc123") << "weights";
  fs::create_directories(root_ / "snapshot" / "1");
  fs::create_symlink(root_ / "blobs" / "abc123", root_ / "snapshot" / "1" / "model.onnx");
  auto files = LocalModelStore()->List((root_ / "snapshot").string());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "1/model.onnx");
  EXPECT_EQ((*files)[0].size, 7u);
}

TEST_F(LocalStoreTest, MissingPathsAndFilesAreClearErrors) {
  auto store = LocalModelStore();
  auto missing = store->List((root_ / "nope").string());
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(missing.status().message(), HasSubstr("dir not found or insufficient permissions"));
  auto file = store->List((root_ / "file").string());
  EXPECT_TRUE(absl::IsFailedPrecondition(file.status()));
  EXPECT_THAT(file.status().message(), HasSubstr("model path must be a directory"));
}

}  // namespace
}  // namespace cortex::models
