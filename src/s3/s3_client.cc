#include "s3/s3_client.h"

#include <absl/status/status.h>
#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "s3/internal/responses.h"
#include "s3/internal/uri.h"

namespace cortex::s3 {
namespace {

using internal::UriEncode;

std::string ResourceName(const std::string& bucket, const std::string& key) {
  return absl::StrCat("s3://", bucket, "/", key);
}

std::string Endpoint(const ClientOptions& options) {
  std::string endpoint = options.endpoint.empty()
                             ? absl::StrCat("https://s3.", options.region, ".amazonaws.com")
                             : options.endpoint;
  while (absl::EndsWith(endpoint, "/")) endpoint.pop_back();
  return endpoint;
}

// Path-style: <endpoint>/<bucket>[/<key>], each part percent-encoded the way SigV4 canonicalises
// it, so the bytes on the wire and the signed path agree.
std::string ObjectUrl(const ClientOptions& options, const std::string& bucket,
                      const std::string& key) {
  std::string url = absl::StrCat(Endpoint(options), "/", UriEncode(bucket, false));
  if (!key.empty()) absl::StrAppend(&url, "/", UriEncode(key, true));
  return url;
}

std::string AmzDateNow() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%SZ", &utc);
  return buffer;
}

void InitCurlOnce() {
  // curl_global_init is not thread-safe; a function-local static runs it exactly once.
  static const bool initialised = [] {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  }();
  (void)initialised;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// State shared with the write callback. A 2xx body goes to the sink; any other body is an S3
// error document and is kept for StatusFromErrorResponse.
struct Transfer {
  CURL* curl = nullptr;
  const std::function<bool(const char*, size_t)>* sink = nullptr;
  std::string error_body;
  bool stopped_by_sink = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  long http_status = 0;
  curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status >= 200 && http_status < 300) {
    if (!(*transfer->sink)(data, bytes)) {
      transfer->stopped_by_sink = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    return bytes;
  }
  if (transfer->error_body.size() < (1 << 20)) transfer->error_body.append(data, bytes);
  return bytes;
}

// Sends one request, signed when the client has credentials, and streams a 2xx body to `sink`.
absl::Status Perform(const ClientOptions& options, const std::string& method,
                     const std::string& url, const std::string& payload,
                     std::vector<std::pair<std::string, std::string>> headers,
                     const std::string& resource,
                     const std::function<bool(const char*, size_t)>& sink) {
  InitCurlOnce();
  // Declared before the handle so that everything curl points at outlives curl_easy_cleanup.
  char error_buffer[CURL_ERROR_SIZE] = {0};
  Transfer transfer;
  std::unique_ptr<curl_slist, SlistDeleter> header_list;
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return absl::InternalError(absl::StrCat(resource, ": curl_easy_init failed"));

  if (options.credentials) {
    headers =
        SignV4(method, url, headers, payload, *options.credentials, options.region, AmzDateNow())
            .headers;
  }
  std::vector<std::string> lines;
  for (const auto& [name, value] : headers) {
    // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
    lines.push_back(value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value));
  }
  // curl would otherwise add "Expect: 100-continue" to larger PUTs and wait for the reply.
  lines.push_back("Expect:");
  for (const std::string& line : lines) {
    curl_slist* appended = curl_slist_append(header_list.get(), line.c_str());
    if (appended == nullptr) return absl::ResourceExhaustedError("curl_slist_append failed");
    header_list.release();
    header_list.reset(appended);
  }

  transfer.curl = curl.get();
  transfer.sink = &sink;
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, options.timeout_ms);
  // A stall, not a total: model files can take longer than any fixed deadline to download.
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, std::max(1L, options.timeout_ms / 1000));
  if (method == "PUT") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  } else if (method != "GET") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  CURLcode result = curl_easy_perform(handle);
  long http_status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &http_status);
  if (result == CURLE_WRITE_ERROR && transfer.stopped_by_sink) return absl::OkStatus();
  if (result != CURLE_OK) {
    std::string why = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(result);
    // A status line means the server answered and the transfer broke afterwards.
    const char* what = http_status == 0 ? "cannot reach S3 endpoint " : "transfer broke from ";
    return absl::UnavailableError(absl::StrCat(resource, ": ", what, Endpoint(options), ": ", why));
  }
  if (http_status < 200 || http_status >= 300) {
    return internal::StatusFromErrorResponse(http_status, transfer.error_body, resource);
  }
  return absl::OkStatus();
}

absl::Status Fetch(const ClientOptions& options, const std::string& method, const std::string& url,
                   const std::string& payload,
                   std::vector<std::pair<std::string, std::string>> headers,
                   const std::string& resource, std::string* body) {
  std::function<bool(const char*, size_t)> sink = [body](const char* data, size_t size) {
    body->append(data, size);
    return true;
  };
  return Perform(options, method, url, payload, std::move(headers), resource, sink);
}

bool ValidBucketName(const std::string& bucket) {
  // Permissive on purpose: legacy us-east-1 buckets may hold upper case and '_'.
  if (bucket.empty() || bucket.size() > 255) return false;
  return std::all_of(bucket.begin(), bucket.end(), [](unsigned char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_';
  });
}

}  // namespace

std::optional<Credentials> CredentialsFromEnvironment() {
  const char* key_id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (key_id == nullptr || secret == nullptr || *key_id == '\0' || *secret == '\0') {
    return std::nullopt;
  }
  Credentials credentials{key_id, secret, ""};
  if (const char* token = std::getenv("AWS_SESSION_TOKEN"); token != nullptr) {
    credentials.session_token = token;
  }
  return credentials;
}

ClientOptions ClientOptionsFromEnvironment() {
  ClientOptions options;
  if (const char* region = std::getenv("AWS_REGION"); region && *region) options.region = region;
  if (const char* endpoint = std::getenv("CORTEX_S3_ENDPOINT"); endpoint && *endpoint) {
    options.endpoint = endpoint;
  }
  options.credentials = CredentialsFromEnvironment();
  return options;
}

absl::StatusOr<S3Path> ParseS3Path(const std::string& path) {
  constexpr std::string_view kScheme = "s3://";
  if (!absl::StartsWith(path, std::string(kScheme))) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not an S3 path (expected s3://bucket/key)"));
  }
  std::string rest = path.substr(kScheme.size());
  size_t slash = rest.find('/');
  S3Path parsed;
  parsed.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) parsed.key = rest.substr(slash + 1);
  if (parsed.bucket.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' has no bucket name"));
  }
  if (!ValidBucketName(parsed.bucket)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' has an invalid bucket name '", parsed.bucket, "'"));
  }
  return parsed;
}

absl::StatusOr<std::vector<ObjectInfo>> Client::List(const std::string& bucket,
                                                     const std::string& prefix) const {
  return List(bucket, prefix, 1000);
}

absl::StatusOr<std::vector<ObjectInfo>> Client::List(const std::string& bucket,
                                                     const std::string& prefix,
                                                     int max_keys) const {
  const std::string resource = ResourceName(bucket, prefix);
  const std::string base = ObjectUrl(options_, bucket, "");
  std::vector<ObjectInfo> objects;
  std::string token;
  while (true) {
    std::string url = absl::StrCat(base, "?list-type=2&max-keys=", std::max(1, max_keys));
    if (!prefix.empty()) absl::StrAppend(&url, "&prefix=", UriEncode(prefix, false));
    if (!token.empty()) absl::StrAppend(&url, "&continuation-token=", UriEncode(token, false));
    std::string body;
    absl::Status status = Fetch(options_, "GET", url, "", {}, resource, &body);
    if (!status.ok()) return status;
    absl::StatusOr<internal::ListPage> page = internal::ParseListObjectsV2(body);
    if (!page.ok()) {
      return absl::Status(
          page.status().code(),
          absl::StrCat(resource, ": listing: ", std::string(page.status().message())));
    }
    for (ObjectInfo& object : page->objects) objects.push_back(std::move(object));
    if (!page->truncated) break;
    if (page->next_continuation_token.empty() || page->next_continuation_token == token) {
      // Following it would loop forever.
      return absl::InternalError(absl::StrCat(
          resource, ": listing: a truncated page came without a new NextContinuationToken"));
    }
    token = std::move(page->next_continuation_token);
  }
  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return objects;
}

absl::StatusOr<std::string> Client::Get(const std::string& bucket, const std::string& key) const {
  std::string body;
  absl::Status status = Fetch(options_, "GET", ObjectUrl(options_, bucket, key), "", {},
                              ResourceName(bucket, key), &body);
  if (!status.ok()) return status;
  return body;
}

absl::Status Client::GetStreaming(const std::string& bucket, const std::string& key,
                                  const std::function<bool(const char*, size_t)>& sink) const {
  return Perform(options_, "GET", ObjectUrl(options_, bucket, key), "", {},
                 ResourceName(bucket, key), sink);
}

absl::Status Client::Put(const std::string& bucket, const std::string& key,
                         const std::string& body) const {
  std::string ignored;
  // Without it curl would label the body application/x-www-form-urlencoded.
  return Fetch(options_, "PUT", ObjectUrl(options_, bucket, key), body,
               {{"Content-Type", "application/octet-stream"}}, ResourceName(bucket, key), &ignored);
}

}  // namespace cortex::s3
