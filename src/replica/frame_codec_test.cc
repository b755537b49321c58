#include "replica/frame_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace cortex::replica {
namespace {

using nlohmann::json;

// A response frame as a worker writes it.
std::pair<std::array<unsigned char, 8>, std::string> Frame(const std::string& header,
                                                           const std::string& body) {
  std::array<unsigned char, 8> lengths{};
  uint32_t total = 4 + header.size() + body.size(), h = header.size();
  for (int i = 0; i < 4; ++i) {
    lengths[i] = static_cast<unsigned char>(total >> (24 - 8 * i));
    lengths[4 + i] = static_cast<unsigned char>(h >> (24 - 8 * i));
  }
  return {lengths, header + body};
}

TEST(FrameCodec, EncodesTheRequestHead) {
  RequestHead head{"POST", "/predict?a=1&b=2", {{"Content-Type", "application/json"}}};
  std::string prefix = EncodeRequestPrefix(head, 5);
  ASSERT_GE(prefix.size(), 8u);
  auto u32 = [&](size_t at) {
    return (uint32_t(uint8_t(prefix[at])) << 24) | (uint32_t(uint8_t(prefix[at + 1])) << 16) |
           (uint32_t(uint8_t(prefix[at + 2])) << 8) | uint32_t(uint8_t(prefix[at + 3]));
  };
  uint32_t header_length = u32(4);
  EXPECT_EQ(u32(0), 4 + header_length + 5);
  json header = json::parse(prefix.substr(8));
  EXPECT_EQ(header["method"], "POST");
  EXPECT_EQ(header["path"], "/predict");
  EXPECT_EQ(header["query"], "a=1&b=2");
  EXPECT_EQ(header["headers"][0][0], "content-type");  // lower-cased
}

TEST(FrameCodec, InvalidUtf8InHeadersIsReplacedNotThrown) {
  RequestHead head{"POST", "/predict", {{"X-Bad", "\xff\xfe"}}};
  EXPECT_NO_THROW(EncodeRequestPrefix(head, 0));
}

// The head as nlohmann writes it, with the keys the worker reads.
json ReferenceHead(const RequestHead& head) {
  size_t q = head.target.find('?');
  json headers = json::array();
  for (const auto& [name, value] : head.headers) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers.push_back({lower, std::string(value)});
  }
  return {{"method", std::string(head.method)},
          {"path", std::string(head.target.substr(0, q))},
          {"query", q == std::string_view::npos ? "" : std::string(head.target.substr(q + 1))},
          {"headers", headers}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

TEST(FrameCodec, RequestHeadBytesAreThoseOfAJsonSerializer) {
  // Written without building a json object: the bytes must still be a serializer's, escapes
  // and replaced invalid UTF-8 included.
  std::vector<RequestHead> heads = {
      {"POST", "/predict", {{"Host", "127.0.0.1:8888"}, {"Content-Type", "application/json"}}},
      {"GET", "/predict?x=1&y=%22q%22", {}},
      {"POST", "/v2/models/m/infer?", {{"X-Quote", "a\"b\\c"}, {"X-Ctl", "tab\there\x01"}}},
      {"POST", "/predict", {{"X-Utf8", "caf\xc3\xa9 \xe2\x82\xac"}, {"X-Bad", "\xff\xfe ok"}}},
      {"POST", "/p\x7f", {{"DEL", "\x7f"}, {"Empty", ""}}},
  };
  std::vector<size_t> sizes;
  json batch = json::array();
  for (size_t i = 0; i < heads.size(); ++i) {
    std::string prefix = EncodeRequestPrefix(heads[i], 3);
    EXPECT_EQ(prefix.substr(8), Dump(ReferenceHead(heads[i]))) << i;
    json element = ReferenceHead(heads[i]);
    element["length"] = i * 10;
    batch.push_back(element);
    sizes.push_back(i * 10);
  }
  std::string prefix = EncodeBatchPrefix(heads, sizes);
  EXPECT_EQ(prefix.substr(8), Dump(json{{"batch", batch}}));
  uint32_t total = (uint32_t(uint8_t(prefix[0])) << 24) | (uint32_t(uint8_t(prefix[1])) << 16) |
                   (uint32_t(uint8_t(prefix[2])) << 8) | uint32_t(uint8_t(prefix[3]));
  EXPECT_EQ(total, 4 + (prefix.size() - 8) + 100);  // 0 + 10 + 20 + 30 + 40 bytes of bodies
}

TEST(FrameCodec, DecodesAResponse) {
  auto [lengths, rest] = Frame(
      R"({"status": 201, "content_type": "text/plain", "headers": [["x-a", "1"]], "monitor": "setosa"})",
      "hello");
  unsigned char raw[8];
  std::memcpy(raw, lengths.data(), 8);
  ASSERT_EQ(*FrameRestLength(raw), rest.size());
  auto response = DecodeResponse(raw, rest);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->content_type, "text/plain");
  ASSERT_EQ(response->headers.size(), 1u);
  EXPECT_EQ(response->monitor, "setosa");
  EXPECT_EQ(response->body, "hello");
}

// The last header decoded on a thread is kept: the same bytes decode alike, other bytes (or bad
// ones) are decoded on their own. On a thread of its own, so that the cache starts empty.
TEST(FrameCodec, ARepeatedResponseHeaderDecodesAlike) {
  std::thread([] {
    auto decode = [](const std::string& header, const std::string& body) {
      auto [lengths, rest] = Frame(header, body);
      unsigned char raw[8];
      std::memcpy(raw, lengths.data(), 8);
      return DecodeResponse(raw, rest);
    };
    EXPECT_FALSE(decode("", "x").ok());  // nothing decoded yet: an empty header is no match
    const std::string known = R"({"status":418,"content_type":"text/plain","reason":"Teapot",)"
                              R"("headers":[["x-a","1"]],"monitor":2})";
    for (const char* body : {"one", "two"}) {
      auto response = decode(known, body);
      ASSERT_TRUE(response.ok()) << response.status();
      EXPECT_EQ(response->status, 418);
      EXPECT_EQ(response->content_type, "text/plain");
      EXPECT_EQ(response->reason, "Teapot");
      ASSERT_EQ(response->headers.size(), 1u);
      EXPECT_EQ(response->headers[0].second, "1");
      EXPECT_EQ(response->monitor, 2);
      EXPECT_EQ(response->body, body);
    }
    auto other = decode(R"({"status":200,"content_type":"application/json"})", "{}");
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->status, 200);
    EXPECT_TRUE(other->headers.empty());
    EXPECT_TRUE(other->reason.empty());
    EXPECT_FALSE(decode("", "x").ok());
    EXPECT_FALSE(decode(R"({"status":99})", "").ok());
    EXPECT_EQ(decode(known, "three")->status, 418);
  }).join();
}

TEST(FrameCodec, MalformedResponsesAreErrors) {
  for (const std::string& header :
       {std::string("not json"), std::string("[1]"), std::string(R"({"status": "ok"})"),
        std::string(R"({"status": 99})"), std::string(R"({"status": 4294967496})"),
        std::string(R"({"status": 18446744073709551615})"),
        std::string(R"({"status": 200, "headers": [[1, 2]]})")}) {
    auto [lengths, rest] = Frame(header, "");
    unsigned char raw[8];
    std::memcpy(raw, lengths.data(), 8);
    auto response = DecodeResponse(raw, rest);
    if (header.find("headers") != std::string::npos) {
      ASSERT_TRUE(response.ok());  // a bad header pair is dropped, the response stands
      EXPECT_TRUE(response->headers.empty());
    } else {
      EXPECT_FALSE(response.ok()) << header;
    }
  }
  // A header with a line break would split the HTTP response: the whole response is refused.
  for (const std::string& header :
       {std::string(R"({"headers": [["x-a", "1\r\nSet-Cookie: a=b"]]})"),
        std::string(R"({"headers": [["x-a\r\nSet-Cookie", "b"]]})")}) {
    auto [lengths, rest] = Frame(header, "");
    unsigned char raw[8];
    std::memcpy(raw, lengths.data(), 8);
    EXPECT_FALSE(DecodeResponse(raw, rest).ok()) << header;
  }
  unsigned char short_frame[8] = {0, 0, 0, 2, 0, 0, 0, 0};
  EXPECT_FALSE(FrameRestLength(short_frame).ok());
  unsigned char long_header[8] = {0, 0, 0, 5, 0, 0, 0, 9};
  EXPECT_FALSE(DecodeResponse(long_header, "x").ok());
}

TEST(FrameCodec, EncodesABatchOfRequests) {
  std::vector<RequestHead> heads = {{"POST", "/predict?x=1", {{"Content-Type", "text/plain"}}},
                                    {"POST", "/predict", {}}};
  std::string prefix = EncodeBatchPrefix(heads, {3, 4});
  auto u32 = [&](size_t at) {
    return (uint32_t(uint8_t(prefix[at])) << 24) | (uint32_t(uint8_t(prefix[at + 1])) << 16) |
           (uint32_t(uint8_t(prefix[at + 2])) << 8) | uint32_t(uint8_t(prefix[at + 3]));
  };
  EXPECT_EQ(u32(0), 4 + u32(4) + 7);
  json header = json::parse(prefix.substr(8));
  ASSERT_EQ(header["batch"].size(), 2u);
  EXPECT_EQ(header["batch"][0]["query"], "x=1");
  EXPECT_EQ(header["batch"][0]["length"], 3);
  EXPECT_EQ(header["batch"][0]["headers"][0][0], "content-type");
  EXPECT_EQ(header["batch"][1]["length"], 4);
}

TEST(FrameCodec, DecodesABatchOfResponses) {
  auto [lengths, rest] =
      Frame(R"({"batch": [{"status": 200, "content_type": "application/json", "length": 3},)"
            R"( {"status": 418, "reason": "I'm a Teapot", "headers": [["x-a", "1"]], "monitor": 2,)"
            R"( "length": 2}]})",
            "[1]ok");
  unsigned char raw[8];
  std::memcpy(raw, lengths.data(), 8);
  auto responses = DecodeBatchResponse(raw, rest, 2);
  ASSERT_TRUE(responses.ok()) << responses.status();
  EXPECT_EQ((*responses)[0].body, "[1]");
  EXPECT_EQ((*responses)[0].status, 200);
  EXPECT_EQ((*responses)[1].body, "ok");
  EXPECT_EQ((*responses)[1].status, 418);
  EXPECT_EQ((*responses)[1].reason, "I'm a Teapot");
  EXPECT_EQ((*responses)[1].monitor, 2);
  ASSERT_EQ((*responses)[1].headers.size(), 1u);
}

TEST(FrameCodec, RejectsMalformedBatchResponses) {
  const std::pair<std::string, std::string> bad[] = {
      {R"({"batch": [{"length": 3}]})", "abc"},                  // one response for two
      {R"({"batch": [{"length": 3}, {"length": 9}]})", "abcd"},  // body beyond the frame
      {R"({"batch": [{"length": 1}, {"length": 1}]})", "abcd"},  // trailing bytes
      {R"({"batch": [{"length": -1}, {"length": 1}]})", "a"},    // negative length
      {R"({"batch": [{"length": 1}, {"status": 0, "length": 0}]})", "a"},
      {R"({"batch": [{"length": 1}, {"headers": [["x", "a\nb"]], "length": 0}]})", "a"},
      {R"({"batch": [{"length": 1}, {"reason": "a\r\nX: y", "length": 0}]})", "a"},
      {R"({"status": 200})", "ab"},  // not a batch
      {R"(not json)", ""},
  };
  for (const auto& [header, body] : bad) {
    auto [lengths, rest] = Frame(header, body);
    unsigned char raw[8];
    std::memcpy(raw, lengths.data(), 8);
    EXPECT_FALSE(DecodeBatchResponse(raw, rest, 2).ok()) << header;
  }
}

}  // namespace
}  // namespace cortex::replica
