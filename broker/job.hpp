// A job as the broker holds it in memory and persists it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "schema/codec.hpp"

namespace claw::broker {

// Jobs are numbered in order of acceptance; the printable id is derived from the number.
using Seq = std::uint64_t;

struct Job {
  Seq seq = 0;
  std::string type;
  std::string payload;
  std::uint32_t priority = wire::kPriorityNormal;
  wire::JobState state = wire::JobState::kQueued;
  std::uint64_t timeout_ms = 0;
  std::uint32_t max_attempts = 1;
  std::uint64_t backoff_ms = 0;
  std::uint64_t max_backoff_ms = 0;
  std::string key;  // idempotency key; empty: none
  std::uint32_t attempts = 0;
  std::int64_t created_at = 0;  // wall clock, Unix ms
  std::int64_t updated_at = 0;  // wall clock, Unix ms
  std::int64_t run_at = 0;      // wall clock, Unix ms; when a scheduled job becomes queued
  std::string worker;           // worker of the current or last attempt
  std::string error;            // last attempt's error
  std::optional<std::string> result;
  std::optional<wire::Progress> progress;
  std::optional<std::string> checkpoint;

  bool operator==(const Job&) const = default;
};

// "j-42" for 42.
std::string FormatJobId(Seq seq);
// The number of a printable id, or nullopt if `id` is not one FormatJobId makes.
std::optional<Seq> ParseJobId(std::string_view id);

// How much of a job a reply carries: LIST leaves out the bytes (a list of thousands must stay
// small), STATUS has everything, the others the result but not the payload.
enum class Detail { kSummary, kWithResult, kFull };

// The job as a client sees it.
wire::JobInfo ToJobInfo(const Job& job, Detail detail);

}  // namespace claw::broker
