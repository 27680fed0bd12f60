// Dependencies inside one GROUP_SUBMIT: member i may wait for member j ("#j"). Such a request
// is accepted only if those edges form no cycle; this finds one to name in the refusal.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace claw::broker {

// `after[i]` lists the members node i waits for (each < after.size()). Returns a cycle as the
// nodes along it, first node repeated at the end (e.g. {0, 2, 0}), or nullopt when there is none.
std::optional<std::vector<std::size_t>> FindCycle(
    const std::vector<std::vector<std::size_t>>& after);

}  // namespace claw::broker
