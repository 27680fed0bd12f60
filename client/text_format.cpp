// Human-readable output of claw-client; see text_format.hpp.
#include "client/text_format.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <utility>

#include "client/json_format.hpp"
#include "schema/duration.hpp"

namespace claw::client {
namespace {

constexpr std::size_t kErrorColumns = 40;
constexpr std::size_t kPayloadColumns = 60;
constexpr std::size_t kBarCells = 20;
constexpr std::size_t kAfterColumns = 30;
constexpr std::size_t kResultColumns = 30;
// The label that names a worker's zone.
constexpr std::string_view kZoneLabel = "zone";

// Characters on screen, counting a UTF-8 sequence as one.
std::size_t Columns(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

// The byte offset where the code point numbered `columns` starts (or the end).
std::size_t OffsetOfColumn(std::string_view text, std::size_t columns) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) continue;
    if (seen == columns) return i;
    ++seen;
  }
  return text.size();
}

std::string PadRight(std::string text, std::size_t columns) {
  const std::size_t have = Columns(text);
  if (have < columns) text.append(columns - have, ' ');
  return text;
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

std::string Attempts(const wire::JobInfo& job) {
  return std::to_string(job.attempts) + "/" + std::to_string(job.max_attempts);
}

std::string ProgressText(const wire::Progress& progress) {
  std::string text;
  if (progress.percent) text = std::to_string(*progress.percent) + "%";
  if (!progress.message.empty()) {
    if (!text.empty()) text += ' ';
    text += Clip(progress.message, std::string::npos);
  }
  return text;
}

// Bytes as text when printable (one trailing newline dropped), otherwise their size.
std::string BytesText(const std::string& bytes, std::size_t max_columns) {
  const bool short_enough = Columns(bytes) <= max_columns;
  if (bytes.empty() || !IsPrintable(bytes) || !short_enough) {
    return "<" + std::to_string(bytes.size()) + " bytes>";
  }
  return bytes.ends_with('\n') ? bytes.substr(0, bytes.size() - 1) : bytes;
}

// "key: value" lines with the values aligned; lines after the first of a multi-line value are
// indented to the value column.
std::string FormatFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t key_columns = 0;
  for (const auto& [key, value] : fields) key_columns = std::max(key_columns, key.size() + 2);
  std::string out;
  for (const auto& [key, value] : fields) {
    std::string line = PadRight(key + ":", key_columns) + value;
    std::size_t newline = 0;
    while ((newline = line.find('\n', newline)) != std::string::npos) {
      line.insert(newline + 1, key_columns, ' ');
      newline += 1;
    }
    while (line.ends_with(' ')) line.pop_back();
    out += line + '\n';
  }
  return out;
}

}  // namespace

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

namespace {

// "gpu=true", one per label in key order, leaving out `skip` (when not empty).
std::vector<std::string> LabelTexts(const wire::Labels& labels, std::string_view skip = {}) {
  std::vector<std::string> texts;
  for (const auto& [name, value] : labels) {
    if (skip.empty() || name != skip) texts.push_back(name + "=" + value);
  }
  return texts;
}

// "g-3" for a member, "g-3 follow-up" for the follow-up.
std::string GroupText(const wire::JobInfo& job) {
  return job.follow_up ? job.group + " follow-up" : job.group;
}

// "j-1, j-2 (all_succeeded)".
std::string AfterText(const wire::JobInfo& job) {
  std::string text = Join(job.after, ", ");
  if (job.after_policy) text += " (" + std::string(wire::Name(*job.after_policy)) + ")";
  return text;
}

// "succeeded 3", one per state in the protocol's order (every one, or only those above zero),
// then any state this client does not know.
std::vector<std::string> CountTexts(const std::map<std::string, std::uint64_t>& counts,
                                    bool every_state) {
  std::vector<std::string> texts;
  for (const auto& state : wire::kJobStates) {
    const std::uint64_t count = wire::CountOf(counts, state.code);
    if (every_state || count > 0)
      texts.push_back(std::string(state.name) + " " + std::to_string(count));
  }
  for (const auto& [name, count] : counts) {
    if (!wire::ParseJobState(name) && (every_state || count > 0)) {
      texts.push_back(name + " " + std::to_string(count));
    }
  }
  return texts;
}

}  // namespace

std::string FormatLocalTime(std::uint64_t unix_ms) {
  const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return std::string(text, length);
}

std::string FormatElapsed(std::chrono::milliseconds elapsed) {
  const std::int64_t ms = std::max<std::int64_t>(elapsed.count(), 0);
  char text[32];
  if (ms < 60'000) {
    std::snprintf(text, sizeof text, "%lld.%llds", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000 / 100));
  } else if (ms < 3'600'000) {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms % 60'000 / 1000));
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms % 3'600'000 / 60'000));
  }
  return text;
}

bool IsPrintable(std::string_view bytes) {
  const bool has_control = std::any_of(bytes.begin(), bytes.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && c != '\t' && c != '\n' && c != '\r') || byte == 0x7f;
  });
  return !has_control && IsValidUtf8(bytes);
}

std::string Clip(std::string_view text, std::size_t columns) {
  std::string clean(text);
  for (char& c : clean) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = ' ';
  }
  if (Columns(clean) <= columns) return clean;
  if (columns < 3) return clean.substr(0, OffsetOfColumn(clean, columns));
  return clean.substr(0, OffsetOfColumn(clean, columns - 3)) + "...";
}

std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back(headers);
  for (const auto& row : rows) {
    std::vector<std::string> clean;
    for (const auto& cell : row) clean.push_back(Clip(cell, std::string::npos));
    cells.push_back(std::move(clean));
  }
  std::vector<std::size_t> widths(headers.size(), 0);
  for (const auto& row : cells) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Columns(row[i]));
    }
  }
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      line += i + 1 < row.size() ? PadRight(row[i], widths[i] + 2) : row[i];
    }
    while (line.ends_with(' ')) line.pop_back();
    out += line + '\n';
  }
  return out;
}

std::string FormatJob(const wire::JobInfo& job) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"id", job.id},
      {"type", job.type},
      {"state", std::string(wire::Name(job.state))},
      {"priority", wire::PriorityName(job.priority)},
      {"attempts", Attempts(job)},
      {"timeout", wire::FormatDuration(static_cast<std::int64_t>(job.timeout_ms))},
      {"backoff", wire::FormatDuration(static_cast<std::int64_t>(job.backoff_ms)) + " (max " +
                      wire::FormatDuration(static_cast<std::int64_t>(job.max_backoff_ms)) + ")"},
  };
  if (!job.key.empty()) fields.emplace_back("key", job.key);
  if (!job.group.empty()) fields.emplace_back("group", GroupText(job));
  if (!job.after.empty()) fields.emplace_back("after", AfterText(job));
  if (!job.hash_key.empty()) fields.emplace_back("hash_key", job.hash_key);
  if (!job.required.empty()) fields.emplace_back("requires", Join(LabelTexts(job.required), ", "));
  if (!job.zone.empty()) fields.emplace_back("zone", job.zone);
  if (job.locality) fields.emplace_back("locality", wire::Name(*job.locality));
  if (job.max_rtt_ms > 0) {
    fields.emplace_back("max_rtt", wire::FormatDuration(static_cast<std::int64_t>(job.max_rtt_ms)));
  }
  if (!job.waiting_reason.empty()) fields.emplace_back("waiting", job.waiting_reason);
  if (!job.worker.empty()) fields.emplace_back("worker", job.worker);
  if (job.progress) fields.emplace_back("progress", ProgressText(*job.progress));
  if (!job.error.empty()) fields.emplace_back("error", job.error);
  fields.emplace_back("created", FormatLocalTime(job.created_at));
  fields.emplace_back("updated", FormatLocalTime(job.updated_at));
  if (job.state == wire::JobState::kScheduled && job.run_at) {
    fields.emplace_back("run_at", FormatLocalTime(*job.run_at));
  }
  if (job.payload) fields.emplace_back("payload", BytesText(*job.payload, kPayloadColumns));
  if (job.result) fields.emplace_back("result", BytesText(*job.result, std::string::npos));
  return FormatFields(fields);
}

std::string FormatJobTable(std::span<const wire::JobInfo> jobs) {
  const bool groups =
      std::any_of(jobs.begin(), jobs.end(), [](const auto& job) { return !job.group.empty(); });
  const bool afters =
      std::any_of(jobs.begin(), jobs.end(), [](const auto& job) { return !job.after.empty(); });
  std::vector<std::string> headers = {"ID", "TYPE", "STATE", "PRIORITY", "ATTEMPTS", "UPDATED"};
  if (groups) headers.push_back("GROUP");
  if (afters) headers.push_back("AFTER");
  headers.insert(headers.end(), {"WORKER", "ERROR"});
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : jobs) {
    std::vector<std::string> row = {job.id,
                                    job.type,
                                    std::string(wire::Name(job.state)),
                                    wire::PriorityName(job.priority),
                                    Attempts(job),
                                    FormatLocalTime(job.updated_at)};
    if (groups) row.push_back(job.group.empty() ? "-" : GroupText(job));
    if (afters) row.push_back(OrDash(Clip(Join(job.after, ","), kAfterColumns)));
    row.push_back(OrDash(job.worker));
    row.push_back(OrDash(Clip(job.error, kErrorColumns)));
    rows.push_back(std::move(row));
  }
  return FormatTable(headers, rows);
}

std::string FormatGroup(const wire::GroupInfo& group) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"group", group.id},
      {"settled", std::to_string(group.settled) + "/" + std::to_string(group.total)},
      {"states", Join(CountTexts(group.counts, true), ", ")},
  };
  if (group.follow_up) {
    const wire::JobInfo& job = *group.follow_up;
    std::string text = job.id + " " + job.type + " " + std::string(wire::Name(job.state));
    if (!job.worker.empty()) text += " on " + job.worker;
    if (!job.error.empty()) text += ": " + Clip(job.error, kErrorColumns);
    fields.emplace_back("follow-up", text);
    if (job.result) fields.emplace_back("result", BytesText(*job.result, kPayloadColumns));
  }
  std::string out = FormatFields(fields);
  if (!group.members) return out;
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : *group.members) {
    rows.push_back(
        {job.id, std::string(wire::Name(job.state)), Attempts(job), OrDash(job.worker),
         OrDash(Clip(job.error, kErrorColumns)),
         job.result ? Clip(BytesText(*job.result, std::string::npos), kResultColumns) : "-"});
  }
  return out + '\n' + FormatTable({"ID", "STATE", "ATTEMPTS", "WORKER", "ERROR", "RESULT"}, rows);
}

std::string FormatCluster(const wire::ClusterInfo& cluster) {
  const std::uint64_t running = wire::CountOf(cluster.jobs, wire::JobState::kRunning);
  std::vector<std::pair<std::string, std::string>> fields;
  if (!cluster.name.empty()) fields.push_back({"cluster", cluster.name});
  fields.insert(fields.end(),
                {
                    {"role", cluster.role},
                    {"epoch", std::to_string(cluster.epoch)},
                    {"strategy", OrDash(cluster.strategy)},
                    {"workers", std::to_string(cluster.workers_active) + " of " +
                                    std::to_string(cluster.workers_total) + " active"},
                    {"tasks", std::to_string(running) + " active"},
                    {"capacity", std::to_string(cluster.capacity_in_use) + " of " +
                                     std::to_string(cluster.capacity_total) + " in use"},
                    {"jobs", Join(CountTexts(cluster.jobs, true), ", ")},
                    {"malformed", std::to_string(cluster.malformed)},
                });
  std::vector<std::string> down;
  std::size_t worker_nodes = 0;
  for (const auto& node : cluster.nodes) {
    if (!node.up) continue;
    ++worker_nodes;
    if (!*node.up) down.push_back(node.id);
  }
  if (worker_nodes > 0) {
    fields.push_back({"nodes", std::to_string(worker_nodes - down.size()) + " of " +
                                   std::to_string(worker_nodes) + " worker nodes up" +
                                   (down.empty() ? "" : " (down: " + Join(down, ", ") + ")")});
  }
  if (cluster.pair) {
    const auto& p = *cluster.pair;
    const std::string heard =
        p.peer_heard_ms ? FormatElapsed(std::chrono::milliseconds(*p.peer_heard_ms)) + " ago"
                        : "never";
    const std::string peer_epoch = p.peer_epoch ? std::to_string(*p.peer_epoch) : "?";
    fields.push_back({"peer", p.peer + " (" + p.peer_state + ", epoch " + peer_epoch + ", heard " +
                                  heard + ")"});
    fields.push_back({"replication", p.replication + ", " +
                                         (p.replica_in_sync ? "in sync" : "NOT in sync") +
                                         ", position " + std::to_string(p.position) + ", lag " +
                                         std::to_string(p.lag)});
  }
  std::string out = FormatFields(fields);
  std::vector<std::vector<std::string>> queue_rows;
  for (const auto& queue : cluster.queues) {
    queue_rows.push_back(
        {queue.type, wire::PriorityName(queue.priority), std::to_string(queue.depth)});
  }
  out += '\n' + FormatTable({"TYPE", "PRIORITY", "DEPTH"}, queue_rows);
  std::vector<std::vector<std::string>> worker_rows;
  for (const auto& worker : cluster.workers) {
    const auto zone = worker.labels.find(std::string(kZoneLabel));
    worker_rows.push_back(
        {worker.id, Join(worker.types, ","),
         std::to_string(worker.in_use) + "/" + std::to_string(worker.capacity) +
             (worker.waiting ? " (" + std::to_string(worker.waiting) + " waiting)" : ""),
         zone == worker.labels.end() ? "-" : zone->second,
         OrDash(Join(LabelTexts(worker.labels, kZoneLabel), ",")), worker.health, worker.breaker,
         worker.rtt_ms ? std::to_string(*worker.rtt_ms) + "ms" : "-",
         worker.draining ? "yes" : "no",
         FormatElapsed(std::chrono::milliseconds(worker.last_seen_ms)) + " ago"});
  }
  out += '\n' + FormatTable({"WORKER", "TYPES", "LOAD", "ZONE", "LABELS", "HEALTH", "BREAKER",
                             "RTT", "DRAINING", "LAST_SEEN"},
                            worker_rows);
  if (!cluster.nodes.empty()) {
    std::vector<std::vector<std::string>> node_rows;
    for (const auto& node : cluster.nodes) {
      node_rows.push_back({node.id, node.host, node.role, OrDash(node.zone),
                           node.capacity ? std::to_string(*node.capacity) : "-",
                           node.up ? (*node.up ? "yes" : "no") : "-"});
    }
    out += '\n' + FormatTable({"NODE", "HOST", "ROLE", "ZONE", "CAPACITY", "UP"}, node_rows);
  }
  return out;
}

std::string FormatDrain(const std::string& worker, bool drained, std::uint64_t moved) {
  if (!drained) return worker + " back in service\n";
  if (moved == 0) return "drained " + worker + ": no running job moved\n";
  return "drained " + worker + ": " + std::to_string(moved) +
         (moved == 1 ? " running job moved to another worker\n"
                     : " running jobs moved to other workers\n");
}

std::string RenderProgressLine(const wire::JobInfo& job, std::size_t width,
                               std::chrono::milliseconds elapsed) {
  std::optional<std::uint32_t> percent;
  if (job.progress && job.progress->percent) percent = std::min(*job.progress->percent, 100u);
  if (job.state == wire::JobState::kSucceeded) percent = 100;
  const std::size_t filled = percent ? *percent * kBarCells / 100 : 0;
  std::string prefix = "[" + std::string(filled, '#') + std::string(kBarCells - filled, '-') + "] ";
  char percent_text[8];
  if (percent) {
    std::snprintf(percent_text, sizeof percent_text, "%3u%%", *percent);
  } else {
    std::snprintf(percent_text, sizeof percent_text, "   -");
  }
  prefix += percent_text;
  prefix += ' ';

  std::string suffix = job.id + " " + std::string(wire::Name(job.state));
  if (job.attempts > 1) suffix += " (attempt " + Attempts(job) + ")";
  suffix += " " + FormatElapsed(elapsed);

  const std::string message = job.progress ? job.progress->message : std::string();
  std::string line = prefix + suffix;
  if (!message.empty()) {
    const std::size_t fixed = Columns(prefix) + Columns(suffix) + 2;
    if (width > fixed + 3) line = prefix + Clip(message, width - fixed) + "  " + suffix;
  }
  return PadRight(Clip(line, width), width);
}

std::string RenderGroupProgressLine(const wire::GroupInfo& group, std::size_t width,
                                    std::chrono::milliseconds elapsed) {
  const std::size_t filled = group.total > 0 ? group.settled * kBarCells / group.total : 0;
  const std::string prefix = "[" + std::string(filled, '#') + std::string(kBarCells - filled, '-') +
                             "] " + std::to_string(group.settled) + "/" +
                             std::to_string(group.total) + " ";
  const std::string suffix = group.id + " " + FormatElapsed(elapsed);
  std::string middle = Join(CountTexts(group.counts, false), ", ");
  if (group.follow_up) {
    middle +=
        ", then " + group.follow_up->id + " " + std::string(wire::Name(group.follow_up->state));
  }
  std::string line = prefix + suffix;
  const std::size_t fixed = Columns(prefix) + Columns(suffix) + 2;
  if (width > fixed + 3) line = prefix + Clip(middle, width - fixed) + "  " + suffix;
  return PadRight(Clip(line, width), width);
}

std::string FormatGroupUpdateLine(const wire::GroupInfo& group, std::chrono::milliseconds elapsed) {
  std::string line = group.id + " " + std::to_string(group.settled) + "/" +
                     std::to_string(group.total) + " settled (" +
                     Join(CountTexts(group.counts, false), ", ") + ")";
  if (group.follow_up) {
    line += ", follow-up " + group.follow_up->id + " " +
            std::string(wire::Name(group.follow_up->state));
  }
  return line + " (" + FormatElapsed(elapsed) + ")";
}

std::string FormatUpdateLine(const wire::JobInfo& job, std::chrono::milliseconds elapsed) {
  std::string line = job.id + " " + std::string(wire::Name(job.state));
  if (job.attempts > 1) line += " (attempt " + Attempts(job) + ")";
  if (job.progress) {
    const std::string progress = ProgressText(*job.progress);
    if (!progress.empty()) line += " " + progress;
  }
  if (!job.error.empty()) line += ": " + Clip(job.error, std::string::npos);
  return line + " (" + FormatElapsed(elapsed) + ")";
}

}  // namespace claw::client
