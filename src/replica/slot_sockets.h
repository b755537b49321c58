// The port to a replica's worker slots: a slot id is one connection to one worker process. The
// WorkerPool (worker_pool.h) holds them in a replica process; the Dispatcher (dispatcher.h)
// drives them through this port, and its tests through a fake over socket pairs.
#pragma once

#include "net/asio.h"

namespace cortex::replica {

class SlotSockets {
 public:
  using Socket = net::asio::local::stream_protocol::socket;

  virtual ~SlotSockets() = default;
  virtual Socket& socket(int slot) = 0;
  virtual int process_of(int slot) const = 0;  // for error messages: "worker process p<N>"
  // A slot whose connection failed mid-request: closed; it rejoins only with a new connection.
  virtual void CloseSlot(int slot) = 0;
};

}  // namespace cortex::replica
