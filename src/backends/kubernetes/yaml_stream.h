// Kubernetes objects (JSON values) written as YAML, as `kubectl get -o yaml` prints them: keys in
// order, block style, and every string that a YAML 1.1 reader (Kubernetes' own) would take for a
// number, a boolean or null quoted, so that annotations such as "1" or "true" stay strings.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cortex::backends::kubernetes {

std::string ToYaml(const nlohmann::json& object);

// One document per object, each after a "---" line; `comments[i]` (when given and not empty)
// goes as "# ..." lines above object i.
std::string ToYamlStream(const std::vector<nlohmann::json>& objects,
                         const std::vector<std::string>& comments = {});

}  // namespace cortex::backends::kubernetes
