// Fuzzes the HTTP front door without sockets: the bytes are what a client sent on a connection.
// They are parsed by a Beast request parser configured as src/net/http_server.cc configures it
// (64 KiB header limit, a body limit), and a request that parses is routed as the gateway routes
// it (src/gateway/gateway.cc, Gateway::Handle) over a RouteTable with a RealtimeAPI, a BatchAPI,
// a TrafficSplitter and an API served on the load balancer only. The request is then encoded as
// a replica's front encodes it for a worker (EncodeRequestPrefix).
//
// The body limit is 1 MiB rather than the gateway's 512 MiB: string_body reserves the announced
// Content-Length, and a fuzzer that allocates 512 MiB per input finds nothing faster.

// clang-format off
#include <utility>  // must precede asio: boost/asio/awaitable.hpp uses std::exchange
// clang-format on

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/route_table.h"
#include "replica/frame_codec.h"

namespace {

namespace http = boost::beast::http;
using cortex::gateway::ApiRoute;
using cortex::gateway::RouteTable;

constexpr uint64_t kBodyLimit = 1024 * 1024;
constexpr uint32_t kHeaderLimit = 64 * 1024;

std::shared_ptr<const RouteTable> Routes() {
  std::vector<ApiRoute> apis(4);
  apis[0].name = "hello";
  apis[0].endpoint = "/hello";
  apis[0].replicas = {{"hello-1", "127.0.0.1", 9001}, {"hello-2", "127.0.0.1", 9002}};
  apis[1].name = "jobs";
  apis[1].endpoint = "/team/jobs";
  apis[1].batch = true;
  apis[2].name = "split";
  apis[2].endpoint = "/split";
  apis[2].targets = {{"hello", 70}, {"missing", 30}};
  apis[3].name = "internal";
  apis[3].endpoint = "/internal";
  apis[3].api_gateway = "none";
  absl::StatusOr<std::shared_ptr<const RouteTable>> table = RouteTable::Build(1, std::move(apis));
  if (!table.ok()) {
    std::cerr << table.status() << std::endl;
    std::abort();
  }
  return *table;
}

[[noreturn]] void Fail(std::string_view what, std::string_view target) {
  std::cerr << what << ": " << target << std::endl;
  std::abort();
}

// The routing decision of Gateway::Handle: the reserved endpoints, the exact endpoint, a batch
// API's job ("<endpoint>/<job id>"), the load-balancer-only APIs, a splitter's pick.
void Route(const RouteTable& routes, std::string_view target, bool api_gateway,
           std::mt19937_64& rng) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path.starts_with("/_cortex/")) return;
  const ApiRoute* api = routes.Find(path);
  if (api != nullptr && path != api->endpoint && path != api->endpoint + "/") {
    Fail("found an API whose endpoint is not the path", target);
  }
  std::string job_suffix;
  if (api == nullptr) {
    size_t slash = path.rfind('/');
    const ApiRoute* parent = slash > 0 ? routes.Find(path.substr(0, slash)) : nullptr;
    if (parent != nullptr && parent->batch) {
      api = parent;
      job_suffix = std::string(path.substr(slash));
    }
  }
  if (api != nullptr && api_gateway && api->api_gateway == "none") api = nullptr;
  if (api == nullptr) return;
  if (api->is_splitter()) {
    std::vector<int> weights;
    for (const auto& t : api->targets) weights.push_back(t.weight);
    size_t chosen = cortex::gateway::PickWeighted(weights, rng);
    if (chosen >= api->targets.size()) Fail("splitter picked no target", target);
    (void)routes.FindByName(api->targets[chosen].api);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const RouteTable> routes = Routes();
  static std::mt19937_64 rng(1);

  http::request_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.header_limit(kHeaderLimit);
  parser.eager(true);
  boost::system::error_code ec;
  boost::asio::const_buffer input(data, size);
  while (input.size() > 0 && !parser.is_done()) {
    size_t used = parser.put(input, ec);
    input += used;
    // As http::read: after need_more the parser gets the same bytes again only with more after
    // them, and there are none.
    if (ec == http::error::need_more) break;
    if (ec) return 0;
    if (used == 0) break;
  }
  if (!parser.is_done()) {
    // The connection ended; as http::read, a parser that got nothing has seen no request.
    if (!parser.got_some()) return 0;
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }
  http::request<http::string_body> request = parser.release();
  if (request.body().size() > kBodyLimit) Fail("body over the limit", request.target());

  std::string_view target = request.target();
  Route(*routes, target, /*api_gateway=*/size % 2 == 0, rng);

  cortex::replica::RequestHead head;
  head.method = request.method_string();
  head.target = target;
  for (const auto& field : request) head.headers.emplace_back(field.name_string(), field.value());
  (void)cortex::replica::EncodeRequestPrefix(head, request.body().size());
  return 0;
}
