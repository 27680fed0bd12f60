// The active broker's end of the replication stream, run on the store writer thread right after
// each local commit, so that the order of batches on the standby is the order of commits here.
//
// In sync mode a batch counts as done only when the standby has acknowledged it (or after
// ack_timeout, when the standby is declared out of sync and the active carries on alone). In
// async mode batches are sent without waiting; acknowledgements are collected as they come, and
// what the standby has not acknowledged is the loss window. A standby that is out of sync asks
// for a snapshot (HELLO); SendSnapshot streams every job and then the stream goes on.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <zmq.hpp>

#include "broker/job_store.hpp"

namespace claw::broker {

struct ReplicaStatus {
  bool in_sync = false;
  std::uint64_t position = 0;  // batches committed locally in this epoch
  std::uint64_t acked = 0;     // the standby's last acknowledged position
};

class Replicator {
 public:
  Replicator(zmq::context_t& context, std::string peer_endpoint, bool sync,
             std::chrono::milliseconds ack_timeout, std::uint32_t snapshot_chunk_jobs);

  // This broker starts serving with `epoch`: positions restart, the standby must resync.
  void Activate(std::uint64_t epoch);
  // After `batch` is committed locally.
  void Ship(const WriteBatch& batch);
  // Streams every job in `store` to the standby and waits for it to take them.
  void SendSnapshot(JobStore& store);

  const ReplicaStatus& status() const { return status_; }

 private:
  bool Send(const wire::PeerMessage& message);
  // Reads acknowledgements until `position` is acknowledged or `timeout` passes. With `fresh`,
  // only an acknowledgement received now counts (a snapshot at an already acknowledged position).
  bool AwaitAck(std::uint64_t position, std::chrono::milliseconds timeout, bool fresh = false);
  void Reconnect();

  zmq::context_t& context_;
  std::string endpoint_;
  bool sync_;
  std::chrono::milliseconds ack_timeout_;
  std::uint32_t chunk_jobs_;
  zmq::socket_t socket_;
  std::uint64_t epoch_ = 0;
  ReplicaStatus status_;
};

}  // namespace claw::broker
