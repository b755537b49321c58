// A deliberately small XML reader: S3's list and error documents are flat, machine-written and
// escape every '<' inside text, so finding elements by name is enough.
#include "s3/internal/responses.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>
#include <absl/time/time.h>

#include <cstdint>
#include <string>

namespace cortex::s3::internal {
namespace {

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

// Decodes one entity body ("amp", "#38", "#x26"); false when it is not one we know.
bool DecodeEntity(std::string_view name, std::string* out) {
  if (name == "amp") return out->push_back('&'), true;
  if (name == "lt") return out->push_back('<'), true;
  if (name == "gt") return out->push_back('>'), true;
  if (name == "quot") return out->push_back('"'), true;
  if (name == "apos") return out->push_back('\''), true;
  if (name.size() < 2 || name[0] != '#') return false;
  bool hex = name[1] == 'x' || name[1] == 'X';
  std::string digits(name.substr(hex ? 2 : 1));
  if (digits.empty()) return false;
  uint32_t code_point = 0;
  bool ok = hex ? absl::SimpleHexAtoi(digits, &code_point) : absl::SimpleAtoi(digits, &code_point);
  if (!ok || code_point > 0x10FFFF) return false;
  AppendUtf8(code_point, out);
  return true;
}

std::string FirstText(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> found = XmlElements(xml, tag);
  return found.empty() ? std::string() : XmlUnescape(found.front());
}

}  // namespace

std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> found;
  const std::string open = absl::StrCat("<", std::string(tag));
  const std::string close = absl::StrCat("</", std::string(tag));
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t after_name = pos + open.size();
    // "<Key" must not match "<KeyCount>".
    if (after_name >= xml.size()) break;
    char next = xml[after_name];
    if (next != '>' && next != '/' && next != ' ' && next != '\t' && next != '\n' && next != '\r') {
      pos = after_name;
      continue;
    }
    size_t start_end = xml.find('>', after_name);
    if (start_end == std::string_view::npos) break;
    if (xml[start_end - 1] == '/') {  // <Tag/>
      found.emplace_back();
      pos = start_end + 1;
      continue;
    }
    size_t end = xml.find(close, start_end + 1);
    if (end == std::string_view::npos) break;
    found.push_back(xml.substr(start_end + 1, end - start_end - 1));
    pos = end + close.size();
  }
  return found;
}

std::string XmlUnescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, 9) == "<![CDATA[") {
      size_t end = text.find("]]>", i + 9);
      if (end == std::string_view::npos) end = text.size();
      out.append(text.substr(i + 9, end - i - 9));
      i = end + 3;
      continue;
    }
    if (text[i] == '&') {
      size_t semicolon = text.find(';', i + 1);
      if (semicolon != std::string_view::npos && semicolon - i <= 10 &&
          DecodeEntity(text.substr(i + 1, semicolon - i - 1), &out)) {
        i = semicolon + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

absl::StatusOr<ListPage> ParseListObjectsV2(std::string_view xml) {
  std::vector<std::string_view> result = XmlElements(xml, "ListBucketResult");
  if (result.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the response is not a ListBucketResult: ", std::string(xml.substr(0, 200))));
  }
  std::string_view body = result.front();
  ListPage page;
  for (std::string_view contents : XmlElements(body, "Contents")) {
    std::vector<std::string_view> keys = XmlElements(contents, "Key");
    if (keys.empty()) return absl::InvalidArgumentError("a <Contents> entry has no <Key>");
    ObjectInfo info;
    info.key = XmlUnescape(keys.front());
    std::string size = FirstText(contents, "Size");
    if (!absl::SimpleAtoi(size, &info.size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("object ", info.key, " has a bad <Size>: '", size, "'"));
    }
    absl::Time modified;
    std::string error;
    if (absl::ParseTime(absl::RFC3339_full, FirstText(contents, "LastModified"), &modified,
                        &error)) {
      info.last_modified_s = absl::ToUnixSeconds(modified);
    }
    info.etag = FirstText(contents, "ETag");
    absl::string_view etag = info.etag;
    if (absl::ConsumePrefix(&etag, "\"") && absl::ConsumeSuffix(&etag, "\"")) {
      info.etag = std::string(etag);
    }
    page.objects.push_back(std::move(info));
  }
  page.truncated = FirstText(body, "IsTruncated") == "true";
  page.next_continuation_token = FirstText(body, "NextContinuationToken");
  return page;
}

absl::Status StatusFromErrorResponse(long http_status, std::string_view body,
                                     const std::string& resource) {
  std::string code;
  std::string message;
  if (std::vector<std::string_view> error = XmlElements(body, "Error"); !error.empty()) {
    code = FirstText(error.front(), "Code");
    message = FirstText(error.front(), "Message");
  }
  std::string detail;
  if (!code.empty()) {
    detail =
        absl::StrCat(code, ": ", message.empty() ? absl::StrCat("HTTP ", http_status) : message);
  } else {
    std::string snippet(body.substr(0, 200));
    detail = absl::StrCat("HTTP ", http_status, snippet.empty() ? "" : ": ", snippet);
  }
  const std::string text = absl::StrCat(resource, ": ", detail);

  if (code == "NoSuchBucket" || code == "NoSuchKey" || code == "NoSuchUpload") {
    return absl::NotFoundError(text);
  }
  if (code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
      code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired" ||
      code == "AllAccessDisabled" || code == "AccountProblem") {
    return absl::PermissionDeniedError(text);
  }
  if (code == "SlowDown" || code == "ServiceUnavailable" || code == "InternalError" ||
      code == "RequestTimeout") {
    return absl::UnavailableError(text);
  }
  if (http_status == 404) return absl::NotFoundError(text);
  if (http_status == 401 || http_status == 403) return absl::PermissionDeniedError(text);
  if (http_status == 429 || http_status >= 500) return absl::UnavailableError(text);
  // A redirect means the bucket lives in another region or behind another endpoint.
  if (http_status >= 300 && http_status < 400) return absl::FailedPreconditionError(text);
  if (http_status >= 400) return absl::InvalidArgumentError(text);
  return absl::UnknownError(text);
}

}  // namespace cortex::s3::internal
