// Where the Kubernetes API is and how to prove who we are: from a kubeconfig (the CLI, outside
// the cluster) or from the pod's service account (the operator, inside it).
#pragma once

#include <absl/status/statusor.h>

#include <string>

namespace cortex::backends::kubernetes {

struct KubeEndpoint {
  std::string server;  // https://host:port
  std::string token;   // bearer token ("" with a client certificate)
  // Read again before each call when set: a pod's service-account token is rotated.
  std::string token_file;
  std::string ca_pem;  // "" : the system's CAs
  std::string client_cert_pem;
  std::string client_key_pem;
  bool insecure_skip_verify = false;
  std::string namespace_name;  // the context's namespace ("" when it names none)
};

// A kubeconfig file ($KUBECONFIG or ~/.kube/config when `path` is empty) at `context` (empty:
// its current-context). Supports server, certificate-authority[-data], insecure-skip-tls-verify,
// and users with token, tokenFile or client-certificate[-data] + client-key[-data]; exec and
// auth-provider plugins are refused with a message (they run programs we do not).
absl::StatusOr<KubeEndpoint> LoadKubeconfig(const std::string& path, const std::string& context);

// The pod's service account: $KUBERNETES_SERVICE_HOST/PORT and the files under
// /var/run/secrets/kubernetes.io/serviceaccount (`dir` for tests).
absl::StatusOr<KubeEndpoint> InClusterEndpoint(
    const std::string& dir = "/var/run/secrets/kubernetes.io/serviceaccount");

}  // namespace cortex::backends::kubernetes
