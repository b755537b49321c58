// Fuzzes the worker frame codec (src/replica/frame_codec.h), both directions:
//  - the bytes as a response frame from a worker: the first 8 bytes are the lengths, the rest
//    the frame's header and body (FrameRestLength, DecodeResponse);
//  - the bytes as an HTTP request head the front encodes for a worker (EncodeRequestPrefix):
//    line 1 the method, line 2 the target, then "name: value" header lines.
//
// Checked beyond "no crash": a decoded response has a valid status, the status the header gave,
// no line break in its headers, and the body that follows the header; an encoded prefix carries
// the lengths it announces and a JSON object header.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "replica/frame_codec.h"

namespace {

using cortex::replica::kFrameLengthsBytes;
using nlohmann::json;

[[noreturn]] void Fail(std::string_view what) {
  std::cerr << what << std::endl;
  std::abort();
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void DecodeAsResponse(std::string_view bytes) {
  if (bytes.size() < kFrameLengthsBytes) return;
  unsigned char lengths[kFrameLengthsBytes];
  std::memcpy(lengths, bytes.data(), kFrameLengthsBytes);
  std::string rest(bytes.substr(kFrameLengthsBytes));

  absl::StatusOr<uint32_t> rest_length = cortex::replica::FrameRestLength(lengths);
  if (rest_length.ok() && *rest_length + 4 != BigEndian32(lengths)) Fail("wrong rest length");

  absl::StatusOr<cortex::replica::WorkerResponse> response =
      cortex::replica::DecodeResponse(lengths, rest);
  if (!response.ok()) return;
  if (response->status < 100 || response->status > 599) Fail("status out of range");
  uint32_t header_length = BigEndian32(lengths + 4);
  if (response->body != rest.substr(header_length)) Fail("body is not what follows the header");
  json header = json::parse(rest.substr(0, header_length), nullptr, false);
  if (auto status = header.find("status"); status != header.end()) {
    if (*status != json(response->status)) Fail("decoded status differs from the header's");
  }
  for (const auto& [name, value] : response->headers) {
    if (name.empty() || name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      Fail("header with a line break passed");
    }
  }
}

void EncodeAsRequest(std::string_view bytes) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= bytes.size();) {
    size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    lines.push_back(bytes.substr(start, end - start));
    start = end + 1;
  }
  if (lines.size() < 2) return;
  cortex::replica::RequestHead head;
  head.method = lines[0];
  head.target = lines[1];
  for (size_t i = 2; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string_view::npos) continue;
    head.headers.emplace_back(lines[i].substr(0, colon), lines[i].substr(colon + 1));
  }
  size_t body_size = bytes.size();
  std::string prefix = cortex::replica::EncodeRequestPrefix(head, body_size);
  if (prefix.size() < kFrameLengthsBytes) Fail("prefix shorter than its lengths");
  auto* p = reinterpret_cast<const unsigned char*>(prefix.data());
  uint32_t header_length = BigEndian32(p + 4);
  if (header_length != prefix.size() - kFrameLengthsBytes) Fail("wrong header length");
  if (BigEndian32(p) != 4 + header_length + body_size) Fail("wrong total length");
  json header = json::parse(prefix.substr(kFrameLengthsBytes), nullptr, false);
  if (!header.is_object() || !header["headers"].is_array() ||
      header["headers"].size() != head.headers.size()) {
    Fail("request header is not the JSON object expected");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  DecodeAsResponse(bytes);
  EncodeAsRequest(bytes);
  return 0;
}
