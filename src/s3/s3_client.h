// A small S3 client (and any S3-compatible store) over libcurl with AWS Signature Version 4:
// list objects under a prefix and read objects, with path-style addressing and a configurable
// endpoint. Thread-safe: each call uses its own curl handle.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cortex::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // optional
};

struct ClientOptions {
  std::string region = "us-east-1";
  // Empty: https://s3.<region>.amazonaws.com. For S3-compatible stores, e.g. http://127.0.0.1:4568.
  std::string endpoint;
  std::optional<Credentials> credentials;  // none: anonymous requests (unsigned)
  // Limits connecting, and any stall of that long with no bytes moving; a long download that keeps
  // moving is never cut off.
  long timeout_ms = 60'000;
};

// Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, if set.
std::optional<Credentials> CredentialsFromEnvironment();

// Options from the environment: AWS_REGION, CORTEX_S3_ENDPOINT and the credentials above.
ClientOptions ClientOptionsFromEnvironment();

struct S3Path {
  std::string bucket;
  std::string key;  // may be empty (the whole bucket) or a prefix
};
// Parses "s3://bucket/key"; errors name the bad path.
absl::StatusOr<S3Path> ParseS3Path(const std::string& path);

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t last_modified_s = 0;  // <LastModified> as Unix seconds (0 when absent or unreadable)
  std::string etag;             // <ETag> without its quotes
};

// The pieces of a SigV4 signature, exposed so tests can compare them with a reference signer.
struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;                                 // the Authorization header value
  std::vector<std::pair<std::string, std::string>> headers;  // all headers to send
};

// Signs `method url` with an empty or given payload at time `amz_date` ("20130524T000000Z").
SignedRequest SignV4(const std::string& method, const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& payload, const Credentials& credentials,
                     const std::string& region, const std::string& amz_date);

class Client {
 public:
  explicit Client(ClientOptions options) : options_(std::move(options)) {}

  // Every object under `prefix` (ListObjectsV2, following continuation tokens), sorted by key.
  // Errors, each naming s3://bucket/prefix: NotFound (NoSuchBucket), PermissionDenied
  // (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch), Unavailable (endpoint unreachable,
  // 5xx, SlowDown).
  absl::StatusOr<std::vector<ObjectInfo>> List(const std::string& bucket,
                                               const std::string& prefix) const;
  // The same, asking for at most `max_keys` objects a page (S3's default and cap is 1000).
  absl::StatusOr<std::vector<ObjectInfo>> List(const std::string& bucket, const std::string& prefix,
                                               int max_keys) const;
  // The whole object. Errors as for List; NoSuchKey is NotFound naming s3://bucket/key.
  absl::StatusOr<std::string> Get(const std::string& bucket, const std::string& key) const;
  // Streams the object in chunks to `sink` (return false from the sink to stop early; that is OK).
  // If the transfer breaks part way, the sink has seen a prefix of the object and the error is
  // Unavailable.
  absl::Status GetStreaming(const std::string& bucket, const std::string& key,
                            const std::function<bool(const char*, size_t)>& sink) const;
  // Uploads an object (used by tests and tools).
  absl::Status Put(const std::string& bucket, const std::string& key,
                   const std::string& body) const;

 private:
  ClientOptions options_;
};

}  // namespace cortex::s3
