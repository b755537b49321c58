// The supervisor role (`cortex supervisor`, started by `cortex cluster up`): runs the operator
// and the gateway of the local cluster and keeps them running.
//
// - It starts them in order from cluster/supervisor.json (cli::ClusterPlan) and records their
//   pids, with its own, in cluster/cluster.json. A daemon that cannot start the first time fails
//   the start: the supervisor stops what it started and exits 1.
// - Afterwards, a daemon that exits, or that does not answer its health check for
//   `wedged_after_s`, is restarted: at once the first time, then with a back-off that doubles up
//   to 10 s and starts anew after a minute of health.
// - On SIGTERM it stops the gateway, asks the operator to stop every replica and exit
//   (POST /v1/shutdown), and exits once both are gone.
#pragma once

#include <string>

namespace cortex::apps {

struct SupervisorFlags {
  std::string cluster_dir;
  int wedged_after_s = 30;
};

int RunSupervisor(const SupervisorFlags& flags);

}  // namespace cortex::apps
