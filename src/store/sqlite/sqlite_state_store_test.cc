#include "store/sqlite/sqlite_state_store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace cortex::store {
namespace {

class SqliteStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cortex-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string db() const { return (dir_ / "state.db").string(); }
  std::filesystem::path dir_;
};

ApiRecord Api(const std::string& name, const std::string& api_id, int64_t t) {
  ApiRecord a;
  a.name = name;
  a.kind = "RealtimeAPI";
  a.api_id = api_id;
  a.spec_id = "spec";
  a.predictor_id = "pred";
  a.deployment_id = "dep";
  a.project_id = "proj";
  a.spec_json = "{}";
  a.created_at = 1;
  a.last_updated = t;
  return a;
}

TEST_F(SqliteStateStoreTest, ApisSurviveReopening) {
  {
    auto store = SqliteStateStore::Open(db());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutApi(Api("b", "id1", 10)).ok());
    ASSERT_TRUE((*store)->PutApi(Api("a", "id2", 11)).ok());
    ASSERT_TRUE((*store)->PutApi(Api("a", "id3", 12)).ok());
  }
  auto store = SqliteStateStore::Open(db());
  ASSERT_TRUE(store.ok());
  auto apis = (*store)->ListApis();
  ASSERT_TRUE(apis.ok());
  ASSERT_EQ(apis->size(), 2u);
  EXPECT_EQ((*apis)[0].name, "a");
  EXPECT_EQ((*apis)[0].api_id, "id3");
  auto versions = (*store)->ListVersions("a", 10);
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].api_id, "id3");
  auto missing = (*store)->GetApi("zzz");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(SqliteStateStoreTest, DeletingAnApiLeavesReplicasForTheControlLoop) {
  auto store = SqliteStateStore::Open(db());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutApi(Api("a", "id1", 1)).ok());
  ReplicaRecord r;
  r.id = "a-1";
  r.api_name = "a";
  r.pid = 1234;
  r.port = 4321;
  r.state = ReplicaState::kReady;
  r.ever_ready = true;
  ASSERT_TRUE((*store)->PutReplica(r).ok());
  auto replicas = (*store)->ListReplicas();
  ASSERT_TRUE(replicas.ok());
  ASSERT_EQ(replicas->size(), 1u);
  EXPECT_EQ((*replicas)[0].state, ReplicaState::kReady);
  EXPECT_EQ((*replicas)[0].port, 4321);
  EXPECT_TRUE((*replicas)[0].ever_ready);
  ASSERT_TRUE((*store)->DeleteApi("a").ok());
  EXPECT_TRUE((*store)->ListApis()->empty());
  EXPECT_EQ((*store)->ListReplicas()->size(), 1u);  // stopped and removed by the control loop
  ASSERT_TRUE((*store)->DeleteReplica("a-1").ok());
  EXPECT_TRUE((*store)->ListReplicas()->empty());
}

TEST_F(SqliteStateStoreTest, ReplicaTransitionsAreCompareAndSet) {
  auto store = SqliteStateStore::Open(db());
  ASSERT_TRUE(store.ok());
  ReplicaRecord r;
  r.id = "a-1";
  r.api_name = "a";
  r.state = ReplicaState::kStarting;
  ASSERT_TRUE((*store)->PutReplica(r).ok());
  ReplicaRecord ready = r;
  ready.state = ReplicaState::kReady;
  ready.port = 4000;
  auto first = (*store)->UpdateReplica(ready, ReplicaState::kStarting);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  // A writer that still believes the replica is starting loses.
  ReplicaRecord failed = r;
  failed.state = ReplicaState::kFailed;
  auto second = (*store)->UpdateReplica(failed, ReplicaState::kStarting);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ((*store)->ListReplicas()->at(0).state, ReplicaState::kReady);
  EXPECT_EQ((*store)->ListReplicas()->at(0).port, 4000);
  ReplicaRecord gone = r;
  gone.id = "missing";
  EXPECT_FALSE(*(*store)->UpdateReplica(gone, ReplicaState::kStarting));
}

}  // namespace
}  // namespace cortex::store
