// What `cortex cluster up` asks the supervisor to run (cluster/supervisor.json), and what the
// supervisor reports back (cluster/cluster.json). Shared by the CLI and the supervisor role.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cortex::cli {

// True when `url` answers 200 and, when `pid` is given, the answer ({"pid": ...}) comes from that
// process (and not from another cluster's daemon that holds the port). Waits 1 s at most.
bool AnswersAsItself(const std::string& url, pid_t pid = 0);

struct SupervisedDaemon {
  std::string role;  // "operator" | "gateway": `cortex <role> <args>`
  std::vector<std::string> args;
  std::string health_url;  // answers 200 with {"pid": <its pid>} when healthy
};

struct ClusterPlan {
  std::vector<SupervisedDaemon> daemons;  // started in this order
  std::string operator_url;               // POST /v1/shutdown when the cluster stops
  std::string token_file;
  nlohmann::json state;  // operator_url, gateway_url, lb_url: copied into cluster.json

  nlohmann::json ToJson() const {
    nlohmann::json daemons_json = nlohmann::json::array();
    for (const auto& d : daemons) {
      daemons_json.push_back({{"role", d.role}, {"args", d.args}, {"health_url", d.health_url}});
    }
    return {{"daemons", daemons_json},
            {"operator_url", operator_url},
            {"token_file", token_file},
            {"state", state}};
  }

  // Malformed plans throw nlohmann::json::exception (the file is ours).
  static ClusterPlan FromJson(const nlohmann::json& json) {
    ClusterPlan plan;
    for (const auto& d : json.at("daemons")) {
      plan.daemons.push_back({d.at("role").get<std::string>(),
                              d.at("args").get<std::vector<std::string>>(),
                              d.at("health_url").get<std::string>()});
    }
    plan.operator_url = json.at("operator_url").get<std::string>();
    plan.token_file = json.at("token_file").get<std::string>();
    plan.state = json.at("state");
    return plan;
  }
};

}  // namespace cortex::cli
