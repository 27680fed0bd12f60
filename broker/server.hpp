// The broker's I/O shell: a ROUTER socket, the store writer thread and the clock around a Core.
//
// One loop: receive what is waiting, let the Core decide, hand the next batch to the writer
// when it is idle, send what the Core produced, then sleep in zmq_poll exactly until the next
// deadline or the next message. Nothing in the loop blocks on the disk.
#pragma once

#include <atomic>
#include <memory>
#include <zmq.hpp>

#include "broker/config.hpp"
#include "broker/core.hpp"
#include "broker/store_writer.hpp"

namespace claw::broker {

class Server {
 public:
  // Opens the data directory (locked against a second broker), recovers the jobs in it and
  // binds the endpoint.
  static Result<std::unique_ptr<Server>> Start(const BrokerConfig& config);
  ~Server();

  // Serves until `stop` is set, then commits what is pending and returns.
  Status Run(const std::atomic<bool>& stop);

  // The endpoint actually bound (for tcp://127.0.0.1:*).
  std::string endpoint();

 private:
  struct PrivateTag {};

 public:
  explicit Server(PrivateTag) {}

 private:
  void Flush(Now now);

  BrokerConfig config_;
  int lock_fd_ = -1;
  zmq::context_t context_{1};
  std::unique_ptr<JobStore> reader_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<Core> core_;
  zmq::socket_t router_;
  wire::DecodeLimits limits_;
};

// The time now, on both clocks.
Now ClockNow();

}  // namespace claw::broker
