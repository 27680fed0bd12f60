// The external-command handler behind `claw-worker --exec CMD`: each job runs `/bin/sh -c CMD`
// in a process group of its own.
//
// The command gets the payload on stdin; its stdout is the result (at most max_result_bytes);
// its stderr goes through to the worker's stderr and the last 4 KiB of it become the error text
// when the job fails. Exit 0 is success, exit 100 (HandlerExit::kPermanentFailure) a permanent
// failure, any other exit or a signal a failure that may be retried.
//
// Environment, on top of the worker's: CLAW_JOB_ID, CLAW_JOB_TYPE, CLAW_ATTEMPT, CLAW_TIMEOUT_MS,
// CLAW_PROGRESS_FD (3, an inherited pipe for lines "progress <0-100> [message]" and
// "checkpoint <text>", see progress_line.hpp) and, when the job has a checkpoint from an earlier
// attempt, CLAW_CHECKPOINT_FILE (a temporary file holding it, deleted after the run).
//
// A job with inputs (the outcomes of the jobs it waited for: a group's follow-up, or a job
// submitted with `after`) also gets, in a temporary directory deleted after the run:
//   CLAW_INPUTS      a file of JSON lines, one per input in order:
//                    {"id": "j-3", "state": "succeeded", "result": "...", "error": null}
//                    (result and error are strings or null; invalid UTF-8 becomes U+FFFD)
//   CLAW_INPUTS_DIR  a directory holding, per input, <id>.result (the raw result bytes, for a
//                    succeeded one) or <id>.error (the error text, for any other)
//
// A job that runs past its timeout_ms or is cancelled gets SIGTERM on its whole process group,
// then SIGKILL after kill_grace. When the shell exits, anything it left behind in its group is
// killed. The shell is always reaped.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "worker/job_context.hpp"

namespace claw::worker {

struct ExecOptions {
  std::string command;
  std::size_t max_result_bytes = 16u << 20;
  std::chrono::milliseconds kill_grace{2000};
};

Handler MakeExecHandler(std::string command);
Handler MakeExecHandler(ExecOptions options);

// Runs one job through the command; what the handlers above do.
Outcome RunCommand(const ExecOptions& options, JobContext& context);

}  // namespace claw::worker
