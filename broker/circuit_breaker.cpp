#include "broker/circuit_breaker.hpp"

namespace claw::broker {
namespace {

BreakerChange Open(BreakerState& state, std::int64_t now_ms) {
  state.phase = BreakerPhase::kOpen;
  state.opened_ms = now_ms;
  state.failures_in_row = 0;
  state.trials_sent = 0;
  state.trials_succeeded = 0;
  return BreakerChange::kOpened;
}

// Makes the stored phase the phase at `now_ms`.
void Advance(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms) {
  if (state.phase == BreakerPhase::kOpen &&
      PhaseAt(config, state, now_ms) == BreakerPhase::kHalfOpen) {
    state.phase = BreakerPhase::kHalfOpen;
    state.trials_sent = 0;
    state.trials_succeeded = 0;
  }
}

}  // namespace

BreakerPhase PhaseAt(const BreakerConfig& config, const BreakerState& state, std::int64_t now_ms) {
  if (!config.enabled) return BreakerPhase::kClosed;
  if (state.phase == BreakerPhase::kOpen &&
      now_ms - state.opened_ms >= static_cast<std::int64_t>(config.recovery_timeout_ms)) {
    return BreakerPhase::kHalfOpen;
  }
  return state.phase;
}

bool MayDispatch(const BreakerConfig& config, const BreakerState& state, std::int64_t now_ms) {
  switch (PhaseAt(config, state, now_ms)) {
    case BreakerPhase::kClosed:
      return true;
    case BreakerPhase::kOpen:
      return false;
    case BreakerPhase::kHalfOpen:
      // A breaker that has just turned half-open still holds the counts of its last half-open.
      return state.phase == BreakerPhase::kOpen || state.trials_sent < config.half_open_requests;
  }
  return false;
}

void OnDispatch(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms) {
  if (!config.enabled) return;
  Advance(config, state, now_ms);
  if (state.phase == BreakerPhase::kHalfOpen) ++state.trials_sent;
}

BreakerChange OnSuccess(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms) {
  if (!config.enabled) return BreakerChange::kNone;
  Advance(config, state, now_ms);
  switch (state.phase) {
    case BreakerPhase::kClosed:
      state.failures_in_row = 0;
      return BreakerChange::kNone;
    case BreakerPhase::kOpen:
      return BreakerChange::kNone;
    case BreakerPhase::kHalfOpen:
      if (++state.trials_succeeded < config.half_open_requests) return BreakerChange::kNone;
      state = BreakerState{};
      return BreakerChange::kClosed;
  }
  return BreakerChange::kNone;
}

BreakerChange OnFailure(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms) {
  if (!config.enabled) return BreakerChange::kNone;
  Advance(config, state, now_ms);
  switch (state.phase) {
    case BreakerPhase::kClosed:
      if (++state.failures_in_row < config.failure_threshold) return BreakerChange::kNone;
      return Open(state, now_ms);
    case BreakerPhase::kOpen:
      return BreakerChange::kNone;
    case BreakerPhase::kHalfOpen:
      return Open(state, now_ms);
  }
  return BreakerChange::kNone;
}

void OnAbandoned(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms) {
  if (!config.enabled) return;
  Advance(config, state, now_ms);
  if (state.phase == BreakerPhase::kHalfOpen && state.trials_sent > 0) --state.trials_sent;
}

std::optional<std::int64_t> HalfOpensAt(const BreakerConfig& config, const BreakerState& state) {
  if (!config.enabled || state.phase != BreakerPhase::kOpen) return std::nullopt;
  return state.opened_ms + static_cast<std::int64_t>(config.recovery_timeout_ms);
}

std::string_view Name(BreakerPhase phase) {
  switch (phase) {
    case BreakerPhase::kClosed:
      return "closed";
    case BreakerPhase::kOpen:
      return "open";
    case BreakerPhase::kHalfOpen:
      return "half-open";
  }
  return "?";
}

}  // namespace claw::broker
