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

int ToInt(wire::ClientExit code);

}  // namespace claw::client
