#include "backends/kubernetes/kube_api.h"

namespace cortex::backends::kubernetes {

const Resource* ResourceOfKind(std::string_view kind) {
  for (const Resource* r :
       {&kDeployments, &kServices, &kPods, &kJobs, &kNamespaces, &kServiceAccounts, &kRoles,
        &kRoleBindings, &kSecrets, &kConfigMaps, &kPersistentVolumeClaims}) {
    if (kind == r->kind) return r;
  }
  return nullptr;
}

}  // namespace cortex::backends::kubernetes
