#include "backends/kubernetes/kube_rest_client.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>

#include <chrono>
#include <thread>

#include "common/status.h"
#include "common/util.h"
#include "net/http_client.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

bool Retryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

absl::Status StatusFromApi(int http_status, const std::string& body) {
  json status = json::parse(body, nullptr, false);
  std::string message =
      status.is_object() && status.contains("message") && status["message"].is_string()
          ? status["message"].get<std::string>()
          : absl::StrCat("HTTP ", http_status);
  std::string reason = status.is_object() ? status.value("reason", "") : "";
  switch (http_status) {
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return reason == "AlreadyExists" ? absl::AlreadyExistsError(message)
                                       : absl::AbortedError(message);
    case 410:
      return absl::OutOfRangeError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 400:
    case 422:
      return absl::InvalidArgumentError(message);
    default:
      if (http_status == 429 || http_status >= 500) return absl::UnavailableError(message);
      return absl::UnknownError(message);
  }
}

KubeRestClient::KubeRestClient(KubeEndpoint endpoint, std::string namespace_name, int attempts,
                               long timeout_ms)
    : endpoint_(std::move(endpoint)),
      namespace_(std::move(namespace_name)),
      attempts_(attempts),
      timeout_ms_(timeout_ms) {
  while (!endpoint_.server.empty() && endpoint_.server.back() == '/') endpoint_.server.pop_back();
}

std::string KubeRestClient::Path(const Resource& r, const std::string& name) const {
  std::string path = r.namespaced ? absl::StrCat(r.prefix, "/namespaces/",
                                                 net::UrlEncode(namespace_), "/", r.plural)
                                  : absl::StrCat(r.prefix, "/", r.plural);
  if (!name.empty()) absl::StrAppend(&path, "/", net::UrlEncode(name));
  return path;
}

net::HttpCall KubeRestClient::NewCall(const std::string& method, const std::string& path) const {
  net::HttpCall call;
  call.method = method;
  call.url = endpoint_.server + path;
  call.timeout_ms = timeout_ms_;
  call.ca_pem = endpoint_.ca_pem;
  call.client_cert_pem = endpoint_.client_cert_pem;
  call.client_key_pem = endpoint_.client_key_pem;
  call.insecure_skip_verify = endpoint_.insecure_skip_verify;
  call.headers = {{"Accept", "application/json"}};
  std::string token = endpoint_.token;
  if (!endpoint_.token_file.empty()) {
    if (auto fresh = ReadFile(endpoint_.token_file); fresh.ok()) {
      token = std::string(absl::StripAsciiWhitespace(*fresh));
    }
  }
  if (!token.empty()) call.headers.push_back({"Authorization", "Bearer " + token});
  return call;
}

absl::StatusOr<std::string> KubeRestClient::Send(net::HttpCall call, int attempts) {
  auto backoff = std::chrono::milliseconds(250);
  absl::Status last;
  for (int attempt = 1;; ++attempt) {
    auto result = net::Fetch(call);
    if (result.ok() && result->status >= 200 && result->status < 300) {
      return std::move(result->body);
    }
    last = result.ok() ? StatusFromApi(result->status, result->body) : result.status();
    if (!Retryable(last) || attempt >= attempts) break;
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
  std::string path = call.url.substr(endpoint_.server.size());
  return absl::Status(last.code(), absl::StrCat(call.method, " ", path, ": ", last.message()));
}

absl::StatusOr<json> KubeRestClient::Call(const std::string& method, const std::string& path,
                                          const std::string& body,
                                          const std::string& content_type) {
  net::HttpCall call = NewCall(method, path);
  call.body = body;
  if (!content_type.empty()) call.headers.push_back({"Content-Type", content_type});
  ASSIGN_OR_RETURN(std::string answer, Send(std::move(call), attempts_));
  if (answer.empty()) return json::object();
  json parsed = json::parse(answer, nullptr, false);
  if (parsed.is_discarded()) {
    return absl::InternalError(absl::StrCat(method, " ", path, ": the answer is not JSON"));
  }
  return parsed;
}

absl::StatusOr<json> KubeRestClient::Get(const Resource& r, const std::string& name) {
  return Call("GET", Path(r, name), "", "");
}

absl::StatusOr<json> KubeRestClient::List(const Resource& r, const std::string& selector) {
  std::string path = Path(r);
  if (!selector.empty()) absl::StrAppend(&path, "?labelSelector=", net::UrlEncode(selector));
  return Call("GET", path, "", "");
}

absl::StatusOr<json> KubeRestClient::Create(const Resource& r, const json& object) {
  return Call("POST", Path(r), object.dump(), "application/json");
}

absl::StatusOr<json> KubeRestClient::Replace(const Resource& r, const json& object) {
  return Call("PUT", Path(r, object["metadata"].value("name", "")), object.dump(),
              "application/json");
}

absl::Status KubeRestClient::Scale(const Resource& r, const std::string& name, int replicas) {
  json patch = {{"spec", {{"replicas", replicas}}}};
  return Call("PATCH", Path(r, name) + "/scale", patch.dump(), "application/merge-patch+json")
      .status();
}

absl::Status KubeRestClient::Delete(const Resource& r, const std::string& name) {
  // Background: the API answers at once, the garbage collector removes the owned pods.
  json options = {
      {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
  return Call("DELETE", Path(r, name), options.dump(), "application/json").status();
}

absl::Status KubeRestClient::Watch(const Resource& r, const std::string& selector,
                                   const std::string& resource_version, int timeout_seconds,
                                   const std::function<bool(const WatchEvent&)>& on_event) {
  std::string path =
      absl::StrCat(Path(r), "?watch=true&allowWatchBookmarks=true&resourceVersion=",
                   net::UrlEncode(resource_version), "&timeoutSeconds=", timeout_seconds);
  if (!selector.empty()) absl::StrAppend(&path, "&labelSelector=", net::UrlEncode(selector));
  net::HttpCall call = NewCall("GET", path);
  // The server ends the watch after timeoutSeconds; a silent connection past that is dead.
  call.timeout_ms = (timeout_seconds + 30) * 1000L;
  call.cancelled = [this, cancels = watch_cancels_.load()] { return watch_cancels_ != cancels; };
  // Events are JSON objects, one per line; a line may come in pieces.
  std::string pending;
  absl::Status failure;
  call.on_body = [&](std::string_view chunk) {
    pending.append(chunk);
    size_t start = 0;
    for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
      json line = json::parse(pending.begin() + start, pending.begin() + end, nullptr, false);
      // Nothing may throw out of here (it runs inside libcurl): odd events are skipped.
      if (line.is_discarded() || !line.is_object() || !line["type"].is_string() ||
          !line["object"].is_object()) {
        continue;
      }
      WatchEvent event{line["type"].get<std::string>(), std::move(line["object"])};
      if (event.type == "ERROR") {  // a Status object: 410 Gone when the version expired
        const json& code = event.object["code"];
        failure =
            StatusFromApi(code.is_number_integer() ? code.get<int>() : 500, event.object.dump());
        return false;
      }
      if (!on_event(event)) return false;
    }
    pending.erase(0, start);
    return true;
  };
  auto sent = Send(std::move(call), /*attempts=*/1);
  if (!failure.ok()) return Annotate(failure, absl::StrCat("GET ", Path(r), "?watch=true"));
  return sent.status();
}

void KubeRestClient::CancelWatches() { ++watch_cancels_; }

absl::StatusOr<std::string> KubeRestClient::PodLog(const std::string& pod,
                                                   const std::string& container,
                                                   const std::string& since_time,
                                                   int64_t limit_bytes) {
  std::string path =
      absl::StrCat(Path(kPods, pod), "/log?timestamps=true&limitBytes=", limit_bytes);
  if (!container.empty()) absl::StrAppend(&path, "&container=", net::UrlEncode(container));
  if (!since_time.empty()) absl::StrAppend(&path, "&sinceTime=", net::UrlEncode(since_time));
  net::HttpCall call = NewCall("GET", path);
  call.headers[0] = {"Accept", "*/*"};  // the log is text
  // One short try: a pod on a node the API server cannot reach must not hold up the caller (the
  // operator's control loop); the next pass asks again.
  call.timeout_ms = 5'000;
  return Send(std::move(call), /*attempts=*/1);
}

}  // namespace cortex::backends::kubernetes
