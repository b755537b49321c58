// Follows the operator's route table with long polls (GET /v1/routes?after=<version>) and hands
// each new table to the gateway; while the operator is away it keeps the last one and says so
// once. Run() blocks its own thread until `stop`.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "gateway/route_table.h"

namespace cortex::gateway {

class RouteWatcher {
 public:
  using Apply = std::function<void(std::shared_ptr<const RouteTable>)>;
  RouteWatcher(std::string operator_url, std::string token, Apply apply)
      : operator_url_(std::move(operator_url)),
        token_(std::move(token)),
        apply_(std::move(apply)) {}

  void Run(const std::atomic<bool>& stop);

 private:
  const std::string operator_url_;
  const std::string token_;
  const Apply apply_;
};

}  // namespace cortex::gateway
