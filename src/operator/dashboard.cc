#include "operator/dashboard.h"

namespace cortex::op {

const EmbeddedFile* FindDashboardFile(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kPrefix = "/dashboard";
  if (!path.starts_with(kPrefix)) return nullptr;
  std::string_view name = path.substr(kPrefix.size());
  if (name.empty() || name == "/") {
    name = "index.html";
  } else if (name.front() == '/') {
    name.remove_prefix(1);
  } else {
    return nullptr;  // "/dashboardx"
  }
  for (const EmbeddedFile& file : EmbeddedFiles()) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

}  // namespace cortex::op
