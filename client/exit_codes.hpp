// How the outcome of a request or a wait becomes claw-client's exit code (the codes are
// `exit_codes.client` in schema/protocol.yaml).
#pragma once

#include "client/connection.hpp"
#include "schema/protocol_constants.hpp"

namespace claw::client {

// 2xx statuses are successes.
bool IsSuccess(wire::StatusCode status);

// OK for 2xx, NOT_FOUND for NOT_FOUND, ERROR for any other refusal.
wire::ClientExit ExitForStatus(wire::StatusCode status);

// OK for succeeded, JOB_DEAD for dead, JOB_CANCELLED for cancelled. `state` must be final.
wire::ClientExit ExitForFinalState(wire::JobState state);

// The exit code of `wait`: the final state's, WAIT_TIMEOUT, or the refusal's status.
wire::ClientExit ExitForWatch(const WatchResult& result);

// The exit code of `group wait` for a group that has ended (every member settled, and the
// follow-up final if there is one): the follow-up's final state decides when there is one;
// otherwise JOB_DEAD if a member is dead, else JOB_CANCELLED if one is cancelled, else OK.
wire::ClientExit ExitForGroup(const wire::GroupInfo& group);

int ToInt(wire::ClientExit code);

}  // namespace claw::client
