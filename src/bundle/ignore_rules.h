// .cortexignore rules: gitignore syntax (comments, negation, directory-only and anchored
// patterns, "**"). Immutable after Parse(); thread-safe.
#pragma once

#include <string>
#include <vector>

namespace cortex::bundle {

// gitignore-style matcher used for .cortexignore (exposed for tests).
class IgnoreRules {
 public:
  static IgnoreRules Parse(const std::string& text);
  // `path` is relative to the root, '/'-separated; `is_dir` for directories.
  bool Ignored(const std::string& path, bool is_dir) const;

 private:
  struct Rule {
    std::string pattern;
    bool negate = false;
    bool dir_only = false;
    bool anchored = false;  // contains a '/' other than a trailing one
  };
  std::vector<Rule> rules_;
};

}  // namespace cortex::bundle
