// Fuzzes project bundle extraction (ExtractBundle, src/bundle/bundle.h): the bytes are a bundle
// as the operator receives it from `cortex deploy`.
//
// Each input is extracted into a fresh destination two levels below a private directory
// (<root>/a/b/project), so that an entry escaping by a ".." or two, or a staging directory left
// behind, shows up inside <root>. Checked afterwards: <root> holds nothing but that path; the
// destination holds only regular files and directories (no links); a failed extraction leaves
// the destination absent or empty. The destination is removed before the next input.

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

#include "bundle/bundle.h"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(std::string_view what, const fs::path& path) {
  std::cerr << what << ": " << path.string() << std::endl;
  std::abort();
}

const fs::path& Root() {
  static const fs::path* root = [] {
    std::string pattern = (fs::temp_directory_path() / "cortex-bundle-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(Root(), ec);
    });
    return new fs::path(pattern);
  }();
  return *root;
}

// Everything under <root> must be <root>/a, <root>/a/b, or inside `destination`.
void CheckNothingOutside(const fs::path& destination, bool extracted) {
  const fs::path& root = Root();
  const fs::path a = root / "a", b = a / "b";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    if (path == a || path == b) continue;
    if (path != destination) Fail("written outside the destination", path);
    if (!extracted && !fs::is_empty(path, ec)) Fail("failed extraction left files", path);
    if (!fs::is_directory(fs::symlink_status(path, ec))) Fail("destination not a dir", path);
    it.disable_recursion_pending();
  }
  if (ec) Fail(ec.message(), root);
  if (!extracted) return;
  for (auto it = fs::recursive_directory_iterator(destination, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fs::file_status status = it->symlink_status(ec);
    if (!fs::is_regular_file(status) && !fs::is_directory(status)) {
      Fail("extracted something that is neither a file nor a directory", it->path());
    }
  }
  if (ec) Fail(ec.message(), destination);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::error_code ec;
  fs::create_directories(Root() / "a" / "b", ec);
  if (ec) Fail(ec.message(), Root());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path destination = Root() / "a" / "b" / "project";
  // Small limits keep each input cheap; the limit checks themselves are exercised.
  cortex::bundle::BundleLimits limits;
  limits.max_file_bytes = 256 * 1024;
  limits.max_project_bytes = 1024 * 1024;
  std::string archive(reinterpret_cast<const char*>(data), size);
  absl::Status status = cortex::bundle::ExtractBundle(archive, destination, limits);
  CheckNothingOutside(destination, status.ok());
  std::error_code ec;
  fs::remove_all(destination, ec);
  if (ec) Fail(ec.message(), destination);
  return 0;
}
