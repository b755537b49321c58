#include "cli/debug_bundle.h"

#include <absl/strings/str_cat.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <system_error>
#include <vector>

#include "bundle/bundle.h"
#include "common/util.h"

namespace cortex::cli {

namespace fs = std::filesystem;

absl::StatusOr<fs::path> WriteDebugBundle(const fs::path& cluster_dir,
                                          const DebugContents& contents, const fs::path& out_dir) {
  std::string stamp = absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone());
  // The archive is built from a staging directory: the generated files next to copies of the
  // chosen ones (logs keep growing while they are read; a copy is one consistent snapshot).
  std::error_code ec;
  fs::path staging =
      fs::temp_directory_path() / absl::StrCat("cortex-debug-", stamp, "-", RandomId(6));
  fs::create_directories(staging, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("creating ", staging.string(), ": ", ec.message()));
  auto cleanup = [&] { fs::remove_all(staging, ec); };

  std::vector<std::pair<std::string, std::string>> generated = {
      {"cluster-info.json", contents.cluster_info.dump(2) + "\n"}};
  if (contents.apis.is_null()) {
    generated.push_back({"apis-error.txt", contents.apis_error + "\n"});
  } else {
    generated.push_back({"apis.json", contents.apis.dump(2) + "\n"});
  }
  for (const auto& [name, text] : generated) {
    if (absl::Status st = WriteFileAtomic(staging / name, text); !st.ok()) {
      cleanup();
      return st;
    }
  }
  for (const char* name : {"cluster.json", "supervisor.json", "cluster-config.json"}) {
    if (fs::is_regular_file(cluster_dir / name, ec)) {
      fs::copy_file(cluster_dir / name, staging / name, ec);
    }
  }
  if (fs::is_directory(cluster_dir / "logs", ec)) {
    fs::copy(cluster_dir / "logs", staging / "logs", fs::copy_options::recursive, ec);
    if (ec) {
      cleanup();
      return absl::InternalError(absl::StrCat("copying the logs: ", ec.message()));
    }
  }
  absl::StatusOr<std::vector<bundle::BundleFile>> files = bundle::ListProjectFiles(staging, "");
  absl::StatusOr<std::string> archive =
      files.ok() ? bundle::CreateBundle(staging, *files) : files.status();
  cleanup();
  if (!archive.ok()) return archive.status();
  fs::path path = out_dir / absl::StrCat("cortex-debug-", stamp, ".tar");
  if (absl::Status st = WriteFileAtomic(path, *archive); !st.ok()) return st;
  return path;
}

}  // namespace cortex::cli
