// A replica set of a one-line Python RealtimeAPI, for the tests that drive the backend.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "backends/backend.h"
#include "config/api_config.h"

namespace cortex::backends::kubernetes::testing {

inline ReplicaSetSpec IrisReplicaSet(int replicas) {
  config::ParseOptions options;
  options.provider = "kubernetes";
  auto apis = config::ParseApiConfigs(
      "- name: iris\n  kind: RealtimeAPI\n  predictor: {type: python, path: p.py}\n", options);
  EXPECT_TRUE(apis.ok()) << apis.status();
  ReplicaSetSpec set;
  set.api = std::make_shared<config::ApiConfig>(apis.ok() ? apis->at(0) : config::ApiConfig());
  set.api_name = "iris";
  set.predictor_id = "p1";
  set.deployment_id = "d1";
  set.replicas = replicas;
  return set;
}

}  // namespace cortex::backends::kubernetes::testing
