// The worker side of the heartbeat rule, as pure arithmetic on times the caller passes in:
// send HEARTBEAT when nothing was sent for one interval, declare the broker dead after
// `liveness` intervals without hearing anything from it.
#pragma once

#include <chrono>
#include <cstdint>

namespace claw::worker {

class HeartbeatTimer {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts a connection at `now`: as if something had just been sent and received.
  HeartbeatTimer(std::chrono::milliseconds interval, std::uint32_t liveness, Clock::time_point now);

  // Takes the broker's values from WELCOME (zeros keep the current ones).
  void Configure(std::chrono::milliseconds interval, std::uint32_t liveness);

  void Sent(Clock::time_point now) { last_sent_ = now; }
  void Received(Clock::time_point now) { last_received_ = now; }

  bool HeartbeatDue(Clock::time_point now) const { return now >= last_sent_ + interval_; }
  bool PeerDead(Clock::time_point now) const { return now >= DeadAt(); }
  // The earliest time at which one of the two answers above can change.
  Clock::time_point NextDeadline() const;

  std::chrono::milliseconds interval() const { return interval_; }
  std::uint32_t liveness() const { return liveness_; }

 private:
  Clock::time_point DeadAt() const { return last_received_ + interval_ * liveness_; }

  std::chrono::milliseconds interval_;
  std::uint32_t liveness_;
  Clock::time_point last_sent_;
  Clock::time_point last_received_;
};

}  // namespace claw::worker
