// Parsing JSON that came from the network: never throws, and refuses documents nested deeper
// than a limit before parsing them (serialising or copying a value 100,000 levels deep recurses
// that deep and overflows the stack).
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>
#include <string_view>

namespace cortex {

// The default limit on nesting of arrays and objects in JSON from the network.
inline constexpr int kMaxJsonDepth = 128;

// The deepest nesting of arrays and objects in `text` (brackets inside strings do not count).
// One pass, no recursion; meaningful for valid JSON, an upper bound for the rest.
int JsonNestingDepth(std::string_view text);

// `what` names the document in errors ("the job submission").
absl::StatusOr<nlohmann::json> ParseNetworkJson(std::string_view text, std::string_view what,
                                                int max_depth = kMaxJsonDepth);

}  // namespace cortex
