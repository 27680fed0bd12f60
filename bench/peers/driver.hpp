// The workloads of WORKLOADS.md (W1p, W1s, W2, W2p, W3) run against a peer's server (beanstalkd,
// gearmand, RabbitMQ), so its figures can stand next to claw-bench's in the same run.
//
// A peer client supplies a Producer (submits jobs, waits for the server's acknowledgements) and a
// worker loop; this driver forks the worker processes, waits until they are connected, runs the
// clock, reads the server's CPU and peak RSS from /proc, and prints one JSON object on stdout.
// The server itself is started and ended by bench/peers/compare.sh, never here.
//
// Every job's payload is --payload-size bytes (default 128) and starts with its submit time:
// CLOCK_MONOTONIC in nanoseconds, 8 bytes, machine byte order (as claw-bench does).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace claw::peers {

using Status = std::expected<void, std::string>;
template <class T>
using Result = std::expected<T, std::string>;

inline std::unexpected<std::string> Fail(std::string message) {
  return std::unexpected(std::move(message));
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string workload;  // W1p, W1s, W2, W2p, W3
  std::uint64_t n = 0;   // jobs measured (W3: latency samples)
  std::uint32_t window = 1;
  std::uint32_t workers = 0;
  std::uint32_t credit = 1;  // jobs each worker holds at once
  std::uint64_t warmup = 0;  // W3 only
  std::size_t payload_size = 128;
  int server_pid = 0;      // for CPU and peak RSS; 0: not measured
  std::string label;       // the server's configuration, echoed in the JSON
  std::string queue_type;  // RabbitMQ: classic or quorum
};

std::int64_t NowNs();
// A payload of `size` bytes (at least 8) with the current time stamp at its start.
void StampPayload(std::vector<std::byte>& payload);
// The time stamp at the start of a received payload; -1 when it is shorter than 8 bytes.
std::int64_t StampOf(std::span<const std::byte> payload);

// What worker processes report to the driver, through memory shared across fork.
class WorkerLink {
 public:
  // One call per worker process, once every connection it holds is up.
  void Ready();
  // A job was handled and acknowledged to the server. receipt_ns: when the worker got it;
  // stamp_ns: its payload's stamp. Safe from several threads and processes at once.
  void Done(std::int64_t receipt_ns, std::int64_t stamp_ns);
  // The worker gives up; the driver fails the run with this process's stderr message.
  void Failed();

  struct Shared;
  explicit WorkerLink(Shared* shared) : shared_(shared) {}

 private:
  Shared* shared_;
};

class Producer {
 public:
  virtual ~Producer() = default;
  // Submits `count` jobs, each stamped just before it is sent, keeping at most `window`
  // unacknowledged; returns once the server has acknowledged every one (its "accepted" reply:
  // durable or not as the server is configured).
  virtual Status Submit(std::uint64_t count, std::uint32_t window) = 0;
};

struct Peer {
  std::string name;
  // Called once in the driver before anything else (e.g. declare the queue). May be empty.
  std::function<Status(const Options&)> prepare;
  std::function<Result<std::unique_ptr<Producer>>(const Options&)> connect_producer;
  // Runs in a worker process: connects everything it needs to hold options.credit jobs at once,
  // calls link.Ready(), then takes jobs, calling link.Done for each, until it is killed. Returns
  // only on an error.
  std::function<Status(const Options&, WorkerLink&)> run_worker;
};

// Parses the command line (see --help), runs the workload once, prints one JSON line.
int Main(int argc, char** argv, const Peer& peer);

}  // namespace claw::peers
