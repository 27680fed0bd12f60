// The workloads of WORKLOADS.md (W1p, W1s, W2, W2p, W3, W4, scaling) run against a real broker
// and real worker processes, and the figures they produce.
//
// Each run starts its own broker on a fresh data directory (W4 restarts its broker on the same
// one) and ends every process it started by PID. A run fails, with a message that says what was
// wrong, when a count is wrong (a job not accepted, not completed, a latency sample missing) or a
// deadline passes; timings are reported, never asserted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "schema/result.hpp"

namespace claw::bench {

// Which workload, with what shape. Defaults come from WORKLOADS.md; see DefaultShape.
struct Shape {
  std::string workload;  // W1p, W1s, W2, W2p, W3, W4, scaling, store
  std::uint64_t n = 0;   // jobs measured (W3: latency samples)
  std::uint32_t window = 1;
  std::uint32_t producers = 1;
  std::uint32_t workers = 0;
  std::uint32_t credit = 1;
  std::size_t payload_size = 128;
  std::uint64_t warmup = 0;   // W3: jobs before the measured ones
  std::uint64_t backlog = 0;  // W4: jobs queued for a type no worker serves
};

// The defaults of `workload` (full size, or the small --smoke size).
Shape DefaultShape(const std::string& workload, bool smoke);
// Worker counts of the scaling workload.
std::vector<std::uint32_t> ScalingWorkers();

struct Environment {
  std::string broker_bin;
  std::string self_exe;   // this program, re-executed in worker mode
  std::string data_root;  // each broker gets a fresh directory under it
  std::string durability = "full";
  bool pool_handlers = false;  // workers run their handler on a pool thread, not inline
};

struct Metric {
  std::string key;    // for JSON
  std::string label;  // for text
  double value = 0;
  int decimals = 0;
};

struct Figures {
  Shape shape;
  std::string durability;
  std::string handlers;  // "inline" or "pool" where workers ran; empty otherwise
  int rounds = 1;
  std::vector<Metric> metrics;
  std::vector<std::string> notes;

  const Metric* Find(const std::string& key) const;
};

class Runner {
 public:
  explicit Runner(Environment environment) : env_(std::move(environment)) {}

  // One round of `shape` (for scaling: one worker count, shape.workers).
  Result<Figures> Run(const Shape& shape);

 private:
  Result<Figures> SubmitOnly(const Shape& shape);
  Result<Figures> EndToEnd(const Shape& shape);
  Result<Figures> Latency(const Shape& shape);
  Result<Figures> Backlog(const Shape& shape);
  Result<Figures> StoreOnly(const Shape& shape);
  // A fresh scratch directory name for one broker.
  std::string NextRunName(const std::string& workload);

  Environment env_;
  zmq::context_t context_{1};
  int runs_ = 0;
};

// The median over rounds of each metric (the rounds must share one shape).
Figures MedianOf(const std::vector<Figures>& rounds);

}  // namespace claw::bench
