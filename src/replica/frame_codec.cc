#include "replica/frame_codec.h"

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>

#include <algorithm>
#include <optional>

#include "common/status.h"

namespace cortex::replica {
namespace {

uint32_t ReadBigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void AppendBigEndian32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// Appends `s` as a JSON string. Printable ASCII other than '"' and '\\' (nearly every header) is
// copied as is; anything else goes through nlohmann's serializer, so that the bytes are exactly
// those it writes (control characters escaped, invalid UTF-8 replaced instead of thrown).
void AppendJsonString(std::string& out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(),
                           [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out +=
      nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One request's head as JSON, its keys in nlohmann's (sorted) order: {"headers": [[name, value],
// ...], "length": N (batch elements only), "method", "path", "query"}. Written directly: this
// runs once per request, and building a json object first cost more than the rest of the frame.
void AppendHeadJson(std::string& out, const RequestHead& head,
                    std::optional<size_t> length = std::nullopt) {
  size_t q = head.target.find('?');
  out += R"({"headers":[)";
  std::string lower;
  for (size_t i = 0; i < head.headers.size(); ++i) {
    const auto& [name, value] = head.headers[i];
    if (i > 0) out += ',';
    out += '[';
    lower.assign(name);
    absl::AsciiStrToLower(&lower);
    AppendJsonString(out, lower);
    out += ',';
    AppendJsonString(out, value);
    out += ']';
  }
  out += ']';
  if (length) absl::StrAppend(&out, R"(,"length":)", *length);
  out += R"(,"method":)";
  AppendJsonString(out, head.method);
  out += R"(,"path":)";
  AppendJsonString(out, head.target.substr(0, q));
  out += R"(,"query":)";
  AppendJsonString(out, q == std::string_view::npos ? "" : head.target.substr(q + 1));
  out += '}';
}

// Fills in the two lengths of a prefix whose header (everything after the 8 placeholder bytes)
// is written.
void FinishPrefix(std::string& prefix, size_t body_size) {
  size_t header_size = prefix.size() - kFrameLengthsBytes;
  std::string lengths;
  AppendBigEndian32(lengths, static_cast<uint32_t>(4 + header_size + body_size));
  AppendBigEndian32(lengths, static_cast<uint32_t>(header_size));
  prefix.replace(0, kFrameLengthsBytes, lengths);
}

// Fills `response` from one response head (a frame's header or an element of a batch's).
absl::Status DecodeHead(const nlohmann::json& header, WorkerResponse& response) {
  if (!header.is_object()) return absl::DataLossError("worker frame header is not a JSON object");
  auto status = header.find("status");
  if (status != header.end()) {
    // Compared as 64 bits: get<int>() would truncate 4294967496 to 200.
    if (!status->is_number_integer() || status->get<int64_t>() < 100 ||
        status->get<int64_t>() > 599) {
      return absl::DataLossError("worker frame has an invalid status");
    }
    response.status = static_cast<int>(status->get<int64_t>());
  }
  if (auto it = header.find("content_type"); it != header.end() && it->is_string()) {
    response.content_type = it->get<std::string>();
  }
  if (auto it = header.find("reason"); it != header.end() && it->is_string()) {
    response.reason = it->get<std::string>();
    if (response.reason.find_first_of("\r\n") != std::string::npos) {
      return absl::DataLossError("worker response reason holds a line break");
    }
  }
  if (auto it = header.find("headers"); it != header.end() && it->is_array()) {
    for (const auto& pair : *it) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
        continue;
      }
      std::string name = pair[0].get<std::string>(), value = pair[1].get<std::string>();
      // A CR or LF would let a predictor write headers (or a whole response) of its own.
      if (name.empty() || name.find_first_of("\r\n:") != std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        return absl::DataLossError(
            absl::StrCat("worker response header ", absl::CEscape(name), " holds a line break"));
      }
      response.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  if (auto it = header.find("monitor"); it != header.end()) response.monitor = *it;
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRequestPrefix(const RequestHead& head, size_t body_size) {
  std::string prefix(kFrameLengthsBytes, '\0');
  prefix.reserve(256);
  AppendHeadJson(prefix, head);
  FinishPrefix(prefix, body_size);
  return prefix;
}

std::string EncodeBatchPrefix(const std::vector<RequestHead>& heads,
                              const std::vector<size_t>& body_sizes) {
  std::string prefix(kFrameLengthsBytes, '\0');
  prefix += R"({"batch":[)";
  size_t total = 0;
  for (size_t i = 0; i < heads.size(); ++i) {
    if (i > 0) prefix += ',';
    AppendHeadJson(prefix, heads[i], body_sizes[i]);
    total += body_sizes[i];
  }
  prefix += "]}";
  FinishPrefix(prefix, total);
  return prefix;
}

absl::StatusOr<uint32_t> FrameRestLength(const unsigned char (&lengths)[kFrameLengthsBytes]) {
  uint32_t total = ReadBigEndian32(lengths);
  if (total < 4) return absl::DataLossError("worker frame shorter than its header length");
  return total - 4;
}

absl::StatusOr<WorkerResponse> DecodeResponse(const unsigned char (&lengths)[kFrameLengthsBytes],
                                              std::string rest) {
  uint32_t header_length = ReadBigEndian32(lengths + 4);
  if (header_length > rest.size()) {
    return absl::DataLossError("worker frame header is longer than the frame");
  }
  std::string_view header = std::string_view(rest).substr(0, header_length);
  // A worker writes the same few headers again and again (worker.py's HDR_*): the last one
  // decoded on this thread is kept, and the same bytes again are not parsed again.
  thread_local std::optional<std::string> last_header;  // only ever one that decoded
  thread_local WorkerResponse last_head;
  WorkerResponse response;
  if (last_header && header == *last_header) {
    response = last_head;
  } else {
    RETURN_IF_ERROR(DecodeHead(nlohmann::json::parse(header, nullptr, false), response));
    last_header = std::string(header);
    last_head = response;
  }
  rest.erase(0, header_length);
  response.body = std::move(rest);
  return response;
}

absl::StatusOr<std::vector<WorkerResponse>> DecodeBatchResponse(
    const unsigned char (&lengths)[kFrameLengthsBytes], std::string_view rest, size_t count) {
  uint32_t header_length = ReadBigEndian32(lengths + 4);
  if (header_length > rest.size()) {
    return absl::DataLossError("worker frame header is longer than the frame");
  }
  auto header = nlohmann::json::parse(rest.substr(0, header_length), nullptr, false);
  auto batch = header.is_object() ? header.find("batch") : header.end();
  if (batch == header.end() || !batch->is_array() || batch->size() != count) {
    return absl::DataLossError(
        absl::StrCat("worker batch response does not hold ", count, " responses"));
  }
  std::string_view bodies = rest.substr(header_length);
  std::vector<WorkerResponse> responses(count);
  for (size_t i = 0; i < count; ++i) {
    const nlohmann::json& head = (*batch)[i];
    RETURN_IF_ERROR(DecodeHead(head, responses[i]));
    auto length = head.find("length");
    if (length == head.end() || !length->is_number_unsigned() ||
        length->get<uint64_t>() > bodies.size()) {
      return absl::DataLossError("worker batch response has a bad body length");
    }
    responses[i].body = std::string(bodies.substr(0, length->get<uint64_t>()));
    bodies.remove_prefix(length->get<uint64_t>());
  }
  if (!bodies.empty()) return absl::DataLossError("worker batch response has trailing bytes");
  return responses;
}

}  // namespace cortex::replica
