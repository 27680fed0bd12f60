// The worker mode: see the header.
#include "bench/worker_mode.hpp"

#include <signal.h>

#include <atomic>
#include <iostream>

#include "bench/measure.hpp"
#include "worker/log.hpp"
#include "worker/worker.hpp"

namespace claw::bench {
namespace {

std::atomic<bool> stop_requested = false;

extern "C" void OnStopSignal(int) { stop_requested.store(true); }

}  // namespace

int RunWorkerMode(const WorkerModeOptions& options) {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // The library logs every job at info; that would cost more than the no-op handler.
  worker::Logger()->set_level(spdlog::level::warn);

  worker::Handler handler;
  if (options.stamp_result) {
    handler = [](worker::JobContext&) {
      return worker::Outcome::Success(EncodeStamp(MonoNanos()));
    };
  } else {
    handler = [](worker::JobContext&) { return worker::Outcome::Success(""); };
  }
  worker::Worker worker({.brokers = {options.broker},
                         .id = options.id,
                         .types = {options.type},
                         .capacity = options.capacity,
                         .run_inline = !options.pool_handlers},
                        std::move(handler));
  if (auto status = worker.Run(stop_requested); !status) {
    std::cerr << "claw-bench worker " << options.id << ": " << status.error().message << "\n";
    return 1;
  }
  return 0;
}

}  // namespace claw::bench
