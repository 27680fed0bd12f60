// Points in time as `submit --at` takes them: ISO 8601 in UTC ("2026-12-01T10:00:00Z") or with
// an offset ("2026-12-01T11:00:00+01:00"); seconds may carry a fraction (".250").
#pragma once

#include <cstdint>
#include <string_view>

#include "schema/result.hpp"

namespace claw::client {

// Unix time in milliseconds; a day that does not exist, or a time before 1970, is refused.
Result<std::int64_t> ParseTimestamp(std::string_view text);

}  // namespace claw::client
