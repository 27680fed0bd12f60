#include "broker/job.hpp"

#include <charconv>

namespace claw::broker {
namespace {
constexpr std::string_view kIdPrefix = "j-";
}

std::string FormatJobId(Seq seq) { return std::string(kIdPrefix) + std::to_string(seq); }

std::optional<Seq> ParseJobId(std::string_view id) {
  if (!id.starts_with(kIdPrefix)) return std::nullopt;
  id.remove_prefix(kIdPrefix.size());
  if (id.empty() || id[0] == '0') return std::nullopt;
  Seq seq = 0;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), seq);
  if (ec != std::errc() || end != id.data() + id.size()) return std::nullopt;
  return seq;
}

wire::JobInfo ToJobInfo(const Job& job, Detail detail) {
  wire::JobInfo info;
  info.id = FormatJobId(job.seq);
  info.type = job.type;
  info.state = job.state;
  info.priority = job.priority;
  info.attempts = job.attempts;
  info.max_attempts = job.max_attempts;
  info.timeout_ms = job.timeout_ms;
  info.backoff_ms = job.backoff_ms;
  info.max_backoff_ms = job.max_backoff_ms;
  info.key = job.key;
  info.created_at = static_cast<std::uint64_t>(job.created_at);
  info.updated_at = static_cast<std::uint64_t>(job.updated_at);
  if (job.state == wire::JobState::kScheduled) info.run_at = static_cast<std::uint64_t>(job.run_at);
  info.worker = job.worker;
  info.error = job.error;
  if (detail != Detail::kSummary) info.result = job.result;
  if (detail == Detail::kFull) info.payload = job.payload;
  info.progress = job.progress;
  return info;
}

}  // namespace claw::broker
