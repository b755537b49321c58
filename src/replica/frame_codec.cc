#include "replica/frame_codec.h"

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>

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

nlohmann::json HeadJson(const RequestHead& head) {
  size_t q = head.target.find('?');
  nlohmann::json header;
  header["method"] = std::string(head.method);
  header["path"] = std::string(head.target.substr(0, q));
  header["query"] = q == std::string_view::npos ? "" : std::string(head.target.substr(q + 1));
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [name, value] : head.headers) {
    headers.push_back({absl::AsciiStrToLower(std::string(name)), std::string(value)});
  }
  header["headers"] = std::move(headers);
  return header;
}

std::string Prefix(const nlohmann::json& header, size_t body_size) {
  // Header values are bytes from the network: replace invalid UTF-8 instead of throwing.
  std::string encoded = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string prefix;
  prefix.reserve(kFrameLengthsBytes + encoded.size());
  AppendBigEndian32(prefix, static_cast<uint32_t>(4 + encoded.size() + body_size));
  AppendBigEndian32(prefix, static_cast<uint32_t>(encoded.size()));
  prefix += encoded;
  return prefix;
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
  return Prefix(HeadJson(head), body_size);
}

std::string EncodeBatchPrefix(const std::vector<RequestHead>& heads,
                              const std::vector<size_t>& body_sizes) {
  nlohmann::json batch = nlohmann::json::array();
  size_t total = 0;
  for (size_t i = 0; i < heads.size(); ++i) {
    nlohmann::json head = HeadJson(heads[i]);
    head["length"] = body_sizes[i];
    total += body_sizes[i];
    batch.push_back(std::move(head));
  }
  return Prefix(nlohmann::json{{"batch", std::move(batch)}}, total);
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
  WorkerResponse response;
  RETURN_IF_ERROR(DecodeHead(
      nlohmann::json::parse(std::string_view(rest).substr(0, header_length), nullptr, false),
      response));
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
