// What a job handler sees and returns: the job it runs (JobContext), how it reports progress and
// checkpoints while it runs, how it learns that it should stop, and its Outcome.
//
// A JobContext is shared between the handler's thread and the worker loop: every member function
// is thread-safe. The loop (or a test) builds it with a ProgressSink that receives each report as
// a ready PROGRESS message quoting the job's id and lease.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "schema/codec.hpp"

namespace claw::worker {

// Receives progress reports, on the handler's thread.
using ProgressSink = std::function<void(wire::ProgressReport)>;

class JobContext {
 public:
  // `checkpoint_interval_ms`: how often the broker asks handlers to save a checkpoint (its
  // WELCOME's hint; 0: it gave none).
  JobContext(wire::JobDispatch job, ProgressSink sink, std::uint64_t checkpoint_interval_ms = 0);

  const std::string& id() const { return job_.id; }
  const std::string& type() const { return job_.type; }
  const std::string& payload() const { return job_.payload; }
  std::uint32_t attempt() const { return job_.attempt; }
  // 0: no limit.
  std::uint64_t timeout_ms() const { return job_.timeout_ms; }
  std::uint32_t priority() const { return job_.priority; }
  // The last checkpoint an earlier attempt saved, from which this attempt may resume.
  const std::optional<std::string>& checkpoint() const { return job_.checkpoint; }
  // For a job with dependencies (a group's follow-up, or one submitted with `after`): each
  // dependency's outcome, in the order of its after list. Empty for any other job.
  const std::vector<wire::Input>& inputs() const { return job_.inputs; }
  // How often to call SaveCheckpoint in a long job (0: no hint), so that a job moved to another
  // worker loses at most about this much work.
  std::uint64_t checkpoint_interval_ms() const { return checkpoint_interval_ms_; }

  // Percent is clamped to 0-100; an empty message is not sent.
  void ReportProgress(std::optional<std::uint32_t> percent, std::string message);
  // Opaque state a later attempt of this job receives as checkpoint().
  void SaveCheckpoint(std::string data);

  // Cooperative cancellation: a handler should poll cancelled() and return soon once it is true.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  void RequestCancel() { cancelled_.store(true, std::memory_order_release); }

 private:
  const wire::JobDispatch job_;
  const ProgressSink sink_;
  const std::uint64_t checkpoint_interval_ms_;
  std::atomic<bool> cancelled_ = false;
};

// How a handler's run ended: a result, or an error that may be retried unless permanent.
struct Outcome {
  bool succeeded = false;
  std::string result;
  std::string error;
  bool permanent = false;

  static Outcome Success(std::string result);
  static Outcome Failure(std::string error, bool permanent = false);
};

// Runs one job on a pool thread. An exception it throws is a (retryable) failure.
using Handler = std::function<Outcome(JobContext&)>;

// Calls `handler`, turning an exception into a failure with the exception's message.
Outcome RunHandler(const Handler& handler, JobContext& context);

}  // namespace claw::worker
