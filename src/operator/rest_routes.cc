#include "operator/rest_routes.h"

namespace cortex::op {

bool IsOpen(Endpoint endpoint) {
  return endpoint == Endpoint::kHealth || endpoint == Endpoint::kBatchJobs ||
         endpoint == Endpoint::kDashboard;
}

const net::Router<Endpoint>& OperatorRoutes() {
  static const net::Router<Endpoint> routes = [] {
    net::Router<Endpoint> r;
    r.Add("GET", "/healthz", Endpoint::kHealth)
        .Add("GET", "/verifycortex", Endpoint::kHealth)
        .Add("POST", "/v1/batch/{api}", Endpoint::kBatchJobs)
        .Add("GET", "/v1/batch/{api}", Endpoint::kBatchJobs)
        .Add("DELETE", "/v1/batch/{api}", Endpoint::kBatchJobs)
        .Add("GET", "/v1/batch/{api}/{job}", Endpoint::kBatchJobs)
        .Add("DELETE", "/v1/batch/{api}/{job}", Endpoint::kBatchJobs)
        .Add("GET", "/v1/info", Endpoint::kInfo)
        .Add("GET", "/metrics", Endpoint::kMetrics)
        .Add("GET", "/v1/routes", Endpoint::kRoutes)
        .Add("HEAD", "/v1/bundles/{id}", Endpoint::kHasBundle)
        .Add("GET", "/v1/bundles/{id}", Endpoint::kGetBundle)
        .Add("PUT", "/v1/bundles/{id}", Endpoint::kPutBundle)
        .Add("POST", "/v1/deploy", Endpoint::kDeploy)
        .Add("POST", "/v1/patch", Endpoint::kPatch)
        .Add("POST", "/v1/jobs/{job}/{action}", Endpoint::kWorkerCall)
        .Add("GET", "/v1/apis", Endpoint::kListApis)
        .Add("GET", "/v1/apis/{api}", Endpoint::kGetApi)
        .Add("GET", "/v1/apis/{api}/history", Endpoint::kApiHistory)
        .Add("DELETE", "/v1/apis/{api}", Endpoint::kDeleteApi)
        .Add("POST", "/v1/apis/{api}/refresh", Endpoint::kRefresh)
        .Add("GET", "/v1/apis/{api}/replica-spec", Endpoint::kReplicaSpec)
        .Add("GET", "/v1/apis/{api}/jobs/{job}/worker-spec", Endpoint::kWorkerSpec)
        .Add("GET", "/v1/apis/{api}/jobs", Endpoint::kListJobs)
        .Add("GET", "/v1/apis/{api}/jobs/{job}", Endpoint::kGetJob)
        .Add("DELETE", "/v1/apis/{api}/jobs/{job}", Endpoint::kStopJob)
        .Add("GET", "/v1/logs/{api}", Endpoint::kLogs)
        .Add("POST", "/v1/shutdown", Endpoint::kShutdown)
        .Add("GET", "/dashboard", Endpoint::kDashboard)
        .Add("GET", "/dashboard/{file}", Endpoint::kDashboard);
    return r;
  }();
  return routes;
}

}  // namespace cortex::op
