// How long a worker waits before it opens a new connection after losing the broker: 250 ms,
// doubled per failed attempt up to 10 s, plus a random jitter of up to 25% of it so that many
// workers cut off together do not all come back in the same instant. Reset after a WELCOME.
#pragma once

#include <chrono>
#include <cstdint>

namespace claw::worker {

class ReconnectBackoff {
 public:
  static constexpr std::chrono::milliseconds kInitial{250};
  static constexpr std::chrono::milliseconds kMax{10000};
  static constexpr std::int64_t kJitterPercent = 25;

  // The delay before the next attempt; `random` in [0, 1) picks the jitter. Each call doubles the
  // base delay of the following one.
  std::chrono::milliseconds Next(double random);
  void Reset() { base_ = kInitial; }

 private:
  std::chrono::milliseconds base_ = kInitial;
};

}  // namespace claw::worker
