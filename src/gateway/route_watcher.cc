#include "gateway/route_watcher.h"

#include <absl/strings/str_cat.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "net/http_client.h"

namespace cortex::gateway {

void RouteWatcher::Run(const std::atomic<bool>& stop) {
  int64_t version = -1;
  bool reported_down = false;
  while (!stop.load()) {
    net::HttpCall call;
    call.url = absl::StrCat(operator_url_, "/v1/routes?after=", version);
    call.headers = {{"Authorization", "Bearer " + token_}};
    call.timeout_ms = 30'000;
    call.connect_timeout_ms = 1000;
    auto result = net::Fetch(call);
    auto table = result.ok() && result->status == 200
                     ? RouteTable::FromJson(nlohmann::json::parse(result->body, nullptr, false))
                     : absl::StatusOr<std::shared_ptr<const RouteTable>>(absl::UnavailableError(
                           result.ok() ? result->body : std::string(result.status().message())));
    if (!table.ok()) {
      if (!reported_down) {
        std::cout << "[gateway] cannot reach the operator (" << table.status().message()
                  << "); serving with the last route table" << std::endl;
        reported_down = true;
      }
      for (int i = 0; i < 10 && !stop.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    reported_down = false;
    if ((*table)->version() != version) {
      version = (*table)->version();
      apply_(*table);
    }
  }
}

}  // namespace cortex::gateway
