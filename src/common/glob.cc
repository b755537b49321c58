#include "common/glob.h"

#include <cstdint>
#include <unordered_set>

namespace cortex {
namespace {

// Backtracking matcher over byte positions. Each (pattern position, path position) that failed
// once is remembered, so that patterns like "**a**a**a**c" (user input in job submissions) take
// at most |pattern| x |path| steps per star instead of a number exponential in the stars.
class Matcher {
 public:
  Matcher(const std::string& p, const std::string& s) : p_(p), s_(s) {}
  // Only the positions after a star are ever entered here: at most (stars + 1) x (|path| + 1)
  // states are remembered.
  bool Match(size_t pi, size_t si) {
    uint64_t state = (static_cast<uint64_t>(pi) << 32) | si;
    if (failed_.count(state) > 0) return false;
    bool matched = Walk(pi, si);
    if (!matched) failed_.insert(state);
    return matched;
  }

 private:
  bool Walk(size_t pi, size_t si);
  const std::string& p_;
  const std::string& s_;
  std::unordered_set<uint64_t> failed_;
};

bool Matcher::Walk(size_t pi, size_t si) {
  const std::string& p = p_;
  const std::string& s = s_;
  while (pi < p.size()) {
    char c = p[pi];
    if (c == '*') {
      bool cross = pi + 1 < p.size() && p[pi + 1] == '*';
      size_t next = pi + (cross ? 2 : 1);
      for (size_t k = si; k <= s.size(); ++k) {
        if (Match(next, k)) return true;
        if (k < s.size() && s[k] == '/' && !cross) return false;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
    } else if (c == '[') {
      size_t end = p.find(']', pi + 2);
      if (end == std::string::npos) {  // not a class: a literal '['
        if (s[si] != '[') return false;
      } else {
        bool negate = p[pi + 1] == '!' || p[pi + 1] == '^';
        bool found = false;
        for (size_t k = pi + 1 + (negate ? 1 : 0); k < end; ++k) {
          if (k + 2 < end && p[k + 1] == '-') {
            found = found || (s[si] >= p[k] && s[si] <= p[k + 2]);
            k += 2;
          } else {
            found = found || s[si] == p[k];
          }
        }
        if (found == negate || s[si] == '/') return false;
        pi = end;
      }
    } else if (c == '\\' && pi + 1 < p.size()) {
      if (s[si] != p[++pi]) return false;
    } else if (c != s[si]) {
      return false;
    }
    ++pi;
    ++si;
  }
  return si == s.size();
}

}  // namespace

bool GlobMatch(const std::string& pattern, const std::string& path) {
  return Matcher(pattern, path).Match(0, 0);
}

}  // namespace cortex
