#include "models/model_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cortex::models {
namespace {

using ::testing::HasSubstr;

std::vector<ModelFile> Files(std::vector<std::pair<std::string, int64_t>> paths) {
  std::vector<ModelFile> files;
  for (auto& [path, modified] : paths) files.push_back({path, 10, modified, path});
  return files;
}

TEST(ReadModelTree, FilesAtTheTopAreVersionOne) {
  auto tree = ReadModelTree("m", "/models/m", "python",
                            Files({{"model.pkl", 5}, {"tokenizer/vocab.txt", 7}}));
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->versions.size(), 1u);
  EXPECT_EQ(tree->versions[0].version, 1);
  EXPECT_EQ(tree->versions[0].dir, "");
  EXPECT_EQ(tree->versions[0].files.size(), 2u);
  EXPECT_EQ(tree->versions[0].timestamp, 7);
}

TEST(ReadModelTree, IntegerDirectoriesAreVersionsInOrder) {
  auto tree = ReadModelTree("m", "s3://b/m", "onnx",
                            Files({{"10/model.onnx", 3}, {"2/model.onnx", 9}, {"2/labels", 1}}));
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->versions.size(), 2u);
  EXPECT_EQ(tree->versions[0].version, 2);
  EXPECT_EQ(tree->versions[0].timestamp, 9);
  EXPECT_EQ(tree->versions[0].files.size(), 2u);
  EXPECT_EQ(tree->versions[1].version, 10);
  EXPECT_EQ(tree->versions[1].dir, "10");
}

TEST(ReadModelTree, MixingVersionsAndFilesIsRefusedShowingTheStructure) {
  auto tree = ReadModelTree("m", "/models/m", "python", Files({{"1/a.pkl", 1}, {"b.pkl", 1}}));
  ASSERT_FALSE(tree.ok());
  EXPECT_THAT(tree.status().message(), HasSubstr("/models/m: invalid Python model path"));
  EXPECT_THAT(tree.status().message(), HasSubstr("mixed"));
  EXPECT_THAT(tree.status().message(), HasSubstr("but its current structure is"));
  EXPECT_THAT(tree.status().message(), HasSubstr("  1/a.pkl\n  b.pkl\n"));
}

TEST(ReadModelTree, AnEmptyDirectoryIsRefused) {
  auto tree = ReadModelTree("m", "/models/m", "python", {});
  ASSERT_FALSE(tree.ok());
  EXPECT_THAT(tree.status().message(), HasSubstr("but its current directory is empty"));
}

TEST(ReadModelTree, OnnxNeedsExactlyOneOnnxFilePerVersion) {
  auto none = ReadModelTree("m", "/m", "onnx", Files({{"1/model.bin", 1}}));
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("/m: invalid ONNX model path"));
  EXPECT_THAT(none.status().message(), HasSubstr("version 1 has 0 *.onnx files"));
  auto two = ReadModelTree("m", "/m", "onnx", Files({{"a.onnx", 1}, {"b.onnx", 1}}));
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.status().message(), HasSubstr("has 2 *.onnx files; exactly one is needed"));
  EXPECT_TRUE(ReadModelTree("m", "/m", "python", Files({{"a.onnx", 1}, {"b.onnx", 1}})).ok());
}

TEST(ReadModelTree, TwoSpellingsOfOneVersionAreRefused) {
  auto tree = ReadModelTree("m", "/m", "python", Files({{"1/a", 1}, {"01/a", 1}}));
  ASSERT_FALSE(tree.ok());
  EXPECT_THAT(tree.status().message(), HasSubstr("two directories name version 1"));
}

TEST(ReadModelTree, AnIntegerFileIsNotAVersion) {
  auto tree = ReadModelTree("m", "/m", "python", Files({{"1", 1}, {"2", 1}}));
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->versions.size(), 1u);
  EXPECT_EQ(tree->versions[0].files.size(), 2u);
}

TEST(ReadModelTree, ShowsAtMostFiftyPaths) {
  std::vector<std::pair<std::string, int64_t>> paths;
  for (int i = 0; i < 60; ++i) paths.push_back({"1/f" + std::to_string(100 + i), 1});
  paths.push_back({"extra", 1});
  auto tree = ReadModelTree("m", "/m", "python", Files(paths));
  ASSERT_FALSE(tree.ok());
  EXPECT_THAT(tree.status().message(), HasSubstr("  1/f149\n  ...\n"));
  EXPECT_THAT(tree.status().message(), ::testing::Not(HasSubstr("1/f150")));
}

TEST(ModelNamesInDir, FirstLevelDirectoriesOnly) {
  EXPECT_EQ(ModelNamesInDir(Files({{"b/1/x", 1}, {"a/y", 1}, {"README", 1}, {"a/z", 1}})),
            (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace cortex::models
