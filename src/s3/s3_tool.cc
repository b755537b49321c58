// cortex_s3_tool: a thin command-line driver over cortex::s3::Client for tests/s3. Prints one
// JSON document on stdout; exits 1 on an S3 error ({"error": {"code", "message"}}), 2 on misuse.
//
//   cortex_s3_tool [--endpoint URL] [--region R] [--anonymous] [--timeout-ms N] COMMAND
//     list s3://bucket/prefix [--max-keys N]   {"objects": [{"key", "size"}], "count"}
//     get s3://bucket/key [--out FILE] [--stream] {"size", "sha256"}
//     put s3://bucket/key (--file FILE | --data TEXT)  {"ok": true}
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
#include <absl/status/status.h>
#include <absl/strings/numbers.h>
#include <openssl/evp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "s3/s3_client.h"

namespace {

using cortex::s3::Client;
using cortex::s3::ClientOptions;
using nlohmann::json;

int Usage(const std::string& why) {
  std::cerr << "cortex_s3_tool: " << why
            << "\nusage: cortex_s3_tool [--endpoint URL] [--region R] [--anonymous] "
               "[--timeout-ms N] (list S3_PATH [--max-keys N] | get S3_PATH [--out FILE] "
               "[--stream] | put S3_PATH (--file FILE | --data TEXT))\n";
  return 2;
}

void Print(const json& document) {
  std::cout << document.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

int Fail(const absl::Status& status) {
  Print({{"error",
          {{"code", absl::StatusCodeToString(status.code())},
           {"message", std::string(status.message())}}}});
  return 1;
}

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ClientOptions options;
  options.credentials = cortex::s3::CredentialsFromEnvironment();
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--anonymous" || arg == "--stream") {
      flags[arg] = "1";
    } else if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) return Usage(arg + " needs a value");
      flags[arg] = argv[++i];
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) return Usage("expected a command and an S3 path");
  if (flags.count("--endpoint")) options.endpoint = flags["--endpoint"];
  if (flags.count("--region")) options.region = flags["--region"];
  if (flags.count("--anonymous")) options.credentials.reset();
  if (flags.count("--timeout-ms") &&
      !absl::SimpleAtoi(flags["--timeout-ms"], &options.timeout_ms)) {
    return Usage("bad --timeout-ms");
  }
  const std::string& command = positional[0];
  absl::StatusOr<cortex::s3::S3Path> path = cortex::s3::ParseS3Path(positional[1]);
  if (!path.ok()) return Fail(path.status());
  Client client(options);

  if (command == "list") {
    int max_keys = 1000;
    if (flags.count("--max-keys") && !absl::SimpleAtoi(flags["--max-keys"], &max_keys)) {
      return Usage("bad --max-keys");
    }
    auto objects = client.List(path->bucket, path->key, max_keys);
    if (!objects.ok()) return Fail(objects.status());
    json list = json::array();
    for (const auto& object : *objects)
      list.push_back({{"key", object.key}, {"size", object.size}});
    Print({{"objects", list}, {"count", objects->size()}});
    return 0;
  }

  if (command == "get") {
    std::ofstream out;
    if (flags.count("--out")) {
      out.open(flags["--out"], std::ios::binary);
      if (!out) return Usage("cannot open " + flags["--out"]);
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
    uint64_t size = 0;
    auto consume = [&](const char* data, size_t n) {
      EVP_DigestUpdate(sha.get(), data, n);
      size += n;
      if (out.is_open()) out.write(data, static_cast<std::streamsize>(n));
      return true;
    };
    if (flags.count("--stream")) {
      absl::Status status = client.GetStreaming(path->bucket, path->key, consume);
      if (!status.ok()) return Fail(status);
    } else {
      absl::StatusOr<std::string> body = client.Get(path->bucket, path->key);
      if (!body.ok()) return Fail(body.status());
      consume(body->data(), body->size());
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    EVP_DigestFinal_ex(sha.get(), digest, &digest_size);
    Print({{"size", size}, {"sha256", Hex(digest, digest_size)}});
    return 0;
  }

  if (command == "put") {
    std::string body;
    if (flags.count("--file")) {
      std::ifstream in(flags["--file"], std::ios::binary);
      if (!in) return Usage("cannot read " + flags["--file"]);
      std::ostringstream contents;
      contents << in.rdbuf();
      body = contents.str();
    } else if (flags.count("--data")) {
      body = flags["--data"];
    } else {
      return Usage("put needs --file or --data");
    }
    absl::Status status = client.Put(path->bucket, path->key, body);
    if (!status.ok()) return Fail(status);
    Print({{"ok", true}, {"size", body.size()}});
    return 0;
  }
  return Usage("unknown command '" + command + "'");
}
