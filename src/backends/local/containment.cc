#include "backends/local/containment.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <unistd.h>

#include <algorithm>

#include "common/util.h"

namespace cortex::backends::local {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTracked =
    "replica processes are tracked by parentage (orphans are adopted by the replica front; "
    "compute.mem is checked against the whole process tree every control-loop pass)";

}  // namespace

std::string DescribeContainment(std::string_view self_cgroup, const fs::path& cgroup_root) {
  std::string path;
  for (absl::string_view line : absl::StrSplit(std::string(self_cgroup), '\n')) {
    if (line.substr(0, 3) == "0::") path = std::string(line.substr(3));
  }
  std::string why;
  auto controllers = ReadFile(cgroup_root / "cgroup.controllers");
  if (path.empty() || !controllers.ok()) {
    why = "no cgroup v2 hierarchy";
  } else if (std::vector<std::string> names = absl::StrSplit(*controllers, absl::ByAnyChar(" \n"));
             std::find(names.begin(), names.end(), "memory") == names.end()) {
    why = absl::StrCat("the cgroup v2 hierarchy at ", cgroup_root.string(),
                       " has no memory controller (a cgroup v1 or hybrid machine)");
  } else if (fs::path own = cgroup_root / fs::path(path).relative_path();
             ::access(own.c_str(), W_OK) != 0) {
    why = absl::StrCat("this user's cgroup ", path, " is not delegated to it");
  } else {
    why = absl::StrCat("a memory controller is delegated at ", path,
                       ", but this version does not place replicas in cgroups yet");
  }
  return absl::StrCat(kTracked, "; cgroups: not used (", why, ")");
}

std::string DescribeContainment() {
  std::string self = ReadFile("/proc/self/cgroup").value_or("");
  fs::path root = "/sys/fs/cgroup";
  if (!fs::exists(root / "cgroup.controllers") && fs::exists("/sys/fs/cgroup/unified")) {
    root = "/sys/fs/cgroup/unified";  // hybrid: v1 controllers, v2 beside them
  }
  return DescribeContainment(self, root);
}

}  // namespace cortex::backends::local
