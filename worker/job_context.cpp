// JobContext, Outcome and the exception boundary around handlers.
#include "worker/job_context.hpp"

#include <algorithm>
#include <exception>
#include <utility>

namespace claw::worker {

JobContext::JobContext(wire::JobDispatch job, ProgressSink sink,
                       std::uint64_t checkpoint_interval_ms)
    : job_(std::move(job)),
      sink_(std::move(sink)),
      checkpoint_interval_ms_(checkpoint_interval_ms) {}

void JobContext::ReportProgress(std::optional<std::uint32_t> percent, std::string message) {
  wire::ProgressReport report{.id = job_.id, .lease = job_.lease};
  if (percent) report.percent = std::min<std::uint32_t>(*percent, 100);
  if (!message.empty()) report.message = std::move(message);
  if (sink_) sink_(std::move(report));
}

void JobContext::SaveCheckpoint(std::string data) {
  wire::ProgressReport report{.id = job_.id, .lease = job_.lease, .checkpoint = std::move(data)};
  if (sink_) sink_(std::move(report));
}

Outcome Outcome::Success(std::string result) {
  return Outcome{.succeeded = true, .result = std::move(result)};
}

Outcome Outcome::Failure(std::string error, bool permanent) {
  return Outcome{.succeeded = false, .error = std::move(error), .permanent = permanent};
}

Outcome RunHandler(const Handler& handler, JobContext& context) {
  try {
    return handler(context);
  } catch (const std::exception& e) {
    return Outcome::Failure(std::string("handler threw: ") + e.what());
  } catch (...) {
    return Outcome::Failure("handler threw a non-standard exception");
  }
}

}  // namespace claw::worker
