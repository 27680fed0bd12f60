// The members of `claw-client group submit SOURCE`, read from a file of JSON lines or a folder.
//
// A file holds one JSON object per line (blank lines are skipped), each one member:
//   {"type": "wc.map", "payload": "some text", "priority": "high", "timeout": "30s",
//    "max_attempts": 3, "backoff": "1s", "max_backoff": "1m", "delay": "10s",
//    "at": "2026-12-01T10:00:00Z", "after": ["j-3", "#0"], "after_policy": "all_settled",
//    "hash_key": "user-7", "requires": {"gpu": true}, "zone": "eu-1", "locality": "same-zone",
//    "max_rtt": "20ms"}
// Every key but type is optional, and type too when MemberDefaults has one; priority is a name
// or 0-9; "#N" in after names member N (0-based) of the same group; a `requires` value is a
// string or a boolean (true becomes "true"). An unknown key is an error, so that a misspelt one
// is not silently ignored.
//
// A folder gives one member per regular file, in file-name order, with the file's bytes as its
// payload and the default type (which it then needs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/codec.hpp"
#include "schema/result.hpp"

namespace claw::client {

// Values for members that do not set their own (the command line's --type, --priority, ...).
// Only the type, the retry and timeout settings and the placement are used.
using MemberDefaults = wire::JobSpec;

// Fills in what `spec` leaves unset from `defaults` (type only when it is empty, the required
// labels, used whole, only when it has none).
void ApplyDefaults(wire::JobSpec& spec, const MemberDefaults& defaults);

// One line of a members file.
Result<wire::JobSpec> ParseMemberLine(std::string_view line, const MemberDefaults& defaults);

// Every non-blank line of a members file; an error names the line (1-based).
Result<std::vector<wire::JobSpec>> ParseMemberLines(std::string_view text,
                                                    const MemberDefaults& defaults);

// The members `path` describes: a file of JSON lines, or a folder. An empty source is an error.
Result<std::vector<wire::JobSpec>> ReadGroupSource(const std::string& path,
                                                   const MemberDefaults& defaults);

}  // namespace claw::client
