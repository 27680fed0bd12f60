#include "schema/duration.hpp"

#include <array>
#include <charconv>

namespace claw::wire {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t ms;
};

// Longest suffix first so that "ms" is not read as "m" followed by junk.
constexpr std::array<Unit, 5> kUnits = {
    {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};

}  // namespace

Result<std::int64_t> ParseDuration(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text == "0") return 0;
  for (const auto& unit : kUnits) {
    if (text.size() <= unit.suffix.size() || !text.ends_with(unit.suffix)) continue;
    const std::string_view number = text.substr(0, text.size() - unit.suffix.size());
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size() || value < 0) break;
    if (value > kMaxDurationMs / unit.ms) {
      return Fail("duration " + quoted + " is too long (at most " + FormatDuration(kMaxDurationMs) +
                  ")");
    }
    return value * unit.ms;
  }
  return Fail("bad duration " + quoted +
              ": expected a whole number with a unit, like 500ms, 30s, "
              "5m, 1h or 2d");
}

std::string FormatDuration(std::int64_t ms) {
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    if (ms != 0 && ms % it->ms == 0) return std::to_string(ms / it->ms) + std::string(it->suffix);
  }
  return std::to_string(ms) + "ms";
}

}  // namespace claw::wire
