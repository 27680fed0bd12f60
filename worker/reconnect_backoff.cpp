// ReconnectBackoff: see the header.
#include "worker/reconnect_backoff.hpp"

#include <algorithm>

namespace claw::worker {

std::chrono::milliseconds ReconnectBackoff::Next(double random) {
  const std::chrono::milliseconds base = base_;
  base_ = std::min(base_ * 2, kMax);
  const double fraction = std::clamp(random, 0.0, 1.0);
  const auto jitter = static_cast<std::int64_t>(static_cast<double>(base.count()) * kJitterPercent /
                                                100.0 * fraction);
  return base + std::chrono::milliseconds(jitter);
}

}  // namespace claw::worker
