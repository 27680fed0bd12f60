// The Claw worker library: connects to a broker, announces the job types it runs, and runs each
// JOB the broker sends through a Handler on a fixed pool of `capacity` threads, reporting
// PROGRESS, DONE and FAIL back with the job's lease. With `prefetch`, up to that many more jobs
// wait in arrival order for a free thread; the worker says STARTED as each job starts, and gives
// a waiting job back (RETURNED) when the broker recalls it.
//
//   claw::worker::Worker worker({.brokers = {"tcp://127.0.0.1:5555"}, .id = "w1",
//                                .types = {"resize"}, .capacity = 4},
//                               [](claw::worker::JobContext& job) {
//                                 job.ReportProgress(50, "halfway");
//                                 return claw::worker::Outcome::Success("done");
//                               });
//   std::atomic<bool> stop = false;   // set from a signal handler
//   auto status = worker.Run(stop);
//
// One thread (the caller of Run) owns the ZeroMQ socket; handlers never block it, so the worker
// keeps heartbeating while jobs run. When the broker falls silent for liveness * heartbeat_ms or
// says DISCONNECT, the worker cancels the jobs of that connection (the broker no longer counts
// them as ours, and their outcomes are dropped), waits a backoff and connects again, to the next
// endpoint in `brokers`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "schema/codec.hpp"
#include "schema/result.hpp"
#include "worker/job_context.hpp"

namespace claw::worker {

struct WorkerOptions {
  // ZeroMQ endpoints, tried in turn; "dns://host:port" stands for every address of the name.
  std::vector<std::string> brokers;
  std::string id;
  std::vector<std::string> types;
  std::uint32_t capacity = 1;
  std::uint32_t prefetch = 0;  // jobs held beyond capacity, waiting to start
  // Runs each handler on the loop thread, as each JOB is read, instead of on a pool thread: no
  // thread hand-off per job. Only for handlers that return well within a heartbeat interval and
  // never wait on I/O: while one runs, the worker neither reads nor heartbeats, and it cannot be
  // cancelled. It must report progress during the call, on its thread. `capacity` is then the
  // broker's credit: up to that many JOBs wait in the socket and run in arrival order, so a
  // burst delays heartbeats by their sum. Needs prefetch 0 (nothing waits in the worker).
  bool run_inline = false;
  wire::Labels labels;
  // At shutdown, how long to wait for cancelled handlers to return.
  std::chrono::milliseconds shutdown_grace{5000};
};

class Worker {
 public:
  Worker(WorkerOptions options, Handler handler);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Runs until `stop` is true (looked at least every 100 ms), then says DISCONNECT, cancels the
  // running handlers and returns. Fails at once on bad options (no broker, no type, capacity out
  // or prefetch out of range, prefetch with run_inline, empty or over-long id, an endpoint ZeroMQ
  // refuses).
  Status Run(const std::atomic<bool>& stop);

 private:
  class Loop;
  WorkerOptions options_;
  std::shared_ptr<const Handler> handler_;
};

}  // namespace claw::worker
