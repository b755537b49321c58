// Small helpers on top of absl::Status used across modules.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/strings/str_cat.h>

#define CORTEX_CONCAT_INNER(a, b) a##b
#define CORTEX_CONCAT(a, b) CORTEX_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(*tmp)

// `ASSIGN_OR_RETURN(auto x, MaybeX());` declares x from an absl::StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CORTEX_CONCAT(_statusor_, __LINE__), lhs, expr)

namespace cortex {

// Prefixes an error with what the caller was doing: "starting replica r-3: <original>".
inline absl::Status Annotate(const absl::Status& status, const std::string& context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// The one mapping from status codes to HTTP status codes (every server answers errors through
// it: net::StatusResponse).
int HttpStatusFor(const absl::Status& status);

// Marks an error with an HTTP status its code cannot say (502 bad gateway, 405, 413);
// HttpStatusFor returns it.
absl::Status WithHttpStatus(absl::Status status, int http_status);

}  // namespace cortex
