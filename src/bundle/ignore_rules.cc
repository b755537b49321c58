#include "bundle/ignore_rules.h"

#include <absl/strings/str_split.h>
#include <fnmatch.h>

namespace cortex::bundle {
namespace {

// Glob matching for .cortexignore

bool FnMatch(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), FNM_PATHNAME) == 0;
}

// Matches '/'-separated segments; a "**" segment spans any number of path segments, except that
// a trailing one needs at least one ("dir/**" is what is inside dir, not dir itself).
bool MatchSegments(const std::vector<std::string>& pattern, size_t pi,
                   const std::vector<std::string>& path, size_t si) {
  if (pi == pattern.size()) return si == path.size();
  if (pattern[pi] == "**") {
    if (pi + 1 == pattern.size()) return si < path.size();
    for (size_t k = si; k <= path.size(); ++k) {
      if (MatchSegments(pattern, pi + 1, path, k)) return true;
    }
    return false;
  }
  if (si == path.size() || !FnMatch(pattern[pi], path[si])) return false;
  return MatchSegments(pattern, pi + 1, path, si + 1);
}

std::vector<std::string> SplitPath(const std::string& path) {
  return absl::StrSplit(path, '/', absl::SkipEmpty());
}

}  // namespace

IgnoreRules IgnoreRules::Parse(const std::string& text) {
  IgnoreRules rules;
  for (absl::string_view line_view : absl::StrSplit(text, '\n')) {
    std::string line(line_view);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing spaces are dropped unless escaped with a backslash.
    while (!line.empty() && line.back() == ' ' &&
           !(line.size() >= 2 && line[line.size() - 2] == '\\')) {
      line.pop_back();
    }
    if (line.empty() || line.front() == '#') continue;
    Rule rule;
    if (line.front() == '!') {
      rule.negate = true;
      line.erase(0, 1);
    } else if (line.starts_with("\\!") || line.starts_with("\\#")) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      rule.dir_only = true;
      while (!line.empty() && line.back() == '/') line.pop_back();
    }
    if (line.find('/') != std::string::npos) {
      rule.anchored = true;
      while (!line.empty() && line.front() == '/') line.erase(0, 1);
    }
    if (line.empty()) continue;
    rule.pattern = std::move(line);
    rules.rules_.push_back(std::move(rule));
  }
  return rules;
}

bool IgnoreRules::Ignored(const std::string& path, bool is_dir) const {
  if (rules_.empty()) return false;
  std::vector<std::string> segments = SplitPath(path);
  // A path inside an ignored directory is ignored whatever later rules say, as in git.
  for (size_t depth = 1; depth <= segments.size(); ++depth) {
    std::vector<std::string> prefix(segments.begin(), segments.begin() + depth);
    bool prefix_is_dir = depth < segments.size() || is_dir;
    bool ignored = false;
    for (const Rule& rule : rules_) {
      if (rule.dir_only && !prefix_is_dir) continue;
      bool matches = rule.anchored ? MatchSegments(SplitPath(rule.pattern), 0, prefix, 0)
                                   : FnMatch(rule.pattern, prefix.back());
      if (matches) ignored = !rule.negate;
    }
    if (ignored) return true;
  }
  return false;
}

// -----------------------------------------------------------------------------------------------
// Public functions

}  // namespace cortex::bundle
