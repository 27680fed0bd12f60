#include "broker/health.hpp"

#include <cassert>

namespace claw::broker {
namespace {

HealthChange Failure(const HealthConfig& config, HealthState& state) {
  state.outstanding.reset();
  state.answers_in_row = 0;
  ++state.failures_in_row;
  if (state.healthy && state.failures_in_row >= config.unhealthy_threshold) {
    state.healthy = false;
    return HealthChange::kBecameUnhealthy;
  }
  return HealthChange::kNone;
}

}  // namespace

HealthState NewHealthState(const HealthConfig& config, std::int64_t now_ms) {
  HealthState state;
  state.next_check_ms = now_ms + static_cast<std::int64_t>(config.interval_ms);
  return state;
}

bool Due(const HealthConfig&, const HealthState& state, std::int64_t now_ms) {
  return !state.outstanding && now_ms >= state.next_check_ms;
}

void OnSent(const HealthConfig& config, HealthState& state, std::uint64_t check_id,
            std::int64_t now_ms) {
  assert(!state.outstanding);
  state.outstanding = check_id;
  state.sent_ms = now_ms;
  state.next_check_ms = now_ms + static_cast<std::int64_t>(config.interval_ms);
}

HealthChange OnReply(const HealthConfig& config, HealthState& state, std::uint64_t check_id,
                     std::int64_t now_ms) {
  if (state.outstanding != check_id) return HealthChange::kNone;
  // An answer that arrives at or after the timeout is as good as lost, even before OnTick saw it.
  if (now_ms - state.sent_ms >= static_cast<std::int64_t>(config.timeout_ms)) {
    return Failure(config, state);
  }
  state.outstanding.reset();
  const std::int64_t rtt = now_ms - state.sent_ms;
  state.rtt_ms = rtt;
  state.smoothed_rtt_ms = state.smoothed_rtt_ms
                              ? *state.smoothed_rtt_ms + (rtt - *state.smoothed_rtt_ms) / 8.0
                              : static_cast<double>(rtt);
  state.failures_in_row = 0;
  ++state.answers_in_row;
  if (!state.healthy && state.answers_in_row >= config.healthy_threshold) {
    state.healthy = true;
    return HealthChange::kBecameHealthy;
  }
  return HealthChange::kNone;
}

HealthChange OnTick(const HealthConfig& config, HealthState& state, std::int64_t now_ms) {
  if (!state.outstanding) return HealthChange::kNone;
  if (now_ms - state.sent_ms < static_cast<std::int64_t>(config.timeout_ms)) {
    return HealthChange::kNone;
  }
  return Failure(config, state);
}

std::int64_t NextDeadline(const HealthConfig& config, const HealthState& state) {
  if (state.outstanding) return state.sent_ms + static_cast<std::int64_t>(config.timeout_ms);
  return state.next_check_ms;
}

std::string_view HealthName(const HealthState& state) {
  return state.healthy ? "healthy" : "unhealthy";
}

}  // namespace claw::broker
