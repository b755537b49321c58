// KubeRestClient's Watch through real sockets: a stream of events parsed in order (also a line
// that arrives in two pieces), the 410 ERROR event as OutOfRange, a watch from a List's version
// against FakeApiServer, cancellation of a watch blocked on a silent server (also PodWatch's
// stop), and the backend learning its pods through a watch over HTTP.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "backends/kubernetes/kube_rest_client.h"
#include "backends/kubernetes/kubernetes_backend.h"
#include "backends/kubernetes/pod_watch.h"
#include "backends/kubernetes/testing/fake_api_server.h"
#include "backends/kubernetes/testing/replica_sets.h"
#include "config/api_config.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// An HTTP server on a raw socket that answers by script, one connection at a time: to write an
// answer in pieces, or nothing at all.
class ScriptedServer {
 public:
  using Script = std::function<void(int fd, const std::string& head, ScriptedServer& server)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), length), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    stopping = true;
    thread_.join();
    ::close(listener_);
  }

  KubeEndpoint endpoint() const {
    KubeEndpoint endpoint;
    endpoint.server = absl::StrCat("http://127.0.0.1:", port_);
    return endpoint;
  }
  static void Write(int fd, std::string_view text) {
    ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
  }
  // Says nothing until the client closes the connection (or the server stops).
  void Hold(int fd) {
    while (!stopping) {
      pollfd p{fd, POLLIN, 0};
      char c;
      if (::poll(&p, 1, 10) > 0 && ::recv(fd, &c, 1, 0) <= 0) return;
    }
  }

  std::atomic<bool> stopping{false};
  std::atomic<int> requests{0};
  std::mutex mu;
  std::vector<std::string> heads;  // the requests' heads, under mu

 private:
  void Run() {
    while (!stopping) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      std::string head;
      char c;
      while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1) head += c;
      {
        std::lock_guard lock(mu);
        heads.push_back(head);
      }
      ++requests;
      script_(fd, head, *this);
      ::close(fd);
    }
  }

  Script script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

constexpr const char* kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";

std::string Event(const std::string& type, const std::string& name, const std::string& version) {
  return json{{"type", type},
              {"object", {{"metadata", {{"name", name}, {"resourceVersion", version}}}}}}
             .dump() +
         "\n";
}

void WaitFor(const std::function<bool()>& done) {
  for (auto deadline = Clock::now() + std::chrono::seconds(10); !done() && Clock::now() < deadline;)
    std::this_thread::sleep_for(milliseconds(5));
}

TEST(KubeRestWatch, EventsArriveInOrderAndA410ErrorEventIsOutOfRange) {
  ScriptedServer server([](int fd, const std::string&, ScriptedServer&) {
    std::string modified = Event("MODIFIED", "a", "12");
    ScriptedServer::Write(fd, kStreamHead);
    ScriptedServer::Write(fd, Event("ADDED", "a", "11") + modified.substr(0, 20));
    std::this_thread::sleep_for(milliseconds(50));  // the line's rest comes in a later read
    ScriptedServer::Write(fd, modified.substr(20) + Event("BOOKMARK", "", "13"));
    std::this_thread::sleep_for(milliseconds(50));
    json gone = {{"kind", "Status"},
                 {"code", 410},
                 {"reason", "Expired"},
                 {"message", "too old resource version: 10 (12)"}};
    ScriptedServer::Write(fd, Event("DELETED", "a", "14") +
                                  json{{"type", "ERROR"}, {"object", gone}}.dump() + "\n" +
                                  Event("ADDED", "after-the-error", "15"));
  });
  KubeRestClient client(server.endpoint(), "cortex");
  std::vector<std::string> seen;
  absl::Status st = client.Watch(kPods, "apiKind=RealtimeAPI", "10", 60, [&](const WatchEvent& e) {
    seen.push_back(absl::StrCat(e.type, " ", e.object["metadata"]["name"].get<std::string>(), "@",
                                e.object["metadata"]["resourceVersion"].get<std::string>()));
    return true;
  });
  EXPECT_TRUE(absl::IsOutOfRange(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("too old resource version"));
  EXPECT_THAT(seen, ElementsAre("ADDED a@11", "MODIFIED a@12", "BOOKMARK @13", "DELETED a@14"));
  std::lock_guard lock(server.mu);
  EXPECT_THAT(
      server.heads[0],
      HasSubstr("GET /api/v1/namespaces/cortex/pods?watch=true&allowWatchBookmarks=true"
                "&resourceVersion=10&timeoutSeconds=60&labelSelector=apiKind%3DRealtimeAPI"));
}

TEST(KubeRestWatch, WatchesFromAListsVersionUntilItExpires) {
  testing::FakeApiServer server;
  KubeRestClient client(server.endpoint(), "cortex");
  auto pod = [](const std::string& name, const std::string& app) {
    return json{{"metadata", {{"name", name}, {"labels", {{"app", app}}}}}};
  };
  {
    std::lock_guard lock(server.mu);
    server.api.Put(kPods, pod("a", "x"));
  }
  auto list = client.List(kPods, "app=x");
  ASSERT_TRUE(list.ok()) << list.status();
  std::string version = (*list)["metadata"]["resourceVersion"];
  {
    std::lock_guard lock(server.mu);
    server.api.Put(kPods, pod("b", "x"));
    server.api.Put(kPods, pod("c", "y"));  // not selected
    ASSERT_TRUE(server.api.Delete(kPods, "a").ok());
  }
  std::vector<std::string> seen;
  auto record = [&](const WatchEvent& e) {
    seen.push_back(e.type + " " + e.object["metadata"]["name"].get<std::string>());
    return true;
  };
  EXPECT_TRUE(client.Watch(kPods, "app=x", version, 5, record).ok());
  EXPECT_THAT(seen, ElementsAre("ADDED b", "DELETED a"));
  {
    std::lock_guard lock(server.mu);
    server.api.Compact();
  }
  absl::Status expired = client.Watch(kPods, "app=x", version, 5, record);
  EXPECT_TRUE(absl::IsOutOfRange(expired)) << expired;
}

TEST(KubeRestWatch, CancelWatchesEndsAWatchBlockedOnASilentServer) {
  ScriptedServer server([](int fd, const std::string&, ScriptedServer& s) { s.Hold(fd); });
  KubeRestClient client(server.endpoint(), "cortex");
  absl::Status result;
  std::thread watcher(
      [&] { result = client.Watch(kPods, "", "1", 60, [](const WatchEvent&) { return true; }); });
  WaitFor([&] { return server.requests == 1; });
  auto start = Clock::now();
  client.CancelWatches();
  watcher.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(absl::IsCancelled(result)) << result;
}

TEST(KubeRestWatch, APodWatchStopsPromptlyWhileItsWatchWaits) {
  ScriptedServer server([](int fd, const std::string& head, ScriptedServer& s) {
    if (head.find("watch=true") != std::string::npos) return s.Hold(fd);
    std::string list = R"({"kind":"PodList","metadata":{"resourceVersion":"7"},)"
                       R"("items":[{"metadata":{"name":"a","resourceVersion":"5"}}]})";
    ScriptedServer::Write(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", list.size(),
                                           "\r\nConnection: close\r\n\r\n", list));
  });
  KubeRestClient client(server.endpoint(), "cortex");
  PodWatch watch(client, "apiKind=RealtimeAPI");
  WaitFor([&] { return server.requests == 2; });  // the list, then the watch from its version
  {
    std::lock_guard lock(server.mu);
    ASSERT_EQ(server.requests, 2);
    ASSERT_GE(server.heads.size(), 2u);
  }
  auto snapshot = watch.Snapshot();
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ((*snapshot)["items"][0]["metadata"]["name"], "a");
  auto start = Clock::now();
  watch.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  std::lock_guard lock(server.mu);
  EXPECT_THAT(server.heads[1], HasSubstr("resourceVersion=7"));
}

TEST(KubeRestWatch, TheBackendLearnsItsPodsThroughAWatchOverHttp) {
  testing::FakeApiServer server;
  KubeRestClient client(server.endpoint(), "cortex");
  ReplicaSetSpec set = testing::IrisReplicaSet(1);
  KubernetesBackendOptions backend_options;
  backend_options.watch_pods = true;
  backend_options.pod_watch.idle_wait = milliseconds(10);
  KubernetesBackend backend(client, config::KubernetesConfig(), backend_options);
  backend.SyncReplicaSets({set});
  {
    std::lock_guard lock(server.mu);
    server.api.Put(kPods, {{"metadata",
                            {{"name", "api-iris-1"},
                             {"labels",
                              {{"apiName", "iris"},
                               {"apiKind", "RealtimeAPI"},
                               {"predictorID", "p1"},
                               {"deploymentID", "d1"}}}}},
                           {"status",
                            {{"phase", "Running"},
                             {"podIP", "10.0.0.1"},
                             {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}});
  }
  auto ready = [&] {
    auto replicas = backend.SyncReplicaSets({set})[0].replicas;
    return replicas.size() == 1 && replicas[0].state == ReplicaState::kReady;
  };
  WaitFor(ready);
  ASSERT_TRUE(ready());
  {
    std::lock_guard lock(server.mu);
    server.requests.clear();
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ready());
  std::lock_guard lock(server.mu);
  int pod_lists = 0;
  for (const auto& r : server.requests) {
    if (r.starts_with("GET /api/v1/namespaces/cortex/pods?labelSelector")) ++pod_lists;
  }
  EXPECT_EQ(pod_lists, 0);  // the passes read the watch's cache
}

}  // namespace
}  // namespace cortex::backends::kubernetes
