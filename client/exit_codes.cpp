// Exit-code mapping; see exit_codes.hpp.
#include "client/exit_codes.hpp"

#include <cassert>
#include <cstdint>
#include <string>

namespace claw::client {

bool IsSuccess(wire::StatusCode status) {
  const auto code = static_cast<int>(status);
  return code >= 200 && code < 300;
}

wire::ClientExit ExitForStatus(wire::StatusCode status) {
  if (IsSuccess(status)) return wire::ClientExit::kOk;
  if (status == wire::StatusCode::kNotFound) return wire::ClientExit::kNotFound;
  return wire::ClientExit::kError;
}

wire::ClientExit ExitForFinalState(wire::JobState state) {
  switch (state) {
    case wire::JobState::kSucceeded:
      return wire::ClientExit::kOk;
    case wire::JobState::kDead:
      return wire::ClientExit::kJobDead;
    case wire::JobState::kCancelled:
      return wire::ClientExit::kJobCancelled;
    case wire::JobState::kQueued:
    case wire::JobState::kScheduled:
    case wire::JobState::kWaiting:
    case wire::JobState::kRunning:
      break;
  }
  assert(false && "ExitForFinalState needs a final state");
  return wire::ClientExit::kError;
}

wire::ClientExit ExitForWatch(const WatchResult& result) {
  switch (result.end) {
    case WatchResult::End::kFinal:
      return ExitForFinalState(result.job->state);
    case WatchResult::End::kTimedOut:
      return wire::ClientExit::kWaitTimeout;
    case WatchResult::End::kRefused:
      return ExitForStatus(result.refusal.status);
  }
  return wire::ClientExit::kError;
}

wire::ClientExit ExitForGroup(const wire::GroupInfo& group) {
  if (group.follow_up) return ExitForFinalState(group.follow_up->state);
  if (wire::CountOf(group.counts, wire::JobState::kDead) > 0) return wire::ClientExit::kJobDead;
  if (wire::CountOf(group.counts, wire::JobState::kCancelled) > 0) {
    return wire::ClientExit::kJobCancelled;
  }
  return wire::ClientExit::kOk;
}

int ToInt(wire::ClientExit code) { return static_cast<int>(code); }

}  // namespace claw::client
