// The server roles of the cortex executable: `cortex operator`, `cortex gateway`,
// `cortex replica`. Each runs until SIGTERM/SIGINT and returns the exit code. And
// `cortex worker-setup`, which starts a batch worker; `cortex replica-pod` and `cortex
// worker-pod`, what the Kubernetes provider's pods run (pod_roles.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cortex::apps {

struct OperatorRoleFlags {
  std::string data_dir;
  std::string host = "127.0.0.1";
  int port = 8890;
  std::string token_file;
  std::string gateway_url;
  std::string lb_url;
  std::string api_gateway = "public";
  std::string python = "/usr/bin/python3";
  int64_t autoscaler_tick_ms = 10'000;
  // The Kubernetes provider (docs/kubernetes.md): the backend applies Deployments, Services and
  // Jobs in `namespace_name` through the API found in the pod (or in `kubeconfig`/`context`).
  std::string provider = "local";
  std::string namespace_name;  // empty: cluster.yaml's
  std::string
      cluster_config;      // config::ClusterConfig as JSON; empty: <data_dir>/cluster-config.json
  std::string kubeconfig;  // empty: the pod's service account
  std::string context;
};
int RunOperator(const OperatorRoleFlags& flags);

struct GatewayRoleFlags {
  std::string host = "127.0.0.1";
  int port = 8888;
  int lb_port = 0;
  int timeout_ms = 29'000;
  std::string operator_url;
  std::string token_file;
  std::string cluster_config;  // config::ClusterConfig as JSON; none: the defaults
};
int RunGateway(const GatewayRoleFlags& flags);

struct ReplicaRoleFlags {
  std::string id;
  std::string spec;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  std::string socket_dir;
  std::string unix_socket;
  std::string runtime_dir;
  std::string python = "/usr/bin/python3";
  std::string data_dir;  // the cluster's: requirements.txt venvs go below it
  int64_t max_log_line = 64 << 10;
};
int RunReplica(const ReplicaRoleFlags& flags);

// `cortex replica-pod`: a replica on the Kubernetes provider (backends/kubernetes/manifests.h
// renders the pods that run it; docs/kubernetes.md). Fetches what the replica runs from the
// operator (the API's configuration for `predictor_id`, and its project, checked against its
// sha256), then runs it as `cortex replica` would. Waits up to `wait_s` for the operator.
struct ReplicaPodRoleFlags {
  std::string operator_url;
  std::string token_file;
  std::string api;
  std::string predictor_id;
  std::string id;  // default: $POD_NAME, else the host name
  std::string host = "0.0.0.0";
  int port = 8888;
  std::string data_dir = "/var/cortex";
  std::string python = "/usr/bin/python3";
  int wait_s = 120;
};
int RunReplicaPod(const ReplicaPodRoleFlags& flags);

// `cortex worker-pod`: a batch worker in a Kubernetes Job's pod. Fetches the job's spec and the
// API's project from the operator, then runs the worker as `cortex worker-setup` does (dependency
// files, models, then the batch runtime leasing batches from the operator).
struct WorkerPodRoleFlags {
  std::string operator_url;
  std::string token_file;
  std::string api;
  std::string job;
  std::string worker;  // default: $POD_NAME, else the host name
  std::string data_dir = "/var/cortex";
  std::string python = "/usr/bin/python3";
  int wait_s = 120;
};
int RunWorkerPod(const WorkerPodRoleFlags& flags);

// `cortex worker-setup`: runs the project's dependency files (replica/project_setup.h), then
// execs the interpreter they leave (the API's, or its venv's) with `args`. For batch workers.
struct WorkerSetupRoleFlags {
  std::string id;  // prefixes the output lines
  std::string project_dir;
  std::string python = "/usr/bin/python3";
  std::string data_dir;
  std::string spec;  // the worker's spec: its models are fetched first (if it has any)
  std::vector<std::string> args;
};
int RunWorkerSetup(const WorkerSetupRoleFlags& flags);

// Where the cortex_runtime Python package is: $CORTEX_PYTHON_RUNTIME_DIR, else
// <exe>/../share/cortex/python, else the source tree.
std::string DefaultRuntimeDir();

}  // namespace cortex::apps
