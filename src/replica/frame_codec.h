// The slot protocol's frames (docs/worker-protocol.md): a request frame is
// [u32 total][u32 header length][header JSON][body]; a response frame has the same layout with a
// response header ({status, content_type, headers, monitor}). A batch frame (server-side
// batching) carries several requests or responses: its header is {"batch": [head, ...]}, each
// head with the "length" of its body, and its body is their bodies end to end. Pure;
// thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cortex::replica {

// What the front knows of an HTTP request, for its frame header.
struct RequestHead {
  std::string_view method;
  std::string_view target;  // path and query
  std::vector<std::pair<std::string_view, std::string_view>> headers;
};

// The frame's prefix (both lengths and the header); the body follows it on the wire unchanged.
std::string EncodeRequestPrefix(const RequestHead& head, size_t body_size);

// A batch frame's prefix for requests whose bodies have these sizes (same order as `heads`).
std::string EncodeBatchPrefix(const std::vector<RequestHead>& heads,
                              const std::vector<size_t>& body_sizes);

struct WorkerResponse {
  int status = 200;
  std::string content_type = "application/json";  // empty: send no Content-Type
  std::string reason;  // the status line's reason phrase; empty: the standard one
  std::vector<std::pair<std::string, std::string>> headers;
  nlohmann::json monitor;  // the value prediction monitoring records (null: none)
  std::string body;
};

constexpr size_t kFrameLengthsBytes = 8;

// The total length announced by a frame's first 8 bytes: the bytes that follow them.
absl::StatusOr<uint32_t> FrameRestLength(const unsigned char (&lengths)[kFrameLengthsBytes]);
// Decodes a response frame from its first 8 bytes and the rest; malformed input is an error.
absl::StatusOr<WorkerResponse> DecodeResponse(const unsigned char (&lengths)[kFrameLengthsBytes],
                                              std::string rest);
// Decodes a batch response frame that must hold `count` responses.
absl::StatusOr<std::vector<WorkerResponse>> DecodeBatchResponse(
    const unsigned char (&lengths)[kFrameLengthsBytes], std::string_view rest, size_t count);

}  // namespace cortex::replica
