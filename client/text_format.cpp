// Human-readable output of claw-client; see text_format.hpp.
#include "client/text_format.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <utility>

#include "client/json_format.hpp"
#include "schema/duration.hpp"

namespace claw::client {
namespace {

constexpr std::size_t kErrorColumns = 40;
constexpr std::size_t kPayloadColumns = 60;
constexpr std::size_t kBarCells = 20;

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

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
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
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : jobs) {
    rows.push_back({job.id, job.type, std::string(wire::Name(job.state)),
                    wire::PriorityName(job.priority), Attempts(job),
                    FormatLocalTime(job.updated_at), OrDash(job.worker),
                    OrDash(Clip(job.error, kErrorColumns))});
  }
  return FormatTable({"ID", "TYPE", "STATE", "PRIORITY", "ATTEMPTS", "UPDATED", "WORKER", "ERROR"},
                     rows);
}

std::string FormatCluster(const wire::ClusterInfo& cluster) {
  std::vector<std::string> counts;
  for (const auto& state : wire::kJobStates) {
    const auto it = cluster.jobs.find(std::string(state.name));
    counts.push_back(std::string(state.name) + " " +
                     std::to_string(it == cluster.jobs.end() ? 0 : it->second));
  }
  for (const auto& [name, count] : cluster.jobs) {
    if (!wire::ParseJobState(name)) counts.push_back(name + " " + std::to_string(count));
  }
  std::vector<std::pair<std::string, std::string>> fields = {
      {"role", cluster.role},
      {"epoch", std::to_string(cluster.epoch)},
      {"workers", std::to_string(cluster.workers_total) + " total, " +
                      std::to_string(cluster.workers_active) + " active"},
      {"capacity", std::to_string(cluster.capacity_in_use) + " of " +
                       std::to_string(cluster.capacity_total) + " in use"},
      {"jobs", Join(counts, ", ")},
      {"malformed", std::to_string(cluster.malformed)},
  };
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
    std::vector<std::string> labels;
    for (const auto& [name, value] : worker.labels) labels.push_back(name + "=" + value);
    worker_rows.push_back({worker.id, Join(worker.types, ","), std::to_string(worker.capacity),
                           std::to_string(worker.in_use), OrDash(Join(labels, ",")),
                           FormatElapsed(std::chrono::milliseconds(worker.last_seen_ms)) + " ago"});
  }
  out += '\n' +
         FormatTable({"WORKER", "TYPES", "CAPACITY", "IN_USE", "LABELS", "LAST_SEEN"}, worker_rows);
  return out;
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
