// Logger(): see the header.
#include "worker/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace claw::worker {

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("worker")) return existing;
    try {
      return spdlog::stderr_color_mt("worker");
    } catch (const spdlog::spdlog_ex&) {
      return spdlog::get("worker");
    }
  }();
  return logger;
}

}  // namespace claw::worker
