// FakeKubeApi behind real HTTP on 127.0.0.1: the REST paths, verbs, Status objects and codes of
// a Kubernetes API server for the kinds the backend uses, so that KubeRestClient and the backend
// over it are tested through sockets. A watch (?watch=true) answers at once with the recorded
// changes after its resourceVersion, one JSON event a line, and an ERROR event with a 410 Status
// for an expired version, as the API server does. Runs its own io_context thread.
#pragma once

#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/kubernetes/kube_credentials.h"
#include "backends/kubernetes/testing/fake_kube_api.h"
#include "net/http_server.h"

namespace cortex::backends::kubernetes::testing {

class FakeApiServer {
 public:
  using json = nlohmann::json;

  explicit FakeApiServer(std::string token = "test-token") : token_(std::move(token)) {
    auto created = net::HttpServer::Create(
        io_, net::HttpServerOptions{},
        [this](net::Request& request) -> net::asio::awaitable<net::Response> {
          std::lock_guard lock(mu);
          co_return Serve(request);
        });
    server_ = std::move(*created);
    server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeApiServer() {
    net::asio::post(io_, [this] { server_->Stop(); });
    io_.stop();
    thread_.join();
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_->port()); }
  // Where a client finds it, with the token it accepts.
  KubeEndpoint endpoint() const {
    KubeEndpoint endpoint;
    endpoint.server = url();
    endpoint.token = token_;
    return endpoint;
  }

  std::mutex mu;                      // held while a request is served: lock it to touch `api`
  FakeKubeApi api;                    // the objects
  int fail_next = 0;                  // answer this many requests with 503 first
  std::vector<std::string> requests;  // "METHOD target"

 private:
  static const Resource* ResourceFor(const std::string& plural) {
    for (const Resource* r : {&kDeployments, &kServices, &kPods, &kJobs}) {
      if (plural == r->plural) return r;
    }
    return nullptr;
  }

  static net::Response Failure(const net::Request& request, int code, const std::string& reason,
                               const std::string& message) {
    json status = {{"kind", "Status"},   {"apiVersion", "v1"}, {"status", "Failure"},
                   {"message", message}, {"reason", reason},   {"code", code}};
    return net::MakeResponse(request, static_cast<net::http::status>(code), status.dump());
  }

  static net::Response FromStatus(const net::Request& request, const absl::Status& st) {
    if (absl::IsNotFound(st)) return Failure(request, 404, "NotFound", std::string(st.message()));
    if (absl::IsAlreadyExists(st)) {
      return Failure(request, 409, "AlreadyExists", std::string(st.message()));
    }
    if (absl::IsAborted(st)) return Failure(request, 409, "Conflict", std::string(st.message()));
    return Failure(request, 500, "InternalError", std::string(st.message()));
  }

  static net::Response Answer(const net::Request& request, const absl::StatusOr<json>& result,
                              net::http::status ok = net::http::status::ok) {
    if (!result.ok()) return FromStatus(request, result.status());
    return net::MakeResponse(request, ok, result->dump());
  }

  net::Response Serve(net::Request& request) {
    std::string target(request.target());
    std::string method(request.method_string());
    requests.push_back(absl::StrCat(method, " ", target));
    if (request[net::http::field::authorization] != "Bearer " + token_) {
      return Failure(request, 401, "Unauthorized", "Unauthorized");
    }
    if (fail_next > 0) {
      --fail_next;
      return Failure(request, 503, "ServiceUnavailable", "the server is currently unable");
    }
    std::string path = target.substr(0, target.find('?'));
    std::string query =
        target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    // /api/v1/namespaces/<ns>/<plural>[/<name>[/scale]] or /apis/<g>/<v>/namespaces/...
    std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
    size_t ns = 0;
    while (ns < parts.size() && parts[ns] != "namespaces") ++ns;
    if (ns + 2 >= parts.size()) {
      return Failure(request, 404, "NotFound", "the server could not find the requested resource");
    }
    const Resource* r = ResourceFor(parts[ns + 2]);
    if (r == nullptr) return Failure(request, 404, "NotFound", "no such resource");
    std::string name = parts.size() > ns + 3 ? parts[ns + 3] : "";
    bool scale = parts.size() > ns + 4 && parts[ns + 4] == "scale";
    json body = json::parse(request.body(), nullptr, false);
    if (method == "GET" && name.empty()) {
      std::string selector, version;
      bool watch = false;
      for (absl::string_view kv : absl::StrSplit(query, '&')) {
        if (absl::ConsumePrefix(&kv, "labelSelector=")) selector = Decode(kv);
        if (absl::ConsumePrefix(&kv, "resourceVersion=")) version = Decode(kv);
        if (kv == "watch=true") watch = true;
      }
      if (watch) return WatchAnswer(request, *r, selector, version);
      return Answer(request, api.List(*r, selector));
    }
    if (method == "GET") return Answer(request, api.Get(*r, name));
    if (method == "POST" && name.empty()) {
      return Answer(request, api.Create(*r, body), net::http::status::created);
    }
    if (method == "PUT") return Answer(request, api.Replace(*r, body));
    if (method == "PATCH" && scale) {
      if (request[net::http::field::content_type] != "application/merge-patch+json") {
        return Failure(request, 415, "UnsupportedMediaType", "unsupported patch type");
      }
      absl::Status st = api.Scale(*r, name, body["spec"]["replicas"].get<int>());
      return st.ok() ? net::MakeResponse(request, net::http::status::ok, "{}")
                     : FromStatus(request, st);
    }
    if (method == "DELETE") {
      absl::Status st = api.Delete(*r, name);
      return st.ok() ? net::MakeResponse(request, net::http::status::ok, R"({"status":"Success"})")
                     : FromStatus(request, st);
    }
    return Failure(request, 405, "MethodNotAllowed", "method not allowed");
  }

  net::Response WatchAnswer(const net::Request& request, const Resource& r,
                            const std::string& selector, const std::string& version) {
    std::string events;
    absl::Status st = api.Watch(r, selector, version, 0, [&](const WatchEvent& e) {
      absl::StrAppend(&events, json{{"type", e.type}, {"object", e.object}}.dump(), "\n");
      return true;
    });
    if (absl::IsOutOfRange(st)) {  // 200, then the error as the stream's last event
      json gone = {{"kind", "Status"},    {"apiVersion", "v1"},
                   {"status", "Failure"}, {"message", std::string(st.message())},
                   {"reason", "Expired"}, {"code", 410}};
      absl::StrAppend(&events, json{{"type", "ERROR"}, {"object", gone}}.dump(), "\n");
    } else if (!st.ok()) {
      return FromStatus(request, st);
    }
    return net::MakeResponse(request, net::http::status::ok, events);
  }

  static std::string Decode(absl::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  const std::string token_;
  net::asio::io_context io_;
  std::unique_ptr<net::HttpServer> server_;
  std::thread thread_;
};

}  // namespace cortex::backends::kubernetes::testing
