#include "cli/cluster_plan.h"

#include "net/http_client.h"

namespace cortex::cli {

bool AnswersAsItself(const std::string& url, pid_t pid) {
  net::HttpCall call;
  call.url = url;
  call.timeout_ms = 1000;
  call.connect_timeout_ms = 300;
  auto result = net::Fetch(call);
  if (!result.ok() || result->status != 200) return false;
  if (pid == 0) return true;
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  return body.is_object() && body.value("pid", 0) == pid;
}

}  // namespace cortex::cli
