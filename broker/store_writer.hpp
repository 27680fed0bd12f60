// The thread that commits write batches, so that an fsync never stalls the broker loop.
//
// The loop hands over one batch at a time (Submit) and learns the outcome by polling socket()
// and calling TakeResult(). The writer owns its JobStore; the batch is moved to it and back, so
// the two threads never share data. Between them is a ZeroMQ inproc PAIR carrying a pointer.
#pragma once

#include <memory>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "broker/job_store.hpp"

namespace claw::broker {

class StoreWriter {
 public:
  StoreWriter(zmq::context_t& context, std::unique_ptr<JobStore> store);
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;
  // Stops the thread after the batch it is committing, if any.
  ~StoreWriter();

  // Starts committing `batch`; the loop must not submit again before taking the result.
  void Submit(WriteBatch batch);
  // Readable (ZMQ_POLLIN) when a result is waiting.
  zmq::socket_t& socket() { return loop_side_; }
  // The outcome of the submitted batch, if it is done.
  std::optional<Status> TakeResult();
  // Blocks until the submitted batch is done.
  Status WaitResult();

 private:
  void Run(std::unique_ptr<JobStore> store);

  zmq::socket_t loop_side_;
  zmq::socket_t thread_side_;
  std::thread thread_;
};

}  // namespace claw::broker
