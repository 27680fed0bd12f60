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

// The items with `separator` between each two.
std::string Join(const std::vector<std::string>& items, std::string_view separator);

// At most `columns` characters (code points) of `text`, ending in "..." when cut; control
// characters become spaces.
std::string Clip(std::string_view text, std::size_t columns);

// Left-aligned columns two spaces apart, a header row first, no trailing spaces, each row
// ending in a newline.
std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// The `status` listing: one "key: value" line per field the job has, its placement (hash_key,
// requires, zone, locality, max_rtt) when set, and "waiting: <reason>" when the broker says why
// no worker can take it.
std::string FormatJob(const wire::JobInfo& job);

// The `list` table: ID, TYPE, STATE, PRIORITY, ATTEMPTS, UPDATED, WORKER, ERROR (clipped),
// with GROUP ("g-3", or "g-3 follow-up") and AFTER (the ids it waits for) before WORKER when a
// listed job has them.
std::string FormatJobTable(std::span<const wire::JobInfo> jobs);

// The `group status` report: id, settled/total, the count of every state and the follow-up
// (with its short result), then a table of the members (ID, STATE, ATTEMPTS, WORKER, ERROR,
// RESULT, clipped) when the group has them.
std::string FormatGroup(const wire::GroupInfo& group);

// The `cluster` report: role, epoch, strategy, workers (active of total), tasks (running),
// capacity, jobs by state, then the queue table and the worker table: id, types, load
// (in_use/capacity), zone (its zone label), its other labels, health, breaker, RTT, whether it
// is drained, and when it was last heard from.
std::string FormatCluster(const wire::ClusterInfo& cluster);

// What `drain` prints: "drained w1: 2 running jobs moved to other workers" (or "no running job
// moved"), or for `drain --undo` "w1 back in service". Ends in a newline.
std::string FormatDrain(const std::string& worker, bool drained, std::uint64_t moved);

// The live progress line `wait` redraws on a terminal, exactly `width` columns wide (padded
// with spaces so it overwrites a longer earlier line), e.g.
// "[##########----------]  50% downloading  j-12 running 3.2s".
std::string RenderProgressLine(const wire::JobInfo& job, std::size_t width,
                               std::chrono::milliseconds elapsed);

// The line `wait` prints per update when stderr is not a terminal, e.g.
// "j-12 running 50% downloading (3.2s)".
std::string FormatUpdateLine(const wire::JobInfo& job, std::chrono::milliseconds elapsed);

// The line `group wait` redraws on a terminal, exactly `width` columns wide, e.g.
// "[##########----------] 50/100 succeeded 48, dead 2, then j-101 waiting  g-3 3.2s".
std::string RenderGroupProgressLine(const wire::GroupInfo& group, std::size_t width,
                                    std::chrono::milliseconds elapsed);

// The line `group wait` prints per change when stderr is not a terminal, e.g.
// "g-3 50/100 settled (running 2, succeeded 48), follow-up j-101 waiting (3.2s)".
std::string FormatGroupUpdateLine(const wire::GroupInfo& group, std::chrono::milliseconds elapsed);

}  // namespace claw::client
