// Pure parsing of the worker's command-line values, kept out of main.cpp so it can be tested:
// comma-separated lists (--broker a,b and --type t1,t2), job types and labels
// (--label zone=eu-1).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schema/result.hpp"

namespace claw::worker {

// "a,b,,c" -> {"a", "b", "c"}: empty items are dropped, surrounding spaces trimmed.
std::vector<std::string> SplitList(std::string_view text);

// "key=value" -> {key, value}, as wire::ParseLabel parses it; the error quotes the text.
Result<std::pair<std::string, std::string>> ParseLabel(std::string_view text);

// A job type as the protocol allows it: 1-128 bytes of [A-Za-z0-9_.:-].
Status CheckJobType(std::string_view type);

// "<hostname>-<pid>", the default worker id.
std::string DefaultWorkerId();

}  // namespace claw::worker
