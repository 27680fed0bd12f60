// Runnable jobs per type: one FIFO per priority, highest priority first. Push costs the same
// whatever the backlog; FindFirst looks at a bounded number of jobs; Remove (dispatching or
// cancelling a job) scans one FIFO.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/job.hpp"

namespace claw::broker {

class ReadyQueues {
 public:
  void Push(const std::string& type, std::uint32_t priority, Seq seq);
  // Ahead of its priority's other jobs: for a job that lost its worker through no fault of its
  // own and has waited its turn already.
  void PushFront(const std::string& type, std::uint32_t priority, Seq seq);
  bool Remove(const std::string& type, std::uint32_t priority, Seq seq);
  // The first of the next `limit` jobs of `type` (highest priority first, in queue order within
  // a priority) for which `take` is true; the job stays queued.
  template <typename Take>
  std::optional<Seq> FindFirst(const std::string& type, std::size_t limit, Take&& take) {
    auto it = types_.find(type);
    if (it == types_.end()) return std::nullopt;
    for (std::size_t level = kLevels; level-- > 0 && limit > 0;) {
      for (const Seq seq : it->second.fifo[level]) {
        if (limit-- == 0) return std::nullopt;
        if (take(seq)) return seq;
      }
    }
    return std::nullopt;
  }

  std::uint64_t Depth(const std::string& type) const;
  // (type, priority, depth) for every non-empty FIFO, types in name order.
  struct Entry {
    std::string type;
    std::uint32_t priority;
    std::uint64_t depth;
  };
  std::vector<Entry> Depths() const;

 private:
  static constexpr std::size_t kLevels = 10;
  struct TypeQueue {
    std::array<std::deque<Seq>, kLevels> fifo;
    std::uint64_t size = 0;
  };
  std::unordered_map<std::string, TypeQueue> types_;
};

}  // namespace claw::broker
