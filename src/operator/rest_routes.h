// The operator's REST API as a table: method + path pattern -> endpoint. OperatorServer maps each
// endpoint to its handler; the table is tested on its own (rest_routes_test.cc).
#pragma once

#include "net/router.h"

namespace cortex::op {

enum class Endpoint {
  kHealth,       // GET /healthz, /verifycortex (open)
  kBatchJobs,    // POST|GET|DELETE /v1/batch/{api}[/{job}] (open: the gateway forwards these)
  kInfo,         // GET /v1/info
  kMetrics,      // GET /metrics
  kRoutes,       // GET /v1/routes?after=N (long poll)
  kHasBundle,    // HEAD /v1/bundles/{id}
  kGetBundle,    // GET /v1/bundles/{id}: the archive (a Kubernetes replica fetches its project)
  kPutBundle,    // PUT /v1/bundles/{id}
  kDeploy,       // POST /v1/deploy
  kPatch,        // POST /v1/patch
  kWorkerCall,   // POST /v1/jobs/{job}/{action}
  kListApis,     // GET /v1/apis
  kGetApi,       // GET /v1/apis/{api}
  kApiHistory,   // GET /v1/apis/{api}/history: the last minutes of traffic and autoscaling
  kDeleteApi,    // DELETE /v1/apis/{api}
  kRefresh,      // POST /v1/apis/{api}/refresh
  kReplicaSpec,  // GET /v1/apis/{api}/replica-spec?predictor_id=P: what a replica pod runs
  kListJobs,     // GET /v1/apis/{api}/jobs
  kGetJob,       // GET /v1/apis/{api}/jobs/{job}
  kStopJob,      // DELETE /v1/apis/{api}/jobs/{job}
  kWorkerSpec,   // GET /v1/apis/{api}/jobs/{job}/worker-spec: what a batch worker pod runs
  kLogs,         // GET /v1/logs/{api}?offset=N[&job=ID]
  kShutdown,     // POST /v1/shutdown
  kDashboard,    // GET /dashboard, /dashboard/{file}: the page's static files (open: no data)
};

// Endpoints that answer without the bearer token.
bool IsOpen(Endpoint endpoint);

const net::Router<Endpoint>& OperatorRoutes();

}  // namespace cortex::op
