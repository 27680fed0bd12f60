#include "broker/dag.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <utility>

namespace claw::broker {

std::optional<std::vector<std::size_t>> FindCycle(
    const std::vector<std::vector<std::size_t>>& after) {
  enum class Mark : std::uint8_t { kNew, kOnPath, kDone };
  const std::size_t n = after.size();
  std::vector<Mark> mark(n, Mark::kNew);
  // Iterative depth-first search: a group may hold thousands of members in one chain.
  std::vector<std::pair<std::size_t, std::size_t>> path;  // node, next edge to follow
  for (std::size_t start = 0; start < n; ++start) {
    if (mark[start] != Mark::kNew) continue;
    path.push_back({start, 0});
    mark[start] = Mark::kOnPath;
    while (!path.empty()) {
      auto& [node, edge] = path.back();
      if (edge == after[node].size()) {
        mark[node] = Mark::kDone;
        path.pop_back();
        continue;
      }
      const std::size_t next = after[node][edge++];
      assert(next < n);
      if (mark[next] == Mark::kOnPath) {
        std::vector<std::size_t> cycle;
        auto from = std::find_if(path.begin(), path.end(),
                                 [next](const auto& step) { return step.first == next; });
        for (; from != path.end(); ++from) cycle.push_back(from->first);
        cycle.push_back(next);
        return cycle;
      }
      if (mark[next] == Mark::kNew) {
        mark[next] = Mark::kOnPath;
        path.push_back({next, 0});
      }
    }
  }
  return std::nullopt;
}

}  // namespace claw::broker
