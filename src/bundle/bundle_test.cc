#include "bundle/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <clocale>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace cortex::bundle {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "bundle_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    root_ = tmp_ / "project";
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(tmp_); }

  void Write(const std::string& rel, const std::string& content, bool executable = false) {
    fs::path path = root_ / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    fs::permissions(path, executable ? fs::perms(0755) : fs::perms(0644));
  }

  std::vector<std::string> ListedPaths(const std::string& config_file = "cortex.yaml") {
    absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles(root_, config_file);
    EXPECT_TRUE(files.ok()) << files.status();
    std::vector<std::string> paths;
    if (files.ok()) {
      for (const BundleFile& file : *files) paths.push_back(file.path);
    }
    return paths;
  }

  std::string Bundle(const BundleLimits& limits = {}) {
    absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles(root_, "cortex.yaml");
    EXPECT_TRUE(files.ok()) << files.status();
    absl::StatusOr<std::string> archive = CreateBundle(root_, *files, limits);
    EXPECT_TRUE(archive.ok()) << archive.status();
    return archive.ok() ? *archive : std::string();
  }

  fs::path tmp_;
  fs::path root_;
};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Everything under `dir` (files only) with its contents, keyed by relative path.
std::map<std::string, std::string> Tree(const fs::path& dir) {
  std::map<std::string, std::string> tree;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      tree[entry.path().lexically_relative(dir).generic_string()] = ReadAll(entry.path());
    }
  }
  return tree;
}

bool IsExecutable(const fs::path& path) {
  return (fs::status(path).permissions() & fs::perms::owner_exec) != fs::perms::none;
}

struct CraftedEntry {
  std::string path;
  mode_t type;
  std::string content;
  std::string link;  // symlink target, or hardlink target when type is 0
};

CraftedEntry File(std::string path, std::string content) {
  return {std::move(path), AE_IFREG, std::move(content), ""};
}
CraftedEntry Dir(std::string path) { return {std::move(path), AE_IFDIR, "", ""}; }
CraftedEntry Symlink(std::string path, std::string target) {
  return {std::move(path), AE_IFLNK, "", std::move(target)};
}
CraftedEntry Hardlink(std::string path, std::string target) {
  return {std::move(path), 0, "", std::move(target)};
}
CraftedEntry Fifo(std::string path) { return {std::move(path), AE_IFIFO, "", ""}; }

// Builds a tar archive that CreateBundle would never produce.
std::string CraftArchive(const std::vector<CraftedEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const CraftedEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    if (e.type == 0) {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.link.c_str());
      archive_entry_set_size(entry, 0);
    } else {
      archive_entry_set_filetype(entry, e.type);
      if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.link.c_str());
      archive_entry_set_size(entry, e.type == AE_IFREG ? e.content.size() : 0);
    }
    archive_entry_set_perm(entry, 0644);
    EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
    if (!e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// ---------------------------------------------------------------------------------------------
// ListProjectFiles

TEST_F(BundleTest, ListingSkipsHiddenGeneratedAndDebugFilesButKeepsRootEnv) {
  Write("cortex.yaml", "- name: a\n");
  Write("predictor.py", "x");
  Write("requirements.txt", "numpy\n");
  Write("sub/keep.txt", "k");
  Write(".env", "A=1\n");
  Write("sub/.env", "B=2\n");
  Write(".hidden", "h");
  Write(".git/config", "g");
  Write("sub/.cache/data", "c");
  Write("__pycache__/predictor.cpython-39.pyc", "p");
  Write("sub/__pycache__/m.pyc", "p");
  Write("sub/mod.pyc", "p");
  Write("a.pyo", "p");
  Write("b.pyd", "p");
  Write("cortex-debug-1234.tgz", "d");
  Write("cortex-debug-dir/file", "d");
  Write("sub/cortex-debug-x", "d");

  absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles(root_, "cortex.yaml");
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> paths;
  for (const BundleFile& file : *files) paths.push_back(file.path);
  EXPECT_THAT(paths, ElementsAre(".env", "predictor.py", "requirements.txt", "sub/keep.txt"));
  EXPECT_EQ((*files)[0].size, 4u);
  EXPECT_EQ((*files)[2].size, 6u);
}

TEST_F(BundleTest, OnlyTheConfigFileItselfIsExcluded) {
  Write("cortex.yaml", "a");
  Write("other.yaml", "b");
  Write("apis/api.yaml", "c");
  EXPECT_THAT(ListedPaths("cortex.yaml"), ElementsAre("apis/api.yaml", "other.yaml"));
  EXPECT_THAT(ListedPaths("./apis/api.yaml"), ElementsAre("cortex.yaml", "other.yaml"));
  EXPECT_THAT(ListedPaths((root_ / "other.yaml").string()),
              ElementsAre("apis/api.yaml", "cortex.yaml"));
  EXPECT_THAT(ListedPaths(""), ElementsAre("apis/api.yaml", "cortex.yaml", "other.yaml"));
}

TEST_F(BundleTest, ListingAppliesCortexIgnore) {
  Write(".cortexignore",
        "# build output\n"
        "\n"
        "*.log\n"
        "!keep.log\n"
        "build/\n"
        "/top.txt\n"
        "data/**/*.bin\n"
        "models/**\n"
        "!models/README.md\n");
  Write("a.log", "x");
  Write("sub/b.log", "x");
  Write("sub/keep.log", "x");
  Write("build/out.o", "x");
  Write("sub/build/out.o", "x");
  Write("top.txt", "x");
  Write("sub/top.txt", "x");
  Write("data/x.bin", "x");
  Write("data/a/b/y.bin", "x");
  Write("data/y.txt", "x");
  Write("models/w.pt", "x");
  Write("models/v1/w.pt", "x");
  Write("models/README.md", "x");
  EXPECT_THAT(ListedPaths(),
              ElementsAre("data/y.txt", "models/README.md", "sub/keep.log", "sub/top.txt"));
}

TEST_F(BundleTest, SymlinkedFilesAreBundledAndSymlinkedDirectoriesAreNot) {
  Write("real.txt", "r");
  Write("../outside/secret.txt", "s");
  fs::create_symlink(root_ / "real.txt", root_ / "alias.txt");
  fs::create_directory_symlink(tmp_ / "outside", root_ / "outside");
  fs::create_symlink(root_ / "missing", root_ / "dangling");
  EXPECT_THAT(ListedPaths(), ElementsAre("alias.txt", "real.txt"));
}

TEST_F(BundleTest, RefusesToDeployFromTheFilesystemRoot) {
  absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles("/", "cortex.yaml");
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(files.status().message(), HasSubstr("cannot deploy from the root directory"));
}

TEST_F(BundleTest, RefusesToDeployFromTheHomeDirectory) {
  const char* old_home = std::getenv("HOME");
  std::optional<std::string> saved = old_home ? std::optional<std::string>(old_home) : std::nullopt;
  // A non-canonical spelling of $HOME must still be recognised.
  ::setenv("HOME", (root_ / "sub" / "..").c_str(), 1);
  fs::create_directories(root_ / "sub");
  absl::StatusOr<std::vector<BundleFile>> home = ListProjectFiles(root_, "cortex.yaml");
  absl::StatusOr<std::vector<BundleFile>> below = ListProjectFiles(root_ / "sub", "cortex.yaml");
  if (saved) {
    ::setenv("HOME", saved->c_str(), 1);
  } else {
    ::unsetenv("HOME");
  }
  ASSERT_FALSE(home.ok());
  EXPECT_EQ(home.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(home.status().message(), HasSubstr("cannot deploy from your home directory"));
  EXPECT_THAT(home.status().message(), HasSubstr("please deploy from a project directory"));
  EXPECT_TRUE(below.ok()) << below.status();
}

TEST_F(BundleTest, MissingProjectDirectoryIsAnError) {
  absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles(root_ / "nope", "");
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// IgnoreRules

struct IgnoreCase {
  std::string rules;
  std::string path;
  bool is_dir;
  bool ignored;
};

TEST(IgnoreRules, FollowsGitignoreSemantics) {
  const IgnoreCase cases[] = {
      // Unanchored patterns match the name at any depth.
      {"*.log", "a.log", false, true},
      {"*.log", "x/y/a.log", false, true},
      {"*.log", "a.log.txt", false, false},
      {"foo", "x/foo", true, true},
      {"file?.txt", "file1.txt", false, true},
      {"file?.txt", "file10.txt", false, false},
      {"[ab].txt", "b.txt", false, true},
      {"[ab].txt", "c.txt", false, false},
      // Comments, blank lines, escapes and trailing spaces.
      {"# a.log\n\n", "# a.log", false, false},
      {"\\#a", "#a", false, true},
      {"\\!a", "!a", false, true},
      {"a.log   \r\n", "a.log", false, true},
      // Negation: the last matching rule wins.
      {"*.log\n!keep.log", "keep.log", false, false},
      {"*.log\n!keep.log", "x/keep.log", false, false},
      {"*.log\n!keep.log", "other.log", false, true},
      {"!keep.log\n*.log", "keep.log", false, true},
      // Directory-only patterns.
      {"build/", "build", true, true},
      {"build/", "build", false, false},
      {"build/", "x/build/y.o", false, true},
      // A file inside an ignored directory cannot be re-included.
      {"build/\n!build/keep", "build/keep", false, true},
      // Anchored patterns (a slash at the start or middle).
      {"/top.txt", "top.txt", false, true},
      {"/top.txt", "x/top.txt", false, false},
      {"docs/*.md", "docs/a.md", false, true},
      {"docs/*.md", "x/docs/a.md", false, false},
      {"docs/*.md", "docs/sub/a.md", false, false},
      {"docs/", "x/docs", true, true},
      // "**" forms.
      {"**/foo", "foo", false, true},
      {"**/foo", "a/b/foo", false, true},
      {"**/foo/bar", "a/foo/bar", false, true},
      {"abc/**", "abc", true, false},
      {"abc/**", "abc/x", false, true},
      {"abc/**", "abc/x/y", false, true},
      {"abc/**\n!abc/keep", "abc/keep", false, false},
      {"a/**/b", "a/b", false, true},
      {"a/**/b", "a/x/b", false, true},
      {"a/**/b", "a/x/y/b", false, true},
      {"a/**/b", "a/xb", false, false},
      {"a/**/*.bin", "a/1/2/w.bin", false, true},
  };
  for (const IgnoreCase& c : cases) {
    EXPECT_EQ(IgnoreRules::Parse(c.rules).Ignored(c.path, c.is_dir), c.ignored)
        << "rules=\"" << c.rules << "\" path=" << c.path << " is_dir=" << c.is_dir;
  }
}

// ---------------------------------------------------------------------------------------------
// CreateBundle / ExtractBundle

TEST_F(BundleTest, SameFilesGiveTheSameBytes) {
  Write("cortex.yaml", "- name: a\n");
  Write("predictor.py", "print('hi')\n");
  Write("run.sh", "#!/bin/sh\n", /*executable=*/true);
  Write("nested/dir/data.bin", std::string("\0\1\2\3", 4));
  std::string first = Bundle();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(Bundle(), first);

  for (const char* rel : {"predictor.py", "run.sh", "nested/dir/data.bin"}) {
    fs::last_write_time(root_ / rel, fs::file_time_type::clock::now() - std::chrono::hours(24));
  }
  EXPECT_EQ(Bundle(), first);

  // The order of the list does not matter either.
  absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles(root_, "cortex.yaml");
  ASSERT_TRUE(files.ok());
  std::vector<BundleFile> reversed(files->rbegin(), files->rend());
  absl::StatusOr<std::string> again = CreateBundle(root_, reversed);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, first);

  // A content change is a different bundle.
  Write("predictor.py", "print('bye')\n");
  EXPECT_NE(Bundle(), first);
}

TEST_F(BundleTest, RoundTripKeepsContentsAndExecutableBits) {
  std::string long_dir(120, 'd');   // fits ustar's prefix field
  std::string long_name(130, 'f');  // needs a pax extended header
  Write("predictor.py", "print('hi')\n");
  Write("dependencies.sh", "apt-get install -y x\n", /*executable=*/true);
  Write("nested/dir/data.bin", std::string("\0\1\2\3\xff", 5));
  Write("empty.txt", "");
  Write(".env", "A=1\n");
  Write(long_dir + "/file.txt", "long");
  Write(long_name + ".txt", "longer");
  Write("h\xc3\xa9llo-\xff.txt", "non-ascii");
  std::string archive = Bundle();
  EXPECT_EQ(Bundle(), archive);

  fs::path destination = tmp_ / "out" / "deep" / "project";
  absl::Status status = ExtractBundle(archive, destination);
  ASSERT_TRUE(status.ok()) << status;
  std::map<std::string, std::string> expected = Tree(root_);
  EXPECT_EQ(Tree(destination), expected);
  EXPECT_TRUE(IsExecutable(destination / "dependencies.sh"));
  EXPECT_FALSE(IsExecutable(destination / "predictor.py"));
  EXPECT_FALSE(IsExecutable(destination / "nested/dir/data.bin"));
  // No staging directory is left behind.
  EXPECT_THAT(Tree(tmp_ / "out" / "deep"), ::testing::SizeIs(expected.size()));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp_ / "out" / "deep")) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(BundleTest, BytesDoNotDependOnTheLocale) {
  Write("h\xc3\xa9llo.txt", "utf-8 name");
  Write("raw-\xff.txt", "not utf-8");
  std::string in_c = Bundle();
  const char* previous = std::setlocale(LC_ALL, nullptr);
  std::string saved = previous ? previous : "C";
  if (std::setlocale(LC_ALL, "C.UTF-8") == nullptr) GTEST_SKIP() << "no C.UTF-8 locale";
  std::string in_utf8 = Bundle();
  fs::path destination = tmp_ / "out";
  absl::Status status = ExtractBundle(in_c, destination);
  std::setlocale(LC_ALL, saved.c_str());
  EXPECT_EQ(in_utf8, in_c);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Tree(destination), Tree(root_));
}

TEST_F(BundleTest, ProjectsWithMoreFilesThanTheOpenFileLimitRoundTrip) {
  for (int i = 0; i < 2000; ++i) Write("files/" + std::to_string(i) + ".txt", std::to_string(i));
  fs::path destination = tmp_ / "out";
  absl::Status status = ExtractBundle(Bundle(), destination);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Tree(destination), Tree(root_));
}

TEST_F(BundleTest, EmptyProjectRoundTrips) {
  absl::StatusOr<std::string> archive = CreateBundle(root_, {});
  ASSERT_TRUE(archive.ok()) << archive.status();
  fs::path destination = tmp_ / "out";
  ASSERT_TRUE(ExtractBundle(*archive, destination).ok());
  EXPECT_TRUE(fs::is_directory(destination));
  EXPECT_THAT(Tree(destination), IsEmpty());
}

TEST_F(BundleTest, ExtractsIntoAnEmptyDirectoryButNotANonEmptyOne) {
  Write("a.txt", "a");
  std::string archive = Bundle();
  fs::path empty = tmp_ / "empty";
  fs::create_directories(empty);
  ASSERT_TRUE(ExtractBundle(archive, empty).ok());
  EXPECT_EQ(ReadAll(empty / "a.txt"), "a");

  absl::Status status = ExtractBundle(archive, empty);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not empty"));

  std::ofstream(tmp_ / "file") << "x";
  EXPECT_EQ(ExtractBundle(archive, tmp_ / "file").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(BundleTest, ExtractionRefusesUnsafeEntries) {
  struct Case {
    std::vector<CraftedEntry> entries;
    std::string message;
  };
  const Case cases[] = {
      {{File("ok.txt", "ok"), File("../escape.txt", "x")}, "\"..\""},
      {{File("a/../../escape.txt", "x")}, "\"..\""},
      {{File("/tmp/escape.txt", "x")}, "absolute"},
      {{Symlink("link", "/etc/passwd")}, "links"},
      {{File("ok.txt", "ok"), Hardlink("hard", "ok.txt")}, "links"},
      {{Fifo("fifo")}, "only regular files"},
      {{File("dup.txt", "1"), File("dup.txt", "2")}, "duplicate"},
      {{File("a", "1"), File("a/b", "2")}, "conflicts"},
      {{File("a", "1"), Dir("a")}, "conflicts"},
  };
  for (const Case& c : cases) {
    fs::path destination = tmp_ / "out" / "project";
    absl::Status status = ExtractBundle(CraftArchive(c.entries), destination);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.entries.back().path;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
    EXPECT_FALSE(fs::exists(destination));
    EXPECT_FALSE(fs::exists(tmp_ / "escape.txt"));
    EXPECT_FALSE(fs::exists(tmp_ / "out" / "escape.txt"));
    EXPECT_THAT(Tree(tmp_ / "out"), IsEmpty()) << "staging directory left behind";
  }
}

TEST_F(BundleTest, ExtractionAcceptsDirectoryEntriesAndDotSlashPaths) {
  std::string archive =
      CraftArchive({Dir("./"), Dir("./dir"), File("./dir/a.txt", "a"), File("b/c.txt", "c")});
  fs::path destination = tmp_ / "out";
  absl::Status status = ExtractBundle(archive, destination);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Tree(destination),
            (std::map<std::string, std::string>{{"dir/a.txt", "a"}, {"b/c.txt", "c"}}));
}

TEST_F(BundleTest, ExtractionRejectsGarbage) {
  absl::Status status = ExtractBundle(std::string(2000, 'x'), tmp_ / "out");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(BundleTest, CreateBundleEnforcesLimits) {
  Write("small.txt", "123456");
  Write("big.bin", "12345678901");
  absl::StatusOr<std::vector<BundleFile>> files = ListProjectFiles(root_, "");
  ASSERT_TRUE(files.ok());

  absl::StatusOr<std::string> archive =
      CreateBundle(root_, *files, {.max_file_bytes = 10, .max_project_bytes = 100});
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(archive.status().message(),
            "big.bin: file is 11 bytes, which exceeds the limit of 10 bytes");

  archive = CreateBundle(root_, *files, {.max_file_bytes = 100, .max_project_bytes = 16});
  EXPECT_EQ(archive.status().message(), "project is 17 bytes, which exceeds the limit of 16 bytes");

  EXPECT_TRUE(CreateBundle(root_, *files, {.max_file_bytes = 11, .max_project_bytes = 17}).ok());
}

TEST_F(BundleTest, ExtractBundleEnforcesLimits) {
  Write("small.txt", "123456");
  Write("big.bin", "12345678901");
  std::string archive = Bundle();

  absl::Status status =
      ExtractBundle(archive, tmp_ / "out1", {.max_file_bytes = 10, .max_project_bytes = 100});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "big.bin: file is 11 bytes, which exceeds the limit of 10 bytes");
  EXPECT_FALSE(fs::exists(tmp_ / "out1"));

  status = ExtractBundle(archive, tmp_ / "out2", {.max_file_bytes = 100, .max_project_bytes = 16});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "project is at least 17 bytes, which exceeds the limit of 16 bytes");
  EXPECT_FALSE(fs::exists(tmp_ / "out2"));
}

TEST_F(BundleTest, CreateBundleRejectsPathsOutsideTheRoot) {
  Write("../outside.txt", "x");
  absl::StatusOr<std::string> archive = CreateBundle(root_, {{"../outside.txt", 1}});
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kInvalidArgument);
  archive = CreateBundle(root_, {{"missing.txt", 1}});
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(archive.status().message(), HasSubstr("missing.txt"));
}

}  // namespace
}  // namespace cortex::bundle
