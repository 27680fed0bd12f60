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

// The persisted record; the same struct travels to the standby broker.
using Job = wire::JobRecord;

// "j-42" for 42.
std::string FormatJobId(Seq seq);
// The number of a printable id, or nullopt if `id` is not one FormatJobId makes.
std::optional<Seq> ParseJobId(std::string_view id);

// A group is numbered by its first member: "g-42" for the group whose first job is j-42.
std::string FormatGroupId(Seq group);
std::optional<Seq> ParseGroupId(std::string_view id);
// In a GROUP_SUBMIT's `after`, "#3" names member 3 (0-based) of the same request.
std::optional<std::uint64_t> ParseMemberRef(std::string_view id);

// How much of a job a reply carries: LIST leaves out the bytes (a list of thousands must stay
// small), STATUS has everything, the others the result but not the payload.
enum class Detail { kSummary, kWithResult, kFull };

// The job as a client sees it.
wire::JobInfo ToJobInfo(const Job& job, Detail detail);

}  // namespace claw::broker
