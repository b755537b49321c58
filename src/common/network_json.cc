#include "common/network_json.h"

#include <absl/strings/str_cat.h>

#include <algorithm>

namespace cortex {

int JsonNestingDepth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

absl::StatusOr<nlohmann::json> ParseNetworkJson(std::string_view text, std::string_view what,
                                                int max_depth) {
  if (JsonNestingDepth(text) > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " is nested more than ", max_depth, " levels deep"));
  }
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), " is not valid JSON"));
  }
  return value;
}

}  // namespace cortex
