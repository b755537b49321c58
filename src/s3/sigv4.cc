// AWS Signature Version 4 for S3 (service "s3"), header-based, with a signed payload hash.
// Matches botocore's S3SigV4Auth; src/s3/testdata/sigv4_vectors.py makes the test vectors.
#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "s3/internal/uri.h"
#include "s3/s3_client.h"

namespace cortex::s3 {
namespace internal {

namespace {

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string UriDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

UrlParts SplitUrl(std::string_view url) {
  UrlParts parts;
  if (size_t hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  if (size_t sep = url.find("://"); sep != std::string_view::npos) {
    parts.scheme = absl::AsciiStrToLower(std::string(url.substr(0, sep)));
    url.remove_prefix(sep + 3);
  }
  size_t authority_end = url.find_first_of("/?");
  std::string_view authority = url.substr(0, authority_end);
  std::string_view rest =
      authority_end == std::string_view::npos ? std::string_view() : url.substr(authority_end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  // Drop the port when it is the scheme's default, as HTTP clients do in the Host header.
  std::string host = absl::AsciiStrToLower(std::string(authority));
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    std::string port = host.substr(colon + 1);
    if ((parts.scheme == "http" && port == "80") || (parts.scheme == "https" && port == "443") ||
        port.empty()) {
      host.resize(colon);
    }
  }
  parts.host = std::move(host);
  size_t question = rest.find('?');
  parts.path = std::string(rest.substr(0, question));
  if (parts.path.empty()) parts.path.push_back('/');
  if (question != std::string_view::npos) parts.query = std::string(rest.substr(question + 1));
  return parts;
}

}  // namespace internal

namespace {

using internal::UriDecode;
using internal::UriEncode;

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return Hex(digest, sizeof(digest));
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

// S3 does not normalise paths ("a//b" and "a/./b" are distinct keys), so each byte is only
// re-encoded. Decoding first makes an already-encoded URL come out the same.
std::string CanonicalUri(const std::string& path) { return UriEncode(UriDecode(path), true); }

std::string CanonicalQuery(const std::string& query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string_view piece(query.data() + start, end - start);
    start = end + 1;
    if (piece.empty()) continue;
    size_t equals = piece.find('=');
    std::string_view key = piece.substr(0, equals);
    std::string_view value =
        equals == std::string_view::npos ? std::string_view() : piece.substr(equals + 1);
    pairs.emplace_back(UriEncode(UriDecode(key), false), UriEncode(UriDecode(value), false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<std::string> joined;
  joined.reserve(pairs.size());
  for (const auto& [key, value] : pairs) joined.push_back(absl::StrCat(key, "=", value));
  return absl::StrJoin(joined, "&");
}

// SigV4's Trimall: strip the ends and squeeze inner runs of whitespace to one space.
std::string TrimAll(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Headers the signer sets itself (Date: X-Amz-Date supersedes it); a caller's copy is dropped.
bool IsSignerHeader(const std::string& lower_name) {
  return lower_name == "x-amz-date" || lower_name == "x-amz-content-sha256" ||
         lower_name == "x-amz-security-token" || lower_name == "authorization" ||
         lower_name == "date";
}

// Headers that proxies or clients may change in flight, so AWS SDKs never sign them.
bool IsUnsignedHeader(const std::string& lower_name) {
  return lower_name == "expect" || lower_name == "user-agent" || lower_name == "x-amzn-trace-id";
}

}  // namespace

SignedRequest SignV4(const std::string& method, const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& payload, const Credentials& credentials,
                     const std::string& region, const std::string& amz_date) {
  internal::UrlParts parts = internal::SplitUrl(url);
  const std::string payload_hash = Sha256Hex(payload);
  const std::string date = amz_date.substr(0, 8);

  SignedRequest signed_request;
  std::vector<std::pair<std::string, std::string>>& send = signed_request.headers;
  bool has_host = false;
  for (const auto& [name, value] : headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (IsSignerHeader(lower)) continue;
    has_host = has_host || lower == "host";
    send.emplace_back(name, value);
  }
  if (!has_host) send.emplace_back("Host", parts.host);
  send.emplace_back("X-Amz-Date", amz_date);
  send.emplace_back("X-Amz-Content-SHA256", payload_hash);
  if (!credentials.session_token.empty()) {
    send.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }

  // Sorted by lower-cased name; repeated headers join their values with ',' in send order.
  std::map<std::string, std::vector<std::string>> canonical;
  for (const auto& [name, value] : send) {
    std::string lower = absl::AsciiStrToLower(TrimAll(name));
    if (IsUnsignedHeader(lower)) continue;
    canonical[lower].push_back(TrimAll(value));
  }
  std::string canonical_headers;
  std::vector<std::string> names;
  for (const auto& [name, values] : canonical) {
    absl::StrAppend(&canonical_headers, name, ":", absl::StrJoin(values, ","), "\n");
    names.push_back(name);
  }
  const std::string signed_headers = absl::StrJoin(names, ";");

  signed_request.canonical_request =
      absl::StrCat(absl::AsciiStrToUpper(method), "\n", CanonicalUri(parts.path), "\n",
                   CanonicalQuery(parts.query), "\n", canonical_headers, "\n", signed_headers, "\n",
                   payload_hash);
  const std::string scope = absl::StrCat(date, "/", region, "/s3/aws4_request");
  signed_request.string_to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", amz_date, "\n", scope, "\n",
                                               Sha256Hex(signed_request.canonical_request));

  std::string key = HmacSha256(absl::StrCat("AWS4", credentials.secret_access_key), date);
  key = HmacSha256(key, region);
  key = HmacSha256(key, "s3");
  key = HmacSha256(key, "aws4_request");
  const std::string signature = HmacSha256(key, signed_request.string_to_sign);

  signed_request.authorization =
      absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/", scope,
                   ", SignedHeaders=", signed_headers, ", Signature=",
                   Hex(reinterpret_cast<const unsigned char*>(signature.data()), signature.size()));
  send.emplace_back("Authorization", signed_request.authorization);
  return signed_request;
}

}  // namespace cortex::s3
