// Durations as people write them in flags and config files: "500ms", "30s", "5m", "1h", "2d",
// and "0". A bare number other than 0 is refused, since it could mean seconds or milliseconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "schema/result.hpp"

namespace claw::wire {

// The longest duration accepted: 100 years, so that a deadline (now + it, in nanoseconds on a
// steady clock) cannot overflow.
inline constexpr std::int64_t kMaxDurationMs = 36'500LL * 86'400'000;

// Milliseconds, or an error that quotes the text.
Result<std::int64_t> ParseDuration(std::string_view text);

// The shortest exact spelling: 1500 -> "1500ms", 30000 -> "30s", 300000 -> "5m".
std::string FormatDuration(std::int64_t ms);

}  // namespace claw::wire
