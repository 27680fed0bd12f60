// The thread that commits to the store (and, on the active broker of a pair, ships each commit
// to the standby), so that an fsync or a replication round trip never stalls the broker loop.
//
// The loop hands over one task at a time (Submit) and learns the outcome by polling socket()
// and calling TakeResult(). The writer owns its JobStore and Replicator; a task moves to it and
// its result moves back, so the two threads share no data. Between them is a ZeroMQ inproc PAIR
// carrying a pointer.
#pragma once

#include <memory>
#include <optional>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "broker/job_store.hpp"
#include "broker/replicator.hpp"

namespace claw::broker {

struct WriterTask {
  enum class Kind {
    kApply,         // commit `batch` (and ship it to the standby, if there is one)
    kReplaceAll,    // a standby takes the active's snapshot: `jobs` at `epoch`
    kActivate,      // this broker starts serving with `epoch`
    kSendSnapshot,  // stream every job to the standby
  };
  Kind kind = Kind::kApply;
  WriteBatch batch;
  std::vector<Job> jobs;
  std::uint64_t epoch = 0;
};

struct WriterResult {
  WriterTask::Kind kind = WriterTask::Kind::kApply;
  Status status;
  ReplicaStatus replica;  // after the task (all zero without a replicator)
};

class StoreWriter {
 public:
  // `replicator` is null for a standalone broker.
  StoreWriter(zmq::context_t& context, std::unique_ptr<JobStore> store,
              std::unique_ptr<Replicator> replicator);
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;
  // Stops the thread after the task it is on, if any.
  ~StoreWriter();

  // Starts `task`; the loop must not submit again before taking the result.
  void Submit(WriterTask task);
  // Readable (ZMQ_POLLIN) when a result is waiting.
  zmq::socket_t& socket() { return loop_side_; }
  // The outcome of the submitted task, if it is done.
  std::optional<WriterResult> TakeResult();
  // Blocks until the submitted task is done.
  WriterResult WaitResult();

 private:
  void Run(std::unique_ptr<JobStore> store, std::unique_ptr<Replicator> replicator);

  zmq::socket_t loop_side_;
  zmq::socket_t thread_side_;
  std::thread thread_;
};

}  // namespace claw::broker
