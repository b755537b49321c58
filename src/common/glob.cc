#include "common/glob.h"

namespace cortex {
namespace {

// Backtracking matcher over byte positions; patterns and paths are short.
bool Match(const std::string& p, size_t pi, const std::string& s, size_t si) {
  while (pi < p.size()) {
    char c = p[pi];
    if (c == '*') {
      bool cross = pi + 1 < p.size() && p[pi + 1] == '*';
      size_t next = pi + (cross ? 2 : 1);
      for (size_t k = si; k <= s.size(); ++k) {
        if (Match(p, next, s, k)) return true;
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
  return Match(pattern, 0, path, 0);
}

}  // namespace cortex
