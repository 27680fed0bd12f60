// claw-bench's hidden worker mode: the worker processes of W2, W2p, W3, W4 and scaling are this
// program re-executed with --worker-mode, running claw::worker::Worker with a no-op handler (inline
// on its loop thread unless
// --pool-handlers) (for
// W3, a handler that returns the time it was handed the job).
#pragma once

#include <cstdint>
#include <string>

namespace claw::bench {

struct WorkerModeOptions {
  std::string broker;
  std::uint32_t capacity = 1;
  std::string id;
  std::string type;
  // The handler's result is its receipt time stamp (8 bytes, CLOCK_MONOTONIC ns).
  bool stamp_result = false;
  // Runs the handler on a pool thread (as for an external command) rather than on the loop thread.
  bool pool_handlers = false;
};

// Runs until SIGTERM or SIGINT; the process exit code.
int RunWorkerMode(const WorkerModeOptions& options);

}  // namespace claw::bench
