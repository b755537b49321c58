#include "gateway/route_table.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <stdexcept>

namespace cortex::gateway {

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::Build(int64_t version,
                                                                    std::vector<ApiRoute> apis) {
  auto table = std::make_shared<RouteTable>();
  table->version_ = version;
  for (ApiRoute& route : apis) {
    int total_weight = 0;
    for (const SplitTarget& t : route.targets) total_weight += std::max(0, t.weight);
    if (route.is_splitter() && total_weight <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("route table: splitter ", route.name, " has no positive weight"));
    }
    if (table->by_endpoint_.count(route.endpoint) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("route table: endpoint ", route.endpoint, " is used twice"));
    }
    table->by_name_[route.name] = table->apis_.size();
    table->by_endpoint_[route.endpoint] = table->apis_.size();
    table->apis_.push_back(std::move(route));
  }
  return std::shared_ptr<const RouteTable>(std::move(table));
}

namespace {

// An integer field in [min, max]: a float, a bool or a value out of range is refused (converting
// it would be undefined or would truncate).
int64_t CheckedInt(const nlohmann::json& value, int64_t min, int64_t max, const char* what) {
  if (!value.is_number_integer() ||
      (value.is_number_unsigned() ? value.get<uint64_t>() > static_cast<uint64_t>(max)
                                  : value.get<int64_t>() > max || value.get<int64_t>() < min)) {
    throw std::invalid_argument(absl::StrCat(what, " must be an integer from ", min, " to ", max,
                                             " (got ", value.dump(), ")"));
  }
  return value.get<int64_t>();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("route table: not a JSON object");
  std::vector<ApiRoute> apis;
  int64_t version = 0;
  try {
    version = json.value("version", int64_t{0});
    for (const auto& api : json.value("apis", nlohmann::json::array())) {
      ApiRoute route;
      route.name = api.at("name").get<std::string>();
      route.endpoint = api.at("endpoint").get<std::string>();
      route.api_gateway = api.value("api_gateway", std::string("public"));
      route.metrics_key = api.value("metrics_key", std::string());
      for (const auto& r : api.value("replicas", nlohmann::json::array())) {
        route.replicas.push_back({r.at("id").get<std::string>(), r.at("host").get<std::string>(),
                                  static_cast<uint16_t>(CheckedInt(r.at("port"), 1, 65535, "port")),
                                  r.value("unix_socket", std::string())});
      }
      route.batch = api.value("batch", false);
      for (const auto& t : api.value("targets", nlohmann::json::array())) {
        route.targets.push_back({t.at("api").get<std::string>(),
                                 static_cast<int>(CheckedInt(t.at("weight"), 0, 100, "weight"))});
      }
      apis.push_back(std::move(route));
    }
  } catch (const std::exception& e) {  // nlohmann's, and CheckedInt's
    return absl::InvalidArgumentError(absl::StrCat("route table: ", e.what()));
  }
  return Build(version, std::move(apis));
}

nlohmann::json RouteTable::ToJson() const {
  nlohmann::json apis = nlohmann::json::array();
  for (const auto& api : apis_) {
    nlohmann::json replicas = nlohmann::json::array();
    for (const auto& r : api.replicas) {
      nlohmann::json replica = {{"id", r.id}, {"host", r.host}, {"port", r.port}};
      if (!r.unix_socket.empty()) replica["unix_socket"] = r.unix_socket;
      replicas.push_back(std::move(replica));
    }
    nlohmann::json entry = {{"name", api.name},
                            {"endpoint", api.endpoint},
                            {"api_gateway", api.api_gateway},
                            {"metrics_key", api.metrics_key},
                            {"replicas", std::move(replicas)}};
    if (api.batch) entry["batch"] = true;
    if (api.is_splitter()) {
      nlohmann::json targets = nlohmann::json::array();
      for (const auto& t : api.targets) targets.push_back({{"api", t.api}, {"weight", t.weight}});
      entry["targets"] = std::move(targets);
    }
    apis.push_back(std::move(entry));
  }
  return {{"version", version_}, {"apis", std::move(apis)}};
}

const ApiRoute* RouteTable::Find(std::string_view path) const {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto it = by_endpoint_.find(std::string(path));
  return it == by_endpoint_.end() ? nullptr : &apis_[it->second];
}

const ApiRoute* RouteTable::FindByName(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &apis_[it->second];
}

size_t PickWeighted(const std::vector<int>& weights, std::mt19937_64& rng) {
  int total = 0;
  for (int w : weights) total += std::max(0, w);
  int pick = std::uniform_int_distribution<int>(0, total - 1)(rng);
  for (size_t i = 0; i < weights.size(); ++i) {
    pick -= std::max(0, weights[i]);
    if (pick < 0) return i;
  }
  return weights.size() - 1;
}

size_t PickLeastOutstanding(const std::vector<int64_t>& outstanding, std::mt19937_64& rng) {
  int64_t best = outstanding[0];
  size_t ties = 0;
  size_t chosen = 0;
  for (size_t i = 0; i < outstanding.size(); ++i) {
    if (outstanding[i] < best) {
      best = outstanding[i];
      ties = 1;
      chosen = i;
    } else if (outstanding[i] == best) {
      // Reservoir sampling picks uniformly among the ties in one pass.
      ++ties;
      if (std::uniform_int_distribution<size_t>(0, ties - 1)(rng) == 0) chosen = i;
    }
  }
  return chosen;
}

}  // namespace cortex::gateway
