// A whole control plane over fakes, for unit tests: the in-memory store, the fake backend, a
// fake clock, and real services (spec cache, bundle store, logs, deploy, reconciler, views) in a
// temporary data directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backends/testing/fake_backend.h"
#include "bundle/bundle.h"
#include "common/testing/fake_clock.h"
#include "common/testing/temp_dir.h"
#include "common/util.h"
#include "operator/api_views.h"
#include "operator/deploy_service.h"
#include "operator/reconciler.h"
#include "store/testing/fake_state_store.h"

namespace cortex::op::testing {

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "project");
    std::ofstream(dir_ / "project" / "predictor.py") << "class PythonPredictor: pass\n";
    bundles_ = std::make_unique<BundleStore>((dir_ / "data").string());
    logs_ = std::make_unique<ApiLogs>((dir_ / "data").string());
    ReconcilerOptions options;
    options.lb_url = "http://127.0.0.1:8889";
    options.gateway_url = "http://127.0.0.1:8888";
    reconciler_ = std::make_unique<Reconciler>(options, store_, specs_, backend_, *logs_, clock_);
    deploys_ = std::make_unique<DeployService>(DeployOptions{}, store_, specs_, *bundles_, *logs_,
                                               *reconciler_, clock_);
    views_ = std::make_unique<ApiViews>(ViewOptions{"", "http://127.0.0.1:8889"}, store_, specs_,
                                        *reconciler_, *logs_);
  }

  // Uploads the project and deploys `yaml`; returns the per-API results.
  absl::StatusOr<nlohmann::json> Deploy(const std::string& yaml, bool force = false) {
    auto files = bundle::ListProjectFiles(dir_ / "project", "");
    if (!files.ok()) return files.status();
    auto bytes = bundle::CreateBundle(dir_ / "project", *files);
    if (!bytes.ok()) return bytes.status();
    std::string id = Sha256Hex(*bytes);
    if (absl::Status st = bundles_->Put(id, *bytes); !st.ok()) return st;
    return deploys_->Deploy({{"config", yaml},
                             {"config_file_name", "cortex.yaml"},
                             {"project_id", id},
                             {"force", force}});
  }
  std::string LogOf(const std::string& api) {
    auto text = ReadFile(logs_->ApiLogPath(api));
    return text.ok() ? *text : "";
  }

  cortex::testing::TempDir dir_{"cortex-cp"};
  store::testing::FakeStateStore store_;
  backends::testing::FakeBackend backend_;
  cortex::testing::FakeClock clock_;
  SpecCache specs_;
  std::unique_ptr<BundleStore> bundles_;
  std::unique_ptr<ApiLogs> logs_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<DeployService> deploys_;
  std::unique_ptr<ApiViews> views_;
};

constexpr const char* kIris = R"(
- name: iris
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
  autoscaling:
    min_replicas: 2
    max_replicas: 4
)";

}  // namespace cortex::op::testing
