// When a failed attempt runs again. Pure: the random draw is a parameter.
#pragma once

#include <cstdint>

namespace claw::broker {

struct RetryPolicy {
  std::uint64_t backoff_ms = 0;      // base
  std::uint64_t max_backoff_ms = 0;  // cap before jitter
  std::uint32_t jitter_percent = 0;  // jitter is uniform in [0, jitter_percent% of the delay]
};

// The wait after failed attempt number `attempt` (1-based):
// min(max_backoff, base * 2^(attempt-1)) plus jitter, where `unit_random` is in [0, 1).
std::uint64_t RetryDelayMs(const RetryPolicy& policy, std::uint32_t attempt, double unit_random);

// What becomes of a job after a failed attempt.
enum class AfterFailure { kRetry, kDead };
AfterFailure Decide(std::uint32_t attempts_made, std::uint32_t max_attempts, bool permanent);

}  // namespace claw::broker
