// The protocol's rules for the names and labels that messages carry (PROTOCOL.md 4.3, 4.16, 7.1).
// The broker refuses what breaks them. The worker checks its --id, --type and --label, and the
// CLI its --type, --zone, --require and members files, with the same functions, so that those
// flags are refused before they reach the wire.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "schema/result.hpp"

namespace claw::wire {

// A job type, zone or worker id: 1 to max_bytes bytes of A-Z a-z 0-9 _ . : -
bool IsName(std::string_view text, std::size_t max_bytes);
// IsName as a Status, `what` naming the field: "zone must be 1-128 bytes of A-Z a-z 0-9 _ . : -".
// The text itself is quoted only if `what` quotes it: the broker does not echo what a sender put
// in a field, a program checking its own flags does.
Status CheckName(std::string_view what, std::string_view text, std::size_t max_bytes);

struct JobSpec;
// The names a job carries, each by CheckName: its type, and its zone when it has one.
Status CheckJobNames(const JobSpec& spec);

// A label, a worker's or one a job requires: the key non-empty and without '=', neither the key
// nor the value holding a newline. The error says which rule the label breaks.
Status CheckLabel(std::string_view key, std::string_view value);

// "gpu=true" -> {"gpu", "true"}: the key up to the first '=', the value (possibly empty) after
// it, checked as CheckLabel does. The error says what is wrong, without quoting the text.
Result<std::pair<std::string, std::string>> ParseLabel(std::string_view text);

}  // namespace claw::wire
