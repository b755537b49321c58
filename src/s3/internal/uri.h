// URL pieces and RFC 3986 percent-encoding as SigV4 and S3 path-style addressing need them.
// Shared by sigv4.cc and s3_client.cc; not part of the module's API.
#pragma once

#include <string>
#include <string_view>

namespace cortex::s3::internal {

// Percent-encodes every byte except the unreserved set A-Z a-z 0-9 - _ . ~ (and '/' when
// `keep_slash`), with upper-case hex digits, as SigV4 requires.
std::string UriEncode(std::string_view text, bool keep_slash);
// Reverses %XX escapes; a malformed escape is kept literally.
std::string UriDecode(std::string_view text);

struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // the Host header: lower case, port only when not the scheme's default
  std::string path;    // as written, "/" when empty
  std::string query;   // after '?', as written
};
// Splits "scheme://[user@]host[:port][/path][?query][#fragment]". Lenient: a URL without a
// scheme is taken as host and path.
UrlParts SplitUrl(std::string_view url);

}  // namespace cortex::s3::internal
