#include "common/status.h"

#include <absl/strings/cord.h>
#include <absl/strings/numbers.h>

#include <string>

namespace cortex {

namespace {

constexpr char kHttpStatusPayload[] = "cortex.dev/http-status";

}  // namespace

absl::Status WithHttpStatus(absl::Status status, int http_status) {
  status.SetPayload(kHttpStatusPayload, absl::Cord(std::to_string(http_status)));
  return status;
}

int HttpStatusFor(const absl::Status& status) {
  if (auto payload = status.GetPayload(kHttpStatusPayload)) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*payload), &code) && code >= 400 && code < 600) return code;
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 503;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kUnimplemented:
      return 501;
    default:
      return 500;
  }
}

}  // namespace cortex
