#include "broker/retry_policy.hpp"

#include <algorithm>

namespace claw::broker {

std::uint64_t RetryDelayMs(const RetryPolicy& policy, std::uint32_t attempt, double unit_random) {
  // Doubling stops once it reaches the cap, so the shift never overflows.
  std::uint64_t delay = policy.backoff_ms;
  for (std::uint32_t i = 1; i < attempt && delay < policy.max_backoff_ms; ++i) delay *= 2;
  delay = std::min(delay, policy.max_backoff_ms);
  const double jitter = static_cast<double>(delay) * policy.jitter_percent / 100.0 * unit_random;
  return delay + static_cast<std::uint64_t>(jitter);
}

AfterFailure Decide(std::uint32_t attempts_made, std::uint32_t max_attempts, bool permanent) {
  if (permanent || attempts_made >= max_attempts) return AfterFailure::kDead;
  return AfterFailure::kRetry;
}

}  // namespace claw::broker
