// A circuit breaker per worker: a worker whose jobs keep failing gets no jobs for a while, then a
// few trial jobs, and all of them again only once the trials succeed. Pure: time is a parameter.
//
//   phase      event                                          next phase
//   closed     failure, failures in a row < failureThreshold  closed
//   closed     failure, failures in a row = failureThreshold  open       (kOpened)
//   closed     success                                        closed     (failure count reset)
//   open       recoveryTimeout passed since it opened         half-open  (seen by PhaseAt)
//   open       success or failure                             open       (ignored: those jobs
//                                                                          were sent before)
//   half-open  dispatch, trials sent < halfOpenRequests       half-open  (one trial more)
//   half-open  success, successes < halfOpenRequests          half-open
//   half-open  success, successes = halfOpenRequests          closed     (kClosed)
//   half-open  failure                                        open       (kOpened, new timeout)
//
// Closing needs halfOpenRequests successes while half-open, not just the first one: with
// halfOpenRequests = 3 the worker has shown three jobs through before it gets its full share
// again. Any result reported while half-open counts, whichever phase its job was sent in: a
// success is evidence the worker works. A trial that ends with no verdict (cancelled, or its
// worker's lease dropped for another reason) must be handed back with OnAbandoned, or its slot
// would stay taken.
//
// Disabled, the breaker stays closed and every worker may take jobs.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace claw::broker {

struct BreakerConfig {
  bool enabled = true;
  std::uint32_t failure_threshold = 5;
  std::uint64_t recovery_timeout_ms = 30000;
  std::uint32_t half_open_requests = 3;
  bool operator==(const BreakerConfig&) const = default;
};

enum class BreakerPhase { kClosed, kOpen, kHalfOpen };

struct BreakerState {
  BreakerPhase phase = BreakerPhase::kClosed;  // as last changed; PhaseAt gives it at a time
  std::uint32_t failures_in_row = 0;           // while closed
  std::int64_t opened_ms = 0;                  // when it last opened
  std::uint32_t trials_sent = 0;               // while half-open
  std::uint32_t trials_succeeded = 0;          // while half-open
};

enum class BreakerChange { kNone, kOpened, kClosed };

// The phase at `now_ms`: an open breaker whose recovery timeout has passed is half-open.
BreakerPhase PhaseAt(const BreakerConfig& config, const BreakerState& state, std::int64_t now_ms);
// May this worker be sent a job now? Closed: yes. Open: no. Half-open: while trials are left.
bool MayDispatch(const BreakerConfig& config, const BreakerState& state, std::int64_t now_ms);
// A job was sent to the worker (MayDispatch said yes): counts a trial when half-open.
void OnDispatch(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms);
// A job on the worker succeeded or failed (a failed attempt, including a timed-out lease).
BreakerChange OnSuccess(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms);
BreakerChange OnFailure(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms);
// A trial (a job sent while half-open) ended with no verdict: its trial slot is free again.
void OnAbandoned(const BreakerConfig& config, BreakerState& state, std::int64_t now_ms);

// When an open breaker turns half-open; nullopt unless it is open.
std::optional<std::int64_t> HalfOpensAt(const BreakerConfig& config, const BreakerState& state);

// "closed", "open" or "half-open".
std::string_view Name(BreakerPhase phase);

}  // namespace claw::broker
