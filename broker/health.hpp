// Health checks with hysteresis, one HealthState per worker. Pure: time is a parameter.
//
// The broker sends a worker a check every `interval_ms`; each must be answered within
// `timeout_ms`. A worker becomes unhealthy after `unhealthy_threshold` failed checks in a row and
// healthy again after `healthy_threshold` answered checks in a row, so one lost check does not
// flap it. An unhealthy worker gets no new jobs. A new worker starts healthy: it has just said
// READY.
//
// At most one check is outstanding per worker. The shell's loop, for each worker:
//   OnTick(config, state, now)             -- a check past its timeout fails
//   if (Due(config, state, now)) { send check `id`; OnSent(config, state, id, now); }
//   ... later, when the answer to `id` arrives: OnReply(config, state, id, now)
// and sleeps at most until NextDeadline(config, state).
//
//   state      event                                   next state
//   healthy    failure, failures in a row < threshold  healthy
//   healthy    failure, failures in a row = threshold  unhealthy  (kBecameUnhealthy)
//   healthy    answer                                  healthy    (failure count reset)
//   unhealthy  answer, answers in a row < threshold    unhealthy
//   unhealthy  answer, answers in a row = threshold    healthy    (kBecameHealthy)
//   unhealthy  failure                                 unhealthy  (answer count reset)
// A failure is a check unanswered at sent + timeout. An answer arriving after that, or naming
// another check, is ignored: that check has already counted as failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace claw::broker {

struct HealthConfig {
  std::uint64_t interval_ms = 5000;
  std::uint64_t timeout_ms = 3000;  // at most interval_ms
  std::uint32_t unhealthy_threshold = 3;
  std::uint32_t healthy_threshold = 2;
  bool operator==(const HealthConfig&) const = default;
};

struct HealthState {
  bool healthy = true;
  std::uint32_t failures_in_row = 0;
  std::uint32_t answers_in_row = 0;
  std::optional<std::uint64_t> outstanding;  // the check awaiting its answer
  std::int64_t sent_ms = 0;                  // when `outstanding` was sent
  std::int64_t next_check_ms = 0;            // when the next check is due
  // Round-trip time of the last answered check, and its smoothed value (the RFC 6298 average:
  // srtt += (rtt - srtt) / 8). Absent until a check has been answered.
  std::optional<std::int64_t> rtt_ms;
  std::optional<double> smoothed_rtt_ms;
};

enum class HealthChange { kNone, kBecameUnhealthy, kBecameHealthy };

// The state of a worker that has just joined: healthy, first check due one interval from now.
HealthState NewHealthState(const HealthConfig& config, std::int64_t now_ms);

// True when a check should be sent now: none is outstanding and the interval has passed.
bool Due(const HealthConfig& config, const HealthState& state, std::int64_t now_ms);
// Check `check_id` was sent; the next one is due one interval later.
void OnSent(const HealthConfig& config, HealthState& state, std::uint64_t check_id,
            std::int64_t now_ms);
// The answer to check `check_id` arrived: records its RTT when it is the outstanding check.
HealthChange OnReply(const HealthConfig& config, HealthState& state, std::uint64_t check_id,
                     std::int64_t now_ms);
// Fails the outstanding check if its timeout has passed.
HealthChange OnTick(const HealthConfig& config, HealthState& state, std::int64_t now_ms);

// When OnTick or Due next has something to do.
std::int64_t NextDeadline(const HealthConfig& config, const HealthState& state);

// "healthy" or "unhealthy", for the cluster view.
std::string_view HealthName(const HealthState& state);

}  // namespace claw::broker
