// How figures are printed: a readable block per workload (one line per worker count for
// scaling), or one JSON object per line for the comparison script.
#pragma once

#include <ostream>
#include <string>

#include "bench/workloads.hpp"

namespace claw::bench {

void PrintBlock(std::ostream& out, const Figures& figures);
// One line of the scaling table; PrintScalingHeader comes first.
void PrintScalingHeader(std::ostream& out, const Figures& first);
void PrintScalingLine(std::ostream& out, const Figures& figures);
// One JSON object, on one line.
std::string JsonLine(const Figures& figures);

}  // namespace claw::bench
