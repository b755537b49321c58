// Reading S3's XML responses: ListObjectsV2 pages and <Error> documents, and the one mapping
// from an S3 error to an absl::Status. Not part of the module's API.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <string>
#include <string_view>
#include <vector>

#include "s3/s3_client.h"

namespace cortex::s3::internal {

// The raw contents of each <tag>...</tag> (or empty <tag/>) in `xml`, in document order.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);
// Replaces the five named entities, numeric character references and CDATA sections.
std::string XmlUnescape(std::string_view text);

struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_continuation_token;
};
// Parses a ListBucketResult document. Errors (InvalidArgument) say what was malformed.
absl::StatusOr<ListPage> ParseListObjectsV2(std::string_view xml);

// Turns a non-2xx response into a status whose message is "<resource>: <Code>: <Message>", where
// `resource` is "s3://bucket/key". The code comes from S3's error code, else the HTTP status.
absl::Status StatusFromErrorResponse(long http_status, std::string_view body,
                                     const std::string& resource);

}  // namespace cortex::s3::internal
