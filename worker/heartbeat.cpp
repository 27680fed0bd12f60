// HeartbeatTimer: see the header.
#include "worker/heartbeat.hpp"

#include <algorithm>

namespace claw::worker {

HeartbeatTimer::HeartbeatTimer(std::chrono::milliseconds interval, std::uint32_t liveness,
                               Clock::time_point now)
    : interval_(std::max(interval, std::chrono::milliseconds(1))),
      liveness_(std::max<std::uint32_t>(liveness, 1)),
      last_sent_(now),
      last_received_(now) {}

void HeartbeatTimer::Configure(std::chrono::milliseconds interval, std::uint32_t liveness) {
  if (interval.count() > 0) interval_ = interval;
  if (liveness > 0) liveness_ = liveness;
}

HeartbeatTimer::Clock::time_point HeartbeatTimer::NextDeadline() const {
  return std::min(last_sent_ + interval_, DeadAt());
}

}  // namespace claw::worker
