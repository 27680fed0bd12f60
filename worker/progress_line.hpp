// The progress channel of an external command: one line per report, written to the file
// descriptor named by CLAW_PROGRESS_FD.
//
//   progress <percent 0-100> [message...]   e.g. "progress 40 resizing images"
//   checkpoint <text to end of line>        e.g. "checkpoint offset=1200"
//
// A trailing '\r' is ignored. Anything else is malformed: the caller logs it and goes on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "schema/result.hpp"

namespace claw::worker {

struct ProgressLine {
  std::uint32_t percent = 0;
  std::string message;  // may be empty
  bool operator==(const ProgressLine&) const = default;
};

struct CheckpointLine {
  std::string data;
  bool operator==(const CheckpointLine&) const = default;
};

using ProgressChannelLine = std::variant<ProgressLine, CheckpointLine>;

// `line` without its '\n'.
Result<ProgressChannelLine> ParseProgressLine(std::string_view line);

}  // namespace claw::worker
