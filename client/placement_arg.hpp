// Where a job may run, as `submit` and `group submit` take it: `--require key=value` (repeatable),
// `--locality same-zone|cross-zone|any` and `--max-rtt DURATION`, and the same values in a
// members file. The broker checks them again; checking here reports a typo before anything is
// sent, naming the flag's text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schema/codec.hpp"
#include "schema/result.hpp"

namespace claw::client {

// "gpu=true" -> {"gpu", "true"}, as wire::ParseLabel parses it; the error quotes the text.
Result<std::pair<std::string, std::string>> ParseRequirement(std::string_view text);

// Every "key=value"; naming a key twice is an error.
Result<wire::Labels> ParseRequirements(const std::vector<std::string>& texts);

// One of wire::kLocalities by name; the error lists them.
Result<wire::Locality> ParseLocalityArg(std::string_view name);

// A duration ("20ms", "1s") as max_rtt_ms; "0" means no bound. Over 2^32-1 ms is an error.
Result<std::uint32_t> ParseMaxRtt(std::string_view text);

}  // namespace claw::client
