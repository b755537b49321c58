#include "backends/kubernetes/kube_credentials.h"

#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "common/status.h"
#include "common/util.h"

namespace cortex::backends::kubernetes {

namespace {

namespace fs = std::filesystem;

// The entry of `list` (clusters, users, contexts) named `name`, as its inner map.
absl::StatusOr<YAML::Node> Named(const YAML::Node& root, const char* list,
                                 const std::string& name) {
  const YAML::Node items = root[list];
  if (items && items.IsSequence()) {
    for (const auto& item : items) {
      if (item["name"] && item["name"].as<std::string>() == name) {
        const char* inner = std::string(list) == "clusters" ? "cluster"
                            : std::string(list) == "users"  ? "user"
                                                            : "context";
        return item[inner] ? item[inner] : YAML::Node(YAML::NodeType::Map);
      }
    }
  }
  return absl::NotFoundError(
      absl::StrCat("the kubeconfig has no ", list, " entry named \"", name, "\""));
}

std::string Str(const YAML::Node& node, const char* key) {
  return node[key] && node[key].IsScalar() ? node[key].as<std::string>() : "";
}

// `<key>-data` (base64) or the file `<key>` (relative to the kubeconfig's directory).
absl::StatusOr<std::string> Material(const YAML::Node& node, const std::string& key,
                                     const fs::path& base) {
  std::string data = Str(node, (key + "-data").c_str());
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(absl::StrCat(key, "-data is not valid base64"));
    }
    return decoded;
  }
  std::string file = Str(node, key.c_str());
  if (file.empty()) return std::string();
  fs::path path = fs::path(file).is_absolute() ? fs::path(file) : base / file;
  auto text = ReadFile(path);
  if (!text.ok()) return Annotate(text.status(), key);
  return *text;
}

}  // namespace

absl::StatusOr<KubeEndpoint> LoadKubeconfig(const std::string& path, const std::string& context) {
  fs::path file = path;
  if (file.empty()) {
    const char* env = std::getenv("KUBECONFIG");
    const char* home = std::getenv("HOME");
    // A KUBECONFIG list: its first file (merging several is not supported).
    file = env != nullptr && *env != '\0' ? std::string(env).substr(0, std::string(env).find(':'))
                                          : absl::StrCat(home ? home : "", "/.kube/config");
  }
  auto text = ReadFile(file);
  if (!text.ok()) return Annotate(text.status(), "kubeconfig");
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", e.what()));
  }
  auto fail = [&](const absl::Status& st) { return Annotate(st, file.string()); };
  std::string name = context.empty() ? Str(root, "current-context") : context;
  if (name.empty()) {
    return fail(absl::InvalidArgumentError("no current-context; name one with --context"));
  }
  auto ctx = Named(root, "contexts", name);
  if (!ctx.ok()) return fail(ctx.status());
  auto cluster = Named(root, "clusters", Str(*ctx, "cluster"));
  if (!cluster.ok()) return fail(cluster.status());
  KubeEndpoint endpoint;
  endpoint.server = Str(*cluster, "server");
  if (endpoint.server.empty()) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("cluster ", Str(*ctx, "cluster"), " has no server")));
  }
  endpoint.namespace_name = Str(*ctx, "namespace");
  endpoint.insecure_skip_verify = Str(*cluster, "insecure-skip-tls-verify") == "true";
  fs::path base = file.parent_path();
  auto ca = Material(*cluster, "certificate-authority", base);
  if (!ca.ok()) return fail(ca.status());
  endpoint.ca_pem = *ca;
  if (std::string user_name = Str(*ctx, "user"); !user_name.empty()) {
    auto user = Named(root, "users", user_name);
    if (!user.ok()) return fail(user.status());
    if ((*user)["exec"] || (*user)["auth-provider"]) {
      return fail(absl::UnimplementedError(absl::StrCat(
          "user ", user_name,
          " gets its credentials from a plugin (exec or auth-provider), which is not supported: "
          "use a kubeconfig with a token or a client certificate (e.g. a service account's)")));
    }
    endpoint.token = Str(*user, "token");
    if (std::string token_file = Str(*user, "tokenFile");
        endpoint.token.empty() && !token_file.empty()) {
      auto token = ReadFile(token_file);
      if (!token.ok()) return fail(Annotate(token.status(), "tokenFile"));
      endpoint.token = std::string(absl::StripAsciiWhitespace(*token));
    }
    auto cert = Material(*user, "client-certificate", base);
    if (!cert.ok()) return fail(cert.status());
    auto key = Material(*user, "client-key", base);
    if (!key.ok()) return fail(key.status());
    endpoint.client_cert_pem = *cert;
    endpoint.client_key_pem = *key;
  }
  return endpoint;
}

absl::StatusOr<KubeEndpoint> InClusterEndpoint(const std::string& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0') {
    return absl::FailedPreconditionError(
        "not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)");
  }
  KubeEndpoint endpoint;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = absl::StrCat("[", h, "]");  // IPv6
  endpoint.server = absl::StrCat("https://", h, ":", port && *port ? port : "443");
  endpoint.token_file = dir + "/token";
  ASSIGN_OR_RETURN(std::string token, ReadFile(endpoint.token_file));
  endpoint.token = std::string(absl::StripAsciiWhitespace(token));
  ASSIGN_OR_RETURN(endpoint.ca_pem, ReadFile(dir + "/ca.crt"));
  if (auto ns = ReadFile(dir + "/namespace"); ns.ok()) {
    endpoint.namespace_name = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return endpoint;
}

}  // namespace cortex::backends::kubernetes
