// ParseProgressLine: see the header.
#include "worker/progress_line.hpp"

#include <charconv>

namespace claw::worker {
namespace {

constexpr std::string_view kProgress = "progress";
constexpr std::string_view kCheckpoint = "checkpoint";

// The text after `keyword` and one space, or nullopt if `line` does not start that way. The
// bare keyword yields an empty rest.
std::optional<std::string_view> After(std::string_view line, std::string_view keyword) {
  if (!line.starts_with(keyword)) return std::nullopt;
  line.remove_prefix(keyword.size());
  if (line.empty()) return line;
  if (line.front() != ' ') return std::nullopt;
  return line.substr(1);
}

}  // namespace

Result<ProgressChannelLine> ParseProgressLine(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (auto rest = After(line, kCheckpoint)) return CheckpointLine{std::string(*rest)};
  auto rest = After(line, kProgress);
  if (!rest) return Fail("expected 'progress <percent> [message]' or 'checkpoint <text>'");
  const std::string_view number = rest->substr(0, rest->find(' '));
  std::uint32_t percent = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      percent > 100) {
    return Fail("progress needs a whole percent 0-100, got '" + std::string(number) + "'");
  }
  const std::string_view message =
      number.size() < rest->size() ? rest->substr(number.size() + 1) : std::string_view();
  return ProgressLine{percent, std::string(message)};
}

}  // namespace claw::worker
