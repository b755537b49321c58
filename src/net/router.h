// A request router keyed by method and path segments.
//
// Patterns are literal segments and `{name}` captures: "/v1/apis/{api}/jobs/{job}". A capture
// matches exactly one non-empty segment, so "/v1/apis/jobs" is the API called "jobs", never a
// job route. Literal segments beat captures at the same position; a path that matches only
// under another method reports which methods it allows (for 405). No Beast here: the table is
// unit-tested on its own. Immutable after set-up; thread-compatible.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cortex::net {

using PathParams = std::map<std::string, std::string, std::less<>>;

// The segments of a path without its query: "/v1/apis/x/" -> {"v1", "apis", "x"}. Empty
// segments in the middle ("a//b") are kept, so that they never match a capture.
std::vector<std::string_view> PathSegments(std::string_view path);

template <typename Handler>
class Router {
 public:
  struct Match {
    const Handler* handler = nullptr;  // null: no route for this method and path
    PathParams params;                 // the captures, by name
    std::vector<std::string> allowed;  // when only other methods match: those methods
  };

  Router& Add(std::string method, std::string_view pattern, Handler handler) {
    Route route{std::move(method), {}, std::move(handler)};
    for (std::string_view segment : PathSegments(pattern)) route.segments.emplace_back(segment);
    routes_.push_back(std::move(route));
    return *this;
  }

  Match Find(std::string_view method, std::string_view path) const {
    Match best;
    int best_score = -1;
    std::vector<std::string_view> segments = PathSegments(path.substr(0, path.find('?')));
    for (const Route& route : routes_) {
      PathParams params;
      std::optional<int> score = Score(route, segments, params);
      if (!score) continue;
      if (route.method != method) {
        best.allowed.push_back(route.method);
        continue;
      }
      if (*score > best_score) {
        best_score = *score;
        best.handler = &route.handler;
        best.params = std::move(params);
      }
    }
    if (best.handler != nullptr) best.allowed.clear();
    return best;
  }

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };

  // Literal segments count 1 each, so the more literal route wins; nullopt: no match.
  static std::optional<int> Score(const Route& route, const std::vector<std::string_view>& path,
                                  PathParams& params) {
    if (route.segments.size() != path.size()) return std::nullopt;
    int score = 0;
    for (size_t i = 0; i < path.size(); ++i) {
      const std::string& want = route.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        if (path[i].empty()) return std::nullopt;
        params.emplace(want.substr(1, want.size() - 2), std::string(path[i]));
      } else if (want == path[i]) {
        ++score;
      } else {
        return std::nullopt;
      }
    }
    return score;
  }

  std::vector<Route> routes_;
};

inline std::vector<std::string_view> PathSegments(std::string_view path) {
  std::vector<std::string_view> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return segments;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    segments.push_back(path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return segments;
}

}  // namespace cortex::net
