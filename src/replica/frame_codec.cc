#include "replica/frame_codec.h"

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>

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

}  // namespace

std::string EncodeRequestPrefix(const RequestHead& head, size_t body_size) {
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
  // Header values are bytes from the network: replace invalid UTF-8 instead of throwing.
  std::string encoded = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string prefix;
  prefix.reserve(kFrameLengthsBytes + encoded.size());
  AppendBigEndian32(prefix, static_cast<uint32_t>(4 + encoded.size() + body_size));
  AppendBigEndian32(prefix, static_cast<uint32_t>(encoded.size()));
  prefix += encoded;
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
  auto header = nlohmann::json::parse(rest.substr(0, header_length), nullptr, false);
  if (!header.is_object()) return absl::DataLossError("worker frame header is not a JSON object");
  WorkerResponse response;
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
  rest.erase(0, header_length);
  response.body = std::move(rest);
  return response;
}

}  // namespace cortex::replica
