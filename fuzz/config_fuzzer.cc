// Fuzzes the cortex.yaml parser (ParseApiConfigs) and the JSON form of a configuration
// (ApiConfig::FromJson). The first byte picks the parse options; the rest is the document.
//
// Checked beyond "no crash": a configuration that parses round-trips through ToJson/FromJson
// unchanged, as api_config.h promises.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "common/network_json.h"
#include "config/api_config.h"

namespace {

using cortex::config::ApiConfig;
using cortex::config::ParseOptions;

ParseOptions OptionsFor(uint8_t selector) {
  ParseOptions options;
  if (selector & 1) options.provider = "kubernetes";
  if (selector & 2) options.cluster_api_gateway = false;
  if (selector & 4) {
    options.file_exists = [](const std::string& path) { return path.size() % 2 == 0; };
    options.dir_exists = [](const std::string& path) { return path.size() % 3 == 0; };
  }
  return options;
}

[[noreturn]] void Fail(std::string_view what, const nlohmann::json& json) {
  std::cerr << what << ": " << json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            << std::endl;
  std::abort();
}

void CheckRoundTrip(const ApiConfig& api) {
  nlohmann::json shown = api.ToJson();
  absl::StatusOr<ApiConfig> back = ApiConfig::FromJson(shown);
  if (!back.ok()) Fail(std::string(back.status().message()), shown);
  if (back->ToJson() != shown) Fail("ToJson/FromJson changed the configuration", shown);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ParseOptions options = OptionsFor(data[0]);
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  absl::StatusOr<std::vector<ApiConfig>> apis = cortex::config::ParseApiConfigs(text, options);
  if (apis.ok()) {
    for (const ApiConfig& api : *apis) CheckRoundTrip(api);
  }

  // The same bytes as a stored configuration (the operator reads these back from its store).
  absl::StatusOr<nlohmann::json> json = cortex::ParseNetworkJson(text, "the configuration");
  if (json.ok()) {
    absl::StatusOr<ApiConfig> api = ApiConfig::FromJson(*json);
    if (api.ok()) (void)api->ToJson();
  }
  return 0;
}
