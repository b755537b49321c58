// How the local provider holds a replica's processes, said once at start: by parentage (the
// replica front adopts its orphans; memory is the sum over the process tree), and whether a
// cgroup v2 memory controller is delegated to this user (this version does not use one yet).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace cortex::backends::local {

// `self_cgroup`: the text of /proc/self/cgroup; `cgroup_root`: where cgroup v2 is mounted
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid machine).
std::string DescribeContainment(std::string_view self_cgroup,
                                const std::filesystem::path& cgroup_root);

// The same for this process and machine.
std::string DescribeContainment();

}  // namespace cortex::backends::local
