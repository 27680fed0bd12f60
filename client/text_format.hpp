// What claw-client prints for people: a job as a key: value listing, tables of jobs, queues and
// workers, and the lines that show a job's progress during `wait`. Pure functions of their
// arguments (times are rendered in the local time zone, as the TZ environment sets it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema/codec.hpp"

namespace claw::client {

// "2024-05-01 12:00:03" in the local time zone.
std::string FormatLocalTime(std::uint64_t unix_ms);

// "0.4s", "3.2s", "1m05s", "2h03m".
std::string FormatElapsed(std::chrono::milliseconds elapsed);

// Whether bytes can be shown as text: valid UTF-8 with no control characters but tab, newline
// and carriage return.
bool IsPrintable(std::string_view bytes);

// At most `columns` characters (code points) of `text`, ending in "..." when cut; control
// characters become spaces.
std::string Clip(std::string_view text, std::size_t columns);

// Left-aligned columns two spaces apart, a header row first, no trailing spaces, each row
// ending in a newline.
std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// The `status` listing: one "key: value" line per field the job has.
std::string FormatJob(const wire::JobInfo& job);

// The `list` table: ID, TYPE, STATE, PRIORITY, ATTEMPTS, UPDATED, WORKER, ERROR (clipped).
std::string FormatJobTable(std::span<const wire::JobInfo> jobs);

// The `cluster` report: role, workers, capacity, jobs by state, then the queue and worker
// tables.
std::string FormatCluster(const wire::ClusterInfo& cluster);

// The live progress line `wait` redraws on a terminal, exactly `width` columns wide (padded
// with spaces so it overwrites a longer earlier line), e.g.
// "[##########----------]  50% downloading  j-12 running 3.2s".
std::string RenderProgressLine(const wire::JobInfo& job, std::size_t width,
                               std::chrono::milliseconds elapsed);

// The line `wait` prints per update when stderr is not a terminal, e.g.
// "j-12 running 50% downloading (3.2s)".
std::string FormatUpdateLine(const wire::JobInfo& job, std::chrono::milliseconds elapsed);

}  // namespace claw::client
