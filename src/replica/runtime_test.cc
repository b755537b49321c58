#include "replica/runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cortex::replica {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

TEST(Runtime, APythonPredictorRunsThePythonRuntime) {
  config::ApiConfig api;
  api.name = "iris";
  api.predictor = config::PredictorConfig{};
  api.predictor->type = "python";
  RuntimeOptions options{"/opt/venv/bin/python", "/srv/runtime", "/run/r.json", "/srv/project"};
  auto runtime = RuntimeFor(api, options);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  EXPECT_EQ((*runtime)->name(), "python");
  RuntimeCommand command = (*runtime)->Command("/tmp/s.sock", 3, 1);
  EXPECT_EQ(command.argv.front(), "/opt/venv/bin/python");
  EXPECT_THAT(command.argv, Contains("cortex_runtime.worker"));
  EXPECT_THAT(command.argv, Contains("/tmp/s.sock"));
  EXPECT_THAT(command.argv, Contains("3"));
  EXPECT_THAT(command.env.at("PYTHONPATH"), HasSubstr("/srv/runtime"));
  EXPECT_EQ(command.working_dir, "/srv/project");
}

TEST(Runtime, OnnxRunsOnThePythonRuntimeAndTensorFlowOnNone) {
  config::ApiConfig api;
  api.predictor = config::PredictorConfig{};
  api.predictor->type = "onnx";
  auto onnx = RuntimeFor(api, {});
  ASSERT_TRUE(onnx.ok()) << onnx.status();
  EXPECT_EQ((*onnx)->name(), "python");
  api.predictor->type = "tensorflow";
  auto tf = RuntimeFor(api, {});
  EXPECT_EQ(tf.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(tf.status().message()), HasSubstr("type tensorflow"));
  api.predictor.reset();
  EXPECT_FALSE(RuntimeFor(api, {}).ok());
}

}  // namespace
}  // namespace cortex::replica
