#include "operator/dashboard.h"

namespace cortex::op {

const EmbeddedFile* FindDashboardFile(std::string_view name) {
  if (name.empty()) name = "index.html";
  for (const EmbeddedFile& file : EmbeddedFiles()) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

}  // namespace cortex::op
