#include "broker/job.hpp"

#include <charconv>

namespace claw::broker {
namespace {

constexpr std::string_view kJobPrefix = "j-";
constexpr std::string_view kGroupPrefix = "g-";

// The number `digits` spells, nothing else (no sign, no space).
std::optional<std::uint64_t> ParseDigits(std::string_view digits) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return n;
}

// The number after `prefix`: digits without a leading zero, not 0.
std::optional<Seq> ParseNumbered(std::string_view prefix, std::string_view id) {
  if (!id.starts_with(prefix)) return std::nullopt;
  id.remove_prefix(prefix.size());
  if (id.starts_with('0')) return std::nullopt;
  return ParseDigits(id);
}

}  // namespace

std::string FormatJobId(Seq seq) { return std::string(kJobPrefix) + std::to_string(seq); }

std::optional<Seq> ParseJobId(std::string_view id) { return ParseNumbered(kJobPrefix, id); }

std::string FormatGroupId(Seq group) { return std::string(kGroupPrefix) + std::to_string(group); }

std::optional<Seq> ParseGroupId(std::string_view id) { return ParseNumbered(kGroupPrefix, id); }

std::optional<std::uint64_t> ParseMemberRef(std::string_view id) {
  if (!id.starts_with('#')) return std::nullopt;
  return ParseDigits(id.substr(1));
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
  if (detail != Detail::kSummary) info.result = job.result.ToOptional();
  if (detail == Detail::kFull) info.payload = job.payload;
  info.progress = job.progress.ToOptional();
  const wire::JobLinks& links = job.links.value();
  if (links.group != 0) info.group = FormatGroupId(links.group);
  info.follow_up = links.follow_up;
  for (const Seq dependency : links.after) info.after.push_back(FormatJobId(dependency));
  if (!links.after.empty()) info.after_policy = links.after_policy;
  info.hash_key = links.hash_key;
  info.required = links.required;
  info.zone = links.zone;
  info.locality = links.locality;
  info.max_rtt_ms = links.max_rtt_ms;
  return info;
}

}  // namespace claw::broker
